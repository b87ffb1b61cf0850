//! Secrets the daemon must keep readable to itself (webhook signing secrets), sealed
//! at rest: XChaCha20-Poly1305 under a key derived once at start-up from the master
//! password with Argon2id (64 MiB, t=3, p=4) and a random salt kept in the database.
//! A reader of the data directory or a backup sees only ciphertext; the key exists
//! only in the running daemon's memory. Each sealed value is bound to its row's id
//! (associated data), so a sealed secret moved to another row does not open.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};
use mandate_store::Store;

/// Prefix of a sealed value (format version 1): `sealed:v1:<hex nonce>:<hex ciphertext>`.
const SEALED_V1: &str = "sealed:v1:";

/// The sealing key, derived from the master password.
pub(crate) struct SecretSealer {
    key: Zeroizing<[u8; 32]>,
}

impl SecretSealer {
    /// Derives the key from `password` and `salt` (Argon2id: deliberately slow, run once).
    pub(crate) fn derive(password: &[u8], salt: &[u8]) -> ApiResult<Self> {
        let params = Params::new(64 * 1024, 3, 4, Some(32)).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, salt, key.as_mut())
            .map_err(|e| ApiError::internal(format!("deriving the sealing key: {e}")))?;
        Ok(SecretSealer { key })
    }

    /// Seals `secret` for the row `id`.
    pub(crate) fn seal(&self, id: &str, secret: &str) -> ApiResult<String> {
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let nonce: [u8; 24] = rand::random();
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: id.as_bytes() })
            .map_err(|_| ApiError::internal("sealing a secret failed"))?;
        Ok(format!("{SEALED_V1}{}:{}", hex::encode(nonce), hex::encode(sealed)))
    }

    /// Opens what [`SecretSealer::seal`] made for the row `id`.
    pub(crate) fn open(&self, id: &str, sealed: &str) -> ApiResult<Zeroizing<String>> {
        let broken = || ApiError::internal(format!("the sealed secret of {id} does not open"));
        let rest = sealed.strip_prefix(SEALED_V1).ok_or_else(broken)?;
        let (nonce, ciphertext) = rest.split_once(':').ok_or_else(broken)?;
        let nonce = hex::decode(nonce).ok().filter(|n| n.len() == 24).ok_or_else(broken)?;
        let ciphertext = hex::decode(ciphertext).map_err(|_| broken())?;
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let plain = cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: id.as_bytes() })
            .map_err(|_| broken())?;
        String::from_utf8(plain).map(Zeroizing::new).map_err(|_| broken())
    }

    /// Whether `stored` is sealed (an older daemon stored secrets in the clear).
    pub(crate) fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_V1)
    }
}

/// The meta key holding the salt of the secret-sealing key.
const SEAL_SALT: &str = "secret_seal_salt";

/// Derives the key that seals secrets at rest (once, Argon2id) and seals any webhook
/// secret an older daemon stored in the clear. Blocking.
pub(crate) fn open_sealer(store: &Store, password: &[u8]) -> ApiResult<SecretSealer> {
    let salt = match store.meta(SEAL_SALT)? {
        Some(salt) => hex::decode(salt).map_err(|_| ApiError::internal("the stored sealing salt is not hex"))?,
        None => {
            let salt: [u8; 16] = rand::random();
            store.set_meta(SEAL_SALT, &hex::encode(salt))?;
            salt.to_vec()
        }
    };
    let sealer = SecretSealer::derive(password, &salt)?;
    for (id, stored) in store.webhook_secrets()? {
        if !SecretSealer::is_sealed(&stored) {
            store.set_webhook_secret(&id, &sealer.seal(&id, &stored)?)?;
        }
    }
    Ok(sealer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_key_and_for_their_row() {
        let sealer = SecretSealer::derive(b"correct horse battery staple", &[7; 16]).unwrap();
        let sealed = sealer.seal("whk_1", "whsec_abc").unwrap();
        assert!(SecretSealer::is_sealed(&sealed) && !sealed.contains("whsec_abc"));
        assert_eq!(sealer.open("whk_1", &sealed).unwrap().as_str(), "whsec_abc");
        assert!(sealer.open("whk_2", &sealed).is_err(), "moved to another row");
        let other = SecretSealer::derive(b"another password entirely", &[7; 16]).unwrap();
        assert!(other.open("whk_1", &sealed).is_err(), "another master password");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert!(sealer.open("whk_1", &String::from_utf8(flipped).unwrap()).is_err(), "altered");
        assert!(sealer.open("whk_1", "whsec_abc").is_err(), "not sealed");
    }
}
