//! A small blocking client of the daemon's REST API (docs/API.md) for the operator
//! commands: an operator key (`MANDATE_OPERATOR_KEY` or `_FILE`) used as the bearer
//! credential, or else one login per invocation with the master password, then
//! bearer calls. With a key set, the master password — which also seals the service
//! party's shares — is never read and never sent.
//!
//! The master password goes only into the `Authorization: Basic` header of the login
//! (marked sensitive, built in zeroized buffers); the operator key or token only into
//! `Authorization: Bearer` headers. None appears in an error or in `Debug`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use mandate_core::ErrorCode;
use mandate_mpc::net::read_secret_env;
use mandate_server::OPERATOR_KEY_PREFIX;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::output::{CliError, CliResult};

/// Where the daemon listens unless `--url` / `MANDATE_URL` says otherwise.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:3100";

/// The variable holding the master password (or `<it>_FILE` naming a file).
pub(crate) const MASTER_PASSWORD_VAR: &str = "MANDATE_MASTER_PASSWORD";
/// The variable holding an operator key (or `<it>_FILE` naming a file only the user can read).
pub(crate) const OPERATOR_KEY_VAR: &str = "MANDATE_OPERATOR_KEY";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Generous: a balance asks the chain, a login runs Argon2id behind a gate.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to the daemon: logged in as the operator, or anonymous (the owner's
/// commands, whose credential is the signature they post).
pub(crate) struct Daemon {
    base: Url,
    http: Client,
    /// The bearer credential, if any.
    token: Option<Zeroizing<String>>,
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.token.is_some() { "<redacted>" } else { "<none>" };
        f.debug_struct("Daemon").field("base", &self.base.as_str()).field("token", &token).finish()
    }
}

fn http_client() -> CliResult<Client> {
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| CliError::new(ErrorCode::Internal, format!("building the HTTP client: {e}")))
}

/// The login answer; the token is borrowed from a buffer we zeroize.
#[derive(Deserialize)]
struct LoginAnswer<'a> {
    token: &'a str,
}

impl Daemon {
    /// Connects as the operator at `url`: with the operator key of
    /// `MANDATE_OPERATOR_KEY` (or `_FILE`) when one is set, otherwise by logging in
    /// with the master password from `MANDATE_MASTER_PASSWORD` (or `_FILE`). Local
    /// checks come before any request.
    pub(crate) fn login(url: &str) -> CliResult<Daemon> {
        let base = parse_base_url(url)?;
        let http = http_client()?;
        if let Some(key) = operator_key()? {
            return Ok(Daemon { base, http, token: Some(key) });
        }
        let password = read_secret_env(MASTER_PASSWORD_VAR)?;
        let basic = basic_authorization(&password)?;
        drop(password);
        let request = http.post(endpoint(&base, &["v1", "admin", "login"])?).header(AUTHORIZATION, basic);
        let response = request.send().map_err(|e| transport_error(&base, e))?;
        let status = response.status();
        let body = Zeroizing::new(response.bytes().map_err(|e| transport_error(&base, e))?.to_vec());
        if !status.is_success() {
            return Err(error_from_body(status.as_u16(), &body));
        }
        let answer: LoginAnswer<'_> = serde_json::from_slice(&body)
            .map_err(|_| CliError::new(ErrorCode::Internal, "the daemon's login answer carries no token"))?;
        let token = Zeroizing::new(answer.token.to_string());
        Ok(Daemon { base, http, token: Some(token) })
    }

    /// Connects to the daemon at `url` without any credential: no `Authorization`
    /// header is sent.
    pub(crate) fn anonymous(url: &str) -> CliResult<Daemon> {
        Ok(Daemon { base: parse_base_url(url)?, http: http_client()?, token: None })
    }

    /// `GET` a path given as segments (each percent-encoded), with a query.
    pub(crate) fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> CliResult<Value> {
        let request = self.http.get(endpoint(&self.base, segments)?).query(query);
        self.send(request)
    }

    /// `POST` a JSON body (or none).
    pub(crate) fn post(&self, segments: &[&str], body: Option<&Value>) -> CliResult<Value> {
        let mut request = self.http.post(endpoint(&self.base, segments)?);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request)
    }

    /// Sends `body` as it is, as JSON, with `method`.
    pub(crate) fn send_raw(&self, method: Method, segments: &[&str], body: Vec<u8>) -> CliResult<Value> {
        let request = self
            .http
            .request(method, endpoint(&self.base, segments)?)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request)
    }

    fn send(&self, mut request: RequestBuilder) -> CliResult<Value> {
        if let Some(token) = &self.token {
            let bearer = Zeroizing::new(format!("Bearer {}", token.as_str()));
            let mut value = HeaderValue::from_str(&bearer).map_err(|_| {
                CliError::new(ErrorCode::Internal, "the daemon issued a token that is not a header value")
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().map_err(|e| transport_error(&self.base, e))?;
        answer(&self.base, response)
    }
}

/// The operator key of `MANDATE_OPERATOR_KEY` or `MANDATE_OPERATOR_KEY_FILE` (a file
/// group and others cannot read), if either is set.
fn operator_key() -> CliResult<Option<Zeroizing<String>>> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if !set(OPERATOR_KEY_VAR) && !set(&format!("{OPERATOR_KEY_VAR}_FILE")) {
        return Ok(None);
    }
    let bytes = read_secret_env(OPERATOR_KEY_VAR)?;
    let key = std::str::from_utf8(&bytes)
        .ok()
        .map(str::trim)
        .filter(|key| key.starts_with(OPERATOR_KEY_PREFIX) && key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            CliError::invalid(format!(
                "{OPERATOR_KEY_VAR}[_FILE] does not hold an operator key ({OPERATOR_KEY_PREFIX}…)"
            ))
        })?;
    Ok(Some(Zeroizing::new(key.to_string())))
}

