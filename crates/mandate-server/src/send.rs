//! The send pipeline: authenticate → decode into a typed action → audit the request
//! (fail closed) → simulation, prices, fees and gas → policy decision + spend
//! reservation + nonce in one database transaction → threshold signature with the
//! cosigner → record → broadcast. Any failure
//! before broadcast releases the reservation and the nonce.

use std::sync::Arc;

use alloy_primitives::U256;
use alloy_primitives::{keccak256, Address};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mandate_chain::{ChainError, UnsignedTx};
use mandate_core::action::Asset;
use mandate_core::policy::Policy;
use mandate_core::{ErrorCode, WalletId};
use mandate_store::{NewTransaction, ReserveOutcome, TxRecord, TxStatus, WalletRecord};
use serde_json::json;

use crate::actions::{
    chain_view, context, decide_transaction, decode_plan, denial_error, transfer_plan, TxPlan, FEE_CAP_WEI,
};
use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::{frozen_error, policy_of, refuse_if_frozen, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::ports::SignFailure;
use crate::request::body_bytes;
use crate::request::{idempotency_key, CallRequest, TransferRequest};
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

fn replayed(tx: TxRecord, plan: &TxPlan) -> ApiResult<Response> {
    if tx.to != plan.to.to_checksum(None)
        || tx.value_wei != plan.value.to_string()
        || tx.data != format!("0x{}", hex::encode(&plan.data))
    {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            format!("this idempotency key was used for transaction {} with another recipient, amount or call", tx.id),
        )
        .with_details(json!({"transaction_id": tx.id})));
    }
    let mut response = (StatusCode::OK, Json(json!(tx))).into_response();
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

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
    run_transaction(state, principal, wallet, plan, key).await
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
    run_transaction(state, principal, wallet, plan, key).await
}

async fn run_transaction(
    state: Arc<AppState>,
    principal: Principal,
    wallet: WalletRecord,
    plan: TxPlan,
    key: Option<String>,
) -> ApiResult<Response> {
    // Early, to spare the chain reads; the reservation checks again atomically.
    refuse_if_frozen(&state, &wallet.id)?;
    let actor = principal.actor();
    let tx_id = format!("tx_{}", hex::encode(rand::random::<[u8; 10]>()));
    let details = json!({"tx_id": tx_id, "to": plan.to.to_checksum(None), "value_wei": plan.value.to_string(),
                         "data": format!("0x{}", hex::encode(&plan.data)), "idempotency_key": key});
    // Fail closed: no audit record of the request, no signature. The record is
    // written in the reservation's database transaction (one fsync of the audit
    // file with the decision's record): a send it cannot record is refused there.
    let requested = audit_entry(&actor, "transaction.requested", Some(&wallet.id), details);

    // From here on the work runs in its own task: a client that hangs up mid-send
    // cannot abandon a reservation, a nonce or a signature half way.
    let task = tokio::spawn(crate::timing::timed(reserve_sign_broadcast(
        state.clone(),
        wallet,
        plan,
        key,
        tx_id,
        actor,
        requested,
    )));
    let (outcome, stages) = task.await.map_err(|e| ApiError::internal(format!("send task failed: {e}")))?;
    outcome.map(|mut response| {
        let stages = stages.and_then(|stages| stages.to_str().ok().map(str::to_string));
        if let Some(value) = stages.and_then(|text| axum::http::HeaderValue::from_str(&text).ok()) {
            response.headers_mut().insert("server-timing", value);
        }
        response
    })
}

