//! Agent sessions: create, list, renew, revoke, and the calling session.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use mandate_core::{ErrorCode, Scope};
use mandate_store::{SessionRecord, TxStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::audit_entry;
use crate::auth::{check_session, Principal, SESSION_TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::request::{body_bytes, parse_json};
use crate::state::AppState;
use crate::task::blocking;
use crate::tokens::new_token;
use crate::{now, webhooks};

type Shared = State<Arc<AppState>>;

/// `GET /v1/session`: the calling agent session (id, wallet, scopes, band, expiry).
pub(super) async fn current_session(principal: Principal) -> ApiResult<Json<Value>> {
    let Principal::Agent(session) = principal else {
        return Err(ApiError::new(ErrorCode::InvalidInput, "this endpoint describes a session token; use one"));
    };
    let band = Scope::top_band(&session.scopes).map(Scope::as_str);
    Ok(Json(json!({"session": session, "band": band})))
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

pub(super) async fn create_session(
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
    let scopes =
        super::admin::parse_scopes(request.scopes, "read", &known, &format!("scopes are {bands:?} and {extra:?}"))?;
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
    .await?
    .then_some(())
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "the operator key this request was made with was revoked or expired meanwhile; no session was created",
        )
    })?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "session": session}))))
}

#[derive(Deserialize)]
pub(super) struct SessionQuery {
    wallet_id: Option<String>,
}

pub(super) async fn list_sessions(
    State(state): Shared,
    principal: Principal,
    Query(query): Query<SessionQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    Ok(Json(json!({"sessions": state.store.sessions(query.wallet_id.as_deref())?})))
}

pub(super) async fn renew_session(State(state): Shared, principal: Principal) -> ApiResult<Json<Value>> {
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

pub(crate) async fn revoke_session(
    State(state): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let Some(session) = state.store.session(&id)? else {
        return Err(ApiError::new(ErrorCode::SessionNotFound, format!("no session {id}")));
    };
    let (revoked, cancelled) = revoke(&state, session, principal.actor(), "its session was revoked").await?;
    Ok(Json(json!({"revoked": revoked, "session_id": id, "cancelled": cancelled})))
}

/// Revokes `session` as `actor` (audited), cancelling what it left held (each
/// audited with `reason`, and reported to webhooks): whether it was live, and the
/// cancelled transactions' ids.
pub(crate) async fn revoke(
    state: &AppState,
    session: SessionRecord,
    actor: String,
    reason: &'static str,
) -> ApiResult<(bool, Vec<String>)> {
    let store = state.store.clone();
    let (revoked, cancelled) = blocking(move || {
        let entry = audit_entry(&actor, "session.revoked", Some(&session.wallet_id), json!({"session_id": session.id}));
        // What the session left held (approval, delay) is cancelled with it.
        let cancelled = |tx: &mandate_store::TxRecord| {
            audit_entry(
                &actor,
                "transaction.cancelled",
                Some(&tx.wallet_id),
                json!({"tx_id": tx.id, "reason": reason, "session_id": session.id}),
            )
            .with_event(webhooks::event(
                webhooks::Event::ApprovalResolved,
                json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": TxStatus::Cancelled, "by": actor}),
            ))
        };
        Ok(store.revoke_session(&session.id, now(), entry, cancelled)?)
    })
    .await?;
    if !cancelled.is_empty() {
        webhooks::wake(state);
    }
    Ok((revoked, cancelled.into_iter().map(|tx| tx.id).collect()))
}
