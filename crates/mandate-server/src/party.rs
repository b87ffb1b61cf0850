//! The embedded service party: it listens for runs the recovery party coordinates
//! (wallet creation, and owner-authorised refresh, repair and recovery signing) and
//! coordinates signing runs with the cosigner for sends the policy engine allowed.
//!
//! Every run the service party joins is in the daemon's audit trail: accepted or
//! refused (before any protocol message, fail closed: a run whose acceptance cannot
//! be recorded is refused), then completed or failed. Ceremonies are checked against
//! the wallet's owners in the daemon's database.

use std::net::TcpListener;
use std::sync::Arc;

use alloy_primitives::keccak256;
use mandate_chain::approval::OwnerKey;
use mandate_core::{ErrorCode, Role, WalletId};
use mandate_cosigner::{CosignerHandler, OwnerSource, PartyHome};
use mandate_mpc::net::{
    serve, AuditHead, Coordinator, Operation, PartyHandler, PeerBook, Refusal, RunOutput, RunPlan, ShareDir,
};
use mandate_mpc::{Culprit, EcdsaSig, KeyShare, MpcError};
use mandate_store::Store;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::audit::audit_entry;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::ports::SignFailure;

/// The service party of the daemon.
pub(crate) struct ServiceParty {
    /// Proposes this party's runs to the cosigner over connections it keeps open.
    coordinator: Coordinator,
    peers: PeerBook,
    shares: Arc<ShareDir>,
    /// The daemon's store: its audit head goes with every run this party proposes.
    store: Arc<Store>,
}

impl ServiceParty {
    /// Opens the service home with the master password (which seals its shares).
    pub(crate) fn open(home: &PartyHome, password: Zeroizing<Vec<u8>>, store: Arc<Store>) -> ApiResult<Self> {
        let peers = home.peers()?;
        Ok(ServiceParty {
            coordinator: Coordinator::new(home.identity()?, peers.clone()),
            peers,
            shares: Arc::new(home.shares(password)?),
            store,
        })
    }

    /// A plan of this party's for `wallet`, carrying the daemon's audit head (the
    /// cosigner keeps the highest it has seen as an anchor outside the daemon's reach).
    fn plan(&self, wallet: &WalletId, operation: Operation) -> ApiResult<RunPlan> {
        let head = self.store.audit_head()?.and_then(|head| {
            let hash = <[u8; 32]>::try_from(hex::decode(&head.hash).ok()?).ok()?;
            Some(AuditHead { seq: head.seq, hash })
        });
        Ok(RunPlan::new(wallet.clone(), vec![Role::Service, Role::Cosigner], operation)?.with_audit_head(head))
    }

    /// Serves runs on `listener` in a thread of its own (the serving loop owns its own
    /// copy of the identity key, which is deliberately not `Clone`).
    pub(crate) fn listen(&self, home: PartyHome, listener: TcpListener) -> ApiResult<()> {
        let identity = home.identity()?;
        let peers = self.peers.clone();
        let store = self.store.clone();
        let owner_store = store.clone();
        let owners: OwnerSource = Box::new(move |wallet| owners_of(&owner_store, wallet));
        let inner = CosignerHandler::service_with_owners(home, self.shares.clone(), owners);
        let handler = AuditedServiceParty { inner, store };
        std::thread::Builder::new()
            .name("service-party".into())
            .spawn(move || {
                if let Err(error) = serve(listener, identity, peers, handler) {
                    tracing::warn!("service party stopped: {error}");
                }
            })
            .map_err(|e| ApiError::internal(format!("starting the service party: {e}")))?;
        Ok(())
    }

    /// This party's share of `wallet`.
    pub(crate) fn share(&self, wallet: &WalletId) -> ApiResult<Arc<KeyShare>> {
        Ok(self.shares.load(wallet)?)
    }
}

impl crate::ports::Signer for ServiceParty {
    fn sign(
        &self,
        key: &crate::ports::KeyRef,
        payload: Vec<u8>,
        digest: [u8; 32],
        approval: Option<Vec<u8>>,
        agent: Option<Vec<u8>>,
        commit: &mut dyn FnMut() -> ApiResult<()>,
    ) -> Result<EcdsaSig, SignFailure> {
        let share = self.share(&key.wallet)?;
        let plan =
            self.plan(&key.wallet, Operation::Sign { payload, approval })?.with_agent(agent).with_derivation(key.child);
        let mut committed = false;
        // A commit that failed (the database went away) stops the run before its last
        // message: nothing is signed, and the caller gets that failure's own code
        // (`DATABASE_UNAVAILABLE`, retryable), not a generic one.
        let mut commit_failure: Option<ApiError> = None;
        let mut hook = || match commit() {
            Ok(()) => {
                committed = true;
                Ok(())
            }
            Err(error) => {
                let message = format!("committing the spend before the last message: {error}");
                commit_failure = Some(error);
                Err(MpcError::Io(message))
            }
        };
        let outcome = self.coordinator.coordinate(&plan, Some(&share), Some(digest), &mut hook);
        if let (Err(_), Some(error)) = (&outcome, commit_failure) {
            return Err(SignFailure { error, committed });
        }
        match outcome {
            Ok(RunOutput::Signature { sig, digest: signed }) if signed == digest => Ok(sig),
            Ok(_) => Err(SignFailure {
                error: ApiError::new(ErrorCode::SignatureInvalid, "the signing run returned no matching signature"),
                committed,
            }),
            Err(error) => {
                if let MpcError::Aborted { ban: true, culprit: Culprit::Party(culprit), .. } = &error {
                    if let Err(e) = self.shares.store(share.with_ban(*culprit)) {
                        tracing::warn!("could not record the ban of {culprit}: {e}");
                    }
                }
                Err(SignFailure { error: error.into(), committed })
            }
        }
    }

