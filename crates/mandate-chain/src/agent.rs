//! Agent keys: an agent holds its own secp256k1 key instead of a bearer secret.
//!
//! - An owner registers the agent's address for a wallet by signing the
//!   registration's canonical text ([`AgentRegistration::message`]) with an owner key
//!   (Ed25519, a passkey, or EIP-191 for an EVM owner), as owners sign approvals; an
//!   EVM owner may instead sign the same fields as EIP-712 typed data
//!   ([`AgentRegistration::typed_data`], what `eth_signTypedData_v4` shows a wallet user).
//! - The agent signs every request: the EIP-712 digest of `mandate_core::agent`
//!   (re-exported here), sent in the `Mandate-Agent`, `Mandate-Agent-Nonce` and
//!   `Mandate-Agent-Signature` headers. The secret never crosses the wire.

use std::collections::BTreeSet;

use alloy_primitives::{keccak256, Address, Signature, B256, U256};
pub use mandate_core::agent::*;

use mandate_core::policy::Policy;

use crate::approval::{ApprovalError, OwnerKey, OwnerSignature};

/// The name that marks a wallet's session agent (at most one, it must expire).
pub const SESSION_AGENT: &str = "session";
/// Named agents a wallet may have at once.
pub const MAX_NAMED_AGENTS: usize = 3;

/// An owner's authorisation of an agent key for one wallet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRegistration {
    /// The wallet (`wal_…`).
    pub wallet: String,
    /// The agent's address (its secp256k1 key).
    pub agent: Address,
    /// The agent's name, or `session` for the wallet's one session agent.
    pub name: String,
    /// What it may do: the session scopes (`read`, `prepare`, `sign`, `broadcast`, `freeze`).
    pub scopes: Vec<String>,
    /// Unix seconds after which it stops working.
    pub valid_until: u64,
    /// A number the owner picks, so that two registrations never share a text.
    pub nonce: u64,
    /// The agent's own policy (docs/POLICY.md), evaluated together with the wallet's:
    /// both must allow, so it can only narrow what the agent may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

impl AgentRegistration {
    /// The text the owner signs, one field per line, nothing left out (the policy by
    /// its hash, `none` without one).
    pub fn message(&self) -> String {
        let policy = self.policy_text();
        format!(
            "Mandate agent registration\nwallet: {}\nagent: {}\nname: {}\nscopes: {}\npolicy: {policy}\nvalid until: {}\nnonce: {}",
            self.wallet,
            self.agent.to_checksum(None),
            self.name,
            self.scopes.join(","),
            self.valid_until,
            self.nonce
        )
    }

