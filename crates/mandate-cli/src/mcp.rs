//! `mandate mcp`: the MCP server on stdio for one agent session. The session token
//! comes from `MANDATE_SESSION_TOKEN` or `MANDATE_SESSION_TOKEN_FILE` (never an
//! argument, so it is not in the process list); or, with `--agent-key FILE --wallet
//! ID`, every request is signed with the agent's own key and no token exists at all.
//! Every tool is a REST call to the daemon at `--url` / `MANDATE_URL`, made with
//! `mandate-client`. stdout carries only MCP messages; diagnostics go to stderr.

use std::future::Future;
use std::time::Duration;

use mandate_client::{Client, Method, Secret};
use mandate_core::ErrorCode;
use mandate_mcp::{decode_reply, Backend, Band, Credential, RestCall, RestFailure};
use mandate_mpc::net::read_secret_env;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::api::parse_base_url;
use crate::output::{CliError, CliResult};

/// The variable holding the agent's session token (or `<it>_FILE` naming a 0600 file).
const SESSION_TOKEN_VAR: &str = "MANDATE_SESSION_TOKEN";

/// The daemon's REST API over HTTP, as the one session this server serves.
struct HttpBackend {
    /// Acts with the session's token.
    client: Client,
    /// That token's `Authorization` value: a call for any other credential is refused
    /// rather than made with this one.
    authorization: Zeroizing<String>,
}

impl Backend for HttpBackend {
    fn call(&self, credential: &Credential, call: RestCall) -> impl Future<Output = Result<Value, RestFailure>> + Send {
        let same = credential.authorization() == self.authorization;
        let client = self.client.clone();
        async move {
            if !same {
                return Err(RestFailure::Unreachable(
                    "a call for another credential than this server's session".into(),
                ));
            }
            let method = if call.method == "POST" { Method::POST } else { Method::GET };
            let reply = client
                .raw(method, &call.path, call.body.as_ref(), call.idempotency_key.as_deref())
                .await
                .map_err(|e| RestFailure::Unreachable(e.to_string()))?;
            decode_reply(reply.status, &reply.body)
        }
    }
}

/// Runs the stdio server until the client disconnects or the session ends.
pub(crate) fn run(url: &str, band: &str, agent: Option<(&std::path::Path, &str)>) -> CliResult<()> {
    let band = Band::parse_band_list(band).map_err(|e| CliError::invalid(format!("--band: {e}")))?;
    let base = parse_base_url(url)?;
    let client = Client::new(base.as_str()).map_err(|e| CliError::new(e.code(), e.to_string()))?;
    let (credential, client) = match agent {
        Some((key_file, wallet)) => {
            let key = crate::agent::load_agent_key(key_file)?;
            // The MCP layer tells its callers apart by a credential; the agent's is its
            // public address (nothing secret: the key signs each request below).
            let credential = Credential::new(format!("agent:{}", key.address().to_checksum(None)));
            let wallet = crate::api::path_id("wallet", wallet)?.to_string();
            let agent = mandate_client::Credential::Agent { key: std::sync::Arc::new(key), wallet };
            (credential, client.with_credential(agent))
        }
        None => {
            let token = read_secret_env(SESSION_TOKEN_VAR)?;
            let token = std::str::from_utf8(&token)
                .map_err(|_| CliError::invalid(format!("{SESSION_TOKEN_VAR} is not UTF-8")))?
                .trim()
                .to_string();
            let credential = Credential::new(token.clone());
            (credential, client.with_credential(mandate_client::Credential::Session(Secret::new(token))))
        }
    };
    let backend = HttpBackend { client, authorization: credential.authorization() };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(ErrorCode::Internal, format!("runtime: {e}")))?;
    let outcome = runtime.block_on(mandate_mcp::serve_stdio(backend, credential, band));
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
