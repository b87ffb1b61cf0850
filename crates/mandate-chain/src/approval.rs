//! Owner decisions: the canonical text an owner signs to approve or deny a held
//! transaction, or to unfreeze a wallet; owner identities (an Ed25519 key or an EVM
//! address) and their signatures.
//!
//! The daemon, the CLI, the dashboard and the cosigner all rebuild the same text
//! from the same fields with [`OwnerDecision::message`], so an owner signs exactly
//! what each of them checks. An approval binds the decision id, the wallet, the
//! exact transaction (recipient, value, calldata hash, chain) with the gas and fee
//! bounds the transaction may be re-priced within, and an expiry.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::{eip191_hash_message, keccak256, Address, Signature, B256, U256};
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};

use crate::webauthn::{Assertion, PasskeyKey, WebAuthnError};
use crate::UnsignedTx;

/// Why an owner decision or signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// Malformed key, signature or decision text.
    #[error("{0}")]
    Malformed(String),
    /// The signature does not verify for the key it names, over this decision.
    #[error("the signature does not verify over this decision")]
    BadSignature,
    /// The signer is not an owner of the wallet.
    #[error("{0} is not an owner of this wallet")]
    NotAnOwner(String),
    /// The decision's expiry has passed.
    #[error("the decision expired at {0}")]
    Expired(u64),
    /// The transaction to sign is not the one the owner approved.
    #[error("the transaction differs from the approved one: {0}")]
    Mismatch(String),
    /// A passkey assertion failed a check (named).
    #[error("the passkey assertion is refused: {0}")]
    Passkey(&'static str),
    /// Fewer distinct owners signed than the wallet's quorum requires.
    #[error("{have} of {need} required owners signed")]
    QuorumNotMet {
        /// Distinct owners whose signature verifies.
        have: usize,
        /// The quorum.
        need: usize,
    },
}

/// An owner's public identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerKey {
    /// An Ed25519 public key (from `mandate owner keygen`).
    Ed25519([u8; 32]),
    /// An EVM address; it signs with EIP-191 `personal_sign`.
    Evm(Address),
    /// A passkey (WebAuthn, P-256) of one web origin: it signs with
    /// `navigator.credentials.get`, the challenge being SHA-256 of the text.
    Passkey(Box<PasskeyKey>),
}

impl fmt::Display for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerKey::Ed25519(key) => write!(f, "ed25519:{}", hex::encode(key)),
            OwnerKey::Evm(address) => write!(f, "evm:{}", address.to_checksum(None)),
            OwnerKey::Passkey(key) => write!(f, "{key}"),
        }
    }
}

fn hex_bytes<const N: usize>(text: &str, what: &str) -> Result<[u8; N], ApprovalError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits).map_err(|_| ApprovalError::Malformed(format!("{what} is not hex")))?;
    bytes.try_into().map_err(|_| ApprovalError::Malformed(format!("{what} must be {N} bytes")))
}

impl FromStr for OwnerKey {
    type Err = ApprovalError;

    /// `ed25519:<64 hex digits>`, `evm:0x<40 hex digits>` or
    /// `webauthn:<130 hex digits>@<origin>#<credential id hex>`.
    fn from_str(text: &str) -> Result<Self, ApprovalError> {
        match text.split_once(':') {
            Some(("ed25519", key)) => {
                let bytes = hex_bytes::<32>(key, "an Ed25519 public key")?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| ApprovalError::Malformed("not a valid Ed25519 public key".into()))?;
                Ok(OwnerKey::Ed25519(bytes))
            }
            Some(("evm", address)) => {
                let bytes = hex_bytes::<20>(address, "an EVM address")?;
                Ok(OwnerKey::Evm(Address::from(bytes)))
            }
            Some(("webauthn", _)) => {
                let key: PasskeyKey =
                    text.parse().map_err(|e: WebAuthnError| ApprovalError::Malformed(e.to_string()))?;
                Ok(OwnerKey::Passkey(Box::new(key)))
            }
            _ => Err(ApprovalError::Malformed(
                "an owner key is ed25519:<hex>, evm:0x<address> or webauthn:<key>@<origin>#<credential>".into(),
            )),
        }
    }
}

impl Serialize for OwnerKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for OwnerKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What an owner decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    /// Sign and send the held transaction.
    Approve,
    /// Never send it.
    Deny,
    /// Lift the wallet's emergency freeze.
    Unfreeze,
}

impl DecisionAction {
    fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Approve => "approve",
            DecisionAction::Deny => "deny",
            DecisionAction::Unfreeze => "unfreeze",
        }
    }
}

/// The transaction an owner approves, with the bounds it may be re-priced within.
/// The nonce is not part of it: a held transaction gets its nonce when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedTx {
    /// Chain id.
    pub chain_id: u64,
    /// The transaction's `to`.
    pub to: Address,
    /// Native value in wei.
    pub value: U256,
    /// keccak256 of the calldata.
    pub data_hash: B256,
    /// Calldata length in bytes.
    pub data_len: u64,
    /// Highest gas limit.
    pub gas_limit_max: u64,
    /// Highest max fee per gas, in wei.
    pub max_fee_per_gas_max: u128,
}

impl ApprovedTx {
    /// The transaction `to`/`value`/`data` on `chain_id` within these bounds.
    pub fn new(chain_id: u64, to: Address, value: U256, data: &[u8], gas_limit_max: u64, max_fee: u128) -> Self {
        ApprovedTx {
            chain_id,
            to,
            value,
            data_hash: keccak256(data),
            data_len: data.len() as u64,
            gas_limit_max,
            max_fee_per_gas_max: max_fee,
        }
    }