/// Decode, context, policy + reservation (retried if the policy changes meanwhile),
/// then signing and broadcast; releases the reservation when nothing was broadcast.
async fn reserve_sign_broadcast(
    state: Arc<AppState>,
    wallet: WalletRecord,
    plan: TxPlan,
    key: Option<String>,
    tx_id: String,
    actor: String,
    requested: mandate_store::AuditEntry,
) -> ApiResult<Response> {
    let from = wallet.address()?;
    let chain_nonce = state.chain.pending_nonce(from).await?;
    crate::timing::mark("chain");
    let mut attempts = 0;
    let (tx, view) = loop {
        attempts += 1;
        let policy = policy_of(&state, &wallet.id)?;
        let action = decode_plan(policy.as_deref(), &plan)?;
        let view = chain_view(&state, policy.as_deref(), &action, from, &plan, false).await?;
        crate::timing::mark("chain");
        let lookback = policy.as_deref().map(Policy::lookback_secs).unwrap_or(0);
        let (asset, amount) = action.outflow().unwrap_or((Asset::Native, U256::ZERO));
        let decided_at = now();
        let usd_micro = policy.as_ref().and_then(|p| p.usd_value(asset, amount, &view.prices, decided_at));
        let new = NewTransaction {
            id: tx_id.clone(),
            wallet_id: wallet.id.clone(),
            idempotency_key: key.clone(),
            to: plan.to.to_checksum(None),
            value: plan.value,
            data: plan.data.clone(),
            kind: action.kind().to_string(),
            asset,
            amount,
            usd_micro,
            recipient: action.recipient(),
            chain_nonce,
            chain_id: state.chain_id,
            gas_limit: view.fees.map(|(gas, _)| gas).unwrap_or_default(),
            max_fee_per_gas: view.fees.map(|(_, fees)| held_fee_bound(fees.max_fee_per_gas)).unwrap_or_default(),
            approval_ttl_secs: state.approval_ttl_secs,
            requested: Some(requested.clone()),
        };
        let store = state.store.clone();
        let reserve_actor = actor.clone();
        let (decide_state, decide_view) = (state.clone(), view.clone());
        let outcome = blocking(move || {
            Ok(store.reserve(new, lookback, decided_at, &reserve_actor, |seen| {
                let ctx = context(&decide_state, &decide_view, &seen.spends, seen.recipient_seen, decided_at);
                decide_transaction(policy.as_deref(), &action, &ctx, &decide_view)
            })?)
        })
        .await?;
        crate::timing::mark("reserve");
        match outcome {
            ReserveOutcome::Existing(tx) => return replayed(tx, &plan),
            ReserveOutcome::Denied(decision) => {
                webhooks::emit(
                    &state,
                    Event::PolicyDenied,
                    json!({"wallet_id": wallet.id, "tx_id": tx_id, "decision": decision}),
                );
                return Err(denial_error(&decision));
            }
            ReserveOutcome::Frozen(freeze) => return Err(frozen_error(&freeze)),
            ReserveOutcome::Reserved { tx } => break (tx, view),
            ReserveOutcome::PolicyChanged if attempts < 5 => continue,
            ReserveOutcome::PolicyChanged => {
                return Err(ApiError::new(ErrorCode::Internal, "the policy kept changing during the request; retry"))
            }
        }
    };
    if matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed) {
        return Ok(held_response(&state, &tx));
    }
    if tx.tier() == Some(mandate_core::policy::Tier::Notify) {
        let entry = audit_entry(&actor, "policy.notify", Some(&wallet.id), json!({"tx_id": tx.id}));
        let store = state.store.clone();
        blocking(move || Ok(store.audit(entry, now())?)).await?;
        webhooks::emit(&state, Event::PolicyNotify, json!({"wallet_id": wallet.id, "transaction": tx}));
    }
    let (gas, fees) = view.fees.ok_or_else(|| ApiError::internal("no fees were estimated"))?;
    let pricing =
        Pricing { gas, max_fee_per_gas: fees.max_fee_per_gas, max_priority_fee_per_gas: fees.max_priority_fee_per_gas };
    let outcome = sign_and_broadcast(&state, &wallet, &tx, from, &plan, pricing, &actor, None).await;
    settle(&state, &wallet, &tx, &actor, outcome).await.map(|tx| (StatusCode::OK, Json(json!(tx))).into_response())
}

