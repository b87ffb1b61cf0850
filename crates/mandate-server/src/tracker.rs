//! Receipt tracking: every submitted transaction is polled until its receipt says
//! `confirmed` or `failed` (or, when a cancel replacement was mined, `cancelled`).
//! A submitted transaction the node does not know (the
//! daemon stopped between recording and broadcasting it, the broadcast timed out, or
//! the node dropped it) is broadcast again from its stored raw bytes: never signed
//! again. A freed nonce that holds broadcast transactions back is filled
//! (`send::fill_nonce_gap`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use mandate_chain::ChainError;
use mandate_store::{Broadcast, BroadcastKind, NonceGap, Store, TxRecord};
use serde_json::json;

use crate::audit::audit_entry;
use crate::error::ApiResult;
use crate::now;
use crate::ports::Chain;
use crate::send::fill_nonce_gap;
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

/// How often the tracker polls.
const POLL: Duration = Duration::from_millis(250);

/// How long a submitted transaction may go without a receipt before the tracker asks
/// the node whether it still knows it (and again after each such check).
const REBROADCAST_AFTER: Duration = Duration::from_secs(3);

/// How often the tracker looks for abandoned reservations.
const ABANDONED_EVERY: Duration = Duration::from_secs(5);

/// Releases every reservation that became `reserved` at or before `cutoff` (Unix
/// seconds) and still is: its nonce is freed (the gap filler then fills it if later
/// nonces were broadcast), its spend kept if the signing run passed its point of no
/// return. Returns how many were released.
pub(crate) fn release_abandoned(store: &Store, cutoff: u64) -> ApiResult<usize> {
    let reason = "the daemon that reserved this transaction stopped (or lost its database) before recording a \
                  signature; nothing was broadcast";
    let mut released = 0;
    for tx in store.reserved()? {
        let entry = audit_entry(
            "daemon",
            "transaction.released",
            Some(&tx.wallet_id),
            json!({"tx_id": tx.id, "error": reason}),
        )
        .with_event(webhooks::event(
            Event::TransactionFailed,
            json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": "failed", "error": reason, "broadcast": false}),
        ));
        if store.release_abandoned(&tx.id, cutoff, reason, now(), entry)? {
            tracing::info!(tx_id = %tx.id, "released an abandoned reservation");
            released += 1;
        }
    }
    Ok(released)
}

/// Polls receipts, re-broadcasts what the node forgot, releases abandoned
/// reservations and fills nonce gaps, forever.
pub(crate) async fn track_receipts(state: Arc<AppState>) {
    // When each transaction was last checked for being known to the node.
    let mut checked: HashMap<String, Instant> = HashMap::new();
    // When each nonce gap was last tried: a fill that failed waits before the next try.
    let mut tried: HashMap<NonceGap, Instant> = HashMap::new();
    let mut abandoned_checked = Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        if abandoned_checked.elapsed() >= ABANDONED_EVERY {
            abandoned_checked = Instant::now();
            let store = state.store.clone();
            let cutoff = now().saturating_sub(state.reservation_lease_secs);
            if let Err(error) = blocking(move || release_abandoned(&store, cutoff)).await {
                tracing::warn!("tracker: could not release abandoned reservations: {error}");
            }
        }
        let store = state.store.clone();
        let Ok(pending) = blocking(move || Ok(store.submitted()?)).await else { continue };
        checked.retain(|id, _| pending.iter().any(|tx| &tx.id == id));
        for tx in pending {
            // Every signed version at this nonce (the original, speed-ups, a cancel):
            // whichever is mined decides. Older rows have only their hash.
            let store = state.store.clone();
            let id = tx.id.clone();
            let Ok(versions) = blocking(move || Ok(store.broadcasts(&id)?)).await else { continue };
            let mut hashes: Vec<B256> = versions.iter().rev().filter_map(|v| v.hash.parse().ok()).collect();
            if hashes.is_empty() {
                hashes.extend(tx.tx_hash.as_deref().and_then(|h| h.parse::<B256>().ok()));
            }
            // The node of the transaction's chain (one the daemon no longer serves: skipped).
            let Some(node) = tx.chain_id.and_then(|chain| state.node(chain).ok()) else { continue };
            let mut mined = None;
            let mut unreachable = false;
            for hash in &hashes {
                match node.receipt(*hash).await {
                    Ok(Some(receipt)) => {
                        mined = Some((*hash, receipt));
                        break;
                    }
                    Ok(None) => {}
                    Err(_) => unreachable = true,
                }
            }
            match (mined, versions.last()) {
                (Some((hash, receipt)), _) => {
                    // Which version was mined decides the outcome: a mined cancel voids the send.
                    let cancelled = versions
                        .iter()
                        .any(|v| v.kind == BroadcastKind::Cancel && v.hash.parse::<B256>().ok() == Some(hash));
                    record_receipt(&state, &tx, hash, receipt, cancelled).await
                }
                (None, Some(latest)) if !unreachable => {
                    let since = checked.entry(tx.id.clone()).or_insert_with(Instant::now);
                    if since.elapsed() >= REBROADCAST_AFTER {
                        *since = Instant::now();
                        rebroadcast_if_forgotten(&state, node.as_ref(), &tx, latest).await;
                    }
                }
                _ => {}
            }
        }
        fill_gaps(&state, &mut tried).await;
    }
}

