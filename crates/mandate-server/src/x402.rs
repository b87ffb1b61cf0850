//! x402 pay-per-call under the mandate: `POST /v1/wallets/{id}/x402/pay` fetches a URL;
//! when it answers `402 Payment Required` with an x402 v2 `exact` requirement on a chain
//! the daemon serves, the payment is decided by the policy as an `x402_payment` action
//! (an `x402` rule must name the host; caps in the token and in USD count it like a
//! transfer) and reserved in the same database transaction as any send, then the
//! EIP-3009 authorization is signed by the daemon and the cosigner (which decodes it
//! and applies its own limits), and the request is sent again with it. The resource and
//! the settlement come back; the record is tracked to `confirmed` by the settlement's
//! receipt. Nothing is paid to a URL that is not HTTPS (except localhost), nothing is
//! paid twice for one idempotency key, and an authorization once sent counts for good.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy_primitives::U256;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use mandate_chain::x402::{self, Authorization, Requirement};
use mandate_chain::SignPayload;
use mandate_core::action::{Action, Asset};
use mandate_core::policy::evaluate;
use mandate_core::ErrorCode;
use mandate_store::{AuditEntry, NewTransaction, ReserveOutcome, TxRecord, X402_KIND};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actions::{denial_error, hold_tiers, prices, token_at, ChainView, Mandates};
use crate::agent_auth::agent_policy_of;
use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::{frozen_error, policy_of, refuse_if_frozen, signing_key, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::{body_bytes, idempotency_key, parse_json};
use crate::state::AppState;
use crate::task::blocking;

/// Largest resource body relayed back (bytes).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest an authorization stays valid, whatever the server allows.
const MAX_VALIDITY_SECS: u64 = 600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    url: String,
    chain: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::X402Invalid, message)
}

fn http() -> ApiResult<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| ApiError::internal("cannot build the x402 HTTP client"))
}

/// A resource's answer: status, content type, body (capped) and the x402 headers.
struct Fetched {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    payment_required: Option<String>,
    payment_response: Option<String>,
}

async fn fetch(url: &reqwest::Url, payment: Option<&str>) -> ApiResult<Fetched> {
    let mut request = http()?.get(url.clone());
    if let Some(payment) = payment {
        request = request.header("PAYMENT-SIGNATURE", payment);
    }
    let unreachable = |e: reqwest::Error| {
        ApiError::new(ErrorCode::PeerUnavailable, format!("the resource did not answer: {}", e.without_url()))
    };
    let mut response = request.send().await.map_err(unreachable)?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_type, payment_required, payment_response) =
        (header("content-type"), header("payment-required"), header("payment-response"));
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(invalid(format!("the resource's body is over {MAX_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { status, content_type, body, payment_required, payment_response })
}

/// The body as JSON when it is JSON, else as text.
fn shown_body(fetched: &Fetched) -> Value {
    serde_json::from_slice(&fetched.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&fetched.body).chars().take(64 * 1024).collect()))
}