    /// The registration as EIP-712 typed data (`eth_signTypedData_v4` JSON): domain
    /// `{name: "Mandate", version: "1"}` (no chain: a registration is for a wallet on
    /// every chain), primary type `AgentRegistration` with the fields of
    /// [`AgentRegistration::message`] (scopes comma-joined, the policy by its hash or
    /// `none`).
    pub fn typed_data(&self) -> serde_json::Value {
        serde_json::json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
                "AgentRegistration": [
                    {"name": "wallet", "type": "string"}, {"name": "agent", "type": "address"},
                    {"name": "name", "type": "string"}, {"name": "scopes", "type": "string"},
                    {"name": "policy", "type": "string"}, {"name": "validUntil", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"}
                ]
            },
            "primaryType": "AgentRegistration",
            "domain": {"name": "Mandate", "version": "1"},
            "message": {"wallet": self.wallet, "agent": self.agent.to_checksum(None), "name": self.name,
                        "scopes": self.scopes.join(","), "policy": self.policy_text(),
                        "validUntil": self.valid_until.to_string(), "nonce": self.nonce.to_string()},
        })
    }

    /// The EIP-712 digest of [`AgentRegistration::typed_data`].
    pub fn eip712_digest(&self) -> B256 {
        let string = |text: &str| keccak256(text.as_bytes());
        let word = |value: U256| B256::from(value.to_be_bytes::<32>());
        let domain_type = string("EIP712Domain(string name,string version)");
        let domain = keccak256([domain_type, string("Mandate"), string("1")].concat());
        let struct_type = string(
            "AgentRegistration(string wallet,address agent,string name,string scopes,string policy,uint256 validUntil,uint256 nonce)",
        );
        let fields = [
            struct_type,
            string(&self.wallet),
            self.agent.into_word(),
            string(&self.name),
            string(&self.scopes.join(",")),
            string(&self.policy_text()),
            word(U256::from(self.valid_until)),
            word(U256::from(self.nonce)),
        ];
        let struct_hash = keccak256(fields.concat());
        keccak256([&[0x19u8, 0x01][..], domain.as_slice(), struct_hash.as_slice()].concat())
    }

    fn policy_text(&self) -> String {
        self.policy().ok().flatten().map_or_else(|| "none".to_string(), |p| p.hash)
    }

    /// The agent's own policy, parsed (`None` without one).
    pub fn policy(&self) -> Result<Option<Policy>, ApprovalError> {
        self.policy
            .as_ref()
            .map(|document| {
                Policy::parse(&document.to_string())
                    .map_err(|e| ApprovalError::Malformed(format!("the agent's policy: {e}")))
            })
            .transpose()
    }

    /// Well-formed: printable short wallet and name, known scopes, no duplicates.
    pub fn validate(&self) -> Result<(), ApprovalError> {
        let printable = |text: &str| {
            !text.is_empty()
                && text.len() <= 64
                && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !printable(&self.wallet) || !printable(&self.name) {
            return Err(ApprovalError::Malformed("wallet and name: 1 to 64 letters, digits, '_' or '-'".into()));
        }
        let known = ["read", "prepare", "sign", "broadcast", "freeze"];
        if self.scopes.is_empty() || self.scopes.iter().any(|s| !known.contains(&s.as_str())) {
            return Err(ApprovalError::Malformed(format!("scopes: one or more of {}", known.join(", "))));
        }
        let unique: BTreeSet<&String> = self.scopes.iter().collect();
        if unique.len() != self.scopes.len() {
            return Err(ApprovalError::Malformed("scopes: each at most once".into()));
        }
        self.policy()?;
        Ok(())
    }

    /// Verifies every signature (each by one of `owners`, over this registration, still
    /// valid at `now`) and that at least `threshold` distinct owners signed: a wallet
    /// with an owner quorum needs that many for an agent. Returns how many signed.
    pub fn verify_quorum(
        &self,
        signatures: &[OwnerSignature],
        owners: &[OwnerKey],
        now: u64,
        threshold: usize,
    ) -> Result<usize, ApprovalError> {
        let mut signers: Vec<&OwnerKey> = Vec::new();
        for signature in signatures {
            self.verify_owner(signature, owners, now)?;
            if !signers.contains(&&signature.key) {
                signers.push(&signature.key);
            }
        }
        if signers.len() < threshold.max(1) {
            return Err(ApprovalError::Mismatch(format!(
                "{} of the {} owner signatures this wallet needs for an agent",
                signers.len(),
                threshold.max(1)
            )));
        }
        Ok(signers.len())
    }

    /// Verifies that one of `owners` signed this registration and that it is still
    /// valid at `now` (unix seconds).
    pub fn verify_owner(&self, signature: &OwnerSignature, owners: &[OwnerKey], now: u64) -> Result<(), ApprovalError> {
        self.validate()?;
        if !owners.contains(&signature.key) {
            return Err(ApprovalError::NotAnOwner(signature.key.to_string()));
        }
        if now >= self.valid_until {
            return Err(ApprovalError::Expired(self.valid_until));
        }
        match (signature.verify_message(&self.message()), &signature.key) {
            (Ok(()), _) => Ok(()),
            // An EVM owner may have signed the EIP-712 form instead of the text.
            (Err(text_error), OwnerKey::Evm(address)) => {
                let parsed = Signature::from_raw(&signature.signature).map_err(|_| ApprovalError::BadSignature)?;
                let low_s = parsed.normalize_s().is_none();
                match parsed.recover_address_from_prehash(&self.eip712_digest()) {
                    Ok(recovered) if low_s && recovered == *address => Ok(()),
                    _ => Err(text_error),
                }
            }
            (Err(error), _) => Err(error),
        }
    }
}

/// The largest signed request the cosigner is shown (bytes of its JSON).
pub const MAX_PROOF_BYTES: usize = 32 * 1024;

