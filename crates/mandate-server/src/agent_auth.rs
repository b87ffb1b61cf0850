//! Signed agent requests (docs/AGENTS.md): a request carrying `Mandate-Agent`,
//! `Mandate-Agent-Nonce` and `Mandate-Agent-Signature` is authenticated here, before
//! any handler: the agent is registered and active, the signature over the request's
//! EIP-712 digest (method, path with query, SHA-256 of the body, wallet, nonce)
//! recovers its address, and the nonce passes the agent's window. The verified agent
//! then acts like a session of its wallet with its scopes (`Principal::Agent`), with
//! the actor `agent:agt_…` in the audit trail. No bearer secret crosses the wire.

use std::sync::Arc;

use alloy_primitives::Address;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mandate_chain::agent::{recover_agent, request_digest, AgentProof, NonceRefusal, NonceWindow, SignedRequest};
use mandate_core::policy::{Budget, Decision, Policy, Verdict};
use mandate_core::ErrorCode;
use mandate_store::{AgentRecord, SessionRecord};

use crate::error::{ApiError, ApiResult};
use crate::request::MAX_BODY_BYTES;
use crate::state::AppState;
use crate::task::blocking;

/// The header naming the agent's address.
pub(crate) const AGENT_HEADER: &str = "mandate-agent";
const NONCE_HEADER: &str = "mandate-agent-nonce";
const SIGNATURE_HEADER: &str = "mandate-agent-signature";

/// A verified agent, as the session it acts like (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct VerifiedAgent(pub(crate) SessionRecord);

/// A verified agent's request as it was signed (a request extension): a send shows
/// it to the cosigner with the registration ([`agent_proof`]).
#[derive(Debug, Clone)]
pub(crate) struct AgentRequest {
    agent_id: String,
    request: SignedRequest,
}

/// The proof a send for an agent key shows the cosigner: the stored owner-signed
/// registration and the agent's signed request (`None` for other principals).
pub(crate) fn agent_proof(state: &AppState, agent: Option<AgentRequest>) -> ApiResult<Option<Vec<u8>>> {
    let Some(AgentRequest { agent_id, request }) = agent else { return Ok(None) };
    let (registration, owner_signature) = state
        .store
        .agent_registration(&agent_id)?
        .ok_or_else(|| ApiError::new(ErrorCode::AgentUnknown, format!("no agent {agent_id}")))?;
    // A registration stored before registrations were kept whole cannot be shown:
    // the cosigner then refuses, and the owner registers the agent again.
    let Ok(registration) = serde_json::from_str(&registration) else { return Ok(None) };
    // Several owners' signatures (a quorum) are stored separated by spaces.
    let mut signatures =
        owner_signature.split_whitespace().map(|text| text.parse::<mandate_chain::approval::OwnerSignature>());
    let owner_signature = signatures
        .next()
        .ok_or_else(|| ApiError::internal("no stored owner signature"))?
        .map_err(|_| ApiError::internal("a stored owner signature"))?;
    let further_signatures =
        signatures.collect::<Result<Vec<_>, _>>().map_err(|_| ApiError::internal("a stored owner signature"))?;
    Ok(Some(AgentProof { registration, owner_signature, further_signatures, request }.encode()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, format!("a signed agent request needs {name}")))
}

/// The session an agent acts like: its wallet and scopes, expiring with it.
fn as_session(agent: &AgentRecord) -> SessionRecord {
    SessionRecord {
        id: agent.id.clone(),
        token_hash: String::new(),
        wallet_id: agent.wallet_id.clone(),
        scopes: agent.scopes.clone(),
        created_at: agent.created_at,
        ttl_secs: 0,
        expires_at: agent.valid_until,
        absolute_expires_at: agent.valid_until,
        renewals: 0,
        max_renewals: 0,
        revoked_at: None,
    }
}