    /// The payload hash an approval binds: keccak256 over a fixed-width encoding of
    /// every field.
    pub fn payload_hash(&self) -> B256 {
        let mut bytes = Vec::with_capacity(160);
        bytes.extend_from_slice(b"mandate-approved-tx-v1");
        bytes.extend_from_slice(&self.chain_id.to_be_bytes());
        bytes.extend_from_slice(self.to.as_slice());
        bytes.extend_from_slice(&self.value.to_be_bytes::<32>());
        bytes.extend_from_slice(self.data_hash.as_slice());
        bytes.extend_from_slice(&self.data_len.to_be_bytes());
        bytes.extend_from_slice(&self.gas_limit_max.to_be_bytes());
        bytes.extend_from_slice(&self.max_fee_per_gas_max.to_be_bytes());
        keccak256(bytes)
    }

    /// Checks that `tx` is this transaction, priced within the bounds.
    pub fn admits(&self, tx: &UnsignedTx) -> Result<(), ApprovalError> {
        let mismatch = |what: &str| Err(ApprovalError::Mismatch(what.into()));
        if tx.chain_id() != self.chain_id {
            return mismatch("chain");
        }
        if tx.to() != Some(self.to) {
            return mismatch("recipient");
        }
        if tx.value() != self.value {
            return mismatch("value");
        }
        if keccak256(tx.input()) != self.data_hash || tx.input().len() as u64 != self.data_len {
            return mismatch("calldata");
        }
        if tx.gas_limit() > self.gas_limit_max {
            return mismatch("gas limit above the approved bound");
        }
        if tx.max_fee_per_gas() > self.max_fee_per_gas_max {
            return mismatch("max fee per gas above the approved bound");
        }
        Ok(())
    }
}

/// One owner decision: the fields of the text an owner signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerDecision {
    /// Approve, deny or unfreeze.
    pub action: DecisionAction,
    /// The held transaction's id, or for an unfreeze `freeze:<frozen_at>`.
    pub item: String,
    /// The wallet id.
    pub wallet: String,
    /// The transaction (approve and deny only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<ApprovedTx>,
    /// Unix seconds after which the decision is void.
    pub expires_at: u64,
}

fn printable(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic())
}

impl OwnerDecision {
    /// The exact text the owner signs (UTF-8, `\n` line ends, no trailing newline).
    pub fn message(&self) -> String {
        let mut lines = vec![
            "Mandate owner decision v1".to_string(),
            format!("action: {}", self.action.as_str()),
            format!("item: {}", self.item),
            format!("wallet: {}", self.wallet),
        ];
        if let Some(tx) = &self.tx {
            lines.push(format!("chain: {}", tx.chain_id));
            lines.push(format!("to: {}", tx.to.to_checksum(None)));
            lines.push(format!("value_wei: {}", tx.value));
            lines.push(format!("data: {} bytes, keccak256 {:#x}", tx.data_len, tx.data_hash));
            lines.push(format!("gas_limit_max: {}", tx.gas_limit_max));
            lines.push(format!("max_fee_per_gas_max_wei: {}", tx.max_fee_per_gas_max));
            lines.push(format!("payload: {:#x}", tx.payload_hash()));
        }
        lines.push(format!("expires_at: {}", self.expires_at));
        lines.join("\n")
    }

    /// Checks the shape: ids are short printable ASCII (they are part of the text),
    /// approve/deny carry a transaction, unfreeze does not.
    pub fn validate(&self) -> Result<(), ApprovalError> {
        if !printable(&self.item) || !printable(&self.wallet) {
            return Err(ApprovalError::Malformed("item and wallet must be short printable ASCII".into()));
        }
        match (self.action, &self.tx) {
            (DecisionAction::Unfreeze, None) | (DecisionAction::Approve | DecisionAction::Deny, Some(_)) => Ok(()),
            _ => Err(ApprovalError::Malformed("approve and deny carry a transaction; unfreeze does not".into())),
        }
    }
}

/// An owner's signature over a decision's text, naming its key:
/// `ed25519:<public key hex>:<signature hex>`, `eip191:<address>:<65-byte signature hex>`
/// or `webauthn:<key>@<origin>#<credential>:<authenticatorData>.<clientDataJSON>.<signature>`
/// (hex; a passkey assertion whose challenge is SHA-256 of the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSignature {
    /// Who signed.
    pub key: OwnerKey,
    /// The raw signature (64 bytes Ed25519, 65 bytes r‖s‖v for EIP-191, a passkey's
    /// assertion as [`Assertion::to_bytes`]).
    pub signature: Vec<u8>,
}

impl fmt::Display for OwnerSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            OwnerKey::Ed25519(key) => write!(f, "ed25519:{}:{}", hex::encode(key), hex::encode(&self.signature)),
            OwnerKey::Evm(address) => {
                write!(f, "eip191:{}:0x{}", address.to_checksum(None), hex::encode(&self.signature))
            }
            OwnerKey::Passkey(key) => {
                let assertion = Assertion::from_bytes(&self.signature).map_err(|_| fmt::Error)?;
                write!(f, "{key}:{}", assertion.to_text())
            }
        }
    }
}

impl FromStr for OwnerSignature {
    type Err = ApprovalError;

