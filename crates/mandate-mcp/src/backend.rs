//! How tools reach the daemon: one REST call per tool call, made with the agent's own
//! session token. The stdio server implements [`Backend`] with an HTTP client; the
//! daemon's `/mcp` with its own router, in-process.

use std::fmt;
use std::future::Future;

use serde_json::Value;
use zeroize::Zeroizing;

/// An agent's session token. Never shown: `Debug` is redacted, and it only ever
/// leaves in an `Authorization: Bearer` header.
#[derive(Clone)]
pub struct Credential(Zeroizing<String>);

impl Credential {
    /// Wraps a token (`mnd_sess_…`).
    pub fn new(token: impl Into<String>) -> Credential {
        Credential(Zeroizing::new(token.into()))
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("Bearer {}", self.0.as_str()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// One REST request.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCall {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query, e.g. `/v1/wallets/w_…/balance?token=TST`.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
}

impl RestCall {
    /// A `GET`.
    pub fn get(path: String) -> RestCall {
        RestCall { method: "GET", path, body: None, idempotency_key: None }
    }

    /// A `POST` with a JSON body.
    pub fn post(path: String, body: Value) -> RestCall {
        RestCall { method: "POST", path, body: Some(body), idempotency_key: None }
    }
}

/// Why a REST call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum RestFailure {
    /// The daemon answered with its error envelope `{"error": {…}}`.
    Refused {
        /// HTTP status.
        status: u16,
        /// The envelope.
        envelope: Value,
    },
    /// No answer (daemon down, timeout, unreadable reply); the outcome of a
    /// state-changing call is unknown.
    Unreachable(String),
}

/// A daemon reply: the JSON body of a 2xx answer, the error envelope otherwise.
pub fn decode_reply(status: u16, body: &[u8]) -> Result<Value, RestFailure> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RestFailure::Unreachable(format!("reply {status}: {e}")))?;
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(RestFailure::Refused { status, envelope: value })
    }
}

/// The daemon, as tools see it.
pub trait Backend: Send + Sync + 'static {
    /// Makes `call` as the holder of `credential`; the JSON body of a 2xx answer.
    fn call(&self, credential: &Credential, call: RestCall) -> impl Future<Output = Result<Value, RestFailure>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug() {
        let credential = Credential::new("mnd_sess_secretvalue");
        assert_eq!(format!("{credential:?}"), "Credential(<redacted>)");
        assert_eq!(credential.authorization().as_str(), "Bearer mnd_sess_secretvalue");
    }
}
