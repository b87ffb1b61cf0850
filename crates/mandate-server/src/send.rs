//! The send pipeline: one [`SendPipeline`] value per transaction, whose stages every
//! send goes through in order: **plan** (the handler's `TxPlan`), **request** (the
//! request audited, fail closed), **view** (simulation, prices, fees and gas from the
//! chain), **decide and reserve** (policy decision, spend reservation and nonce in one
//! database transaction, with the decision's webhook events), **sign** (threshold
//! signature with the cosigner; the spend is committed before round 3), **broadcast**
//! (recorded before it is sent) and **settle** (a failure before broadcast releases
//! the reservation and the nonce). The REST handlers (`routes::transactions`) run
//! the whole pipeline; the executor runs sign → broadcast → settle for a held
//! transaction it claimed.

use std::sync::Arc;

use alloy_primitives::U256;
use alloy_primitives::{keccak256, Address, B256};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mandate_chain::{ChainError, UnsignedTx};
use mandate_core::action::Asset;
use mandate_core::policy::{RuleKind, Tier};
use mandate_core::ErrorCode;
use mandate_store::{
    AuditEntry, Broadcast, BroadcastKind, NewTransaction, NonceGap, OutboxEvent, ReserveOutcome, ReserveView, TxRecord,
    TxStatus, WalletRecord,
};
use serde_json::json;

use crate::actions::{
    chain_view, decide_transaction, decode_plan, denial_error, ChainView, Mandates, TxPlan, FEE_CAP_WEI,
};
use crate::agent_auth::agent_policy_of;
use crate::audit::audit_entry;
use crate::context::{frozen_error, policy_of, refuse_if_frozen, same_chain};
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::ports::{Chain, SignFailure};
use crate::state::AppState;
use crate::task::blocking;
use crate::webhooks::{self, Event};

/// How often a reservation is retried when the policy changed between the decision
/// and the reservation.
const RESERVE_ATTEMPTS: u32 = 5;

/// One transaction of one wallet on its way from a plan to a settled record.
pub(crate) struct SendPipeline {
    state: Arc<AppState>,
    /// The node of the plan's chain.
    node: Arc<dyn Chain>,
    wallet: WalletRecord,
    from: Address,
    plan: TxPlan,
    actor: String,
    /// An agent key's proof for the cosigner (`mandate_chain::agent::AgentProof`).
    agent_proof: Option<Vec<u8>>,
}

/// What the decide-and-reserve stage ended with, when it did not refuse.
enum Reserved {
    /// Reserved with a nonce: sign it at these prices.
    ToSign(TxRecord, Pricing),
    /// Held for an owner's approval or a delay (`202`).
    Held(TxRecord),
    /// An idempotent replay of an earlier request with the same key.
    Replayed(TxRecord),
}

/// A signed transaction, recorded as `submitted`, not yet sent.
pub(crate) struct Signed {
    raw: Vec<u8>,
}

impl SendPipeline {
    /// A pipeline for `plan` from `wallet`, acting as `actor`.
    pub(crate) fn new(state: Arc<AppState>, wallet: WalletRecord, plan: TxPlan, actor: String) -> ApiResult<Self> {
        let from = wallet.address()?;
        let node = state.node(plan.chain_id)?;
        Ok(SendPipeline { state, node, wallet, from, plan, actor, agent_proof: None })
    }

    /// The same pipeline showing the cosigner an agent key's proof when it signs.
    pub(crate) fn with_agent_proof(mut self, proof: Option<Vec<u8>>) -> Self {
        self.agent_proof = proof;
        self
    }