/// An agent's signed request as the daemon received it: what the cosigner needs to
/// recompute its digest and recover the agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path with its query, as sent.
    pub path: String,
    /// The body, as sent (UTF-8 JSON, or empty).
    pub body: String,
    /// The request's nonce (milliseconds).
    pub nonce: u64,
    /// `0x` + r‖s‖v.
    pub signature: String,
}

/// What the daemon shows the cosigner with a signing run it does for an agent key:
/// the owner-signed registration and the agent's own signed request. The cosigner
/// verifies both itself ([`AgentProof::verify_transaction`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProof {
    /// The registration as the owner signed it.
    pub registration: AgentRegistration,
    /// The owner's signature over it.
    pub owner_signature: OwnerSignature,
    /// Further owners' signatures over it, where the wallet needs a quorum of owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub further_signatures: Vec<OwnerSignature>,
    /// The agent's signed request.
    pub request: SignedRequest,
}

fn refused(why: impl Into<String>) -> ApprovalError {
    ApprovalError::Mismatch(why.into())
}

impl AgentProof {
    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses untrusted bytes (at most [`MAX_PROOF_BYTES`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, ApprovalError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ApprovalError::Malformed(format!("an agent proof larger than {MAX_PROOF_BYTES} bytes")));
        }
        serde_json::from_slice(bytes).map_err(|e| ApprovalError::Malformed(format!("agent proof does not parse: {e}")))
    }

    /// Verifies, for a transaction of `wallet`: one of `owners` signed the
    /// registration (for this wallet, not expired at `now`, unix seconds) with the
    /// `broadcast` scope; the request's signature recovers the registered agent; its
    /// nonce lies within the window around `now`; and its body asks for this
    /// transaction: the recipient, the value and (when the body names one) the chain.
    /// A native transfer is matched exactly; an ERC-20 transfer by token contract (when
    /// given as an address) and recipient; a contract call by target, value and
    /// calldata (when given as `data`).
    pub fn verify_transaction(
        &self,
        wallet: &str,
        owners: &[OwnerKey],
        threshold: usize,
        now: u64,
        tx: &crate::UnsignedTx,
    ) -> Result<(), ApprovalError> {
        let registration = &self.registration;
        if registration.wallet != wallet {
            return Err(refused(format!("the registration is for {}, not {wallet}", registration.wallet)));
        }
        let signatures: Vec<OwnerSignature> =
            std::iter::once(self.owner_signature.clone()).chain(self.further_signatures.iter().cloned()).collect();
        registration.verify_quorum(&signatures, owners, now, threshold)?;
        if !registration.scopes.iter().any(|scope| scope == "broadcast") {
            return Err(refused("the agent's registration has no broadcast scope"));
        }
        let request = &self.request;
        let signature = hex::decode(request.signature.trim_start_matches("0x"))
            .map_err(|_| refused("the agent's request signature is not hex"))?;
        let digest = request_digest(&request.method, &request.path, request.body.as_bytes(), wallet, request.nonce);
        if recover_agent(&digest, &signature).ok() != Some(registration.agent) {
            return Err(refused("the agent's signature does not recover the registered agent for this request"));
        }
        let now_ms = now.saturating_mul(1000);
        if request.nonce < now_ms.saturating_sub(NONCE_MAX_AGE_MS) || request.nonce > now_ms + NONCE_MAX_AHEAD_MS {
            return Err(refused("the agent's request is too old or too far ahead"));
        }
        if request.method != "POST" {
            return Err(refused("the agent's request is not a POST"));
        }
        let body: serde_json::Value =
            serde_json::from_str(&request.body).map_err(|_| refused("the agent's request body is not JSON"))?;
        body_matches(&request.path, wallet, &body, tx)
    }
}

