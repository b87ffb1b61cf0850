//! How a listening share holder answers proposals: the cosigner with its hard
//! limits, or the service (which in the daemon sits behind the policy engine).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mandate_chain::UnsignedTx;
use mandate_core::{ErrorCode, Role, WalletId};
use mandate_mpc::net::{Operation, PartyHandler, Refusal, RunOutput, RunPlan, ShareDir};
use mandate_mpc::{KeyShare, MpcError, Result};

use crate::home::PartyHome;
use crate::ledger::SpendLedger;
use crate::limits::LimitsFile;

/// A share holder that listens for runs.
pub struct CosignerHandler {
    home: PartyHome,
    shares: Arc<ShareDir>,
    ledger: Option<SpendLedger>,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
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
        Ok(CosignerHandler { home, shares: shares.into(), ledger: Some(ledger), clock: Box::new(system_now) })
    }

    /// The service party: decodes and signs what the recovery party coordinates,
    /// and stores its shares. The daemon shares `shares` with its own coordinator
    /// (which puts the policy engine in front of every run it starts).
    pub fn service(home: PartyHome, shares: impl Into<Arc<ShareDir>>) -> Self {
        CosignerHandler { home, shares: shares.into(), ledger: None, clock: Box::new(system_now) }
    }

    /// Replaces the clock (unix seconds), for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    fn authorize_sign(&self, plan: &RunPlan, payload: &[u8]) -> std::result::Result<[u8; 32], Refusal> {
        let tx = UnsignedTx::decode(payload).map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        let digest = tx.signing_hash();
        let Some(ledger) = &self.ledger else { return Ok(digest) };
        let limits_file = LimitsFile::load(&self.home.limits_path())?;
        let limits = limits_file.for_wallet(&plan.wallet_id)?;
        if !tx.input().is_empty() && !limits.allow_calldata {
            return Err(Refusal::new(
                ErrorCode::CosignerCalldataRefused,
                "transaction carries calldata and allow_calldata is off for this wallet",
            ));
        }
        let cost = tx.max_cost();
        if cost > limits.per_tx_max {
            return Err(Refusal::new(
                ErrorCode::CosignerPerTxLimit,
                format!(
                    "worst-case cost {cost} wei is above the cosigner per-transaction maximum {} wei",
                    limits.per_tx_max
                ),
            ));
        }
        ledger.reserve(&plan.wallet_id, &plan.session_id.to_hex(), cost, limits.daily_max, (self.clock)() / 86_400)?;
        Ok(digest)
    }

    fn store(&self, share: KeyShare) -> Result<()> {
        let address = share.public().address.clone();
        let wallet = share.wallet_id().clone();
        self.shares.store(share)?;
        self.home.record_wallet(&wallet, &address)
    }
}

impl PartyHandler for CosignerHandler {
    fn role(&self) -> Role {
        self.home.role()
    }

    fn authorize(&self, plan: &RunPlan) -> std::result::Result<Option<[u8; 32]>, Refusal> {
        match &plan.operation {
            Operation::Sign { payload } => self.authorize_sign(plan, payload).map(Some),
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

    fn share(&self, wallet: &WalletId) -> Result<Arc<KeyShare>> {
        self.shares.load(wallet)
    }

    fn completed(&self, plan: &RunPlan, output: RunOutput) -> Result<()> {
        match output {
            RunOutput::Share(share) => self.store(*share),
            RunOutput::Signature { .. } => match &self.ledger {
                Some(ledger) => {
                    ledger.commit(&plan.wallet_id, &plan.session_id.to_hex()).map_err(|r| MpcError::Io(r.message))
                }
                None => Ok(()),
            },
        }
    }

    fn failed(&self, plan: &RunPlan, error: &MpcError) {
        if let (Some(ledger), Operation::Sign { .. }) = (&self.ledger, &plan.operation) {
            let _ = ledger.release(&plan.wallet_id, &plan.session_id.to_hex());
        }
        if let MpcError::Aborted { ban: true, culprit: mandate_mpc::Culprit::Party(culprit), .. } = error {
            if let Ok(share) = self.shares.load(&plan.wallet_id) {
                let banned = share.with_ban(*culprit);
                if let Err(e) = self.store(banned) {
                    eprintln!("{}: could not record the ban of {culprit}: {e}", self.role());
                }
            }
        }
    }
}
