//! Held transactions. An approval-tier send waits for an owner: the owner signs
//! the canonical decision text (`mandate_chain::approval`) with a registered key,
//! and the daemon verifies it, records it (single use: the item leaves
//! `pending_approval`) and passes it to the cosigner with the signing run, where it
//! is verified again. A delay-tier send waits until `execute_after`. Agents, the
//! operator and owners (with a signed deny) cancel held items. The master password
//! alone never approves.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use mandate_chain::approval::{
    ApprovalError, ApprovedTx, DecisionAction, OwnerDecision, OwnerKey, OwnerSignature, SignedDecision,
    MAX_QUORUM_SIGNATURES,
};
use mandate_core::ErrorCode;
use mandate_store::{OwnerRecord, QuorumStep, Resolution, TxRecord, TxStatus};
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

fn corrupt(what: &str) -> ApiError {
    ApiError::internal(format!("stored transaction has an unreadable {what}"))
}

/// The decision an owner signs to approve or deny the held transaction `tx`: it
/// binds the item, the wallet, the exact transaction with its gas and fee bounds,
/// and the item's deadline.
pub(crate) fn owner_decision(state: &AppState, tx: &TxRecord, action: DecisionAction) -> ApiResult<OwnerDecision> {
    let to: Address = tx.to.parse().map_err(|_| corrupt("recipient"))?;
    let value = U256::from_str_radix(&tx.value_wei, 10).map_err(|_| corrupt("value"))?;
    let data = hex::decode(tx.data.trim_start_matches("0x")).map_err(|_| corrupt("calldata"))?;
    let gas = tx.gas_limit.ok_or_else(|| corrupt("gas bound"))?;
    let max_fee: u128 =
        tx.max_fee_per_gas.as_deref().and_then(|fee| fee.parse().ok()).ok_or_else(|| corrupt("fee bound"))?;
    let expires_at = match tx.status {
        TxStatus::Delayed => tx.execute_after,
        _ => tx.expires_at,
    }
    .ok_or_else(|| ApiError::new(ErrorCode::NotPending, format!("{} is not held for a decision", tx.id)))?;
    Ok(OwnerDecision {
        action,
        item: tx.id.clone(),
        wallet: tx.wallet_id.clone(),
        tx: Some(ApprovedTx::new(tx.chain_id.unwrap_or(state.chain_id()), to, value, &data, gas, max_fee)),
        expires_at,
    })
}

fn owner_keys(owners: &[OwnerRecord]) -> Vec<OwnerKey> {
    owners.iter().filter_map(|owner| owner.owner_key.parse().ok()).collect()
}

/// Whether `key` is the EVM address of one of the daemon's own wallets. Such a key is
/// never an owner: a wallet signs what its policy allows (messages, raw hashes), so
/// an owner that is a wallet would let the daemon's signing approve its own holds.
fn is_own_wallet(key: &OwnerKey, wallets: &[Address]) -> bool {
    matches!(key, OwnerKey::Evm(address) if wallets.contains(address))
}

/// The EVM addresses of the daemon's own wallets.
fn wallet_addresses(state: &AppState) -> ApiResult<Vec<Address>> {
    Ok(state.store.wallets()?.iter().filter_map(|wallet| wallet.address.parse::<Address>().ok()).collect())
}

/// A wallet's owners' keys; refuses a wallet without any. A key that is one of the
/// daemon's own wallets (registration refuses it; a wallet created later at the same
/// address is not a practical event, but costs nothing to exclude) never counts.
pub(crate) fn owners_of(state: &AppState, wallet: &str) -> ApiResult<Vec<OwnerKey>> {
    // A subaccount's owners are its main wallet's.
    let parent = state.store.subaccount_of(wallet)?.map(|(parent, _)| parent);
    let mut keys = owner_keys(&state.store.owners(parent.as_deref().unwrap_or(wallet))?);
    if keys.iter().any(|key| matches!(key, OwnerKey::Evm(_))) {
        let wallets = wallet_addresses(state)?;
        keys.retain(|key| !is_own_wallet(key, &wallets));
    }
    if keys.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NoOwner,
            format!("{wallet} has no owner; register one with `mandate owner add`"),
        ));
    }
    Ok(keys)
}