/// Whether an agent's request (`path`, JSON `body`) asks for `tx`.
fn body_matches(
    path: &str,
    wallet: &str,
    body: &serde_json::Value,
    tx: &crate::UnsignedTx,
) -> Result<(), ApprovalError> {
    use alloy_primitives::U256;
    let text = |field: &str| body.get(field).and_then(serde_json::Value::as_str);
    let address = |field: &str| -> Result<Address, ApprovalError> {
        text(field)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| refused(format!("the request's {field} is not an address")))
    };
    let amount = |whole: &str, base: &str, decimals: u8| -> Result<Option<U256>, ApprovalError> {
        match (text(whole), text(base)) {
            (Some(t), None) => mandate_core::amount::parse_units(t, decimals)
                .map(Some)
                .map_err(|_| refused(format!("the request's {whole} is not an amount"))),
            (None, Some(t)) => U256::from_str_radix(t, 10)
                .map(Some)
                .map_err(|_| refused(format!("the request's {base} is not a number"))),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(refused(format!("the request gives both {whole} and {base}"))),
        }
    };
    if let Some(chain) = body.get("chain_id").and_then(serde_json::Value::as_u64) {
        if chain != tx.chain_id() {
            return Err(refused(format!("the request is for chain {chain}, the transaction for {}", tx.chain_id())));
        }
    }
    let mismatch = |what: &str| Err(refused(format!("the transaction's {what} is not what the agent asked for")));
    if path == format!("/v1/wallets/{wallet}/transactions") {
        let to = address("to")?;
        match text("token") {
            None => {
                if tx.to() != Some(to) {
                    return mismatch("recipient");
                }
                if amount("amount", "amount_wei", 18)? != Some(tx.value()) {
                    return mismatch("value");
                }
                if !tx.input().is_empty() {
                    return mismatch("calldata");
                }
            }
            Some(token) => {
                // transfer(address,uint256): the recipient is the first argument.
                let input = tx.input();
                let recipient = input.get(16..36).map(Address::from_slice);
                if input.get(..4) != Some(&[0xa9, 0x05, 0x9c, 0xbb][..]) || recipient != Some(to) {
                    return mismatch("recipient");
                }
                if !tx.value().is_zero() {
                    return mismatch("value");
                }
                if let Ok(contract) = token.parse::<Address>() {
                    if tx.to() != Some(contract) {
                        return mismatch("token contract");
                    }
                }
            }
        }
        return Ok(());
    }
    if path == format!("/v1/wallets/{wallet}/contract-calls") {
        if tx.to() != Some(address("to")?) {
            return mismatch("target");
        }
        if amount("value", "value_wei", 18)?.unwrap_or_default() != tx.value() {
            return mismatch("value");
        }
        if let Some(data) = text("data") {
            let data =
                hex::decode(data.trim_start_matches("0x")).map_err(|_| refused("the request's data is not hex"))?;
            if data != tx.input() {
                return mismatch("calldata");
            }
        }
        return Ok(());
    }
    Err(refused(format!("the agent's request ({path}) does not ask for a transaction")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn registration(agent: Address) -> AgentRegistration {
        AgentRegistration {
            wallet: "wal_0123456789abcdef01234567".into(),
            agent,
            name: "bot".into(),
            scopes: vec!["read".into(), "broadcast".into()],
            valid_until: 2_000,
            nonce: 7,
            policy: None,
        }
    }

    fn sign(key: &SigningKey, digest: B256) -> Vec<u8> {
        let (signature, recovery) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        bytes
    }

    #[test]
    fn an_evm_owner_may_sign_the_eip712_form_and_its_digest_is_the_typed_datas() {
        let owner_key = SigningKey::random(&mut rand_core::OsRng);
        let owner = Address::from_public_key(owner_key.verifying_key());
        let registration = registration(Address::repeat_byte(0x42));
        // The digest is what a wallet computes from the typed data it shows.
        let parsed = mandate_core::decode::parse_typed_data(&registration.typed_data()).unwrap();
        assert_eq!(parsed.signing_hash, registration.eip712_digest());
        let owners = [OwnerKey::Evm(owner)];
        let signed =
            OwnerSignature { key: OwnerKey::Evm(owner), signature: sign(&owner_key, registration.eip712_digest()) };
        registration.verify_owner(&signed, &owners, 1_000).unwrap();
        // Any field changed after signing: refused.
        let mut other = registration.clone();
        other.scopes.push("sign".into());
        assert!(other.verify_owner(&signed, &owners, 1_000).is_err());
        let other = AgentRegistration { nonce: 8, ..registration.clone() };
        assert!(other.verify_owner(&signed, &owners, 1_000).is_err());
        // Another key's signature over the same digest: refused.
        let stranger = SigningKey::random(&mut rand_core::OsRng);
        let forged =
            OwnerSignature { key: OwnerKey::Evm(owner), signature: sign(&stranger, registration.eip712_digest()) };
        assert!(registration.verify_owner(&forged, &owners, 1_000).is_err());
    }
}
