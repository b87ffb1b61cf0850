//! The client's one error type: the daemon's error envelope, typed, or why no answer
//! came.

use std::fmt;

use mandate_core::{ErrorCategory, ErrorCode};
use serde::Deserialize;
use serde_json::Value;

/// The daemon's error envelope (docs/API.md, Errors), with the HTTP status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiError {
    /// The HTTP status of the answer.
    #[serde(skip)]
    pub status: u16,
    /// The stable code, e.g. `POLICY_DENIED` (text, so a newer daemon's code still reads).
    pub code: String,
    /// The category, e.g. `policy`.
    #[serde(default)]
    pub category: String,
    /// What went wrong, for a person.
    #[serde(default)]
    pub message: String,
    /// What to do about it.
    #[serde(default)]
    pub required_action: String,
    /// Whether the same request may succeed later.
    #[serde(default)]
    pub retryable: bool,
    /// Seconds to wait before retrying (with `RATE_LIMITED`).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// A policy decision, a JSON path, a log id, …
    #[serde(default)]
    pub details: Value,
}

impl ApiError {
    /// The code, if this client knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }

    /// The category, if this client knows it.
    pub fn error_category(&self) -> Option<ErrorCategory> {
        serde_json::from_value(Value::String(self.category.clone())).ok()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

/// At which point no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection to the daemon (nothing listening, refused, DNS): nothing was sent.
    Connect,
    /// The daemon did not answer in time: the request may or may not have been acted on.
    Timeout,
    /// The connection failed otherwise (cut mid-answer, malformed HTTP).
    Other,
}

/// Why no answer came: the kind, the transport's error and its causes (never the URL,
/// so never a credential in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// At which point it failed.
    pub kind: TransportKind,
    /// The transport's error, e.g. `error sending request`.
    pub error: String,
    /// Its causes, outermost first, e.g. `tcp connect error`, `Connection refused (os error 111)`.
    pub causes: Vec<String>,
}

impl Transport {
    /// Reads a reqwest error (without its URL).
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Transport {
        let kind = if error.is_connect() {
            TransportKind::Connect
        } else if error.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        let error = error.without_url();
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            causes.push(inner.to_string());
            source = inner.source();
        }
        Transport { kind, error: error.to_string(), causes }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        for cause in &self.causes {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon answered with its error envelope.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer (daemon down, timeout, connection cut): the outcome of a state-changing
    /// call is unknown; look it up, or retry with the same idempotency key.
    #[error("the daemon could not be reached: {0}")]
    Unreachable(Transport),
    /// An answer this client cannot read.
    #[error("unexpected reply (HTTP {status}): {message}")]
    UnexpectedReply {
        /// The HTTP status.
        status: u16,
        /// What did not parse.
        message: String,
    },
    /// A plain-HTTP URL to another host: a credential would cross the network in clear.
    #[error("{0}")]
    InsecureUrl(String),
    /// A malformed argument (URL, idempotency key, path).
    #[error("{0}")]
    InvalidInput(String),
    /// A secret file that group or others can read.
    #[error("{0}")]
    InsecureFile(String),
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// The stable code the error maps to (`PEER_UNAVAILABLE` when the daemon did not answer).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Api(api) => api.error_code().unwrap_or(ErrorCode::Internal),
            Error::Unreachable(_) => ErrorCode::PeerUnavailable,
            Error::UnexpectedReply { .. } => ErrorCode::Internal,
            Error::InsecureUrl(_) => ErrorCode::InsecureUrl,
            Error::InvalidInput(_) | Error::Io(_) => ErrorCode::InvalidInput,
            Error::InsecureFile(_) => ErrorCode::InsecureFilePermissions,
        }
    }

    /// The envelope, when the daemon answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }
}

/// The client's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Reads an error answer: the envelope `{"error": {…}}`, with `Retry-After` as the
/// fallback for `retry_after`.
pub(crate) fn from_reply(status: u16, retry_after_header: Option<u64>, body: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { mut error }) => {
            error.status = status;
            if error.retry_after.is_none() {
                error.retry_after = retry_after_header;
            }
            Error::Api(Box::new(error))
        }
        Err(e) => Error::UnexpectedReply { status, message: format!("not an error envelope: {e}") },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_envelope_becomes_a_typed_error() {
        let body = mandate_core::error_envelope(
            ErrorCode::PolicyDenied,
            "over the cap",
            serde_json::json!({"rule_id": "cap"}),
        );
        let error = from_reply(403, None, body.to_string().as_bytes());
        let api = error.api().unwrap();
        assert_eq!((api.status, api.code.as_str(), api.category.as_str()), (403, "POLICY_DENIED", "policy"));
        assert_eq!(api.error_code(), Some(ErrorCode::PolicyDenied));
        assert_eq!(api.error_category(), Some(ErrorCategory::Policy));
        assert_eq!(api.details["rule_id"], "cap");
        assert_eq!(error.code(), ErrorCode::PolicyDenied);
        // Retry-After fills in when the envelope has none.
        let body = mandate_core::error_envelope(ErrorCode::RateLimited, "slow down", serde_json::json!({}));
        let error = from_reply(429, Some(7), body.to_string().as_bytes());
        assert_eq!(error.api().unwrap().retry_after, Some(7));
        // Anything else is not mistaken for a refusal.
        assert!(matches!(
            from_reply(502, None, b"<html>bad gateway</html>"),
            Error::UnexpectedReply { status: 502, .. }
        ));
    }
}
