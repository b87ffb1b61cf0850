//! Who is calling: the operator (master password → short-lived admin token, or an
//! operator API key: named, scoped, expiring, revocable, and separate from the
//! master password that seals the shares) or an agent (a session token bound to one
//! wallet, with scopes, TTL, renewals and an absolute lifetime). Tokens and keys are
//! random; only their SHA-256 is kept.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use base64::Engine;
use mandate_core::{ErrorCode, Scope};
use mandate_store::{OperatorKeyRecord, SessionRecord};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::guard::ClientIp;
use crate::now;
use crate::state::AppState;
use crate::tokens::{token_hash, ADMIN_TOKEN_PREFIX};

/// Prefix of agent session tokens.
pub(crate) const SESSION_TOKEN_PREFIX: &str = "mnd_sess_";
/// Prefix of operator API keys.
pub const OPERATOR_KEY_PREFIX: &str = "mnd_op_";
/// Scopes of operator keys: `admin` (everything the operator may do, keys included),
/// `read` (every `GET`), `freeze` (the two emergency-freeze endpoints).
pub(crate) const OPERATOR_SCOPES: [&str; 3] = ["admin", "read", "freeze"];

/// How the operator proved itself.
#[derive(Debug, Clone)]
pub(crate) enum OperatorVia {
    /// A token from a master-password login.
    Login,
    /// An operator API key (its id); its scopes were checked against the request.
    Key(String),
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// The operator.
    Operator(OperatorVia),
    /// An agent session.
    Agent(Box<SessionRecord>),
}

impl Principal {
    /// The audit actor name: `operator`, `operator:key:<key id>` or `agent:<session id>`.
    pub(crate) fn actor(&self) -> String {
        match self {
            Principal::Operator(OperatorVia::Login) => "operator".into(),
            Principal::Operator(OperatorVia::Key(id)) => format!("operator:key:{id}"),
            Principal::Agent(session) => mandate_store::agent_actor(&session.id),
        }
    }

    /// Refuses anyone but the operator.
    pub(crate) fn require_operator(&self) -> ApiResult<()> {
        match self {
            Principal::Operator(_) => Ok(()),
            Principal::Agent(_) => Err(ApiError::new(
                ErrorCode::AdminRequired,
                "this endpoint is for the operator; session tokens cannot use it",
            )),
        }
    }

    /// Refuses a session bound to another wallet or lacking `scope`.
    pub(crate) fn require_wallet(&self, wallet: &str, scope: &str) -> ApiResult<()> {
        let Principal::Agent(session) = self else { return Ok(()) };
        if session.wallet_id != wallet {
            return Err(ApiError::new(ErrorCode::WalletNotPermitted, "this session is bound to another wallet"));
        }
        if !has_scope(&session.scopes, scope) {
            return Err(ApiError::new(ErrorCode::ScopeMissing, format!("this session lacks the {scope:?} scope")));
        }
        Ok(())
    }
}

/// Whether session `scopes` grant `needed` ([`Scope::includes`]: a band grants every
/// band before it). A name that is no scope is granted by nothing.
pub(crate) fn has_scope(scopes: &[String], needed: &str) -> bool {
    Scope::parse(needed).is_ok_and(|needed| Scope::granted(scopes, needed))
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> ApiResult<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "missing Authorization: Bearer <token>"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "expected Authorization: Bearer <token>"))
}

/// Checks a session record's state at `now`.
pub(crate) fn check_session(session: &SessionRecord, now: u64) -> ApiResult<()> {
    if session.revoked_at.is_some() {
        return Err(ApiError::new(ErrorCode::SessionRevoked, "this session was revoked"));
    }
    if now >= session.absolute_expires_at {
        return Err(ApiError::new(ErrorCode::SessionExpired, "this session reached its absolute lifetime"));
    }
    if now >= session.expires_at {
        return Err(ApiError::new(ErrorCode::SessionExpired, "this session expired; renew it before its TTL ends"));
    }
    Ok(())
}

