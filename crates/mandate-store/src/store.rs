//! The SQLite store.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::db::{params, Backend, Conn, OptionalExtension, Row, TransactionBehavior};
use alloy_primitives::{Address, U256};
use mandate_core::policy::{Asset, Decision, Spend, Tier, Verdict};
use serde::{Deserialize, Serialize};

use crate::audit::{
    check_anchor, record_hash, verify_audit_file, verify_audit_lines, AuditAnchor, AuditEntry, AuditProblem,
    AuditRecord, OutboxEvent, GENESIS,
};
use crate::db::DatabaseUrl;
use crate::spend_window::{Seen, SpendWindows, WindowSpend};
use crate::units::AmountUnits;

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(crate::db::DbError),
    /// The database setting is not usable (its text never holds the URL).
    #[error("database setting: {0}")]
    Config(String),
    /// The audit trail could not be written: nothing may be signed.
    #[error("audit trail unavailable: {0}")]
    AuditUnavailable(String),
    /// A uniqueness rule was hit (e.g. wallet name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data is not what it should be.
    #[error("corrupt store: {0}")]
    Corrupt(String),
}

pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalletRecord {
    /// Id.
    pub id: String,
    /// Operator's name for it.
    pub name: String,
    /// EIP-55 address.
    pub address: String,
    /// Chain id.
    pub chain_id: u64,
    /// Unix seconds.
    pub created_at: u64,
}

impl WalletRecord {
    /// The stored address, parsed (the store only keeps addresses the daemon derived
    /// from its own share).
    pub fn address(&self) -> Result<alloy_primitives::Address> {
        self.address.parse().map_err(|_| StoreError::Corrupt(format!("wallet {} has no valid address", self.id)))
    }
}

/// A wallet's current policy as stored: its version, the JSON document, its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    /// Version number (1 for the first policy of a wallet).
    pub version: u64,
    /// The document as uploaded (JSON).
    pub document: String,
    /// Its hash (the policy version hash the audit trail records).
    pub hash: String,
}

/// A session (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// Id (public).
    pub id: String,
    /// SHA-256 of the token, hex.
    #[serde(skip)]
    pub token_hash: String,
    /// The wallet it is bound to.
    pub wallet_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// TTL applied at creation and at each renewal.
    pub ttl_secs: u64,
    /// Current expiry.
    pub expires_at: u64,
    /// Never valid after this.
    pub absolute_expires_at: u64,
    /// Renewals used.
    pub renewals: u64,
    /// Renewals allowed.
    pub max_renewals: u64,
    /// When revoked, if revoked.
    pub revoked_at: Option<u64>,
}

/// Transaction states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Allowed and reserved; being signed.
    Reserved,
    /// Broadcast; waiting for a receipt.
    Submitted,
    /// Mined with success.
    Confirmed,
    /// Mined and reverted, or could not be signed/broadcast.
    Failed,
    /// Held for an owner's approval (approval tier).
    PendingApproval,
    /// Held until `execute_after` (delay tier); cancellable until then.
    Delayed,
    /// Approved by an owner; the executor signs and sends it next.
    Approved,
    /// Denied by an owner; never sent.
    Denied,
    /// Not approved before `expires_at`; never sent.
    Expired,
    /// Cancelled while held; never sent.
    Cancelled,
}

impl TxStatus {
    fn as_str(self) -> &'static str {
        match self {
            TxStatus::Reserved => "reserved",
            TxStatus::Submitted => "submitted",
            TxStatus::Confirmed => "confirmed",
            TxStatus::Failed => "failed",
            TxStatus::PendingApproval => "pending_approval",
            TxStatus::Delayed => "delayed",
            TxStatus::Approved => "approved",
            TxStatus::Denied => "denied",
            TxStatus::Expired => "expired",
            TxStatus::Cancelled => "cancelled",
        }
    }

    /// The status as stored and serialized.
    pub fn name(self) -> &'static str {
        self.as_str()
    }
    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "reserved" => TxStatus::Reserved,
            "submitted" => TxStatus::Submitted,
            "confirmed" => TxStatus::Confirmed,
            "failed" => TxStatus::Failed,
            "pending_approval" => TxStatus::PendingApproval,
            "delayed" => TxStatus::Delayed,
            "approved" => TxStatus::Approved,
            "denied" => TxStatus::Denied,
            "expired" => TxStatus::Expired,
            "cancelled" => TxStatus::Cancelled,
            other => return Err(StoreError::Corrupt(format!("status {other:?}"))),
        })
    }
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxRecord {
    /// Id.
    pub id: String,
    /// Wallet.
    pub wallet_id: String,
    /// Recipient.
    pub to: String,
    /// Value in wei.
    pub value_wei: String,
    /// Nonce, once allocated.
    pub nonce: Option<u64>,
    /// Status.
    pub status: TxStatus,
    /// Transaction hash once signed.
    pub tx_hash: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The policy decision.
    pub decision: serde_json::Value,
    /// Unix seconds.
    pub created_at: u64,
    /// What the transaction does (`native_transfer`, `token_transfer`, `token_approve`, `contract_call`).
    pub kind: String,
    /// Calldata, 0x-prefixed hex (`0x` for none).
    pub data: String,
    /// The asset it moves: `native` or the token address.
    pub asset: String,
    /// The amount of `asset` it moves, in base units.
    pub amount: String,
    /// Who receives the amount (for a token transfer, not the token contract).
    pub recipient: Option<String>,
    /// The chain it was requested on (held transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// Approval tier: when the owner's chance to approve ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Delay tier: when it is sent unless cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_after: Option<u64>,
    /// The highest gas limit it may be signed with (held transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gas_limit: Option<u64>,
    /// The highest max fee per gas, in wei, it may be signed with (held transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fee_per_gas: Option<String>,
    /// The owner's signed approval (JSON), once approved.
    #[serde(skip)]
    pub approval: Option<String>,
    /// `value` and `amount` in units, beside the base units above.
    #[serde(flatten)]
    pub units: AmountUnits,
}

impl TxRecord {
    /// The tier the stored decision put the transaction in; `None` when the stored
    /// decision has no readable tier (code branches on this, not on the JSON).
    pub fn tier(&self) -> Option<Tier> {
        self.decision.get("tier").and_then(|tier| Tier::deserialize(tier).ok())
    }

    /// The stored decision's verdict; `None` when it has no readable one.
    pub fn verdict(&self) -> Option<Verdict> {
        self.decision.get("verdict").and_then(|verdict| Verdict::deserialize(verdict).ok())
    }
}

/// Which signed version of a transaction a [`Broadcast`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastKind {
    /// The transaction as first signed.
    Original,
    /// The same transaction at the same nonce with higher fees.
    SpeedUp,
    /// A zero-value self-send at the same nonce, to void the transaction.
    Cancel,
}

