//! Wallets: registration, listing, balances, policies and their summary, transactions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mandate_core::amount::format_units;
use mandate_core::policy::Policy;
use mandate_core::{ErrorCode, WalletId};
use mandate_store::WalletRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::{policy_of, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::request::{body_bytes, parse_json};
use crate::state::AppState;
use crate::task::blocking;
use crate::{actions, now};

type Shared = State<Arc<AppState>>;

pub(super) async fn list_wallets(State(state): Shared, principal: Principal) -> ApiResult<Json<Value>> {
    let wallets = state.store.wallets()?;
    let visible: Vec<_> = match &principal {
        Principal::Operator(_) => wallets,
        Principal::Agent(session) => {
            principal.require_wallet(&session.wallet_id, "read")?;
            wallets.into_iter().filter(|w| w.id == session.wallet_id).collect()
        }
    };
    Ok(Json(json!({"wallets": visible})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterWallet {
    name: String,
    wallet_id: String,
}

pub(super) async fn register_wallet(
    State(state): Shared,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    principal.require_operator()?;
    let request: RegisterWallet = parse_json(&body_bytes(body)?)?;
    let name = request.name.trim().to_string();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "name must be 1 to 64 printable characters"));
    }
    let wallet_id: WalletId = request
        .wallet_id
        .parse()
        .map_err(|e: mandate_core::IdError| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
    if state.store.wallet(wallet_id.as_str())?.is_some() {
        return Err(ApiError::new(ErrorCode::WalletExists, format!("{wallet_id} is registered already")));
    }
    let signer = state.signer.clone();
    let id = wallet_id.clone();
    // The address comes from the daemon's own share, never from the request.
    let address = blocking(move || signer.address(&id)).await?;
    let record =
        WalletRecord { id: wallet_id.to_string(), name, address, chain_id: state.chain_id(), created_at: now() };
    let store = state.store.clone();
    let stored = record.clone();
    let actor = principal.actor();
    blocking(move || {
        let entry = audit_entry(
            &actor,
            "wallet.created",
            Some(&stored.id),
            json!({"name": stored.name, "address": stored.address, "chain_id": stored.chain_id}),
        );
        Ok(store.insert_wallet(&stored, entry)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!(record))))
}

pub(super) async fn show_wallet(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let mut shown = json!(wallet);
    if let Some(map) = shown.as_object_mut() {
        map.insert("frozen".into(), json!(state.store.freeze_of(&wallet.id)?));
    }
    Ok(Json(shown))
}

#[derive(Deserialize)]
pub(super) struct BalanceQuery {
    token: Option<String>,
    chain: Option<String>,
}

/// `GET …/balance[?token=SYMBOL|0x…][&chain=NAME|ID]`: native, or an ERC-20 balance read
/// from the contract, on the chain named (the daemon's only chain by default).
pub(super) async fn balance(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<BalanceQuery>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let address = wallet.address()?;
    let chain_id = state.chain_of_request(query.chain.as_deref())?;
    let node = state.node(chain_id)?;
    let Some(token) = query.token.as_deref() else {
        let wei = node.balance(address).await?;
        return Ok(Json(json!({
            "wallet_id": wallet.id,
            "address": wallet.address,
            "chain_id": chain_id,
            "asset": "native",
            "balance_wei": wei.to_string(),
            "balance": format_units(wei, 18),
        })));
    };
    if token.is_empty() || token.len() > 64 {
        return Err(ApiError::new(ErrorCode::UnknownToken, "token: expected a symbol or a contract address"));
    }
    let policy = policy_of(&state, &wallet.id)?;
    let info = actions::token_info(&state, chain_id, policy.as_deref(), token).await?;
    let base = node.erc20_balance(info.address, address).await?;
    Ok(Json(json!({
        "wallet_id": wallet.id,
        "address": wallet.address,
        "chain_id": chain_id,
        "asset": "token",
        "token": info.address.to_checksum(None),
        // Read from the contract: data, not a name the daemon vouches for.
        "token_symbol": info.symbol,
        "decimals": info.decimals,
        "balance_base": base.to_string(),
        "balance": format_units(base, info.decimals),
    })))
}

/// `GET …/policy/summary`: the rules and what every window has left now.
pub(super) async fn policy_summary(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let frozen = state.store.freeze_of(&wallet.id)?;
    let Some(mandate_store::StoredPolicy { version, document, hash }) = state.store.policy(&wallet.id)? else {
        return Ok(Json(json!({"wallet_id": wallet.id, "policy": null, "frozen": frozen, "rules": [], "budgets": [],
            "note": "no policy is set: every action is denied"})));
    };
    let document: Value = serde_json::from_str(&document).map_err(|e| ApiError::internal(e.to_string()))?;
    let budgets = crate::context::budgets_now(&state, &wallet.id)?.unwrap_or_default();
    Ok(Json(json!({
        "wallet_id": wallet.id,
        "policy": {"version": version, "hash": hash},
        "frozen": frozen,
        "rules": document.get("rules").cloned().unwrap_or(Value::Null),
        "budgets": budgets,
        "note": "default deny: an action needs a rule of its kind that permits it, then every rule must pass",
    })))
}

pub(super) async fn show_policy(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    wallet_for(&state, &principal, &id, "read")?;
    let mandate_store::StoredPolicy { version, document, hash } = state
        .store
        .policy(&id)?
        .ok_or_else(|| ApiError::new(ErrorCode::PolicyNotFound, format!("{id} has no policy: everything is denied")))?;
    let document: Value = serde_json::from_str(&document).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"wallet_id": id, "version": version, "hash": hash, "document": document})))
}