async fn record_receipt(
    state: &Arc<AppState>,
    tx: &TxRecord,
    hash: B256,
    receipt: mandate_chain::rpc::Receipt,
    cancelled: bool,
) {
    let mined = format!("{hash:#x}");
    let details =
        json!({"tx_id": tx.id, "tx_hash": mined, "block": receipt.block_number, "gas_used": receipt.gas_used});
    let data = json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "tx_hash": mined, "block": receipt.block_number});
    let store = state.store.clone();
    let (id, wallet) = (tx.id.clone(), tx.wallet_id.clone());
    let recorded = blocking(move || {
        let (event, webhook, status) = match (cancelled, receipt.success) {
            (true, _) => ("transaction.cancelled", Event::TransactionFailed, "cancelled"),
            (false, true) => ("transaction.confirmed", Event::TransactionConfirmed, "confirmed"),
            (false, false) => ("transaction.failed", Event::TransactionFailed, "failed"),
        };
        let mut data = data;
        if let Some(map) = data.as_object_mut() {
            map.insert("status".into(), json!(status));
        }
        let entry = audit_entry("daemon", event, Some(&wallet), details).with_event(webhooks::event(webhook, data));
        Ok(store.mark_final(&id, &mined, receipt.success, now(), entry)?)
    })
    .await;
    if let Err(error) = recorded {
        tracing::warn!("tracker: could not record the receipt of {}: {error}", tx.id);
        return;
    }
    webhooks::wake(state);
}

/// Broadcasts the latest signed version again when the node knows none of them:
/// the same bytes, hash, nonce and signature.
async fn rebroadcast_if_forgotten(state: &Arc<AppState>, node: &dyn Chain, tx: &TxRecord, latest: &Broadcast) {
    let Ok(hash) = latest.hash.parse::<B256>() else { return };
    if !matches!(node.knows_transaction(hash).await, Ok(false)) {
        return;
    }
    match node.send_raw_transaction(&latest.raw).await {
        Ok(_) => {}
        Err(ChainError::Rejected(message)) => {
            tracing::warn!("tracker: the node refused {} again: {message}", tx.id);
            return;
        }
        Err(error) => {
            tracing::warn!("tracker: could not broadcast {} again: {error}", tx.id);
            return;
        }
    }
    let entry = audit_entry(
        "daemon",
        "transaction.rebroadcast",
        Some(&tx.wallet_id),
        json!({"tx_id": tx.id, "tx_hash": latest.hash, "nonce": tx.nonce, "why": "the node did not know it"}),
    );
    let store = state.store.clone();
    if let Err(error) = blocking(move || Ok(store.audit(entry, now())?)).await {
        tracing::warn!("tracker: {} was broadcast again but could not be audited: {error}", tx.id);
    }
}

/// A nonce fill that failed (the cosigner down or refusing) is tried again after this.
const FILL_RETRY: Duration = Duration::from_secs(30);

/// Fills every freed nonce that strands broadcast transactions (not of a frozen
/// wallet: its cosigner signs nothing, the gap waits for the unfreeze).
async fn fill_gaps(state: &Arc<AppState>, tried: &mut HashMap<NonceGap, Instant>) {
    let store = state.store.clone();
    let Ok(gaps) = blocking(move || Ok(store.stranding_gaps()?)).await else { return };
    tried.retain(|gap, at| gaps.contains(gap) && at.elapsed() < FILL_RETRY);
    for gap in gaps {
        if tried.contains_key(&gap) || !matches!(state.store.freeze_of(&gap.wallet_id), Ok(None)) {
            continue;
        }
        tried.insert(gap.clone(), Instant::now());
        if let Err(error) = fill_nonce_gap(state, &gap).await {
            tracing::warn!(
                "tracker: could not fill nonce {} of {} on chain {}: {error}",
                gap.nonce,
                gap.wallet_id,
                gap.chain_id
            );
        }
    }
}
