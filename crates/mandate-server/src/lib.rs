//! The Mandate daemon: provisioning (`mandate init`), and `mandate serve` — the REST
//! API, operator and agent authentication, policy-gated signing through the service
//! and cosigner parties, EVM broadcast and receipt tracking, all audited.
//!
//! Layout of a data directory (`--data-dir`, default `./mandate-data`):
//! `data.db` (SQLite, WAL), `audit/audit.jsonl`, `master-password` (only with
//! `--auto-provision`) and `service/` (the embedded service party's identity, pins and
//! shares). That is all in production: the cosigner and the recovery party have their
//! own directories elsewhere and are pinned by public key (`mandate pair`). Only the
//! development layout (`mandate init --dev`, for `mandate serve --dev`) adds `cosigner/`
//! and `cosigner-password` (the local cosigner) and `recovery/` (the recovery party's
//! identity and pins): one directory then holds two shares per wallet.

mod actions;
mod agent_auth;
mod approvals;
mod audit;
mod auth;
mod context;
mod dashboard;
mod dev;
mod error;
mod executor;
mod freeze;
mod guard;
pub mod logging;
mod mcp;
mod metrics;
mod openapi;
mod party;
mod ports;
mod provision;
mod request;
mod routes;
mod seal;
mod send;
mod state;
mod task;
mod timing;
mod tokens;
mod tracker;
mod webhooks;
mod x402;

pub use auth::OPERATOR_KEY_PREFIX;
pub use error::{ApiError, ApiResult};
pub use mandate_store::DatabaseUrl;
pub use ports::{Chain, ChainFuture, KeyRef, SignFailure, Signer};
pub use provision::{database_url, fingerprint, init, pair, party_json, InitOptions, PairOptions};
pub use state::{AppConfig, AppState, DEFAULT_RESERVATION_LEASE_SECS};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mandate_chain::rpc::RpcClient;
use mandate_core::{ErrorCode, Role};
use mandate_mpc::net::read_secret_env;
use mandate_store::Store;
use serde_json::json;

use crate::provision::{verify_password, Layout, MASTER_HASH, MASTER_PASSWORD_VAR, SERVICE_ADDR};

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// How `mandate serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The data directory made by `mandate init`.
    pub data_dir: PathBuf,
    /// REST listen address.
    pub listen: String,
    /// The EVM JSON-RPC endpoint (HTTPS unless local) of the default chain.
    pub rpc_url: String,
    /// Further chains served (`--chain NAME=URL`): name and RPC URL. The chain ids are
    /// read from the nodes; `rpc_url`'s chain is named `default`.
    pub chains: Vec<(String, String)>,
    /// Also run a local cosigner process (development only).
    pub dev: bool,
    /// How long an owner may take to approve a held transaction (default 1 h).
    pub approval_ttl_secs: u64,
    /// How long a freeze must last before an owner may lift it (default 10 min).
    pub freeze_cooldown_secs: u64,
    /// `Host` names accepted besides the loopback names and the listen address (a
    /// reverse proxy's public name); anything else is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// The PostgreSQL database shared by several daemons (`--database`,
    /// `MANDATE_DATABASE_URL`); `None`: SQLite in the data directory. Its password is
    /// never shown.
    pub database: Option<DatabaseUrl>,
    /// Where this daemon's service party listens for recovery-coordinated runs
    /// (`--service-listen`); `None`: the address given at `mandate init`. Replicas
    /// on one host, which share that stored address, each need their own.
    pub service_listen: Option<String>,
    /// How log lines are written; the `--dev` cosigner writes its own the same way.
    pub log_format: logging::LogFormat,
    /// Seconds after which a transaction still `reserved` (its daemon died or lost the
    /// database before recording a signature) is released; at least 5.
    pub reservation_lease_secs: u64,
}

/// Default of [`ServeConfig::approval_ttl_secs`].
pub const DEFAULT_APPROVAL_TTL_SECS: u64 = 3600;
/// Default of [`ServeConfig::freeze_cooldown_secs`].
pub const DEFAULT_FREEZE_COOLDOWN_SECS: u64 = 600;

/// The local cosigner of `--dev`, stopped with the daemon. It also exits by itself
/// when the daemon dies (it watches the stdin pipe held here).
struct DevCosigner {
    child: Child,
    _stdin: Option<std::process::ChildStdin>,
}

impl Drop for DevCosigner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The only variables of the daemon's environment the `--dev` cosigner inherits:
/// none of them is a secret. Everything else (the master password and its file, a
/// recovery passphrase, tokens) stays with the daemon.
const DEV_CHILD_ENV: [&str; 8] =
    ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "MANDATE_LOG_LEVEL", "RUST_BACKTRACE"];

/// The `--dev` cosigner's environment: the allowlisted variables of `parent`, and the
/// cosigner's own password file.
fn dev_child_env(
    parent: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    password_file: &Path,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<_> = parent.filter(|(name, _)| DEV_CHILD_ENV.iter().any(|allowed| name == allowed)).collect();
    env.push(("MANDATE_COSIGNER_PASSWORD_FILE".into(), password_file.as_os_str().to_owned()));
    env
}