    /// Every stage, for a REST request: `200` with the record once broadcast, `202`
    /// when held, an error (with `broadcast: false | "unknown"`) otherwise.
    /// `prelude`: the `Server-Timing` entries of the stages before the pipeline.
    pub(crate) async fn run(self, key: Option<String>, prelude: String) -> ApiResult<Response> {
        // Early, to spare the chain reads; the reservation checks again atomically.
        refuse_if_frozen(&self.state, &self.wallet.id)?;
        let tx_id = format!("tx_{}", hex::encode(rand::random::<[u8; 10]>()));
        let requested = self.request_record(&tx_id, key.as_deref());
        // From here on the work runs in its own task: a client that hangs up mid-send
        // cannot abandon a reservation, a nonce or a signature half way.
        let task = tokio::spawn(crate::timing::timed(self.after_request(key, tx_id, requested)));
        let (outcome, stages) = task.await.map_err(|e| ApiError::internal(format!("send task failed: {e}")))?;
        outcome.map(|mut response| {
            let stages = stages.and_then(|stages| stages.to_str().ok().map(|s| format!("{prelude}, {s}")));
            if let Some(value) = stages.and_then(|text| HeaderValue::from_str(&text).ok()) {
                response.headers_mut().insert("server-timing", value);
            }
            response
        })
    }

    async fn after_request(self, key: Option<String>, tx_id: String, requested: AuditEntry) -> ApiResult<Response> {
        match self.decide_and_reserve(key, &tx_id, requested).await? {
            Reserved::Replayed(tx) => self.replayed(tx),
            Reserved::Held(tx) => Ok(self.held_response(&tx)),
            Reserved::ToSign(tx, pricing) => {
                let tx = self.execute(&tx, pricing, None).await?;
                Ok((StatusCode::OK, Json(json!(tx))).into_response())
            }
        }
    }

    /// Sign → broadcast → settle for a transaction taken from a hold by the executor
    /// (with the owner's approval) or for a nonce fill, after checking that the node
    /// still serves the wallet's chain.
    pub(crate) async fn execute_claimed(
        &self,
        tx: &TxRecord,
        pricing: Pricing,
        approval: Option<Vec<u8>>,
    ) -> ApiResult<TxRecord> {
        let genesis = self.node.genesis_hash().await.map_err(ApiError::from);
        if let Err(error) =
            genesis.and_then(|genesis| same_chain(&self.state, &self.wallet, self.plan.chain_id, genesis))
        {
            return Err(self.release(tx, error).await);
        }
        self.execute(tx, pricing, approval).await
    }

    /// Sign → broadcast → settle for a transaction reserved with a nonce.
    async fn execute(&self, tx: &TxRecord, pricing: Pricing, approval: Option<Vec<u8>>) -> ApiResult<TxRecord> {
        let outcome = match self.sign(tx, pricing, approval).await {
            Ok(signed) => self.broadcast(tx, signed).await,
            Err(failure) => Err(failure),
        };
        self.settle(tx, outcome).await
    }

    /// Stage *request*: the request's audit record. Fail closed: it is written in the
    /// reservation's database transaction (one fsync of the audit file with the
    /// decision's record), so a send whose request cannot be recorded is refused there
    /// and nothing is reserved or signed.
    fn request_record(&self, tx_id: &str, key: Option<&str>) -> AuditEntry {
        let plan = &self.plan;
        let details = json!({"tx_id": tx_id, "to": plan.to.to_checksum(None), "value_wei": plan.value.to_string(),
                             "data": format!("0x{}", hex::encode(&plan.data)), "idempotency_key": key});
        audit_entry(&self.actor, "transaction.requested", Some(&self.wallet.id), details)
    }

