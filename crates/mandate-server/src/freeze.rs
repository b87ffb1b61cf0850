//! Emergency freeze: any authorised principal stops a wallet (or every wallet) at
//! once; the daemon refuses to sign and tells the cosigner, which refuses too.
//! Lifting a freeze needs an owner's signature, and only after the cool-down.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use mandate_chain::approval::{DecisionAction, OwnerDecision, OwnerSignature, SignedDecision};
use mandate_core::{ErrorCode, WalletId};
use mandate_mpc::net::Operation;
use mandate_store::{FreezeRecord, QuorumStep};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::context::wallet_for;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::body_bytes;
use crate::request::parse_json;
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FreezeRequest {
    reason: Option<String>,
}

/// Checks a freeze reason: at most 500 printable characters.
pub(crate) fn check_reason(reason: &str) -> ApiResult<()> {
    if reason.len() > 500 || reason.chars().any(char::is_control) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "reason: at most 500 printable characters"));
    }
    Ok(())
}

/// Freezes `wallet_id` for `actor` (audited; a frozen wallet stays frozen as it was).
/// Returns the freeze, whether it is new, and whether the cosigner was told.
pub(crate) async fn freeze_wallet(
    state: &Arc<AppState>,
    wallet_id: &str,
    actor: &str,
    reason: String,
) -> ApiResult<(FreezeRecord, bool, Value)> {
    check_reason(&reason)?;
    let freeze =
        FreezeRecord { wallet_id: wallet_id.to_string(), frozen_at: now(), frozen_by: actor.to_string(), reason };
    let store = state.store.clone();
    let actor = actor.to_string();
    let (freeze, newly) = blocking(move || {
        let entry = audit_entry(&actor, "wallet.frozen", Some(&freeze.wallet_id), json!({"reason": freeze.reason}))
            .with_event(webhooks::event(Event::WalletFrozen, json!({"wallet_id": freeze.wallet_id, "frozen": freeze})));
        Ok(store.freeze(&freeze, entry)?)
    })
    .await?;
    if newly {
        webhooks::wake(state);
    }
    // Told every time (also for a wallet frozen already): a cosigner that was down
    // at the first freeze learns of it now.
    let cosigner = notify_cosigner(state, &freeze).await;
    Ok((freeze, newly, cosigner))
}

/// `POST …/freeze`: the operator, or an agent with the `freeze` scope, stops the
/// wallet at once. Freezing is never refused for a frozen wallet (it stays frozen).
pub(crate) async fn freeze_handler(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "freeze")?;
    let body = body_bytes(body)?;
    let request: FreezeRequest = if body.is_empty() { FreezeRequest::default() } else { parse_json(&body)? };
    let (freeze, newly, cosigner) =
        freeze_wallet(&state, &wallet.id, &principal.actor(), request.reason.unwrap_or_default()).await?;
    Ok(Json(json!({"wallet_id": wallet.id, "frozen": freeze, "newly_frozen": newly, "cosigner": cosigner})))
}