    fn from_str(text: &str) -> Result<Self, ApprovalError> {
        let text = text.trim();
        if text.starts_with("webauthn:") {
            // The origin holds a colon: the assertion is after the last one.
            let malformed = |e: WebAuthnError| ApprovalError::Malformed(e.to_string());
            let (key, assertion) = text
                .rsplit_once(':')
                .ok_or_else(|| ApprovalError::Malformed("a passkey signature is <passkey>:<assertion>".into()))?;
            let key: PasskeyKey = key.parse().map_err(malformed)?;
            let assertion = Assertion::from_text(assertion).map_err(malformed)?;
            return Ok(OwnerSignature { key: OwnerKey::Passkey(Box::new(key)), signature: assertion.to_bytes() });
        }
        let mut parts = text.splitn(3, ':');
        let (Some(kind), Some(key), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApprovalError::Malformed(
                "a signature is ed25519:<public key>:<signature> or eip191:<address>:<signature>".into(),
            ));
        };
        match kind {
            "ed25519" => Ok(OwnerSignature {
                key: format!("ed25519:{key}").parse()?,
                signature: hex_bytes::<64>(signature, "an Ed25519 signature")?.to_vec(),
            }),
            // `eip712:` names an EVM owner's typed-data signature (agent registrations
            // accept it); the key and the 65 bytes are the same shape.
            "eip191" | "eip712" => Ok(OwnerSignature {
                key: format!("evm:{key}").parse()?,
                signature: hex_bytes::<65>(signature, "an EIP-191 signature")?.to_vec(),
            }),
            _ => Err(ApprovalError::Malformed(format!("unknown signature kind {kind:?}"))),
        }
    }
}

impl Serialize for OwnerSignature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for OwnerSignature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl OwnerSignature {
    /// Verifies the signature over `decision`'s text, for the key it names.
    pub fn verify(&self, decision: &OwnerDecision) -> Result<(), ApprovalError> {
        decision.validate()?;
        self.verify_text(&decision.message())
    }

    /// Verifies the signature over another owner-signed text (an agent registration).
    pub fn verify_message(&self, message: &str) -> Result<(), ApprovalError> {
        self.verify_text(message)
    }

    /// Verifies the signature over `message` (UTF-8 text), for the key it names.
    fn verify_text(&self, message: &str) -> Result<(), ApprovalError> {
        self.verify_counted(message).map(|_| ())
    }

    /// The passkey's signature counter, for a passkey signature that verifies over
    /// `message` (0 when the authenticator keeps none); `None` for other kinds.
    pub fn passkey_counter(&self, message: &str) -> Option<u32> {
        match &self.key {
            OwnerKey::Passkey(_) => self.verify_counted(message).ok().flatten(),
            _ => None,
        }
    }

    /// Verifies the signature over `message`; a passkey's counter comes back.
    fn verify_counted(&self, message: &str) -> Result<Option<u32>, ApprovalError> {
        match &self.key {
            OwnerKey::Passkey(key) => {
                let assertion =
                    Assertion::from_bytes(&self.signature).map_err(|e| ApprovalError::Malformed(e.to_string()))?;
                key.verify(message.as_bytes(), &assertion).map(Some).map_err(|e| match e {
                    WebAuthnError::Refused(why) => ApprovalError::Passkey(why),
                    WebAuthnError::Malformed(why) => ApprovalError::Malformed(why),
                })
            }
            _ => self.verify_classic(message).map(|()| None),
        }
    }

    /// Verifies an Ed25519 or EIP-191 signature over `message`.
    fn verify_classic(&self, message: &str) -> Result<(), ApprovalError> {
        match &self.key {
            OwnerKey::Ed25519(key) => {
                let key = ed25519_dalek::VerifyingKey::from_bytes(key)
                    .map_err(|_| ApprovalError::Malformed("not a valid Ed25519 public key".into()))?;
                let bytes: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| ApprovalError::BadSignature)?;
                key.verify_strict(message.as_bytes(), &ed25519_dalek::Signature::from_bytes(&bytes))
                    .map_err(|_| ApprovalError::BadSignature)
            }
            OwnerKey::Evm(address) => {
                let signature = Signature::from_raw(&self.signature).map_err(|_| ApprovalError::BadSignature)?;
                // Refuse the malleable high-s twin: one approval has one signature.
                if signature.normalize_s().is_some() {
                    return Err(ApprovalError::BadSignature);
                }
                let recovered = signature
                    .recover_address_from_prehash(&eip191_hash_message(message.as_bytes()))
                    .map_err(|_| ApprovalError::BadSignature)?;
                if recovered == *address {
                    Ok(())
                } else {
                    Err(ApprovalError::BadSignature)
                }
            }
            OwnerKey::Passkey(_) => Err(ApprovalError::BadSignature),
        }
    }

    /// Verifies the signature, that its key is one of `owners`, and that the
    /// decision has not expired at `now` (unix seconds).
    pub fn verify_owner(&self, decision: &OwnerDecision, owners: &[OwnerKey], now: u64) -> Result<(), ApprovalError> {
        self.check_owner_and_expiry(owners, decision.expires_at, now)?;
        self.verify(decision)
    }

    /// The signer is one of `owners`, and `expires_at` has not passed at `now`.
    fn check_owner_and_expiry(&self, owners: &[OwnerKey], expires_at: u64, now: u64) -> Result<(), ApprovalError> {
        if !owners.contains(&self.key) {
            return Err(ApprovalError::NotAnOwner(self.key.to_string()));
        }
        if now > expires_at {
            return Err(ApprovalError::Expired(expires_at));
        }
        Ok(())
    }
}