/// For a passkey signature over `message`: its authenticator's counter must rise
/// (a counter that stands still or goes back marks a cloned authenticator or a
/// replayed assertion). Other kinds pass.
pub(crate) fn check_passkey_counter(state: &AppState, signature: &OwnerSignature, message: &str) -> ApiResult<()> {
    let Some(count) = signature.passkey_counter(message) else { return Ok(()) };
    if state.store.advance_passkey_counter(&signature.key.to_string(), u64::from(count))? {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::OwnerSignatureInvalid,
        "owner signature refused: the passkey's signature counter did not rise (a replayed assertion or a cloned \
         authenticator)",
    ))
}

fn signature_error(error: ApprovalError) -> ApiError {
    ApiError::new(ErrorCode::OwnerSignatureInvalid, format!("owner signature refused: {error}"))
}

fn not_pending(tx: &TxRecord) -> ApiError {
    ApiError::new(ErrorCode::NotPending, format!("{} is {}, not waiting for this decision", tx.id, tx.status.name()))
        .with_details(json!({"transaction_id": tx.id, "status": tx.status}))
}

/// Verifies an owner's `signature` (text) over the `action` decision on held
/// transaction `id`, then records it: an approval makes it `approved` (the executor
/// signs and sends it next), a denial `denied` (a delayed one `cancelled`).
pub(crate) async fn resolve(
    state: &Arc<AppState>,
    id: &str,
    action: DecisionAction,
    signature: &str,
    actor: &str,
) -> ApiResult<TxRecord> {
    let tx = state
        .store
        .transaction(id)?
        .ok_or_else(|| ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}")))?;
    let acceptable = match action {
        DecisionAction::Approve => tx.status == TxStatus::PendingApproval,
        DecisionAction::Deny => matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed),
        DecisionAction::Unfreeze => false,
    };
    if !acceptable {
        return Err(not_pending(&tx));
    }
    let owners = owners_of(state, &tx.wallet_id)?;
    let signature: OwnerSignature = signature.parse().map_err(signature_error)?;
    let decision = owner_decision(state, &tx, action)?;
    let at = now();
    match signature.verify_owner(&decision, &owners, at) {
        Ok(()) => {}
        // Past the deadline the item expires whatever the signature says.
        Err(ApprovalError::Expired(_)) if tx.status == TxStatus::PendingApproval => {}
        Err(error) => return Err(signature_error(error)),
    }
    check_passkey_counter(state, &signature, &decision.message())?;
    let owner = signature.key.to_string();
    let resolved = match (tx.status, action) {
        (TxStatus::Delayed, _) => TxStatus::Cancelled,
        (_, DecisionAction::Approve) => TxStatus::Approved,
        _ => TxStatus::Denied,
    };
    let event = match action {
        DecisionAction::Approve => "approval.approved",
        _ => "approval.denied",
    };
    let entry = audit_entry(actor, event, Some(&tx.wallet_id), json!({"tx_id": tx.id, "owner": owner})).with_event(
        webhooks::event(
            Event::ApprovalResolved,
            json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": resolved, "owner": owner}),
        ),
    );
    // An approval that finds the item past its deadline expires it, audited as the
    // executor would have.
    let expired = audit_entry(
        actor,
        "approval.expired",
        Some(&tx.wallet_id),
        json!({"tx_id": tx.id, "owner": owner, "via": "decision after the deadline"}),
    )
    .with_event(webhooks::event(
        Event::ApprovalResolved,
        json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": TxStatus::Expired}),
    ));
    let store = state.store.clone();
    let item = tx.id.clone();
    let resolution = if tx.status == TxStatus::Delayed {
        blocking(move || Ok(store.cancel_held(&item, at, entry)?.map(|(tx, _)| Resolution::Resolved(tx)))).await?
    } else if action == DecisionAction::Approve {
        // The owner quorum: the signature joins those collected (one per owner), and
        // the item is approved when enough distinct owners signed the same decision.
        let threshold = usize::try_from(state.store.owner_threshold(&tx.wallet_id)?).unwrap_or(usize::MAX);
        let partial = audit_entry(
            actor,
            "approval.signed",
            Some(&tx.wallet_id),
            json!({"tx_id": tx.id, "owner": owner, "required": threshold}),
        );
        let merge = move |collected: Option<&str>| {
            let signed = collect(&decision, collected, &signature);
            let complete = signed.signers(&owners).len() >= threshold;
            QuorumStep { collected: String::from_utf8_lossy(&signed.encode()).into_owned(), complete }
        };
        blocking(move || Ok(store.approve_held(&item, at, merge, entry, partial, expired)?)).await?
    } else {
        blocking(move || Ok(store.deny_held(&item, at, entry, expired)?)).await?
    };
    match resolution {
        Some(Resolution::Resolved(tx)) => {
            webhooks::wake(state);
            if tx.status == TxStatus::Approved {
                state.executor_wake.notify_one();
            }
            Ok(tx)
        }
        Some(Resolution::Expired(tx)) => {
            webhooks::wake(state);
            Err(ApiError::new(
                ErrorCode::ApprovalExpired,
                format!("{} expired before it was approved; nothing was sent", tx.id),
            )
            .with_details(json!({"transaction_id": tx.id, "status": tx.status})))
        }
        Some(Resolution::NotPending(tx)) => Err(not_pending(&tx)),
        None => Err(ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}"))),
    }
}