/// Tells the cosigner of a freeze (best effort: the daemon refuses by itself
/// already). Returns what to report: `"notified"` or why not.
async fn notify_cosigner(state: &Arc<AppState>, freeze: &FreezeRecord) -> Value {
    let Ok(wallet) = freeze.wallet_id.parse::<WalletId>() else { return json!("not notified: bad wallet id") };
    let signer = state.signer.clone();
    let operation = Operation::Freeze { frozen_at: freeze.frozen_at, reason: freeze.reason.clone() };
    match blocking(move || signer.notify(&wallet, operation)).await {
        Ok(()) => json!("notified"),
        Err(error) => {
            tracing::warn!("could not tell the cosigner of the freeze of {}: {error}", freeze.wallet_id);
            json!(format!("not notified: {}", error.code))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnfreezeRequest {
    signature: String,
    expires_at: u64,
}

/// The decision an owner signs to lift `freeze`, valid until `expires_at`.
pub(crate) fn unfreeze_decision(freeze: &FreezeRecord, expires_at: u64) -> OwnerDecision {
    OwnerDecision {
        action: DecisionAction::Unfreeze,
        item: format!("freeze:{}", freeze.frozen_at),
        wallet: freeze.wallet_id.clone(),
        tx: None,
        expires_at,
    }
}

fn current_freeze(state: &AppState, wallet: &str) -> ApiResult<FreezeRecord> {
    state.store.freeze_of(wallet)?.ok_or_else(|| ApiError::new(ErrorCode::NotFrozen, format!("{wallet} is not frozen")))
}

/// How long an unfreeze text offered by `GET …/unfreeze` stays valid.
const UNFREEZE_TEXT_SECS: u64 = 3600;

/// The signatures an unfreeze of `freeze` has collected, while still valid.
fn collected_unfreeze(state: &AppState, freeze: &FreezeRecord) -> ApiResult<Option<SignedDecision>> {
    let collected = state.store.unfreeze_collected(&freeze.wallet_id, freeze.frozen_at)?;
    Ok(collected
        .and_then(|text| SignedDecision::decode(text.as_bytes()).ok())
        .filter(|signed| signed.decision == unfreeze_decision(freeze, signed.decision.expires_at))
        .filter(|signed| signed.decision.expires_at >= now()))
}

/// The unfreeze decision to offer: the one owners have begun to sign (so that every
/// owner of a quorum signs the same text), else a fresh one; and who signed it.
pub(crate) fn offered_unfreeze(state: &AppState, freeze: &FreezeRecord) -> ApiResult<(OwnerDecision, Value)> {
    let required = state.store.owner_threshold(&freeze.wallet_id)?;
    match collected_unfreeze(state, freeze)? {
        Some(signed) => {
            let owners = crate::approvals::owners_of(state, &freeze.wallet_id).unwrap_or_default();
            let signers: Vec<String> = signed.signers(&owners).iter().map(ToString::to_string).collect();
            let quorum = json!({"required": required, "signed": signers.len(), "owners": signers});
            Ok((signed.decision, quorum))
        }
        None => Ok((
            unfreeze_decision(freeze, now() + UNFREEZE_TEXT_SECS),
            json!({"required": required, "signed": 0, "owners": []}),
        )),
    }
}

/// `GET /v1/wallets/{id}/unfreeze`: the text an owner signs to lift the freeze,
/// and when the cool-down ends.
pub(crate) async fn unfreeze_message(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let freeze = current_freeze(&state, &wallet.id)?;
    let (decision, quorum) = offered_unfreeze(&state, &freeze)?;
    Ok(Json(json!({
        "wallet_id": wallet.id,
        "frozen": freeze,
        "cooldown_ends_at": freeze.frozen_at + state.freeze_cooldown_secs,
        "decision": decision,
        "message": decision.message(),
        "quorum": quorum,
    })))
}

/// `GET /v1/owner/wallets/{id}/unfreeze`: the unfreeze text for an owner's tool,
/// with no bearer token. It says only that the wallet is frozen, since when and when
/// the cool-down ends (a frozen wallet's agent learns as much from `WALLET_FROZEN`);
/// not who froze it or why. Signing it is what needs the owner.
pub(crate) async fn owner_unfreeze_view(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let freeze = current_freeze(&state, &id)?;
    let (decision, quorum) = offered_unfreeze(&state, &freeze)?;
    Ok(Json(json!({
        "wallet_id": freeze.wallet_id,
        "frozen_at": freeze.frozen_at,
        "cooldown_ends_at": freeze.frozen_at + state.freeze_cooldown_secs,
        "decision": decision,
        "message": decision.message(),
        "quorum": quorum,
    })))
}

/// `POST /v1/wallets/{id}/unfreeze` `{"signature", "expires_at"}`: an owner lifts
/// the freeze, only after the cool-down. The cosigner verifies the same signature
/// and its own cool-down first; the daemon unfreezes only when it agreed (or never
/// learnt of the freeze). Held items stay held and run afterwards.
pub(crate) async fn unfreeze(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: UnfreezeRequest = parse_json(&body_bytes(body)?)?;
    unfreeze_signed(&state, &id, &request.signature, request.expires_at).await.map(Json)
}

/// An owner's signature (text) over the unfreeze of `id`'s current freeze valid
/// until `expires_at`: verified, collected toward the quorum, and at the quorum
/// passed to the cosigner and the freeze lifted (the REST route and the dashboard).
pub(crate) async fn unfreeze_signed(
    state: &Arc<AppState>,
    id: &str,
    signature: &str,
    expires_at: u64,
) -> ApiResult<Value> {
    let freeze = current_freeze(state, id)?;
    let signature: OwnerSignature = signature
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::OwnerSignatureInvalid, format!("owner signature refused: {e}")))?;
    let owners = crate::approvals::owners_of(state, &freeze.wallet_id)?;
    let decision = unfreeze_decision(&freeze, expires_at);
    let at = now();
    signature
        .verify_owner(&decision, &owners, at)
        .map_err(|e| ApiError::new(ErrorCode::OwnerSignatureInvalid, format!("owner signature refused: {e}")))?;
    crate::approvals::check_passkey_counter(state, &signature, &decision.message())?;
    let ready_at = freeze.frozen_at + state.freeze_cooldown_secs;
    if at < ready_at {
        return Err(ApiError::new(
            ErrorCode::FreezeCooldown,
            format!("the freeze cool-down ends at {ready_at} (unix seconds); nothing was changed"),
        )
        .with_details(json!({"cooldown_ends_at": ready_at})));
    }
    // The owner quorum: this signature joins those collected for the same text; the
    // freeze is lifted when enough distinct owners signed it.
    let threshold = usize::try_from(state.store.owner_threshold(&freeze.wallet_id)?).unwrap_or(usize::MAX);
    let owner = signature.key.to_string();
    let partial = audit_entry(
        &format!("owner:{owner}"),
        "unfreeze.signed",
        Some(&freeze.wallet_id),
        json!({"frozen_at": freeze.frozen_at, "owner": owner, "required": threshold}),
    );
    let merge = {
        let (decision, signature, owners) = (decision.clone(), signature.clone(), owners.clone());
        move |collected: Option<&str>| {
            let signed = crate::approvals::collect(&decision, collected, &signature);
            let complete = signed.signers(&owners).len() >= threshold;
            QuorumStep { collected: String::from_utf8_lossy(&signed.encode()).into_owned(), complete }
        }
    };
    let store = state.store.clone();
    let (wallet_id, frozen_at) = (freeze.wallet_id.clone(), freeze.frozen_at);
    let step = blocking(move || Ok(store.collect_unfreeze(&wallet_id, frozen_at, at, merge, partial)?))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFrozen, format!("{} is not frozen", freeze.wallet_id)))?;
    let collected = SignedDecision::decode(step.collected.as_bytes())
        .map_err(|_| ApiError::internal("the collected unfreeze signatures"))?;
    if !step.complete {
        let signers: Vec<String> = collected.signers(&owners).iter().map(ToString::to_string).collect();
        return Ok(json!({
            "wallet_id": freeze.wallet_id,
            "unfrozen": false,
            "quorum": {"required": threshold, "signed": signers.len(), "owners": signers},
        }));
    }
    let wallet: WalletId = freeze.wallet_id.parse().map_err(|_| ApiError::internal("stored wallet id"))?;
    let signer = state.signer.clone();
    let signed = collected.encode();
    blocking(move || signer.notify(&wallet, Operation::Unfreeze { decision: signed })).await?;
    let entry = audit_entry(
        &format!("owner:{owner}"),
        "wallet.unfrozen",
        Some(&freeze.wallet_id),
        json!({"frozen_at": freeze.frozen_at}),
    )
    .with_event(webhooks::event(Event::WalletUnfrozen, json!({"wallet_id": freeze.wallet_id, "owner": owner})));
    let store = state.store.clone();
    let (wallet_id, frozen_at) = (freeze.wallet_id.clone(), freeze.frozen_at);
    let lifted = blocking(move || Ok(store.unfreeze(&wallet_id, frozen_at, at, entry)?)).await?;
    if lifted {
        webhooks::wake(state);
        state.executor_wake.notify_one();
    }
    Ok(json!({"wallet_id": freeze.wallet_id, "unfrozen": lifted}))
}

/// `POST /v1/freeze` `{"reason"}` (operator): freezes every wallet.
pub(crate) async fn freeze_all(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let body = body_bytes(body)?;
    let request: FreezeRequest = if body.is_empty() { FreezeRequest::default() } else { parse_json(&body)? };
    let reason = request.reason.unwrap_or_default();
    check_reason(&reason)?;
    let mut frozen = Vec::new();
    for wallet in state.store.wallets()? {
        let (freeze, newly, cosigner) = freeze_wallet(&state, &wallet.id, &principal.actor(), reason.clone()).await?;
        frozen.push(json!({"wallet_id": wallet.id, "frozen": freeze, "newly_frozen": newly, "cosigner": cosigner}));
    }
    Ok(Json(json!({"wallets": frozen})))
}
