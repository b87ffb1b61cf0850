//! What the cosigner has signed in the last 24 hours, per wallet and chain.
//!
//! A signing run reserves its worst-case cost when the cosigner accepts it (the
//! daily maximum is checked there, against committed and reserved amounts), then
//! *commits* it durably just before the cosigner sends the round-3 message that
//! lets the other signer finish the signature on its own. From that point the
//! signature must be assumed to exist: a committed amount is never released, even
//! if the run then fails (a daemon that withholds its own last message and hangs up
//! has the signature). A reservation that never reached its commit is released.
//!
//! The window is rolling: an amount counts for exactly 24 hours from its commit.
//! Reservations live in memory only (a restarted cosigner has no run in flight).
//! A commit is one line appended to `ledger.journal` and fsynced before the message
//! leaves (a constant cost, whatever the day's volume); every
//! [`COMPACT_AFTER`] commits the window is written to `ledger.json` (durably, through
//! a temporary file) and the journal emptied. Opening reads `ledger.json`, then the
//! journal's complete lines, skipping a run already in the snapshot (a crash between
//! the two steps of a compaction counts nothing twice). A last line without its
//! newline is a write that never returned, so its run never sent the message: it is
//! ignored. Any other unreadable line refuses the start.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy_primitives::{Address, U256};
use mandate_core::{ErrorCode, WalletId};
use mandate_mpc::net::Refusal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::durable::write_durably;

/// Length of the rolling window, in seconds.
pub const WINDOW_SECS: u64 = 86_400;

/// Version of the ledger file. 3: commits since the last compaction are in
/// `ledger.journal` (a cosigner that does not know it must not start on the file, so
/// opening an older file writes it again as version 3); x402 token totals.
const LEDGER_VERSION: u8 = 3;

/// Commits appended to the journal before the window is written to `ledger.json`
/// and the journal emptied.
pub(crate) const COMPACT_AFTER: usize = 512;

/// Chain id 0 holds amounts imported from the version-1 (per-UTC-day) ledger,
/// which did not record the chain: they count against every chain.
const ANY_CHAIN: u64 = 0;

/// One committed amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Committed {
    /// Unix seconds of the commit.
    at: u64,
    /// Worst-case cost in wei.
    amount: U256,
    /// The run's session id (hex), for the record.
    session: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    version: u8,
    /// wallet id → chain id → committed amounts (wei), oldest first.
    wallets: BTreeMap<String, BTreeMap<u64, Vec<Committed>>>,
    /// wallet id → [`token_key`] → committed token amounts (x402 payments, in the
    /// token's base units), oldest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tokens: BTreeMap<String, BTreeMap<String, Vec<Committed>>>,
}

/// The key of a token's amounts on a chain: `<token address, lowercase>@<chain id>`.
fn token_key(token: &Address, chain_id: u64) -> String {
    format!("{token:#x}@{chain_id}")
}

/// One line of `ledger.journal`: a commit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalLine {
    wallet: String,
    chain_id: u64,
    /// The token of an x402 payment (`None`: wei of a transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<Address>,
    at: u64,
    amount: U256,
    session: String,
}

impl JournalLine {
    fn committed(&self) -> Committed {
        Committed { at: self.at, amount: self.amount, session: self.session.clone() }
    }
}

/// The version-1 file: one UTC day per wallet.
#[derive(Deserialize)]
struct LegacyDay {
    day: u64,
    committed: U256,
}

#[derive(Debug, Clone)]
struct Reservation {
    wallet: WalletId,
    chain_id: u64,
    /// The token of an x402 payment (`None`: wei of a transaction).
    token: Option<Address>,
    amount: U256,
}

struct State {
    file: LedgerFile,
    reserved: BTreeMap<String, Reservation>,
    /// Commits in the journal since the last compaction.
    journal_lines: usize,
    /// The runs of every commit in `file`: a run id is committed once. (Replay skips a
    /// journal line whose run is in the snapshot; were a run id reused, a restart
    /// would forget the second commit.)
    committed_sessions: BTreeSet<String>,
    /// Whether the journal's directory entry is known to be on disk.
    directory_synced: bool,
}