/// Checks an operator key record's state at `now` (`UNAUTHENTICATED` if revoked or expired).
pub(crate) fn check_operator_key(key: &OperatorKeyRecord, now: u64) -> ApiResult<()> {
    if key.revoked_at.is_some() {
        return Err(ApiError::new(ErrorCode::Unauthenticated, "this operator key was revoked"));
    }
    if key.expires_at.is_some_and(|expiry| now >= expiry) {
        return Err(ApiError::new(ErrorCode::Unauthenticated, "this operator key expired"));
    }
    Ok(())
}

/// Whether an operator key with `scopes` may make a `method` request to `path`.
pub(crate) fn operator_key_allows(scopes: &[String], method: &Method, path: &str) -> bool {
    let has = |scope: &str| scopes.iter().any(|s| s == scope);
    if has("admin") {
        return true;
    }
    if has("read") && (method == Method::GET || method == Method::HEAD) {
        return true;
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let is_freeze = matches!(segments.as_slice(), ["", "v1", "freeze"] | ["", "v1", "wallets", _, "freeze"]);
    has("freeze") && method == Method::POST && is_freeze
}

/// Who asks, and what: the peer, the method and the path (operator keys are scoped by them).
pub(crate) struct RequestInfo<'a> {
    pub(crate) client: ClientIp,
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
}

/// A failed use of an operator key: counted against the client's login budget and
/// audited; once the client is over its budget, refused with `RATE_LIMITED` unaudited.
fn key_failure(state: &AppState, request: &RequestInfo<'_>, key: Option<&str>, reason: &str, now: u64) -> ApiError {
    if let Err(limited) = state.login_limiter.refuse_if_over_budget(request.client, now) {
        return limited;
    }
    state.login_limiter.record_failure(request.client, now);
    let details = json!({"key_id": key, "reason": reason, "client": request.client.0.to_string(),
                         "method": request.method.as_str(), "path": request.path});
    if let Err(error) =
        state.store.audit(crate::audit::audit_entry("unknown", "operator_key.use_failed", None, details), now)
    {
        return error.into();
    }
    ApiError::new(ErrorCode::Unauthenticated, reason.to_string())
}

/// Authenticates an operator key: known, not revoked, not expired, and its scopes
/// cover the request.
fn authenticate_key(state: &AppState, key: &str, request: &RequestInfo<'_>, now: u64) -> ApiResult<Principal> {
    let Some(record) = state.store.operator_key_by_hash(&token_hash(key))? else {
        return Err(key_failure(state, request, None, "unknown operator key", now));
    };
    if let Err(refused) = check_operator_key(&record, now) {
        return Err(key_failure(state, request, Some(&record.id), &refused.message, now));
    }
    if !operator_key_allows(&record.scopes, request.method, request.path) {
        let details = json!({"key_id": record.id, "reason": "scope", "scopes": record.scopes,
                             "method": request.method.as_str(), "path": request.path});
        state.store.audit(crate::audit::audit_entry("unknown", "operator_key.use_failed", None, details), now)?;
        return Err(ApiError::new(
            ErrorCode::ScopeMissing,
            format!("this operator key's scopes {:?} do not allow {} {}", record.scopes, request.method, request.path),
        ));
    }
    if record.last_use_due(now) {
        state.store.touch_operator_key(&record.id, now)?;
    }
    Ok(Principal::Operator(OperatorVia::Key(record.id)))
}

/// Authenticates a request.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap, request: &RequestInfo<'_>) -> ApiResult<Principal> {
    let token = bearer(headers)?;
    let now = now();
    if token.starts_with(ADMIN_TOKEN_PREFIX) {
        if state.admin_tokens.valid(token, now)? {
            return Ok(Principal::Operator(OperatorVia::Login));
        }
        return Err(ApiError::new(ErrorCode::Unauthenticated, "unknown or expired operator token; log in again"));
    }
    if token.starts_with(OPERATOR_KEY_PREFIX) {
        return authenticate_key(state, token, request, now);
    }
    if token.starts_with(SESSION_TOKEN_PREFIX) {
        let session = state
            .store
            .session_by_token_hash(&token_hash(token))?
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown session token"))?;
        check_session(&session, now)?;
        return Ok(Principal::Agent(Box::new(session)));
    }
    Err(ApiError::new(ErrorCode::Unauthenticated, "unknown token kind"))
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        // A signed agent request, verified by `agent_auth` before the handler.
        if let Some(crate::agent_auth::VerifiedAgent(session)) = parts.extensions.get() {
            return Ok(Principal::Agent(Box::new(session.clone())));
        }
        let request = RequestInfo { client: ClientIp::of(parts), method: &parts.method, path: parts.uri.path() };
        authenticate(state, &parts.headers, &request)
    }
}