/// `POST /v1/wallets/{id}/x402/pay` `{"url", "chain"?}` (scope `broadcast`), header
/// `Idempotency-Key` optional.
pub(crate) async fn pay(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "broadcast")?;
    let request: PayRequest = parse_json(&body_bytes(body)?)?;
    let key = idempotency_key(headers.get("idempotency-key"))?;
    refuse_if_frozen(&state, &wallet.id)?;
    let url = mandate_chain::rpc::check_outbound_url(&request.url).map_err(|e| invalid(e.to_string()))?;
    let host = url.host_str().map(str::to_ascii_lowercase).ok_or_else(|| invalid("the URL has no host"))?;
    let named_chain = request.chain.as_deref().map(|chain| state.chain_of_request(Some(chain))).transpose()?;
    // Only a host an x402 rule names is fetched at all: the endpoint is no way for an
    // agent to make the daemon read other URLs (loopback services included).
    let policy = policy_of(&state, &wallet.id)?;
    if policy.as_deref().and_then(|p| p.x402_rule_for(&host)).is_none() {
        let rule = policy.as_deref().and_then(|p| p.x402_rule_ids().next()).unwrap_or("default_deny").to_string();
        return Err(ApiError::new(
            ErrorCode::PolicyDenied,
            format!("denied by rule {rule}: x402 payments to {host} are not allowed; the URL was not fetched"),
        )
        .with_details(json!({"rule_id": rule, "observed": host})));
    }

    let first = fetch(&url, None).await?;
    if first.status != 402 {
        return Ok(Json(json!({"paid": false, "status": first.status, "content_type": first.content_type,
                              "body": shown_body(&first)})));
    }
    let header = first.payment_required.as_deref().ok_or_else(|| invalid("a 402 answer without PAYMENT-REQUIRED"))?;
    let required = x402::parse_payment_required(header).map_err(|e| invalid(e.to_string()))?;
    let requirement = required
        .accepts
        .iter()
        .find(|r| named_chain.map_or_else(|| state.node(r.chain_id).is_ok(), |chain| r.chain_id == chain))
        .cloned()
        .ok_or_else(|| invalid("the resource asks for no `exact` payment on a chain this daemon serves"))?;
    let token = token_at(&state, requirement.chain_id, requirement.asset).await?;
    let action = Action::X402Payment {
        host: host.clone(),
        token: requirement.asset,
        to: requirement.pay_to,
        amount: requirement.amount,
    };
    let actor = principal.actor();
    let tx = match reserve(&state, &wallet, &actor, &action, &requirement, key, &url).await? {
        Reserved::Fresh(tx) => tx,
        Reserved::Replayed(tx) => {
            return Ok(Json(json!({"paid": false, "replayed": true, "payment": tx})));
        }
    };
    let units = mandate_core::amount::format_units(requirement.amount, token.decimals);
    let from = wallet.address()?;
    let authorization = Authorization::for_requirement(from, &requirement, now(), MAX_VALIDITY_SECS);
    let signature = match sign(&state, &wallet, &tx, &authorization, &requirement).await {
        Ok(signature) => signature,
        Err(error) => return Err(release(&state, &tx, &actor, error).await),
    };
    let payment = x402::payment_header(&required, &requirement, &authorization, &signature);
    let paid = match fetch(&url, Some(&payment)).await {
        Ok(paid) => paid,
        Err(error) => return Err(release(&state, &tx, &actor, error).await),
    };
    let settlement = paid.payment_response.as_deref().map(x402::parse_settlement).transpose();
    let settled = match (&settlement, (200..300).contains(&paid.status)) {
        (Ok(Some(x402::Settlement { success: true, transaction: Some(hash), .. })), true) => *hash,
        _ => {
            let reason = match &settlement {
                Ok(Some(s)) => s.error.clone().unwrap_or_else(|| "no settlement transaction".into()),
                Ok(None) => format!("the resource answered {} without a settlement", paid.status),
                Err(e) => e.to_string(),
            };
            let error = ApiError::new(ErrorCode::X402PaymentFailed, format!("the payment was not settled: {reason}"))
                .with_details(json!({"status": paid.status, "body": shown_body(&paid), "payment_id": tx.id}));
            return Err(release(&state, &tx, &actor, error).await);
        }
    };
    let hash = format!("{settled:#x}");
    let entry = audit_entry(
        &actor,
        "x402.paid",
        Some(&wallet.id),
        json!({"tx_id": tx.id, "url": url.as_str(), "tx_hash": hash, "amount": requirement.amount.to_string(),
               "token": requirement.asset.to_checksum(None), "pay_to": requirement.pay_to.to_checksum(None)}),
    );
    let (store, id, recorded) = (state.store.clone(), tx.id.clone(), hash.clone());
    blocking(move || Ok(store.mark_x402_settled(&id, &recorded, now(), entry)?)).await?;
    let record = state.store.transaction(&tx.id)?.ok_or_else(|| ApiError::internal("payment vanished"))?;
    Ok(Json(json!({
        "paid": true,
        "status": paid.status,
        "content_type": paid.content_type,
        "body": shown_body(&paid),
        "payment": record,
        "settlement": {"transaction": hash, "chain_id": requirement.chain_id,
                       "amount": units, "amount_base": requirement.amount.to_string(),
                       "token": requirement.asset.to_checksum(None), "token_symbol": token.symbol,
                       "pay_to": requirement.pay_to.to_checksum(None)},
    })))
}

enum Reserved {
    Fresh(TxRecord),
    Replayed(TxRecord),
}

