//! Structured logs through `tracing`, on stderr (stdout carries only the JSON banner):
//! plain text by default, one JSON object per line with `--log-format json`
//! (`MANDATE_LOG_FORMAT`). Every HTTP request gets a request id (`req_<16 hex>`, or the
//! caller's own `X-Request-Id` when it is short and plain), returned in the response's
//! `X-Request-Id`, carried by a `request` span around everything logged while the
//! request is handled (a 5xx's log id included), and logged once when answered:
//! method, path (never the query), status and milliseconds.
//!
//! What is never logged: headers (tokens, passwords, agent signatures), bodies, query
//! strings. Errors are logged through [`crate::ApiError::public`], whose messages
//! carry no secret (SECURITY.md).

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-11-30T19:26:03.123Z  INFO request{request_id=…}: answered status=200 …`
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the event's fields,
    /// and `span` (the request's id, method and path) inside a request.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The least severe level written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel(tracing::Level);

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel(tracing::Level::INFO)
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "error" => Ok(LogLevel(tracing::Level::ERROR)),
            "warn" => Ok(LogLevel(tracing::Level::WARN)),
            "info" => Ok(LogLevel(tracing::Level::INFO)),
            "debug" => Ok(LogLevel(tracing::Level::DEBUG)),
            other => Err(format!("unknown log level {other:?}: use error, warn, info or debug")),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.as_str().to_ascii_lowercase())
    }
}

/// Installs the process's log writer (stderr). A second call changes nothing.
pub fn init(format: LogFormat, level: LogLevel) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level.0).with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}

/// A caller's own request id is kept when it is 1 to 64 characters of letters,
/// digits, `.`, `_` and `-` (nothing that could forge a log line); otherwise, or
/// without one, a fresh `req_<16 hex>`.
fn request_id(request: &Request) -> String {
    let given = request.headers().get(&REQUEST_ID_HEADER).and_then(|value| value.to_str().ok());
    match given {
        Some(id)
            if (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            id.to_string()
        }
        _ => format!("req_{}", hex::encode(rand::random::<[u8; 8]>())),
    }
}

/// Middleware: gives the request its id and span, logs its answer, returns the id.
pub(crate) async fn request_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    span.in_scope(|| match status {
        500.. => tracing::warn!(status, ms, "answered"),
        _ => tracing::info!(status, ms, "answered"),
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: &str) -> Request {
        axum::http::Request::builder()
            .header(REQUEST_ID_HEADER, value)
            .body(axum::body::Body::empty())
            .unwrap_or_default()
    }

    #[test]
    fn a_plain_caller_id_is_kept_and_anything_else_replaced() {
        assert_eq!(request_id(&with_header("lb-7f3a.2")), "lb-7f3a.2");
        for bad in ["", "two words", "line\nbreak", "quote\"", &"x".repeat(65)] {
            let id = request_id(&with_header(bad));
            assert!(id.starts_with("req_") && id.len() == 20, "{bad:?} → {id}");
        }
    }

    #[test]
    fn formats_and_levels_parse_and_print_back() {
        for text in ["text", "json"] {
            assert_eq!(text.parse::<LogFormat>().map(|f| f.to_string()), Ok(text.to_string()));
        }
        for text in ["error", "warn", "info", "debug"] {
            assert_eq!(text.parse::<LogLevel>().map(|l| l.to_string()), Ok(text.to_string()));
        }
        assert!("yaml".parse::<LogFormat>().is_err() && "loud".parse::<LogLevel>().is_err());
    }
}
