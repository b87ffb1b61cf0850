//! Signed agent requests (docs/AGENTS.md), the part every party shares: the EIP-712
//! digest an agent signs for one request ([`request_digest`]), the agent's key
//! ([`AgentKey`]), recovering the signer ([`recover_agent`]) and the per-agent nonce
//! window ([`NonceWindow`]). Nonces are milliseconds since the epoch, kept per agent as
//! exchanges do: the [`NONCE_WINDOW`] highest seen are held; a nonce is accepted only
//! if it is not among them, is above the smallest when the window is full, and lies
//! within two days before and one day after the server's clock.

use std::collections::BTreeSet;

use alloy_primitives::{keccak256, Address, Signature, B256};

/// How many of an agent's highest nonces are kept.
pub const NONCE_WINDOW: usize = 100;
/// How far a nonce may lie before the server's clock (ms): two days.
pub const NONCE_MAX_AGE_MS: u64 = 2 * 24 * 3600 * 1000;
/// How far a nonce may lie after the server's clock (ms): one day.
pub const NONCE_MAX_AHEAD_MS: u64 = 24 * 3600 * 1000;

/// A malformed agent key file, or a signature that does not recover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AgentKeyError(pub String);

/// The EIP-712 domain separator of agent requests: `EIP712Domain(string name,string version)`
/// with name `Mandate` and version `1`.
fn domain_separator() -> B256 {
    let type_hash = keccak256("EIP712Domain(string name,string version)");
    keccak256([type_hash.as_slice(), keccak256("Mandate").as_slice(), keccak256("1").as_slice()].concat())
}

/// The EIP-712 type of a signed request.
pub const REQUEST_TYPE: &str = "AgentRequest(string method,string path,bytes32 bodyHash,string wallet,uint64 nonce)";

/// The digest an agent signs for one request: EIP-712 over
/// `AgentRequest(method, path (with query), SHA-256 of the body, wallet, nonce)`.
pub fn request_digest(method: &str, path: &str, body: &[u8], wallet: &str, nonce: u64) -> B256 {
    use sha2::Digest;
    let body_hash: [u8; 32] = sha2::Sha256::digest(body).into();
    let mut nonce_word = [0u8; 32];
    nonce_word[24..].copy_from_slice(&nonce.to_be_bytes());
    let struct_hash = keccak256(
        [
            keccak256(REQUEST_TYPE).as_slice(),
            keccak256(method.as_bytes()).as_slice(),
            keccak256(path.as_bytes()).as_slice(),
            &body_hash,
            keccak256(wallet.as_bytes()).as_slice(),
            &nonce_word,
        ]
        .concat(),
    );
    keccak256([&[0x19u8, 0x01][..], domain_separator().as_slice(), struct_hash.as_slice()].concat())
}

/// The address that signed `digest` with `signature` (65 bytes r‖s‖v, low s only).
pub fn recover_agent(digest: &B256, signature: &[u8]) -> Result<Address, AgentKeyError> {
    let signature = Signature::from_raw(signature)
        .map_err(|_| AgentKeyError("the signature does not recover an address".into()))?;
    if signature.normalize_s().is_some() {
        return Err(AgentKeyError("the signature does not recover an address".into()));
    }
    signature
        .recover_address_from_prehash(digest)
        .map_err(|_| AgentKeyError("the signature does not recover an address".into()))
}

/// An agent's secp256k1 key (`mandate agent keygen`): it signs requests, never leaves
/// the agent's process, and never appears in `Debug` output.
pub struct AgentKey {
    key: k256::ecdsa::SigningKey,
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentKey").field("address", &self.address()).finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentKeyFile {
    kind: String,
    secret: String,
}

impl AgentKey {
    /// A new random key.
    pub fn generate() -> AgentKey {
        AgentKey { key: k256::ecdsa::SigningKey::random(&mut rand_core::OsRng) }
    }

    /// The agent's address.
    pub fn address(&self) -> Address {
        Address::from_public_key(self.key.verifying_key())
    }

    /// The key file's text, `{"kind":"agent-secp256k1","secret":"<hex>"}` (write it 0600).
    pub fn to_file_text(&self) -> zeroize::Zeroizing<String> {
        let secret = zeroize::Zeroizing::new(hex::encode(self.key.to_bytes()));
        zeroize::Zeroizing::new(format!("{{\"kind\":\"agent-secp256k1\",\"secret\":\"{}\"}}\n", secret.as_str()))
    }

