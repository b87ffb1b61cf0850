//! Sends: `POST /v1/wallets/{id}/transactions` (a native or ERC-20 transfer) and
//! `POST /v1/wallets/{id}/contract-calls`. Each handler turns its request into a
//! transaction plan and runs it through the send pipeline (`crate::send`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::actions::{transfer_plan, TxPlan};
use crate::auth::Principal;
use crate::context::{policy_of, wallet_for};
use crate::error::ApiResult;
use crate::request::{body_bytes, idempotency_key, CallRequest, TransferRequest};
use crate::send::SendPipeline;
use crate::state::AppState;

/// `POST /v1/wallets/{id}/transactions`: a native or ERC-20 transfer.
pub(crate) async fn send(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request = TransferRequest::parse(&body_bytes(body)?)?;
    let key = idempotency_key(headers.get("idempotency-key"))?;
    let plan = transfer_plan(&state, policy_of(&state, &wallet.id)?.as_deref(), &request).await?;
    SendPipeline::new(state, wallet, plan, principal.actor())?.run(key).await
}

/// `POST /v1/wallets/{id}/contract-calls`: any contract call (`data`, or `function` + `args`).
pub(crate) async fn contract_call(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request = CallRequest::parse(&body_bytes(body)?)?;
    let key = idempotency_key(headers.get("idempotency-key"))?;
    let plan = TxPlan { to: request.to, value: request.value, data: request.data };
    SendPipeline::new(state, wallet, plan, principal.actor())?.run(key).await
}
