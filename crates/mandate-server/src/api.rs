//! The REST routes (docs/API.md; `GET /v1/openapi.json`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use mandate_core::amount::format_units;
use mandate_core::policy::Policy;
use mandate_core::{ErrorCode, Scope, WalletId};
use mandate_store::{AuditAnchor, AuditProblem, OperatorKeyRecord, SessionRecord, WalletRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::audit_entry;
use crate::auth::{
    basic_password, check_session, Principal, OPERATOR_KEY_PREFIX, OPERATOR_SCOPES, SESSION_TOKEN_PREFIX,
};
use crate::context::{policy_of, wallet_for};
use crate::error::{ApiError, ApiResult};
use crate::guard::ClientIp;
use crate::provision::verify_password;
use crate::request::{body_bytes, parse_json, MAX_BODY_BYTES};
use crate::state::AppState;
use crate::task::blocking;
use crate::tokens::new_token;
use crate::{actions, approvals, freeze, now, openapi, send, webhooks};

type Shared = State<Arc<AppState>>;

/// The router of the whole API.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/v1/admin/login", post(login))
        .route("/v1/operator-keys", get(list_operator_keys).post(create_operator_key))
        .route("/v1/operator-keys/{id}/revoke", post(revoke_operator_key))
        .route("/v1/wallets", get(list_wallets).post(register_wallet))
        .route("/v1/wallets/{id}", get(show_wallet))
        .route("/v1/wallets/{id}/balance", get(balance))
        .route("/v1/wallets/{id}/policy", get(show_policy).put(set_policy))
        .route("/v1/wallets/{id}/transactions", get(list_transactions).post(send::send))
        .route("/v1/wallets/{id}/transactions/dry-run", post(actions::dry_run))
        .route("/v1/wallets/{id}/contract-calls", post(send::contract_call))
        .route("/v1/wallets/{id}/sign-typed-data", post(actions::sign_typed_data))
        .route("/v1/wallets/{id}/sign-message", post(actions::sign_message))
        .route("/v1/wallets/{id}/sign-hash", post(actions::sign_hash))
        .route("/v1/wallets/{id}/policy/evaluate", post(actions::evaluate_action))
        .route("/v1/wallets/{id}/policy/summary", get(policy_summary))
        .route("/v1/wallets/{id}/freeze", post(freeze::freeze_handler))
        .route("/v1/wallets/{id}/unfreeze", get(freeze::unfreeze_message).post(freeze::unfreeze))
        .route("/v1/freeze", post(freeze::freeze_all))
        .route("/v1/wallets/{id}/owners", get(approvals::list_owners).post(approvals::add_owner))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/owner/approvals/{id}", get(approvals::owner_view))
        .route("/v1/owner/wallets/{id}/unfreeze", get(freeze::owner_unfreeze_view))
        .route("/v1/transactions/{id}/cancel", post(approvals::cancel))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::remove))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/transactions/{id}", get(show_transaction))
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route("/v1/sessions/renew", post(renew_session))
        .route("/v1/session", get(current_session))
        .route("/v1/sessions/{id}/revoke", post(revoke_session))
        .route("/v1/audit/verify", get(verify_audit))
        .route("/v1/audit/tail", get(audit_tail))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this endpoint")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health(State(state): Shared) -> Json<Value> {
    Json(json!({"status": "ok", "chain_id": state.chain_id}))
}

