//! The Mandate daemon: provisioning (`mandate init`), and `mandate serve` — the REST
//! API, operator and agent authentication, policy-gated signing through the service
//! and cosigner parties, EVM broadcast and receipt tracking, all audited.
//!
//! Layout of a data directory (`--data-dir`, default `./mandate-data`):
//! `data.db` (SQLite, WAL), `audit/audit.jsonl`, `master-password` (only with
//! `--auto-provision`), `service/` (the embedded service party's identity, pins and
//! shares), `cosigner/` and `cosigner-password` (the local cosigner of `--dev`), and
//! `recovery/` (the recovery party's identity and pins, used by `mandate wallet create`).

mod actions;
mod api;
mod approvals;
mod auth;
mod dashboard;
mod error;
mod executor;
mod freeze;
mod guard;
mod mcp;
mod openapi;
mod party;
mod provision;
mod request;
mod send;
mod state;
mod tracker;
mod webhooks;

pub use error::{ApiError, ApiResult};
pub use provision::{init, InitOptions};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mandate_chain::rpc::RpcClient;
use mandate_core::{ErrorCode, Role};
use mandate_mpc::net::read_secret_env;
use mandate_store::Store;
use serde_json::json;

use crate::provision::{verify_password, Layout, COSIGNER_ADDR, MASTER_HASH, MASTER_PASSWORD_VAR, SERVICE_ADDR};
use crate::state::AppState;

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
    /// The EVM JSON-RPC endpoint (HTTPS unless local).
    pub rpc_url: String,
    /// Also run a local cosigner process (development only).
    pub dev: bool,
    /// How long an owner may take to approve a held transaction (default 1 h).
    pub approval_ttl_secs: u64,
    /// How long a freeze must last before an owner may lift it (default 10 min).
    pub freeze_cooldown_secs: u64,
    /// `Host` names accepted besides the loopback names and the listen address (a
    /// reverse proxy's public name); anything else is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
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

fn start_dev_cosigner(layout: &Layout, addr: &str) -> ApiResult<DevCosigner> {
    eprintln!(
        "WARNING: --dev runs the cosigner on this host. In production run `mandate cosigner serve` on another \
         host with its own limits, so that one compromised machine cannot sign alone."
    );
    let exe = std::env::current_exe().map_err(|e| ApiError::internal(format!("locating the mandate binary: {e}")))?;
    let mut child = Command::new(exe)
        .args(["cosigner", "serve", "--data-dir"])
        .arg(layout.home(Role::Cosigner).dir())
        .args(["--listen", addr, "--exit-with-stdin"])
        .env_remove("MANDATE_COSIGNER_PASSWORD")
        .env("MANDATE_COSIGNER_PASSWORD_FILE", layout.cosigner_password())
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

/// Releases reservations a previous run left behind (it stopped between reserving and
/// recording the signature: nothing was broadcast, so the spend and nonce are freed).
fn release_interrupted(store: &Store) -> ApiResult<()> {
    for tx in store.reserved()? {
        let reason = "the daemon stopped before this transaction was signed and recorded; nothing was broadcast";
        let entry = api::audit_entry(
            "daemon",
            "transaction.released",
            Some(&tx.wallet_id),
            json!({"tx_id": tx.id, "error": reason}),
        );
        store.release(&tx.id, reason, now(), entry)?;
        eprintln!("released interrupted transaction {}", tx.id);
    }
    Ok(())
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
    if !config.data_dir.join("data.db").exists() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is not initialised; run `mandate init` first", config.data_dir.display()),
        ));
    }
    let rpc = RpcClient::new(&config.rpc_url)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    let master_hash = store
        .meta(MASTER_HASH)?
        .ok_or_else(|| ApiError::internal("no master password hash stored; run `mandate init`"))?;
    let password = read_secret_env(MASTER_PASSWORD_VAR)?;
    let (hash, check) = (master_hash.clone(), password.clone());
    if !state::blocking(move || verify_password(&hash, &check)).await? {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "the master password does not match this data directory",
        ));
    }
    release_interrupted(&store)?;
    let service_addr = store.meta(SERVICE_ADDR)?.unwrap_or_else(|| "127.0.0.1:3201".into());
    let cosigner_addr = store.meta(COSIGNER_ADDR)?.unwrap_or_else(|| "127.0.0.1:3200".into());
    let _cosigner = if config.dev { Some(start_dev_cosigner(&layout, &cosigner_addr)?) } else { None };
    let chain_id = rpc.chain_id().await?;
    for wallet in store.wallets()? {
        if wallet.chain_id != chain_id {
            eprintln!("warning: wallet {} is on chain {} but the node serves {chain_id}", wallet.id, wallet.chain_id);
        }
    }

    let service_home = layout.home(Role::Service);
    let service = Arc::new(party::ServiceParty::open(&service_home, password)?);
    let party_listener = TcpListener::bind(&service_addr).map_err(|e| {
        ApiError::new(ErrorCode::PeerUnavailable, format!("service party cannot bind {service_addr}: {e}"))
    })?;
    service.listen(service_home, party_listener, store.clone())?;

    let state = Arc::new(AppState {
        store,
        rpc,
        chain_id,
        service,
        admin_tokens: auth::AdminTokens::default(),
        master_hash,
        login_limiter: guard::LoginLimiter::default(),
        approval_ttl_secs: config.approval_ttl_secs,
        freeze_cooldown_secs: config.freeze_cooldown_secs,
        executor_wake: tokio::sync::Notify::new(),
        webhook_wake: tokio::sync::Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener.local_addr().map_err(|e| ApiError::internal(e.to_string()))?;
    let tracker = tokio::spawn(tracker::track_receipts(state.clone()));
    let executor = tokio::spawn(executor::run_executor(state.clone()));
    let dispatcher = tokio::spawn(webhooks::run_dispatcher(state.clone()));
    println!(
        "{}",
        json!({"listening": local.to_string(), "chain_id": chain_id, "service_party": service_addr,
               "cosigner": cosigner_addr, "dev": config.dev})
    );
    let hosts = guard::AllowedHosts::new(local.ip(), &config.allowed_hosts);
    // The Host check wraps everything the listener serves; `/mcp`'s in-process calls
    // to the REST router do not pass through it (they carry no Host).
    let router = mcp::with_mcp(api::router(state.clone()), hosts.names())
        .merge(dashboard::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(hosts, guard::check_host));
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await;
    tracker.abort();
    executor.abort();
    dispatcher.abort();
    // Let in-flight blocking work (a signing run, an audit write) finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    eprintln!("mandate: stopped");
    result.map_err(|e| ApiError::internal(format!("server: {e}")))
}