    /// Parses a key file's text.
    pub fn from_file_text(text: &str) -> Result<AgentKey, AgentKeyError> {
        let file: AgentKeyFile = serde_json::from_str(text)
            .map_err(|_| AgentKeyError("not an agent key file (JSON with kind and secret)".into()))?;
        if file.kind != "agent-secp256k1" {
            return Err(AgentKeyError(format!("not an agent key file (kind {:?})", file.kind)));
        }
        let secret = zeroize::Zeroizing::new(
            hex::decode(file.secret.trim()).map_err(|_| AgentKeyError("the secret is not hex".into()))?,
        );
        let key = k256::ecdsa::SigningKey::from_slice(&secret)
            .map_err(|_| AgentKeyError("not a valid secp256k1 secret".into()))?;
        Ok(AgentKey { key })
    }

    /// The `Mandate-Agent-Signature` value (`0x` + r‖s‖v) for a request.
    pub fn sign_request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        wallet: &str,
        nonce: u64,
    ) -> Result<String, AgentKeyError> {
        let digest = request_digest(method, path, body, wallet, nonce);
        let (sig, recovery) = self
            .key
            .sign_prehash_recoverable(digest.as_slice())
            .map_err(|e| AgentKeyError(format!("signing failed: {e}")))?;
        let (sig, recovery) = match sig.normalize_s() {
            Some(low) => (low, k256::ecdsa::RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced())),
            None => (sig, recovery),
        };
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        Ok(format!("0x{}", hex::encode(bytes)))
    }
}

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRefusal {
    /// Seen before (among the kept ones): a replay.
    Replayed,
    /// Not above the smallest of a full window: too old to tell from a replay.
    BelowWindow,
    /// More than two days before or one day after the server's clock.
    OutOfTime,
}

/// An agent's highest nonces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonceWindow {
    kept: BTreeSet<u64>,
}

impl NonceWindow {
    /// The window holding `nonces` (the highest [`NONCE_WINDOW`] of them).
    pub fn new(nonces: impl IntoIterator<Item = u64>) -> NonceWindow {
        let mut window = NonceWindow { kept: nonces.into_iter().collect() };
        window.trim();
        window
    }

