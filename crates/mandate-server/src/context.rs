//! What handlers share about a request's wallet: loading it for a caller, its parsed
//! policy, its freeze, and audit entries. No handler module is imported from here, so
//! handlers depend on this module and never on each other's helpers.

use std::sync::Arc;

use alloy_primitives::B256;

use mandate_core::policy::Policy;
use mandate_core::ErrorCode;
use mandate_store::{FreezeRecord, StoredPolicy, WalletRecord};
use serde_json::json;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Loads a wallet the caller may see with `scope`.
pub(crate) fn wallet_for(state: &AppState, principal: &Principal, id: &str, scope: &str) -> ApiResult<WalletRecord> {
    principal.require_wallet(id, scope)?;
    state.store.wallet(id)?.ok_or_else(|| ApiError::new(ErrorCode::WalletNotFound, format!("no wallet {id}")))
}

/// The wallet's policy, parsed, if any.
///
/// A policy is parsed once per version: the parsed value is kept by its hash, so the
/// send path's retries and every later request reuse it.
pub(crate) fn policy_of(state: &AppState, wallet: &str) -> ApiResult<Option<Arc<Policy>>> {
    let Some(StoredPolicy { document, hash, .. }) = state.store.policy(wallet)? else { return Ok(None) };
    let mut cache = state.policies.lock().map_err(|_| ApiError::internal("policy cache poisoned"))?;
    if let Some(policy) = cache.get(&hash) {
        return Ok(Some(policy.clone()));
    }
    let policy = Arc::new(
        Policy::parse(&document).map_err(|e| ApiError::internal(format!("stored policy no longer parses: {e}")))?,
    );
    if cache.len() >= POLICY_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(hash, policy.clone());
    Ok(Some(policy))
}

/// The wallet's rolling windows (`rolling_cap*`, `velocity`) and what each has left
/// now; `None` without a policy. `GET …/policy/summary` and the dashboard's chart.
pub(crate) fn budgets_now(state: &AppState, wallet: &str) -> ApiResult<Option<Vec<mandate_core::policy::Budget>>> {
    let Some(policy) = policy_of(state, wallet)? else { return Ok(None) };
    let now = crate::now();
    let history = state.store.spends(wallet, now.saturating_sub(policy.lookback_secs()))?;
    let prices = std::collections::BTreeMap::new();
    let ctx = mandate_core::policy::Context {
        now,
        chain_id: state.chain_id(),
        history: &history,
        prices: &prices,
        recipient_seen: true,
        fees: None,
        simulation: None,
    };
    Ok(Some(mandate_core::policy::budgets(&policy, &ctx)))
}

/// How many parsed policy versions the daemon keeps.
const POLICY_CACHE_SIZE: usize = 1024;

/// The error a frozen wallet's requests get.
pub(crate) fn frozen_error(freeze: &FreezeRecord) -> ApiError {
    ApiError::new(ErrorCode::WalletFrozen, format!("wallet {} is frozen; nothing is signed", freeze.wallet_id))
        .with_details(json!({"frozen_at": freeze.frozen_at, "frozen_by": freeze.frozen_by}))
}

/// Refuses a frozen wallet (the send path checks again inside its reservation).
pub(crate) fn refuse_if_frozen(state: &AppState, wallet: &str) -> ApiResult<()> {
    match state.store.freeze_of(wallet)? {
        Some(freeze) => Err(frozen_error(&freeze)),
        None => Ok(()),
    }
}

/// The key that signs for `wallet`: its own, or for a subaccount its parent's key
/// derived at the subaccount's child index.
pub(crate) fn signing_key(state: &AppState, wallet: &WalletRecord) -> ApiResult<crate::ports::KeyRef> {
    let parse = |id: &str| id.parse::<mandate_core::WalletId>().map_err(|_| ApiError::internal("stored wallet id"));
    Ok(match state.store.subaccount_of(&wallet.id)? {
        Some((parent, index)) => crate::ports::KeyRef { wallet: parse(&parent)?, child: Some(index) },
        None => crate::ports::KeyRef { wallet: parse(&wallet.id)?, child: None },
    })
}

/// Refuses to move `wallet`'s funds on a chain other than the one it was first used
/// on: same chain id, different genesis (a restarted dev chain, a misconfigured RPC
/// URL) means its balances and nonces are not there, and anything sent would wait
/// forever or land somewhere unintended. The first use binds the wallet to `genesis`.
pub(crate) fn same_chain(state: &AppState, wallet: &WalletRecord, chain_id: u64, genesis: B256) -> ApiResult<()> {
    let seen = format!("{genesis:#x}");
    let key = (wallet.id.clone(), chain_id);
    let cached =
        state.wallet_genesis.lock().map_err(|_| ApiError::internal("genesis cache poisoned"))?.get(&key).cloned();
    let bound = match cached {
        Some(bound) => bound,
        None => {
            let bound = state.store.bind_genesis(&wallet.id, chain_id, &seen, crate::now())?;
            let mut cache = state.wallet_genesis.lock().map_err(|_| ApiError::internal("genesis cache poisoned"))?;
            cache.insert(key, bound.clone());
            bound
        }
    };
    if bound == seen {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ChainMismatch,
        format!(
            "wallet {} was first used on chain {} with genesis block {bound}, but the node now serves genesis {seen}: \
             the same chain id on a different chain (a restarted dev chain?). Its balances and nonces are not there and \
             nothing was signed; point the daemon at the node that holds them, or create a new wallet for this chain",
            wallet.id, chain_id
        ),
    )
    .with_details(json!({"bound_genesis": bound, "node_genesis": seen, "chain_id": chain_id})))
}