/// Parses an owner-signed value from untrusted bytes: JSON, at most 4 KiB, unknown
/// fields refused; `what` names it in errors.
fn decode_signed<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApprovalError> {
    if bytes.len() > 4096 {
        return Err(ApprovalError::Malformed(format!("{what} larger than 4 KiB")));
    }
    serde_json::from_slice(bytes).map_err(|e| ApprovalError::Malformed(format!("{what} does not parse: {e}")))
}

/// An owner's secret key (Ed25519 or secp256k1), as kept in an owner key file.
pub struct OwnerSecret {
    inner: SecretInner,
}

enum SecretInner {
    Ed25519(ed25519_dalek::SigningKey),
    Evm(k256::ecdsa::SigningKey),
}

impl fmt::Debug for OwnerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerSecret({}, secret redacted)", self.public())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    kind: String,
    secret: String,
}

impl OwnerSecret {
    /// A new random Ed25519 owner key.
    pub fn generate_ed25519() -> Self {
        let seed: [u8; 32] = rand_seed();
        OwnerSecret { inner: SecretInner::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)) }
    }

    /// An EVM (secp256k1) owner key from its 32-byte secret.
    pub fn evm_from_bytes(secret: &[u8; 32]) -> Result<Self, ApprovalError> {
        let key = k256::ecdsa::SigningKey::from_slice(secret)
            .map_err(|_| ApprovalError::Malformed("not a valid secp256k1 secret".into()))?;
        Ok(OwnerSecret { inner: SecretInner::Evm(key) })
    }

    /// The public identity.
    pub fn public(&self) -> OwnerKey {
        match &self.inner {
            SecretInner::Ed25519(key) => OwnerKey::Ed25519(key.verifying_key().to_bytes()),
            SecretInner::Evm(key) => OwnerKey::Evm(Address::from_public_key(key.verifying_key())),
        }
    }

    /// Signs `decision`'s text.
    pub fn sign(&self, decision: &OwnerDecision) -> Result<OwnerSignature, ApprovalError> {
        decision.validate()?;
        self.sign_text(&decision.message())
    }

    /// Signs a ceremony's text.
    pub fn sign_ceremony(&self, ceremony: &OwnerCeremony) -> Result<OwnerSignature, ApprovalError> {
        ceremony.validate()?;
        self.sign_text(&ceremony.message())
    }

    /// Signs an agent registration's text.
    pub fn sign_agent_registration(
        &self,
        registration: &crate::agent::AgentRegistration,
    ) -> Result<OwnerSignature, ApprovalError> {
        registration.validate()?;
        self.sign_text(&registration.message())
    }

    fn sign_text(&self, message: &str) -> Result<OwnerSignature, ApprovalError> {
        let signature = match &self.inner {
            SecretInner::Ed25519(key) => key.sign(message.as_bytes()).to_bytes().to_vec(),
            SecretInner::Evm(key) => {
                let (sig, recovery) = key
                    .sign_prehash_recoverable(eip191_hash_message(message.as_bytes()).as_slice())
                    .map_err(|e| ApprovalError::Malformed(format!("signing failed: {e}")))?;
                let mut bytes = sig.to_bytes().to_vec();
                bytes.push(27 + recovery.to_byte());
                bytes
            }
        };
        Ok(OwnerSignature { key: self.public(), signature })
    }

    /// The key file text (JSON; the caller writes it 0600).
    pub fn to_file_text(&self) -> zeroize::Zeroizing<String> {
        let (kind, secret) = match &self.inner {
            SecretInner::Ed25519(key) => ("ed25519", hex::encode(key.to_bytes())),
            SecretInner::Evm(key) => ("secp256k1", hex::encode(key.to_bytes())),
        };
        let secret = zeroize::Zeroizing::new(secret);
        zeroize::Zeroizing::new(format!("{{\"kind\":\"{kind}\",\"secret\":\"{}\"}}\n", secret.as_str()))
    }

    /// Parses a key file's text.
    pub fn from_file_text(text: &str) -> Result<Self, ApprovalError> {
        let file: SecretFile = serde_json::from_str(text)
            .map_err(|_| ApprovalError::Malformed("not an owner key file (JSON with kind and secret)".into()))?;
        let secret = zeroize::Zeroizing::new(hex_bytes::<32>(&file.secret, "the secret")?);
        match file.kind.as_str() {
            "ed25519" => {
                Ok(OwnerSecret { inner: SecretInner::Ed25519(ed25519_dalek::SigningKey::from_bytes(&secret)) })
            }
            "secp256k1" => Self::evm_from_bytes(&secret),
            other => Err(ApprovalError::Malformed(format!("unknown owner key kind {other:?}"))),
        }
    }
}

fn rand_seed() -> [u8; 32] {
    use rand_core::RngCore;
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    seed
}

/// The most owner signatures one decision carries (a quorum is at most this large).
pub const MAX_QUORUM_SIGNATURES: usize = 16;

/// An approval (or unfreeze) as it travels to the cosigner: the decision and the
/// signatures of the owners who signed it, each over the same text. With an owner
/// quorum (M of N) every party counts the distinct owners from its own list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDecision {
    /// What the owners decided.
    pub decision: OwnerDecision,
    /// The owners' signatures over its text (at least one).
    pub signatures: Vec<OwnerSignature>,
}

/// The wire form: `{"decision", "signature"}` for one signature (the form before
/// quorums), `{"decision", "signatures": […]}` for several.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedDecisionWire {
    decision: OwnerDecision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<OwnerSignature>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signatures: Vec<OwnerSignature>,
}

