//! What the cosigner has signed today, per wallet: reserve before signing, commit
//! after, release on failure. Persisted after every change, so a restart does not
//! reset the day's total.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use alloy_primitives::U256;
use mandate_core::{ErrorCode, WalletId};
use mandate_mpc::net::Refusal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WalletDay {
    day: u64,
    committed: U256,
    reserved: BTreeMap<String, U256>,
}

impl WalletDay {
    fn total(&self) -> U256 {
        self.reserved.values().fold(self.committed, |sum, value| sum.saturating_add(*value))
    }
}

/// The spend ledger.
pub struct SpendLedger {
    path: Option<PathBuf>,
    state: Mutex<BTreeMap<WalletId, WalletDay>>,
}

fn internal(message: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::Internal, message)
}

impl SpendLedger {
    /// Loads the ledger file (or starts empty); `None` keeps it in memory only.
    pub fn open(path: Option<PathBuf>) -> Result<Self, Refusal> {
        let state = match &path {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).map_err(|e| internal(format!("ledger: {e}")))?;
                serde_json::from_str(&text).map_err(|e| internal(format!("ledger is corrupt: {e}")))?
            }
            _ => BTreeMap::new(),
        };
        Ok(SpendLedger { path, state: Mutex::new(state) })
    }

    fn persist(&self, state: &BTreeMap<WalletId, WalletDay>) -> Result<(), Refusal> {
        let Some(path) = &self.path else { return Ok(()) };
        let text = serde_json::to_string(state).map_err(|e| internal(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| internal(format!("ledger: {e}")))?;
        std::fs::rename(&tmp, path).map_err(|e| internal(format!("ledger: {e}")))
    }

    /// Reserves `amount` for run `session` if the day's total stays within `daily_max`.
    /// `day` is the UTC day number (unix seconds / 86400).
    pub fn reserve(
        &self,
        wallet: &WalletId,
        session: &str,
        amount: U256,
        daily_max: U256,
        day: u64,
    ) -> Result<(), Refusal> {
        let mut state = self.state.lock().map_err(|_| internal("ledger lock"))?;
        let entry = state.entry(wallet.clone()).or_default();
        if entry.day != day {
            *entry = WalletDay { day, ..WalletDay::default() };
        }
        let after = entry.total().saturating_add(amount);
        if after > daily_max {
            return Err(Refusal::new(
                ErrorCode::CosignerDailyLimit,
                format!(
                    "{wallet}: today's total would be {after} wei, above the cosigner daily maximum {daily_max} wei"
                ),
            ));
        }
        entry.reserved.insert(session.to_string(), amount);
        self.persist(&state)
    }

    /// Makes a reservation permanent (the signature was produced).
    pub fn commit(&self, wallet: &WalletId, session: &str) -> Result<(), Refusal> {
        let mut state = self.state.lock().map_err(|_| internal("ledger lock"))?;
        if let Some(entry) = state.get_mut(wallet) {
            if let Some(amount) = entry.reserved.remove(session) {
                entry.committed = entry.committed.saturating_add(amount);
            }
        }
        self.persist(&state)
    }

    /// Drops a reservation (nothing was signed).
    pub fn release(&self, wallet: &WalletId, session: &str) -> Result<(), Refusal> {
        let mut state = self.state.lock().map_err(|_| internal("ledger lock"))?;
        if let Some(entry) = state.get_mut(wallet) {
            entry.reserved.remove(session);
        }
        self.persist(&state)
    }

    /// Committed plus reserved today for `wallet`.
    pub fn total(&self, wallet: &WalletId, day: u64) -> U256 {
        self.state
            .lock()
            .ok()
            .and_then(|state| state.get(wallet).filter(|entry| entry.day == day).map(WalletDay::total))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_exceeds_the_daily_maximum(ops in proptest::collection::vec((0u8..3, 1u64..50, 0u64..3), 1..80)) {
            let ledger = SpendLedger::open(None).unwrap();
            let wallet = WalletId::from_random([4; 12]);
            let max = U256::from(100u64);
            let mut day = 0;
            for (i, (op, amount, advance)) in ops.into_iter().enumerate() {
                day += u64::from(advance == 2);
                let session = format!("s{}", i / 2);
                let _ = match op {
                    0 => ledger.reserve(&wallet, &session, U256::from(amount), max, day),
                    1 => ledger.commit(&wallet, &session),
                    _ => ledger.release(&wallet, &session),
                };
                prop_assert!(ledger.total(&wallet, day) <= max);
            }
        }
    }

    #[test]
    fn survives_a_restart_and_resets_on_a_new_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let wallet = WalletId::from_random([4; 12]);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        ledger.reserve(&wallet, "a", U256::from(60u64), U256::from(100u64), 5).unwrap();
        ledger.commit(&wallet, "a").unwrap();
        drop(ledger);
        let ledger = SpendLedger::open(Some(path)).unwrap();
        let err = ledger.reserve(&wallet, "b", U256::from(50u64), U256::from(100u64), 5).unwrap_err();
        assert_eq!(err.code, ErrorCode::CosignerDailyLimit);
        ledger.reserve(&wallet, "b", U256::from(50u64), U256::from(100u64), 6).unwrap();
    }
}