/// The fee bound a held transaction may be re-priced within when it runs: twice
/// today's max fee per gas, at most the daemon's cap. The owner signs it.
pub(crate) fn held_fee_bound(max_fee_per_gas: u128) -> u128 {
    max_fee_per_gas.saturating_mul(2).min(FEE_CAP_WEI)
}

/// `202 Accepted` for a held transaction: the agent polls `GET /v1/transactions/{id}`.
fn held_response(state: &AppState, tx: &TxRecord) -> Response {
    let reason = tx.decision.get("reason").cloned().unwrap_or_default();
    let (deadline, at) = match tx.status {
        TxStatus::PendingApproval => ("expires_at", tx.expires_at),
        _ => ("execute_after", tx.execute_after),
    };
    let body = json!({"id": tx.id, "status": tx.status, "reason": reason, deadline: at,
                      "tier_rules": tx.decision.get("tier_rules"), "transaction": tx});
    if tx.status == TxStatus::PendingApproval {
        webhooks::emit(state, Event::ApprovalRequested, json!({"wallet_id": tx.wallet_id, "transaction": tx}));
    }
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// After a signing attempt: on a failure before broadcast, releases the reservation
/// and nonce (status `failed`); either way the error says whether anything was broadcast.
pub(crate) async fn settle(
    state: &Arc<AppState>,
    wallet: &WalletRecord,
    tx: &TxRecord,
    actor: &str,
    outcome: Result<TxRecord, Failure>,
) -> ApiResult<TxRecord> {
    match outcome {
        Ok(tx) => Ok(tx),
        Err(Failure::BeforeBroadcast(error)) => {
            let store = state.store.clone();
            let (id, message, wallet_id) = (tx.id.clone(), error.to_string(), wallet.id.clone());
            let entry = audit_entry(
                actor,
                "transaction.released",
                Some(&wallet_id),
                json!({"tx_id": id, "error": message, "code": error.code}),
            );
            if let Err(release) = blocking(move || Ok(store.release(&id, &message, now(), entry)?)).await {
                eprintln!("could not release {}: {release}", tx.id);
                return Err(
                    release.with_details(json!({"transaction_id": tx.id, "broadcast": false, "cause": error.code}))
                );
            }
            webhooks::emit(
                state,
                Event::TransactionFailed,
                json!({"tx_id": tx.id, "wallet_id": wallet.id, "status": "failed", "error": error.to_string(),
                       "code": error.code, "broadcast": false}),
            );
            Err(error.with_details(json!({"transaction_id": tx.id, "broadcast": false})))
        }
        Err(Failure::Unknown(error)) => {
            Err(error.with_details(json!({"transaction_id": tx.id, "broadcast": "unknown"})))
        }
    }
}

/// Gas and fees a transaction is signed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pricing {
    pub(crate) gas: u64,
    pub(crate) max_fee_per_gas: u128,
    pub(crate) max_priority_fee_per_gas: u128,
}

/// Why a send failed, and whether anything may have reached the network.
pub(crate) enum Failure {
    /// Nothing was broadcast: release the reservation.
    BeforeBroadcast(ApiError),
    /// Outcome unknown (the node may have the transaction): keep it submitted.
    Unknown(ApiError),
}

