//! Subaccounts (`/v1/wallets/{id}/subaccounts`): isolated risk pools under a main
//! wallet. Each is a wallet of its own (address, policy, caps, sessions, agents) whose
//! key is the main wallet's key derived at a child index (BIP-32, non-hardened): no
//! new DKG, and the index travels in every signing plan.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mandate_core::{ErrorCode, WalletId};
use mandate_store::{SubaccountRecord, WalletRecord};
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

type Shared = State<Arc<AppState>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubaccount {
    name: String,
}

/// `POST /v1/wallets/{id}/subaccounts` `{"name"}` (operator): a new subaccount of the
/// main wallet `id`, at the next free child index; its address is derived from the
/// daemon's own share.
pub(super) async fn create(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    principal.require_operator()?;
    let parent = wallet_for(&state, &principal, &id, "read")?;
    let request: CreateSubaccount = parse_json(&body_bytes(body)?)?;
    let name = request.name.trim().to_string();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "name must be 1 to 64 printable characters"));
    }
    if state.store.subaccount_of(&parent.id)?.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is a subaccount: only a main wallet has subaccounts", parent.id),
        ));
    }
    let parent_id: WalletId = parent.id.parse().map_err(|_| ApiError::internal("stored wallet id"))?;
    let (store, signer) = (state.store.clone(), state.signer.clone());
    let parent_key = parent_id.clone();
    let (index, address) = blocking(move || {
        let index = store.next_child_index(parent_key.as_str())?;
        // From the daemon's own share, never from the request.
        Ok((index, signer.child_address(&parent_key, index)?))
    })
    .await?;
    let record = SubaccountRecord {
        wallet: WalletRecord {
            id: WalletId::from_random(rand::random()).to_string(),
            name,
            address,
            chain_id: parent.chain_id,
            created_at: now(),
        },
        parent_id: parent.id.clone(),
        index,
    };
    let (store, stored, actor) = (state.store.clone(), record.clone(), principal.actor());
    blocking(move || {
        let entry = audit_entry(
            &actor,
            "wallet.subaccount_created",
            Some(&stored.wallet.id),
            json!({"name": stored.wallet.name, "address": stored.wallet.address, "parent_id": stored.parent_id,
                   "index": stored.index}),
        );
        Ok(store.insert_subaccount(&stored, entry)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!(record))))
}

/// `GET /v1/wallets/{id}/subaccounts`: the main wallet's subaccounts by child index.
pub(super) async fn list(State(state): Shared, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let parent = wallet_for(&state, &principal, &id, "read")?;
    let subaccounts = state.store.subaccounts(&parent.id)?;
    Ok(Json(json!({"wallet_id": parent.id, "subaccounts": subaccounts})))
}
