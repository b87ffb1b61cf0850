//! Receipt tracking: every submitted transaction is polled until its receipt says
//! `confirmed` or `failed`.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use serde_json::json;

use crate::audit::audit_entry;
use crate::now;
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

/// How often the tracker polls.
const POLL: Duration = Duration::from_millis(250);

/// Polls receipts forever.
pub(crate) async fn track_receipts(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(POLL).await;
        let store = state.store.clone();
        let Ok(pending) = blocking(move || Ok(store.submitted()?)).await else { continue };
        for tx in pending {
            let Some(hash) = tx.tx_hash.as_deref().and_then(|h| h.parse::<B256>().ok()) else { continue };
            let Ok(Some(receipt)) = state.chain.receipt(hash).await else { continue };
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
                continue;
            }
            webhooks::wake(&state);
        }
    }
}
