//! Health, the operator's login and API keys, and the audit trail's verification and tail.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use mandate_core::ErrorCode;
use mandate_store::{AuditAnchor, AuditProblem, OperatorKeyRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::audit_entry;
use crate::auth::{basic_password, Principal, OPERATOR_KEY_PREFIX, OPERATOR_SCOPES};
use crate::error::{ApiError, ApiResult};
use crate::guard::ClientIp;
use crate::now;
use crate::provision::verify_password;
use crate::request::{body_bytes, parse_json};
use crate::state::AppState;
use crate::task::blocking;
use crate::tokens::new_token;

type Shared = State<Arc<AppState>>;

pub(super) async fn health(State(state): Shared) -> Json<Value> {
    let chains: Vec<Value> = state.chains.iter().map(|c| json!({"name": c.name, "chain_id": c.id})).collect();
    Json(json!({"status": "ok", "chain_id": state.chain_id(), "chains": chains}))
}

pub(super) async fn login(State(state): Shared, client: ClientIp, headers: HeaderMap) -> ApiResult<Json<Value>> {
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
pub(super) fn parse_scopes(
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
pub(super) async fn create_operator_key(
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
    let inserted = blocking(move || {
        let entry = audit_entry(
            &stored.created_by,
            "operator_key.created",
            None,
            json!({"key_id": stored.id, "name": stored.name, "scopes": stored.scopes, "expires_at": stored.expires_at}),
        );
        Ok(store.insert_operator_key(&stored, entry)?)
    })
    .await?;
    if !inserted {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the operator key this request was made with was revoked or expired meanwhile; no key was created",
        ));
    }
    Ok((StatusCode::CREATED, Json(json!({"key": key, "operator_key": record}))))
}

/// `GET /v1/operator-keys` (operator): every key with its state, never the key.
pub(super) async fn list_operator_keys(State(state): Shared, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    Ok(Json(json!({"operator_keys": state.store.operator_keys()?})))
}

/// `POST /v1/operator-keys/{id}/revoke` (operator, `admin`): refused from its next request on.
pub(super) async fn revoke_operator_key(
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
    // The sessions those keys made: none can be made now (a session's creation checks
    // its key in its own transaction), so this list is complete.
    let creators: Vec<String> = revoked.keys.iter().map(|key| format!("operator:key:{key}")).collect();
    let store = state.store.clone();
    let sessions = blocking(move || Ok(store.sessions_created_by(&creators)?)).await?;
    let (mut sessions_revoked, mut cancelled) = (Vec::new(), Vec::new());
    for session in sessions {
        let session_id = session.id.clone();
        let (now_revoked, held) = super::sessions::revoke(
            &state,
            session,
            principal.actor(),
            "the operator key that made its session was revoked",
        )
        .await?;
        if now_revoked {
            sessions_revoked.push(session_id);
        }
        cancelled.extend(held);
    }
    Ok(Json(json!({"revoked": revoked.revoked, "key_id": id, "also_revoked": revoked.also_revoked,
                   "sessions_revoked": sessions_revoked, "cancelled": cancelled})))
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
pub(super) struct AnchorQuery {
    anchor_seq: Option<u64>,
    anchor_hash: Option<String>,
}

pub(super) async fn verify_audit(
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
pub(super) struct TailQuery {
    n: Option<u64>,
}

pub(super) async fn audit_tail(
    State(state): Shared,
    principal: Principal,
    Query(query): Query<TailQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let n = query.n.unwrap_or(20).clamp(1, 1000);
    Ok(Json(json!({"records": state.store.audit_tail(n)?})))
}
