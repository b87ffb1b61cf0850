//! Agent keys (docs/AGENTS.md): an owner registers an agent's address for a wallet
//! with a signature over the registration's text; the operator (or a session of the
//! wallet with `read`) lists them; the operator revokes one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mandate_chain::agent::{AgentRegistration, MAX_NAMED_AGENTS, SESSION_AGENT};
use mandate_chain::approval::OwnerSignature;
use mandate_core::ErrorCode;
use mandate_store::AgentRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::approvals::owners_of;
use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::wallet_for;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::{body_bytes, parse_json};
use crate::state::AppState;
use crate::task::blocking;

/// Named agents a subaccount may have.
const MAX_SUBACCOUNT_NAMED_AGENTS: usize = 2;

/// The longest a session agent may live (it must expire).
const SESSION_AGENT_MAX_SECS: u64 = 7 * 24 * 3600;
/// The longest a named agent may live.
const NAMED_AGENT_MAX_SECS: u64 = 365 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    registration: AgentRegistration,
    owner_signature: String,
    /// Further owners' signatures, where the wallet has an owner quorum.
    #[serde(default)]
    owner_signatures: Vec<String>,
}

/// `POST /v1/wallets/{id}/agents` `{"registration", "owner_signature"}`: the owner's
/// signature is the credential (no bearer token is needed and none is enough).
pub(crate) async fn register(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Register { registration, owner_signature, owner_signatures } = parse_json(&body_bytes(body)?)?;
    let wallet =
        state.store.wallet(&id)?.ok_or_else(|| ApiError::new(ErrorCode::WalletNotFound, format!("no wallet {id}")))?;
    if registration.wallet != wallet.id {
        return Err(ApiError::new(ErrorCode::InvalidInput, "registration.wallet is not this wallet"));
    }
    // A subaccount has at most 2 named agents and no session agent (a main wallet 3 and 1).
    let subaccount = state.store.subaccount_of(&wallet.id)?.is_some();
    if subaccount && registration.name == SESSION_AGENT {
        return Err(ApiError::new(ErrorCode::AgentLimitReached, "a subaccount has no session agent; name the agent"));
    }
    let max_named = if subaccount { MAX_SUBACCOUNT_NAMED_AGENTS } else { MAX_NAMED_AGENTS };
    let at = now();
    let longest = if registration.name == SESSION_AGENT { SESSION_AGENT_MAX_SECS } else { NAMED_AGENT_MAX_SECS };
    if registration.valid_until > at + longest {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("valid_until: at most {longest} s from now for a {} agent", registration.name),
        ));
    }
    let refused = |e: mandate_chain::approval::ApprovalError| {
        ApiError::new(ErrorCode::OwnerSignatureInvalid, format!("owner signature refused: {e}"))
    };
    if owner_signatures.len() > 15 {
        return Err(ApiError::new(ErrorCode::InvalidInput, "owner_signatures: at most 15"));
    }
    let signatures = std::iter::once(&owner_signature)
        .chain(owner_signatures.iter())
        .map(|text| text.parse::<OwnerSignature>().map_err(refused))
        .collect::<ApiResult<Vec<_>>>()?;
    let signature = signatures.first().cloned().ok_or_else(|| ApiError::internal("no owner signature"))?;
    let owners = owners_of(&state, &wallet.id)?;
    // A wallet with an owner quorum needs that many distinct owners for an agent too.
    let threshold = usize::try_from(state.store.owner_threshold(&wallet.id)?).unwrap_or(usize::MAX);
    registration.verify_quorum(&signatures, &owners, at, threshold).map_err(|e| match e {
        mandate_chain::approval::ApprovalError::Mismatch(why) => ApiError::new(ErrorCode::OwnerQuorumNotMet, why),
        other => refused(other),
    })?;
    let record = AgentRecord {
        id: format!("agt_{}", hex::encode(rand::random::<[u8; 10]>())),
        address: registration.agent.to_checksum(None),
        wallet_id: wallet.id.clone(),
        name: registration.name.clone(),
        scopes: registration.scopes.clone(),
        valid_until: registration.valid_until,
        created_at: at,
        revoked_at: None,
        last_used_at: None,
        policy: registration.policy.clone(),
    };
    let owner = signature.key.to_string();
    let entry = audit_entry(
        &format!("owner:{owner}"),
        "agent.registered",
        Some(&wallet.id),
        json!({"agent_id": record.id, "address": record.address, "name": record.name, "scopes": record.scopes,
               "valid_until": record.valid_until}),
    );
    // The registration itself is kept (evidence, and what the cosigner verifies again
    // before it signs anything this agent asks for).
    let text = serde_json::to_string(&registration).map_err(|e| ApiError::internal(e.to_string()))?;
    let (store, stored) = (state.store.clone(), record.clone());
    let signed = signatures.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
    let outcome = blocking(move || Ok(store.register_agent(&stored, &text, &signed, max_named, entry)?)).await?;
    let replaced = outcome.map_err(|limit| {
        ApiError::new(
            ErrorCode::AgentLimitReached,
            format!("{} has {} named agents, the most it may have; revoke one or reuse a name", wallet.id, limit.named),
        )
    })?;
    Ok((StatusCode::CREATED, Json(json!({"agent": record, "replaced": replaced}))))
}

/// `GET /v1/wallets/{id}/agents`: the wallet's agents, active and revoked.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    Ok(Json(json!({"agents": state.store.agents(&wallet.id)?})))
}

/// `POST /v1/agents/{address}/revoke` (operator): the agent stops working at once.
pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let address: alloy_primitives::Address =
        address.parse().map_err(|_| ApiError::new(ErrorCode::InvalidAddress, "not an address"))?;
    let address = address.to_checksum(None);
    let agent = state
        .store
        .active_agent(&address)?
        .ok_or_else(|| ApiError::new(ErrorCode::AgentUnknown, format!("no active agent {address}")))?;
    let entry = audit_entry(
        &principal.actor(),
        "agent.revoked",
        Some(&agent.wallet_id),
        json!({"agent_id": agent.id, "address": address}),
    );
    let store = state.store.clone();
    let at = now();
    let target = address.clone();
    let revoked = blocking(move || Ok(store.revoke_agent(&target, at, entry)?)).await?;
    Ok(Json(json!({"address": address, "agent_id": agent.id, "revoked": revoked})))
}
