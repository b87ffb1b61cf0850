//! The spends a decision looks back on, kept in memory per wallet so that a
//! reservation does not read and parse every spend of its look-back window again
//! (before, a wallet's 24 h of spends were loaded on every send: the reservation grew
//! by about a microsecond per spend in the window, inside the write lock).
//!
//! Correctness does not rest on the daemon remembering to invalidate: every change to
//! a wallet's spends — an insert, a delete, an update of a column a [`Spend`] is made
//! of, in any process or replica — bumps the wallet's row in `spend_versions`, by
//! database triggers (migration 13). A window is used only when its version is the
//! version read in the caller's connection, inside the reservation's transaction for
//! a send; otherwise the window is read again. A window is labelled with the version
//! read *before* its rows, so a label is never newer than the rows it names.

use std::collections::HashMap;
use std::sync::Mutex;

use mandate_core::policy::Spend;

/// At most this many wallets' windows are kept; beyond it all are dropped (they are
/// read again on use).
const MAX_WALLETS: usize = 4096;

/// One spend of a window, its transaction and the actor who requested it.
#[derive(Clone)]
pub(crate) struct WindowSpend {
    pub(crate) tx_id: String,
    pub(crate) spend: Spend,
    pub(crate) requested_by: Option<String>,
}

/// A wallet's spends with `at >= floor`, as of `version`.
struct Window {
    version: i64,
    floor: u64,
    spends: Vec<WindowSpend>,
}

/// The windows of the wallets decided on recently.
#[derive(Default)]
pub(crate) struct SpendWindows {
    windows: Mutex<HashMap<String, Window>>,
}

/// A decision's look back: every spend of the wallet since a time, and those of them
/// one actor requested.
pub(crate) struct Seen {
    pub(crate) all: Vec<Spend>,
    pub(crate) own: Vec<Spend>,
}

/// The spends since `since`, and those of them `actor` requested (none for an empty actor).
pub(crate) fn select(spends: &[WindowSpend], actor: &str, since: u64) -> Seen {
    let (mut all, mut own) = (Vec::with_capacity(spends.len()), Vec::new());
    for entry in spends.iter().filter(|entry| entry.spend.at >= since) {
        if !actor.is_empty() && entry.requested_by.as_deref() == Some(actor) {
            own.push(entry.spend.clone());
        }
        all.push(entry.spend.clone());
    }
    Seen { all, own }
}

impl SpendWindows {
    /// The selection from `wallet`'s window if it is at `version` and reaches back
    /// to `since`; drops what fell out of the window.
    pub(crate) fn get(&self, wallet: &str, version: i64, actor: &str, since: u64) -> Option<Seen> {
        let mut windows = self.windows.lock().ok()?;
        let window = windows.get_mut(wallet).filter(|w| w.version == version && w.floor <= since)?;
        if since > window.floor {
            window.spends.retain(|entry| entry.spend.at >= since);
            window.floor = since;
        }
        Some(select(&window.spends, actor, since))
    }

    /// Keeps `spends` (every spend of `wallet` with `at >= floor`) as of `version`.
    pub(crate) fn put(&self, wallet: &str, version: i64, floor: u64, spends: Vec<WindowSpend>) {
        let Ok(mut windows) = self.windows.lock() else { return };
        if windows.len() >= MAX_WALLETS && !windows.contains_key(wallet) {
            windows.clear();
        }
        windows.insert(wallet.to_string(), Window { version, floor, spends });
    }

    /// After a committed reservation added `spend`, moving `wallet` from version
    /// `before` to `after` (its one change): the window follows if it was at
    /// `before`; any other window is dropped (read again on use). A window read
    /// outside the write lock may already hold the spend under the older label: it is
    /// not counted twice.
    pub(crate) fn added(&self, wallet: &str, before: i64, after: i64, spend: WindowSpend) {
        let Ok(mut windows) = self.windows.lock() else { return };
        match windows.get_mut(wallet) {
            Some(window) if window.version == before && after == before + 1 && spend.spend.at >= window.floor => {
                if !window.spends.iter().any(|known| known.tx_id == spend.tx_id) {
                    window.spends.push(spend);
                }
                window.version = after;
            }
            Some(_) => {
                windows.remove(wallet);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use mandate_core::policy::Asset;

    fn spend(at: u64, by: &str) -> WindowSpend {
        WindowSpend {
            tx_id: format!("tx_{at}"),
            spend: Spend {
                at,
                asset: Asset::Native,
                amount: U256::from(at),
                usd_micro: None,
                x402: false,
                chain_id: Some(1),
            },
            requested_by: Some(by.to_string()),
        }
    }

    #[test]
    fn a_window_is_used_only_at_its_version_and_reach() {
        let windows = SpendWindows::default();
        windows.put("w", 3, 100, vec![spend(100, "a"), spend(150, "b")]);
        // Another version (a change made elsewhere): read again.
        assert!(windows.get("w", 4, "", 100).is_none());
        // Asked to look further back than it was read: read again.
        assert!(windows.get("w", 3, "", 99).is_none());
        let Seen { all, own } = windows.get("w", 3, "b", 120).expect("window at its version");
        assert_eq!(all.iter().map(|s| s.at).collect::<Vec<_>>(), vec![150]);
        assert_eq!(own.len(), 1);
        // The part that fell out of the window is gone: it cannot reach back now.
        assert!(windows.get("w", 3, "", 100).is_none());
    }

    #[test]
    fn an_added_spend_follows_only_the_version_it_was_added_to() {
        let windows = SpendWindows::default();
        windows.put("w", 1, 0, vec![spend(10, "a")]);
        windows.added("w", 1, 2, spend(20, "a"));
        let Seen { all, own } = windows.get("w", 2, "a", 0).expect("followed");
        assert_eq!((all.len(), own.len()), (2, 2));
        // A jump of more than one version means another change came with it: dropped.
        windows.put("v", 1, 0, vec![spend(10, "a")]);
        windows.added("v", 1, 3, spend(20, "a"));
        assert!(windows.get("v", 3, "a", 0).is_none());
        // Already in the window (read after the reservation committed): counted once.
        windows.added("w", 2, 3, spend(20, "a"));
        assert_eq!(windows.get("w", 3, "a", 0).expect("followed").all.len(), 2);
        // Added to a version the window was not at (another writer came between): dropped.
        windows.added("w", 5, 6, spend(30, "a"));
        assert!(windows.get("w", 2, "a", 0).is_none());
        assert!(windows.get("w", 6, "a", 0).is_none());
    }
}