    /// Stages *view* and *decide and reserve*: reads the chain, then decides and
    /// reserves in one database transaction, again from the view when the policy
    /// changed in between.
    async fn decide_and_reserve(&self, key: Option<String>, tx_id: &str, requested: AuditEntry) -> ApiResult<Reserved> {
        let state = &self.state;
        let (chain_nonce, genesis) = tokio::join!(self.node.pending_nonce(self.from), self.node.genesis_hash());
        let chain_nonce = chain_nonce?;
        same_chain(state, &self.wallet, self.plan.chain_id, genesis?)?;
        crate::timing::mark("chain");
        // An agent key's own policy narrows the wallet's (both must allow).
        let agent = agent_policy_of(state, &self.actor)?.map(Arc::new);
        for _ in 0..RESERVE_ATTEMPTS {
            let policy = policy_of(state, &self.wallet.id)?;
            let action = decode_plan(policy.as_deref(), &self.plan)?;
            let agent_simulates = agent.as_ref().is_some_and(|a| a.policy.requires_simulation());
            let view = chain_view(state, policy.as_deref(), &action, self.from, &self.plan, agent_simulates).await?;
            let mandates = Mandates::new(state, policy.clone(), agent.clone(), &action, view.clone()).await;
            crate::timing::mark("chain");
            let lookback = mandates.lookback_secs();
            let (asset, amount) = action.outflow().unwrap_or((Asset::Native, U256::ZERO));
            let decided_at = now();
            let usd_micro = policy.as_ref().and_then(|p| p.usd_value(asset, amount, &view.prices, decided_at));
            let new = NewTransaction {
                id: tx_id.to_string(),
                wallet_id: self.wallet.id.clone(),
                idempotency_key: key.clone(),
                to: self.plan.to.to_checksum(None),
                value: self.plan.value,
                data: self.plan.data.clone(),
                kind: action.kind().to_string(),
                asset,
                amount,
                usd_micro,
                recipient: action.recipient(),
                chain_nonce,
                chain_id: self.plan.chain_id,
                gas_limit: view.fees.map(|(gas, _)| gas).unwrap_or_default(),
                max_fee_per_gas: view.fees.map(|(_, fees)| held_fee_bound(fees.max_fee_per_gas)).unwrap_or_default(),
                approval_ttl_secs: state.approval_ttl_secs,
                requested: Some(requested.clone()),
            };
            let (store, actor) = (state.store.clone(), self.actor.clone());
            let (wallet_id, id) = (self.wallet.id.clone(), tx_id.to_string());
            let outcome = blocking(move || {
                let decide = |seen: &ReserveView| {
                    mandates
                        .decide(seen, decided_at, |policy, ctx, view| decide_transaction(policy, &action, ctx, view))
                };
                let announce = |outcome: &ReserveOutcome| announce_reservation(&wallet_id, &id, outcome);
                Ok(store.reserve(new, lookback, decided_at, &actor, decide, announce)?)
            })
            .await?;
            crate::timing::mark("reserve");
            record_decision(state, &outcome);
            return match outcome {
                ReserveOutcome::Existing(tx) => Ok(Reserved::Replayed(tx)),
                ReserveOutcome::Denied(decision) => {
                    webhooks::wake(state);
                    Err(denial_error(&decision))
                }
                ReserveOutcome::Frozen(freeze) => Err(frozen_error(&freeze)),
                ReserveOutcome::Revoked => Err(ApiError::new(
                    ErrorCode::SessionRevoked,
                    "this session or agent key was revoked while the request was on its way; nothing was reserved",
                )),
                ReserveOutcome::Reserved { tx }
                    if matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed) =>
                {
                    Ok(Reserved::Held(tx))
                }
                ReserveOutcome::Reserved { tx } => {
                    // Nothing is signed yet: a failure here releases what was reserved.
                    match self.notify_tier(&tx).await.and_then(|()| pricing_of(&view)) {
                        Ok(pricing) => Ok(Reserved::ToSign(tx, pricing)),
                        Err(error) => Err(self.release(&tx, error).await),
                    }
                }
                ReserveOutcome::PolicyChanged => continue,
            };
        }
        Err(ApiError::new(ErrorCode::Internal, "the policy kept changing during the request; retry"))
    }

    /// A notify-tier transaction is audited and announced before it is signed.
    async fn notify_tier(&self, tx: &TxRecord) -> ApiResult<()> {
        if tx.tier() != Some(Tier::Notify) {
            return Ok(());
        }
        let wallet_id = &self.wallet.id;
        let entry = audit_entry(&self.actor, "policy.notify", Some(wallet_id), json!({"tx_id": tx.id}))
            .with_event(webhooks::event(Event::PolicyNotify, json!({"wallet_id": wallet_id, "transaction": tx})));
        let store = self.state.store.clone();
        blocking(move || Ok(store.audit(entry, now())?)).await?;
        webhooks::wake(&self.state);
        Ok(())
    }

    /// The answer to an idempotent replay: the first request's record, if the
    /// request is the same.
    fn replayed(&self, tx: TxRecord) -> ApiResult<Response> {
        let plan = &self.plan;
        if tx.to != plan.to.to_checksum(None)
            || tx.value_wei != plan.value.to_string()
            || tx.data != format!("0x{}", hex::encode(&plan.data))
        {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "this idempotency key was used for transaction {} with another recipient, amount or call",
                    tx.id
                ),
            )
            .with_details(json!({"transaction_id": tx.id})));
        }
        let mut response = (StatusCode::OK, Json(json!(tx))).into_response();
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        Ok(response)
    }

    /// `202 Accepted` for a held transaction: the agent polls `GET /v1/transactions/{id}`.
    fn held_response(&self, tx: &TxRecord) -> Response {
        let reason = tx.decision.get("reason").cloned().unwrap_or_default();
        let (deadline, at) = match tx.status {
            TxStatus::PendingApproval => ("expires_at", tx.expires_at),
            _ => ("execute_after", tx.execute_after),
        };
        let body = json!({"id": tx.id, "status": tx.status, "reason": reason, deadline: at,
                          "tier_rules": tx.decision.get("tier_rules"), "transaction": tx});
        if tx.status == TxStatus::PendingApproval {
            webhooks::wake(&self.state);
        }
        (StatusCode::ACCEPTED, Json(body)).into_response()
    }

    /// Stage *sign*: signs `tx` (reserved, with its nonce) with the cosigner,
    /// passing the owner's signed approval when there is one, and records it as
    /// `submitted` with the signed raw transaction before anything is sent
    /// (write-ahead: the audit holds the signature event, and a crash or a timed-out
    /// node leads to the same bytes being broadcast again, never to a second signature).
    async fn sign(&self, tx: &TxRecord, pricing: Pricing, approval: Option<Vec<u8>>) -> Result<Signed, Failure> {
        use Failure::BeforeBroadcast;
        let (state, wallet) = (&self.state, &self.wallet);
        let nonce = tx.nonce.ok_or_else(|| BeforeBroadcast(ApiError::internal("no nonce was allocated")))?;
        let Pricing { gas, max_fee_per_gas, max_priority_fee_per_gas } = pricing;
        if max_fee_per_gas > FEE_CAP_WEI {
            return Err(BeforeBroadcast(ApiError::new(
                ErrorCode::FeeCapExceeded,
                format!("max fee {max_fee_per_gas} wei/gas is above the cap {FEE_CAP_WEI} wei/gas"),
            )));
        }
        let plan = &self.plan;
        let unsigned = UnsignedTx::new(
            plan.chain_id,
            nonce,
            plan.to,
            plan.value,
            gas,
            max_fee_per_gas,
            max_priority_fee_per_gas.min(max_fee_per_gas),
            plan.data.clone(),
        );
        // The spend is committed before the daemon's round-3 message leaves: from then on
        // the cosigner can finish the signature without us, so a failure after that point
        // releases the nonce but never the spend (see `Store::release`).
        let (commit_store, commit_id) = (state.store.clone(), tx.id.clone());
        let raw = self
            .threshold_sign(unsigned, approval, move || Ok(commit_store.commit_spend(&commit_id)?))
            .await
            .map_err(|SignFailure { error, committed }| {
                BeforeBroadcast(if committed { error.with_details(json!({"spend_kept": true})) } else { error })
            })?;
        crate::timing::mark("sign");
        let hash = format!("{:#x}", keccak256(&raw));
        // Record before broadcasting: the audit must hold the signature event (fail closed).
        let store = state.store.clone();
        let (id, recorded_hash) = (tx.id.clone(), hash.clone());
        let entry = audit_entry(
            &self.actor,
            "transaction.signed",
            Some(&wallet.id),
            json!({"tx_id": id, "tx_hash": recorded_hash, "nonce": nonce, "gas": gas,
                   "max_fee_per_gas": max_fee_per_gas.to_string(), "signers": ["service", "cosigner"]}),
        );
        let signed = Broadcast {
            hash: recorded_hash,
            kind: BroadcastKind::Original,
            raw: raw.clone(),
            gas,
            max_fee_per_gas,
            max_priority_fee_per_gas: max_priority_fee_per_gas.min(max_fee_per_gas),
            created_at: now(),
        };
        blocking(move || Ok(store.mark_submitted(&id, &signed, now(), entry)?)).await.map_err(BeforeBroadcast)?;
        crate::timing::mark("record");
        Ok(Signed { raw })
    }

    /// Signs `unsigned` for this wallet with the cosigner (passing the owner's signed
    /// approval when there is one), counted in `/metrics`: the signed raw transaction.
    /// `commit` runs at the signing run's point of no return.
    async fn threshold_sign(
        &self,
        unsigned: UnsignedTx,
        approval: Option<Vec<u8>>,
        mut commit: impl FnMut() -> ApiResult<()> + Send + 'static,
    ) -> Result<Vec<u8>, SignFailure> {
        let key = crate::context::signing_key(&self.state, &self.wallet)?;
        let (signer, payload, digest) = (self.state.signer.clone(), unsigned.encode(), unsigned.signing_hash());
        let agent = self.agent_proof.clone();
        let started = std::time::Instant::now();
        let sig = blocking(move || Ok(signer.sign(&key, payload, digest, approval, agent, &mut commit))).await?;
        let cosigner_answered = !matches!(&sig, Err(failure) if failure.error.code == ErrorCode::PeerUnavailable);
        self.state.metrics.signed(started.elapsed(), sig.is_ok(), cosigner_answered);
        let sig = sig?;
        Ok(unsigned.into_raw_signed(sig.r, sig.s, sig.recovery_id, self.from).map_err(ApiError::from)?)
    }

    /// Stage *broadcast*: sends the signed transaction; a refusal releases it only
    /// when the node does not know its hash.
    async fn broadcast(&self, tx: &TxRecord, signed: Signed) -> Result<TxRecord, Failure> {
        use Failure::{BeforeBroadcast, Unknown};
        let chain = &self.node;
        let sent = chain.send_raw_transaction(&signed.raw).await;
        crate::timing::mark("broadcast");
        match sent {
            Ok(_) => {}
            Err(ChainError::Rejected(message)) => {
                // "already known" / "nonce too low" can mean this very transaction is in
                // the pool or mined: release only if the node does not know its hash.
                match chain.knows_transaction(keccak256(&signed.raw)).await {
                    Ok(false) => {
                        return Err(BeforeBroadcast(ApiError::new(
                            ErrorCode::ChainRejected,
                            format!("the node refused the transaction: {message}"),
                        )))
                    }
                    Ok(true) => {}
                    Err(error) => return Err(Unknown(error.into())),
                }
            }
            Err(error) => return Err(Unknown(error.into())),
        }
        let record = self.state.store.transaction(&tx.id).map_err(|e| Unknown(e.into()))?;
        record.ok_or_else(|| Unknown(ApiError::internal("transaction vanished")))
    }

    /// Stage *settle*: a failure before broadcast releases the reservation and nonce;
    /// either way the error says whether anything was broadcast.
    async fn settle(&self, tx: &TxRecord, outcome: Result<TxRecord, Failure>) -> ApiResult<TxRecord> {
        match outcome {
            Ok(tx) => Ok(tx),
            Err(Failure::BeforeBroadcast(error)) => Err(self.release(tx, error).await),
            Err(Failure::Unknown(error)) => {
                Err(error.with_details(json!({"transaction_id": tx.id, "broadcast": "unknown"})))
            }
        }
    }

    /// Nothing was broadcast: releases the reservation and nonce (status `failed`,
    /// with its webhook event) and returns the error to answer with.
    async fn release(&self, tx: &TxRecord, error: ApiError) -> ApiError {
        let store = self.state.store.clone();
        let (id, message, wallet_id) = (tx.id.clone(), error.to_string(), self.wallet.id.clone());
        let entry = audit_entry(
            &self.actor,
            "transaction.released",
            Some(&wallet_id),
            json!({"tx_id": id, "error": message, "code": error.code}),
        )
        .with_event(webhooks::event(
            Event::TransactionFailed,
            json!({"tx_id": tx.id, "wallet_id": wallet_id, "status": "failed", "error": message,
                   "code": error.code, "broadcast": false}),
        ));
        if let Err(release) = blocking(move || Ok(store.release(&id, &message, now(), entry)?)).await {
            tracing::error!("could not release {}: {release}", tx.id);
            return release.with_details(json!({"transaction_id": tx.id, "broadcast": false, "cause": error.code}));
        }
        webhooks::wake(&self.state);
        error.with_details(json!({"transaction_id": tx.id, "broadcast": false}))
    }
}