impl Serialize for SignedDecision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self.signatures.as_slice() {
            [one] => {
                SignedDecisionWire { decision: self.decision.clone(), signature: Some(one.clone()), signatures: vec![] }
            }
            many => SignedDecisionWire { decision: self.decision.clone(), signature: None, signatures: many.to_vec() },
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedDecision {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = SignedDecisionWire::deserialize(deserializer)?;
        let mut signatures = wire.signatures;
        signatures.extend(wire.signature);
        if signatures.is_empty() || signatures.len() > MAX_QUORUM_SIGNATURES {
            return Err(serde::de::Error::custom(format!(
                "a decision carries 1 to {MAX_QUORUM_SIGNATURES} signatures"
            )));
        }
        Ok(SignedDecision { decision: wire.decision, signatures })
    }
}

impl SignedDecision {
    /// One owner's signed decision.
    pub fn single(decision: OwnerDecision, signature: OwnerSignature) -> Self {
        SignedDecision { decision, signatures: vec![signature] }
    }

    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses untrusted bytes (bounded to 16 KiB).
    pub fn decode(bytes: &[u8]) -> Result<Self, ApprovalError> {
        if bytes.len() > 16 * 1024 {
            return Err(ApprovalError::Malformed("owner decision larger than 16 KiB".into()));
        }
        let signed: SignedDecision = serde_json::from_slice(bytes)
            .map_err(|e| ApprovalError::Malformed(format!("owner decision does not parse: {e}")))?;
        signed.decision.validate()?;
        Ok(signed)
    }

    /// The distinct owners among `owners` whose signature verifies over the
    /// decision, in the order they signed. A signature by a key not in `owners`, or
    /// one that does not verify, counts for nothing; the same owner twice counts once.
    pub fn signers(&self, owners: &[OwnerKey]) -> Vec<OwnerKey> {
        let mut signers: Vec<OwnerKey> = Vec::new();
        for signature in &self.signatures {
            if owners.contains(&signature.key)
                && !signers.contains(&signature.key)
                && signature.verify(&self.decision).is_ok()
            {
                signers.push(signature.key.clone());
            }
        }
        signers
    }

    /// Verifies the quorum: at least `threshold` (at least 1) distinct owners among
    /// `owners` signed the decision, and it has not expired at `now`. Returns the
    /// owners counted. With one signature that fails, its own error is returned.
    pub fn verify_quorum(
        &self,
        owners: &[OwnerKey],
        threshold: usize,
        now: u64,
    ) -> Result<Vec<OwnerKey>, ApprovalError> {
        self.decision.validate()?;
        if now > self.decision.expires_at {
            return Err(ApprovalError::Expired(self.decision.expires_at));
        }
        let signers = self.signers(owners);
        let need = threshold.max(1);
        if signers.len() >= need {
            return Ok(signers);
        }
        if let ([only], 1) = (self.signatures.as_slice(), need) {
            only.verify_owner(&self.decision, owners, now)?;
        }
        Err(ApprovalError::QuorumNotMet { have: signers.len(), need })
    }
}

/// The headers that begin every text an owner signs (decisions, ceremonies).
const OWNER_TEXT_HEADERS: [&[u8]; 3] =
    [b"Mandate owner decision", b"Mandate owner ceremony", b"Mandate agent registration"];

/// Whether `message` is, or begins with, an owner text's header (ignoring leading
/// whitespace and ASCII case). No wallet may sign such a message: owner texts are a
/// domain of their own, and every signer (the daemon and the cosigner) refuses them.
pub fn is_owner_text(message: &[u8]) -> bool {
    let start = message.iter().position(|byte| !byte.is_ascii_whitespace()).unwrap_or(message.len());
    let rest = message.get(start..).unwrap_or_default();
    OWNER_TEXT_HEADERS
        .iter()
        .any(|header| rest.get(..header.len()).is_some_and(|head| head.eq_ignore_ascii_case(header)))
}

/// The longest an owner's ceremony authorization may stay valid, in seconds: a
/// ceremony is run right after it is signed.
pub const MAX_CEREMONY_LIFETIME_SECS: u64 = 24 * 3600;

/// Which share ceremony an owner authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeremonyKind {
    /// Complete refresh of all three shares (same address).
    Refresh,
    /// Rebuild one party's lost share from the other two, then refresh.
    Repair,
    /// Sign a payload with the offline recovery share and one online party.
    RecoverySign,
}

impl CeremonyKind {
    /// The name in the signed text.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Refresh => "refresh",
            CeremonyKind::Repair => "repair",
            CeremonyKind::RecoverySign => "recovery_sign",
        }
    }
}

/// An owner's authorization of one share ceremony over an exact plan: every party
/// taking part rebuilds this text from the plan it is asked to run and verifies the
/// owner's signature over it before any protocol message. Its text starts with its
/// own header, so it can never be mistaken for an owner decision, and single use is
/// enforced by each party on `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerCeremony {
    /// What is authorised.
    pub kind: CeremonyKind,
    /// A random id; each party accepts it once.
    pub id: String,
    /// The wallet id.
    pub wallet: String,
    /// The wallet's address (a repair must rebuild a share of exactly this key).
    pub address: Address,
    /// Who takes part, sorted.
    pub participants: Vec<mandate_core::Role>,
    /// The party whose share is rebuilt (repair only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<mandate_core::Role>,
    /// keccak256 of the full payload to sign (recovery signing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<B256>,
    /// Unix seconds after which the authorization is void.
    pub expires_at: u64,
}

