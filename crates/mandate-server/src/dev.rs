//! `POST /v1/wallets/{id}/dev/fund` (operator): gives a wallet ether on a local
//! development chain, for the README's walk-through and tests. Refused unless the node
//! says chain id 31337 (anvil, hardhat) or 1337 *and* answers a dev method
//! (`anvil_setBalance`, `hardhat_setBalance`): no real chain has either. Audited as
//! `dev.funded`.

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
    let chain_id = state.chain.chain_id().await?;
    if !DEV_CHAIN_IDS.contains(&chain_id) {
        return Err(not_dev(format!("the node serves chain {chain_id}, not a local dev chain (31337 or 1337)")));
    }
    let address = wallet.address()?;
    let before = state.chain.balance(address).await?;
    let after = before.saturating_add(amount);
    let method = state.chain.dev_set_balance(address, after).await?.ok_or_else(|| {
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