/// A replacement of a submitted transaction at its own nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replacement {
    /// The same transaction with higher fees.
    SpeedUp,
    /// A zero-value self-send: once mined, the transaction can never be.
    Cancel,
}

impl SendPipeline {
    /// Stage *replace* (`POST /v1/transactions/{id}/speed-up` and `…/cancel` of a
    /// submitted transaction): signs a new version at the same nonce with fees raised
    /// at least 12.5 % over the latest version (the node's replacement minimum) and to
    /// today's suggestion, under the daemon's fee cap and the policy's `gas_cap` rules;
    /// stores it before broadcasting it. The earlier versions stay valid until one of
    /// them is mined: the tracker watches them all.
    pub(crate) async fn replace(&self, tx: &TxRecord, kind: Replacement) -> ApiResult<TxRecord> {
        let not_pending = |why: String| {
            ApiError::new(ErrorCode::NotPending, why)
                .with_details(json!({"transaction_id": tx.id, "status": tx.status}))
        };
        if tx.status != TxStatus::Submitted {
            return Err(not_pending(format!("{} is {}, not waiting to be mined", tx.id, tx.status.name())));
        }
        let nonce = tx.nonce.ok_or_else(|| ApiError::internal("a submitted transaction without a nonce"))?;
        let (state, store, id) = (&self.state, self.state.store.clone(), tx.id.clone());
        let versions = blocking(move || Ok(store.broadcasts(&id)?)).await?;
        let Some(latest) = versions.last() else {
            return Err(not_pending(format!("{} was signed by an older daemon that kept no signed copy", tx.id)));
        };
        if latest.kind == BroadcastKind::Cancel {
            return Err(not_pending(format!("{} is being cancelled already", tx.id)));
        }
        for version in &versions {
            if let Ok(hash) = version.hash.parse::<B256>() {
                if self.node.receipt(hash).await?.is_some() {
                    return Err(not_pending(format!("{} was mined already; its final status follows shortly", tx.id)));
                }
            }
        }
        let fees = self.node.fees().await?;
        let bump = |old: u128| old.saturating_mul(9).div_ceil(8).saturating_add(1);
        let priority = bump(latest.max_priority_fee_per_gas).max(fees.max_priority_fee_per_gas);
        let max_fee = bump(latest.max_fee_per_gas).max(fees.max_fee_per_gas).max(priority);
        let (plan, gas) = match kind {
            Replacement::SpeedUp => (self.plan.clone(), latest.gas),
            Replacement::Cancel => (
                TxPlan { to: self.from, value: U256::ZERO, data: Vec::new(), chain_id: self.plan.chain_id },
                TRANSFER_GAS,
            ),
        };
        if max_fee > FEE_CAP_WEI {
            return Err(ApiError::new(
                ErrorCode::FeeCapExceeded,
                format!("the replacement needs {max_fee} wei/gas, above the cap {FEE_CAP_WEI} wei/gas"),
            ));
        }
        self.within_gas_caps(gas, max_fee)?;
        let unsigned = UnsignedTx::new(plan.chain_id, nonce, plan.to, plan.value, gas, max_fee, priority, plan.data);
        let approval = tx.approval.clone().map(String::into_bytes);
        // The spend was committed with the original; a replacement commits nothing new.
        let raw = self.threshold_sign(unsigned, approval, || Ok(())).await.map_err(|failure| failure.error)?;
        let signed = Broadcast {
            hash: format!("{:#x}", keccak256(&raw)),
            kind: match kind {
                Replacement::SpeedUp => BroadcastKind::SpeedUp,
                Replacement::Cancel => BroadcastKind::Cancel,
            },
            raw: raw.clone(),
            gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority,
            created_at: now(),
        };
        let event = match kind {
            Replacement::SpeedUp => "transaction.speed_up",
            Replacement::Cancel => "transaction.cancel_sent",
        };
        let entry = audit_entry(
            &self.actor,
            event,
            Some(&self.wallet.id),
            json!({"tx_id": tx.id, "replaces": latest.hash, "tx_hash": signed.hash, "nonce": nonce, "gas": gas,
                   "max_fee_per_gas": max_fee.to_string(), "max_priority_fee_per_gas": priority.to_string()}),
        );
        let (store, id, current, new_hash) =
            (state.store.clone(), tx.id.clone(), latest.hash.clone(), signed.hash.clone());
        if !blocking(move || Ok(store.add_replacement(&id, &current, &signed, now(), entry)?)).await? {
            return Err(not_pending(format!("{} changed while the replacement was signed; look it up", tx.id)));
        }
        match self.node.send_raw_transaction(&raw).await {
            Ok(_) => {}
            Err(ChainError::Rejected(message))
                if matches!(self.node.knows_transaction(keccak256(&raw)).await, Ok(false)) =>
            {
                let (store, id, previous) = (state.store.clone(), tx.id.clone(), latest.hash.clone());
                blocking(move || Ok(store.drop_replacement(&id, &new_hash, &previous)?)).await?;
                return Err(ApiError::new(
                    ErrorCode::ChainRejected,
                    format!("the node refused the replacement: {message}; the transaction stays as it was"),
                ));
            }
            // Unknown outcome: stored, so the tracker broadcasts it again if the node lacks it.
            Err(_) => {}
        }
        state.store.transaction(&tx.id)?.ok_or_else(|| ApiError::internal("transaction vanished"))
    }