/// Middleware: verifies a signed agent request (others pass untouched).
pub(crate) async fn verify_agent_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if !request.headers().contains_key(AGENT_HEADER) {
        return next.run(request).await;
    }
    match verify(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn verify(state: &Arc<AppState>, request: Request) -> ApiResult<Request> {
    let (mut parts, body) = request.into_parts();
    if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "a request is signed by an agent or carries a bearer token, not both",
        ));
    }
    let address: Address = header(&parts.headers, AGENT_HEADER)?
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::Unauthenticated, format!("{AGENT_HEADER}: not an address")))?;
    let nonce: u64 = header(&parts.headers, NONCE_HEADER)?.parse().map_err(|_| {
        ApiError::new(ErrorCode::Unauthenticated, format!("{NONCE_HEADER}: milliseconds since the epoch"))
    })?;
    let signature = hex::decode(header(&parts.headers, SIGNATURE_HEADER)?.trim_start_matches("0x"))
        .map_err(|_| ApiError::new(ErrorCode::AgentSignatureInvalid, format!("{SIGNATURE_HEADER}: not hex")))?;
    let body = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, "the request body is too large"))?;
    let agent = state.store.active_agent(&address.to_checksum(None))?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::AgentUnknown,
            format!("no active agent {address} (never registered, revoked or replaced)"),
        )
    })?;
    let now = crate::now();
    if now >= agent.valid_until {
        return Err(ApiError::new(
            ErrorCode::AgentExpired,
            format!("agent {address} expired at {}", agent.valid_until),
        ));
    }
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |pq| pq.as_str().to_string());
    let digest = request_digest(parts.method.as_str(), &path, &body, &agent.wallet_id, nonce);
    let signed_by = recover_agent(&digest, &signature).ok();
    if signed_by != Some(address) {
        return Err(ApiError::new(
            ErrorCode::AgentSignatureInvalid,
            "the signature does not match this request (method, path, body, wallet and nonce) for this agent",
        ));
    }
    let (store, id) = (state.store.clone(), agent.id.clone());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    let outcome = blocking(move || {
        Ok(store.use_agent_nonce(&id, now, |kept| {
            let mut window = NonceWindow::new(kept);
            window.accept(nonce, now_ms).map(|()| window.kept().collect())
        })?)
    })
    .await?;
    if let Err(refusal) = outcome {
        let (code, why) = match refusal {
            NonceRefusal::Replayed => (ErrorCode::AgentNonceReplayed, "this nonce was used already"),
            NonceRefusal::BelowWindow => {
                (ErrorCode::AgentNonceTooOld, "this nonce is below the agent's 100 highest: too old to accept")
            }
            NonceRefusal::OutOfTime => (
                ErrorCode::AgentNonceOutOfRange,
                "the nonce must be the time in milliseconds, within two days before and one day after the daemon's clock",
            ),
        };
        return Err(ApiError::new(code, why));
    }
    parts.extensions.insert(VerifiedAgent(as_session(&agent)));
    if let Ok(text) = std::str::from_utf8(&body) {
        let request = SignedRequest {
            method: parts.method.as_str().to_string(),
            path,
            body: text.to_string(),
            nonce,
            signature: format!("0x{}", hex::encode(&signature)),
        };
        parts.extensions.insert(AgentRequest { agent_id: agent.id.clone(), request });
    }
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// An agent key's own policy (from its owner-signed registration), which narrows the
/// wallet's for that agent: both are evaluated and both must allow.
pub(crate) struct AgentPolicy {
    /// `agt_…`.
    pub(crate) agent_id: String,
    /// The parsed policy.
    pub(crate) policy: Policy,
}

/// The policy of the agent key `actor` names (`agent:agt_…`), if it has one. Other
/// actors (operators, sessions) have none.
pub(crate) fn agent_policy_of(state: &AppState, actor: &str) -> ApiResult<Option<AgentPolicy>> {
    let Some(id) = mandate_store::agent_session_of(actor).filter(|id| id.starts_with("agt_")) else {
        return Ok(None);
    };
    let Some(document) = state.store.agent(id)?.and_then(|agent| agent.policy) else { return Ok(None) };
    let policy = Policy::parse(&document.to_string())
        .map_err(|e| ApiError::internal(format!("agent {id}'s stored policy no longer parses: {e}")))?;
    Ok(Some(AgentPolicy { agent_id: id.to_string(), policy }))
}

/// The decision when the wallet's policy decided `wallet` and the agent's own policy
/// `agent`: the wallet's denial first, then the agent's (its rule named
/// `agent:<rule>`), else allowed in the higher of the two tiers. The wallet's policy
/// hash stays (the reservation checks it); the agent's policy cannot change, since a
/// registration is never edited, only replaced by a new agent.
pub(crate) fn narrow(wallet: Decision, agent_id: &str, agent: Decision) -> Decision {
    if wallet.verdict == Verdict::Deny {
        return wallet;
    }
    let named = |rule: &str| format!("agent:{rule}");
    let budgets = |budgets: Vec<Budget>| {
        budgets.into_iter().map(|budget| Budget { rule_id: named(&budget.rule_id), ..budget }).collect::<Vec<_>>()
    };
    if agent.verdict == Verdict::Deny {
        return Decision {
            rule_id: named(&agent.rule_id),
            reason: format!("agent {agent_id}'s own policy: {}", agent.reason),
            budgets: budgets(agent.budgets),
            tier_rules: Vec::new(),
            policy_hash: wallet.policy_hash,
            ..agent
        };
    }
    let mut decision = wallet;
    if agent.tier > decision.tier {
        decision.tier = agent.tier;
    }
    decision.delay_secs = match (decision.delay_secs, agent.delay_secs) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    decision.tier_rules.extend(agent.tier_rules.iter().map(|rule| named(rule)));
    decision.budgets.extend(budgets(agent.budgets));
    decision
}
