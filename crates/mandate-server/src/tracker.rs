//! Receipt tracking: every submitted transaction is polled until its receipt says
//! `confirmed` or `failed`. A submitted transaction the node does not know (the
//! daemon stopped between recording and broadcasting it, the broadcast timed out, or
//! the node dropped it) is broadcast again from its stored raw bytes: never signed
//! again. A freed nonce that holds broadcast transactions back is filled
//! (`send::fill_nonce_gap`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use mandate_chain::ChainError;
use mandate_store::TxRecord;
use serde_json::json;

use crate::audit::audit_entry;
use crate::now;
use crate::send::fill_nonce_gap;
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

/// How often the tracker polls.
const POLL: Duration = Duration::from_millis(250);

/// How long a submitted transaction may go without a receipt before the tracker asks
/// the node whether it still knows it (and again after each such check).
const REBROADCAST_AFTER: Duration = Duration::from_secs(3);

/// Polls receipts, re-broadcasts what the node forgot and fills nonce gaps, forever.
pub(crate) async fn track_receipts(state: Arc<AppState>) {
    // When each transaction was last checked for being known to the node.
    let mut checked: HashMap<String, Instant> = HashMap::new();
    // When each nonce gap was last tried: a fill that failed waits before the next try.
    let mut tried: HashMap<(String, u64), Instant> = HashMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        let store = state.store.clone();
        let Ok(pending) = blocking(move || Ok(store.submitted()?)).await else { continue };
        checked.retain(|id, _| pending.iter().any(|tx| &tx.id == id));
        for tx in pending {
            let Some(hash) = tx.tx_hash.as_deref().and_then(|h| h.parse::<B256>().ok()) else { continue };
            match state.chain.receipt(hash).await {
                Ok(Some(receipt)) => record_receipt(&state, &tx, receipt).await,
                Ok(None) => {
                    let since = checked.entry(tx.id.clone()).or_insert_with(Instant::now);
                    if since.elapsed() >= REBROADCAST_AFTER {
                        *since = Instant::now();
                        rebroadcast_if_forgotten(&state, &tx, hash).await;
                    }
                }
                Err(_) => continue,
            }
        }
        fill_gaps(&state, &mut tried).await;
    }
}

async fn record_receipt(state: &Arc<AppState>, tx: &TxRecord, receipt: mandate_chain::rpc::Receipt) {
    let (event, webhook, status) = match receipt.success {
        true => ("transaction.confirmed", Event::TransactionConfirmed, "confirmed"),
        false => ("transaction.failed", Event::TransactionFailed, "failed"),
    };
    let entry = audit_entry(
        "daemon",
        event,
        Some(&tx.wallet_id),
        json!({"tx_id": tx.id, "tx_hash": tx.tx_hash, "block": receipt.block_number, "gas_used": receipt.gas_used}),
    )
    .with_event(webhooks::event(
        webhook,
        json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "tx_hash": tx.tx_hash, "status": status,
               "block": receipt.block_number}),
    ));
    let store = state.store.clone();
    let id = tx.id.clone();
    if let Err(error) = blocking(move || Ok(store.mark_final(&id, receipt.success, now(), entry)?)).await {
        eprintln!("tracker: could not record the receipt of {}: {error}", tx.id);
        return;
    }
    webhooks::wake(state);
}

/// Broadcasts the stored signed bytes again when the node does not know the
/// transaction. The same bytes: the same hash, nonce and signature.
async fn rebroadcast_if_forgotten(state: &Arc<AppState>, tx: &TxRecord, hash: B256) {
    let Some(raw) = tx.raw_tx.as_deref().and_then(|raw| hex::decode(raw).ok()) else { return };
    if !matches!(state.chain.knows_transaction(hash).await, Ok(false)) {
        return;
    }
    let outcome = match state.chain.send_raw_transaction(&raw).await {
        Ok(_) => "broadcast again",
        Err(ChainError::Rejected(message)) => {
            eprintln!("tracker: the node refused {} again: {message}", tx.id);
            return;
        }
        Err(error) => {
            eprintln!("tracker: could not broadcast {} again: {error}", tx.id);
            return;
        }
    };
    let entry = audit_entry(
        "daemon",
        "transaction.rebroadcast",
        Some(&tx.wallet_id),
        json!({"tx_id": tx.id, "tx_hash": tx.tx_hash, "nonce": tx.nonce, "why": "the node did not know it"}),
    );
    let store = state.store.clone();
    if let Err(error) = blocking(move || Ok(store.audit(entry, now())?)).await {
        eprintln!("tracker: {} was {outcome} but could not be audited: {error}", tx.id);
    }
}

/// A nonce fill that failed (the cosigner down or refusing) is tried again after this.
const FILL_RETRY: Duration = Duration::from_secs(30);

/// Fills every freed nonce that strands broadcast transactions (not of a frozen
/// wallet: its cosigner signs nothing, the gap waits for the unfreeze).
async fn fill_gaps(state: &Arc<AppState>, tried: &mut HashMap<(String, u64), Instant>) {
    let store = state.store.clone();
    let Ok(gaps) = blocking(move || Ok(store.stranding_gaps()?)).await else { return };
    tried.retain(|gap, at| gaps.contains(gap) && at.elapsed() < FILL_RETRY);
    for (wallet, nonce) in gaps {
        if tried.contains_key(&(wallet.clone(), nonce)) || !matches!(state.store.freeze_of(&wallet), Ok(None)) {
            continue;
        }
        tried.insert((wallet.clone(), nonce), Instant::now());
        if let Err(error) = fill_nonce_gap(state, &wallet, nonce).await {
            eprintln!("tracker: could not fill nonce {nonce} of {wallet}: {error}");
        }
    }
}