    /// The policy's `gas_cap` rules bound a replacement's gas and fee too.
    fn within_gas_caps(&self, gas: u64, max_fee: u128) -> ApiResult<()> {
        let Some(policy) = policy_of(&self.state, &self.wallet.id)? else { return Ok(()) };
        for rule in &policy.rules {
            if let RuleKind::GasCap { max_gas, max_fee_per_gas } = &rule.kind {
                let over = max_gas.is_some_and(|cap| gas > cap) || max_fee_per_gas.is_some_and(|cap| max_fee > cap);
                if over {
                    return Err(ApiError::new(
                        ErrorCode::PolicyDenied,
                        format!("the replacement's gas {gas} or fee {max_fee} wei/gas is above rule {:?}", rule.id),
                    )
                    .with_details(json!({"rule_id": rule.id})));
                }
            }
        }
        Ok(())
    }
}

/// Counts a reservation's decision for `/metrics`: by the deciding rule, `allow`,
/// `deny` or `held`.
fn record_decision(state: &AppState, outcome: &ReserveOutcome) {
    match outcome {
        ReserveOutcome::Denied(decision) => state.metrics.decision(&decision.rule_id, "deny"),
        ReserveOutcome::Reserved { tx } => {
            let rule = tx.decision.get("rule_id").and_then(serde_json::Value::as_str).unwrap_or("none");
            let held = matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed);
            state.metrics.decision(rule, if held { "held" } else { "allow" });
        }
        ReserveOutcome::Existing(_)
        | ReserveOutcome::Frozen(_)
        | ReserveOutcome::Revoked
        | ReserveOutcome::PolicyChanged => {}
    }
}

