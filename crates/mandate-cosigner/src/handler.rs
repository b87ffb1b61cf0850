//! How a listening share holder answers proposals: the cosigner with its hard
//! limits, or the service (which in the daemon sits behind the policy engine).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use mandate_chain::agent::AgentProof;
use mandate_chain::approval::{ApprovalError, DecisionAction, OwnerKey, SignedDecision};
use mandate_chain::{SignPayload, UnsignedTx};
use mandate_core::{ErrorCode, Role, WalletId};
use mandate_mpc::net::{Operation, PartyHandler, Refusal, RunOutput, RunPlan, ShareDir};
use mandate_mpc::{KeyShare, MpcError, Result};

use crate::anchor::AuditAnchorFile;
use crate::home::PartyHome;
use crate::ledger::{SpendLedger, TokenPayment};
use crate::limits::{LimitsFile, WalletLimits};
use crate::notices::Notices;

/// Where a party looks up the owners of a wallet (who may authorise ceremonies).
pub type OwnerSource = Box<dyn Fn(&WalletId) -> std::result::Result<Vec<OwnerKey>, Refusal> + Send + Sync>;

/// A share holder that listens for runs.
pub struct CosignerHandler {
    home: PartyHome,
    shares: Arc<ShareDir>,
    ledger: Option<SpendLedger>,
    notices: Notices,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    /// The service's owners (the cosigner reads its own `limits.toml` instead).
    owners: Option<OwnerSource>,
    /// The cosigner's record of the daemon's audit head.
    anchor: Option<Arc<AuditAnchorFile>>,
    /// Anchor writes of accepted signing runs, by session id: each is written while
    /// the run's first rounds compute and waited for at its commit.
    anchor_writes: Mutex<HashMap<String, JoinHandle<std::result::Result<(), Refusal>>>>,
}

