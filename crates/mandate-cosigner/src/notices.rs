//! What the cosigner learnt from the daemon and owners, kept in its own files
//! beside `limits.toml` (which only its operator writes):
//! `freezes.json` — wallets the daemon froze (refused until an owner's signed
//! unfreeze after the cool-down, or `mandate cosigner unfreeze` on this host);
//! `approvals-used.json` — owner approvals already used (each signs once).
//!
//! Both are read from disk on every check, so `mandate cosigner unfreeze` takes
//! effect on a running cosigner.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mandate_core::ErrorCode;
use mandate_mpc::net::Refusal;
use serde::{Deserialize, Serialize};

/// A freeze the daemon sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticedFreeze {
    /// When the daemon froze the wallet (an owner's unfreeze names it).
    pub frozen_at: u64,
    /// When this cosigner learnt of it (the cool-down counts from here).
    pub received_at: u64,
    /// Why, as given.
    pub reason: String,
}

/// The cosigner's notice files.
pub struct Notices {
    freezes: PathBuf,
    used: PathBuf,
    lock: Mutex<()>,
}

fn internal(message: String) -> Refusal {
    Refusal::new(ErrorCode::Internal, message)
}

fn load<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, Refusal> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| internal(format!("{} is corrupt: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(internal(format!("{}: {e}", path.display()))),
    }
}

fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), Refusal> {
    let text = serde_json::to_string_pretty(value).map_err(|e| internal(e.to_string()))?;
    crate::durable::write_durably(path, text.as_bytes()).map_err(|e| internal(format!("{}: {e}", path.display())))
}

impl Notices {
    /// The notice files in `dir` (the cosigner's home).
    pub fn new(dir: &Path) -> Self {
        Notices { freezes: dir.join("freezes.json"), used: dir.join("approvals-used.json"), lock: Mutex::new(()) }
    }

    fn guard(&self) -> Result<std::sync::MutexGuard<'_, ()>, Refusal> {
        self.lock.lock().map_err(|_| internal("notice lock poisoned".into()))
    }

    /// The daemon's freeze of `wallet`, if any.
    pub fn freeze_of(&self, wallet: &str) -> Result<Option<NoticedFreeze>, Refusal> {
        let _guard = self.guard()?;
        let freezes: BTreeMap<String, NoticedFreeze> = load(&self.freezes)?;
        Ok(freezes.get(wallet).cloned())
    }

    /// Records the daemon's freeze of `wallet` (a wallet frozen already keeps its
    /// first freeze).
    pub fn freeze(&self, wallet: &str, frozen_at: u64, reason: &str, now: u64) -> Result<NoticedFreeze, Refusal> {
        let _guard = self.guard()?;
        let mut freezes: BTreeMap<String, NoticedFreeze> = load(&self.freezes)?;
        let entry = freezes
            .entry(wallet.to_string())
            .or_insert_with(|| NoticedFreeze { frozen_at, received_at: now, reason: reason.to_string() })
            .clone();
        save(&self.freezes, &freezes)?;
        Ok(entry)
    }

    /// Lifts the daemon's freeze of `wallet` (or of every wallet with `None`).
    /// Returns how many were lifted.
    pub fn lift(&self, wallet: Option<&str>) -> Result<usize, Refusal> {
        let _guard = self.guard()?;
        let mut freezes: BTreeMap<String, NoticedFreeze> = load(&self.freezes)?;
        let before = freezes.len();
        match wallet {
            Some(wallet) => {
                freezes.remove(wallet);
            }
            None => freezes.clear(),
        }
        save(&self.freezes, &freezes)?;
        Ok(before - freezes.len())
    }

    /// Marks the approval `item` of `wallet` used; refuses one used before.
    /// Entries are kept until `expires_at` has passed (after which the approval
    /// is void anyway).
    pub fn use_approval(&self, wallet: &str, item: &str, expires_at: u64, now: u64) -> Result<(), Refusal> {
        let _guard = self.guard()?;
        let mut used: BTreeMap<String, u64> = load(&self.used)?;
        used.retain(|_, expiry| *expiry >= now);
        let key = format!("{wallet}/{item}");
        if used.contains_key(&key) {
            return Err(Refusal::new(
                ErrorCode::CosignerApprovalInvalid,
                format!("the owner approval for {item} was used already; an approval signs once"),
            ));
        }
        used.insert(key, expires_at);
        save(&self.used, &used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezes_persist_keep_the_first_and_lift() {
        let dir = tempfile::tempdir().unwrap();
        let notices = Notices::new(dir.path());
        assert_eq!(notices.freeze_of("wal_a").unwrap(), None);
        notices.freeze("wal_a", 100, "first", 105).unwrap();
        let again = notices.freeze("wal_a", 200, "second", 205).unwrap();
        assert_eq!((again.frozen_at, again.received_at, again.reason.as_str()), (100, 105, "first"));
        let reopened = Notices::new(dir.path());
        assert_eq!(reopened.freeze_of("wal_a").unwrap().unwrap().frozen_at, 100);
        notices.freeze("wal_b", 1, "", 1).unwrap();
        assert_eq!(reopened.lift(Some("wal_a")).unwrap(), 1);
        assert_eq!(notices.freeze_of("wal_a").unwrap(), None);
        assert_eq!(notices.lift(None).unwrap(), 1);
    }

    #[test]
    fn an_approval_is_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let notices = Notices::new(dir.path());
        notices.use_approval("wal_a", "tx_1", 1_000, 10).unwrap();
        let refusal = notices.use_approval("wal_a", "tx_1", 1_000, 11).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::CosignerApprovalInvalid);
        notices.use_approval("wal_b", "tx_1", 1_000, 11).unwrap();
        // A restarted cosigner remembers.
        assert!(Notices::new(dir.path()).use_approval("wal_a", "tx_1", 1_000, 12).is_err());
    }
}