impl OwnerCeremony {
    /// The exact text the owner signs (UTF-8, `\n` line ends, no trailing newline).
    pub fn message(&self) -> String {
        let participants: Vec<&str> = self.participants.iter().map(|role| role.as_str()).collect();
        let mut lines = vec![
            "Mandate owner ceremony v1".to_string(),
            format!("ceremony: {}", self.kind.as_str()),
            format!("id: {}", self.id),
            format!("wallet: {}", self.wallet),
            format!("address: {}", self.address.to_checksum(None)),
            format!("participants: {}", participants.join(",")),
        ];
        if let Some(target) = self.target {
            lines.push(format!("target: {target}"));
        }
        if let Some(payload) = self.payload {
            lines.push(format!("payload_keccak256: {payload:#x}"));
        }
        lines.push(format!("expires_at: {}", self.expires_at));
        lines.join("\n")
    }

    /// Checks the shape: printable ids, sorted distinct participants that fit the
    /// kind, a target for a repair only, a payload for a recovery signing only.
    pub fn validate(&self) -> Result<(), ApprovalError> {
        use mandate_core::Role;
        if !printable(&self.id) || !printable(&self.wallet) {
            return Err(ApprovalError::Malformed("id and wallet must be short printable ASCII".into()));
        }
        let sorted = self.participants.windows(2).all(|pair| matches!(pair, [a, b] if a < b));
        let shape = match self.kind {
            CeremonyKind::Refresh => self.participants.len() == 3 && self.target.is_none() && self.payload.is_none(),
            CeremonyKind::Repair => self.participants.len() == 3 && self.target.is_some() && self.payload.is_none(),
            CeremonyKind::RecoverySign => {
                self.participants.len() == 2
                    && self.participants.contains(&Role::Recovery)
                    && self.target.is_none()
                    && self.payload.is_some()
            }
        };
        if !sorted || !shape {
            return Err(ApprovalError::Malformed(format!(
                "a {} ceremony names other participants, target or payload",
                self.kind.as_str()
            )));
        }
        Ok(())
    }
}

/// A ceremony authorization as it travels with a run: the ceremony and the owner's
/// signature over its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCeremony {
    /// What the owner authorised.
    pub ceremony: OwnerCeremony,
    /// The owner's signature over its text.
    pub signature: OwnerSignature,
}

impl SignedCeremony {
    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses untrusted bytes (bounded to 4 KiB).
    pub fn decode(bytes: &[u8]) -> Result<Self, ApprovalError> {
        let signed: SignedCeremony = decode_signed(bytes, "ceremony authorization")?;
        signed.ceremony.validate()?;
        Ok(signed)
    }

