//! Sends: `POST /v1/wallets/{id}/transactions` (a native or ERC-20 transfer) and
//! `POST /v1/wallets/{id}/contract-calls`. Each handler turns its request into a
//! transaction plan and runs it through the send pipeline (`crate::send`). A
//! submitted transaction can be sped up or cancelled (`…/speed-up`, `…/cancel`): a
//! replacement at its nonce (a held one is cancelled in `approvals`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mandate_core::ErrorCode;
use mandate_store::{IdempotentAnswer, TxRecord, TxStatus, WalletRecord};
use serde_json::{json, Value};

use crate::actions::{transfer_plan, TxPlan};
use crate::agent_auth::{agent_proof, AgentRequest};
use crate::approvals;
use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::{policy_of, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::{body_bytes, idempotency_key, CallRequest, TransferRequest};
use crate::send::{Replacement, SendPipeline};
use crate::state::AppState;
use crate::task::blocking;
use crate::timing::{Prelude, RequestStarted};

/// `POST /v1/wallets/{id}/transactions`: a native or ERC-20 transfer.
pub(crate) async fn send(
    State(state): State<Arc<AppState>>,
    started: Option<Extension<RequestStarted>>,
    agent: Option<Extension<AgentRequest>>,
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
    let proof = agent_proof(&state, agent.map(|Extension(agent)| agent))?;
    run_once(state, wallet, plan, principal.actor(), key, prelude.decoded(), proof).await
}

/// `POST /v1/wallets/{id}/contract-calls`: any contract call (`data`, or `function` + `args`).
pub(crate) async fn contract_call(
    State(state): State<Arc<AppState>>,
    started: Option<Extension<RequestStarted>>,
    agent: Option<Extension<AgentRequest>>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let prelude = Prelude::enter(started);
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request = CallRequest::parse(&body_bytes(body)?)?;
    let key = idempotency_key(headers.get("idempotency-key"))?;
    let chain_id = state.chain_of_request(request.chain.as_deref())?;
    let plan = TxPlan { to: request.to, value: request.value, data: request.data, chain_id };
    let proof = agent_proof(&state, agent.map(|Extension(agent)| agent))?;
    run_once(state, wallet, plan, principal.actor(), key, prelude.decoded(), proof).await
}

/// Runs `plan` through the send pipeline once per idempotency key. A request whose
/// key already has a stored answer (its first request failed) gets that answer again,
/// status and body, with `Idempotent-Replayed: true`; a failure is stored under its
/// key, unless it is retryable and nothing was recorded yet (then a retry with the same
/// key runs again). A replay of an accepted send is answered by the pipeline: `200`
/// with the transaction's current record.
async fn run_once(
    state: Arc<AppState>,
    wallet: WalletRecord,
    plan: TxPlan,
    actor: String,
    key: Option<String>,
    prelude: String,
    proof: Option<Vec<u8>>,
) -> ApiResult<Response> {
    let Some(key) = key else {
        return SendPipeline::new(state, wallet, plan, actor)?.with_agent_proof(proof).run(None, prelude).await;
    };
    let asked = format!("{}|{}|0x{}", plan.to.to_checksum(None), plan.value, hex::encode(&plan.data));
    let (store, wallet_id, stored_key) = (state.store.clone(), wallet.id.clone(), key.clone());
    let stored = blocking(move || Ok(store.idempotent_answer(&wallet_id, &stored_key)?)).await?;
    if let Some(answer) = stored {
        return replay_answer(&state, &wallet.id, &actor, &key, &asked, answer).await;
    }
    let wallet_id = wallet.id.clone();
    let pipeline = SendPipeline::new(state.clone(), wallet, plan, actor)?.with_agent_proof(proof);
    let error = match pipeline.run(Some(key.clone()), prelude).await {
        Ok(response) => return Ok(response),
        Err(error) => error.public(),
    };
    let store = state.store.clone();
    let (status, body) = (error.status(), error.envelope());
    let answer =
        IdempotentAnswer { request: asked, status: status.as_u16(), body: body.to_string(), created_at: now() };
    let retryable = error.code.retryable();
    let kept = blocking(move || {
        if retryable && !store.has_transaction_with_key(&wallet_id, &key)? {
            return Ok(());
        }
        store.record_idempotent_answer(&wallet_id, &key, &answer)?;
        Ok(())
    })
    .await;
    if let Err(failure) = kept {
        // The caller still gets the first answer; a replay then answers from the record.
        tracing::warn!("the answer to a failed send could not be stored under its idempotency key: {failure}");
    }
    Ok(answer_response(status, body, error.retry_after, false))
}

/// The stored first answer to `key`, audited as a request like any other replay.
async fn replay_answer(
    state: &Arc<AppState>,
    wallet_id: &str,
    actor: &str,
    key: &str,
    asked: &str,
    answer: IdempotentAnswer,
) -> ApiResult<Response> {
    if answer.request != asked {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this idempotency key was used for a request with another recipient, amount or call",
        ));
    }
    let entry = audit_entry(
        actor,
        "transaction.requested",
        Some(wallet_id),
        json!({"idempotency_key": key, "replayed": true, "status": answer.status}),
    );
    let store = state.store.clone();
    blocking(move || Ok(store.audit(entry, now())?)).await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = serde_json::from_str(&answer.body)
        .map_err(|e| ApiError::internal(format!("a stored idempotent answer is not JSON: {e}")))?;
    let retry_after = body.pointer("/error/retry_after").and_then(Value::as_u64);
    Ok(answer_response(status, body, retry_after, true))
}

fn answer_response(status: StatusCode, body: Value, retry_after: Option<u64>, replayed: bool) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
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