    fn notify(&self, wallet: &WalletId, operation: Operation) -> ApiResult<()> {
        let plan = self.plan(wallet, operation)?;
        match self.coordinator.coordinate(&plan, None, None, &mut mandate_mpc::net::no_commit)? {
            RunOutput::Noted => Ok(()),
            _ => Err(ApiError::internal("the cosigner answered a notice with something else")),
        }
    }

    fn address(&self, wallet: &WalletId) -> ApiResult<String> {
        Ok(self.share(wallet)?.public().address.clone())
    }

    fn child_address(&self, wallet: &WalletId, child: u32) -> ApiResult<String> {
        Ok(self.share(wallet)?.derive_child(child)?.public().address.clone())
    }
}

/// The wallet's owners as the daemon's database has them.
fn owners_of(store: &Store, wallet: &WalletId) -> Result<Vec<OwnerKey>, Refusal> {
    let records = store
        .owners(wallet.as_str())
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("reading the owners of {wallet}: {e}")))?;
    Ok(records.iter().filter_map(|record| record.owner_key.parse().ok()).collect())
}

/// What the audit trail records of a run (no secret: the payload only by hash).
fn plan_details(plan: &RunPlan) -> Value {
    let (payload, target, expected_address) = match &plan.operation {
        Operation::Sign { payload, .. } => (Some(format!("{:#x}", keccak256(payload))), None, None),
        Operation::Repair { target, expected_address } => (None, Some(*target), Some(expected_address.clone())),
        _ => (None, None, None),
    };
    json!({
        "session_id": plan.session_id.to_hex(),
        "operation": plan.operation_name(),
        "coordinator": plan.coordinator,
        "participants": plan.participants,
        "owner_authorized": plan.authorization.is_some(),
        "payload_keccak256": payload,
        "target": target,
        "expected_address": expected_address,
    })
}

/// The service party's handler inside the daemon: the shared handler, with every
/// run it is asked to join written to the daemon's audit trail.
struct AuditedServiceParty {
    inner: CosignerHandler,
    store: Arc<Store>,
}

impl AuditedServiceParty {
    fn record(&self, plan: &RunPlan, event: &str, extra: Value) -> Result<(), mandate_store::StoreError> {
        let mut details = plan_details(plan);
        if let (Some(details), Value::Object(extra)) = (details.as_object_mut(), extra) {
            details.extend(extra);
        }
        let actor = format!("party:{}", plan.coordinator);
        self.store.audit(audit_entry(&actor, event, Some(plan.wallet_id.as_str()), details), now()).map(|_| ())
    }
}

impl PartyHandler for AuditedServiceParty {
    fn role(&self) -> Role {
        self.inner.role()
    }

    fn authorize(&self, plan: &RunPlan) -> Result<Option<[u8; 32]>, Refusal> {
        let digest = self.inner.authorize(plan)?;
        // Fail closed: a run that is not on record does not happen.
        if let Err(error) = self.record(plan, "party.run_accepted", json!({})) {
            tracing::warn!(
                "service party: refusing a {} run: the audit trail is unavailable: {error}",
                plan.operation_name()
            );
            return Err(Refusal::new(ErrorCode::AuditUnavailable, "the service party cannot record the run"));
        }
        Ok(digest)
    }

    fn refused(&self, plan: &RunPlan, refusal: &Refusal) {
        let details = json!({"code": refusal.code.as_str(), "reason": refusal.message});
        if let Err(error) = self.record(plan, "party.run_refused", details) {
            tracing::warn!("service party: could not record the refused run {}: {error}", plan.session_id.to_hex());
        }
    }

    fn share(&self, wallet: &WalletId) -> mandate_mpc::Result<Arc<KeyShare>> {
        self.inner.share(wallet)
    }

    fn commit(&self, plan: &RunPlan) -> Result<(), Refusal> {
        self.inner.commit(plan)
    }

    fn completed(&self, plan: &RunPlan, output: RunOutput) -> mandate_mpc::Result<()> {
        let (digest, address) = match &output {
            RunOutput::Signature { digest, .. } => (Some(format!("0x{}", hex::encode(digest))), None),
            RunOutput::Share(share) => (None, Some(share.public().address.clone())),
            RunOutput::Noted => (None, None),
        };
        let stored = self.inner.completed(plan, output);
        let error = stored.as_ref().err().map(ToString::to_string);
        let extra = json!({"digest": digest, "address": address, "stored": stored.is_ok(), "error": error});
        if let Err(error) = self.record(plan, "party.run_completed", extra) {
            tracing::warn!("service party: could not record the completed run {}: {error}", plan.session_id.to_hex());
        }
        stored
    }

    fn failed(&self, plan: &RunPlan, error: &MpcError) {
        self.inner.failed(plan, error);
        let details = json!({"error": error.to_string(), "code": error.code().as_str()});
        if let Err(audit) = self.record(plan, "party.run_failed", details) {
            tracing::warn!("service party: could not record the failed run {}: {audit}", plan.session_id.to_hex());
        }
    }
}
