//! The operator commands' connection to the daemon's REST API (docs/API.md), made
//! with `mandate-client` and run to completion on a small runtime of its own (the
//! commands are blocking): an operator key (`MANDATE_OPERATOR_KEY` or `_FILE`) used as
//! the bearer credential, or else a login with the master password (its token kept for
//! the next commands until it expires, `login_cache`), then bearer calls. With a key set, the master password — which also seals the
//! service party's shares — is never read and never sent.
//!
//! The master password goes only into the `Authorization: Basic` header of the login
//! (marked sensitive, built in zeroized buffers by the client); the operator key or
//! token only into `Authorization: Bearer` headers. None appears in an error or in
//! `Debug`.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use mandate_client::{Body, Client, Credential, Method, Secret, StatusCode, Transport, TransportKind, Url};
use mandate_core::ErrorCode;
use mandate_mpc::net::read_secret_env;
use mandate_server::OPERATOR_KEY_PREFIX;
use serde_json::{json, Value};

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
    /// The URL as the user gave it (checked), for messages.
    base: Url,
    /// Carries the bearer credential, if any.
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's own Debug shows `<redacted>` for a credential.
        f.debug_struct("Daemon").field("base", &self.base.as_str()).field("client", &self.client).finish()
    }
}

impl Daemon {
    /// Connects as the operator at `url`: with the operator key of
    /// `MANDATE_OPERATOR_KEY` (or `_FILE`) when one is set, otherwise by logging in
    /// with the master password from `MANDATE_MASTER_PASSWORD` (or `_FILE`). Local
    /// checks come before any request.
    pub(crate) fn login(url: &str) -> CliResult<Daemon> {
        let daemon = Daemon::anonymous(url)?;
        if let Some(key) = operator_key()? {
            return Ok(daemon.acting_as(Credential::OperatorKey(key)));
        }
        let password = read_secret_env(MASTER_PASSWORD_VAR)?;
        if let Some(token) = crate::login_cache::load(&daemon.base) {
            // A token this daemon no longer knows (restarted with another data
            // directory, or logged out) is refused: forget it and log in.
            let cached = daemon.acting_as(Credential::Admin(token));
            match cached.block_on(cached.client.call(Method::GET, &["v1", "wallets"], &[], Body::Empty)) {
                Ok(_) => return Ok(cached),
                Err(mandate_client::Error::Api(api)) if api.status == 401 => crate::login_cache::forget(&cached.base),
                Err(other) => return Err(cached.error(other)),
            }
            return Daemon::login_with_password(url, &password);
        }
        Daemon::login_with_password(url, &password)
    }

    /// Logs in with the master password and keeps the token for the next commands
    /// (`login_cache`).
    fn login_with_password(url: &str, password: &[u8]) -> CliResult<Daemon> {
        let daemon = Daemon::anonymous(url)?;
        let password = Secret::new(
            std::str::from_utf8(password)
                .map_err(|_| CliError::invalid(format!("{MASTER_PASSWORD_VAR}[_FILE] is not UTF-8 text")))?,
        );
        let login = daemon.block_on(daemon.client.login(&password)).map_err(|error| match error {
            mandate_client::Error::UnexpectedReply { status, .. } if (200..300).contains(&status) => {
                CliError::new(ErrorCode::Internal, "the daemon's login answer carries no token")
            }
            other => daemon.error(other),
        })?;
        drop(password);
        crate::login_cache::store(&daemon.base, &login.token, login.expires_at);
        Ok(daemon.acting_as(Credential::Admin(login.token)))
    }