/// The webhook events a reservation writes with its decision: `policy.denied` for a
/// denial, `approval.requested` for a transaction held for an owner.
fn announce_reservation(wallet_id: &str, tx_id: &str, outcome: &ReserveOutcome) -> Vec<OutboxEvent> {
    match outcome {
        ReserveOutcome::Denied(decision) => vec![webhooks::event(
            Event::PolicyDenied,
            json!({"wallet_id": wallet_id, "tx_id": tx_id, "decision": decision}),
        )],
        ReserveOutcome::Reserved { tx } if tx.status == TxStatus::PendingApproval => {
            vec![webhooks::event(Event::ApprovalRequested, json!({"wallet_id": tx.wallet_id, "transaction": tx}))]
        }
        _ => Vec::new(),
    }
}

/// The gas and fees an allowed transaction is signed with, from its chain view.
fn pricing_of(view: &ChainView) -> ApiResult<Pricing> {
    let (gas, fees) = view.fees.ok_or_else(|| ApiError::internal("no fees were estimated"))?;
    Ok(Pricing { gas, max_fee_per_gas: fees.max_fee_per_gas, max_priority_fee_per_gas: fees.max_priority_fee_per_gas })
}

/// The fee bound a held transaction may be re-priced within when it runs: twice
/// today's max fee per gas, at most the daemon's cap. The owner signs it.
pub(crate) fn held_fee_bound(max_fee_per_gas: u128) -> u128 {
    max_fee_per_gas.saturating_mul(2).min(FEE_CAP_WEI)
}