/// An x402 payment to count: `amount` base units of `token` from `wallet` on `chain_id`.
pub struct TokenPayment<'a> {
    /// The paying wallet.
    pub wallet: &'a WalletId,
    /// The chain the token is on.
    pub chain_id: u64,
    /// The token contract.
    pub token: Address,
    /// Base units.
    pub amount: U256,
}

/// The spend ledger.
pub struct SpendLedger {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

fn internal(message: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::Internal, message)
}

fn parse_file(text: &str) -> Result<LedgerFile, Refusal> {
    if let Ok(mut file) = serde_json::from_str::<LedgerFile>(text) {
        // Version 2 is version 3 without a journal or token totals.
        if file.version != LEDGER_VERSION && file.version != 2 {
            return Err(internal(format!("ledger version {} is not supported", file.version)));
        }
        file.version = LEDGER_VERSION;
        return Ok(file);
    }
    // Version 1: {wallet: {day, committed, reserved}}. Its committed total counts
    // until the end of its UTC day plus a full window (never less than before).
    let legacy: BTreeMap<String, LegacyDay> =
        serde_json::from_str(text).map_err(|e| internal(format!("ledger is corrupt: {e}")))?;
    let mut file = LedgerFile { version: LEDGER_VERSION, ..LedgerFile::default() };
    for (wallet, day) in legacy {
        let at = day.day.saturating_add(1).saturating_mul(WINDOW_SECS).saturating_sub(1);
        let entry = Committed { at, amount: day.committed, session: "ledger-v1".into() };
        file.wallets.entry(wallet).or_default().insert(ANY_CHAIN, vec![entry]);
    }
    Ok(file)
}

/// Writes `file` to `ledger.json` durably, then empties the journal (whose commits
/// it holds; a crash between the two leaves them in both, and replay skips them).
fn write_snapshot(path: &Path, file: &LedgerFile) -> Result<(), Refusal> {
    let text = serde_json::to_vec(file).map_err(|e| internal(e.to_string()))?;
    write_durably(path, &text).map_err(|e| internal(format!("ledger: {e}")))?;
    let journal_file = journal_path(path);
    if journal_file.exists() {
        let journal = std::fs::File::create(&journal_file).map_err(|e| internal(format!("ledger journal: {e}")))?;
        journal.sync_all().map_err(|e| internal(format!("ledger journal: {e}")))?;
    }
    Ok(())
}

/// The journal beside `ledger.json`.
fn journal_path(ledger: &Path) -> PathBuf {
    ledger.with_extension("journal")
}

/// Adds the journal's commits to `file` (skipping runs already there); returns how
/// many lines it holds.
fn replay_journal(path: &Path, file: &mut LedgerFile) -> Result<usize, Refusal> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(internal(format!("ledger journal: {e}"))),
    };
    let known = file.sessions();
    // Only lines ending in a newline were written whole (see the module's notes). The
    // torn rest is cut off, so that the next line starts on a line of its own.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |last| last + 1);
    if complete < bytes.len() {
        let journal = std::fs::OpenOptions::new().write(true).open(path);
        journal
            .and_then(|journal| journal.set_len(complete as u64).and_then(|()| journal.sync_all()))
            .map_err(|e| internal(format!("ledger journal: cutting off a torn last line: {e}")))?;
    }
    let mut lines = 0;
    for (number, line) in bytes.get(..complete).unwrap_or_default().split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let entry: JournalLine = serde_json::from_slice(line)
            .map_err(|e| internal(format!("ledger journal line {} is corrupt: {e}", number + 1)))?;
        lines += 1;
        if known.contains(&entry.session) {
            continue;
        }
        file.add(&entry);
    }
    Ok(lines)
}

/// Appends `line` to the journal and fsyncs it, and its directory until that has
/// succeeded once (`directory_synced`). A failed write is cut off again, so the next
/// line starts clean.
fn append_durably(path: &Path, line: &JournalLine, directory_synced: &mut bool) -> Result<(), Refusal> {
    let mut text = serde_json::to_vec(line).map_err(|e| internal(e.to_string()))?;
    text.push(b'\n');
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| internal(format!("ledger journal: {e}")))?;
    let before = journal.metadata().map_err(|e| internal(format!("ledger journal: {e}")))?.len();
    if let Err(e) = journal.write_all(&text).and_then(|()| journal.sync_data()) {
        let _ = journal.set_len(before);
        return Err(internal(format!("ledger journal: {e}")));
    }
    if !*directory_synced {
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| internal(format!("ledger journal directory: {e}")))?;
        }
        *directory_synced = true;
    }
    Ok(())
}