    /// Connects to the daemon at `url` without any credential: no `Authorization`
    /// header is sent.
    pub(crate) fn anonymous(url: &str) -> CliResult<Daemon> {
        let base = parse_base_url(url)?;
        let client = Client::with_timeouts(base.as_str(), CONNECT_TIMEOUT, REQUEST_TIMEOUT)
            .map_err(|e| CliError::new(e.code(), e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(ErrorCode::Internal, format!("building the HTTP client: {e}")))?;
        Ok(Daemon { base, client, runtime })
    }

    fn acting_as(self, credential: Credential) -> Daemon {
        Daemon { client: self.client.with_credential(credential), ..self }
    }

    /// `GET` a path given as segments (each percent-encoded), with a query.
    pub(crate) fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> CliResult<Value> {
        let query: Vec<(&str, String)> = query.iter().map(|(key, value)| (*key, value.to_string())).collect();
        self.call(Method::GET, segments, &query, Body::Empty)
    }

    /// `POST` a JSON body (or none).
    pub(crate) fn post(&self, segments: &[&str], body: Option<&Value>) -> CliResult<Value> {
        self.call(Method::POST, segments, &[], body.map_or(Body::Empty, Body::Json))
    }

    /// Sends `body` as it is, as JSON, with `method`.
    pub(crate) fn send_raw(&self, method: Method, segments: &[&str], body: Vec<u8>) -> CliResult<Value> {
        self.call(method, segments, &[], Body::Raw(&body))
    }

    /// Sends a request as built (headers included): the answer's JSON, or the daemon's
    /// error envelope as the CLI's error.
    pub(crate) fn raw(&self, request: mandate_client::RawRequest) -> CliResult<Value> {
        let reply = self.block_on(self.client.send_raw(request)).map_err(|error| self.error(error))?;
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if (200..300).contains(&reply.status) {
            return Ok(body);
        }
        let field = |name: &str| body.get("error").and_then(|envelope| envelope.get(name));
        let code = field("code").and_then(Value::as_str).unwrap_or_default();
        let message = field("message").and_then(Value::as_str).unwrap_or("the daemon refused the request").to_string();
        let code = ErrorCode::ALL.iter().copied().find(|known| known.as_str() == code).unwrap_or(ErrorCode::Internal);
        Err(CliError::new(code, message).with_details(field("details").cloned().unwrap_or_default()))
    }

    fn call(&self, method: Method, segments: &[&str], query: &[(&str, String)], body: Body<'_>) -> CliResult<Value> {
        self.block_on(self.client.call(method, segments, query, body)).map_err(|error| self.error(error))
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A client error as the CLI reports it.
    fn error(&self, error: mandate_client::Error) -> CliError {
        match error {
            mandate_client::Error::Api(api) => api_error(&api),
            mandate_client::Error::Unreachable(transport) => transport_error(&self.base, &transport),
            mandate_client::Error::UnexpectedReply { status, message } if (200..300).contains(&status) => {
                let status = StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string());
                CliError::new(
                    ErrorCode::Internal,
                    format!("the daemon answered {status} with a body that is not JSON: {message}"),
                )
            }
            mandate_client::Error::UnexpectedReply { status, .. } => CliError::new(
                ErrorCode::Internal,
                format!("the daemon answered HTTP {status} without an error envelope"),
            )
            .with_details(json!({"status": status})),
            other => CliError::new(other.code(), other.to_string()),
        }
    }
}

/// The operator key of `MANDATE_OPERATOR_KEY` or `MANDATE_OPERATOR_KEY_FILE` (a file
/// group and others cannot read), if either is set.
fn operator_key() -> CliResult<Option<Secret>> {
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
    Ok(Some(Secret::new(key)))
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

/// A failed request: `PEER_UNAVAILABLE`, naming the daemon's URL.
fn transport_error(base: &Url, transport: &Transport) -> CliError {
    let cause: String = transport.causes.iter().map(|inner| format!(": {inner}")).collect();
    let message = match transport.kind {
        TransportKind::Connect => format!("cannot reach the daemon at {base} (is `mandate serve` running?){cause}"),
        TransportKind::Timeout => {
            format!("the daemon at {base} did not answer in time; the outcome of the request is unknown{cause}")
        }
        TransportKind::Other => format!("the request to the daemon at {base} failed: {}{cause}", transport.error),
    };
    CliError::new(ErrorCode::PeerUnavailable, message)
}

/// The daemon's error envelope as a CLI error: code, message and details as they
/// came. An unknown code becomes `INTERNAL` and is named in the message.
fn api_error(error: &mandate_client::ApiError) -> CliError {
    let mut message = error.message.clone();
    let code = match error.error_code() {
        Some(code) => code,
        None => {
            message = format!("{message} (daemon code {:?}, HTTP {})", error.code, error.status);
            ErrorCode::Internal
        }
    };
    let mut details = if error.details.is_null() { json!({}) } else { error.details.clone() };
    // The CLI's envelope has no place of its own for it: keep the daemon's advice.
    if let (Some(secs), Some(object)) = (error.retry_after, details.as_object_mut()) {
        object.insert("retry_after".into(), json!(secs));
    }
    CliError::new(code, message).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client makes of an error answer, as the CLI reports it.
    fn error_from_body(status: u16, body: &[u8]) -> CliError {
        let daemon = Daemon::anonymous(DEFAULT_URL).unwrap();
        let reply: mandate_client::Error = match serde_json::from_slice::<Value>(body).ok() {
            Some(envelope) => match serde_json::from_value::<mandate_client::ApiError>(envelope["error"].clone()) {
                Ok(mut api) => {
                    api.status = status;
                    mandate_client::Error::Api(Box::new(api))
                }
                Err(e) => mandate_client::Error::UnexpectedReply { status, message: e.to_string() },
            },
            None => mandate_client::Error::UnexpectedReply { status, message: "not JSON".into() },
        };
        daemon.error(reply)
    }

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
    fn ids_in_paths_are_checked() {
        assert!(path_id("session", "ses_0a1b").is_ok());
        for bad in ["", "..", "a/b", "a b", "ses_x?y"] {
            assert!(path_id("session", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_is_kept_in_the_details() {
        let body = json!({"error": {"code": "RATE_LIMITED", "message": "wait", "retry_after": 12, "details": {}}});
        let error = error_from_body(429, body.to_string().as_bytes());
        assert_eq!((error.code, &error.details), (ErrorCode::RateLimited, &json!({"retry_after": 12})));
    }

    #[test]
    fn transport_failures_name_the_daemon_and_the_cause() {
        let base = parse_base_url(DEFAULT_URL).unwrap();
        let refused = Transport {
            kind: TransportKind::Connect,
            error: "error sending request".into(),
            causes: vec!["tcp connect error".into(), "Connection refused (os error 111)".into()],
        };
        let error = transport_error(&base, &refused);
        assert_eq!(error.code, ErrorCode::PeerUnavailable);
        assert_eq!(
            error.message,
            "cannot reach the daemon at http://127.0.0.1:3100/ (is `mandate serve` running?): tcp connect error: \
             Connection refused (os error 111)"
        );
        let slow = Transport { kind: TransportKind::Timeout, error: "timed out".into(), causes: vec![] };
        assert!(transport_error(&base, &slow).message.contains("outcome of the request is unknown"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let daemon =
            Daemon::anonymous(DEFAULT_URL).unwrap().acting_as(Credential::Admin(Secret::new("mnd_admin_secret-token")));
        let debug = format!("{daemon:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let anonymous = format!("{:?}", Daemon::anonymous(DEFAULT_URL).unwrap());
        assert!(anonymous.contains("credential: None"), "{anonymous}");
    }
}
