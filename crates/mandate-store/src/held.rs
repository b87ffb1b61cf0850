//! Held transactions (approval and delay tiers), wallet owners and unfreezing.
//!
//! A held transaction keeps its spend reserved from the moment the policy decided,
//! so caps count it, but takes a nonce only when it is claimed to run. Every state
//! change happens in one database transaction with its audit record.

use crate::db::{params, Conn, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::audit::AuditEntry;
use crate::store::{i, u, FreezeRecord, Result, Store, StoreError, TxRecord, TxStatus};

/// An owner of a wallet: who may approve its held transactions and lift its freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerRecord {
    /// The wallet.
    pub wallet_id: String,
    /// `ed25519:<hex>` or `evm:0x…`.
    pub owner_key: String,
    /// A name for people.
    pub label: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// What became of an owner's decision on a held transaction.
#[derive(Debug)]
pub enum Resolution {
    /// Recorded: the transaction as it now is (`approved` or `denied`).
    Resolved(TxRecord),
    /// The transaction is not waiting for an approval (its current state).
    NotPending(TxRecord),
    /// Its approval window had closed: it is now `expired`.
    Expired(TxRecord),
}

/// What a caller made of one more owner signature on a held item (an approval
/// or an unfreeze): the signatures collected so far (JSON) and whether they meet
/// the wallet's quorum. The store keeps the text; the caller verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStep {
    /// Every signature collected, with the new one.
    pub collected: String,
    /// The quorum is met: the item is decided.
    pub complete: bool,
}

/// What [`Store::claim_held`] found.
#[derive(Debug)]
pub enum Claim {
    /// Claimed to run now: `reserved`, with a nonce.
    Claimed(Box<TxRecord>),
    /// The wallet is frozen: the transaction stays held.
    Frozen(FreezeRecord),
    /// Not due (any more): another executor claimed it, it was cancelled (also now,
    /// because the session that requested it was revoked), or its delay has not passed.
    NotDue,
}

/// The audit entry of a held transaction cancelled because its session was revoked.
fn revoked_entry(tx: &TxRecord) -> AuditEntry {
    AuditEntry {
        actor: "daemon".into(),
        event: "transaction.cancelled".into(),
        wallet: Some(tx.wallet_id.clone()),
        decision: None,
        policy_hash: None,
        details: serde_json::json!({"tx_id": tx.id, "reason": "its session was revoked"}),
        events: Vec::new(),
    }
}

const HELD: &str = "('pending_approval', 'delayed', 'approved')";

