//! `mandate mcp`: the MCP server on stdio for one agent session. The session token
//! comes from `MANDATE_SESSION_TOKEN` or `MANDATE_SESSION_TOKEN_FILE` (never an
//! argument, so it is not in the process list); every tool is a REST call to the
//! daemon at `--url` / `MANDATE_URL`. stdout carries only MCP messages; diagnostics go
//! to stderr.

use std::future::Future;
use std::time::Duration;

use mandate_core::ErrorCode;
use mandate_mcp::{decode_reply, Backend, Band, Credential, RestCall, RestFailure};
use mandate_mpc::net::read_secret_env;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Client, Method, Url};
use serde_json::Value;

use crate::api::parse_base_url;
use crate::output::{CliError, CliResult};

/// The variable holding the agent's session token (or `<it>_FILE` naming a 0600 file).
const SESSION_TOKEN_VAR: &str = "MANDATE_SESSION_TOKEN";

/// The daemon's REST API over HTTP.
struct HttpBackend {
    base: Url,
    http: Client,
}

impl Backend for HttpBackend {
    fn call(&self, credential: &Credential, call: RestCall) -> impl Future<Output = Result<Value, RestFailure>> + Send {
        let url = format!("{}{}", self.base.as_str().trim_end_matches('/'), call.path);
        let authorization = HeaderValue::from_str(credential.authorization().as_str()).map(|mut value| {
            value.set_sensitive(true);
            value
        });
        let http = self.http.clone();
        async move {
            let authorization =
                authorization.map_err(|_| RestFailure::Unreachable("the token is not a valid header value".into()))?;
            let method = if call.method == "POST" { Method::POST } else { Method::GET };
            let mut request = http.request(method, &url).header(AUTHORIZATION, authorization);
            if let Some(key) = &call.idempotency_key {
                request = request.header("idempotency-key", key);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| RestFailure::Unreachable(e.without_url().to_string()))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| RestFailure::Unreachable(e.without_url().to_string()))?;
            decode_reply(status.as_u16(), &body)
        }
    }
}

/// Runs the stdio server until the client disconnects or the session ends.
pub(crate) fn run(url: &str, band: &str) -> CliResult<()> {
    let band = Band::parse_band_list(band).map_err(|e| CliError::invalid(format!("--band: {e}")))?;
    let base = parse_base_url(url)?;
    let token = read_secret_env(SESSION_TOKEN_VAR)?;
    let token = std::str::from_utf8(&token)
        .map_err(|_| CliError::invalid(format!("{SESSION_TOKEN_VAR} is not UTF-8")))?
        .trim()
        .to_string();
    let credential = Credential::new(token);
    let http = Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(180))
        // A redirect could carry the token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::new(ErrorCode::Internal, format!("HTTP client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(ErrorCode::Internal, format!("runtime: {e}")))?;
    let outcome = runtime.block_on(mandate_mcp::serve_stdio(HttpBackend { base, http }, credential, band));
    // Leave at once, also on errors: stdin may still be open in a blocking read.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome.map_err(|e| match e {
        mandate_mcp::StdioError::Refused(ref envelope) => {
            let code =
                envelope.get("error").and_then(|e| e.get("code")).and_then(Value::as_str).and_then(ErrorCode::parse);
            CliError::new(code.unwrap_or(ErrorCode::Unauthenticated), e.to_string())
        }
        mandate_mcp::StdioError::BandNotGranted { .. } => CliError::new(ErrorCode::ScopeMissing, e.to_string()),
        mandate_mcp::StdioError::Unreachable(_) => CliError::new(ErrorCode::PeerUnavailable, e.to_string()),
        mandate_mcp::StdioError::Transport(_) => CliError::new(ErrorCode::Internal, e.to_string()),
        mandate_mcp::StdioError::SessionEnded(code) => CliError::new(code, e.to_string()),
    })
}