impl BroadcastKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BroadcastKind::Original => "original",
            BroadcastKind::SpeedUp => "speed_up",
            BroadcastKind::Cancel => "cancel",
        }
    }

    fn parse(text: &str) -> Option<BroadcastKind> {
        [BroadcastKind::Original, BroadcastKind::SpeedUp, BroadcastKind::Cancel]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One signed version of a transaction, stored before it is handed to the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broadcast {
    /// Its hash.
    pub hash: String,
    /// Which version it is.
    pub kind: BroadcastKind,
    /// The signed bytes.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// Gas limit.
    pub gas: u64,
    /// Max fee per gas (wei).
    #[serde(serialize_with = "as_text")]
    pub max_fee_per_gas: u128,
    /// Max priority fee per gas (wei).
    #[serde(serialize_with = "as_text")]
    pub max_priority_fee_per_gas: u128,
    /// Unix seconds.
    pub created_at: u64,
}

fn as_text<S: serde::Serializer>(value: &u128, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// The `kind` of an x402 payment's record: an off-chain EIP-3009 authorization the
/// resource's facilitator settles; reserved without a nonce.
pub const X402_KIND: &str = "x402_payment";

/// A freed nonce below transactions already broadcast (`Store::stranding_gaps`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonceGap {
    /// The wallet.
    pub wallet_id: String,
    /// The chain the nonce is on.
    pub chain_id: u64,
    /// The freed nonce.
    pub nonce: u64,
}

/// A request to reserve.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    /// New id.
    pub id: String,
    /// Wallet.
    pub wallet_id: String,
    /// Idempotency key, if the caller sent one.
    pub idempotency_key: Option<String>,
    /// The transaction's `to` (for a token transfer: the token contract).
    pub to: String,
    /// Native value in wei.
    pub value: U256,
    /// Calldata.
    pub data: Vec<u8>,
    /// Action kind, e.g. `token_transfer`.
    pub kind: String,
    /// The asset the action moves and how much (native zero for calls without value).
    pub asset: Asset,
    /// Amount of `asset` in base units.
    pub amount: U256,
    /// USD value in micro-dollars, when a price was known.
    pub usd_micro: Option<U256>,
    /// Who receives the amount.
    pub recipient: Option<Address>,
    /// The chain's pending nonce for the wallet (the allocator never goes below it).
    pub chain_nonce: u64,
    /// The chain.
    pub chain_id: u64,
    /// Gas limit (for a held transaction: the highest it may be signed with).
    pub gas_limit: u64,
    /// Max fee per gas in wei (for a held transaction: the highest it may be signed with).
    pub max_fee_per_gas: u128,
    /// How long an approval-tier transaction waits for its owner.
    pub approval_ttl_secs: u64,
    /// The request's own audit record (`transaction.requested`): [`Store::reserve`]
    /// appends it in the same database transaction as the decision and the
    /// reservation, with one write and one fsync of the audit file for both, so a
    /// send whose request cannot be recorded is refused (fail closed).
    pub requested: Option<AuditEntry>,
}

/// What [`Store::reserve`] shows the decision: the wallet's spends within the look-back
/// window and whether it paid the recipient before.
#[derive(Debug, Clone)]
pub struct ReserveView {
    /// Spends (reserved and committed) within the look-back window.
    pub spends: Vec<Spend>,
    /// Whether a broadcast transaction of the wallet paid the recipient before.
    pub recipient_seen: bool,
    /// The part of `spends` the same actor requested (an agent's own spends, which
    /// its own policy's caps count).
    pub actor_spends: Vec<Spend>,
}

fn asset_text(asset: Asset) -> String {
    match asset {
        Asset::Native => "native".into(),
        Asset::Token(address) => address.to_checksum(None),
    }
}

fn asset_from_text(text: &str) -> Result<Asset> {
    if text == "native" {
        return Ok(Asset::Native);
    }
    text.parse().map(Asset::Token).map_err(|_| StoreError::Corrupt(format!("asset {text:?}")))
}

/// Result of [`Store::reserve`].
#[derive(Debug)]
pub enum ReserveOutcome {
    /// Allowed: reserved with this nonce.
    Reserved {
        /// The transaction.
        tx: TxRecord,
    },
    /// Denied by policy; nothing reserved.
    Denied(Decision),
    /// The idempotency key was used before: the earlier transaction.
    Existing(TxRecord),
    /// The wallet's policy changed since the caller decided with it: nothing
    /// reserved; decide again with the current policy.
    PolicyChanged,
    /// The wallet is frozen: nothing reserved (the refusal is audited).
    Frozen(FreezeRecord),
    /// The agent session or agent key that asked was revoked while the request was
    /// on its way: nothing reserved (the refusal is audited).
    Revoked,
}

/// An emergency freeze of one wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreezeRecord {
    /// The wallet.
    pub wallet_id: String,
    /// Unix seconds.
    pub frozen_at: u64,
    /// Who froze it (`operator`, `agent:<session>`).
    pub frozen_by: String,
    /// Why, as given.
    pub reason: String,
}

/// The store.
pub struct Store {
    db: Backend,
    audit_path: PathBuf,
    /// The spends each wallet's decisions look back on (valid by `spend_versions`).
    spend_windows: SpendWindows,
}

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn tx_from_row(row: &Row) -> Result<(TxRecord, String)> {
    let decision: String = row.get(8)?;
    Ok((
        TxRecord {
            id: row.get(0)?,
            wallet_id: row.get(1)?,
            to: row.get(2)?,
            value_wei: row.get(3)?,
            nonce: row.get::<_, Option<i64>>(4)?.map(u),
            status: TxStatus::Reserved,
            tx_hash: row.get(6)?,
            error: row.get(7)?,
            decision: serde_json::from_str(&decision).unwrap_or_default(),
            created_at: u(row.get(9)?),
            kind: row.get(10)?,
            data: format!("0x{}", row.get::<_, String>(11)?),
            asset: row.get(12)?,
            amount: row.get(13)?,
            recipient: row.get(14)?,
            chain_id: row.get::<_, Option<i64>>(15)?.map(u),
            expires_at: row.get::<_, Option<i64>>(16)?.map(u),
            execute_after: row.get::<_, Option<i64>>(17)?.map(u),
            gas_limit: row.get::<_, Option<i64>>(18)?.map(u),
            max_fee_per_gas: row.get(19)?,
            approval: row.get(20)?,
            units: AmountUnits::of(
                &row.get::<_, String>(3)?,
                &row.get::<_, String>(12)?,
                &row.get::<_, String>(13)?,
                row.get::<_, Option<i64>>(21)?
                    .and_then(|d| u8::try_from(d).ok())
                    .zip(row.get::<_, Option<String>>(22)?),
            ),
        },
        row.get::<_, String>(5)?,
    ))
}

const WALLET_COLUMNS: &str = "id, name, address, chain_id, created_at";

fn wallet_from_row(r: &Row) -> Result<WalletRecord> {
    Ok(WalletRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        chain_id: u(r.get(3)?),
        created_at: u(r.get(4)?),
    })
}

const TX_COLUMNS: &str = "id, wallet_id, to_address, value_wei, nonce, status, tx_hash, error, decision, created_at, \
                          kind, data, asset, amount, recipient, chain_id, expires_at, execute_after, gas_limit, \
                          max_fee_per_gas, approval, \
                          (SELECT decimals FROM tokens k WHERE k.chain_id = transactions.chain_id \
                                                          AND k.address = transactions.asset), \
                          (SELECT symbol FROM tokens k WHERE k.chain_id = transactions.chain_id \
                                                        AND k.address = transactions.asset)";