/// Signs `tx` (reserved, with its nonce) with the cosigner — passing the owner's
/// signed approval when there is one — records it, then broadcasts it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn sign_and_broadcast(
    state: &Arc<AppState>,
    wallet: &WalletRecord,
    tx: &TxRecord,
    from: Address,
    plan: &TxPlan,
    pricing: Pricing,
    actor: &str,
    approval: Option<Vec<u8>>,
) -> Result<TxRecord, Failure> {
    use Failure::*;
    let nonce = tx.nonce.ok_or_else(|| BeforeBroadcast(ApiError::internal("no nonce was allocated")))?;
    if wallet.chain_id != state.chain_id {
        return Err(BeforeBroadcast(ApiError::new(
            ErrorCode::ChainMismatch,
            format!("the wallet is on chain {} but the node serves {}", wallet.chain_id, state.chain_id),
        )));
    }
    let Pricing { gas, max_fee_per_gas, max_priority_fee_per_gas } = pricing;
    if max_fee_per_gas > FEE_CAP_WEI {
        return Err(BeforeBroadcast(ApiError::new(
            ErrorCode::FeeCapExceeded,
            format!("max fee {max_fee_per_gas} wei/gas is above the cap {FEE_CAP_WEI} wei/gas"),
        )));
    }
    let unsigned = UnsignedTx::new(
        wallet.chain_id,
        nonce,
        plan.to,
        plan.value,
        gas,
        max_fee_per_gas,
        max_priority_fee_per_gas.min(max_fee_per_gas),
        plan.data.clone(),
    );
    let wallet_id: WalletId = wallet.id.parse().map_err(|_| BeforeBroadcast(ApiError::internal("stored wallet id")))?;
    let signer = state.signer.clone();
    let (payload, digest) = (unsigned.encode(), unsigned.signing_hash());
    // The spend is committed before the daemon's round-3 message leaves: from then on
    // the cosigner can finish the signature without us, so a failure after that point
    // releases the nonce but never the spend (see `Store::release`).
    let (commit_store, commit_id) = (state.store.clone(), tx.id.clone());
    let sig = blocking(move || {
        let mut commit = || Ok(commit_store.commit_spend(&commit_id)?);
        signer.sign(&wallet_id, payload, digest, approval, &mut commit).map_err(|failure| {
            let SignFailure { error, committed } = failure;
            if committed {
                error.with_details(json!({"spend_kept": true}))
            } else {
                error
            }
        })
    })
    .await
    .map_err(BeforeBroadcast)?;
    crate::timing::mark("sign");
    let raw = unsigned.into_raw_signed(sig.r, sig.s, sig.recovery_id, from).map_err(|e| BeforeBroadcast(e.into()))?;
    let hash = format!("{:#x}", keccak256(&raw));
    // Record before broadcasting: the audit must hold the signature event (fail closed).
    let store = state.store.clone();
    let (id, recorded_hash, wallet_id) = (tx.id.clone(), hash.clone(), wallet.id.clone());
    let entry = audit_entry(
        actor,
        "transaction.signed",
        Some(&wallet_id),
        json!({"tx_id": id, "tx_hash": recorded_hash, "nonce": nonce, "gas": gas,
               "max_fee_per_gas": max_fee_per_gas.to_string(), "signers": ["service", "cosigner"]}),
    );
    blocking(move || Ok(store.mark_submitted(&id, &recorded_hash, now(), entry)?)).await.map_err(BeforeBroadcast)?;
    crate::timing::mark("record");
    let sent = state.chain.send_raw_transaction(&raw).await;
    crate::timing::mark("broadcast");
    match sent {
        Ok(_) => {}
        Err(ChainError::Rejected(message)) => {
            // "already known" / "nonce too low" can mean this very transaction is in
            // the pool or mined: release only if the node does not know its hash.
            match state.chain.knows_transaction(keccak256(&raw)).await {
                Ok(false) => {
                    return Err(BeforeBroadcast(ApiError::new(
                        ErrorCode::ChainRejected,
                        format!("the node refused the transaction: {message}"),
                    )))
                }
                Ok(true) => {}
                Err(error) => return Err(Unknown(error.into())),
            }
        }
        Err(error) => return Err(Unknown(error.into())),
    }
    let record = state.store.transaction(&tx.id).map_err(|e| Unknown(e.into()))?;
    record.ok_or_else(|| Unknown(ApiError::internal("transaction vanished")))
}
