//! Agent keys (docs/AGENTS.md): `agent keygen` (the agent's own secp256k1 key, 0600),
//! `agent register` (an owner signs the registration with its owner key; no operator
//! credential), `agent list`, `agent revoke` (operator), and `agent call`, a request
//! signed with the agent's key (no bearer token crosses the wire).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use mandate_chain::agent::{AgentKey, AgentRegistration};
use mandate_client::{Method, RawRequest};
use mandate_core::ErrorCode;
use mandate_mpc::net::{read_secret_file, write_secret_file};
use serde_json::{json, Value};

use crate::api::{path_id, Daemon};
use crate::operator::DaemonArg;
use crate::output::{CliError, CliResult, Report};
use crate::owner::{load_owner_key, unix_now};

#[derive(Subcommand)]
pub(crate) enum AgentCommand {
    /// Create an agent key file (0600) and print its address.
    Keygen {
        /// Where to write the key (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Register an agent key for a wallet, signed with an owner key (no operator credential).
    Register {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// The agent's address, or give --key.
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        address: Option<String>,
        /// The agent's key file (only its address is read and sent).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Its name; `session` for the wallet's one session agent (at most 7 days).
        #[arg(long)]
        name: String,
        /// Its scopes, comma-separated: read, prepare, sign, broadcast, freeze.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        scopes: Vec<String>,
        /// How long it works, in seconds.
        #[arg(long, default_value_t = 86_400)]
        valid_for_secs: u64,
        /// The owner key file that signs the registration.
        #[arg(long)]
        owner_key: PathBuf,
        /// The agent's own policy (a docs/POLICY.md document, JSON file): evaluated
        /// with the wallet's, both must allow, so it only narrows.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List a wallet's agents, active and revoked (operator).
    List {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
    },
    /// Revoke an agent at once (operator).
    Revoke {
        /// The agent's address.
        address: String,
    },
    /// Send one request signed with the agent's key, e.g. `agent call --key bot.key
    /// --wallet wal_… POST /v1/wallets/wal_…/transactions --body '{"to":…,"amount":"0.1"}'`.
    Call {
        /// The agent key file.
        #[arg(long)]
        key: PathBuf,
        /// The wallet the agent acts for.
        #[arg(long)]
        wallet: String,
        /// GET, POST, PUT or DELETE.
        method: String,
        /// The path with its query, beginning with `/v1/`.
        path: String,
        /// A JSON body.
        #[arg(long)]
        body: Option<String>,
    },
}

pub(crate) fn load_agent_key(path: &Path) -> CliResult<AgentKey> {
    let bytes = read_secret_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CliError::invalid("the agent key file is not text"))?;
    AgentKey::from_file_text(text).map_err(|e| CliError::invalid(format!("{}: {e}", path.display())))
}

/// Milliseconds since the epoch: the nonce of a signed request.
fn now_ms() -> CliResult<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .map_err(|_| CliError::new(ErrorCode::Internal, "the clock is before 1970"))
}

pub(crate) fn agent(daemon: &DaemonArg, command: AgentCommand) -> CliResult<Report> {
    match command {
        AgentCommand::Keygen { out } => {
            let key = AgentKey::generate();
            write_secret_file(&out, key.to_file_text().as_bytes(), false)?;
            let address = key.address().to_checksum(None);
            Ok(Report::with_text(
                json!({"address": address, "file": out.display().to_string()}),
                format!(
                    "agent key written to {} (0600)\naddress: {address}\nregister it: mandate agent register --wallet <wal_…> --address {address} --name <name> --owner-key <owner.key>",
                    out.display()
                ),
            ))
        }
        AgentCommand::Register { wallet, address, key, name, scopes, valid_for_secs, owner_key, policy } => {
            let policy = match policy {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| CliError::invalid(format!("{}: {e}", path.display())))?;
                    let value: Value = serde_json::from_str(&text)
                        .map_err(|e| CliError::invalid(format!("{}: {e}", path.display())))?;
                    Some(value)
                }
                None => None,
            };
            let agent = match (address, key) {
                (Some(address), _) => address.parse().map_err(|_| CliError::invalid("--address: not an address"))?,
                (None, Some(path)) => load_agent_key(&path)?.address(),
                (None, None) => return Err(CliError::invalid("give --address or --key")),
            };
            let registration = AgentRegistration {
                wallet: path_id("wallet", &wallet)?.to_string(),
                agent,
                name,
                scopes,
                valid_until: unix_now()?.saturating_add(valid_for_secs),
                nonce: rand::random(),
                policy,
            };
            let owner = load_owner_key(&owner_key)?;
            let signature = owner
                .sign_agent_registration(&registration)
                .map_err(|e| CliError::invalid(format!("the registration: {e}")))?;
            let body = json!({"registration": registration, "owner_signature": signature.to_string()});
            let daemon = Daemon::anonymous(&daemon.url)?;
            Ok(daemon.post(&["v1", "wallets", path_id("wallet", &wallet)?, "agents"], Some(&body))?.into())
        }
        AgentCommand::List { wallet } => {
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon.get(&["v1", "wallets", path_id("wallet", &wallet)?, "agents"], &[])?.into())
        }
        AgentCommand::Revoke { address } => {
            let address: alloy_primitives::Address =
                address.parse().map_err(|_| CliError::invalid("not an address"))?;
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon.post(&["v1", "agents", &address.to_checksum(None), "revoke"], None)?.into())
        }
        AgentCommand::Call { key, wallet, method, path, body } => {
            let key = load_agent_key(&key)?;
            let method: Method = method.to_uppercase().parse().map_err(|_| CliError::invalid("not an HTTP method"))?;
            if !path.starts_with("/v1/") {
                return Err(CliError::invalid("the path begins with /v1/"));
            }
            let body = match body {
                Some(text) => {
                    let value: Value =
                        serde_json::from_str(&text).map_err(|e| CliError::invalid(format!("--body: {e}")))?;
                    value.to_string().into_bytes()
                }
                None => Vec::new(),
            };
            let nonce = now_ms()?;
            let signature = key
                .sign_request(method.as_str(), &path, &body, path_id("wallet", &wallet)?, nonce)
                .map_err(|e| CliError::new(ErrorCode::Internal, e.to_string()))?;
            let request = RawRequest::new(method, path)
                .header("mandate-agent", key.address().to_checksum(None))
                .header("mandate-agent-nonce", nonce.to_string())
                .header("mandate-agent-signature", signature)
                .header("content-type", "application/json")
                .body(body);
            let daemon = Daemon::anonymous(&daemon.url)?;
            Ok(daemon.raw(request)?.into())
        }
    }
}