    /// Verifies the signature, that its key is one of `owners`, that it has not
    /// expired at `now` and does not reach further than [`MAX_CEREMONY_LIFETIME_SECS`].
    pub fn verify_owner(&self, owners: &[OwnerKey], now: u64) -> Result<(), ApprovalError> {
        self.signature.check_owner_and_expiry(owners, self.ceremony.expires_at, now)?;
        if self.ceremony.expires_at > now.saturating_add(MAX_CEREMONY_LIFETIME_SECS) {
            return Err(ApprovalError::Malformed(format!(
                "the authorization is valid until {}, more than {MAX_CEREMONY_LIFETIME_SECS} s ahead",
                self.ceremony.expires_at
            )));
        }
        self.ceremony.validate()?;
        self.signature.verify_text(&self.ceremony.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tx_decision(item: &str) -> OwnerDecision {
        OwnerDecision {
            action: DecisionAction::Approve,
            item: item.into(),
            wallet: "wal_0123456789abcdef01234567".into(),
            tx: Some(ApprovedTx::new(
                31337,
                Address::repeat_byte(0x22),
                U256::from(1_500_000_000_000_000_000u128),
                b"",
                21_000,
                4_000_000_000,
            )),
            expires_at: 2_000_000_000,
        }
    }

    fn unsigned(value: u128, gas: u64, fee: u128, input: Vec<u8>) -> UnsignedTx {
        UnsignedTx::new(31337, 7, Address::repeat_byte(0x22), U256::from(value), gas, fee, 1, input)
    }

    #[test]
    fn both_key_kinds_sign_and_verify_and_round_trip_as_text() {
        let evm = OwnerSecret::evm_from_bytes(&[0x42; 32]).unwrap();
        for secret in [OwnerSecret::generate_ed25519(), evm] {
            let decision = tx_decision("tx_one");
            let signature = secret.sign(&decision).unwrap();
            signature.verify_owner(&decision, &[secret.public()], 1_000).unwrap();
            let text = signature.to_string();
            assert_eq!(text.parse::<OwnerSignature>().unwrap(), signature);
            assert_eq!(secret.public().to_string().parse::<OwnerKey>().unwrap(), secret.public());
            let again = OwnerSecret::from_file_text(&secret.to_file_text()).unwrap();
            assert_eq!(again.public(), secret.public());
            assert!(!format!("{secret:?}").contains(&hex::encode([0x42; 32])));
        }
    }

    #[test]
    fn a_signature_binds_every_field() {
        let secret = OwnerSecret::generate_ed25519();
        let decision = tx_decision("tx_one");
        let signature = secret.sign(&decision).unwrap();
        let mut others = Vec::new();
        let mut changed = decision.clone();
        changed.item = "tx_two".into();
        others.push(changed);
        let mut changed = decision.clone();
        changed.wallet = "wal_other".into();
        others.push(changed);
        let mut changed = decision.clone();
        changed.expires_at += 1;
        others.push(changed);
        let mut changed = decision.clone();
        changed.action = DecisionAction::Deny;
        others.push(changed);
        let tx = decision.tx.clone().unwrap();
        for altered in [
            ApprovedTx { value: tx.value + U256::from(1), ..tx.clone() },
            ApprovedTx { to: Address::repeat_byte(0x33), ..tx.clone() },
            ApprovedTx { chain_id: 1, ..tx.clone() },
            ApprovedTx { gas_limit_max: tx.gas_limit_max + 1, ..tx.clone() },
            ApprovedTx { max_fee_per_gas_max: tx.max_fee_per_gas_max + 1, ..tx.clone() },
            ApprovedTx { data_hash: keccak256(b"x"), ..tx.clone() },
        ] {
            others.push(OwnerDecision { tx: Some(altered), ..decision.clone() });
        }
        for other in others {
            assert_eq!(signature.verify(&other), Err(ApprovalError::BadSignature), "{}", other.message());
        }
    }

    #[test]
    fn non_owners_expired_decisions_and_malleated_signatures_are_refused() {
        let owner = OwnerSecret::generate_ed25519();
        let stranger = OwnerSecret::generate_ed25519();
        let decision = tx_decision("tx_one");
        let signature = stranger.sign(&decision).unwrap();
        assert!(matches!(signature.verify_owner(&decision, &[owner.public()], 0), Err(ApprovalError::NotAnOwner(_))));
        // A stranger's signature relabelled with the owner's key does not verify.
        let forged = OwnerSignature { key: owner.public(), ..signature };
        assert_eq!(forged.verify_owner(&decision, &[owner.public()], 0), Err(ApprovalError::BadSignature));
        let good = owner.sign(&decision).unwrap();
        assert_eq!(
            good.verify_owner(&decision, &[owner.public()], decision.expires_at + 1),
            Err(ApprovalError::Expired(decision.expires_at))
        );
        // EIP-191: the high-s twin of a valid signature is refused.
        let evm = OwnerSecret::evm_from_bytes(&[7; 32]).unwrap();
        let signed = evm.sign(&decision).unwrap();
        let sig = Signature::from_raw(&signed.signature).unwrap();
        let order =
            U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
        let twin = Signature::new(sig.r(), order - sig.s(), !sig.v());
        let twin = OwnerSignature { key: evm.public(), signature: twin.as_bytes().to_vec() };
        assert_eq!(twin.verify(&decision), Err(ApprovalError::BadSignature));
    }

    #[test]
    fn admits_only_the_approved_transaction_within_its_bounds() {
        let tx = tx_decision("tx").tx.unwrap();
        let value = 1_500_000_000_000_000_000u128;
        tx.admits(&unsigned(value, 21_000, 4_000_000_000, vec![])).unwrap();
        tx.admits(&unsigned(value, 21_000, 1_000_000_000, vec![])).unwrap();
        for (bad, why) in [
            (unsigned(value + 1, 21_000, 1, vec![]), "value"),
            (unsigned(value, 21_001, 1, vec![]), "gas limit"),
            (unsigned(value, 21_000, 4_000_000_001, vec![]), "max fee"),
            (unsigned(value, 21_000, 1, vec![0]), "calldata"),
        ] {
            let error = tx.admits(&bad).unwrap_err();
            assert!(error.to_string().contains(why), "{error}");
        }
    }

    #[test]
    fn malformed_texts_are_refused() {
        for bad in ["", "ed25519:zz", "evm:0x12", "rsa:00", "ed25519:00:11", "eip191:0x00:0x00"] {
            assert!(bad.parse::<OwnerSignature>().is_err(), "{bad}");
        }
        let mut decision = tx_decision("tx one\nfake: line");
        assert!(decision.validate().is_err());
        decision.item = "tx".into();
        decision.tx = None;
        assert!(decision.validate().is_err(), "approve without a transaction");
    }

    #[test]
    fn a_quorum_counts_distinct_listed_owners_whose_signature_verifies() {
        let (a, b, c) = (
            OwnerSecret::generate_ed25519(),
            OwnerSecret::evm_from_bytes(&[3; 32]).unwrap(),
            OwnerSecret::generate_ed25519(),
        );
        let stranger = OwnerSecret::generate_ed25519();
        let owners = [a.public(), b.public(), c.public()];
        let decision = tx_decision("tx_quorum");
        let sig = |secret: &OwnerSecret| secret.sign(&decision).unwrap();
        let with = |signatures: Vec<OwnerSignature>| SignedDecision { decision: decision.clone(), signatures };
        // One owner: enough for 1, "1 of 2" for 2.
        assert_eq!(with(vec![sig(&a)]).verify_quorum(&owners, 1, 0).unwrap(), vec![a.public()]);
        assert_eq!(
            with(vec![sig(&a)]).verify_quorum(&owners, 2, 0),
            Err(ApprovalError::QuorumNotMet { have: 1, need: 2 })
        );
        // The same owner twice counts once; a stranger and a forged signature count for nothing.
        let forged = OwnerSignature { key: c.public(), ..sig(&stranger) };
        let padded = with(vec![sig(&a), sig(&a), sig(&stranger), forged]);
        assert_eq!(padded.verify_quorum(&owners, 2, 0), Err(ApprovalError::QuorumNotMet { have: 1, need: 2 }));
        // Two distinct owners (one Ed25519, one EVM): 2 of 3 met, and it survives the wire.
        let two = with(vec![sig(&a), sig(&stranger), sig(&b)]);
        let decoded = SignedDecision::decode(&two.encode()).unwrap();
        assert_eq!(decoded.verify_quorum(&owners, 2, 0).unwrap(), vec![a.public(), b.public()]);
        assert_eq!(decoded.verify_quorum(&owners, 3, 0), Err(ApprovalError::QuorumNotMet { have: 2, need: 3 }));
        // Another party's list decides: with only `a` listed, the same bytes are 1 of 2.
        assert_eq!(decoded.verify_quorum(&[a.public()], 2, 0), Err(ApprovalError::QuorumNotMet { have: 1, need: 2 }));
        assert_eq!(
            decoded.verify_quorum(&owners, 2, decision.expires_at + 1),
            Err(ApprovalError::Expired(decision.expires_at))
        );
        // A lone signature keeps its own error (not an owner / bad signature).
        assert!(matches!(with(vec![sig(&stranger)]).verify_quorum(&owners, 1, 0), Err(ApprovalError::NotAnOwner(_))));
        // The single-signature wire form is the one from before quorums; zero or too many are refused.
        assert!(String::from_utf8(with(vec![sig(&a)]).encode()).unwrap().contains("\"signature\":"));
        assert!(SignedDecision::decode(&with(vec![]).encode()).is_err());
        assert!(SignedDecision::decode(&with(vec![sig(&a); MAX_QUORUM_SIGNATURES + 1]).encode()).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SignedDecision::decode(&bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = text.parse::<OwnerSignature>();
                let _ = text.parse::<OwnerKey>();
                let _ = OwnerSecret::from_file_text(text);
            }
        }

        #[test]
        fn signed_decisions_round_trip(item in "[a-z0-9_]{1,40}", expires in any::<u64>()) {
            let secret = OwnerSecret::generate_ed25519();
            let decision = OwnerDecision { item, expires_at: expires, ..tx_decision("x") };
            let signed = SignedDecision::single(decision.clone(), secret.sign(&decision).unwrap());
            let decoded = SignedDecision::decode(&signed.encode()).unwrap();
            prop_assert_eq!(&decoded, &signed);
            prop_assert!(decoded.signatures[0].verify(&decoded.decision).is_ok());
        }
    }

    fn ceremony() -> OwnerCeremony {
        use mandate_core::Role;
        OwnerCeremony {
            kind: CeremonyKind::Repair,
            id: "cer_1".into(),
            wallet: "wal_x".into(),
            address: Address::repeat_byte(0x42),
            participants: vec![Role::Service, Role::Cosigner, Role::Recovery],
            target: Some(Role::Recovery),
            payload: None,
            expires_at: 1_000,
        }
    }

    #[test]
    fn a_ceremony_verifies_only_for_its_exact_text_owner_and_time() {
        use mandate_core::Role;
        let owner = OwnerSecret::generate_ed25519();
        let stranger = OwnerSecret::generate_ed25519();
        let signed = SignedCeremony { signature: owner.sign_ceremony(&ceremony()).unwrap(), ceremony: ceremony() };
        let decoded = SignedCeremony::decode(&signed.encode()).unwrap();
        decoded.verify_owner(&[owner.public()], 900).unwrap();
        assert_eq!(
            decoded.verify_owner(&[stranger.public()], 900),
            Err(ApprovalError::NotAnOwner(owner.public().to_string()))
        );
        assert_eq!(decoded.verify_owner(&[owner.public()], 1_001), Err(ApprovalError::Expired(1_000)));
        // Too far ahead: a lifetime above the bound is refused even when fresh.
        let far = OwnerCeremony { expires_at: 900 + MAX_CEREMONY_LIFETIME_SECS + 1, ..ceremony() };
        let far = SignedCeremony { signature: owner.sign_ceremony(&far).unwrap(), ceremony: far };
        assert!(matches!(far.verify_owner(&[owner.public()], 900), Err(ApprovalError::Malformed(_))));
        for changed in [
            OwnerCeremony { target: Some(Role::Service), ..ceremony() },
            OwnerCeremony { kind: CeremonyKind::Refresh, target: None, ..ceremony() },
            OwnerCeremony { address: Address::repeat_byte(0x43), ..ceremony() },
            OwnerCeremony { id: "cer_2".into(), ..ceremony() },
            OwnerCeremony { expires_at: 1_001, ..ceremony() },
        ] {
            let forged = SignedCeremony { ceremony: changed, signature: signed.signature.clone() };
            assert_eq!(forged.verify_owner(&[owner.public()], 900), Err(ApprovalError::BadSignature));
        }
        // An EVM owner, too; and the ceremony text is never an owner decision's text.
        let evm = OwnerSecret::evm_from_bytes(&[7; 32]).unwrap();
        let signed = SignedCeremony { signature: evm.sign_ceremony(&ceremony()).unwrap(), ceremony: ceremony() };
        signed.verify_owner(&[evm.public()], 900).unwrap();
        assert!(ceremony().message().starts_with("Mandate owner ceremony v1\n"));
        // Shapes that do not fit the kind are refused before any signature check.
        let bad = OwnerCeremony { participants: vec![Role::Service, Role::Recovery], ..ceremony() };
        assert!(bad.validate().is_err());
        let unsorted =
            OwnerCeremony { participants: vec![Role::Recovery, Role::Service, Role::Cosigner], ..ceremony() };
        assert!(unsorted.validate().is_err());
    }
}
