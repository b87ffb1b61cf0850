//! `mandate init`: the data directory, the master password hash, and the three
//! parties' identity keys pinned to each other.

use std::path::PathBuf;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Options of `mandate init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The data directory to create.
    pub data_dir: PathBuf,
    /// Generate the master password into `<data_dir>/master-password` (0600) instead
    /// of reading `MANDATE_MASTER_PASSWORD` / `_FILE`.
    pub auto_provision: bool,
    /// Where the local cosigner listens (pinned in the other parties' books).
    pub cosigner_addr: String,
    /// Where the daemon's embedded service party listens.
    pub service_addr: String,
}

/// Creates the data directory. Refuses an initialised one.
pub fn init(options: &InitOptions) -> ApiResult<Value> {
    let _ = options;
    Err(ApiError::internal("not built yet"))
}
