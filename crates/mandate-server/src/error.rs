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
}

/// Result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: json!({}), retry_after: None }
    }

    /// `RATE_LIMITED`, retry after `secs` (at least 1).
    pub fn rate_limited(message: impl Into<String>, secs: u64) -> Self {
        ApiError { retry_after: Some(secs.max(1)), ..ApiError::new(ErrorCode::RateLimited, message) }
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
        let mut response = (self.status(), Json(self.envelope())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<mandate_store::StoreError> for ApiError {
    fn from(error: mandate_store::StoreError) -> Self {
        match error {
            mandate_store::StoreError::AuditUnavailable(message) => ApiError::new(
                ErrorCode::AuditUnavailable,
                format!("the audit trail cannot be written, so nothing is signed: {message}"),
            ),
            mandate_store::StoreError::Conflict(message) => ApiError::new(ErrorCode::NameTaken, message),
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
}
