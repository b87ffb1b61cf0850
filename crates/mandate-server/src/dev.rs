//! `POST /v1/wallets/{id}/dev/fund` (operator): gives a wallet ether on a local
//! development chain, for the README's walk-through and tests. Refused unless the node
//! says chain id 31337 (anvil, hardhat) or 1337 *and* answers a dev method
//! (`anvil_setBalance`, `hardhat_setBalance`): no real chain has either. Audited as
//! `dev.funded`. Also the warning `serve` prints when the node is a restarted dev
//! chain that the data directory's wallets do not know.

use std::sync::Arc;

use alloy_primitives::U256;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use mandate_core::amount::{format_units, parse_units};
use mandate_core::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::wallet_for;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::{body_bytes, parse_json};
use crate::state::AppState;
use crate::task::blocking;

/// The chain ids of local development nodes (anvil and hardhat: 31337; ganache and
/// others: 1337).
pub(crate) const DEV_CHAIN_IDS: [u64; 2] = [31337, 1337];

/// The most one call gives (a typo of a few zeros is refused, not minted).
const MAX_FUND_ETH: u64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FundRequest {
    /// Ether, as a decimal (`"5"`, `"0.25"`).
    amount: String,
    /// The chain (name or id); the daemon's only chain by default.
    chain: Option<String>,
}

/// `POST /v1/wallets/{id}/dev/fund`, body `{"amount": "5"}` (ether): adds it to the
/// wallet's balance on a dev chain.
pub(crate) async fn fund(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request: FundRequest = parse_json(&body_bytes(body)?)?;
    let amount = parse_units(request.amount.trim(), 18)
        .map_err(|e| ApiError::new(ErrorCode::InvalidAmount, format!("amount: {e}")))?;
    if amount.is_zero() || amount > U256::from(MAX_FUND_ETH) * U256::from(10u64).pow(U256::from(18u64)) {
        return Err(ApiError::new(
            ErrorCode::InvalidAmount,
            format!("amount must be more than 0 and at most {MAX_FUND_ETH} ETH"),
        ));
    }
    let node = state.node(state.chain_of_request(request.chain.as_deref())?)?;
    let chain_id = node.chain_id().await?;
    if !DEV_CHAIN_IDS.contains(&chain_id) {
        return Err(not_dev(format!("the node serves chain {chain_id}, not a local dev chain (31337 or 1337)")));
    }
    let address = wallet.address()?;
    let before = node.balance(address).await?;
    let after = before.saturating_add(amount);
    let method = node.dev_set_balance(address, after).await?.ok_or_else(|| {
        not_dev(format!("the node (chain {chain_id}) answers neither anvil_setBalance nor hardhat_setBalance"))
    })?;
    let details = json!({"address": wallet.address, "amount_wei": amount.to_string(), "balance_wei": after.to_string(),
                         "method": method, "chain_id": chain_id});
    let entry = audit_entry(&principal.actor(), "dev.funded", Some(&wallet.id), details);
    let store = state.store.clone();
    blocking(move || Ok(store.audit(entry, now())?)).await?;
    Ok(Json(json!({"wallet_id": wallet.id, "address": wallet.address, "chain_id": chain_id,
                   "amount": format_units(amount, 18), "amount_wei": amount.to_string(),
                   "balance": format_units(after, 18), "balance_wei": after.to_string(), "method": method})))
}

fn not_dev(message: String) -> ApiError {
    ApiError::new(ErrorCode::NotADevChain, message)
}

/// The wallets of `store` bound on `chain_id` to another genesis block than `genesis`
/// (the node's): the data directory outlived its dev chain. Each is named on stderr
/// with what to do; their sends answer `CHAIN_MISMATCH` until then.
pub(crate) fn warn_other_genesis(
    store: &mandate_store::Store,
    chain_id: u64,
    genesis: alloy_primitives::B256,
    data_dir: &std::path::Path,
) -> ApiResult<Vec<String>> {
    let seen = format!("{genesis:#x}");
    let mut stale = Vec::new();
    for wallet in store.wallets()? {
        if let Some(bound) = store.bound_genesis(&wallet.id, chain_id)? {
            if bound != seen {
                stale.push(wallet.id);
            }
        }
    }
    if !stale.is_empty() {
        tracing::warn!(
            "the node serves chain {chain_id} with genesis block {seen}, but wallet(s) {} of {} were used on \
             another chain with this id (a restarted dev chain?): their balances and nonces are not on this node, and \
             their sends answer CHAIN_MISMATCH. Point --rpc-url at the node that holds them, or, on a dev chain, start \
             over: stop the daemon, `mv {dir} {dir}.old`, and run scripts/dev.sh (or `mandate init --dev`) again.",
            stale.join(", "),
            data_dir.display(),
            dir = data_dir.display(),
        );
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use mandate_store::{AuditEntry, Store, WalletRecord};

    #[test]
    fn wallets_bound_to_another_genesis_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in ["wal_used", "wal_fresh"] {
            let wallet = WalletRecord {
                id: id.into(),
                name: id.into(),
                address: "0x0000000000000000000000000000000000000001".into(),
                chain_id: 31337,
                created_at: 1,
            };
            let entry = AuditEntry {
                actor: "test".into(),
                event: "wallet.created".into(),
                wallet: Some(id.into()),
                decision: None,
                policy_hash: None,
                details: json!({}),
                events: Vec::new(),
            };
            store.insert_wallet(&wallet, entry).unwrap();
        }
        let old = format!("{:#x}", B256::repeat_byte(1));
        store.bind_genesis("wal_used", 31337, &old, 1).unwrap();
        let same = warn_other_genesis(&store, 31337, B256::repeat_byte(1), dir.path()).unwrap();
        assert!(same.is_empty(), "the same chain: nothing to say");
        let restarted = warn_other_genesis(&store, 31337, B256::repeat_byte(2), dir.path()).unwrap();
        assert_eq!(restarted, ["wal_used"], "a wallet never used is not bound to any chain");
    }
}