/// Reads a response: its JSON on 2xx, its error envelope otherwise.
fn answer(base: &Url, response: Response) -> CliResult<Value> {
    let status = response.status();
    let body = response.bytes().map_err(|e| transport_error(base, e))?;
    if !status.is_success() {
        return Err(error_from_body(status.as_u16(), &body));
    }
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| {
        CliError::new(ErrorCode::Internal, format!("the daemon answered {status} with a body that is not JSON: {e}"))
    })
}

/// The daemon's base URL, checked: http(s), no credentials in it, and plain HTTP only
/// to this machine (the master password travels in the login request).
pub(crate) fn parse_base_url(text: &str) -> CliResult<Url> {
    let mut url =
        Url::parse(text.trim()).map_err(|e| CliError::invalid(format!("--url / MANDATE_URL is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // The URL is not echoed: it carries a credential.
        return Err(CliError::invalid("--url / MANDATE_URL must not carry credentials"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_local(&url) => {}
        "http" => {
            return Err(CliError::new(
                ErrorCode::InsecureUrl,
                format!("{url} is plain HTTP to another host; the master password would cross the network in clear"),
            ))
        }
        other => return Err(CliError::invalid(format!("--url / MANDATE_URL: unsupported scheme {other:?}"))),
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

fn is_local(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `base` with `segments` appended to its path, each percent-encoded.
fn endpoint(base: &Url, segments: &[&str]) -> CliResult<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| CliError::invalid(format!("{base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// An id that goes into a URL path: letters, digits, `_` and `-` only.
pub(crate) fn path_id<'a>(what: &str, id: &'a str) -> CliResult<&'a str> {
    let ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(CliError::invalid(format!("{what} {id:?} is not an id (letters, digits, _ and - only)")))
    }
}

/// `Authorization: Basic base64("operator:" + password)`, marked sensitive.
fn basic_authorization(password: &[u8]) -> CliResult<HeaderValue> {
    const USER: &[u8] = b"operator:";
    let engine = base64::engine::general_purpose::STANDARD;
    // Exact capacities: no reallocation leaves a copy of the secret behind.
    let mut credentials = Zeroizing::new(Vec::with_capacity(USER.len() + password.len()));
    credentials.extend_from_slice(USER);
    credentials.extend_from_slice(password);
    let encoded_len = base64::encoded_len(credentials.len(), true)
        .ok_or_else(|| CliError::invalid(format!("{MASTER_PASSWORD_VAR} is too long")))?;
    let mut header = Zeroizing::new(String::with_capacity("Basic ".len() + encoded_len));
    header.push_str("Basic ");
    engine.encode_string(credentials.as_slice(), &mut header);
    let mut value = HeaderValue::from_str(&header)
        .map_err(|_| CliError::new(ErrorCode::Internal, "the login header could not be built"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A failed request: `PEER_UNAVAILABLE`, naming the daemon's URL.
fn transport_error(base: &Url, error: reqwest::Error) -> CliError {
    let error = error.without_url();
    let mut cause = String::new();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    let message = if error.is_connect() {
        format!("cannot reach the daemon at {base} (is `mandate serve` running?){cause}")
    } else if error.is_timeout() {
        format!("the daemon at {base} did not answer in time; the outcome of the request is unknown{cause}")
    } else {
        format!("the request to the daemon at {base} failed: {error}{cause}")
    };
    CliError::new(ErrorCode::PeerUnavailable, message)
}

/// The daemon's error envelope as a CLI error: code, message and details as they
/// came. An unknown code becomes `INTERNAL` and is named in the message; a body that
/// is no envelope becomes `INTERNAL` with the HTTP status in the details.
fn error_from_body(status: u16, body: &[u8]) -> CliError {
    let envelope = serde_json::from_slice::<Value>(body).ok();
    let error = envelope.as_ref().and_then(|v| v.get("error")).and_then(Value::as_object);
    let Some(error) = error else {
        return CliError::new(
            ErrorCode::Internal,
            format!("the daemon answered HTTP {status} without an error envelope"),
        )
        .with_details(json!({"status": status}));
    };
    let raw_code = error.get("code").and_then(Value::as_str).unwrap_or("");
    let mut message = error.get("message").and_then(Value::as_str).unwrap_or("").to_string();
    let code = match ErrorCode::parse(raw_code) {
        Some(code) => code,
        None => {
            message = format!("{message} (daemon code {raw_code:?}, HTTP {status})");
            ErrorCode::Internal
        }
    };
    let mut details = error.get("details").cloned().unwrap_or_else(|| json!({}));
    // The CLI's envelope has no place of its own for it: keep the daemon's advice.
    if let (Some(secs), Some(object)) = (error.get("retry_after").and_then(Value::as_u64), details.as_object_mut()) {
        object.insert("retry_after".into(), json!(secs));
    }
    CliError::new(code, message).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_passes_through_unchanged() {
        let body = json!({"error": {"category": "validation", "code": "INVALID_POLICY", "message": "bad window",
                                    "required_action": "x", "retryable": false,
                                    "details": {"path": "$.rules[1].window_secs"}}});
        let error = error_from_body(422, body.to_string().as_bytes());
        assert_eq!(error.code, ErrorCode::InvalidPolicy);
        assert_eq!(error.message, "bad window");
        assert_eq!(error.details, json!({"path": "$.rules[1].window_secs"}));
        assert_eq!(error.envelope()["error"]["details"]["path"], "$.rules[1].window_secs");
    }

    #[test]
    fn unknown_codes_and_non_envelopes_are_internal() {
        let body = json!({"error": {"code": "FROM_THE_FUTURE", "message": "new", "details": {"a": 1}}});
        let error = error_from_body(409, body.to_string().as_bytes());
        assert_eq!(error.code, ErrorCode::Internal);
        assert!(error.message.contains("FROM_THE_FUTURE"), "{}", error.message);
        assert_eq!(error.details, json!({"a": 1}));

        let error = error_from_body(502, b"<html>bad gateway</html>");
        assert_eq!(error.code, ErrorCode::Internal);
        assert_eq!(error.details, json!({"status": 502}));
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("http://127.0.0.1:3100").is_ok());
        assert!(parse_base_url("http://localhost:3100/").is_ok());
        assert!(parse_base_url("http://[::1]:3100").is_ok());
        assert!(parse_base_url("https://wallet.example.com").is_ok());
        assert_eq!(parse_base_url("http://wallet.example.com").unwrap_err().code, ErrorCode::InsecureUrl);
        assert_eq!(parse_base_url("http://10.0.0.2:3100").unwrap_err().code, ErrorCode::InsecureUrl);
        let error = parse_base_url("https://operator:hunter2@wallet.example.com").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidInput);
        assert!(!error.message.contains("hunter2"));
        assert_eq!(parse_base_url("ftp://127.0.0.1").unwrap_err().code, ErrorCode::InvalidInput);
        assert_eq!(parse_base_url("not a url").unwrap_err().code, ErrorCode::InvalidInput);
    }

    #[test]
    fn endpoints_keep_a_path_prefix_and_encode_segments() {
        let base = parse_base_url("https://example.com/mandate/").unwrap();
        assert_eq!(endpoint(&base, &["v1", "wallets"]).unwrap().as_str(), "https://example.com/mandate/v1/wallets");
        let base = parse_base_url("http://127.0.0.1:3100").unwrap();
        assert_eq!(
            endpoint(&base, &["v1", "sessions", "a/b?c", "revoke"]).unwrap().as_str(),
            "http://127.0.0.1:3100/v1/sessions/a%2Fb%3Fc/revoke"
        );
        assert!(path_id("session", "ses_0a1b").is_ok());
        for bad in ["", "..", "a/b", "a b", "ses_x?y"] {
            assert!(path_id("session", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_login_header_is_basic_and_sensitive() {
        let value = basic_authorization(b"correct horse").unwrap();
        assert!(value.is_sensitive());
        let text = value.to_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(text.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(decoded, b"operator:correct horse");
        assert!(!format!("{value:?}").contains(text), "a sensitive header's Debug hides it");
    }

    #[test]
    fn retry_after_is_kept_in_the_details() {
        let body = json!({"error": {"code": "RATE_LIMITED", "message": "wait", "retry_after": 12, "details": {}}});
        let error = error_from_body(429, body.to_string().as_bytes());
        assert_eq!((error.code, &error.details), (ErrorCode::RateLimited, &json!({"retry_after": 12})));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let daemon = Daemon {
            base: parse_base_url(DEFAULT_URL).unwrap(),
            http: Client::new(),
            token: Some(Zeroizing::new("mnd_admin_secret-token".to_string())),
        };
        let debug = format!("{daemon:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let anonymous = format!("{:?}", Daemon::anonymous(DEFAULT_URL).unwrap());
        assert!(anonymous.contains("<none>"), "{anonymous}");
    }
}