/// The signatures collected for `decision` (the stored JSON, if it is for this
/// decision), with `signature` added unless its key signed already.
pub(crate) fn collect(decision: &OwnerDecision, collected: Option<&str>, signature: &OwnerSignature) -> SignedDecision {
    let mut signed = collected
        .and_then(|text| SignedDecision::decode(text.as_bytes()).ok())
        .filter(|signed| signed.decision == *decision)
        .unwrap_or_else(|| SignedDecision { decision: decision.clone(), signatures: Vec::new() });
    if signed.signatures.len() < MAX_QUORUM_SIGNATURES && !signed.signatures.iter().any(|s| s.key == signature.key) {
        signed.signatures.push(signature.clone());
    }
    signed
}

/// How far a held transaction's approval is: the wallet's quorum and the distinct
/// registered owners whose signature over its decision is collected ("1 of 2").
pub(crate) struct Quorum {
    /// How many distinct owners must sign.
    pub(crate) required: u64,
    /// The owners who signed, in order.
    pub(crate) signers: Vec<String>,
}

impl Quorum {
    /// `{"required", "signed", "owners"}`.
    pub(crate) fn to_json(&self) -> Value {
        json!({"required": self.required, "signed": self.signers.len(), "owners": self.signers})
    }
}

/// The quorum state of held transaction `tx`.
pub(crate) fn quorum(state: &AppState, tx: &TxRecord) -> ApiResult<Quorum> {
    let required = state.store.owner_threshold(&tx.wallet_id)?;
    let owners = owner_keys(&state.store.owners(&tx.wallet_id)?);
    let signers = tx
        .approval
        .as_deref()
        .and_then(|text| SignedDecision::decode(text.as_bytes()).ok())
        .map(|signed| signed.signers(&owners).iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    Ok(Quorum { required, signers })
}

/// What an owner is shown for a held transaction: the item, the exact texts to
/// sign to approve or deny it, and the owners who signed so far.
fn describe(state: &AppState, tx: &TxRecord) -> ApiResult<Value> {
    let mut body = serde_json::Map::new();
    body.insert("transaction".into(), json!(tx));
    if matches!(tx.status, TxStatus::PendingApproval | TxStatus::Approved) {
        body.insert("quorum".into(), quorum(state, tx)?.to_json());
    }
    if tx.status == TxStatus::PendingApproval {
        let approve = owner_decision(state, tx, DecisionAction::Approve)?;
        body.insert("approve_message".into(), json!(approve.message()));
        body.insert("approve_decision".into(), json!(approve));
    }
    if matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed) {
        let deny = owner_decision(state, tx, DecisionAction::Deny)?;
        body.insert("deny_message".into(), json!(deny.message()));
        body.insert("deny_decision".into(), json!(deny));
    }
    Ok(Value::Object(body))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    wallet: Option<String>,
}

