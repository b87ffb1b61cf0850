//! Runs held transactions when they are due: approved ones at once, delayed ones
//! after `execute_after`; expires approvals whose window closed. The queue is the
//! database, so a restarted daemon picks up where it stopped. A frozen wallet's
//! items stay held until it is unfrozen.
//!
//! A held transaction is signed exactly as it was requested — recipient, value and
//! calldata from the stored record, never rebuilt — with a fresh nonce and fees
//! re-priced within the bounds the owner signed.

use std::sync::Arc;
use std::time::Duration;

use mandate_store::{Claim, TxRecord, TxStatus};
use serde_json::json;

use crate::actions::TxPlan;
use crate::audit::audit_entry;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::send::{Pricing, SendPipeline};
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

/// How often the executor looks for due items when nothing wakes it.
const TICK: Duration = Duration::from_millis(500);

/// The executor loop (runs until the daemon stops).
pub(crate) async fn run_executor(state: Arc<AppState>) {
    loop {
        if let Err(error) = tick(&state).await {
            tracing::warn!("executor: {error}");
        }
        tokio::select! {
            _ = state.executor_wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

async fn tick(state: &Arc<AppState>) -> ApiResult<()> {
    let store = state.store.clone();
    let expired = blocking(move || {
        Ok(store.expire_held(now(), |tx| {
            audit_entry("daemon", "approval.expired", Some(&tx.wallet_id), json!({"tx_id": tx.id})).with_event(
                webhooks::event(
                    Event::ApprovalResolved,
                    json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": TxStatus::Expired}),
                ),
            )
        })?)
    })
    .await?;
    if !expired.is_empty() {
        webhooks::wake(state);
    }
    let store = state.store.clone();
    let due = blocking(move || Ok(store.due_held(now())?)).await?;
    for tx in due {
        if let Err(error) = execute(state, tx.clone()).await {
            tracing::warn!("executor: {} failed: {error}", tx.id);
        }
    }
    Ok(())
}

/// Claims one due item (nonce allocated, unless its wallet is frozen) and signs
/// and sends it.
async fn execute(state: &Arc<AppState>, held: TxRecord) -> ApiResult<()> {
    let wallet = state
        .store
        .wallet(&held.wallet_id)?
        .ok_or_else(|| ApiError::internal(format!("{}: its wallet vanished", held.id)))?;
    let from = wallet.address()?;
    let plan = TxPlan::of_record(&held)?;
    let gas = held.gas_limit.ok_or_else(|| ApiError::internal(format!("{}: no gas bound", held.id)))?;
    let fee_bound: u128 = held
        .max_fee_per_gas
        .as_deref()
        .and_then(|fee| fee.parse().ok())
        .ok_or_else(|| ApiError::internal(format!("{}: no fee bound", held.id)))?;
    let node = state.node(plan.chain_id)?;
    let chain_nonce = node.pending_nonce(from).await?;
    let fees = node.fees().await?;
    let store = state.store.clone();
    let (id, wallet_id) = (held.id.clone(), wallet.id.clone());
    let claim = blocking(move || {
        let entry = audit_entry("daemon", "transaction.released_from_hold", Some(&wallet_id), json!({"tx_id": id}));
        Ok(store.claim_held(&id, chain_nonce, now(), entry)?)
    })
    .await?;
    let tx = match claim {
        Claim::Claimed(tx) => *tx,
        Claim::Frozen(_) | Claim::NotDue => return Ok(()),
    };
    // Re-priced within the bounds the owner signed: never above the signed max fee.
    let max_fee_per_gas = fees.max_fee_per_gas.min(fee_bound);
    let pricing =
        Pricing { gas, max_fee_per_gas, max_priority_fee_per_gas: fees.max_priority_fee_per_gas.min(max_fee_per_gas) };
    let approval = tx.approval.clone().map(String::into_bytes);
    let pipeline = SendPipeline::new(state.clone(), wallet, plan, "daemon".into())?;
    pipeline.execute_claimed(&tx, pricing, approval).await.map(|_| ())
}
