//! Sends: `POST /v1/wallets/{id}/transactions` (a native or ERC-20 transfer) and
//! `POST /v1/wallets/{id}/contract-calls`. Each handler turns its request into a
//! transaction plan and runs it through the send pipeline (`crate::send`). A
//! submitted transaction can be sped up or cancelled (`…/speed-up`, `…/cancel`): a
//! replacement at its nonce (a held one is cancelled in `approvals`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use mandate_core::ErrorCode;
use mandate_store::{TxRecord, TxStatus};
use serde_json::{json, Value};

use crate::actions::{transfer_plan, TxPlan};
use crate::approvals;
use crate::auth::Principal;
use crate::context::{policy_of, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::request::{body_bytes, idempotency_key, CallRequest, TransferRequest};
use crate::send::{Replacement, SendPipeline};
use crate::state::AppState;
use crate::timing::{Prelude, RequestStarted};

/// `POST /v1/wallets/{id}/transactions`: a native or ERC-20 transfer.
pub(crate) async fn send(
    State(state): State<Arc<AppState>>,
    started: Option<Extension<RequestStarted>>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let prelude = Prelude::enter(started);
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request = TransferRequest::parse(&body_bytes(body)?)?;
    let key = idempotency_key(headers.get("idempotency-key"))?;
    let plan = transfer_plan(&state, policy_of(&state, &wallet.id)?.as_deref(), &request).await?;
    SendPipeline::new(state, wallet, plan, principal.actor())?.run(key, prelude.decoded()).await
}

/// `POST /v1/wallets/{id}/contract-calls`: any contract call (`data`, or `function` + `args`).
pub(crate) async fn contract_call(
    State(state): State<Arc<AppState>>,
    started: Option<Extension<RequestStarted>>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let prelude = Prelude::enter(started);
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request = CallRequest::parse(&body_bytes(body)?)?;
    let key = idempotency_key(headers.get("idempotency-key"))?;
    let plan = TxPlan { to: request.to, value: request.value, data: request.data };
    SendPipeline::new(state, wallet, plan, principal.actor())?.run(key, prelude.decoded()).await
}

/// A submitted transaction, its wallet's pipeline, for a replacement by `principal`
/// (the operator, or an agent session of the wallet with the `broadcast` scope).
fn replacing(state: &Arc<AppState>, principal: &Principal, id: &str) -> ApiResult<(TxRecord, SendPipeline)> {
    let tx = state
        .store
        .transaction(id)?
        .ok_or_else(|| ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}")))?;
    let wallet = wallet_for(state, principal, &tx.wallet_id, "broadcast")?;
    let plan = TxPlan::of_record(&tx)?;
    Ok((tx, SendPipeline::new(state.clone(), wallet, plan, principal.actor())?))
}

/// `POST /v1/transactions/{id}/speed-up`: the same transaction at the same nonce with
/// higher fees.
pub(crate) async fn speed_up(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (tx, pipeline) = replacing(&state, &principal, &id)?;
    Ok(Json(json!(pipeline.replace(&tx, Replacement::SpeedUp).await?)))
}

/// `POST /v1/transactions/{id}/cancel`: a held transaction is cancelled before it
/// runs; a submitted one is replaced at its nonce by a zero-value self-send.
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let submitted = state.store.transaction(&id)?.is_some_and(|tx| tx.status == TxStatus::Submitted);
    if !submitted {
        return approvals::cancel(State(state), principal, Path(id)).await;
    }
    let (tx, pipeline) = replacing(&state, &principal, &id)?;
    Ok(Json(json!(pipeline.replace(&tx, Replacement::Cancel).await?)))
}