impl LedgerFile {
    /// The runs of every commit held.
    fn sessions(&self) -> BTreeSet<String> {
        let wei = self.wallets.values().flat_map(|chains| chains.values()).flatten();
        let tokens = self.tokens.values().flat_map(|keys| keys.values()).flatten();
        wei.chain(tokens).map(|entry| entry.session.clone()).collect()
    }

    /// Adds a journal line's commit where it counts.
    fn add(&mut self, line: &JournalLine) {
        let committed = line.committed();
        match &line.token {
            None => {
                self.wallets.entry(line.wallet.clone()).or_default().entry(line.chain_id).or_default().push(committed)
            }
            Some(token) => self
                .tokens
                .entry(line.wallet.clone())
                .or_default()
                .entry(token_key(token, line.chain_id))
                .or_default()
                .push(committed),
        }
    }
}

impl State {
    /// Committed in the window ending at `now` plus reserved, for `wallet` on `chain_id`.
    fn total(&self, wallet: &WalletId, chain_id: u64, now: u64) -> U256 {
        let since = now.saturating_sub(WINDOW_SECS);
        let chains = self.file.wallets.get(wallet.as_str());
        let buckets: &[u64] = if chain_id == ANY_CHAIN { &[ANY_CHAIN] } else { &[chain_id, ANY_CHAIN] };
        let committed = buckets
            .iter()
            .filter_map(|chain| chains.and_then(|chains| chains.get(chain)))
            .flatten()
            .filter(|entry| entry.at > since)
            .fold(U256::ZERO, |sum, entry| sum.saturating_add(entry.amount));
        self.reserved
            .values()
            .filter(|r| &r.wallet == wallet && r.chain_id == chain_id && r.token.is_none())
            .fold(committed, |sum, r| sum.saturating_add(r.amount))
    }

    /// Committed in the window ending at `now` plus reserved, for `wallet` in `token`
    /// on `chain_id` (x402 payments, base units).
    fn token_total(&self, wallet: &WalletId, token: &Address, chain_id: u64, now: u64) -> U256 {
        let since = now.saturating_sub(WINDOW_SECS);
        let committed = self
            .file
            .tokens
            .get(wallet.as_str())
            .and_then(|keys| keys.get(&token_key(token, chain_id)))
            .into_iter()
            .flatten()
            .filter(|entry| entry.at > since)
            .fold(U256::ZERO, |sum, entry| sum.saturating_add(entry.amount));
        self.reserved
            .values()
            .filter(|r| &r.wallet == wallet && r.chain_id == chain_id && r.token.as_ref() == Some(token))
            .fold(committed, |sum, r| sum.saturating_add(r.amount))
    }
}

