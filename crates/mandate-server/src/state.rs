//! What every request handler shares, and how it is built: the store, the ports to
//! the outside world ([`Chain`], [`Signer`]) and the daemon's settings.

use std::net::IpAddr;
use std::sync::Arc;

use mandate_core::ErrorCode;
use mandate_store::Store;
use serde_json::json;

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

/// A chain the daemon serves: its name (`--chain NAME=URL`), its id (read from the
/// node) and the node.
#[derive(Clone)]
pub struct ServedChain {
    /// The name requests may use for it (`"chain": "base"`).
    pub name: String,
    /// Its chain id, as the node reports it.
    pub id: u64,
    /// The node.
    pub node: Arc<dyn Chain>,
}

/// How long a transaction may stay `reserved` (reserved, not yet recorded as signed)
/// before it is taken for abandoned: its daemon died, or lost the database, between
/// reserving and recording the signature. Longer than any signing run can last (the
/// parties give up on a silent peer after 120 s).
pub const DEFAULT_RESERVATION_LEASE_SECS: u64 = 180;

/// The daemon's shared state.
pub struct AppState {
    pub(crate) store: Arc<Store>,
    /// Every chain served, the default first (never empty).
    pub(crate) chains: Vec<ServedChain>,
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
    pub(crate) wallet_genesis: std::sync::Mutex<std::collections::HashMap<(String, u64), String>>,
    /// Prometheus counters (`GET /metrics`).
    pub(crate) metrics: crate::metrics::Metrics,
    /// Where the cosigner listens, for the readiness check (`None`: not checked).
    pub(crate) cosigner_addr: Option<String>,
    /// How long a transaction may stay `reserved` before it is taken for abandoned
    /// (`tracker::release_abandoned`).
    pub(crate) reservation_lease_secs: u64,
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
            chains: vec![ServedChain { name: "default".into(), id: chain_id, node: chain }],
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
            reservation_lease_secs: DEFAULT_RESERVATION_LEASE_SECS,
            executor_wake: tokio::sync::Notify::new(),
            webhook_wake: tokio::sync::Notify::new(),
        })
    }
}

impl AppState {
    /// The state serving `chains` instead of the one chain given to [`AppState::new`]
    /// (the first is the default). Ids and names must differ.
    pub fn with_chains(mut self, chains: Vec<ServedChain>) -> ApiResult<AppState> {
        if chains.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "a daemon serves at least one chain"));
        }
        for (i, chain) in chains.iter().enumerate() {
            if chains.iter().skip(i + 1).any(|other| other.id == chain.id || other.name == chain.name) {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "chain {} ({}) is given twice: each --chain needs its own name and node",
                        chain.name, chain.id
                    ),
                ));
            }
        }
        self.chains = chains;
        Ok(self)
    }

    /// The default chain's id (the first chain served; the only one, usually).
    pub(crate) fn chain_id(&self) -> u64 {
        self.chains.first().map_or(0, |chain| chain.id)
    }

    /// The node of chain `id`; `UNKNOWN_CHAIN` when the daemon does not serve it.
    pub(crate) fn node(&self, id: u64) -> ApiResult<Arc<dyn Chain>> {
        self.chains.iter().find(|chain| chain.id == id).map(|chain| chain.node.clone()).ok_or_else(|| self.unknown(id))
    }

    fn unknown(&self, asked: impl std::fmt::Display) -> ApiError {
        let served: Vec<String> = self.chains.iter().map(|c| format!("{} ({})", c.name, c.id)).collect();
        ApiError::new(
            ErrorCode::UnknownChain,
            format!("this daemon does not serve chain {asked}; it serves {}", served.join(", ")),
        )
        .with_details(
            json!({"chain": asked.to_string(), "served": self.chains.iter().map(|c| c.id).collect::<Vec<_>>()}),
        )
    }

    /// The chain a request names (`"chain"`: a name or a decimal chain id); without
    /// one, the only chain served (`CHAIN_REQUIRED` when there are several).
    pub(crate) fn chain_of_request(&self, named: Option<&str>) -> ApiResult<u64> {
        match named {
            Some(text) => self
                .chains
                .iter()
                .find(|chain| chain.name == text || chain.id.to_string() == text)
                .map(|chain| chain.id)
                .ok_or_else(|| self.unknown(text)),
            None if self.chains.len() == 1 => Ok(self.chain_id()),
            None => {
                let served: Vec<String> = self.chains.iter().map(|c| format!("{} ({})", c.name, c.id)).collect();
                Err(ApiError::new(
                    ErrorCode::ChainRequired,
                    format!("this daemon serves several chains: name one with \"chain\": {}", served.join(", ")),
                ))
            }
        }
    }

    /// The state taking a reservation for abandoned after `secs` (at least 5; the
    /// default, 180 s, outlasts any signing run).
    pub fn with_reservation_lease(mut self, secs: u64) -> AppState {
        self.reservation_lease_secs = secs.max(5);
        self
    }

    /// The state with the cosigner's address for the readiness check (`/v1/ready`).
    pub fn with_cosigner_addr(mut self, addr: Option<String>) -> AppState {
        self.cosigner_addr = addr;
        self
    }
}
