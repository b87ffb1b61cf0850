//! Random bearer tokens: made with a prefix, kept only as their SHA-256, and the
//! operator's short-lived login tokens in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// Prefix of operator tokens.
pub(crate) const ADMIN_TOKEN_PREFIX: &str = "mnd_admin_";
/// Lifetime of an operator token.
pub(crate) const ADMIN_TOKEN_TTL_SECS: u64 = 15 * 60;

/// A new random token with `prefix`, and its hash.
pub(crate) fn new_token(prefix: &str) -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token, hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Operator tokens in memory: hash → expiry.
#[derive(Default)]
pub(crate) struct AdminTokens(Mutex<HashMap<String, u64>>);

impl AdminTokens {
    pub(crate) fn issue(&self, now: u64) -> ApiResult<(String, u64)> {
        let (token, hash) = new_token(ADMIN_TOKEN_PREFIX);
        let expires_at = now + ADMIN_TOKEN_TTL_SECS;
        let mut tokens = self.0.lock().map_err(|_| ApiError::internal("token table poisoned"))?;
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(hash, expires_at);
        Ok((token, expires_at))
    }

    pub(crate) fn valid(&self, token: &str, now: u64) -> ApiResult<bool> {
        let tokens = self.0.lock().map_err(|_| ApiError::internal("token table poisoned"))?;
        Ok(tokens.get(&token_hash(token)).is_some_and(|expiry| *expiry > now))
    }
}