async fn login(State(state): Shared, client: ClientIp, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let password = basic_password(&headers)?;
    let hash = state.master_hash.clone();
    let ok = state.login_limiter.check_password(client, now, move || verify_password(&hash, &password)).await?;
    if !ok {
        let store = state.store.clone();
        let details = json!({"client": client.0.to_string()});
        blocking(move || Ok(store.audit(audit_entry("unknown", "admin.login_failed", None, details), now())?)).await?;
        // Outside the queue: a failure slows its own client only.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "wrong master password"));
    }
    let (token, expires_at) = state.admin_tokens.issue(now())?;
    state.store.audit(audit_entry("operator", "admin.login", None, json!({"expires_at": expires_at})), now())?;
    Ok(Json(json!({"token": token, "expires_at": expires_at})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOperatorKey {
    name: String,
    scopes: Option<Vec<String>>,
    ttl_days: Option<u64>,
}

/// Default lifetime of an operator key.
const DEFAULT_KEY_TTL_DAYS: u64 = 90;
/// Longest lifetime of an operator key.
const MAX_KEY_TTL_DAYS: u64 = 3650;

/// The scopes of a new operator key or session: `default` when none are given, at
/// least one, each one of `known` (`known_text` names them in the refusal).
fn parse_scopes(
    requested: Option<Vec<String>>,
    default: &str,
    known: &[&str],
    known_text: &str,
) -> ApiResult<Vec<String>> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidInput, m);
    let scopes = requested.unwrap_or_else(|| vec![default.to_string()]);
    if scopes.is_empty() {
        return Err(invalid("give at least one scope".into()));
    }
    if let Some(bad) = scopes.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(invalid(format!("unknown scope {bad:?}; {known_text}")));
    }
    Ok(scopes)
}

/// `POST /v1/operator-keys` `{"name", "scopes"?, "ttl_days"?}` (operator, `admin`):
/// a new operator key, shown once; the daemon keeps its SHA-256 only.
async fn create_operator_key(
    State(state): Shared,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    principal.require_operator()?;
    let request: CreateOperatorKey = parse_json(&body_bytes(body)?)?;
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidInput, m);
    let name = request.name.trim().to_string();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(invalid("name must be 1 to 64 printable characters".into()));
    }
    let requested = request.scopes.map(|mut scopes| {
        scopes.sort();
        scopes.dedup();
        scopes
    });
    let scopes =
        parse_scopes(requested, "admin", &OPERATOR_SCOPES, &format!("operator key scopes are {OPERATOR_SCOPES:?}"))?;
    let ttl_days = request.ttl_days.unwrap_or(DEFAULT_KEY_TTL_DAYS);
    if ttl_days == 0 || ttl_days > MAX_KEY_TTL_DAYS {
        return Err(invalid(format!("ttl_days must be 1 to {MAX_KEY_TTL_DAYS}")));
    }
    let (key, key_hash) = new_token(OPERATOR_KEY_PREFIX);
    let now = now();
    let record = OperatorKeyRecord {
        id: format!("opk_{}", hex::encode(rand::random::<[u8; 10]>())),
        name,
        key_hash,
        scopes,
        created_at: now,
        created_by: principal.actor(),
        expires_at: Some(now + ttl_days * 86_400),
        last_used_at: None,
        revoked_at: None,
    };
    let store = state.store.clone();
    let stored = record.clone();
    blocking(move || {
        let entry = audit_entry(
            &stored.created_by,
            "operator_key.created",
            None,
            json!({"key_id": stored.id, "name": stored.name, "scopes": stored.scopes, "expires_at": stored.expires_at}),
        );
        Ok(store.insert_operator_key(&stored, entry)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"key": key, "operator_key": record}))))
}

/// `GET /v1/operator-keys` (operator): every key with its state, never the key.
async fn list_operator_keys(State(state): Shared, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    Ok(Json(json!({"operator_keys": state.store.operator_keys()?})))
}

/// `POST /v1/operator-keys/{id}/revoke` (operator, `admin`): refused from its next request on.
async fn revoke_operator_key(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    if state.store.operator_key(&id)?.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, format!("no operator key {id}")));
    }
    let store = state.store.clone();
    let actor = principal.actor();
    let key = id.clone();
    let revoked = blocking(move || {
        let entry = audit_entry(&actor, "operator_key.revoked", None, json!({"key_id": key}));
        Ok(store.revoke_operator_key(&key, now(), entry)?)
    })
    .await?;
    Ok(Json(json!({"revoked": revoked, "key_id": id})))
}