const DEV_WARNING: &str = "\
================================================================================
WARNING: mandate serve --dev -- SINGLE-HOST DEVELOPMENT LAYOUT
This data directory holds two shares of every wallet (the service's and the
cosigner's) and the recovery party's identity: whoever reads it can sign without
this daemon. Do not let it guard real funds. In production the three parties
share no file and no secret: see README, \"Production layout\".
================================================================================";

fn start_dev_cosigner(layout: &Layout, addr: &str, log_format: logging::LogFormat) -> ApiResult<DevCosigner> {
    match log_format {
        // A block a person cannot miss; in JSON, one line a collector keeps.
        logging::LogFormat::Text => eprintln!("{DEV_WARNING}"),
        logging::LogFormat::Json => tracing::warn!(
            layout = "dev",
            "{}",
            DEV_WARNING.lines().filter(|line| !line.starts_with('=')).collect::<Vec<_>>().join(" ")
        ),
    }
    let exe = std::env::current_exe().map_err(|e| ApiError::internal(format!("locating the mandate binary: {e}")))?;
    let mut child = Command::new(exe)
        .args(["cosigner", "serve", "--data-dir"])
        .arg(layout.home(Role::Cosigner).dir())
        .args(["--listen", addr, "--exit-with-stdin", "--log-format", &log_format.to_string()])
        .env_clear()
        .envs(dev_child_env(std::env::vars_os(), &layout.cosigner_password()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| ApiError::internal(format!("starting the local cosigner: {e}")))?;
    let stdout = child.stdout.take();
    let stdin = child.stdin.take();
    let guard = DevCosigner { child, _stdin: stdin };
    let mut line = String::new();
    if let Some(stdout) = stdout {
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).map_err(|e| ApiError::internal(format!("local cosigner: {e}")))?;
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
    }
    if !line.contains("listening") {
        return Err(ApiError::new(
            ErrorCode::PeerUnavailable,
            "the local cosigner did not start (see its error above)",
        ));
    }
    Ok(guard)
}

fn not_paired(detail: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInput,
        format!(
            "the service party is not paired ({detail}): run `mandate pair --cosigner-pubkey … --cosigner-addr … \
             --recovery-pubkey …` with the keys the cosigner's and the recovery party's `init` printed"
        ),
    )
}