/// The password of `Authorization: Basic base64("operator:" + password)`.
pub(crate) fn basic_password(headers: &HeaderMap) -> ApiResult<zeroize::Zeroizing<Vec<u8>>> {
    let invalid =
        || ApiError::new(ErrorCode::InvalidCredentials, "expected Authorization: Basic with user \"operator\"");
    let value = headers.get(axum::http::header::AUTHORIZATION).ok_or_else(invalid)?;
    let encoded = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")).ok_or_else(invalid)?;
    let decoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| invalid())?,
    );
    let password = decoded.strip_prefix(b"operator:").ok_or_else(invalid)?;
    Ok(zeroize::Zeroizing::new(password.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::new_token;

    #[test]
    fn bands_include_lower_bands_only() {
        let scopes = vec!["sign".to_string()];
        assert!(has_scope(&scopes, "read") && has_scope(&scopes, "prepare") && has_scope(&scopes, "sign"));
        assert!(!has_scope(&scopes, "broadcast"));
        assert!(!has_scope(&scopes, "freeze"));
        assert!(has_scope(&["freeze".to_string()], "freeze"));
        assert!(!has_scope(&["freeze".to_string()], "read"));
    }

    #[test]
    fn operator_key_state_is_checked_at_its_boundaries() {
        let key = OperatorKeyRecord {
            id: "opk_1".into(),
            name: "laptop".into(),
            key_hash: "ab".repeat(32),
            scopes: vec!["read".into()],
            created_at: 10,
            created_by: "operator".into(),
            expires_at: Some(1000),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(check_operator_key(&key, 999).is_ok(), "fine before its expiry");
        let expired = check_operator_key(&key, 1000).unwrap_err();
        assert_eq!((expired.code, expired.message.as_str()), (ErrorCode::Unauthenticated, "this operator key expired"));
        let forever = OperatorKeyRecord { expires_at: None, ..key.clone() };
        assert!(check_operator_key(&forever, u64::MAX).is_ok(), "a key without expiry does not expire");
        let revoked = OperatorKeyRecord { revoked_at: Some(500), ..key };
        let refused = check_operator_key(&revoked, 400).unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (ErrorCode::Unauthenticated, "this operator key was revoked")
        );
    }

    #[test]
    fn operator_key_scopes_cover_their_requests_only() {
        let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let admin = scopes(&["admin"]);
        let read = scopes(&["read"]);
        let freeze = scopes(&["freeze"]);
        assert!(operator_key_allows(&admin, &Method::POST, "/v1/operator-keys"));
        assert!(operator_key_allows(&read, &Method::GET, "/v1/wallets"));
        assert!(!operator_key_allows(&read, &Method::POST, "/v1/wallets/wal_a/freeze"));
        assert!(!operator_key_allows(&read, &Method::PUT, "/v1/wallets/wal_a/policy"));
        assert!(operator_key_allows(&freeze, &Method::POST, "/v1/wallets/wal_a/freeze"));
        assert!(operator_key_allows(&freeze, &Method::POST, "/v1/freeze"));
        assert!(!operator_key_allows(&freeze, &Method::POST, "/v1/wallets/wal_a/unfreeze"));
        assert!(!operator_key_allows(&freeze, &Method::POST, "/v1/wallets/a/b/freeze"));
        assert!(!operator_key_allows(&freeze, &Method::GET, "/v1/wallets"));
        assert!(!operator_key_allows(&freeze, &Method::POST, "/v1/operator-keys"));
        assert!(!operator_key_allows(&[], &Method::GET, "/v1/wallets"));
    }

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let (a, ha) = new_token(SESSION_TOKEN_PREFIX);
        let (b, _) = new_token(SESSION_TOKEN_PREFIX);
        assert!(a.starts_with(SESSION_TOKEN_PREFIX) && a.len() > 50);
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
        assert!(!ha.contains(&a));
    }
}