async fn list_wallets(State(state): Shared, principal: Principal) -> ApiResult<Json<Value>> {
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

async fn register_wallet(
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
    let record = WalletRecord { id: wallet_id.to_string(), name, address, chain_id: state.chain_id, created_at: now() };
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

async fn show_wallet(State(state): Shared, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let mut shown = json!(wallet);
    if let Some(map) = shown.as_object_mut() {
        map.insert("frozen".into(), json!(state.store.freeze_of(&wallet.id)?));
    }
    Ok(Json(shown))
}

#[derive(Deserialize)]
struct BalanceQuery {
    token: Option<String>,
}

/// `GET …/balance[?token=SYMBOL|0x…]`: native, or an ERC-20 balance read from the contract.
async fn balance(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<BalanceQuery>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let address = crate::request::address_field("address", &wallet.address)?;
    let Some(token) = query.token.as_deref() else {
        let wei = state.chain.balance(address).await?;
        return Ok(Json(json!({
            "wallet_id": wallet.id,
            "address": wallet.address,
            "chain_id": wallet.chain_id,
            "asset": "native",
            "balance_wei": wei.to_string(),
            "balance": format_units(wei, 18),
        })));
    };
    if token.is_empty() || token.len() > 64 {
        return Err(ApiError::new(ErrorCode::UnknownToken, "token: expected a symbol or a contract address"));
    }
    let policy = policy_of(&state, &wallet.id)?;
    let info = actions::token_info(&state, policy.as_deref(), token).await?;
    let base = state.chain.erc20_balance(info.address, address).await?;
    Ok(Json(json!({
        "wallet_id": wallet.id,
        "address": wallet.address,
        "chain_id": wallet.chain_id,
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
async fn policy_summary(State(state): Shared, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let frozen = state.store.freeze_of(&wallet.id)?;
    let Some((version, document, hash)) = state.store.policy(&wallet.id)? else {
        return Ok(Json(json!({"wallet_id": wallet.id, "policy": null, "frozen": frozen, "rules": [], "budgets": [],
            "note": "no policy is set: every action is denied"})));
    };
    let policy =
        Policy::parse(&document).map_err(|e| ApiError::internal(format!("stored policy no longer parses: {e}")))?;
    let document: Value = serde_json::from_str(&document).map_err(|e| ApiError::internal(e.to_string()))?;
    let now = now();
    let history = state.store.spends(&wallet.id, now.saturating_sub(policy.lookback_secs()))?;
    let prices = std::collections::BTreeMap::new();
    let ctx = mandate_core::policy::Context {
        now,
        chain_id: state.chain_id,
        history: &history,
        prices: &prices,
        recipient_seen: true,
        fees: None,
        simulation: None,
    };
    let budgets = mandate_core::policy::budgets(&policy, &ctx);
    Ok(Json(json!({
        "wallet_id": wallet.id,
        "policy": {"version": version, "hash": hash},
        "frozen": frozen,
        "rules": document.get("rules").cloned().unwrap_or(Value::Null),
        "budgets": budgets,
        "note": "default deny: an action needs a rule of its kind that permits it, then every rule must pass",
    })))
}

/// `GET /v1/session`: the calling agent session (id, wallet, scopes, band, expiry).
async fn current_session(principal: Principal) -> ApiResult<Json<Value>> {
    let Principal::Agent(session) = principal else {
        return Err(ApiError::new(ErrorCode::InvalidInput, "this endpoint describes a session token; use one"));
    };
    let band = Scope::top_band(&session.scopes).map(Scope::as_str);
    Ok(Json(json!({"session": session, "band": band})))
}

async fn show_policy(State(state): Shared, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    wallet_for(&state, &principal, &id, "read")?;
    let (version, document, hash) = state
        .store
        .policy(&id)?
        .ok_or_else(|| ApiError::new(ErrorCode::PolicyNotFound, format!("{id} has no policy: everything is denied")))?;
    let document: Value = serde_json::from_str(&document).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"wallet_id": id, "version": version, "hash": hash, "document": document})))
}

async fn set_policy(
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
        let on_chain = actions::token_at(&state, token.address).await.map_err(|e| {
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
    let previous = state.store.policy(&id)?.map(|(version, _, hash)| json!({"version": version, "hash": hash}));
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
struct ListQuery {
    limit: Option<u64>,
}

async fn list_transactions(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    wallet_for(&state, &principal, &id, "read")?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(json!({"transactions": state.store.transactions(&id, limit)?})))
}

async fn show_transaction(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    wallet_id: String,
    ttl_secs: u64,
    #[serde(default)]
    max_renewals: u64,
    absolute_lifetime_secs: Option<u64>,
    scopes: Option<Vec<String>>,
}

const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

async fn create_session(
    State(state): Shared,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    principal.require_operator()?;
    let request: CreateSession = parse_json(&body_bytes(body)?)?;
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidInput, m);
    if request.ttl_secs == 0 || request.ttl_secs > MAX_TTL_SECS {
        return Err(invalid(format!("ttl_secs must be 1 to {MAX_TTL_SECS}")));
    }
    if request.max_renewals > 10_000 {
        return Err(invalid("max_renewals must be at most 10000".into()));
    }
    let lifetime = request
        .absolute_lifetime_secs
        .unwrap_or_else(|| request.ttl_secs.saturating_mul(request.max_renewals + 1).min(MAX_LIFETIME_SECS));
    if lifetime < request.ttl_secs || lifetime > MAX_LIFETIME_SECS {
        return Err(invalid(format!("absolute_lifetime_secs must be from ttl_secs to {MAX_LIFETIME_SECS}")));
    }
    let (known, bands, extra) =
        (Scope::ALL.map(Scope::as_str), Scope::BANDS.map(Scope::as_str), Scope::EXTRA.map(Scope::as_str));
    let scopes = parse_scopes(request.scopes, "read", &known, &format!("scopes are {bands:?} and {extra:?}"))?;
    if state.store.wallet(&request.wallet_id)?.is_none() {
        return Err(ApiError::new(ErrorCode::WalletNotFound, format!("no wallet {}", request.wallet_id)));
    }
    let (token, token_hash) = new_token(SESSION_TOKEN_PREFIX);
    let now = now();
    let session = SessionRecord {
        id: format!("ses_{}", hex::encode(rand::random::<[u8; 10]>())),
        token_hash,
        wallet_id: request.wallet_id.clone(),
        scopes,
        created_at: now,
        ttl_secs: request.ttl_secs,
        expires_at: now + request.ttl_secs.min(lifetime),
        absolute_expires_at: now + lifetime,
        renewals: 0,
        max_renewals: request.max_renewals,
        revoked_at: None,
    };
    let store = state.store.clone();
    let stored = session.clone();
    let actor = principal.actor();
    blocking(move || {
        let entry = audit_entry(
            &actor,
            "session.created",
            Some(&stored.wallet_id),
            json!({"session_id": stored.id, "scopes": stored.scopes, "ttl_secs": stored.ttl_secs,
                   "max_renewals": stored.max_renewals, "absolute_expires_at": stored.absolute_expires_at}),
        );
        Ok(store.insert_session(&stored, entry)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "session": session}))))
}

#[derive(Deserialize)]
struct SessionQuery {
    wallet_id: Option<String>,
}

async fn list_sessions(
    State(state): Shared,
    principal: Principal,
    Query(query): Query<SessionQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    Ok(Json(json!({"sessions": state.store.sessions(query.wallet_id.as_deref())?})))
}

async fn renew_session(State(state): Shared, principal: Principal) -> ApiResult<Json<Value>> {
    let Principal::Agent(session) = principal else {
        return Err(ApiError::new(ErrorCode::InvalidInput, "renew with the session token itself"));
    };
    let now = now();
    match state.store.renew_session(&session.id, now)? {
        Some(renewed) => {
            state.store.audit(
                audit_entry(
                    &mandate_store::agent_actor(&renewed.id),
                    "session.renewed",
                    Some(&renewed.wallet_id),
                    json!({"renewals": renewed.renewals, "expires_at": renewed.expires_at}),
                ),
                now,
            )?;
            Ok(Json(json!(renewed)))
        }
        None => {
            check_session(&session, now)?;
            if session.renewals >= session.max_renewals {
                return Err(ApiError::new(
                    ErrorCode::SessionRenewalExhausted,
                    format!("this session was renewed {} times, its maximum", session.renewals),
                ));
            }
            Err(ApiError::new(ErrorCode::SessionExpired, "this session cannot be renewed any more"))
        }
    }
}

async fn revoke_session(State(state): Shared, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let Some(session) = state.store.session(&id)? else {
        return Err(ApiError::new(ErrorCode::SessionNotFound, format!("no session {id}")));
    };
    let store = state.store.clone();
    let actor = principal.actor();
    let (revoked, cancelled) = blocking(move || {
        let entry = audit_entry(&actor, "session.revoked", Some(&session.wallet_id), json!({"session_id": session.id}));
        // What the session left held (approval, delay) is cancelled with it.
        let cancelled = |tx: &mandate_store::TxRecord| {
            audit_entry(
                &actor,
                "transaction.cancelled",
                Some(&tx.wallet_id),
                json!({"tx_id": tx.id, "reason": "its session was revoked", "session_id": session.id}),
            )
        };
        Ok(store.revoke_session(&session.id, now(), entry, cancelled)?)
    })
    .await?;
    for tx in &cancelled {
        webhooks::emit(
            &state,
            webhooks::Event::ApprovalResolved,
            json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": tx.status, "by": principal.actor()}),
        );
    }
    let cancelled: Vec<&str> = cancelled.iter().map(|tx| tx.id.as_str()).collect();
    Ok(Json(json!({"revoked": revoked, "session_id": id, "cancelled": cancelled})))
}

fn problem_json(problem: &AuditProblem) -> Value {
    let (kind, seq) = match problem {
        AuditProblem::Unreadable { line } => ("unreadable", *line as u64),
        AuditProblem::Edited { seq } => ("edited", *seq),
        AuditProblem::Deleted { expected, .. } => ("deleted", *expected),
        AuditProblem::Truncated { file_last, .. } => ("truncated", file_last + 1),
        AuditProblem::Reordered { seq, .. } => ("reordered", *seq),
        AuditProblem::BrokenLink { seq, .. } => ("broken_link", *seq),
        AuditProblem::Cut { last, .. } => ("cut", last + 1),
        AuditProblem::AnchorMismatch { seq } => ("anchor_mismatch", *seq),
    };
    json!({"kind": kind, "seq": seq, "message": problem.to_string()})
}

/// `?anchor_seq=N&anchor_hash=H`: the cosigner's record of the audit head.
#[derive(Deserialize)]
struct AnchorQuery {
    anchor_seq: Option<u64>,
    anchor_hash: Option<String>,
}

async fn verify_audit(
    State(state): Shared,
    principal: Principal,
    Query(query): Query<AnchorQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let anchor = match (query.anchor_seq, query.anchor_hash) {
        (Some(seq), Some(hash)) => {
            let digits = hash.trim_start_matches("0x");
            if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::new(ErrorCode::InvalidInput, "anchor_hash must be 32 bytes of hex"));
            }
            Some(AuditAnchor { seq, hash: digits.to_ascii_lowercase() })
        }
        (None, None) => None,
        _ => return Err(ApiError::new(ErrorCode::InvalidInput, "give anchor_seq and anchor_hash together")),
    };
    let store = state.store.clone();
    let result = blocking(move || Ok(store.verify_audit_anchored(anchor.as_ref())?)).await?;
    Ok(Json(match result {
        Ok(records) => json!({"ok": true, "records": records}),
        Err(problem) => json!({"ok": false, "problem": problem_json(&problem)}),
    }))
}

#[derive(Deserialize)]
struct TailQuery {
    n: Option<u64>,
}

async fn audit_tail(
    State(state): Shared,
    principal: Principal,
    Query(query): Query<TailQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let n = query.n.unwrap_or(20).clamp(1, 1000);
    Ok(Json(json!({"records": state.store.audit_tail(n)?})))
}