/// Checks that the data directory fits the mode, before any secret is read: `--dev`
/// needs the single-host layout; without it the directory must hold the service party
/// only, paired with a cosigner (key and address) and a recovery party (key). Returns
/// the cosigner's address.
fn check_layout(layout: &Layout, dev: bool) -> ApiResult<String> {
    let foreign = layout.foreign_material();
    if dev {
        if !layout.cosigner_password().exists() || !layout.home(Role::Cosigner).dir().exists() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "--dev needs the single-host layout of `mandate init --dev`; {} is a production data directory: \
                     run its cosigner with `mandate cosigner serve` and start the daemon without --dev",
                    layout.root.display()
                ),
            ));
        }
    } else if !foreign.is_empty() {
        let found: Vec<String> = foreign.iter().map(|path| path.display().to_string()).collect();
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{} holds another party's material ({}): that is the single-host layout of `mandate init --dev`, \
                 for `mandate serve --dev` only; in production the cosigner and the recovery party live elsewhere \
                 (README, \"Production layout\")",
                layout.root.display(),
                found.join(", ")
            ),
        ));
    }
    let home = layout.home(Role::Service);
    if !home.dir().join("peers.json").exists() {
        return Err(not_paired("no pinned peers"));
    }
    let peers = home.peers()?;
    peers.get(Role::Recovery).map_err(|_| not_paired("no recovery key"))?;
    peers
        .get(Role::Cosigner)
        .ok()
        .and_then(|cosigner| cosigner.addr.clone())
        .ok_or_else(|| not_paired("no cosigner key and address"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

/// The whole HTTP surface (REST, `/mcp`, the dashboard) over `state`, with the `Host`
/// check in front: what `mandate serve` listens with, and what tests drive in process
/// (`tower::ServiceExt::oneshot`). Background work (receipts, held transactions,
/// webhook deliveries) is not part of it.
pub fn app(state: Arc<AppState>) -> axum::Router {
    let hosts = state.hosts.clone();
    // The Host check wraps everything the listener serves; `/mcp`'s in-process calls
    // to the REST router do not pass through it (they carry no Host).
    mcp::with_mcp(routes::router(state.clone()), hosts.names())
        .merge(dashboard::router(state))
        .layer(axum::middleware::from_fn_with_state(hosts, guard::check_host))
        .layer(axum::middleware::from_fn(logging::request_log))
}

/// Runs the daemon until SIGINT/SIGTERM. Prints one JSON line when listening:
/// `{"listening": "127.0.0.1:3100", "chain_id": …, "service_party": …}`.
pub fn run(config: ServeConfig) -> ApiResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ApiError::internal(format!("starting the runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> ApiResult<()> {
    let layout = Layout::new(&config.data_dir);
    if !provision::initialised(&config.data_dir) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is not initialised; run `mandate init` first", config.data_dir.display()),
        ));
    }
    let cosigner_addr = check_layout(&layout, config.dev)?;
    let mut nodes = vec![("default".to_string(), RpcClient::new(&config.rpc_url)?)];
    for (name, url) in &config.chains {
        nodes.push((name.clone(), RpcClient::new(url)?));
    }
    let store = Arc::new(Store::open_with(&config.data_dir, config.database.as_ref())?);
    let master_hash = store
        .meta(MASTER_HASH)?
        .ok_or_else(|| ApiError::internal("no master password hash stored; run `mandate init`"))?;
    let password = read_secret_env(MASTER_PASSWORD_VAR)?;
    let (hash, check) = (master_hash.clone(), password.clone());
    if !task::blocking(move || verify_password(&hash, &check)).await? {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "the master password does not match this data directory",
        ));
    }
    // Reservations a previous run left behind (it stopped between reserving and
    // recording the signature: nothing was broadcast). On a database shared by several
    // daemons a `reserved` transaction may be a live replica's, being signed right now:
    // only one older than the lease is taken (the tracker goes on doing so).
    let lease = config.reservation_lease_secs.max(5);
    let cutoff = if store.is_shared() { now().saturating_sub(lease) } else { u64::MAX };
    tracker::release_abandoned(&store, cutoff)?;
    let service_addr = match &config.service_listen {
        Some(addr) => addr.clone(),
        None => store.meta(SERVICE_ADDR)?.unwrap_or_else(|| "127.0.0.1:3201".into()),
    };
    let _cosigner =
        if config.dev { Some(start_dev_cosigner(&layout, &cosigner_addr, config.log_format)?) } else { None };
    let mut served = Vec::new();
    for (name, rpc) in nodes {
        let id = rpc.chain_id().await?;
        dev::warn_other_genesis(&store, id, rpc.genesis_hash().await?, &config.data_dir)?;
        let node: Arc<dyn Chain> = Arc::new(rpc);
        served.push(state::ServedChain { name, id, node });
    }
    let (chain_id, rpc) = match served.first() {
        Some(first) => (first.id, first.node.clone()),
        None => return Err(ApiError::new(ErrorCode::InvalidInput, "no chain to serve")),
    };

    let service_home = layout.home(Role::Service);
    let service = Arc::new(party::ServiceParty::open(&service_home, password.clone(), store.clone())?);
    let party_listener = TcpListener::bind(&service_addr).map_err(|e| {
        ApiError::new(ErrorCode::PeerUnavailable, format!("service party cannot bind {service_addr}: {e}"))
    })?;
    service.listen(service_home, party_listener)?;

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener.local_addr().map_err(|e| ApiError::internal(e.to_string()))?;
    let app_config = AppConfig {
        approval_ttl_secs: config.approval_ttl_secs,
        freeze_cooldown_secs: config.freeze_cooldown_secs,
        listen_ip: local.ip(),
        allowed_hosts: config.allowed_hosts.clone(),
    };
    let state_store = store.clone();
    let state = Arc::new(
        task::blocking(move || AppState::new(state_store, rpc, chain_id, service, &password, app_config))
            .await?
            .with_chains(served)?
            .with_reservation_lease(lease)
            .with_cosigner_addr(Some(cosigner_addr.clone())),
    );
    let tracker = tokio::spawn(tracker::track_receipts(state.clone()));
    let executor = tokio::spawn(executor::run_executor(state.clone()));
    let dispatcher = tokio::spawn(webhooks::run_dispatcher(state.clone()));
    println!(
        "{}",
        json!({"listening": local.to_string(), "chain_id": chain_id, "service_party": service_addr,
               "chains": state.chains.iter().map(|c| json!({"name": c.name, "chain_id": c.id})).collect::<Vec<_>>(),
               "cosigner": cosigner_addr, "dev": config.dev})
    );
    let router = app(state.clone());
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await;
    tracker.abort();
    executor.abort();
    dispatcher.abort();
    // Let in-flight blocking work (a signing run, an audit write) finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tracing::info!("mandate: stopped");
    result.map_err(|e| ApiError::internal(format!("server: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_cosigner_inherits_no_secret_of_the_daemon() {
        let parent = [
            ("PATH", "/usr/bin"),
            ("MANDATE_MASTER_PASSWORD", "master"),
            ("MANDATE_MASTER_PASSWORD_FILE", "/data/master-password"),
            ("MANDATE_RECOVERY_PASSPHRASE", "recovery"),
            ("MANDATE_COSIGNER_PASSWORD", "chosen by the shell"),
            ("MANDATE_SESSION_TOKEN", "mnd_sess_x"),
            ("MANDATE_LOG_LEVEL", "debug"),
        ]
        .map(|(name, value)| (name.into(), value.into()));
        let env = dev_child_env(parent.into_iter(), Path::new("/data/cosigner-password"));
        let names: Vec<&str> = env.iter().filter_map(|(name, _)| name.to_str()).collect();
        assert_eq!(names, ["PATH", "MANDATE_LOG_LEVEL", "MANDATE_COSIGNER_PASSWORD_FILE"]);
        assert_eq!(env[2].1, "/data/cosigner-password");
    }
}