fn system_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl CosignerHandler {
    /// The cosigner: enforces `limits.toml` and the daily ledger on every signing run.
    pub fn cosigner(home: PartyHome, shares: impl Into<Arc<ShareDir>>) -> Result<Self> {
        if home.role() != Role::Cosigner {
            return Err(MpcError::InvalidInput("cosigner handler needs the cosigner home".into()));
        }
        LimitsFile::load(&home.limits_path()).map_err(|r| MpcError::InvalidInput(r.message))?;
        let ledger = SpendLedger::open(Some(home.ledger_path())).map_err(|r| MpcError::InvalidInput(r.message))?;
        let notices = Notices::new(home.dir());
        let anchor = AuditAnchorFile::new(home.dir());
        Ok(CosignerHandler {
            home,
            shares: shares.into(),
            ledger: Some(ledger),
            notices,
            clock: Box::new(system_now),
            owners: None,
            anchor: Some(Arc::new(anchor)),
            anchor_writes: Mutex::new(HashMap::new()),
        })
    }

    /// The service party as `mandate service serve` runs it: it takes part in the
    /// runs the recovery party coordinates only with an owner's authorization of
    /// the exact ceremony, checked against the owners in its own `owners.toml`.
    pub fn service(home: PartyHome, shares: impl Into<Arc<ShareDir>>) -> Self {
        let owner_home = PartyHome::new(home.dir(), Role::Service);
        let source: OwnerSource = Box::new(move |wallet| owner_home.owners_of(wallet).map_err(Refusal::from));
        Self::service_with_owners(home, shares, source)
    }

    /// The service party with another source of owners (the daemon's database).
    /// The daemon shares `shares` with its own coordinator, which puts the policy
    /// engine in front of every run it starts.
    pub fn service_with_owners(home: PartyHome, shares: impl Into<Arc<ShareDir>>, owners: OwnerSource) -> Self {
        let notices = Notices::new(home.dir());
        CosignerHandler {
            home,
            shares: shares.into(),
            ledger: None,
            notices,
            clock: Box::new(system_now),
            owners: Some(owners),
            anchor: None,
            anchor_writes: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a ceremony's owner authorization against this party's own owners
    /// and records its id as used (each authorization runs once).
    fn authorize_ceremony(&self, plan: &RunPlan) -> std::result::Result<(), Refusal> {
        let owners = match &self.owners {
            Some(source) => source(&plan.wallet_id)?,
            None => {
                let limits = LimitsFile::load(&self.home.limits_path())?;
                self.owners_in(limits.entry(&plan.wallet_id))?
            }
        };
        let known = self.home.wallets()?.get(&plan.wallet_id).cloned();
        let now = (self.clock)();
        let signed = crate::ceremony::check(plan, &owners, known.as_deref(), now)?;
        let ceremony = &signed.ceremony;
        let item = format!("ceremony:{}", ceremony.id);
        self.notices.use_approval(plan.wallet_id.as_str(), &item, ceremony.expires_at, now).map_err(|refusal| {
            match refusal.code {
                ErrorCode::CosignerApprovalInvalid => Refusal::new(
                    ErrorCode::CeremonyAuthorizationInvalid,
                    "this ceremony authorization was used already; each runs once",
                ),
                _ => refusal,
            }
        })?;
        tracing::info!(
            "{}: owner {} authorised the {} ceremony {} for {}",
            self.role(),
            signed.signature.key,
            plan.operation_name(),
            ceremony.id,
            plan.wallet_id
        );
        Ok(())
    }

    /// Replaces the clock (unix seconds), for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Decodes the full payload and computes the digest itself. The cosigner first
    /// applies its limits: a transaction is valued against them; an off-chain payload
    /// (typed data, message, raw hash) is refused unless the wallet's limits allow its
    /// kind, and then costs nothing (no reservation). The service (no ledger) only
    /// decodes: the daemon's policy engine stands in front of it.
    fn authorize_sign(
        &self,
        plan: &RunPlan,
        payload: &[u8],
        approval: Option<&[u8]>,
    ) -> std::result::Result<[u8; 32], Refusal> {
        let payload = SignPayload::decode(payload).map_err(refusal)?;
        let Some(ledger) = &self.ledger else { return payload.digest().map_err(refusal) };
        let limits_file = LimitsFile::load(&self.home.limits_path())?;
        let limits = limits_file.for_wallet(&plan.wallet_id)?;
        if let Some(freeze) = self.notices.freeze_of(plan.wallet_id.as_str())? {
            return Err(Refusal::new(
                ErrorCode::CosignerFrozen,
                format!("{} is frozen at the cosigner (the daemon froze it at {})", plan.wallet_id, freeze.frozen_at),
            ));
        }
        // Exhaustive on purpose: a new payload kind must decide its cosigner check here.
        let tx = match &payload {
            SignPayload::Transaction(tx) => tx,
            SignPayload::TypedData(text) => {
                let typed: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| Refusal::new(ErrorCode::InvalidTypedData, format!("typed data: {e}")))?;
                return match mandate_chain::x402::Authorization::of_typed_data(&typed) {
                    Some(authorization) => self.authorize_x402(plan, limits, &payload, authorization),
                    None => off_chain(&payload, limits.allow_typed_data, "allow_typed_data"),
                };
            }
            SignPayload::PersonalMessage(message) if mandate_chain::approval::is_owner_text(message) => {
                return Err(Refusal::new(
                    ErrorCode::ReservedMessage,
                    "this message begins with an owner header; a wallet never signs owner texts",
                ))
            }
            SignPayload::PersonalMessage(_) => return off_chain(&payload, limits.allow_messages, "allow_messages"),
            SignPayload::RawHash(_) => return off_chain(&payload, limits.allow_raw_hash, "allow_raw_hash"),
        };
        let digest = tx.signing_hash();
        if let Some(proof) = plan.agent.as_deref() {
            self.check_agent(plan, limits, tx, proof)?;
        }
        if limits.chains.as_ref().is_some_and(|chains| !chains.contains(&tx.chain_id())) {
            return Err(Refusal::new(
                ErrorCode::CosignerChainRefused,
                format!("chain {} is not among the chains limits.toml allows for {}", tx.chain_id(), plan.wallet_id),
            ));
        }
        if !tx.input().is_empty() && !limits.allow_calldata {
            return Err(Refusal::new(
                ErrorCode::CosignerCalldataRefused,
                "transaction carries calldata and allow_calldata is off for this wallet",
            ));
        }
        let cost = tx.max_cost();
        let now = (self.clock)();
        let windowed = limits.approval_above_24h.is_some_and(|threshold| {
            ledger.total(&plan.wallet_id, tx.chain_id(), now).saturating_add(cost) > threshold
        });
        if windowed || limits.approval_above.is_some_and(|threshold| cost > threshold) {
            self.check_approval(plan, limits, tx, approval)?;
        }
        if cost > limits.per_tx_max {
            return Err(Refusal::new(
                ErrorCode::CosignerPerTxLimit,
                format!(
                    "worst-case cost {cost} wei is above the cosigner per-transaction maximum {} wei",
                    limits.per_tx_max
                ),
            ));
        }
        let session = plan.session_id.to_hex();
        ledger.reserve(&plan.wallet_id, tx.chain_id(), &session, cost, limits.daily_max, now)?;
        Ok(digest)
    }

    /// Above `approval_above` a transaction needs an owner's approval, verified
    /// here against this host's own list of owners: the daemon cannot forge one.
    fn check_approval(
        &self,
        plan: &RunPlan,
        limits: &WalletLimits,
        tx: &UnsignedTx,
        approval: Option<&[u8]>,
    ) -> std::result::Result<(), Refusal> {
        let invalid = |why: String| Refusal::new(ErrorCode::CosignerApprovalInvalid, why);
        let approval = approval.ok_or_else(|| {
            Refusal::new(
                ErrorCode::CosignerApprovalRequired,
                format!(
                    "worst-case cost {} wei (alone, or with the last 24 hours) is above the cosigner's approval_above \
                     (or approval_above_24h); an owner's signed approval is required",
                    tx.max_cost()
                ),
            )
        })?;
        let signed = SignedDecision::decode(approval).map_err(|e| invalid(e.to_string()))?;
        let decision = &signed.decision;
        if decision.action != DecisionAction::Approve {
            return Err(invalid("the owner decision is not an approval".into()));
        }
        if decision.wallet != plan.wallet_id.as_str() {
            return Err(invalid("the approval is for another wallet".into()));
        }
        let approved = decision.tx.as_ref().ok_or_else(|| invalid("the approval names no transaction".into()))?;
        approved.admits(tx).map_err(|e| invalid(e.to_string()))?;
        let owners = self.owners_in(Some(limits))?;
        if owners.is_empty() {
            return Err(invalid(format!("no owners are configured for {} in limits.toml", plan.wallet_id)));
        }
        let now = (self.clock)();
        verify_quorum(&signed, &owners, limits.owner_threshold, now)?;
        self.notices.use_approval(plan.wallet_id.as_str(), &decision.item, decision.expires_at, now)
    }

    /// A transaction the daemon signs for an agent key: the cosigner verifies the
    /// owner's registration against this host's own owners, the agent's signature over
    /// its request, that the request asks for this transaction, and uses the request
    /// once. A daemon cannot forge a registration or reuse one request for two signatures.
    fn check_agent(
        &self,
        plan: &RunPlan,
        limits: &WalletLimits,
        tx: &UnsignedTx,
        proof: &[u8],
    ) -> std::result::Result<(), Refusal> {
        let refused = |why: String| Refusal::new(ErrorCode::CosignerAgentRefused, why);
        let proof = AgentProof::decode(proof).map_err(|e| refused(e.to_string()))?;
        let owners = self.owners_in(Some(limits))?;
        if owners.is_empty() {
            // Without owners this host cannot tell a registration from a forgery; the
            // run is then any daemon-coordinated send, within this host's hard limits
            // (the daemon could sign one as the operator anyway). Listing the owners in
            // limits.toml turns the check on (docs/AGENTS.md).
            tracing::info!(
                "cosigner: agent send for {} not verified here: no owners are configured for it in limits.toml",
                plan.wallet_id
            );
            return Ok(());
        }
        let now = (self.clock)();
        proof
            .verify_transaction(
                plan.wallet_id.as_str(),
                &owners,
                usize::try_from(limits.owner_threshold).unwrap_or(usize::MAX),
                now,
                tx,
            )
            .map_err(|e| refused(format!("the agent's registration or request does not verify: {e}")))?;
        let agent = proof.registration.agent.to_checksum(None);
        let item = format!("agent:{agent}:{}", proof.request.nonce);
        let expires_at = proof.request.nonce / 1000 + mandate_chain::agent::NONCE_MAX_AGE_MS / 1000 + 1;
        self.notices.use_approval(plan.wallet_id.as_str(), &item, expires_at, now).map_err(
            |refusal| match refusal.code {
                ErrorCode::CosignerApprovalInvalid => {
                    refused(format!("agent {agent}'s request {} was used for a signature already", proof.request.nonce))
                }
                _ => refusal,
            },
        )?;
        tracing::info!(
            "cosigner: agent {agent} (registered by {}) verified for {}",
            proof.owner_signature.key,
            plan.wallet_id
        );
        Ok(())
    }

    /// An x402 payment (an EIP-3009 authorization): allowed for the wallet, on an
    /// allowed chain, valid at most an hour, within `x402_max_base` and, with the
    /// wallet's other payments in the token over 24 hours, within
    /// `x402_daily_max_base`; each authorization (payer, nonce) signed once.
    fn authorize_x402(
        &self,
        plan: &RunPlan,
        limits: &WalletLimits,
        payload: &SignPayload,
        authorization: Result<
            (mandate_chain::x402::Authorization, alloy_primitives::Address, u64),
            mandate_chain::x402::X402Error,
        >,
    ) -> std::result::Result<[u8; 32], Refusal> {
        let refused = |why: String| Refusal::new(ErrorCode::CosignerPayloadRefused, why);
        let (authorization, token, chain) = authorization.map_err(|e| refused(e.to_string()))?;
        if !limits.allow_x402 {
            return Err(refused(format!("x402 payments are refused: allow_x402 is off for {}", plan.wallet_id)));
        }
        if limits.chains.as_ref().is_some_and(|chains| !chains.contains(&chain)) {
            return Err(Refusal::new(
                ErrorCode::CosignerChainRefused,
                format!("chain {chain} is not among the chains limits.toml allows for {}", plan.wallet_id),
            ));
        }
        let now = (self.clock)();
        if authorization.valid_before > now + 3600 {
            return Err(refused("an x402 authorization valid for more than an hour".into()));
        }
        if let Some(max) = limits.x402_max_base.filter(|max| authorization.value > *max) {
            return Err(refused(format!(
                "an x402 payment of {} base units of {token} is above x402_max_base {max}",
                authorization.value
            )));
        }
        let Some(daily_max) = limits.x402_daily_max_base else {
            return Err(refused(format!(
                "x402 payments need x402_daily_max_base (the most {} may pay in one token over 24 hours) \
                 in limits.toml",
                plan.wallet_id
            )));
        };
        // Counted like a transaction's cost: reserved here, committed at the signing
        // point of no return, released only if the run ends before it.
        let session = plan.session_id.to_hex();
        if let Some(ledger) = &self.ledger {
            let payment = TokenPayment { wallet: &plan.wallet_id, chain_id: chain, token, amount: authorization.value };
            ledger.reserve_token(&session, payment, daily_max, now)?;
        }
        let item = format!("x402:{}:{:#x}", authorization.from, authorization.nonce);
        let used = self.notices.use_approval(plan.wallet_id.as_str(), &item, authorization.valid_before, now);
        if let Err(refusal) = used {
            if let Some(ledger) = &self.ledger {
                ledger.release(&session)?;
            }
            return Err(match refusal.code {
                ErrorCode::CosignerApprovalInvalid => refused("this x402 authorization was signed already".into()),
                _ => refusal,
            });
        }
        tracing::info!(
            "cosigner: x402 payment of {} base units of {token} for {}",
            authorization.value,
            plan.wallet_id
        );
        payload.digest().map_err(refusal)
    }

    /// A freeze notice from the daemon: recorded, refused by every later signing run.
    fn authorize_freeze(&self, plan: &RunPlan, frozen_at: u64, reason: &str) -> std::result::Result<(), Refusal> {
        if self.ledger.is_none() {
            return Err(Refusal::new(ErrorCode::InvalidInput, "only the cosigner takes freeze notices"));
        }
        let freeze = self.notices.freeze(plan.wallet_id.as_str(), frozen_at, reason, (self.clock)())?;
        tracing::info!("cosigner: {} frozen by the daemon (frozen at {})", plan.wallet_id, freeze.frozen_at);
        Ok(())
    }

    /// An owner's signed unfreeze: verified against this host's owners, for the
    /// freeze the daemon sent, and only after this host's cool-down.
    fn authorize_unfreeze(&self, plan: &RunPlan, decision: &[u8]) -> std::result::Result<(), Refusal> {
        if self.ledger.is_none() {
            return Err(Refusal::new(ErrorCode::InvalidInput, "only the cosigner takes unfreeze notices"));
        }
        let invalid = |why: String| Refusal::new(ErrorCode::CosignerApprovalInvalid, why);
        let signed = SignedDecision::decode(decision).map_err(|e| invalid(e.to_string()))?;
        let Some(freeze) = self.notices.freeze_of(plan.wallet_id.as_str())? else { return Ok(()) };
        let decision = &signed.decision;
        if decision.action != DecisionAction::Unfreeze
            || decision.wallet != plan.wallet_id.as_str()
            || decision.item != format!("freeze:{}", freeze.frozen_at)
        {
            return Err(invalid("the decision does not unfreeze this freeze of this wallet".into()));
        }
        let limits_file = LimitsFile::load(&self.home.limits_path())?;
        let entry = limits_file.entry(&plan.wallet_id);
        let owners = self.owners_in(entry)?;
        if owners.is_empty() {
            return Err(invalid(format!("no owners are configured for {} in limits.toml", plan.wallet_id)));
        }
        let now = (self.clock)();
        verify_quorum(&signed, &owners, entry.map_or(1, |limits| limits.owner_threshold), now)?;
        let ready_at = freeze.received_at.saturating_add(limits_file.freeze_cooldown_secs);
        if now < ready_at {
            return Err(Refusal::new(
                ErrorCode::FreezeCooldown,
                format!("the cosigner's freeze cool-down ends at {ready_at} (unix seconds)"),
            ));
        }
        self.notices.lift(Some(plan.wallet_id.as_str()))?;
        tracing::info!("cosigner: {} unfrozen by an owner", plan.wallet_id);
        Ok(())
    }

    /// The owners `limits` names, less any EVM owner that is one of this party's own
    /// wallets: a wallet can be made to sign a message or a hash, so it never counts
    /// as an owner (whatever `limits.toml` says).
    fn owners_in(&self, limits: Option<&WalletLimits>) -> std::result::Result<Vec<OwnerKey>, Refusal> {
        let Some(limits) = limits else { return Ok(Vec::new()) };
        let wallets = self.home.wallets()?;
        let own: Vec<alloy_primitives::Address> = wallets.values().filter_map(|address| address.parse().ok()).collect();
        Ok(limits.owners.iter().filter(|&key| !matches!(key, OwnerKey::Evm(a) if own.contains(a))).cloned().collect())
    }

    fn store(&self, share: KeyShare) -> Result<()> {
        let address = share.public().address.clone();
        let wallet = share.wallet_id().clone();
        self.shares.store(share)?;
        self.home.record_wallet(&wallet, &address)
    }
}

/// At least `threshold` distinct owners of this host's list signed the decision:
/// fewer is `COSIGNER_QUORUM_NOT_MET`, any other failure `COSIGNER_APPROVAL_INVALID`.
fn verify_quorum(
    signed: &SignedDecision,
    owners: &[OwnerKey],
    threshold: u64,
    now: u64,
) -> std::result::Result<(), Refusal> {
    let threshold = usize::try_from(threshold).unwrap_or(usize::MAX);
    match signed.verify_quorum(owners, threshold, now) {
        Ok(_) => Ok(()),
        Err(error @ ApprovalError::QuorumNotMet { .. }) => Err(Refusal::new(
            ErrorCode::CosignerQuorumNotMet,
            format!("{error}, counted from the owners in this cosigner's limits.toml"),
        )),
        Err(error) => Err(Refusal::new(ErrorCode::CosignerApprovalInvalid, error.to_string())),
    }
}

fn refusal(error: mandate_chain::ChainError) -> Refusal {
    Refusal::new(error.code(), error.to_string())
}

/// An off-chain payload at the cosigner: refused unless `switch` is on for the wallet.
fn off_chain(payload: &SignPayload, allowed: bool, switch: &str) -> std::result::Result<[u8; 32], Refusal> {
    if !allowed {
        return Err(Refusal::new(
            ErrorCode::CosignerPayloadRefused,
            format!("{} payloads are refused: {switch} is off for this wallet", payload.kind()),
        ));
    }
    payload.digest().map_err(refusal)
}

impl PartyHandler for CosignerHandler {
    fn role(&self) -> Role {
        self.home.role()
    }

    fn authorize(&self, plan: &RunPlan) -> std::result::Result<Option<[u8; 32]>, Refusal> {
        let head = self.anchor.as_ref().zip(plan.audit_head);
        match head {
            // A signing run's anchor is written (durably) while its first rounds
            // compute; its commit waits for it, so a run whose anchor cannot be
            // written still stops before its point of no return.
            Some((anchor, head)) if matches!(plan.operation, Operation::Sign { .. }) => {
                let digest = self.authorize_checked(plan)?;
                let (anchor, now) = (anchor.clone(), (self.clock)());
                let write = std::thread::spawn(move || anchor.observe(&head, now));
                self.anchor_writes
                    .lock()
                    .map_err(|_| Refusal::new(ErrorCode::Internal, "anchor lock poisoned"))?
                    .insert(plan.session_id.to_hex(), write);
                Ok(digest)
            }
            Some((anchor, head)) => {
                anchor.observe(&head, (self.clock)())?;
                self.authorize_checked(plan)
            }
            None => self.authorize_checked(plan),
        }
    }

    fn share(&self, wallet: &WalletId) -> Result<Arc<KeyShare>> {
        self.shares.load(wallet)
    }

    fn completed(&self, _plan: &RunPlan, output: RunOutput) -> Result<()> {
        match output {
            RunOutput::Share(share) => self.store(*share),
            RunOutput::Noted => Ok(()),
            // The amount was committed at the run's point of no return.
            RunOutput::Signature { .. } => Ok(()),
        }
    }

    fn commit(&self, plan: &RunPlan) -> std::result::Result<(), Refusal> {
        if let Some(write) = self.anchor_write(plan) {
            write.join().map_err(|_| Refusal::new(ErrorCode::Internal, "the anchor write stopped"))??;
        }
        match &self.ledger {
            Some(ledger) => ledger.commit(&plan.session_id.to_hex(), (self.clock)()),
            None => Ok(()),
        }
    }

    fn failed(&self, plan: &RunPlan, error: &MpcError) {
        // The anchor write, if any, finishes on its own.
        drop(self.anchor_write(plan));
        self.failed_run(plan, error);
    }
}

impl CosignerHandler {
    fn anchor_write(&self, plan: &RunPlan) -> Option<JoinHandle<std::result::Result<(), Refusal>>> {
        self.anchor_writes.lock().ok()?.remove(&plan.session_id.to_hex())
    }

    fn authorize_checked(&self, plan: &RunPlan) -> std::result::Result<Option<[u8; 32]>, Refusal> {
        if plan.is_ceremony() {
            self.authorize_ceremony(plan)?;
        }
        match &plan.operation {
            Operation::Sign { payload, approval } => self.authorize_sign(plan, payload, approval.as_deref()).map(Some),
            Operation::Freeze { frozen_at, reason } => self.authorize_freeze(plan, *frozen_at, reason).map(|()| None),
            Operation::Unfreeze { decision } => self.authorize_unfreeze(plan, decision).map(|()| None),
            Operation::Dkg => {
                if self.shares.contains(&plan.wallet_id) {
                    return Err(Refusal::new(
                        ErrorCode::InvalidInput,
                        format!("{} already has a share here", plan.wallet_id),
                    ));
                }
                Ok(None)
            }
            Operation::Refresh => Ok(None),
            Operation::Repair { target, expected_address } => {
                let known = self.home.wallets()?.get(&plan.wallet_id).cloned();
                match known {
                    Some(address) if address != *expected_address => Err(Refusal::new(
                        ErrorCode::InvalidInput,
                        format!("{} is {address} in this party's records, not {expected_address}", plan.wallet_id),
                    )),
                    None if *target != self.role() => {
                        Err(Refusal::new(ErrorCode::ShareNotFound, format!("{} is unknown here", plan.wallet_id)))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    fn failed_run(&self, plan: &RunPlan, error: &MpcError) {
        // Only a reservation that never reached its commit is released: after the
        // commit the other signer may hold the signature.
        if let (Some(ledger), Operation::Sign { .. }) = (&self.ledger, &plan.operation) {
            let _ = ledger.release(&plan.session_id.to_hex());
        }
        if let MpcError::Aborted { ban: true, culprit: mandate_mpc::Culprit::Party(culprit), .. } = error {
            if let Ok(share) = self.shares.load(&plan.wallet_id) {
                let banned = share.with_ban(*culprit);
                if let Err(e) = self.store(banned) {
                    tracing::warn!("{}: could not record the ban of {culprit}: {e}", self.role());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::DEFAULT_LIMITS;
    use alloy_primitives::{b256, keccak256, Address, B256, U256};
    use mandate_chain::UnsignedTx;
    use zeroize::Zeroizing;

    const MAIL: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}"#;
    const MAIL_DIGEST: B256 = b256!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
    const HELLO_DIGEST: B256 = b256!("0xd9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68");
    const DAY: u64 = 20_000;

    fn wallet() -> WalletId {
        WalletId::from_random([7; 12])
    }

    fn handler(role: Role, limits: &str) -> (tempfile::TempDir, CosignerHandler) {
        let dir = tempfile::tempdir().unwrap();
        let home = PartyHome::new(dir.path(), role);
        let shares = home.shares(Zeroizing::new(b"test passphrase".to_vec())).unwrap();
        let handler = if role == Role::Cosigner {
            std::fs::write(home.limits_path(), limits).unwrap();
            CosignerHandler::cosigner(home, shares).unwrap()
        } else {
            CosignerHandler::service(home, shares)
        };
        (dir, handler.with_clock(|| DAY * 86_400 + 5))
    }

    fn sign(handler: &CosignerHandler, payload: &SignPayload) -> std::result::Result<[u8; 32], Refusal> {
        let plan = RunPlan::new(
            wallet(),
            vec![Role::Service, Role::Cosigner],
            Operation::Sign { payload: payload.encode(), approval: None },
        )
        .unwrap();
        handler.authorize(&plan).map(|digest| digest.unwrap())
    }

    fn off_chain_payloads() -> Vec<(SignPayload, [u8; 32])> {
        let raw = keccak256(b"some hash");
        vec![
            (SignPayload::TypedData(MAIL.into()), MAIL_DIGEST.0),
            (SignPayload::PersonalMessage(b"hello world".to_vec()), HELLO_DIGEST.0),
            (SignPayload::RawHash(raw), raw.0),
        ]
    }

    fn transfer(value: u64, input: Vec<u8>) -> SignPayload {
        SignPayload::Transaction(UnsignedTx::new(
            1,
            0,
            Address::repeat_byte(0x11),
            U256::from(value),
            21_000,
            10,
            1,
            input,
        ))
    }

    fn allowing(switches: &[&str]) -> String {
        switches.iter().fold(DEFAULT_LIMITS.to_string(), |text, switch| {
            text.replace(&format!("# {switch} = false"), &format!("{switch} = true"))
        })
    }

    fn ledger_total(handler: &CosignerHandler) -> U256 {
        handler.ledger.as_ref().unwrap().total(&wallet(), 1, DAY * 86_400 + 5)
    }

    #[test]
    fn off_chain_payloads_are_refused_by_default() {
        let (_dir, handler) = handler(Role::Cosigner, DEFAULT_LIMITS);
        for (payload, _) in off_chain_payloads() {
            let refusal = sign(&handler, &payload).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::CosignerPayloadRefused, "{}", payload.kind());
            assert!(refusal.message.contains(payload.kind()), "{}", refusal.message);
        }
        assert_eq!(ledger_total(&handler), U256::ZERO);
    }

    #[test]
    fn each_switch_allows_its_kind_only_and_costs_nothing() {
        let switches = ["allow_typed_data", "allow_messages", "allow_raw_hash"];
        for (index, switch) in switches.iter().enumerate() {
            let (_dir, handler) = handler(Role::Cosigner, &allowing(&[switch]));
            for (kind, (payload, digest)) in off_chain_payloads().into_iter().enumerate() {
                let outcome = sign(&handler, &payload);
                if kind == index {
                    assert_eq!(outcome.unwrap(), digest, "{switch} {}", payload.kind());
                } else {
                    assert_eq!(
                        outcome.unwrap_err().code,
                        ErrorCode::CosignerPayloadRefused,
                        "{switch} {}",
                        payload.kind()
                    );
                }
            }
            assert_eq!(ledger_total(&handler), U256::ZERO, "off-chain payloads reserve nothing");
        }
    }

    #[test]
    fn allowed_typed_data_that_does_not_hash_is_refused() {
        let (_dir, handler) = handler(Role::Cosigner, &allowing(&["allow_typed_data"]));
        let refusal = sign(&handler, &SignPayload::TypedData("{}".into())).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::InvalidTypedData);
    }

    #[test]
    fn a_frozen_wallet_or_cosigner_refuses_every_kind() {
        let all = allowing(&["allow_typed_data", "allow_messages", "allow_raw_hash"])
            .replace("allow_calldata = false\n", "allow_calldata = true\n");
        // The second `frozen = false` is the [default] wallet's, the first the cosigner's.
        let wallet_frozen = all.replace(
            "daily_max = \"5000000000000000000\"\nfrozen = false",
            "daily_max = \"5000000000000000000\"\nfrozen = true",
        );
        let cosigner_frozen = all.replacen("frozen = false", "frozen = true", 1);
        for (limits, why) in [(wallet_frozen, "is frozen at the cosigner"), (cosigner_frozen, "the cosigner is frozen")]
        {
            assert_ne!(limits, all);
            let (_dir, handler) = handler(Role::Cosigner, &limits);
            let mut payloads: Vec<SignPayload> = off_chain_payloads().into_iter().map(|(payload, _)| payload).collect();
            payloads.push(transfer(1, vec![]));
            for payload in payloads {
                let refusal = sign(&handler, &payload).unwrap_err();
                assert_eq!(refusal.code, ErrorCode::CosignerFrozen, "{}", payload.kind());
                assert!(refusal.message.contains(why), "{}", refusal.message);
            }
        }
    }

    #[test]
    fn transactions_keep_their_checks() {
        let (_dir, handler) =
            handler(Role::Cosigner, &allowing(&["allow_typed_data", "allow_messages", "allow_raw_hash"]));
        let tx = transfer(1_000, vec![]);
        let SignPayload::Transaction(unsigned) = &tx else { unreachable!() };
        assert_eq!(sign(&handler, &tx).unwrap(), unsigned.signing_hash());
        assert_eq!(ledger_total(&handler), unsigned.max_cost());
        // Calldata stays refused: the off-chain switches do not touch allow_calldata.
        assert_eq!(
            sign(&handler, &transfer(1, vec![1, 2, 3, 4])).unwrap_err().code,
            ErrorCode::CosignerCalldataRefused
        );
        let over = transfer(2_000_000_000_000_000_000, vec![]);
        assert_eq!(sign(&handler, &over).unwrap_err().code, ErrorCode::CosignerPerTxLimit);
        // Garbage is refused as before.
        let plan = RunPlan::new(
            wallet(),
            vec![Role::Service, Role::Cosigner],
            Operation::Sign { payload: vec![0x01, 0xc0], approval: None },
        )
        .unwrap();
        assert_eq!(handler.authorize(&plan).unwrap_err().code, ErrorCode::InvalidTransaction);
    }

    #[test]
    fn the_service_decodes_every_kind_and_returns_its_digest() {
        let (_dir, handler) = handler(Role::Service, "");
        for (payload, digest) in off_chain_payloads() {
            assert_eq!(sign(&handler, &payload).unwrap(), digest, "{}", payload.kind());
        }
        let tx = transfer(5, vec![1, 2, 3, 4]);
        let SignPayload::Transaction(unsigned) = &tx else { unreachable!() };
        assert_eq!(sign(&handler, &tx).unwrap(), unsigned.signing_hash());
        assert_eq!(sign(&handler, &SignPayload::TypedData("[]".into())).unwrap_err().code, ErrorCode::InvalidTypedData);
        let plan = RunPlan::new(
            wallet(),
            vec![Role::Service, Role::Cosigner],
            Operation::Sign { payload: vec![0xa3, 1], approval: None },
        )
        .unwrap();
        assert_eq!(handler.authorize(&plan).unwrap_err().code, ErrorCode::InvalidInput);
    }

    #[test]
    fn x402_authorizations_are_decoded_limited_and_signed_once() {
        use mandate_chain::x402::Authorization;
        let now = DAY * 86_400 + 5;
        let authorization = |value: u64, valid_for: u64, nonce: u8| Authorization {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            value: U256::from(value),
            valid_after: 0,
            valid_before: now + valid_for,
            nonce: alloy_primitives::B256::repeat_byte(nonce),
        };
        let typed = |auth: &Authorization| {
            let requirement = mandate_chain::x402::Requirement {
                chain_id: 1,
                amount: auth.value,
                asset: Address::repeat_byte(3),
                pay_to: auth.to,
                max_timeout_seconds: 300,
                token_name: "Test USD".into(),
                token_version: "1".into(),
                raw: serde_json::Value::Null,
            };
            SignPayload::TypedData(auth.typed_data(&requirement).to_string())
        };
        // Off by default, even with typed data allowed.
        let (_dir, default) =
            handler(Role::Cosigner, &DEFAULT_LIMITS.replace("# allow_typed_data = false", "allow_typed_data = true"));
        let refusal = sign(&default, &typed(&authorization(10, 300, 1))).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::CosignerPayloadRefused, "{}", refusal.message);
        let without_daily = DEFAULT_LIMITS.replace(
            "# allow_x402 = false\n# x402_max_base = \"1000000\"",
            "allow_x402 = true\nx402_max_base = \"1000\"",
        );
        assert_ne!(without_daily, DEFAULT_LIMITS);
        // Without a daily total, a compromised daemon could sign one payment after
        // another within the per-payment maximum: refused.
        let (_dir, unbounded) = handler(Role::Cosigner, &without_daily);
        let refusal = sign(&unbounded, &typed(&authorization(10, 300, 1))).unwrap_err();
        assert!(refusal.message.contains("x402_daily_max_base"), "{}", refusal.message);
        let limits = without_daily.replace("# x402_daily_max_base = \"10000000\"", "x402_daily_max_base = \"2000\"");
        assert_ne!(limits, without_daily);
        let (_dir, cosigner) = handler(Role::Cosigner, &limits);
        let token = Address::repeat_byte(3);
        let paid = |handler: &CosignerHandler| {
            handler.ledger.as_ref().unwrap().token_total(&wallet(), &token, 1, now).to::<u64>()
        };
        let once = typed(&authorization(10, 300, 1));
        sign(&cosigner, &once).unwrap();
        let again = sign(&cosigner, &once).unwrap_err();
        assert!(again.message.contains("signed already"), "{}", again.message);
        assert_eq!(paid(&cosigner), 10, "a refused repeat reserves nothing");
        assert!(sign(&cosigner, &typed(&authorization(1_001, 300, 2))).unwrap_err().message.contains("x402_max_base"));
        assert!(sign(&cosigner, &typed(&authorization(10, 7_200, 3))).unwrap_err().message.contains("an hour"));
        sign(&cosigner, &typed(&authorization(1_000, 3_600, 4))).unwrap();
        // 1010 of 2000 paid: another 1000 would pass the daily total, 990 does not.
        let over = sign(&cosigner, &typed(&authorization(1_000, 300, 5))).unwrap_err();
        assert_eq!(over.code, ErrorCode::CosignerDailyLimit, "{}", over.message);
        sign(&cosigner, &typed(&authorization(990, 300, 6))).unwrap();
        assert_eq!(paid(&cosigner), 2_000);
        assert_eq!(ledger_total(&cosigner), U256::ZERO, "x402 payments are not wei of transactions");
    }

    #[test]
    fn a_chain_outside_the_allowlist_is_refused_and_reserves_nothing() {
        let limits = DEFAULT_LIMITS.replace("# chains = [1, 8453]", "chains = [5]");
        assert_ne!(limits, DEFAULT_LIMITS);
        let (_dir, refusing) = handler(Role::Cosigner, &limits);
        // `transfer` builds chain-1 transactions.
        let refusal = sign(&refusing, &transfer(1_000, vec![])).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::CosignerChainRefused, "{}", refusal.message);
        assert_eq!(ledger_total(&refusing), U256::ZERO);
        // The same transaction where the list names its chain: signed and reserved.
        let (_dir, allowed) = handler(Role::Cosigner, &limits.replace("chains = [5]", "chains = [5, 1]"));
        sign(&allowed, &transfer(1_000, vec![])).unwrap();
        assert_ne!(ledger_total(&allowed), U256::ZERO);
    }

    #[test]
    fn a_ceremony_authorization_is_checked_against_this_partys_owners_and_runs_once() {
        use mandate_chain::approval::{CeremonyKind, OwnerCeremony, OwnerSecret, SignedCeremony};
        let owner = OwnerSecret::generate_ed25519();
        let limits = DEFAULT_LIMITS.replace(
            "allow_calldata = false\n",
            &format!("allow_calldata = false\nowners = [\"{}\"]\n", owner.public()),
        );
        let (_dir, cosigner) = handler(Role::Cosigner, &limits);
        let ceremony = OwnerCeremony {
            kind: CeremonyKind::Refresh,
            id: "cer_once".into(),
            wallet: wallet().to_string(),
            address: Address::repeat_byte(0x42),
            participants: Role::ALL.to_vec(),
            target: None,
            payload: None,
            expires_at: DAY * 86_400 + 600,
        };
        let authorization =
            SignedCeremony { signature: owner.sign_ceremony(&ceremony).unwrap(), ceremony: ceremony.clone() }.encode();
        let refresh = || RunPlan::new(wallet(), Role::ALL.to_vec(), Operation::Refresh).unwrap();
        assert_eq!(cosigner.authorize(&refresh()).unwrap_err().code, ErrorCode::CeremonyUnauthorized);
        cosigner.authorize(&refresh().authorized(authorization.clone())).unwrap();
        // A fresh run (new session id) with the same authorization: refused.
        let again = cosigner.authorize(&refresh().authorized(authorization)).unwrap_err();
        assert_eq!(again.code, ErrorCode::CeremonyAuthorizationInvalid, "{}", again.message);
        // Another key, even a valid signature: refused.
        let stranger = OwnerSecret::generate_ed25519();
        let other = OwnerCeremony { id: "cer_other".into(), ..ceremony };
        let forged = SignedCeremony { signature: stranger.sign_ceremony(&other).unwrap(), ceremony: other }.encode();
        let refused = cosigner.authorize(&refresh().authorized(forged)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::CeremonyAuthorizationInvalid, "{}", refused.message);
    }

    #[test]
    fn owner_texts_are_never_signed_and_a_wallet_of_this_cosigner_is_never_an_owner() {
        use mandate_chain::approval::{CeremonyKind, OwnerCeremony, OwnerSecret, SignedCeremony};
        // Messages allowed, yet an owner text is refused (as the daemon refuses it).
        let (_dir, cosigner) = handler(Role::Cosigner, &allowing(&["allow_messages"]));
        for text in ["Mandate owner decision v1\naction: approve", " mandate OWNER ceremony v1"] {
            let refusal = sign(&cosigner, &SignPayload::PersonalMessage(text.as_bytes().to_vec())).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::ReservedMessage, "{text}");
        }
        sign(&cosigner, &SignPayload::PersonalMessage(b"hello world".to_vec())).unwrap();

        // An EVM key listed as owner whose address is a wallet this cosigner holds a
        // share of: its signature (which the wallet could be made to give) counts for nothing.
        let evm = OwnerSecret::evm_from_bytes(&[9; 32]).unwrap();
        let limits = DEFAULT_LIMITS
            .replace("allow_calldata = false\n", &format!("allow_calldata = false\nowners = [\"{}\"]\n", evm.public()));
        let (dir, cosigner) = handler(Role::Cosigner, &limits);
        let mandate_chain::approval::OwnerKey::Evm(address) = evm.public() else { unreachable!() };
        let other_wallet = WalletId::from_random([8; 12]);
        PartyHome::new(dir.path(), Role::Cosigner).record_wallet(&other_wallet, &address.to_checksum(None)).unwrap();
        let ceremony = OwnerCeremony {
            kind: CeremonyKind::Refresh,
            id: "cer_wallet".into(),
            wallet: wallet().to_string(),
            address: Address::repeat_byte(0x42),
            participants: Role::ALL.to_vec(),
            target: None,
            payload: None,
            expires_at: DAY * 86_400 + 600,
        };
        let signed = SignedCeremony { signature: evm.sign_ceremony(&ceremony).unwrap(), ceremony }.encode();
        let plan = RunPlan::new(wallet(), Role::ALL.to_vec(), Operation::Refresh).unwrap().authorized(signed);
        let refusal = cosigner.authorize(&plan).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::CeremonyAuthorizationInvalid, "{}", refusal.message);
    }

    #[test]
    fn a_split_payment_meets_the_windowed_approval_threshold() {
        // Each transfer costs 1 000 + 21 000 × 10 = 211 000 wei.
        let limits = DEFAULT_LIMITS.replace(
            "# approval_above_24h = \"2000000000000000000\"",
            "approval_above_24h = \"300000\"\nowners = [\"evm:0x1111111111111111111111111111111111111111\"]",
        );
        assert_ne!(limits, DEFAULT_LIMITS);
        let (_dir, cosigner) = handler(Role::Cosigner, &limits);
        sign(&cosigner, &transfer(1_000, vec![])).unwrap();
        let second = sign(&cosigner, &transfer(1_000, vec![])).unwrap_err();
        assert_eq!(second.code, ErrorCode::CosignerApprovalRequired, "{}", second.message);
        // Without the windowed threshold the same second transfer is signed.
        let (_dir, plain) = handler(Role::Cosigner, DEFAULT_LIMITS);
        sign(&plain, &transfer(1_000, vec![])).unwrap();
        sign(&plain, &transfer(1_000, vec![])).unwrap();
    }
}