/// Decides and reserves the payment in one database transaction (the wallet's policy,
/// narrowed by an agent key's own; held tiers are refused: a payment is not queued).
async fn reserve(
    state: &Arc<AppState>,
    wallet: &mandate_store::WalletRecord,
    actor: &str,
    action: &Action,
    requirement: &Requirement,
    key: Option<String>,
    url: &reqwest::Url,
) -> ApiResult<Reserved> {
    let agent = agent_policy_of(state, actor)?.map(Arc::new);
    let tx_id = format!("tx_{}", hex::encode(rand::random::<[u8; 10]>()));
    for _ in 0..5 {
        let policy = policy_of(state, &wallet.id)?;
        let chain_id = requirement.chain_id;
        let view = ChainView {
            chain_id,
            prices: prices(state, chain_id, policy.as_deref(), action).await,
            simulation: None,
            fees: None,
            estimate_error: None,
        };
        let mandates = Mandates::new(state, policy.clone(), agent.clone(), action, view).await;
        let lookback = mandates.lookback_secs();
        let decided_at = now();
        let usd_micro = policy.as_ref().and_then(|p| {
            p.usd_value(Asset::Token(requirement.asset), requirement.amount, &mandates.view().prices, decided_at)
        });
        let requested = audit_entry(
            actor,
            "x402.requested",
            Some(&wallet.id),
            json!({"tx_id": tx_id, "url": url.as_str(), "amount": requirement.amount.to_string(),
                   "token": requirement.asset.to_checksum(None), "pay_to": requirement.pay_to.to_checksum(None),
                   "chain_id": chain_id, "idempotency_key": key}),
        );
        let new = NewTransaction {
            id: tx_id.clone(),
            wallet_id: wallet.id.clone(),
            idempotency_key: key.clone(),
            to: requirement.asset.to_checksum(None),
            value: U256::ZERO,
            data: Vec::new(),
            kind: X402_KIND.to_string(),
            asset: Asset::Token(requirement.asset),
            amount: requirement.amount,
            usd_micro,
            recipient: Some(requirement.pay_to),
            chain_nonce: 0,
            chain_id,
            gas_limit: 0,
            max_fee_per_gas: 0,
            approval_ttl_secs: state.approval_ttl_secs,
            requested: Some(requested),
        };
        let (store, actor, action) = (state.store.clone(), actor.to_string(), action.clone());
        let outcome = blocking(move || {
            let decide = |seen: &mandate_store::ReserveView| {
                mandates.decide(seen, decided_at, |policy, ctx, _| hold_tiers(evaluate(policy, &action, ctx)))
            };
            Ok(store.reserve(new, lookback, decided_at, &actor, decide, |_| Vec::new())?)
        })
        .await?;
        return match outcome {
            ReserveOutcome::Reserved { tx } => Ok(Reserved::Fresh(tx)),
            ReserveOutcome::Existing(tx) => Ok(Reserved::Replayed(tx)),
            ReserveOutcome::Denied(decision) => Err(denial_error(&decision)),
            ReserveOutcome::Frozen(freeze) => Err(frozen_error(&freeze)),
            ReserveOutcome::Revoked => Err(ApiError::new(
                ErrorCode::SessionRevoked,
                "this session or agent key was revoked while the request was on its way; nothing was paid",
            )),
            ReserveOutcome::PolicyChanged => continue,
        };
    }
    Err(ApiError::new(ErrorCode::Internal, "the policy kept changing during the request; retry"))
}

/// Signs the authorization with the cosigner; the spend is committed at the signing
/// run's point of no return (the cosigner could finish the signature without us).
async fn sign(
    state: &Arc<AppState>,
    wallet: &mandate_store::WalletRecord,
    tx: &TxRecord,
    authorization: &Authorization,
    requirement: &Requirement,
) -> ApiResult<[u8; 65]> {
    let typed = authorization.typed_data(requirement);
    let parsed = mandate_core::decode::parse_typed_data(&typed).map_err(|e| ApiError::new(e.code, e.message))?;
    let payload = SignPayload::TypedData(typed.to_string());
    let key = signing_key(state, wallet)?;
    let (signer, store, id) = (state.signer.clone(), state.store.clone(), tx.id.clone());
    let digest = parsed.signing_hash.0;
    let sig = blocking(move || {
        let mut commit = || Ok(store.commit_spend(&id)?);
        signer.sign(&key, payload.encode(), digest, None, None, &mut commit).map_err(|failure| failure.error)
    })
    .await?;
    let mut signature = Vec::with_capacity(65);
    signature.extend_from_slice(&sig.r);
    signature.extend_from_slice(&sig.s);
    signature.push(27 + sig.recovery_id);
    signature.try_into().map_err(|_| ApiError::internal("a signature is 65 bytes"))
}

/// Nothing settled: the record is `failed`; a spend committed once the authorization
/// could exist stays counted (the server may still settle it until it expires).
async fn release(state: &Arc<AppState>, tx: &TxRecord, actor: &str, error: ApiError) -> ApiError {
    let (store, id, message) = (state.store.clone(), tx.id.clone(), error.to_string());
    let entry: AuditEntry = audit_entry(
        actor,
        "x402.failed",
        Some(&tx.wallet_id),
        json!({"tx_id": tx.id, "error": message, "code": error.code}),
    );
    if let Err(release) = blocking(move || Ok(store.release(&id, &message, now(), entry)?)).await {
        tracing::error!("could not release x402 payment {}: {release}", tx.id);
    }
    error
}