    /// The nonces kept, ascending.
    pub fn kept(&self) -> impl Iterator<Item = u64> + '_ {
        self.kept.iter().copied()
    }

    fn trim(&mut self) {
        while self.kept.len() > NONCE_WINDOW {
            self.kept.pop_first();
        }
    }

    /// Accepts `nonce` at `now_ms` (and keeps it) or says why not (and changes nothing).
    pub fn accept(&mut self, nonce: u64, now_ms: u64) -> Result<(), NonceRefusal> {
        if nonce < now_ms.saturating_sub(NONCE_MAX_AGE_MS) || nonce > now_ms.saturating_add(NONCE_MAX_AHEAD_MS) {
            return Err(NonceRefusal::OutOfTime);
        }
        if self.kept.contains(&nonce) {
            return Err(NonceRefusal::Replayed);
        }
        if self.kept.len() >= NONCE_WINDOW && self.kept.first().is_some_and(|smallest| nonce <= *smallest) {
            return Err(NonceRefusal::BelowWindow);
        }
        self.kept.insert(nonce);
        self.trim();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn replays_old_and_far_nonces_get_distinct_refusals() {
        let mut window = NonceWindow::default();
        assert_eq!(window.accept(NOW, NOW), Ok(()));
        assert_eq!(window.accept(NOW, NOW), Err(NonceRefusal::Replayed));
        assert_eq!(window.accept(NOW - NONCE_MAX_AGE_MS - 1, NOW), Err(NonceRefusal::OutOfTime));
        assert_eq!(window.accept(NOW + NONCE_MAX_AHEAD_MS + 1, NOW), Err(NonceRefusal::OutOfTime));
        assert_eq!(window.accept(NOW - NONCE_MAX_AGE_MS, NOW), Ok(()), "the edge of two days is inside");
        for n in 1..=NONCE_WINDOW as u64 {
            window.accept(NOW + n, NOW).unwrap();
        }
        // Full: the smallest kept is NOW + 1; anything not above it is too old to judge.
        assert_eq!(window.kept().count(), NONCE_WINDOW);
        assert_eq!(window.accept(NOW, NOW), Err(NonceRefusal::BelowWindow), "the 101st oldest");
        assert_eq!(window.accept(NOW + 1, NOW), Err(NonceRefusal::Replayed));
        assert_eq!(window.accept(NOW + 1000, NOW), Ok(()));
        assert_eq!(window.kept().next(), Some(NOW + 2), "the smallest fell out");
    }

    #[test]
    fn the_request_digest_binds_every_field() {
        let base = request_digest("POST", "/v1/wallets/wal_a/transactions", b"{}", "wal_a", 7);
        assert_ne!(base, request_digest("GET", "/v1/wallets/wal_a/transactions", b"{}", "wal_a", 7));
        assert_ne!(base, request_digest("POST", "/v1/wallets/wal_b/transactions", b"{}", "wal_a", 7));
        assert_ne!(base, request_digest("POST", "/v1/wallets/wal_a/transactions", b"{ }", "wal_a", 7));
        assert_ne!(base, request_digest("POST", "/v1/wallets/wal_a/transactions", b"{}", "wal_b", 7));
        assert_ne!(base, request_digest("POST", "/v1/wallets/wal_a/transactions", b"{}", "wal_a", 8));
    }

    #[test]
    fn an_agent_key_file_round_trips_and_its_signatures_recover_it() {
        let key = AgentKey::generate();
        let again = AgentKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(again.address(), key.address());
        assert!(!format!("{key:?}").contains(&hex::encode(key.key.to_bytes())), "no secret in Debug");
        for nonce in 0..20u64 {
            let signature = key.sign_request("POST", "/v1/x?y=1", b"{}", "wal_a", nonce).unwrap();
            let raw = hex::decode(signature.trim_start_matches("0x")).unwrap();
            let digest = request_digest("POST", "/v1/x?y=1", b"{}", "wal_a", nonce);
            assert_eq!(recover_agent(&digest, &raw).unwrap(), key.address());
        }
        assert!(
            AgentKey::from_file_text(r#"{"kind":"secp256k1","secret":"00"}"#).is_err(),
            "an owner key is not an agent key"
        );
    }

    proptest! {
        /// Whatever the order, a nonce is accepted at most once, the window never
        /// holds more than its size, and a refusal changes nothing.
        #[test]
        fn a_nonce_is_accepted_at_most_once(offsets in proptest::collection::vec(0u64..300, 1..400)) {
            let mut window = NonceWindow::default();
            let mut accepted = BTreeSet::new();
            for offset in offsets {
                let nonce = NOW + offset;
                let before = window.clone();
                match window.accept(nonce, NOW) {
                    Ok(()) => prop_assert!(accepted.insert(nonce), "accepted twice: {nonce}"),
                    Err(_) => prop_assert_eq!(&window, &before),
                }
                prop_assert!(window.kept().count() <= NONCE_WINDOW);
            }
        }

        /// Signatures recover the signer, and only for the digest signed.
        #[test]
        fn a_signature_recovers_its_agent(seed in any::<[u8; 32]>(), nonce in any::<u64>()) {
            let Ok(key) = k256::ecdsa::SigningKey::from_slice(&seed) else { return Ok(()) };
            let agent = Address::from_public_key(key.verifying_key());
            let digest = request_digest("POST", "/v1/x", b"body", "wal_a", nonce);
            let (sig, recovery) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
            let sig = sig.normalize_s().unwrap_or(sig);
            let recovery = k256::ecdsa::RecoveryId::trial_recovery_from_prehash(key.verifying_key(), digest.as_slice(), &sig).unwrap_or(recovery);
            let mut raw = sig.to_bytes().to_vec();
            raw.push(27 + recovery.to_byte());
            prop_assert_eq!(recover_agent(&digest, &raw).unwrap(), agent);
            let other = request_digest("POST", "/v1/x", b"body!", "wal_a", nonce);
            prop_assert_ne!(recover_agent(&other, &raw).ok(), Some(agent));
        }
    }
}
