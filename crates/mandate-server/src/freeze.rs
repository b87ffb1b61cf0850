//! Emergency freeze: any authorised principal stops a wallet (or every wallet) at
//! once; the daemon refuses to sign and tells the cosigner, which refuses too.
//! Lifting a freeze needs an owner's signature, and only after the cool-down.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use mandate_core::ErrorCode;
use mandate_store::FreezeRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{audit_entry, body_bytes, wallet_for};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::parse_json;
use crate::state::{blocking, AppState};
use crate::webhooks::{self, Event};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FreezeRequest {
    reason: Option<String>,
}

/// Checks a freeze reason: at most 500 printable characters.
pub(crate) fn check_reason(reason: &str) -> ApiResult<()> {
    if reason.len() > 500 || reason.chars().any(char::is_control) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "reason: at most 500 printable characters"));
    }
    Ok(())
}

/// Freezes `wallet_id` for `actor` (audited; a frozen wallet stays frozen as it was).
/// Returns the freeze and whether it is new.
pub(crate) async fn freeze_wallet(
    state: &Arc<AppState>,
    wallet_id: &str,
    actor: &str,
    reason: String,
) -> ApiResult<(FreezeRecord, bool)> {
    check_reason(&reason)?;
    let freeze =
        FreezeRecord { wallet_id: wallet_id.to_string(), frozen_at: now(), frozen_by: actor.to_string(), reason };
    let store = state.store.clone();
    let actor = actor.to_string();
    let (freeze, newly) = blocking(move || {
        let entry = audit_entry(&actor, "wallet.frozen", Some(&freeze.wallet_id), json!({"reason": freeze.reason}));
        Ok(store.freeze(&freeze, entry)?)
    })
    .await?;
    if newly {
        webhooks::emit(state, Event::WalletFrozen, json!({"wallet_id": freeze.wallet_id, "frozen": freeze}));
    }
    Ok((freeze, newly))
}

/// `POST …/freeze`: the operator, or an agent with the `freeze` scope, stops the
/// wallet at once. Freezing is never refused for a frozen wallet (it stays frozen).
pub(crate) async fn freeze_handler(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "freeze")?;
    let body = body_bytes(body)?;
    let request: FreezeRequest = if body.is_empty() { FreezeRequest::default() } else { parse_json(&body)? };
    let (freeze, newly) =
        freeze_wallet(&state, &wallet.id, &principal.actor(), request.reason.unwrap_or_default()).await?;
    Ok(Json(json!({"wallet_id": wallet.id, "frozen": freeze, "newly_frozen": newly})))
}
