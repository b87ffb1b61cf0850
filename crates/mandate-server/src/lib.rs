//! The Mandate daemon: provisioning (`mandate init`), and `mandate serve` — the REST
//! API, operator and agent authentication, policy-gated signing through the service
//! and cosigner parties, EVM broadcast and receipt tracking, all audited.
//!
//! Layout of a data directory (`--data-dir`, default `./mandate-data`):
//! `data.db` (SQLite, WAL), `audit/audit.jsonl`, `master-password` (only with
//! `--auto-provision`), `service/` (the embedded service party's identity, pins and
//! shares), `cosigner/` and `cosigner-password` (the local cosigner of `--dev`), and
//! `recovery/` (the recovery party's identity and pins, used by `mandate wallet create`).

mod error;
pub mod provision;

pub use error::{ApiError, ApiResult};
pub use provision::{init, InitOptions};

use std::path::PathBuf;

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
}

/// Runs the daemon until SIGINT/SIGTERM. Prints one JSON line when listening:
/// `{"listening": "127.0.0.1:3100", "chain_id": …, "service_party": …}`.
pub fn run(config: ServeConfig) -> ApiResult<()> {
    let _ = config;
    Err(ApiError::internal("not built yet"))
}
