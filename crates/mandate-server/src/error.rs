//! The one error type of the daemon and its HTTP envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mandate_core::{ErrorCategory, ErrorCode};
use serde_json::{json, Value};

/// An error with a stable code, a message safe to show (never a secret) and details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human explanation.
    pub message: String,
    /// Structured details (a policy decision, a JSON path, …).
    pub details: Value,
    /// Seconds after which a retry may succeed (`RATE_LIMITED`), shown as the
    /// envelope's `retry_after` and the `Retry-After` header.
    pub retry_after: Option<u64>,
    /// What went wrong in words for the operator's log only (a store's or the file
    /// system's own text): never in a body. When set, the body carries a log id instead.
    pub log_detail: Option<String>,
}

/// Result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: json!({}), retry_after: None, log_detail: None }
    }

    /// An error whose `message` is general words safe for the caller and whose
    /// `detail` (SQL, paths, an I/O error) goes to the log only.
    pub fn logged(code: ErrorCode, message: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError { log_detail: Some(detail.into()), ..ApiError::new(code, message) }
    }

    /// `RATE_LIMITED`, retry after `secs` (at least 1).
    pub fn rate_limited(message: impl Into<String>, secs: u64) -> Self {
        ApiError { retry_after: Some(secs.max(1)), ..ApiError::new(ErrorCode::RateLimited, message) }
    }

    /// Tells the caller to retry after `secs` (at least 1): `retry_after` and `Retry-After`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Adds details (merged into details already there when both are objects).
    pub fn with_details(mut self, details: Value) -> Self {
        match (&mut self.details, details) {
            (Value::Object(existing), Value::Object(more)) => existing.extend(more),
            (_, details) => self.details = details,
        }
        self
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::BodyTooLarge => return StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidPolicy => return StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::MethodNotAllowed => return StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RateLimited => return StatusCode::TOO_MANY_REQUESTS,
            _ => {}
        }
        match self.code.category() {
            ErrorCategory::Validation => StatusCode::BAD_REQUEST,
            ErrorCategory::Authentication => StatusCode::UNAUTHORIZED,
            ErrorCategory::Forbidden | ErrorCategory::Policy => StatusCode::FORBIDDEN,
            ErrorCategory::NotFound => StatusCode::NOT_FOUND,
            ErrorCategory::Conflict => StatusCode::CONFLICT,
            ErrorCategory::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as a caller may see it. An error of the `Internal` category (its text
    /// is whatever broke inside: SQL, a path, a library's message) and an error carrying a
    /// [`log_detail`](Self::log_detail) are written in full to stderr under a fresh log id
    /// (`err_<16 hex>`); the caller gets general words and that id, in the message and as
    /// `details.log_id`. Any other error is returned as it is.
    pub fn public(self) -> ApiError {
        let internal = self.code.category() == ErrorCategory::Internal;
        if !internal && self.log_detail.is_none() {
            return self;
        }
        let log_id = format!("err_{}", hex::encode(rand::random::<[u8; 8]>()));
        tracing::error!(
            log_id = %log_id,
            code = %self.code,
            "error {log_id}: {}: {}{}; details: {}",
            self.code,
            self.message,
            self.log_detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
            self.details
        );
        let general = match (internal, self.code) {
            (true, ErrorCode::SignatureInvalid) => "the threshold signature failed verification".to_string(),
            (true, _) => "the daemon failed inside while handling this request".to_string(),
            (false, _) => self.message,
        };
        let details = if internal { json!({}) } else { self.details };
        ApiError {
            code: self.code,
            message: format!("{general} (log id {log_id})"),
            details,
            retry_after: self.retry_after,
            log_detail: None,
        }
        .with_details(json!({ "log_id": log_id }))
    }

    /// The envelope `{"error": {…}}`.
    pub fn envelope(&self) -> Value {
        let mut envelope = mandate_core::error_envelope(self.code, &self.message, self.details.clone());
        if let (Some(secs), Some(error)) = (self.retry_after, envelope.get_mut("error")) {
            error["retry_after"] = json!(secs);
        }
        envelope
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.public();
        let mut response = (error.status(), Json(error.envelope())).into_response();
        if let Some(secs) = error.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<mandate_store::StoreError> for ApiError {
    fn from(error: mandate_store::StoreError) -> Self {
        match error {
            mandate_store::StoreError::AuditUnavailable(message) => ApiError::logged(
                ErrorCode::AuditUnavailable,
                "the audit trail cannot be written, so nothing is signed",
                message,
            ),
            mandate_store::StoreError::Conflict(message) => ApiError::new(ErrorCode::NameTaken, message),
            mandate_store::StoreError::Database(mandate_store::DbError::Unavailable(message)) => ApiError::logged(
                ErrorCode::DatabaseUnavailable,
                "the database cannot be reached; nothing was changed, retry shortly",
                message,
            )
            .with_retry_after(1),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<mandate_mpc::MpcError> for ApiError {
    fn from(error: mandate_mpc::MpcError) -> Self {
        ApiError::new(error.code(), error.to_string())
    }
}

impl From<mandate_chain::ChainError> for ApiError {
    fn from(error: mandate_chain::ChainError) -> Self {
        ApiError::new(error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_carries_retry_after_in_the_envelope_and_header() {
        let error = ApiError::rate_limited("slow down", 7);
        assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
        let envelope = error.envelope();
        assert_eq!(envelope["error"]["code"], "RATE_LIMITED");
        assert_eq!(envelope["error"]["retry_after"], 7);
        let response = error.into_response();
        assert_eq!(response.headers().get(axum::http::header::RETRY_AFTER).unwrap(), "7");
        assert!(ApiError::new(ErrorCode::NotFound, "x").envelope()["error"]["retry_after"].is_null());
    }

    fn body_of(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = futures_body(response);
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn futures_body(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(axum::body::to_bytes(response.into_body(), 1 << 20)).unwrap().to_vec()
    }

    fn log_id_of(envelope: &Value) -> String {
        let log_id = envelope["error"]["details"]["log_id"].as_str().unwrap().to_string();
        assert!(log_id.starts_with("err_") && log_id.len() == 20, "{log_id}");
        assert!(log_id[4..].chars().all(|c| c.is_ascii_hexdigit()), "{log_id}");
        assert!(envelope["error"]["message"].as_str().unwrap().contains(&log_id), "{envelope}");
        log_id
    }

    #[test]
    fn an_internal_error_body_names_a_log_id_and_no_internals() {
        let sql = "UPDATE transactions SET status = ?1 WHERE id = ?2";
        let inner = format!("no such table: transactions_v9 in {sql}");
        let error: ApiError = mandate_store::StoreError::Corrupt(inner.clone()).into();
        let error = error.with_details(json!({"query": sql}));
        assert!(error.to_string().contains("transactions_v9"), "the detail reaches the log side");
        let (status, envelope) = body_of(error);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(envelope["error"]["code"], "INTERNAL");
        assert_eq!(envelope["error"]["category"], "internal");
        let text = envelope.to_string();
        for leaked in [inner.as_str(), "transactions_v9", "UPDATE", "SET status", "no such table", "corrupt store"] {
            assert!(!text.contains(leaked), "{leaked:?} in {text}");
        }
        let first = log_id_of(&envelope);
        let (_, again) = body_of(ApiError::internal("x"));
        assert_ne!(first, log_id_of(&again), "every failure gets its own log id");
    }

    #[test]
    fn audit_unavailable_keeps_its_code_and_words_but_not_the_path() {
        let error: ApiError = mandate_store::StoreError::AuditUnavailable(
            "/var/lib/mandate/audit/audit.jsonl: Is a directory (os error 21)".into(),
        )
        .into();
        let (status, envelope) = body_of(error);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(envelope["error"]["code"], "AUDIT_UNAVAILABLE");
        let message = envelope["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("the audit trail cannot be written, so nothing is signed"), "{message}");
        assert!(!envelope.to_string().contains("/var/lib") && !envelope.to_string().contains("os error"));
        log_id_of(&envelope);
    }

    #[test]
    fn a_caller_error_is_returned_as_it_is() {
        let error = ApiError::new(ErrorCode::PolicyDenied, "over the limit").with_details(json!({"rule": "r1"}));
        let (_, envelope) = body_of(error);
        assert_eq!(envelope["error"]["message"], "over the limit");
        assert_eq!(envelope["error"]["details"], json!({"rule": "r1"}));
    }
}
