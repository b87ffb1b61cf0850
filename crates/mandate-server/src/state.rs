//! What every request handler shares.

use std::sync::Arc;

use mandate_chain::rpc::RpcClient;
use mandate_store::Store;

use crate::auth::AdminTokens;
use crate::error::{ApiError, ApiResult};
use crate::party::ServiceParty;

/// The daemon's shared state.
pub(crate) struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) rpc: RpcClient,
    pub(crate) chain_id: u64,
    pub(crate) service: Arc<ServiceParty>,
    pub(crate) admin_tokens: AdminTokens,
    pub(crate) master_hash: String,
    /// Seals secrets the daemon keeps (webhook secrets) at rest.
    pub(crate) sealer: crate::seal::SecretSealer,
    /// Password checks one at a time behind a bounded queue; failed logins limited per client.
    pub(crate) login_limiter: crate::guard::LoginLimiter,
    /// How long an owner may take to approve a held transaction.
    pub(crate) approval_ttl_secs: u64,
    /// How long a freeze lasts at least before an owner may lift it.
    pub(crate) freeze_cooldown_secs: u64,
    /// Wakes the executor of held transactions (an approval arrived).
    pub(crate) executor_wake: tokio::sync::Notify,
    /// Wakes the webhook dispatcher (an event was recorded).
    pub(crate) webhook_wake: tokio::sync::Notify,
}

/// Runs blocking work (SQLite, audit fsync, threshold signing) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}