/// Gas and fees a transaction is signed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pricing {
    pub(crate) gas: u64,
    pub(crate) max_fee_per_gas: u128,
    pub(crate) max_priority_fee_per_gas: u128,
}

/// Why a send failed, and whether anything may have reached the network.
pub(crate) enum Failure {
    /// Nothing was broadcast: release the reservation.
    BeforeBroadcast(ApiError),
    /// Outcome unknown (the node may have the transaction): keep it submitted.
    Unknown(ApiError),
}

/// Gas of a zero-value self-send.
const TRANSFER_GAS: u64 = 21_000;

/// Fills a freed nonce (`gap`) that strands transactions already broadcast
/// (a send refused at signing, or released after a restart, below ones the node
/// holds back): a zero-value self-send at that nonce, signed with the cosigner (whose
/// limits apply: it costs only gas, under the daemon's fee cap). Moves no value, so
/// the policy is not asked; audited as `transaction.nonce_fill`. Does nothing when a
/// send took the nonce first or the chain has used it already.
pub(crate) async fn fill_nonce_gap(state: &Arc<AppState>, gap: &NonceGap) -> ApiResult<()> {
    let (wallet_id, nonce, chain_id) = (&gap.wallet_id, gap.nonce, gap.chain_id);
    let wallet = state.store.wallet(wallet_id)?.ok_or_else(|| ApiError::internal("nonce gap of an unknown wallet"))?;
    let from = wallet.address()?;
    let node = state.node(chain_id)?;
    let (chain_nonce, fees) = tokio::join!(node.pending_nonce(from), node.fees());
    if chain_nonce? > nonce {
        // Used on chain already (a signature the cosigner finished alone was published).
        return Ok(state.store.drop_free_nonce(gap)?);
    }
    let fees = fees?;
    let id = format!("tx_{}", hex::encode(rand::random::<[u8; 10]>()));
    let request = NewTransaction {
        id: id.clone(),
        wallet_id: wallet.id.clone(),
        idempotency_key: None,
        to: from.to_checksum(None),
        value: U256::ZERO,
        data: Vec::new(),
        kind: "nonce_fill".into(),
        asset: Asset::Native,
        amount: U256::ZERO,
        usd_micro: None,
        recipient: None,
        chain_nonce: nonce,
        chain_id,
        gas_limit: TRANSFER_GAS,
        max_fee_per_gas: fees.max_fee_per_gas,
        approval_ttl_secs: 0,
        requested: None,
    };
    let entry = audit_entry(
        "daemon",
        "transaction.nonce_fill",
        Some(&wallet.id),
        json!({"tx_id": id, "nonce": nonce, "reason": "a freed nonce below broadcast transactions holds them back"}),
    );
    let store = state.store.clone();
    let Some(tx) = blocking(move || Ok(store.reserve_nonce_fill(request, nonce, now(), entry)?)).await? else {
        return Ok(());
    };
    let plan = TxPlan { to: from, value: U256::ZERO, data: Vec::new(), chain_id };
    let pricing = Pricing {
        gas: TRANSFER_GAS,
        max_fee_per_gas: fees.max_fee_per_gas,
        max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
    };
    SendPipeline::new(state.clone(), wallet, plan, "daemon".into())?.execute_claimed(&tx, pricing, None).await?;
    Ok(())
}
