//! The operator's commands: `init` and `serve` (the daemon, in this process), and
//! `wallet`, `policy`, `session` and `audit`, which call a running daemon over its
//! REST API (docs/API.md) with an operator key, or after logging in with the master
//! password when no key is set.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use mandate_core::{ErrorCode, WalletId};
use serde_json::{json, Map, Value};

use crate::api::{self, Daemon};
use crate::output::{CliError, CliResult, Report};
use crate::parties;

/// The daemon's data directory.
#[derive(Args)]
pub(crate) struct DataDirArg {
    /// The daemon's data directory.
    #[arg(long, env = "MANDATE_DATA_DIR", default_value = "./mandate-data")]
    pub(crate) data_dir: PathBuf,
}

/// Where the daemon is.
#[derive(Args)]
pub(crate) struct DaemonArg {
    /// The daemon's URL (the operator authenticates with MANDATE_OPERATOR_KEY or _FILE,
    /// else logs in with MANDATE_MASTER_PASSWORD or _FILE).
    #[arg(long, global = true, env = "MANDATE_URL", default_value = api::DEFAULT_URL)]
    pub(crate) url: String,
}

#[derive(Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a wallet: run the DKG as the recovery party, write the recovery share,
    /// register the wallet with the daemon (passphrase from MANDATE_RECOVERY_PASSPHRASE or _FILE).
    Create {
        /// The wallet's name (unique).
        #[arg(long)]
        name: String,
        /// Where to write the encrypted recovery share (must not exist; keep it offline).
        #[arg(long)]
        recovery_out: PathBuf,
        /// The recovery party's directory (default: <data-dir>/recovery).
        #[arg(long, env = "MANDATE_RECOVERY_DIR")]
        recovery_dir: Option<PathBuf>,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List the wallets.
    List,
    /// Show one wallet.
    Show {
        /// The wallet id (`wal_…`).
        id: String,
    },
    /// Show a wallet's balance on chain.
    Balance {
        /// The wallet id (`wal_…`).
        id: String,
        /// The chain (its name or id) when the daemon serves several.
        #[arg(long)]
        chain: Option<String>,
    },
    /// Subaccounts: wallets whose key is the main wallet's key derived at a child index
    /// (own address, policy, caps and agents; no new DKG).
    Subaccount {
        #[command(subcommand)]
        command: SubaccountCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum SubaccountCommand {
    /// Create a subaccount of a main wallet, at the next free child index.
    Create {
        /// The main wallet's id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// The subaccount's name (unique among wallets).
        #[arg(long)]
        name: String,
    },
    /// List a main wallet's subaccounts.
    List {
        /// The main wallet's id (`wal_…`).
        #[arg(long)]
        wallet: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Replace a wallet's policy with a JSON document (the daemon validates it).
    Set {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// The policy document (JSON).
        #[arg(long)]
        file: PathBuf,
    },
    /// Show a wallet's current policy.
    Show {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
    },
    /// Explain the decision the policy would make for an action, nothing signed:
    /// `{"type": "transfer" | "contract_call" | "sign", …}` (see docs/POLICY.md).
    /// Exits 0 when the policy allows it (any tier), 3 when it denies it, 1 on an error.
    Test {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// The action (JSON).
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum SessionCommand {
    /// Create an agent session; prints its token once.
    Create {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// Lifetime of the token, and of each renewal, in seconds.
        #[arg(long)]
        ttl: u64,
        /// How often the agent may renew it (default 0).
        #[arg(long)]
        max_renewals: Option<u64>,
        /// Never valid past this many seconds from now, renewals included.
        #[arg(long)]
        absolute_lifetime: Option<u64>,
        /// Scopes: read, prepare, sign, broadcast (each includes the ones before), freeze.
        /// Repeat the flag or separate with commas; default read.
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List sessions (tokens are never shown again).
    List {
        /// Only the sessions of this wallet.
        #[arg(long)]
        wallet: Option<String>,
    },
    /// Revoke a session; it is refused from its next request on.
    Revoke {
        /// The session id (`ses_…`).
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OperatorCommand {
    /// Operator API keys: scoped, expiring, revocable; the daemon keeps only their hash.
    #[command(subcommand)]
    Key(OperatorKeyCommand),
}

#[derive(Subcommand)]
pub(crate) enum OperatorKeyCommand {
    /// Create a key (authenticated with the master password or an admin key); prints
    /// it once. Use it as MANDATE_OPERATOR_KEY or MANDATE_OPERATOR_KEY_FILE (0600).
    Create {
        /// A name for it (which machine or person holds it).
        #[arg(long)]
        name: String,
        /// Scopes: admin (everything, the default), read (every GET), freeze (the
        /// emergency freeze). Repeat the flag or separate with commas.
        #[arg(long = "scopes", alias = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Days until it expires (default 90, at most 3650).
        #[arg(long)]
        ttl_days: Option<u64>,
    },
    /// List the keys (never the keys themselves): name, scopes, expiry, last use, revoked.
    List,
    /// Revoke a key; it is refused from its next request on.
    Revoke {
        /// The key id (`opk_…`).
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the audit trail's hash chain; exits non-zero and names the first bad record.
    Verify {
        /// The cosigner's audit anchor (the JSON `mandate cosigner anchor` prints, from
        /// the cosigner's host): the trail must still hold that record, so a cut tail
        /// is found and the missing range named.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Show the latest audit records.
    Tail {
        /// How many records.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: u32,
    },
}

/// `--chain NAME=RPC_URL` values as (name, URL): a name of letters, digits, `-` and
/// `_` (not `default`, the `--rpc-url` chain's) and a URL.
pub(crate) fn parse_chains(given: &[String]) -> CliResult<Vec<(String, String)>> {
    given
        .iter()
        .map(|text| {
            let (name, url) = text.split_once('=').unwrap_or(("", ""));
            let plain = !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !name.bytes().all(|b| b.is_ascii_digit());
            if !plain || name == "default" || url.is_empty() {
                return Err(CliError::invalid(format!(
                    "--chain {text:?}: expected NAME=RPC_URL with a name of letters, digits, - or _ (not all digits, \
                     not `default`), e.g. --chain base=https://base.example/rpc"
                )));
            }
            Ok((name.to_string(), url.to_string()))
        })
        .collect()
}

pub(crate) fn wallet(daemon: &DaemonArg, command: WalletCommand) -> CliResult<Report> {
    match command {
        WalletCommand::Create { name, recovery_out, recovery_dir, data } => {
            let recovery_dir = recovery_dir.unwrap_or_else(|| data.data_dir.join("recovery"));
            wallet_create(&daemon.url, &name, recovery_dir, recovery_out)
        }
        WalletCommand::List => {
            let listed = Daemon::login(&daemon.url)?.get(&["v1", "wallets"], &[])?;
            let text =
                list_text(&listed, "wallets", "no wallets (create one with `mandate wallet create`)", wallet_line);
            Ok(Report::with_text(listed, text))
        }
        WalletCommand::Show { id } => {
            let id = wallet_id(&id)?;
            Ok(Daemon::login(&daemon.url)?.get(&["v1", "wallets", id.as_str()], &[])?.into())
        }
        WalletCommand::Balance { id, chain } => {
            let id = wallet_id(&id)?;
            let query: Vec<(&str, &str)> = chain.as_deref().map(|chain| ("chain", chain)).into_iter().collect();
            Ok(Daemon::login(&daemon.url)?.get(&["v1", "wallets", id.as_str(), "balance"], &query)?.into())
        }
        WalletCommand::Subaccount { command: SubaccountCommand::Create { wallet, name } } => {
            let id = wallet_id(&wallet)?;
            let body = json!({"name": wallet_name(&name)?});
            let created =
                Daemon::login(&daemon.url)?.post(&["v1", "wallets", id.as_str(), "subaccounts"], Some(&body))?;
            let text = format!(
                "subaccount {} of {} (child key {}): {} {}",
                field(&created, "name"),
                field(&created, "parent_id"),
                field(&created, "index"),
                field(&created, "id"),
                field(&created, "address"),
            );
            Ok(Report::with_text(created, text))
        }
        WalletCommand::Subaccount { command: SubaccountCommand::List { wallet } } => {
            let id = wallet_id(&wallet)?;
            let listed = Daemon::login(&daemon.url)?.get(&["v1", "wallets", id.as_str(), "subaccounts"], &[])?;
            let text = list_text(
                &listed,
                "subaccounts",
                "no subaccounts (create one with `mandate wallet subaccount create`)",
                |sub| format!("{}  child {}", wallet_line(sub), field(sub, "index")),
            );
            Ok(Report::with_text(listed, text))
        }
    }
}

/// The same rule as the daemon's, checked here too because a refusal after the DKG
/// would leave a generated key without a wallet.
fn wallet_name(name: &str) -> CliResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(CliError::invalid("--name must be 1 to 64 printable characters"));
    }
    Ok(name)
}

fn wallet_create(url: &str, name: &str, recovery_dir: PathBuf, out: PathBuf) -> CliResult<Report> {
    let name = wallet_name(name)?;
    parties::dkg_preflight(&out)?;
    if !recovery_dir.join("identity.key").exists() {
        return Err(CliError::invalid(format!(
            "no recovery party in {}: pass --recovery-dir (or MANDATE_RECOVERY_DIR) naming the directory of \
             `mandate recovery init` (inside the data directory only in the --dev layout)",
            recovery_dir.display()
        )));
    }
    let daemon = Daemon::login(url)?;
    let listed = daemon.get(&["v1", "wallets"], &[])?;
    if items(&listed, "wallets").iter().any(|w| w.get("name").and_then(Value::as_str) == Some(name)) {
        return Err(CliError::new(ErrorCode::NameTaken, format!("a wallet named {name:?} exists")));
    }
    let generated = parties::recovery_dkg(recovery_dir, out.clone())?;
    let generated_id = generated.get("wallet_id").and_then(Value::as_str).unwrap_or("");
    let generated_address = generated.get("address").and_then(Value::as_str).unwrap_or("");
    let share = out.display().to_string();
    let body = json!({"name": name, "wallet_id": generated_id});
    let mut wallet = daemon.post(&["v1", "wallets"], Some(&body)).map_err(|error| unregistered(error, &generated))?;
    let registered_address = wallet.get("address").and_then(Value::as_str).unwrap_or("");
    if !registered_address.eq_ignore_ascii_case(generated_address) {
        return Err(CliError::new(
            ErrorCode::Internal,
            format!(
                "the daemon registered {generated_id} with address {registered_address:?}, but the DKG produced \
                 {generated_address}; do not fund it"
            ),
        )
        .with_details(json!({"wallet": wallet, "generated": generated})));
    }
    let Some(object) = wallet.as_object_mut() else {
        return Err(CliError::new(ErrorCode::Internal, "the daemon's wallet is not a JSON object"));
    };
    object.insert("recovery_share".into(), json!(share));
    let text = format!(
        "wallet {} {:?} created\n  address:  {}\n  chain_id: {}\nrecovery share: {share}\n\
         Keep the recovery share and its passphrase offline, apart from this host.",
        field(&wallet, "id"),
        name,
        field(&wallet, "address"),
        field(&wallet, "chain_id"),
    );
    Ok(Report::with_text(wallet, text))
}

/// A registration that failed after the key was generated: the operator must learn
/// which key and share exist, whatever the daemon said.
fn unregistered(error: CliError, generated: &Value) -> CliError {
    let message = format!(
        "{}; the key of {} was generated (recovery share {}) but the daemon did not register it",
        error.message,
        field(generated, "wallet_id"),
        field(generated, "recovery_share"),
    );
    let mut details = error.details;
    if let Some(object) = details.as_object_mut() {
        object.insert("generated".into(), generated.clone());
    }
    CliError::new(error.code, message).with_details(details)
}

pub(crate) fn policy(daemon: &DaemonArg, command: PolicyCommand) -> CliResult<Report> {
    match command {
        PolicyCommand::Set { wallet, file } => {
            let id = wallet_id(&wallet)?;
            let document = read_file(&file)?;
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon
                .send_raw(mandate_client::Method::PUT, &["v1", "wallets", id.as_str(), "policy"], document)?
                .into())
        }
        PolicyCommand::Show { wallet } => {
            let id = wallet_id(&wallet)?;
            let shown = Daemon::login(&daemon.url)?.get(&["v1", "wallets", id.as_str(), "policy"], &[])?;
            let document = shown.get("document").map(pretty).unwrap_or_default();
            let text = format!(
                "wallet_id: {}\nversion: {}\nhash: {}\ndocument:\n{document}",
                field(&shown, "wallet_id"),
                field(&shown, "version"),
                field(&shown, "hash"),
            );
            Ok(Report::with_text(shown, text))
        }
        PolicyCommand::Test { wallet, file } => {
            let id = wallet_id(&wallet)?;
            let action = read_file(&file)?;
            let daemon = Daemon::login(&daemon.url)?;
            let explained = daemon.send_raw(
                mandate_client::Method::POST,
                &["v1", "wallets", id.as_str(), "policy", "evaluate"],
                action,
            )?;
            let text = explain_text(&explained);
            let denied = explained.pointer("/decision/verdict").and_then(Value::as_str) == Some("deny");
            let exit = if denied { crate::output::EXIT_DENIED } else { 0 };
            Ok(Report::with_text(explained, text).exiting(exit))
        }
    }
}

/// A decision in plain lines: verdict and tier, the deciding rule, the budgets.
fn explain_text(explained: &serde_json::Value) -> String {
    let decision = &explained["decision"];
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let mut lines = vec![
        format!("action: {}", explained["action"]),
        format!("verdict: {} (tier {})", text(&decision["verdict"]), text(&decision["tier"])),
        format!("rule: {} - {}", text(&decision["rule_id"]), text(&decision["reason"])),
    ];
    if let Some(code) = decision["code"].as_str() {
        lines.push(format!("code: {code}"));
    }
    if !decision["observed"].is_null() {
        lines.push(format!("observed: {}  limit: {}", text(&decision["observed"]), text(&decision["limit"])));
    }
    for budget in decision["budgets"].as_array().into_iter().flatten() {
        lines.push(format!(
            "budget {}: {} of {} left in {} s{}",
            text(&budget["rule_id"]),
            text(&budget["remaining"]),
            text(&budget["limit"]),
            budget["window_secs"],
            budget["frees_at"].as_u64().map(|t| format!(", frees at {t}")).unwrap_or_default()
        ));
    }
    lines.join("\n")
}

fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError::invalid(format!("cannot read {}: {e}", path.display())))
}

pub(crate) fn session(daemon: &DaemonArg, command: SessionCommand) -> CliResult<Report> {
    match command {
        SessionCommand::Create { wallet, ttl, max_renewals, absolute_lifetime, scopes } => {
            let id = wallet_id(&wallet)?;
            let mut body = Map::new();
            body.insert("wallet_id".into(), json!(id));
            body.insert("ttl_secs".into(), json!(ttl));
            if let Some(max_renewals) = max_renewals {
                body.insert("max_renewals".into(), json!(max_renewals));
            }
            if let Some(lifetime) = absolute_lifetime {
                body.insert("absolute_lifetime_secs".into(), json!(lifetime));
            }
            let scopes: Vec<&str> = scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
            if !scopes.is_empty() {
                body.insert("scopes".into(), json!(scopes));
            }
            let created = Daemon::login(&daemon.url)?.post(&["v1", "sessions"], Some(&Value::Object(body)))?;
            let session = created.get("session").cloned().unwrap_or(Value::Null);
            let text = format!(
                "{}\nSession token (shown once: store it now, it cannot be shown again):\n{}",
                session_line(&session),
                field(&created, "token"),
            );
            Ok(Report::with_text(created, text))
        }
        SessionCommand::List { wallet } => {
            let id = wallet.as_deref().map(wallet_id).transpose()?;
            let query: Vec<(&str, &str)> = id.iter().map(|id| ("wallet_id", id.as_str())).collect();
            let listed = Daemon::login(&daemon.url)?.get(&["v1", "sessions"], &query)?;
            let text = list_text(&listed, "sessions", "no sessions", session_line);
            Ok(Report::with_text(listed, text))
        }
        SessionCommand::Revoke { id } => {
            let id = api::path_id("session", &id)?;
            Ok(Daemon::login(&daemon.url)?.post(&["v1", "sessions", id, "revoke"], None)?.into())
        }
    }
}

pub(crate) fn operator(daemon: &DaemonArg, command: OperatorCommand) -> CliResult<Report> {
    let OperatorCommand::Key(command) = command;
    match command {
        OperatorKeyCommand::Create { name, scopes, ttl_days } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            let scopes: Vec<&str> = scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
            if !scopes.is_empty() {
                body.insert("scopes".into(), json!(scopes));
            }
            if let Some(days) = ttl_days {
                body.insert("ttl_days".into(), json!(days));
            }
            let created = Daemon::login(&daemon.url)?.post(&["v1", "operator-keys"], Some(&Value::Object(body)))?;
            let key = created.get("operator_key").cloned().unwrap_or(Value::Null);
            let text = format!(
                "{}\nOperator key (shown once: store it now in a file only you can read, and point \
                 MANDATE_OPERATOR_KEY_FILE at it):\n{}",
                operator_key_line(&key),
                field(&created, "key"),
            );
            Ok(Report::with_text(created, text))
        }
        OperatorKeyCommand::List => {
            let listed = Daemon::login(&daemon.url)?.get(&["v1", "operator-keys"], &[])?;
            let text = list_text(&listed, "operator_keys", "no operator keys", operator_key_line);
            Ok(Report::with_text(listed, text))
        }
        OperatorKeyCommand::Revoke { id } => {
            let id = api::path_id("operator key", &id)?;
            Ok(Daemon::login(&daemon.url)?.post(&["v1", "operator-keys", id, "revoke"], None)?.into())
        }
    }
}

fn operator_key_line(key: &Value) -> String {
    format!(
        "operator key {}  {:?}  scopes {}  expires_at {}  last_used_at {}{}",
        field(key, "id"),
        field(key, "name"),
        scopes_text(key),
        field(key, "expires_at"),
        field(key, "last_used_at"),
        revoked_suffix(key),
    )
}

pub(crate) fn audit(daemon: &DaemonArg, command: AuditCommand) -> CliResult<Report> {
    match command {
        AuditCommand::Verify { anchor } => {
            let anchor = anchor.map(|path| read_anchor(&path)).transpose()?;
            let seq = anchor.as_ref().map(|(seq, _)| seq.to_string());
            let query: Vec<(&str, &str)> = match (&seq, &anchor) {
                (Some(seq), Some((_, hash))) => vec![("anchor_seq", seq.as_str()), ("anchor_hash", hash.as_str())],
                _ => Vec::new(),
            };
            let verified = Daemon::login(&daemon.url)?.get(&["v1", "audit", "verify"], &query)?;
            if verified.get("ok").and_then(Value::as_bool) == Some(true) {
                let text = format!("audit trail intact: {} records", field(&verified, "records"));
                return Ok(Report::with_text(verified, text));
            }
            // An operator's script needs a non-zero exit and the problem (kind, seq, message).
            let problem = verified.get("problem").cloned().unwrap_or(verified);
            Err(CliError::new(
                ErrorCode::AuditChainBroken,
                format!("audit trail verification failed: {}", field(&problem, "message")),
            )
            .with_details(problem))
        }
        AuditCommand::Tail { lines } => {
            let count = lines.to_string();
            let tail = Daemon::login(&daemon.url)?.get(&["v1", "audit", "tail"], &[("n", &count)])?;
            let text = list_text(&tail, "records", "no audit records", audit_line);
            Ok(Report::with_text(tail, text))
        }
    }
}

/// `mandate dev fund`: ether for a wallet on a local dev chain (the daemon checks).
pub(crate) fn dev_fund(daemon: &DaemonArg, wallet: &str, amount: &str, chain: Option<&str>) -> CliResult<Report> {
    let id = wallet_id(wallet)?;
    let mut body = json!({"amount": amount.trim()});
    if let (Some(chain), Some(map)) = (chain, body.as_object_mut()) {
        map.insert("chain".into(), json!(chain));
    }
    let funded = Daemon::login(&daemon.url)?.post(&["v1", "wallets", id.as_str(), "dev", "fund"], Some(&body))?;
    let text = format!(
        "funded {} with {} ETH ({}): balance {} ETH",
        field(&funded, "address"),
        field(&funded, "amount"),
        field(&funded, "method"),
        field(&funded, "balance"),
    );
    Ok(Report::with_text(funded, text))
}

/// Unix seconds as a UTC date and time (`2026-11-30 14:05:09 UTC`), or the number as
/// it is when it is out of range.
pub(crate) fn time_text(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
        .map(|at| at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// The scalar fields of a JSON object as `key=value` pairs (long texts shortened).
fn scalars_text(value: &Value) -> String {
    let Some(object) = value.as_object() else {
        return String::new();
    };
    let pairs: Vec<String> = object
        .iter()
        .filter_map(|(key, field)| {
            let text = match field {
                Value::String(text) if text.chars().count() > 70 => {
                    format!("{}…", text.chars().take(69).collect::<String>())
                }
                Value::String(text) => text.clone(),
                Value::Number(_) | Value::Bool(_) => field.to_string(),
                _ => return None,
            };
            Some(format!("{key}={text}"))
        })
        .collect();
    pairs.join(" ")
}

/// One audit record in a line: sequence, time, actor, event, wallet, the decision's
/// verdict and rule when there is one, and the details' plain fields.
fn audit_line(record: &Value) -> String {
    let mut line = format!(
        "#{}  {}  {}  {}",
        field(record, "seq"),
        record.get("ts").and_then(Value::as_u64).map(time_text).unwrap_or_else(|| "-".into()),
        field(record, "actor"),
        field(record, "event"),
    );
    if let Some(wallet) = record.get("wallet").and_then(Value::as_str) {
        line.push_str(&format!("  {wallet}"));
    }
    if let Some(decision) = record.get("decision").filter(|d| d.is_object()) {
        line.push_str(&format!("  {} ({})", field(decision, "verdict"), field(decision, "rule_id")));
    }
    let details = record.get("details").map(scalars_text).unwrap_or_default();
    if !details.is_empty() {
        line.push_str(&format!("  {details}"));
    }
    line
}

/// Reads `{"seq", "hash"}` from the anchor file `mandate cosigner anchor` printed.
fn read_anchor(path: &std::path::Path) -> CliResult<(u64, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::invalid(format!("{}: {e}", path.display())))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::invalid(format!("{} is not the anchor JSON: {e}", path.display())))?;
    match (value.get("seq").and_then(Value::as_u64), value.get("hash").and_then(Value::as_str)) {
        (Some(seq), Some(hash)) => Ok((seq, hash.to_string())),
        _ => Err(CliError::invalid(format!("{} has no seq and hash", path.display()))),
    }
}

fn wallet_id(text: &str) -> CliResult<WalletId> {
    text.trim().parse().map_err(|e: mandate_core::IdError| CliError::invalid(e.to_string()))
}

/// The array under `key` (empty if the answer has none).
fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// One line per item of the array under `key`, or `empty`.
fn list_text(value: &Value, key: &str, empty: &str, line: impl Fn(&Value) -> String) -> String {
    let lines: Vec<String> = items(value, key).iter().map(line).collect();
    if lines.is_empty() {
        empty.to_string()
    } else {
        lines.join("\n")
    }
}

fn wallet_line(wallet: &Value) -> String {
    format!(
        "{}  {}  {}  chain {}",
        field(wallet, "id"),
        field(wallet, "name"),
        field(wallet, "address"),
        field(wallet, "chain_id")
    )
}

/// The `scopes` array of a key or session, comma-separated.
fn scopes_text(value: &Value) -> String {
    let scopes: Vec<&str> = items(value, "scopes").iter().filter_map(Value::as_str).collect();
    scopes.join(",")
}

/// `  revoked at <time>` for a revoked key or session, else nothing.
fn revoked_suffix(value: &Value) -> String {
    match value.get("revoked_at") {
        Some(Value::Number(at)) => format!("  revoked at {at}"),
        _ => String::new(),
    }
}

fn session_line(session: &Value) -> String {
    format!(
        "session {}  wallet {}  scopes {}  expires_at {}  absolute_expires_at {}  renewals {}/{}{}",
        field(session, "id"),
        field(session, "wallet_id"),
        scopes_text(session),
        field(session, "expires_at"),
        field(session, "absolute_expires_at"),
        field(session, "renewals"),
        field(session, "max_renewals"),
        revoked_suffix(session),
    )
}

/// A field as text: strings bare, `-` when absent or null, other values as JSON.
fn field(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => "-".to_string(),
        Some(other) => other.to_string(),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_daemons_rule() {
        assert_eq!(wallet_name("  ops ").unwrap(), "ops");
        for bad in ["", "   ", "a\tb", &"x".repeat(65)] {
            assert!(wallet_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_failed_registration_names_the_generated_key() {
        let generated = json!({"wallet_id": "wal_abc", "address": "0x01", "recovery_share": "/tmp/r.share"});
        let error = CliError::new(ErrorCode::NameTaken, "taken").with_details(json!({"x": 1}));
        let error = unregistered(error, &generated);
        assert_eq!(error.code, ErrorCode::NameTaken);
        assert!(error.message.contains("wal_abc") && error.message.contains("/tmp/r.share"), "{}", error.message);
        assert_eq!(error.details["x"], 1);
        assert_eq!(error.details["generated"]["wallet_id"], "wal_abc");
    }

    #[test]
    fn lists_render_one_line_per_item() {
        let listed = json!({"wallets": [{"id": "wal_a", "name": "ops", "address": "0xA", "chain_id": 1}]});
        assert_eq!(list_text(&listed, "wallets", "none", wallet_line), "wal_a  ops  0xA  chain 1");
        assert_eq!(list_text(&json!({"wallets": []}), "wallets", "none", wallet_line), "none");
        let session = json!({"id": "ses_1", "wallet_id": "wal_a", "scopes": ["read", "freeze"], "expires_at": 5,
                             "absolute_expires_at": 9, "renewals": 0, "max_renewals": 2, "revoked_at": 7});
        let line = session_line(&session);
        assert!(line.contains("scopes read,freeze") && line.contains("renewals 0/2") && line.contains("revoked at 7"));
    }

    #[test]
    fn audit_records_read_as_lines() {
        let record = json!({"seq": 7, "ts": 1_764_511_509u64, "actor": "agent:ses_1", "event": "policy.decision",
                            "wallet": "wal_a", "decision": {"verdict": "deny", "rule_id": "per-tx"},
                            "details": {"tx_id": "tx_1", "value_wei": "5", "nested": {"x": 1}},
                            "prev_hash": "00", "hash": "ab"});
        assert_eq!(
            audit_line(&record),
            "#7  2025-11-30 14:05:09 UTC  agent:ses_1  policy.decision  wal_a  deny (per-tx)  tx_id=tx_1 value_wei=5"
        );
        assert_eq!(time_text(0), "1970-01-01 00:00:00 UTC");
    }
}