impl SpendLedger {
    /// Loads the ledger (`ledger.json` and its journal; or starts empty); `None`
    /// keeps it in memory only.
    pub fn open(path: Option<PathBuf>) -> Result<Self, Refusal> {
        let (mut file, current) = match &path {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).map_err(|e| internal(format!("ledger: {e}")))?;
                let current = serde_json::from_str::<Value>(&text)
                    .is_ok_and(|value| value.get("version").and_then(Value::as_u64) == Some(LEDGER_VERSION.into()));
                (parse_file(&text)?, current)
            }
            _ => (LedgerFile { version: LEDGER_VERSION, ..LedgerFile::default() }, false),
        };
        let mut journal_lines = match &path {
            Some(path) => replay_journal(&journal_path(path), &mut file)?,
            None => 0,
        };
        if let (Some(path), false) = (&path, current) {
            // No file, or an older one: written as version 3 now (with what the
            // journal added), so that an older cosigner refuses it instead of
            // starting without the journal.
            write_snapshot(path, &file)?;
            journal_lines = 0;
        }
        let committed_sessions = file.sessions();
        let state =
            State { file, reserved: BTreeMap::new(), journal_lines, committed_sessions, directory_synced: false };
        Ok(SpendLedger { path, state: Mutex::new(state) })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, Refusal> {
        self.state.lock().map_err(|_| internal("ledger lock"))
    }

    /// Reserves `amount` for run `session` if the wallet's total on `chain_id` over
    /// the 24 hours ending at `now` stays within `daily_max`.
    pub fn reserve(
        &self,
        wallet: &WalletId,
        chain_id: u64,
        session: &str,
        amount: U256,
        daily_max: U256,
        now: u64,
    ) -> Result<(), Refusal> {
        let reservation = Reservation { wallet: wallet.clone(), chain_id, token: None, amount };
        self.reserve_within(session, reservation, daily_max, now)
    }

    /// Reserves `payment` for run `session` if the wallet's x402 payments in that
    /// token on that chain over the 24 hours ending at `now` stay within `daily_max`.
    pub fn reserve_token(
        &self,
        session: &str,
        payment: TokenPayment<'_>,
        daily_max: U256,
        now: u64,
    ) -> Result<(), Refusal> {
        let TokenPayment { wallet, chain_id, token, amount } = payment;
        let reservation = Reservation { wallet: wallet.clone(), chain_id, token: Some(token), amount };
        self.reserve_within(session, reservation, daily_max, now)
    }

    fn reserve_within(
        &self,
        session: &str,
        reservation: Reservation,
        daily_max: U256,
        now: u64,
    ) -> Result<(), Refusal> {
        let mut state = self.lock()?;
        if state.reserved.contains_key(session) {
            return Err(Refusal::new(ErrorCode::SessionReused, "this run already holds a reservation"));
        }
        if state.committed_sessions.contains(session) {
            return Err(Refusal::new(ErrorCode::SessionReused, "this run id was committed before"));
        }
        let Reservation { wallet, chain_id, token, amount } = &reservation;
        let before = match token {
            None => state.total(wallet, *chain_id, now),
            Some(token) => state.token_total(wallet, token, *chain_id, now),
        };
        let after = before.saturating_add(*amount);
        if after > daily_max {
            let (kind, unit) = match token {
                None => ("the total", "wei".to_string()),
                Some(token) => ("x402 payments", format!("base units of {token}")),
            };
            return Err(Refusal::new(
                ErrorCode::CosignerDailyLimit,
                format!(
                    "{wallet}: {kind} over the last 24 hours on chain {chain_id} would be {after} {unit}, \
                     above the cosigner daily maximum {daily_max}"
                ),
            ));
        }
        state.reserved.insert(session.to_string(), reservation);
        Ok(())
    }

    /// Makes run `session`'s reservation permanent and durable (fsynced) before the
    /// message that completes the signature leaves. A run without a reservation
    /// (an off-chain payload) commits nothing.
    pub fn commit(&self, session: &str, now: u64) -> Result<(), Refusal> {
        let mut state = self.lock()?;
        let Some(reservation) = state.reserved.get(session).cloned() else { return Ok(()) };
        let line = JournalLine {
            wallet: reservation.wallet.to_string(),
            chain_id: reservation.chain_id,
            token: reservation.token,
            at: now,
            amount: reservation.amount,
            session: session.to_string(),
        };
        if let Some(path) = &self.path {
            append_durably(&journal_path(path), &line, &mut state.directory_synced)?;
        }
        state.file.add(&line);
        state.committed_sessions.insert(line.session.clone());
        state.reserved.remove(session);
        state.journal_lines += 1;
        if state.journal_lines >= COMPACT_AFTER {
            // The commit above is durable already: a failed compaction costs only time.
            if let Err(refusal) = self.compact(&mut state, now) {
                tracing::warn!("cosigner ledger compaction failed (the journal keeps growing): {}", refusal.message);
            }
        }
        Ok(())
    }

    /// Drops what left the window, writes the rest to `ledger.json` durably, then
    /// empties the journal.
    fn compact(&self, state: &mut State, now: u64) -> Result<(), Refusal> {
        let since = now.saturating_sub(WINDOW_SECS);
        for chains in state.file.wallets.values_mut() {
            for entries in chains.values_mut() {
                entries.retain(|entry| entry.at > since);
            }
            chains.retain(|_, entries| !entries.is_empty());
        }
        state.file.wallets.retain(|_, chains| !chains.is_empty());
        for keys in state.file.tokens.values_mut() {
            for entries in keys.values_mut() {
                entries.retain(|entry| entry.at > since);
            }
            keys.retain(|_, entries| !entries.is_empty());
        }
        state.file.tokens.retain(|_, keys| !keys.is_empty());
        state.committed_sessions = state.file.sessions();
        let Some(path) = &self.path else { return Ok(()) };
        write_snapshot(path, &state.file)?;
        state.journal_lines = 0;
        Ok(())
    }

    /// Drops a reservation that was never committed (the run ended before this
    /// party's last message). A committed amount stays.
    pub fn release(&self, session: &str) -> Result<(), Refusal> {
        self.lock()?.reserved.remove(session);
        Ok(())
    }

    /// Committed in the 24 hours ending at `now`, plus reserved, for `wallet` on `chain_id`.
    pub fn total(&self, wallet: &WalletId, chain_id: u64, now: u64) -> U256 {
        self.lock().map(|state| state.total(wallet, chain_id, now)).unwrap_or(U256::MAX)
    }

    /// The same for `wallet`'s x402 payments in `token` (base units).
    pub fn token_total(&self, wallet: &WalletId, token: &Address, chain_id: u64, now: u64) -> U256 {
        self.lock().map(|state| state.token_total(wallet, token, chain_id, now)).unwrap_or(U256::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u64 = 100;

    proptest! {
        /// Whatever the order of reserve / commit / release and however time moves,
        /// the total over any 24-hour window never exceeds the maximum, and a
        /// committed amount is never taken back by a release.
        #[test]
        fn never_exceeds_the_maximum_in_any_window(
            ops in proptest::collection::vec((0u8..3, 1u64..50, 0u64..30_000, 0u8..4), 1..80)
        ) {
            let ledger = SpendLedger::open(None).unwrap();
            let wallet = WalletId::from_random([4; 12]);
            let mut now = 1_000_000;
            let mut committed: Vec<(u64, u64)> = Vec::new();
            for (op, amount, advance, run) in ops {
                now += advance;
                let session = format!("s{run}");
                match op {
                    0 => { let _ = ledger.reserve(&wallet, 1, &session, U256::from(amount), U256::from(MAX), now); }
                    1 => {
                        let before = ledger.lock().unwrap().reserved.get(&session).map(|r| r.amount);
                        ledger.commit(&session, now).unwrap();
                        if let Some(amount) = before { committed.push((now, amount.to::<u64>())); }
                    }
                    _ => { ledger.release(&session).unwrap(); }
                }
                prop_assert!(ledger.total(&wallet, 1, now) <= U256::from(MAX));
                let in_window: u64 = committed.iter().filter(|(at, _)| *at > now - WINDOW_SECS).map(|(_, a)| a).sum();
                prop_assert!(in_window <= MAX);
                prop_assert!(ledger.total(&wallet, 1, now) >= U256::from(in_window));
            }
        }
    }

    #[test]
    fn the_window_rolls_instead_of_resetting_at_midnight() {
        let ledger = SpendLedger::open(None).unwrap();
        let wallet = WalletId::from_random([4; 12]);
        let max = U256::from(MAX);
        // 23:59 UTC: 80 committed. At 00:01 the next day a UTC-day ledger would allow
        // another 100; the rolling window allows 20 until 23:59 the next day.
        let before_midnight = 20_000 * WINDOW_SECS - 60;
        ledger.reserve(&wallet, 1, "a", U256::from(80u64), max, before_midnight).unwrap();
        ledger.commit("a", before_midnight).unwrap();
        let after_midnight = before_midnight + 120;
        let err = ledger.reserve(&wallet, 1, "b", U256::from(30u64), max, after_midnight).unwrap_err();
        assert_eq!(err.code, ErrorCode::CosignerDailyLimit);
        ledger.reserve(&wallet, 1, "c", U256::from(20u64), max, after_midnight).unwrap();
        ledger.release("c").unwrap();
        ledger.reserve(&wallet, 1, "d", U256::from(100u64), max, before_midnight + WINDOW_SECS).unwrap();
    }

    #[test]
    fn chains_are_counted_apart_and_a_commit_survives_a_restart_and_a_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let wallet = WalletId::from_random([4; 12]);
        let max = U256::from(MAX);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        ledger.reserve(&wallet, 1, "a", U256::from(60u64), max, 500_000).unwrap();
        ledger.commit("a", 500_000).unwrap();
        ledger.release("a").unwrap();
        assert_eq!(ledger.total(&wallet, 1, 500_001), U256::from(60u64), "a release never undoes a commit");
        ledger.reserve(&wallet, 8453, "b", U256::from(90u64), max, 500_000).unwrap();
        drop(ledger);
        let ledger = SpendLedger::open(Some(path)).unwrap();
        assert_eq!(ledger.total(&wallet, 8453, 500_001), U256::ZERO, "reservations do not survive a restart");
        let err = ledger.reserve(&wallet, 1, "c", U256::from(50u64), max, 500_010).unwrap_err();
        assert_eq!(err.code, ErrorCode::CosignerDailyLimit);
        ledger.reserve(&wallet, 8453, "c", U256::from(50u64), max, 500_010).unwrap();
    }

    #[test]
    fn a_reservation_counts_only_for_its_own_wallet_and_chain() {
        let ledger = SpendLedger::open(None).unwrap();
        let (wallet, other) = (WalletId::from_random([4; 12]), WalletId::from_random([5; 12]));
        ledger.reserve(&wallet, 1, "a", U256::from(70u64), U256::from(MAX), 1_000).unwrap();
        assert_eq!(ledger.total(&wallet, 1, 1_000), U256::from(70u64));
        assert_eq!(ledger.total(&other, 1, 1_000), U256::ZERO, "another wallet on the same chain");
        assert_eq!(ledger.total(&wallet, 10, 1_000), U256::ZERO, "the same wallet on another chain");
        ledger.reserve(&other, 1, "b", U256::from(MAX), U256::from(MAX), 1_000).unwrap();
        ledger.reserve(&wallet, 10, "c", U256::from(MAX), U256::from(MAX), 1_000).unwrap();
    }

    #[test]
    fn a_compaction_keeps_the_window_and_drops_what_left_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let wallet = WalletId::from_random([4; 12]);
        let max = U256::from(u64::MAX);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        let start = 1_000_000;
        ledger.reserve(&wallet, 1, "first", U256::from(10u64), max, start).unwrap();
        ledger.commit("first", start).unwrap();
        // Exactly 24 hours later the first amount no longer counts; the commit that
        // fills the journal writes the window out without it.
        let later = start + WINDOW_SECS;
        assert_eq!(ledger.total(&wallet, 1, later), U256::ZERO);
        for n in 1..COMPACT_AFTER {
            let session = format!("s{n}");
            ledger.reserve(&wallet, 1, &session, U256::from(2u64), max, later).unwrap();
            ledger.commit(&session, later).unwrap();
        }
        assert_eq!(std::fs::read(journal_path(&path)).unwrap(), b"", "the journal was emptied");
        let file = parse_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let entries = &file.wallets[wallet.as_str()][&1];
        assert_eq!(entries.len(), COMPACT_AFTER - 1);
        assert!(entries.iter().all(|e| e.at == later && e.session != "first"));
        drop(ledger);
        let ledger = SpendLedger::open(Some(path)).unwrap();
        assert_eq!(ledger.total(&wallet, 1, later), U256::from(2 * (COMPACT_AFTER as u64 - 1)));
    }

    #[test]
    fn the_journal_is_replayed_once_a_torn_last_line_is_ignored_and_a_corrupt_line_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let wallet = WalletId::from_random([4; 12]);
        let max = U256::from(MAX);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        for (session, amount) in [("a", 30u64), ("b", 40)] {
            ledger.reserve(&wallet, 1, session, U256::from(amount), max, 500_000).unwrap();
            ledger.commit(session, 500_000).unwrap();
        }
        drop(ledger);
        let journal = std::fs::read(journal_path(&path)).unwrap();

        // A crash between a compaction's two steps: the snapshot holds "a" and the
        // journal still holds both. "a" counts once.
        let mut snapshot = LedgerFile { version: LEDGER_VERSION, ..LedgerFile::default() };
        let entry = Committed { at: 500_000, amount: U256::from(30u64), session: "a".into() };
        snapshot.wallets.entry(wallet.to_string()).or_default().insert(1, vec![entry]);
        std::fs::write(&path, serde_json::to_vec(&snapshot).unwrap()).unwrap();
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        assert_eq!(ledger.total(&wallet, 1, 500_001), U256::from(70u64));
        drop(ledger);

        // A write cut short (no newline: its fsync never returned, nothing was sent).
        let mut torn = journal.clone();
        torn.extend_from_slice(br#"{"wallet":"x","chain_id":1,"at":5"#);
        std::fs::write(journal_path(&path), &torn).unwrap();
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        assert_eq!(ledger.total(&wallet, 1, 500_001), U256::from(70u64));
        assert_eq!(std::fs::read(journal_path(&path)).unwrap(), journal, "the torn rest was cut off");
        // The next commit starts on its own line: the restart after it reads it.
        ledger.reserve(&wallet, 1, "c", U256::from(10u64), max, 500_002).unwrap();
        ledger.commit("c", 500_002).unwrap();
        drop(ledger);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        assert_eq!(ledger.total(&wallet, 1, 500_003), U256::from(80u64));
        drop(ledger);
        std::fs::write(journal_path(&path), &journal).unwrap();

        // A damaged line before the last: the cosigner does not start on a guess.
        let mut corrupt = b"{not json}\n".to_vec();
        corrupt.extend_from_slice(&journal);
        std::fs::write(journal_path(&path), &corrupt).unwrap();
        let refusal = SpendLedger::open(Some(path)).err().expect("a corrupt journal refuses the start");
        assert!(refusal.message.contains("line 1"), "{}", refusal.message);
    }

    #[test]
    fn an_unreadable_journal_refuses_the_start_and_its_lines_count_toward_the_next_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        drop(SpendLedger::open(Some(path.clone())).unwrap()); // writes a current ledger.json
        std::fs::create_dir(journal_path(&path)).unwrap();
        assert!(SpendLedger::open(Some(path.clone())).is_err(), "a journal that cannot be read is not an empty one");
        std::fs::remove_dir(journal_path(&path)).unwrap();
        let wallet = WalletId::from_random([4; 12]);
        let max = U256::from(u64::MAX);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        for n in 0..COMPACT_AFTER - 1 {
            let session = format!("s{n}");
            ledger.reserve(&wallet, 1, &session, U256::from(1u64), max, 1_000).unwrap();
            ledger.commit(&session, 1_000).unwrap();
        }
        drop(ledger);
        // Reopened with 511 lines in the journal: the next commit compacts.
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        ledger.reserve(&wallet, 1, "last", U256::from(1u64), max, 1_000).unwrap();
        ledger.commit("last", 1_000).unwrap();
        assert_eq!(std::fs::read(journal_path(&path)).unwrap(), b"", "compacted");
        assert_eq!(ledger.total(&wallet, 1, 1_000), U256::from(COMPACT_AFTER as u64));
    }

    #[test]
    fn a_committed_run_id_is_never_reserved_again_even_after_a_compaction_and_a_restart() {
        // Replay skips a journal line whose run is in the snapshot: a run id used twice
        // would make a restart forget the second commit. So it is refused.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let wallet = WalletId::from_random([4; 12]);
        let max = U256::from(u64::MAX);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        ledger.reserve(&wallet, 1, "s", U256::from(5u64), max, 1_000).unwrap();
        ledger.commit("s", 1_000).unwrap();
        let mut state = ledger.lock().unwrap();
        ledger.compact(&mut state, 1_000).unwrap();
        drop(state);
        let again = ledger.reserve(&wallet, 1, "s", U256::from(900u64), max, 1_001).unwrap_err();
        assert_eq!(again.code, ErrorCode::SessionReused);
        drop(ledger);
        let ledger = SpendLedger::open(Some(path)).unwrap();
        let again = ledger.reserve(&wallet, 1, "s", U256::from(900u64), max, 1_002).unwrap_err();
        assert_eq!(again.code, ErrorCode::SessionReused, "{}", again.message);
        assert_eq!(ledger.total(&wallet, 1, 1_002), U256::from(5u64));
    }

    #[test]
    fn x402_payments_count_per_token_and_chain_apart_from_wei_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let wallet = WalletId::from_random([4; 12]);
        let (usdc, other) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let max = U256::from(MAX);
        let pay = |token: Address, chain_id: u64, amount: u64| TokenPayment {
            wallet: &wallet,
            chain_id,
            token,
            amount: U256::from(amount),
        };
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        ledger.reserve_token("a", pay(usdc, 1, 70), max, 500_000).unwrap();
        ledger.commit("a", 500_000).unwrap();
        let over = ledger.reserve_token("b", pay(usdc, 1, 40), max, 500_000).unwrap_err();
        assert_eq!(over.code, ErrorCode::CosignerDailyLimit);
        // Another token, the same token on another chain, and wei: each its own total.
        ledger.reserve_token("c", pay(other, 1, 100), max, 500_000).unwrap();
        ledger.reserve_token("d", pay(usdc, 8453, 100), max, 500_000).unwrap();
        ledger.reserve(&wallet, 1, "e", U256::from(100u64), max, 500_000).unwrap();
        let other_wallet = WalletId::from_random([5; 12]);
        let elsewhere = TokenPayment { wallet: &other_wallet, chain_id: 1, token: usdc, amount: U256::from(100u64) };
        ledger.reserve_token("f", elsewhere, max, 500_000).unwrap();
        assert_eq!(
            ledger.token_total(&wallet, &usdc, 1, 500_000),
            U256::from(70u64),
            "only its own wallet, token and chain"
        );
        assert_eq!(ledger.total(&wallet, 1, 500_000), U256::from(100u64), "wei apart from tokens");
        assert!(ledger.lock().unwrap().directory_synced, "the journal's directory was synced");
        drop(ledger);
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        assert_eq!(ledger.token_total(&wallet, &usdc, 1, 500_001), U256::from(70u64), "committed, from the journal");
        assert_eq!(ledger.token_total(&wallet, &other, 1, 500_001), U256::ZERO, "reservations do not survive");
        assert_eq!(ledger.total(&wallet, 1, 500_001), U256::ZERO);
        // A compaction keeps it; 24 hours later it no longer counts.
        let mut state = ledger.lock().unwrap();
        ledger.compact(&mut state, 500_001).unwrap();
        drop(state);
        drop(ledger);
        let ledger = SpendLedger::open(Some(path)).unwrap();
        assert_eq!(ledger.token_total(&wallet, &usdc, 1, 500_001), U256::from(70u64), "from ledger.json");
        assert_eq!(ledger.token_total(&wallet, &usdc, 1, 500_000 + WINDOW_SECS), U256::ZERO);
        // Compacted exactly 24 hours after the commit, it is not kept.
        let mut state = ledger.lock().unwrap();
        ledger.compact(&mut state, 500_000 + WINDOW_SECS).unwrap();
        assert!(state.file.tokens.is_empty(), "{:?}", state.file.tokens);
    }

    #[test]
    fn a_version_two_ledger_is_read_and_written_again_as_version_three() {
        // Version 3 keeps recent commits in the journal: a cosigner that knows only
        // version 2 must refuse the file rather than start without them.
        let wallet = WalletId::from_random([4; 12]);
        let text = format!(
            r#"{{"version":2,"wallets":{{"{wallet}":{{"1":[{{"at":500000,"amount":"0x50","session":"old"}}]}}}}}}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        std::fs::write(&path, text).unwrap();
        let ledger = SpendLedger::open(Some(path.clone())).unwrap();
        assert_eq!(ledger.total(&wallet, 1, 500_001), U256::from(0x50u64));
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written["version"], 3, "{written}");
        std::fs::write(&path, r#"{"version":4,"wallets":{}}"#).unwrap();
        assert!(SpendLedger::open(Some(path)).is_err(), "a newer version is refused");
    }

    #[test]
    fn a_version_one_ledger_keeps_counting_against_every_chain() {
        let wallet = WalletId::from_random([4; 12]);
        let text = format!(r#"{{"{wallet}":{{"day":5,"committed":"0x50","reserved":{{}}}}}}"#);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        std::fs::write(&path, text).unwrap();
        drop(SpendLedger::open(Some(path.clone())).unwrap());
        // Written again as the current version at the first open: it opens again.
        let ledger = SpendLedger::open(Some(path)).unwrap();
        let noon = 5 * WINDOW_SECS + WINDOW_SECS / 2;
        assert_eq!(ledger.total(&wallet, 1, noon), U256::from(0x50u64));
        assert_eq!(ledger.total(&wallet, 10, noon), U256::from(0x50u64));
        assert_eq!(ledger.total(&wallet, 1, 7 * WINDOW_SECS), U256::ZERO);
    }
}