pub(crate) async fn set_policy(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    wallet_for(&state, &principal, &id, "read")?;
    let body = body_bytes(body)?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::new(ErrorCode::InvalidJson, "body is not UTF-8"))?;
    let policy = Policy::parse(text).map_err(|e| {
        ApiError::new(ErrorCode::InvalidPolicy, e.to_string())
            .with_details(json!({"path": e.path, "reason": e.message}))
    })?;
    // Declared decimals must be the contract's: a policy that scales amounts wrongly
    // would cap the wrong amounts.
    for token in &policy.tokens {
        let on_chain = actions::token_at(&state, state.chain_id(), token.address).await.map_err(|e| {
            ApiError::new(e.code, format!("$.tokens.{}: {}", token.symbol, e.message))
                .with_details(json!({"path": format!("$.tokens.{}.address", token.symbol)}))
        })?;
        if on_chain.decimals != token.decimals {
            let path = format!("$.tokens.{}.decimals", token.symbol);
            return Err(ApiError::new(
                ErrorCode::InvalidPolicy,
                format!("{path}: the contract says {} decimals, the policy {}", on_chain.decimals, token.decimals),
            )
            .with_details(json!({"path": path, "reason": "decimals differ from the contract's"})));
        }
    }
    let previous = state.store.policy(&id)?.map(|stored| json!({"version": stored.version, "hash": stored.hash}));
    let store = state.store.clone();
    let actor = principal.actor();
    let (wallet, document, hash, rules) = (id.clone(), text.to_string(), policy.hash.clone(), policy.rules.len());
    let recorded: Value = serde_json::from_str(text).map_err(|e| ApiError::internal(e.to_string()))?;
    let version = blocking(move || {
        let details = json!({"rules": rules, "previous": previous, "document": recorded});
        let mut entry = audit_entry(&actor, "policy.set", Some(&wallet), details);
        entry.policy_hash = Some(hash.clone());
        Ok(store.set_policy(&wallet, &document, &hash, now(), entry)?)
    })
    .await?;
    Ok(Json(json!({"wallet_id": id, "version": version, "hash": policy.hash})))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    limit: Option<u64>,
}

pub(super) async fn list_transactions(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    wallet_for(&state, &principal, &id, "read")?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(json!({"transactions": state.store.transactions(&id, limit)?})))
}

pub(super) async fn show_transaction(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let not_found = || ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}"));
    let tx = state.store.transaction(&id)?.ok_or_else(not_found)?;
    if let Principal::Agent(session) = &principal {
        if session.wallet_id != tx.wallet_id {
            return Err(not_found());
        }
        principal.require_wallet(&tx.wallet_id, "read")?;
    }
    Ok(Json(json!(tx)))
}