impl Store {
    /// Opens (creating) `data.db` and `audit/audit.jsonl` in `dir` (SQLite).
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, None)
    }

    /// Opens the store of data directory `dir`: SQLite (`data.db` and
    /// `audit/audit.jsonl` in `dir`) without `database`, else the PostgreSQL database
    /// it names, migrated to the current schema. On PostgreSQL the `audit` table is the
    /// audit chain, shared by every daemon on the database: no local file is kept.
    pub fn open_with(dir: &Path, database: Option<&DatabaseUrl>) -> Result<Store> {
        let audit_path = dir.join("audit").join("audit.jsonl");
        let db = match database {
            None => {
                let db = Backend::sqlite(&dir.join("data.db"))?;
                db.conn()?.migrate(crate::migrations::SQLITE)?;
                let audit_dir = dir.join("audit");
                std::fs::create_dir_all(&audit_dir).map_err(|e| StoreError::AuditUnavailable(e.to_string()))?;
                db
            }
            Some(url) => {
                let db = Backend::postgres(url)?;
                db.conn()?.migrate(crate::migrations::POSTGRES)?;
                db
            }
        };
        Ok(Store { db, audit_path, spend_windows: SpendWindows::default() })
    }

    /// Whether the store is on PostgreSQL (shared by several daemons).
    pub fn is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    pub(crate) fn conn(&self) -> Result<Conn<'_>> {
        self.db.conn()
    }

    /// The audit file (SQLite; on PostgreSQL the `audit` table is the trail and no
    /// file is written).
    pub fn audit_path(&self) -> &Path {
        &self.audit_path
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn()?.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
    }

    /// Sets a metadata value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            [key, value],
        )?;
        Ok(())
    }

    /// Appends an audit record (file first, then table) in the caller's lock. Fails
    /// closed: an error means the event must not proceed.
    pub(crate) fn append_audit(conn: &Conn<'_>, path: &Path, entry: AuditEntry, now: u64) -> Result<AuditRecord> {
        Self::append_audits(conn, path, vec![entry], now)?
            .pop()
            .ok_or_else(|| StoreError::AuditUnavailable("no record was appended".into()))
    }

    /// Appends consecutive audit records with one write and one fsync of the file,
    /// then the table rows, in the caller's lock (and database transaction). Fails
    /// closed like [`Store::append_audit`].
    pub(crate) fn append_audits(
        conn: &Conn<'_>,
        path: &Path,
        entries: Vec<AuditEntry>,
        now: u64,
    ) -> Result<Vec<AuditRecord>> {
        let last: Option<(i64, String)> = conn
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", params![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (mut seq, mut prev_hash) = match last {
            Some((seq, hash)) => (u(seq) + 1, hash),
            None => (1, GENESIS.to_string()),
        };
        let (mut records, mut lines, mut text) = (Vec::new(), Vec::new(), String::new());
        for entry in entries {
            let mut record = AuditRecord { seq, ts: now, entry, prev_hash, hash: String::new() };
            record.hash = record_hash(&record);
            let line = serde_json::to_string(&record).map_err(|e| StoreError::AuditUnavailable(e.to_string()))?;
            text.push_str(&line);
            text.push('\n');
            (seq, prev_hash) = (seq + 1, record.hash.clone());
            lines.push(line);
            records.push(record);
        }
        // On PostgreSQL the table is the chain (committed durably with the event);
        // on SQLite the file comes first and is synced.
        if !conn.is_postgres() {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| StoreError::AuditUnavailable(format!("{}: {e}", path.display())))?;
            file.write_all(text.as_bytes())
                .and_then(|_| file.sync_data())
                .map_err(|e| StoreError::AuditUnavailable(format!("{}: {e}", path.display())))?;
        }
        for (record, line) in records.iter().zip(lines) {
            conn.execute(
                "INSERT INTO audit (seq, line, hash) VALUES (?1, ?2, ?3)",
                params![i(record.seq), line, record.hash],
            )?;
            Self::record_events_in(conn, &record.entry.events, now)?;
        }
        Ok(records)
    }

    /// Records an audit entry (and its outbox events, in one database transaction).
    pub fn audit(&self, entry: AuditEntry, now: u64) -> Result<AuditRecord> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let record = Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(record)
    }

    /// Appends `entry` unless `wallet` is frozen, checked in the same transaction (a
    /// freeze lands either before this record, and nothing is appended, or after it):
    /// the cut-off of the signature endpoints, as the reservation is for sends.
    pub fn audit_unless_frozen(
        &self,
        wallet: &str,
        entry: AuditEntry,
        now: u64,
    ) -> Result<std::result::Result<AuditRecord, FreezeRecord>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(freeze) = Self::freeze_in(&tx, wallet)? {
            return Ok(Err(freeze));
        }
        let record = Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(Ok(record))
    }

    /// Verifies the audit file and that it ends where the database does.
    pub fn verify_audit(&self) -> Result<std::result::Result<u64, AuditProblem>> {
        self.verify_audit_anchored(None)
    }

    /// Like [`Store::verify_audit`], and the trail still holds the record `anchor`
    /// names (the head the cosigner saw with a run): a cut tail or a rewritten trail
    /// is found even when the file and the table were cut alike.
    pub fn verify_audit_anchored(
        &self,
        anchor: Option<&AuditAnchor>,
    ) -> Result<std::result::Result<u64, AuditProblem>> {
        if self.db.is_postgres() {
            let lines = {
                let conn = self.conn()?;
                let mut stmt = conn.prepare("SELECT line FROM audit ORDER BY seq")?;
                stmt.query_map(params![], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>>>()?
            };
            return Ok(verify_audit_lines(lines.into_iter().map(Ok)).and_then(|records| {
                let last = records.last().map(|r| r.seq).unwrap_or(0);
                match anchor {
                    Some(anchor) => check_anchor(&records, anchor).map(|()| last),
                    None => Ok(last),
                }
            }));
        }
        let table_last = self.audit_head()?;
        Ok(verify_audit_file(&self.audit_path).and_then(|records| {
            let file_last = records.last().map(|r| r.seq).unwrap_or(0);
            match table_last {
                Some(head) if head.seq > file_last => {
                    return Err(AuditProblem::Truncated { file_last, table_last: head.seq })
                }
                Some(head) if head.seq == file_last && records.last().map(|r| &r.hash) != Some(&head.hash) => {
                    return Err(AuditProblem::Edited { seq: file_last })
                }
                _ => {}
            }
            match anchor {
                Some(anchor) => check_anchor(&records, anchor).map(|()| file_last),
                None => Ok(file_last),
            }
        }))
    }

    /// The last audit record's sequence number and hash (what the service party shows
    /// the cosigner with every run), if there is one.
    pub fn audit_head(&self) -> Result<Option<AuditAnchor>> {
        let head: Option<(i64, String)> = self
            .conn()?
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", params![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(head.map(|(seq, hash)| AuditAnchor { seq: u(seq), hash }))
    }

    /// The last `n` audit records.
    pub fn audit_tail(&self, n: u64) -> Result<Vec<serde_json::Value>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT line FROM audit ORDER BY seq DESC LIMIT ?1")?;
        let mut lines: Vec<serde_json::Value> = stmt
            .query_map([i(n)], |r| r.get::<_, String>(0))?
            .filter_map(|line| line.ok().and_then(|l| serde_json::from_str(&l).ok()))
            .collect();
        lines.reverse();
        Ok(lines)
    }

    /// Inserts a wallet and audits it.
    pub fn insert_wallet(&self, wallet: &WalletRecord, entry: AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let exists: bool =
            tx.query_row("SELECT COUNT(*) > 0 FROM wallets WHERE name = ?1", [&wallet.name], |r| r.get(0))?;
        if exists {
            return Err(StoreError::Conflict(format!("a wallet named {:?} exists", wallet.name)));
        }
        tx.execute(
            "INSERT INTO wallets (id, name, address, chain_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![wallet.id, wallet.name, wallet.address, i(wallet.chain_id), i(wallet.created_at)],
        )?;
        Self::append_audit(&tx, &self.audit_path, entry, wallet.created_at)?;
        tx.commit()?;
        Ok(())
    }

    /// All wallets.
    pub fn wallets(&self) -> Result<Vec<WalletRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {WALLET_COLUMNS} FROM wallets ORDER BY created_at, id"))?;
        let rows = stmt.query_map(params![], wallet_from_row)?;
        rows.collect::<Result<_>>()
    }

    /// One wallet.
    pub fn wallet(&self, id: &str) -> Result<Option<WalletRecord>> {
        self.conn()?
            .query_row(&format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ?1"), [id], wallet_from_row)
            .optional()
    }

    /// Stores a new policy version (previous versions are kept) and audits it.
    pub fn set_policy(&self, wallet: &str, document: &str, hash: &str, now: u64, entry: AuditEntry) -> Result<u64> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let version: i64 =
            tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE wallet_id = ?1", [wallet], |r| {
                r.get(0)
            })?;
        tx.execute(
            "INSERT INTO policies (wallet_id, version, document, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![wallet, version, document, hash, i(now)],
        )?;
        Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(u(version))
    }

    /// The current policy: (version, document, hash).
    pub fn policy(&self, wallet: &str) -> Result<Option<StoredPolicy>> {
        self.conn()?
            .query_row(
                "SELECT version, document, hash FROM policies WHERE wallet_id = ?1 ORDER BY version DESC LIMIT 1",
                [wallet],
                |r| Ok(StoredPolicy { version: u(r.get(0)?), document: r.get(1)?, hash: r.get(2)? }),
            )
            .optional()
    }

    /// Inserts a session and audits it. Refused (`Ok(false)`, nothing written) when
    /// its creator (the entry's actor) is an operator key revoked or expired meanwhile.
    pub fn insert_session(&self, session: &SessionRecord, entry: AuditEntry) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !Self::creator_live(&tx, &entry.actor, session.created_at)? {
            return Ok(false);
        }
        // The audit entry's actor made it: the operator, or `operator:key:<id>` (whose
        // revocation revokes it too, `Store::revoke_operator_key`).
        tx.execute(
            "INSERT INTO sessions (id, token_hash, wallet_id, scopes, created_at, ttl_secs, expires_at, absolute_expires_at, renewals, max_renewals, revoked_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11)",
            params![
                session.id, session.token_hash, session.wallet_id, session.scopes.join(" "), i(session.created_at),
                i(session.ttl_secs), i(session.expires_at), i(session.absolute_expires_at), i(session.renewals), i(session.max_renewals),
                entry.actor
            ],
        )?;
        Self::append_audit(&tx, &self.audit_path, entry, session.created_at)?;
        tx.commit()?;
        Ok(true)
    }

    /// The live sessions `creators` made (actors such as `operator:key:<id>`).
    pub fn sessions_created_by(&self, creators: &[String]) -> Result<Vec<SessionRecord>> {
        let mut found = Vec::new();
        for creator in creators {
            found
                .extend(self.session_where("created_by = ?1", creator)?.into_iter().filter(|s| s.revoked_at.is_none()));
        }
        Ok(found)
    }

    fn session_where(&self, clause: &str, arg: &str) -> Result<Vec<SessionRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT id, token_hash, wallet_id, scopes, created_at, ttl_secs, expires_at, absolute_expires_at, renewals, max_renewals, revoked_at FROM sessions WHERE {clause} ORDER BY created_at"
        ))?;
        let rows = stmt.query_map([arg], |r| {
            let scopes: String = r.get(3)?;
            Ok(SessionRecord {
                id: r.get(0)?,
                token_hash: r.get(1)?,
                wallet_id: r.get(2)?,
                scopes: scopes.split_whitespace().map(str::to_string).collect(),
                created_at: u(r.get(4)?),
                ttl_secs: u(r.get(5)?),
                expires_at: u(r.get(6)?),
                absolute_expires_at: u(r.get(7)?),
                renewals: u(r.get(8)?),
                max_renewals: u(r.get(9)?),
                revoked_at: r.get::<_, Option<i64>>(10)?.map(u),
            })
        })?;
        rows.collect::<Result<_>>()
    }

    /// The session whose token hashes to `token_hash`.
    pub fn session_by_token_hash(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        Ok(self.session_where("token_hash = ?1", token_hash)?.into_iter().next())
    }

    /// A session by id.
    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        Ok(self.session_where("id = ?1", id)?.into_iter().next())
    }

    /// Sessions of a wallet (or all with `None`).
    pub fn sessions(&self, wallet: Option<&str>) -> Result<Vec<SessionRecord>> {
        match wallet {
            Some(wallet) => self.session_where("wallet_id = ?1", wallet),
            None => self.session_where("?1 = ?1", ""),
        }
    }

    /// Extends a session if it may still be renewed; returns the updated record.
    pub fn renew_session(&self, id: &str, now: u64) -> Result<Option<SessionRecord>> {
        let conn = self.conn()?;
        let changed = conn.execute(
            "UPDATE sessions SET renewals = renewals + 1, expires_at = CASE WHEN ?2 + ttl_secs < absolute_expires_at
                                                         THEN ?2 + ttl_secs ELSE absolute_expires_at END
             WHERE id = ?1 AND revoked_at IS NULL AND renewals < max_renewals AND expires_at > ?2 AND absolute_expires_at > ?2",
            params![id, i(now)],
        )?;
        drop(conn);
        if changed == 0 {
            return Ok(None);
        }
        self.session(id)
    }

    /// Revokes a session and audits it (`entry`). In the same database transaction,
    /// every transaction the session left held (waiting for approval, delayed, or
    /// approved but not yet claimed to run) is cancelled, its spend released, and
    /// audited with `cancelled(tx)`. Returns whether the session was live, and the
    /// cancelled transactions.
    pub fn revoke_session(
        &self,
        id: &str,
        now: u64,
        entry: AuditEntry,
        cancelled: impl Fn(&TxRecord) -> AuditEntry,
    ) -> Result<(bool, Vec<TxRecord>)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx
            .execute("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, i(now)])?;
        if changed > 0 {
            Self::append_audit(&tx, &self.audit_path, entry, now)?;
        }
        // Also when it was revoked before: a send that was in flight at the revocation
        // may have been held after it.
        let held = Self::cancel_held_of(&tx, &self.audit_path, &crate::agent_actor(id), now, cancelled)?;
        tx.commit()?;
        Ok((changed > 0, held))
    }

    pub(crate) fn tx_by(conn: &Conn<'_>, clause: &str, args: &[&dyn crate::db::ToValue]) -> Result<Option<TxRecord>> {
        let row = conn
            .query_row(&format!("SELECT {TX_COLUMNS} FROM transactions WHERE {clause}"), args, tx_from_row)
            .optional()?;
        match row {
            Some((mut tx, status)) => {
                tx.status = TxStatus::parse(&status)?;
                Ok(Some(tx))
            }
            None => Ok(None),
        }
    }

    /// A transaction by id.
    pub fn transaction(&self, id: &str) -> Result<Option<TxRecord>> {
        let conn = self.conn()?;
        Self::tx_by(&conn, "id = ?1", &[&id])
    }

    /// Checks policy and reserves in one database transaction: loads the wallet's
    /// spends in the policy's look-back window, asks `decide`, and if it allows,
    /// records the transaction, the spend reservation and a nonce, and audits the
    /// decision (after the request's own record, [`NewTransaction::requested`]) with
    /// the webhook events `announce` names for the outcome (denied or reserved), all in
    /// one commit. Concurrent callers serialise here, so caps hold. A changed policy
    /// rolls everything back, the request's record included: the caller retries.
    pub fn reserve(
        &self,
        request: NewTransaction,
        lookback_secs: u64,
        now: u64,
        actor: &str,
        decide: impl FnOnce(&ReserveView) -> Decision,
        announce: impl FnOnce(&ReserveOutcome) -> Vec<OutboxEvent>,
    ) -> Result<ReserveOutcome> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The request's record goes first, in this transaction: with the decision's
        // record when there is one, in one append.
        let with_request = |entry: AuditEntry| request.requested.iter().cloned().chain([entry]).collect::<Vec<_>>();
        if let Some(key) = &request.idempotency_key {
            if let Some(existing) =
                Self::tx_by(&tx, "wallet_id = ?1 AND idempotency_key = ?2", &[&request.wallet_id, key])?
            {
                if let Some(requested) = &request.requested {
                    Self::append_audit(&tx, &self.audit_path, requested.clone(), now)?;
                    tx.commit()?;
                }
                return Ok(ReserveOutcome::Existing(existing));
            }
        }
        // Checked inside the reservation, so a freeze stops every send that has not
        // reserved yet, however far along its checks it is.
        if let Some(freeze) = Self::freeze_in(&tx, &request.wallet_id)? {
            let entry = AuditEntry {
                actor: actor.to_string(),
                event: "transaction.refused_frozen".into(),
                wallet: Some(request.wallet_id.clone()),
                decision: None,
                policy_hash: None,
                details: serde_json::json!({"tx_id": request.id, "frozen_at": freeze.frozen_at}),
                events: Vec::new(),
            };
            Self::append_audits(&tx, &self.audit_path, with_request(entry), now)?;
            tx.commit()?;
            return Ok(ReserveOutcome::Frozen(freeze));
        }
        // A revocation also lands either before this reservation (nothing is reserved)
        // or after it, however far along its checks the request already was.
        if Self::actor_revoked(&tx, actor)? {
            let entry = AuditEntry {
                actor: actor.to_string(),
                event: "transaction.refused_revoked".into(),
                wallet: Some(request.wallet_id.clone()),
                decision: None,
                policy_hash: None,
                details: serde_json::json!({"tx_id": request.id}),
                events: Vec::new(),
            };
            Self::append_audits(&tx, &self.audit_path, with_request(entry), now)?;
            tx.commit()?;
            return Ok(ReserveOutcome::Revoked);
        }
        let (version_before, Seen { all: spends, own: actor_spends }) =
            self.spends_with_actor(&tx, &request.wallet_id, actor, now.saturating_sub(lookback_secs))?;
        let recipient_seen = match request.recipient {
            Some(recipient) => Self::paid_before(&tx, &request.wallet_id, &recipient)?,
            None => true,
        };
        let decision = decide(&ReserveView { spends, recipient_seen, actor_spends });
        let current: Option<String> = tx
            .query_row(
                "SELECT hash FROM policies WHERE wallet_id = ?1 ORDER BY version DESC LIMIT 1",
                [&request.wallet_id],
                |r| r.get(0),
            )
            .optional()?;
        if decision.policy_hash != current.as_deref().unwrap_or("none") {
            return Ok(ReserveOutcome::PolicyChanged);
        }
        let decision_json = serde_json::to_value(&decision).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let audit = AuditEntry {
            actor: actor.to_string(),
            event: "policy.decision".into(),
            wallet: Some(request.wallet_id.clone()),
            decision: Some(decision_json.clone()),
            policy_hash: Some(decision.policy_hash.clone()),
            details: serde_json::json!({"tx_id": request.id, "kind": request.kind, "to": request.to,
                                        "value_wei": request.value.to_string(), "asset": asset_text(request.asset),
                                        "amount": request.amount.to_string()}),
            events: Vec::new(),
        };
        if decision.verdict == Verdict::Deny {
            let outcome = ReserveOutcome::Denied(decision);
            let audit = AuditEntry { events: announce(&outcome), ..audit };
            Self::append_audits(&tx, &self.audit_path, with_request(audit), now)?;
            tx.commit()?;
            return Ok(outcome);
        }
        // Held tiers keep their spend reserved (caps count them) but take a nonce
        // only when they run, so a held transaction never blocks the ones after it.
        let (status, nonce, expires_at, execute_after) = match decision.tier {
            Tier::Approval => (TxStatus::PendingApproval, None, Some(now + request.approval_ttl_secs), None),
            Tier::Delay => (TxStatus::Delayed, None, None, Some(now + decision.delay_secs.unwrap_or(0))),
            // An x402 payment is an off-chain authorization: the wallet sends no transaction.
            Tier::Instant | Tier::Notify if request.kind == X402_KIND => (TxStatus::Reserved, None, None, None),
            Tier::Instant | Tier::Notify => (
                TxStatus::Reserved,
                Some(Self::allocate_nonce(&tx, &request.wallet_id, request.chain_id, request.chain_nonce)?),
                None,
                None,
            ),
        };
        let asset = asset_text(request.asset);
        tx.execute(
            "INSERT INTO transactions (id, wallet_id, idempotency_key, to_address, value_wei, nonce, status, decision,
                                       created_at, updated_at, kind, data, asset, amount, recipient,
                                       chain_id, expires_at, execute_after, gas_limit, max_fee_per_gas, requested_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            params![
                request.id,
                request.wallet_id,
                request.idempotency_key,
                request.to,
                request.value.to_string(),
                nonce.map(i),
                status.as_str(),
                decision_json.to_string(),
                i(now),
                request.kind,
                hex::encode(&request.data),
                asset,
                request.amount.to_string(),
                request.recipient.map(|r| r.to_checksum(None)),
                i(request.chain_id),
                expires_at.map(i),
                execute_after.map(i),
                i(request.gas_limit),
                request.max_fee_per_gas.to_string(),
                actor
            ],
        )?;
        tx.execute(
            "INSERT INTO spends (tx_id, wallet_id, at, value_wei, state, asset, amount, usd_micro, chain_id)
             VALUES (?1, ?2, ?3, ?4, 'reserved', ?5, ?6, ?7, ?8)",
            params![
                request.id,
                request.wallet_id,
                i(now),
                request.value.to_string(),
                asset,
                request.amount.to_string(),
                request.usd_micro.map(|u| u.to_string()),
                i(request.chain_id)
            ],
        )?;
        let version_after = Self::spend_version(&tx, &request.wallet_id)?;
        let record =
            Self::tx_by(&tx, "id = ?1", &[&request.id])?.ok_or_else(|| StoreError::Corrupt("lost insert".into()))?;
        let outcome = ReserveOutcome::Reserved { tx: record };
        let audit = AuditEntry { events: announce(&outcome), ..audit };
        Self::append_audits(&tx, &self.audit_path, with_request(audit), now)?;
        tx.commit()?;
        let added = Spend {
            at: now,
            asset: request.asset,
            amount: request.amount,
            usd_micro: request.usd_micro,
            x402: request.kind == X402_KIND,
            chain_id: Some(request.chain_id),
        };
        let added = WindowSpend { tx_id: request.id.clone(), spend: added, requested_by: Some(actor.to_string()) };
        self.spend_windows.added(&request.wallet_id, version_before, version_after, added);
        Ok(outcome)
    }

    /// Whether `actor` is an agent session or agent key (`agent:ses_…`, `agent:agt_…`)
    /// that is revoked now.
    fn actor_revoked(conn: &Conn<'_>, actor: &str) -> Result<bool> {
        let Some(id) = crate::agent_session_of(actor) else { return Ok(false) };
        let table = if id.starts_with("agt_") { "agents" } else { "sessions" };
        let revoked: Option<Option<i64>> =
            conn.query_row(&format!("SELECT revoked_at FROM {table} WHERE id = ?1"), [id], |r| r.get(0)).optional()?;
        Ok(matches!(revoked, Some(Some(_))))
    }

    pub(crate) fn freeze_in(conn: &Conn<'_>, wallet: &str) -> Result<Option<FreezeRecord>> {
        conn.query_row(
            "SELECT wallet_id, frozen_at, frozen_by, reason FROM wallet_freezes WHERE wallet_id = ?1",
            [wallet],
            |r| {
                Ok(FreezeRecord {
                    wallet_id: r.get(0)?,
                    frozen_at: u(r.get(1)?),
                    frozen_by: r.get(2)?,
                    reason: r.get(3)?,
                })
            },
        )
        .optional()
    }

    /// The wallet's freeze, if it is frozen.
    pub fn freeze_of(&self, wallet: &str) -> Result<Option<FreezeRecord>> {
        Self::freeze_in(&self.conn()?, wallet)
    }

    /// Freezes a wallet (audited with `entry`). Freezing a frozen wallet changes
    /// nothing and returns the first freeze with `false`.
    pub fn freeze(&self, freeze: &FreezeRecord, entry: AuditEntry) -> Result<(FreezeRecord, bool)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = Self::freeze_in(&tx, &freeze.wallet_id)? {
            return Ok((existing, false));
        }
        tx.execute(
            "INSERT INTO wallet_freezes (wallet_id, frozen_at, frozen_by, reason) VALUES (?1, ?2, ?3, ?4)",
            params![freeze.wallet_id, i(freeze.frozen_at), freeze.frozen_by, freeze.reason],
        )?;
        Self::append_audit(&tx, &self.audit_path, entry, freeze.frozen_at)?;
        tx.commit()?;
        Ok((freeze.clone(), true))
    }

    /// The wallet's spend version (bumped by triggers on every change to its spends;
    /// 0 before its first spend).
    fn spend_version(conn: &Conn<'_>, wallet: &str) -> Result<i64> {
        Ok(conn
            .query_row("SELECT version FROM spend_versions WHERE wallet_id = ?1", [wallet], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// The wallet's spends since `since`, and those of them `actor` requested, with
    /// the spend version they are as of: from the wallet's window in memory when it
    /// is at the version read here, else read from the tables (and kept).
    fn spends_with_actor(&self, conn: &Conn<'_>, wallet: &str, actor: &str, since: u64) -> Result<(i64, Seen)> {
        // The version first: a window is never labelled newer than its rows.
        let version = Self::spend_version(conn, wallet)?;
        if let Some(found) = self.spend_windows.get(wallet, version, actor, since) {
            return Ok((version, found));
        }
        let spends = Self::read_spends(conn, wallet, since)?;
        let found = crate::spend_window::select(&spends, actor, since);
        self.spend_windows.put(wallet, version, since, spends);
        Ok((version, found))
    }

    /// The wallet's spends since `since`, read from the tables.
    fn read_spends(conn: &Conn<'_>, wallet: &str, since: u64) -> Result<Vec<WindowSpend>> {
        let mut stmt = conn.prepare(
            "SELECT s.at, s.asset, s.amount, s.usd_micro, t.requested_by, s.chain_id, t.kind, s.tx_id FROM spends s
             LEFT JOIN transactions t ON t.id = s.tx_id WHERE s.wallet_id = ?1 AND s.at >= ?2",
        )?;
        let number = |text: &str| U256::from_str_radix(text, 10).map_err(|e| StoreError::Corrupt(e.to_string()));
        let rows = stmt
            .query_map(params![wallet, i(since)], |r| {
                Ok((
                    u(r.get(0)?),
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(at, asset, amount, usd, requested_by, chain, kind, tx_id)| {
                let spend = Spend {
                    at,
                    asset: asset_from_text(&asset)?,
                    amount: number(&amount)?,
                    usd_micro: usd.as_deref().map(number).transpose()?,
                    chain_id: chain.map(u),
                    x402: kind.as_deref() == Some(X402_KIND),
                };
                Ok(WindowSpend { tx_id, spend, requested_by })
            })
            .collect()
    }

    fn paid_before(conn: &Conn<'_>, wallet: &str, recipient: &Address) -> Result<bool> {
        let seen: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM transactions WHERE wallet_id = ?1 AND recipient = ?2
                 AND status IN ('submitted', 'confirmed') LIMIT 1",
                params![wallet, recipient.to_checksum(None)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seen.is_some())
    }

    /// Whether a broadcast transaction of the wallet paid `recipient` before (for dry runs).
    pub fn recipient_seen(&self, wallet: &str, recipient: &Address) -> Result<bool> {
        Self::paid_before(&self.conn()?, wallet, recipient)
    }

    /// The cached `(decimals, symbol)` of a token on a chain.
    pub fn token(&self, chain_id: u64, address: &Address) -> Result<Option<(u8, String)>> {
        let conn = self.conn()?;
        let row: Option<(i64, String)> = conn
            .query_row(
                "SELECT decimals, symbol FROM tokens WHERE chain_id = ?1 AND address = ?2",
                params![i(chain_id), address.to_checksum(None)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(decimals, symbol)| u8::try_from(decimals).ok().map(|d| (d, symbol))))
    }

    /// Caches a token's decimals and symbol (read from the contract once).
    pub fn cache_token(&self, chain_id: u64, address: &Address, decimals: u8, symbol: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO tokens (chain_id, address, decimals, symbol) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chain_id, address) DO UPDATE SET decimals = excluded.decimals, symbol = excluded.symbol",
            params![i(chain_id), address.to_checksum(None), i64::from(decimals), symbol],
        )?;
        Ok(())
    }

    /// The wallet's reserved and committed spends since `since` (for dry runs; a real
    /// send decides inside [`Store::reserve`]).
    pub fn spends(&self, wallet: &str, since: u64) -> Result<Vec<Spend>> {
        Ok(self.spends_with_actor(&self.conn()?, wallet, "", since)?.1.all)
    }

    /// The spends since `since` of the wallet's transactions that `actor` requested.
    pub fn actor_spends(&self, wallet: &str, actor: &str, since: u64) -> Result<Vec<Spend>> {
        Ok(self.spends_with_actor(&self.conn()?, wallet, actor, since)?.1.own)
    }

    /// A wallet's transactions, newest first (at most `limit`).
    pub fn transactions(&self, wallet: &str, limit: u64) -> Result<Vec<TxRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE wallet_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![wallet, i(limit)], tx_from_row)?;
        rows.map(|row| {
            let (mut tx, status) = row?;
            tx.status = TxStatus::parse(&status)?;
            Ok(tx)
        })
        .collect()
    }

    /// The next nonce of `wallet` on `chain` (a freed one first), at least the chain's
    /// own `chain_nonce`.
    pub(crate) fn allocate_nonce(tx: &Conn<'_>, wallet: &str, chain: u64, chain_nonce: u64) -> Result<u64> {
        let free: Option<i64> = tx
            .query_row(
                "SELECT MIN(nonce) FROM free_chain_nonces WHERE wallet_id = ?1 AND chain_id = ?2 AND nonce >= ?3",
                params![wallet, i(chain), i(chain_nonce)],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        tx.execute(
            "DELETE FROM free_chain_nonces WHERE wallet_id = ?1 AND chain_id = ?2 AND nonce < ?3",
            params![wallet, i(chain), i(chain_nonce)],
        )?;
        if let Some(nonce) = free {
            tx.execute(
                "DELETE FROM free_chain_nonces WHERE wallet_id = ?1 AND chain_id = ?2 AND nonce = ?3",
                params![wallet, i(chain), nonce],
            )?;
            return Ok(u(nonce));
        }
        let next: Option<i64> = tx
            .query_row(
                "SELECT next_nonce FROM chain_nonces WHERE wallet_id = ?1 AND chain_id = ?2",
                params![wallet, i(chain)],
                |r| r.get(0),
            )
            .optional()?;
        let nonce = next.map(u).unwrap_or(0).max(chain_nonce);
        tx.execute(
            "INSERT INTO chain_nonces (wallet_id, chain_id, next_nonce) VALUES (?1, ?2, ?3)
             ON CONFLICT(wallet_id, chain_id) DO UPDATE SET next_nonce = ?3",
            params![wallet, i(chain), i(nonce + 1)],
        )?;
        Ok(nonce)
    }

    /// The transaction was signed and is about to be broadcast: stores the signed
    /// version (write-ahead: after a crash or a timed-out node it is broadcast again,
    /// never signed again), makes it the transaction's hash and commits the spend.
    pub fn mark_submitted(&self, id: &str, signed: &Broadcast, now: u64, entry: AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("UPDATE spends SET state = 'committed' WHERE tx_id = ?1", [id])?;
        // Only a reservation still held: one released meanwhile (a replica took it for
        // abandoned, `release_abandoned`) may have handed its nonce to another
        // transaction, so this signature is never stored and never broadcast.
        let held = tx.execute(
            "UPDATE transactions SET status = 'submitted', tx_hash = ?2, updated_at = ?3
             WHERE id = ?1 AND status = 'reserved'",
            params![id, signed.hash, i(now)],
        )?;
        if held != 1 {
            return Err(StoreError::Conflict(format!(
                "transaction {id} is no longer reserved (released as abandoned); its signature is discarded"
            )));
        }
        Self::insert_broadcast(&tx, id, signed)?;
        Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(())
    }

    /// An x402 payment was settled by the resource's facilitator in transaction
    /// `settlement` (its hash): the record becomes `submitted` with that hash, so the
    /// receipt tracker confirms it like any transaction, and the spend is committed.
    /// Only a payment still `reserved`.
    pub fn mark_x402_settled(&self, id: &str, settlement: &str, now: u64, entry: AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("UPDATE spends SET state = 'committed' WHERE tx_id = ?1", [id])?;
        let held = tx.execute(
            "UPDATE transactions SET status = 'submitted', tx_hash = ?2, updated_at = ?3
             WHERE id = ?1 AND status = 'reserved' AND kind = ?4",
            params![id, settlement, i(now), X402_KIND],
        )?;
        if held != 1 {
            return Err(StoreError::Conflict(format!("x402 payment {id} is no longer reserved")));
        }
        Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(())
    }

    fn insert_broadcast(conn: &Conn<'_>, id: &str, signed: &Broadcast) -> Result<()> {
        conn.execute(
            "INSERT INTO broadcasts (hash, tx_id, kind, raw, gas, max_fee_per_gas, max_priority_fee_per_gas, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                signed.hash,
                id,
                signed.kind.as_str(),
                hex::encode(&signed.raw),
                i(signed.gas),
                signed.max_fee_per_gas.to_string(),
                signed.max_priority_fee_per_gas.to_string(),
                i(signed.created_at)
            ],
        )?;
        Ok(())
    }

    /// Records a replacement of submitted transaction `id` at the same nonce (a
    /// speed-up or a cancel), before it is broadcast, if `id` is still submitted with
    /// `current_hash` as its latest version; it becomes the latest. `false` when the
    /// transaction moved on meanwhile (mined, or replaced by another call).
    pub fn add_replacement(
        &self,
        id: &str,
        current_hash: &str,
        signed: &Broadcast,
        now: u64,
        entry: AuditEntry,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE transactions SET tx_hash = ?3, updated_at = ?4 WHERE id = ?1 AND tx_hash = ?2 AND status = 'submitted'",
            params![id, current_hash, signed.hash, i(now)],
        )?;
        if updated == 0 {
            return Ok(false);
        }
        Self::insert_broadcast(&tx, id, signed)?;
        Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(true)
    }

    /// The node refused replacement `hash` of `id` (and does not know it): it is
    /// forgotten and `previous_hash` is the latest version again.
    pub fn drop_replacement(&self, id: &str, hash: &str, previous_hash: &str) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM broadcasts WHERE hash = ?1 AND tx_id = ?2 AND kind != 'original'", params![hash, id])?;
        tx.execute(
            "UPDATE transactions SET tx_hash = ?3 WHERE id = ?1 AND tx_hash = ?2",
            params![id, hash, previous_hash],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every signed version of transaction `id`, oldest first (the last is the latest).
    pub fn broadcasts(&self, id: &str) -> Result<Vec<Broadcast>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT hash, kind, raw, gas, max_fee_per_gas, max_priority_fee_per_gas, created_at
             FROM broadcasts WHERE tx_id = ?1 ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                u(r.get(3)?),
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                u(r.get(6)?),
            ))
        })?;
        rows.map(|row| {
            let (hash, kind, raw, gas, max_fee, priority, created_at) = row?;
            let corrupt = |what: &str| StoreError::Corrupt(format!("broadcast {hash}: {what}"));
            Ok(Broadcast {
                kind: BroadcastKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
                raw: hex::decode(&raw).map_err(|_| corrupt("raw"))?,
                gas,
                max_fee_per_gas: max_fee.parse().map_err(|_| corrupt("max fee"))?,
                max_priority_fee_per_gas: priority.parse().map_err(|_| corrupt("priority fee"))?,
                created_at,
                hash,
            })
        })
        .collect()
    }

    /// The signing run of transaction `id` reached its point of no return (the
    /// daemon is about to send the message that lets the cosigner finish the
    /// signature): its spend becomes committed and no release takes it back.
    pub fn commit_spend(&self, id: &str) -> Result<()> {
        self.conn()?.execute("UPDATE spends SET state = 'committed' WHERE tx_id = ?1", [id])?;
        Ok(())
    }

    /// Nothing was broadcast: releases the reservation (a spend committed at the
    /// signing run's point of no return stays: a signature may exist) and returns
    /// the nonce for reuse (a transaction signed later with it voids any earlier
    /// signature for the same nonce).
    pub fn release(&self, id: &str, error: &str, now: u64, entry: AuditEntry) -> Result<()> {
        self.release_when(id, None, error, now, entry).map(|_| ())
    }

    /// Releases `id` as [`Store::release`] does, but only while it is still `reserved`
    /// and became so at or before `reserved_before` (its `updated_at`): a reservation whose daemon died
    /// (or lost the database) between reserving and recording its signature, which
    /// would otherwise hold its nonce, and every later one, for good. Whatever that
    /// daemon does next cannot store or broadcast a signature for it
    /// ([`Store::mark_submitted`] needs `reserved`). Returns whether it was released.
    pub fn release_abandoned(
        &self,
        id: &str,
        reserved_before: u64,
        error: &str,
        now: u64,
        entry: AuditEntry,
    ) -> Result<bool> {
        self.release_when(id, Some(reserved_before), error, now, entry)
    }

    fn release_when(
        &self,
        id: &str,
        abandoned_before: Option<u64>,
        error: &str,
        now: u64,
        entry: AuditEntry,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        // Immediate: the status read and the release are one step (on PostgreSQL every
        // write transaction holds the write lock from its start anyway).
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // wallet, nonce, status, when it became so, chain
        type Row = (String, Option<i64>, String, i64, Option<i64>);
        let row: Option<Row> = tx
            .query_row(
                "SELECT wallet_id, nonce, status, updated_at, chain_id FROM transactions WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        if let Some(cutoff) = abandoned_before {
            match &row {
                Some((_, _, status, reserved_at, _))
                    if status == TxStatus::Reserved.as_str()
                        && u64::try_from(*reserved_at).unwrap_or(u64::MAX) <= cutoff => {}
                _ => return Ok(false),
            }
        }
        tx.execute("DELETE FROM spends WHERE tx_id = ?1 AND state = 'reserved'", [id])?;
        tx.execute(
            "UPDATE transactions SET status = 'failed', error = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, error, i(now)],
        )?;
        if let Some((wallet, Some(nonce), _, _, Some(chain))) = row {
            tx.execute(
                "INSERT INTO free_chain_nonces (wallet_id, chain_id, nonce) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![wallet, chain, nonce],
            )?;
        }
        // The failure's webhook events go out with the release itself; an audit
        // failure here must not keep the reservation: release, then audit best-effort.
        let mut entry = entry;
        Self::record_events_in(&tx, &std::mem::take(&mut entry.events), now)?;
        tx.commit()?;
        drop(conn);
        let _ = self.audit(entry, now);
        Ok(true)
    }

    /// Final state from the chain: version `mined` of `id` was mined, with `success`.
    /// A mined cancel makes the transaction `cancelled` (its spend still counts: only
    /// the node says the cancel was mined); anything else `confirmed` or `failed`.
    /// Returns the status.
    /// Only a `submitted` transaction changes: when another replica's tracker recorded
    /// the receipt first, nothing is written (no second audit record or webhook) and
    /// the status it recorded is returned.
    pub fn mark_final(&self, id: &str, mined: &str, success: bool, now: u64, entry: AuditEntry) -> Result<TxStatus> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let current: Option<String> =
            tx.query_row("SELECT status FROM transactions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        if let Some(current) = current.filter(|status| status != TxStatus::Submitted.as_str()) {
            return TxStatus::parse(&current);
        }
        let kind: Option<String> = tx
            .query_row("SELECT kind FROM broadcasts WHERE hash = ?1 AND tx_id = ?2", params![mined, id], |r| r.get(0))
            .optional()?;
        let status = match (kind.as_deref(), success) {
            (Some("cancel"), _) => TxStatus::Cancelled,
            (_, true) => TxStatus::Confirmed,
            (_, false) => TxStatus::Failed,
        };
        // A mined cancel keeps its spend counted for the window: whether the cancel or
        // the original was mined is only the node's word, and a lying node must not be
        // able to hand a paid send's budget back (SECURITY.md, "lying RPC node").
        tx.execute(
            "UPDATE transactions SET status = ?2, tx_hash = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, status.as_str(), mined, i(now)],
        )?;
        Self::append_audit(&tx, &self.audit_path, entry, now)?;
        tx.commit()?;
        Ok(status)
    }

    /// Freed nonces that strand broadcast transactions: `(wallet, chain, nonce)` for
    /// every free nonce below a `submitted` transaction of the same wallet on the same
    /// chain. The node holds those transactions back until the gap is filled.
    pub fn stranding_gaps(&self) -> Result<Vec<NonceGap>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT f.wallet_id, f.chain_id, f.nonce FROM free_chain_nonces f WHERE EXISTS (
                 SELECT 1 FROM transactions t WHERE t.wallet_id = f.wallet_id AND t.chain_id = f.chain_id
                 AND t.status = 'submitted' AND t.nonce > f.nonce) ORDER BY f.wallet_id, f.chain_id, f.nonce",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok(NonceGap { wallet_id: r.get::<_, String>(0)?, chain_id: u(r.get(1)?), nonce: u(r.get(2)?) })
        })?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Forgets a free nonce the chain has already used (nothing to fill).
    pub fn drop_free_nonce(&self, gap: &NonceGap) -> Result<()> {
        self.conn()?.execute(
            "DELETE FROM free_chain_nonces WHERE wallet_id = ?1 AND chain_id = ?2 AND nonce = ?3",
            params![gap.wallet_id, i(gap.chain_id), i(gap.nonce)],
        )?;
        Ok(())
    }

    /// Takes the freed `nonce` of `wallet` for a zero-value self-send that fills the
    /// gap it left (`kind` `nonce_fill`, no spend), audited with `entry` in the same
    /// transaction. `None` when the nonce is no longer free (a send took it).
    pub fn reserve_nonce_fill(
        &self,
        request: NewTransaction,
        nonce: u64,
        now: u64,
        entry: AuditEntry,
    ) -> Result<Option<TxRecord>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = tx.execute(
            "DELETE FROM free_chain_nonces WHERE wallet_id = ?1 AND chain_id = ?2 AND nonce = ?3",
            params![request.wallet_id, i(request.chain_id), i(nonce)],
        )?;
        if taken == 0 {
            return Ok(None);
        }
        let decision = serde_json::json!({"verdict": "allow", "tier": "instant", "rule_id": "nonce_fill",
            "reason": "fills a nonce freed below transactions already broadcast", "policy_hash": "none"});
        tx.execute(
            "INSERT INTO transactions (id, wallet_id, to_address, value_wei, nonce, status, decision, created_at,
                                       updated_at, kind, data, asset, amount, chain_id, gas_limit, max_fee_per_gas,
                                       requested_by)
             VALUES (?1, ?2, ?3, '0', ?4, 'reserved', ?5, ?6, ?6, 'nonce_fill', '', 'native', '0', ?7, ?8, ?9, 'daemon')",
            params![
                request.id,
                request.wallet_id,
                request.to,
                i(nonce),
                decision.to_string(),
                i(now),
                i(request.chain_id),
                i(request.gas_limit),
                request.max_fee_per_gas.to_string()
            ],
        )?;
        Self::append_audit(&tx, &self.audit_path, entry, now)?;
        let record =
            Self::tx_by(&tx, "id = ?1", &[&request.id])?.ok_or_else(|| StoreError::Corrupt("lost insert".into()))?;
        tx.commit()?;
        Ok(Some(record))
    }

    /// The genesis block hash of the chain `wallet` was first used on with `chain_id`;
    /// binds it to `genesis` the first time (a wallet created before this was
    /// recorded is bound on first use).
    pub fn bind_genesis(&self, wallet: &str, chain_id: u64, genesis: &str, now: u64) -> Result<String> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO wallet_chains (wallet_id, chain_id, genesis_hash, bound_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
            params![wallet, i(chain_id), genesis, i(now)],
        )?;
        conn.query_row(
            "SELECT genesis_hash FROM wallet_chains WHERE wallet_id = ?1 AND chain_id = ?2",
            params![wallet, i(chain_id)],
            |r| r.get(0),
        )
    }

    /// Submitted transactions awaiting a receipt.
    pub fn submitted(&self) -> Result<Vec<TxRecord>> {
        self.with_status(TxStatus::Submitted)
    }

    /// Transactions reserved but not yet signed and recorded (after a crash: never broadcast).
    pub fn reserved(&self) -> Result<Vec<TxRecord>> {
        self.with_status(TxStatus::Reserved)
    }

    pub(crate) fn with_status(&self, status: TxStatus) -> Result<Vec<TxRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {TX_COLUMNS} FROM transactions WHERE status = ?1"))?;
        let rows = stmt.query_map([status.as_str()], tx_from_row)?;
        rows.map(|row| {
            let (mut tx, status) = row?;
            tx.status = TxStatus::parse(&status)?;
            Ok(tx)
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(decision: serde_json::Value) -> TxRecord {
        TxRecord {
            id: "tx_1".into(),
            wallet_id: "w".into(),
            to: String::new(),
            value_wei: "0".into(),
            nonce: None,
            status: TxStatus::Reserved,
            tx_hash: None,
            error: None,
            decision,
            created_at: 0,
            kind: "native_transfer".into(),
            data: "0x".into(),
            asset: "native".into(),
            amount: "0".into(),
            recipient: None,
            chain_id: None,
            expires_at: None,
            execute_after: None,
            gas_limit: None,
            max_fee_per_gas: None,
            approval: None,
            units: AmountUnits::default(),
        }
    }

    #[test]
    fn the_stored_decision_reads_back_as_typed_tier_and_verdict() {
        for tier in [Tier::Instant, Tier::Notify, Tier::Delay, Tier::Approval] {
            let decision = serde_json::to_value(tier).unwrap();
            let tx = record(json!({"verdict": "allow", "tier": decision, "reason": "no rule was violated"}));
            assert_eq!((tx.tier(), tx.verdict()), (Some(tier), Some(Verdict::Allow)));
        }
        let denied = record(json!({"verdict": "deny", "tier": "instant"}));
        assert_eq!(denied.verdict(), Some(Verdict::Deny));
        for unreadable in [json!({}), json!({"tier": "loud", "verdict": 1}), json!(null), json!("notify")] {
            let tx = record(unreadable);
            assert_eq!((tx.tier(), tx.verdict()), (None, None));
        }
    }
}