impl Store {
    /// Adds an owner to a wallet (audited). Returns false if it was one already.
    pub fn add_owner(&self, owner: &OwnerRecord, entry: AuditEntry) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let added = tx.execute(
            "INSERT INTO owners (wallet_id, owner_key, label, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![owner.wallet_id, owner.owner_key, owner.label, i(owner.created_at)],
        )?;
        if added > 0 {
            Self::append_audit(&tx, self.audit_path(), entry, owner.created_at)?;
        }
        tx.commit()?;
        Ok(added > 0)
    }

    /// A wallet's owners.
    pub fn owners(&self, wallet: &str) -> Result<Vec<OwnerRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT wallet_id, owner_key, label, created_at FROM owners WHERE wallet_id = ?1 ORDER BY created_at, owner_key",
        )?;
        let rows = stmt.query_map([wallet], |r| {
            Ok(OwnerRecord { wallet_id: r.get(0)?, owner_key: r.get(1)?, label: r.get(2)?, created_at: u(r.get(3)?) })
        })?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Held transactions (waiting for approval, delayed, or approved and about to
    /// run), oldest first; of one wallet or all.
    pub fn held(&self, wallet: Option<&str>) -> Result<Vec<TxRecord>> {
        let conn = self.conn()?;
        let mut ids: Vec<String> = Vec::new();
        let mut stmt = conn.prepare(&format!(
            "SELECT id FROM transactions WHERE status IN {HELD} AND (?1 IS NULL OR wallet_id = ?1)
             ORDER BY created_at, rowid"
        ))?;
        for id in stmt.query_map([wallet], |r| r.get::<_, String>(0))? {
            ids.push(id?);
        }
        ids.iter()
            .map(|id| Self::tx_by(&conn, "id = ?1", &[id])?.ok_or_else(|| StoreError::Corrupt("lost row".into())))
            .collect()
    }

    fn drop_spend_and_set(tx: &Conn<'_>, id: &str, status: TxStatus, error: Option<&str>, now: u64) -> Result<()> {
        tx.execute("DELETE FROM spends WHERE tx_id = ?1", [id])?;
        tx.execute(
            "UPDATE transactions SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, status.name(), error, i(now)],
        )?;
        Ok(())
    }

    fn load(tx: &Conn<'_>, id: &str) -> Result<TxRecord> {
        Self::tx_by(tx, "id = ?1", &[&id])?.ok_or_else(|| StoreError::Corrupt(format!("transaction {id} vanished")))
    }

    /// Records an owner's denial of a transaction waiting for an approval (audited
    /// with `entry`). A denial arriving after `expires_at` expires the transaction
    /// instead, audited with `expired`.
    pub fn deny_held(&self, id: &str, now: u64, entry: AuditEntry, expired: AuditEntry) -> Result<Option<Resolution>> {
        self.decide_held(id, now, expired, |tx, _| {
            Self::drop_spend_and_set(tx, id, TxStatus::Denied, Some("denied by an owner"), now)?;
            Ok(Some(entry))
        })
    }

    /// Adds an owner's signature to a transaction waiting for an approval: `merge`
    /// gets the signatures collected so far (JSON, `None` at first) and returns the
    /// new collection and whether it meets the quorum, inside the database
    /// transaction (two owners signing at once both count). Met: the transaction is
    /// `approved` with the collection as its approval, audited with `approved`;
    /// not yet: it stays `pending_approval` with the collection, audited with
    /// `partial` when the collection changed. Past `expires_at` it expires instead.
    pub fn approve_held(
        &self,
        id: &str,
        now: u64,
        merge: impl FnOnce(Option<&str>) -> QuorumStep,
        approved: AuditEntry,
        partial: AuditEntry,
        expired: AuditEntry,
    ) -> Result<Option<Resolution>> {
        self.decide_held(id, now, expired, |tx, current| {
            let step = merge(current.approval.as_deref());
            if step.complete {
                tx.execute(
                    "UPDATE transactions SET status = 'approved', approval = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, step.collected, i(now)],
                )?;
                return Ok(Some(approved));
            }
            if current.approval.as_deref() == Some(step.collected.as_str()) {
                return Ok(None);
            }
            tx.execute(
                "UPDATE transactions SET approval = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, step.collected, i(now)],
            )?;
            Ok(Some(partial))
        })
    }

    /// Runs `decide` on a transaction still waiting for an approval and appends the
    /// audit entry it returns; one that is past its deadline is expired instead.
    fn decide_held(
        &self,
        id: &str,
        now: u64,
        expired: AuditEntry,
        decide: impl FnOnce(&Conn<'_>, &TxRecord) -> Result<Option<AuditEntry>>,
    ) -> Result<Option<Resolution>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = Self::tx_by(&tx, "id = ?1", &[&id])? else { return Ok(None) };
        if current.status != TxStatus::PendingApproval {
            return Ok(Some(Resolution::NotPending(current)));
        }
        if current.expires_at.is_some_and(|deadline| now > deadline) {
            Self::drop_spend_and_set(&tx, id, TxStatus::Expired, Some("not approved in time"), now)?;
            Self::append_audit(&tx, self.audit_path(), expired, now)?;
            let record = Self::load(&tx, id)?;
            tx.commit()?;
            return Ok(Some(Resolution::Expired(record)));
        }
        if let Some(entry) = decide(&tx, &current)? {
            Self::append_audit(&tx, self.audit_path(), entry, now)?;
        }
        let record = Self::load(&tx, id)?;
        tx.commit()?;
        Ok(Some(Resolution::Resolved(record)))
    }

    /// Records a passkey owner's signature counter: true when it is above the highest
    /// seen (or both are 0: the authenticator keeps no counter). False means the
    /// counter went back or stood still, the mark of a cloned authenticator or a
    /// replayed assertion: the caller refuses the signature.
    pub fn advance_passkey_counter(&self, owner_key: &str, count: u64) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<i64> = tx
            .query_row("SELECT sign_count FROM passkey_counters WHERE owner_key = ?1", [owner_key], |r| r.get(0))
            .optional()?;
        let stored = stored.map(u).unwrap_or(0);
        if count == 0 && stored == 0 {
            return Ok(true);
        }
        if count <= stored {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO passkey_counters (owner_key, sign_count) VALUES (?1, ?2)
             ON CONFLICT (owner_key) DO UPDATE SET sign_count = excluded.sign_count",
            params![owner_key, i(count)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// A wallet's owner quorum: how many distinct owners must sign an approval or
    /// an unfreeze (1 unless set).
    pub fn owner_threshold(&self, wallet: &str) -> Result<u64> {
        let conn = self.conn()?;
        let threshold: Option<i64> = conn
            // A subaccount has its main wallet's owners, and so its quorum.
            .query_row(
                "SELECT threshold FROM owner_quorums WHERE wallet_id =
                     COALESCE((SELECT parent_id FROM subaccounts WHERE wallet_id = ?1), ?1)",
                [wallet],
                |r| r.get(0),
            )
            .optional()?;
        Ok(threshold.map(u).unwrap_or(1).max(1))
    }

    /// Sets a wallet's owner quorum (audited with `entry`), checked against its
    /// owners by `check` (their number) inside the database transaction.
    pub fn set_owner_threshold(
        &self,
        wallet: &str,
        threshold: u64,
        now: u64,
        check: impl FnOnce(u64) -> std::result::Result<(), String>,
        entry: AuditEntry,
    ) -> Result<std::result::Result<(), String>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let owners: i64 = tx.query_row("SELECT COUNT(*) FROM owners WHERE wallet_id = ?1", [wallet], |r| r.get(0))?;
        if let Err(why) = check(u(owners)) {
            return Ok(Err(why));
        }
        tx.execute(
            "INSERT INTO owner_quorums (wallet_id, threshold, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (wallet_id) DO UPDATE SET threshold = excluded.threshold, updated_at = excluded.updated_at",
            params![wallet, i(threshold), i(now)],
        )?;
        Self::append_audit(&tx, self.audit_path(), entry, now)?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Cancels a held transaction that has not started to run (audited). Returns
    /// the transaction as it now is, `None` when unknown; a transaction that is no
    /// longer held comes back unchanged.
    pub fn cancel_held(&self, id: &str, now: u64, entry: AuditEntry) -> Result<Option<(TxRecord, bool)>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = Self::tx_by(&tx, "id = ?1", &[&id])? else { return Ok(None) };
        if !matches!(current.status, TxStatus::PendingApproval | TxStatus::Delayed | TxStatus::Approved) {
            return Ok(Some((current, false)));
        }
        Self::drop_spend_and_set(&tx, id, TxStatus::Cancelled, Some("cancelled while held"), now)?;
        Self::append_audit(&tx, self.audit_path(), entry, now)?;
        let record = Self::load(&tx, id)?;
        tx.commit()?;
        Ok(Some((record, true)))
    }

    /// Cancels, inside `tx`, every held transaction `requester` asked for (audited
    /// with `entry(tx)` each). Returns them.
    pub(crate) fn cancel_held_of(
        tx: &Conn<'_>,
        audit_path: &std::path::Path,
        requester: &str,
        now: u64,
        entry: impl Fn(&TxRecord) -> AuditEntry,
    ) -> Result<Vec<TxRecord>> {
        let ids: Vec<String> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT id FROM transactions WHERE requested_by = ?1 AND status IN {HELD} ORDER BY created_at, rowid"
            ))?;
            let rows = stmt.query_map([requester], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>>>()?
        };
        let mut cancelled = Vec::with_capacity(ids.len());
        for id in ids {
            Self::drop_spend_and_set(tx, &id, TxStatus::Cancelled, Some("its session was revoked"), now)?;
            let record = Self::load(tx, &id)?;
            Self::append_audit(tx, audit_path, entry(&record), now)?;
            cancelled.push(record);
        }
        Ok(cancelled)
    }

    /// Expires every transaction whose approval window closed before `now`
    /// (releasing its spend), auditing each with `entry(tx)`. Returns them.
    pub fn expire_held(&self, now: u64, entry: impl Fn(&TxRecord) -> AuditEntry) -> Result<Vec<TxRecord>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM transactions WHERE status = 'pending_approval' AND expires_at IS NOT NULL
                 AND expires_at < ?1",
            )?;
            let rows = stmt.query_map([i(now)], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>>>()?
        };
        let mut expired = Vec::new();
        for id in ids {
            Self::drop_spend_and_set(&tx, &id, TxStatus::Expired, Some("not approved in time"), now)?;
            let record = Self::load(&tx, &id)?;
            Self::append_audit(&tx, self.audit_path(), entry(&record), now)?;
            expired.push(record);
        }
        tx.commit()?;
        Ok(expired)
    }

    /// Held transactions due to run: approved ones, and delayed ones whose delay
    /// has passed at `now`.
    pub fn due_held(&self, now: u64) -> Result<Vec<TxRecord>> {
        let conn = self.conn()?;
        let ids: Vec<String> = {
            let mut stmt = conn.prepare(
                "SELECT id FROM transactions WHERE status = 'approved'
                 OR (status = 'delayed' AND execute_after <= ?1) ORDER BY created_at, rowid",
            )?;
            let rows = stmt.query_map([i(now)], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>>>()?
        };
        ids.iter()
            .map(|id| Self::tx_by(&conn, "id = ?1", &[id])?.ok_or_else(|| StoreError::Corrupt("lost row".into())))
            .collect()
    }

    /// Claims a due held transaction to run: unless its wallet is frozen, moves it
    /// to `reserved` with a fresh nonce (audited with `entry`). Only one claim wins.
    pub fn claim_held(&self, id: &str, chain_nonce: u64, now: u64, entry: AuditEntry) -> Result<Claim> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = Self::tx_by(&tx, "id = ?1", &[&id])? else { return Ok(Claim::NotDue) };
        let due = match current.status {
            TxStatus::Approved => true,
            TxStatus::Delayed => current.execute_after.is_some_and(|at| at <= now),
            _ => false,
        };
        if !due {
            return Ok(Claim::NotDue);
        }
        // A session revoked while its send was being held (the revocation cancels
        // what was held then; this catches a send that was in flight at that moment).
        let requester: Option<String> =
            tx.query_row("SELECT requested_by FROM transactions WHERE id = ?1", [id], |r| r.get(0))?;
        if let Some(session) = requester.as_deref().and_then(crate::agent_session_of) {
            let revoked: Option<i64> = tx
                .query_row("SELECT revoked_at FROM sessions WHERE id = ?1", [session], |r| r.get(0))
                .optional()?
                .flatten();
            if revoked.is_some() {
                Self::drop_spend_and_set(&tx, id, TxStatus::Cancelled, Some("its session was revoked"), now)?;
                Self::append_audit(&tx, self.audit_path(), revoked_entry(&current), now)?;
                tx.commit()?;
                return Ok(Claim::NotDue);
            }
        }
        if let Some(freeze) = Self::freeze_in(&tx, &current.wallet_id)? {
            return Ok(Claim::Frozen(freeze));
        }
        let chain =
            current.chain_id.ok_or_else(|| StoreError::Corrupt(format!("held transaction {id} has no chain")))?;
        let nonce = Self::allocate_nonce(&tx, &current.wallet_id, chain, chain_nonce)?;
        tx.execute(
            "UPDATE transactions SET status = 'reserved', nonce = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, i(nonce), i(now)],
        )?;
        Self::append_audit(&tx, self.audit_path(), entry, now)?;
        let record = Self::load(&tx, id)?;
        tx.commit()?;
        Ok(Claim::Claimed(Box::new(record)))
    }

    /// The owner signatures an unfreeze of the freeze at `frozen_at` has collected
    /// (JSON), if any.
    pub fn unfreeze_collected(&self, wallet: &str, frozen_at: u64) -> Result<Option<String>> {
        let conn = self.conn()?;
        let collected: Option<Option<String>> = conn
            .query_row(
                "SELECT unfreeze FROM wallet_freezes WHERE wallet_id = ?1 AND frozen_at = ?2",
                params![wallet, i(frozen_at)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(collected.flatten())
    }

    /// Adds an owner's signature to an unfreeze of the freeze at `frozen_at`:
    /// `merge` gets what was collected (JSON) and returns the new collection, which
    /// is stored (kept should the cosigner refuse the lift), audited with `entry`
    /// when it changed short of the quorum (met, the caller lifts the freeze with
    /// [`Store::unfreeze`], audited there). `None` when the freeze is gone.
    pub fn collect_unfreeze(
        &self,
        wallet: &str,
        frozen_at: u64,
        now: u64,
        merge: impl FnOnce(Option<&str>) -> QuorumStep,
        entry: AuditEntry,
    ) -> Result<Option<QuorumStep>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<Option<String>> = tx
            .query_row(
                "SELECT unfreeze FROM wallet_freezes WHERE wallet_id = ?1 AND frozen_at = ?2",
                params![wallet, i(frozen_at)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else { return Ok(None) };
        let step = merge(current.as_deref());
        if current.as_deref() != Some(step.collected.as_str()) {
            tx.execute(
                "UPDATE wallet_freezes SET unfreeze = ?3 WHERE wallet_id = ?1 AND frozen_at = ?2",
                params![wallet, i(frozen_at), step.collected],
            )?;
            if !step.complete {
                Self::append_audit(&tx, self.audit_path(), entry, now)?;
            }
        }
        tx.commit()?;
        Ok(Some(step))
    }

    /// Lifts the freeze of `wallet` made at `frozen_at` (audited). Returns false when
    /// the wallet is not frozen or was frozen again at another time.
    pub fn unfreeze(&self, wallet: &str, frozen_at: u64, now: u64, entry: AuditEntry) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let lifted = tx.execute(
            "DELETE FROM wallet_freezes WHERE wallet_id = ?1 AND frozen_at = ?2",
            params![wallet, i(frozen_at)],
        )?;
        if lifted > 0 {
            Self::append_audit(&tx, self.audit_path(), entry, now)?;
        }
        tx.commit()?;
        Ok(lifted > 0)
    }
}