/// `GET /v1/approvals`: held transactions (operator: all, or `?wallet=`; an agent:
/// its wallet's), each with the texts an owner signs.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let wallet = match (&principal, query.wallet) {
        (Principal::Agent(session), _) => Some(session.wallet_id.clone()),
        (Principal::Operator(_), wallet) => wallet,
    };
    if let Some(wallet) = &wallet {
        wallet_for(&state, &principal, wallet, "read")?;
    }
    let held = state.store.held(wallet.as_deref())?;
    let items = held.iter().map(|tx| describe(&state, tx)).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({"held": items})))
}

fn held_tx(state: &AppState, principal: &Principal, id: &str, scope: &str) -> ApiResult<TxRecord> {
    let tx = state
        .store
        .transaction(id)?
        .ok_or_else(|| ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}")))?;
    wallet_for(state, principal, &tx.wallet_id, scope)?;
    Ok(tx)
}

/// `GET /v1/approvals/{id}`: one held transaction and the texts an owner signs.
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tx = held_tx(&state, &principal, &id, "read")?;
    Ok(Json(describe(&state, &tx)?))
}

/// `GET /v1/owner/approvals/{id}`: what an owner's tool needs to show and sign a
/// decision on one held transaction, readable with its id alone (no bearer token).
///
/// Why that is sound (docs/APPROVALS.md): a held item's id carries 80 random bits, so
/// it cannot be guessed or enumerated; the view grants nothing (deciding needs an
/// owner's signature, checked here and again by the cosigner); it holds no secret,
/// only the transaction the owner is asked about, which is public on chain once sent;
/// and the owner's tool trusts none of it: it checks the text against the fields and
/// the calldata against its hash, and shows the owner what the fields say.
pub(crate) async fn owner_view(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let tx = state
        .store
        .transaction(&id)?
        .ok_or_else(|| ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}")))?;
    let mut body = serde_json::Map::new();
    if !matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed) {
        // Nothing to decide: only the status, nothing about the transaction.
        body.insert("transaction".into(), json!({"id": tx.id, "wallet_id": tx.wallet_id, "status": tx.status}));
        return Ok(Json(Value::Object(body)));
    }
    body.insert(
        "transaction".into(),
        json!({
            "id": tx.id, "wallet_id": tx.wallet_id, "status": tx.status, "chain_id": tx.chain_id,
            "to": tx.to, "value_wei": tx.value_wei, "data": tx.data, "gas_limit": tx.gas_limit,
            "max_fee_per_gas": tx.max_fee_per_gas, "expires_at": tx.expires_at, "execute_after": tx.execute_after,
        }),
    );
    if let Value::Object(texts) = describe(&state, &tx)? {
        for (key, value) in texts {
            if key != "transaction" {
                body.insert(key, value);
            }
        }
    }
    Ok(Json(Value::Object(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    signature: String,
}

async fn decide(
    state: Arc<AppState>,
    id: String,
    body: Result<Bytes, BytesRejection>,
    action: DecisionAction,
) -> ApiResult<Json<Value>> {
    let request: DecisionRequest = parse_json(&body_bytes(body)?)?;
    let key = request.signature.parse::<OwnerSignature>().map_err(signature_error)?.key;
    let tx = resolve(&state, &id, action, &request.signature, &format!("owner:{key}")).await?;
    let mut body = json!(tx);
    if let (DecisionAction::Approve, Value::Object(fields)) = (action, &mut body) {
        fields.insert("quorum".into(), quorum(&state, &tx)?.to_json());
    }
    Ok(Json(body))
}

/// `POST /v1/approvals/{id}/approve` `{"signature"}`: the owner's signature is the
/// credential (no bearer token needed; none gives more).
pub(crate) async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    decide(state, id, body, DecisionAction::Approve).await
}

/// `POST /v1/approvals/{id}/deny` `{"signature"}`.
pub(crate) async fn deny(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    decide(state, id, body, DecisionAction::Deny).await
}

/// `POST /v1/transactions/{id}/cancel`: the operator, or an agent session of the
/// wallet with the `broadcast` scope, cancels a held transaction before it runs.
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tx = held_tx(&state, &principal, &id, "broadcast")?;
    let actor = principal.actor();
    let entry = audit_entry(&actor, "transaction.cancelled", Some(&tx.wallet_id), json!({"tx_id": tx.id})).with_event(
        webhooks::event(
            Event::ApprovalResolved,
            json!({"tx_id": tx.id, "wallet_id": tx.wallet_id, "status": TxStatus::Cancelled, "by": actor}),
        ),
    );
    let store = state.store.clone();
    let item = tx.id.clone();
    let outcome = blocking(move || Ok(store.cancel_held(&item, now(), entry)?)).await?;
    match outcome {
        Some((tx, true)) => {
            webhooks::wake(&state);
            Ok(Json(json!(tx)))
        }
        Some((tx, false)) => Err(not_pending(&tx)),
        None => Err(ApiError::new(ErrorCode::TransactionNotFound, format!("no transaction {id}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerRequest {
    owner_key: String,
    #[serde(default)]
    label: Option<String>,
}

/// `POST /v1/wallets/{id}/owners` `{"owner_key": "ed25519:<hex>" | "evm:0x…", "label"}` (operator).
pub(crate) async fn add_owner(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let request: OwnerRequest = parse_json(&body_bytes(body)?)?;
    let key: OwnerKey = request
        .owner_key
        .parse()
        .map_err(|e: ApprovalError| ApiError::new(ErrorCode::InvalidInput, format!("owner_key: {e}")))?;
    let (owner, added) =
        register_owner(&state, &wallet.id, key, request.label.unwrap_or_default(), &principal.actor()).await?;
    Ok(Json(json!({"owner": owner, "added": added})))
}

/// Registers `key` as an owner of `wallet` (audited): refused when it is one of the
/// daemon's own wallets. Returns the record and whether it is new.
pub(crate) async fn register_owner(
    state: &Arc<AppState>,
    wallet: &str,
    key: OwnerKey,
    label: String,
    actor: &str,
) -> ApiResult<(OwnerRecord, bool)> {
    if is_own_wallet(&key, &wallet_addresses(state)?) {
        return Err(ApiError::new(
            ErrorCode::OwnerKeyIsWallet,
            format!("{key} is one of this daemon's wallets; an owner key must be one the owner holds"),
        ));
    }
    if label.len() > 100 || label.chars().any(char::is_control) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "label: at most 100 printable characters"));
    }
    let owner = OwnerRecord { wallet_id: wallet.to_string(), owner_key: key.to_string(), label, created_at: now() };
    let entry = audit_entry(actor, "owner.added", Some(wallet), json!({"owner": owner.owner_key}));
    let store = state.store.clone();
    let record = owner.clone();
    let added = blocking(move || Ok(store.add_owner(&record, entry)?)).await?;
    Ok((owner, added))
}

/// `GET /v1/wallets/{id}/owners`: the owners and the quorum (`owner_threshold`).
pub(crate) async fn list_owners(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    Ok(Json(json!({
        "wallet_id": wallet.id,
        "owners": state.store.owners(&wallet.id)?,
        "owner_threshold": state.store.owner_threshold(&wallet.id)?,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuorumRequest {
    threshold: u64,
}

/// `PUT /v1/wallets/{id}/owners/quorum` `{"threshold": M}` (operator): from now on
/// an approval or an unfreeze of the wallet needs M distinct owners' signatures
/// over the same decision. M is 1 to the number of registered owners.
pub(crate) async fn set_quorum(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let wallet = wallet_for(&state, &principal, &id, "read")?;
    let QuorumRequest { threshold } = parse_json(&body_bytes(body)?)?;
    let limit = MAX_QUORUM_SIGNATURES as u64;
    if !(1..=limit).contains(&threshold) {
        return Err(ApiError::new(ErrorCode::InvalidInput, format!("threshold: 1 to {limit}")));
    }
    let check = move |owners: u64| {
        if threshold <= owners {
            Ok(())
        } else {
            Err(format!("threshold: {threshold} is more than the wallet's {owners} owners; add owners first"))
        }
    };
    let entry =
        audit_entry(&principal.actor(), "owner.quorum_set", Some(&wallet.id), json!({"owner_threshold": threshold}));
    let store = state.store.clone();
    let wallet_id = wallet.id.clone();
    blocking(move || Ok(store.set_owner_threshold(&wallet_id, threshold, now(), check, entry)?))
        .await?
        .map_err(|why| ApiError::new(ErrorCode::InvalidInput, why))?;
    Ok(Json(json!({"wallet_id": wallet.id, "owner_threshold": threshold})))
}
