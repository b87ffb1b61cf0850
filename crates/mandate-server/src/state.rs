//! What every request handler shares, and how it is built: the store, the ports to
//! the outside world ([`Chain`], [`Signer`]) and the daemon's settings.

use std::net::IpAddr;
use std::sync::Arc;

use mandate_store::Store;

use crate::error::{ApiError, ApiResult};
use crate::guard::{AllowedHosts, LoginLimiter};
use crate::ports::{Chain, Signer};
use crate::seal::SecretSealer;
use crate::tokens::AdminTokens;

/// The daemon's settings that requests see.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// How long an owner may take to approve a held transaction, in seconds.
    pub approval_ttl_secs: u64,
    /// How long a freeze lasts at least before an owner may lift it, in seconds.
    pub freeze_cooldown_secs: u64,
    /// The address the daemon listens on (its IP is an allowed `Host`).
    pub listen_ip: IpAddr,
    /// Further `Host` names the daemon answers to (behind a reverse proxy).
    pub allowed_hosts: Vec<String>,
}

/// The daemon's shared state.
pub struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) chain: Arc<dyn Chain>,
    pub(crate) chain_id: u64,
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) admin_tokens: AdminTokens,
    pub(crate) master_hash: String,
    /// Seals secrets the daemon keeps (webhook secrets) at rest.
    pub(crate) sealer: SecretSealer,
    /// Password checks one at a time behind a bounded queue; failed logins limited per client.
    pub(crate) login_limiter: LoginLimiter,
    /// How long an owner may take to approve a held transaction.
    pub(crate) approval_ttl_secs: u64,
    /// How long a freeze lasts at least before an owner may lift it.
    pub(crate) freeze_cooldown_secs: u64,
    /// The `Host` names the daemon answers to.
    pub(crate) hosts: AllowedHosts,
    /// Parsed policies by their hash (see `context::policy_of`).
    pub(crate) policies: std::sync::Mutex<std::collections::HashMap<String, Arc<mandate_core::policy::Policy>>>,
    /// The genesis hash each wallet is bound to (see `context::same_chain`).
    pub(crate) wallet_genesis: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Prometheus counters (`GET /metrics`).
    pub(crate) metrics: crate::metrics::Metrics,
    /// Where the cosigner listens, for the readiness check (`None`: not checked).
    pub(crate) cosigner_addr: Option<String>,
    /// Wakes the executor of held transactions (an approval arrived).
    pub(crate) executor_wake: tokio::sync::Notify,
    /// Wakes the webhook dispatcher (an event was recorded).
    pub(crate) webhook_wake: tokio::sync::Notify,
}

impl AppState {
    /// The state over `store` (opened, with the master password's hash in its meta
    /// table), the node behind `chain` (serving `chain_id`) and `signer`. The key that
    /// seals secrets at rest is derived from `master_password` (Argon2id: slow; run
    /// this off the async workers), and secrets stored in the clear are sealed.
    pub fn new(
        store: Arc<Store>,
        chain: Arc<dyn Chain>,
        chain_id: u64,
        signer: Arc<dyn Signer>,
        master_password: &[u8],
        config: AppConfig,
    ) -> ApiResult<AppState> {
        let master_hash = store
            .meta(crate::provision::MASTER_HASH)?
            .ok_or_else(|| ApiError::internal("no master password hash stored; run `mandate init`"))?;
        let sealer = crate::seal::open_sealer(&store, master_password)?;
        Ok(AppState {
            store,
            chain,
            chain_id,
            signer,
            admin_tokens: AdminTokens::default(),
            master_hash,
            sealer,
            login_limiter: LoginLimiter::default(),
            approval_ttl_secs: config.approval_ttl_secs,
            freeze_cooldown_secs: config.freeze_cooldown_secs,
            hosts: AllowedHosts::new(config.listen_ip, &config.allowed_hosts),
            policies: std::sync::Mutex::default(),
            wallet_genesis: std::sync::Mutex::default(),
            metrics: crate::metrics::Metrics::new(),
            cosigner_addr: None,
            executor_wake: tokio::sync::Notify::new(),
            webhook_wake: tokio::sync::Notify::new(),
        })
    }
}

impl AppState {
    /// The state with the cosigner's address for the readiness check (`/v1/ready`).
    pub fn with_cosigner_addr(mut self, addr: Option<String>) -> AppState {
        self.cosigner_addr = addr;
        self
    }
}
