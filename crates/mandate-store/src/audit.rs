//! The hash-chained audit trail: one JSON line per record in `audit.jsonl`, mirrored
//! in the `audit` table. Each record carries the previous record's hash; the hash is
//! SHA-256 over the previous hash and the record's canonical JSON.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a caller records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who acted: `operator`, `agent:<session id>`, `daemon`.
    pub actor: String,
    /// What happened, e.g. `transaction.requested`, `policy.decision`, `wallet.created`.
    pub event: String,
    /// The wallet concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    /// The policy decision, if the event has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
    /// The policy version hash in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// Anything else (never secrets).
    #[serde(default)]
    pub details: serde_json::Value,
    /// Webhook events that report this change: written to the delivery log in the
    /// same database transaction as the record (the outbox), never part of the record.
    #[serde(skip)]
    pub events: Vec<OutboxEvent>,
}

impl AuditEntry {
    /// The entry with `event` in its outbox.
    #[must_use]
    pub fn with_event(mut self, event: OutboxEvent) -> AuditEntry {
        self.events.push(event);
        self
    }
}

/// A webhook event waiting in the outbox: recorded for every webhook subscribed to
/// `name` in the database transaction of the change it reports, then delivered by
/// the daemon's dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event name on the wire, e.g. `transaction.failed`.
    pub name: String,
    /// `evt_…`: the same for every webhook (receivers dedupe on it).
    pub id: String,
    /// The exact JSON body POSTed.
    pub body: String,
}

/// One stored record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// 1, 2, 3, …
    pub seq: u64,
    /// Unix seconds.
    pub ts: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hash of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hash of a record: SHA-256(prev_hash || canonical JSON of the record without `hash`).
pub(crate) fn record_hash(record: &AuditRecord) -> String {
    let mut body = serde_json::to_value(record).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.remove("hash");
    }
    let mut hasher = Sha256::new();
    hasher.update(record.prev_hash.as_bytes());
    hasher.update(serde_json::to_vec(&body).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// What `audit verify` found wrong, naming the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditProblem {
    /// A line is not a valid record.
    #[error("line {line}: not a valid audit record")]
    Unreadable {
        /// 1-based line number.
        line: usize,
    },
    /// The record's content does not match its hash: it was edited.
    #[error("record {seq} was edited (its hash does not match its content)")]
    Edited {
        /// Sequence number.
        seq: u64,
    },
    /// A sequence number is missing: records were deleted.
    #[error("record {expected} is missing (found {found} next): records were deleted")]
    Deleted {
        /// Expected sequence number.
        expected: u64,
        /// Found instead.
        found: u64,
    },
    /// The file ends before the database's last record: trailing records were deleted.
    #[error("records after {file_last} are missing from the file (the database has up to {table_last})")]
    Truncated {
        /// Last sequence number in the file.
        file_last: u64,
        /// Last sequence number in the database.
        table_last: u64,
    },
    /// Records are out of order.
    #[error("record {seq} is out of order (expected {expected})")]
    Reordered {
        /// Sequence number found.
        seq: u64,
        /// Expected.
        expected: u64,
    },
    /// The chain link to the previous record is broken.
    #[error("record {seq} does not chain to record {prev}")]
    BrokenLink {
        /// Sequence number.
        seq: u64,
        /// Previous sequence number.
        prev: u64,
    },
    /// The trail ends before a record an outside anchor (the cosigner) has seen: its
    /// tail was cut.
    #[error("records {} to {anchored} are missing: the trail ends at record {last} but the anchor saw record {anchored}", last + 1)]
    Cut {
        /// Last sequence number present.
        last: u64,
        /// The anchored sequence number.
        anchored: u64,
    },
    /// The anchored record is present with another hash: the trail was rewritten.
    #[error("record {seq} differs from the anchored record {seq}: the trail was rewritten")]
    AnchorMismatch {
        /// Sequence number.
        seq: u64,
    },
}

/// A record an outside party saw as the trail's head (its sequence number and hash):
/// the trail must still hold exactly that record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnchor {
    /// Sequence number.
    pub seq: u64,
    /// The record's hash (hex).
    pub hash: String,
}

/// Checks verified `records` against `anchor`.
pub fn check_anchor(records: &[AuditRecord], anchor: &AuditAnchor) -> Result<(), AuditProblem> {
    let last = records.last().map(|r| r.seq).unwrap_or(0);
    if anchor.seq == 0 {
        return Ok(());
    }
    if anchor.seq > last {
        return Err(AuditProblem::Cut { last, anchored: anchor.seq });
    }
    match records.iter().find(|record| record.seq == anchor.seq) {
        Some(record) if record.hash.eq_ignore_ascii_case(anchor.hash.trim_start_matches("0x")) => Ok(()),
        _ => Err(AuditProblem::AnchorMismatch { seq: anchor.seq }),
    }
}

/// Verifies an audit file; returns the records, or the first problem found.
pub fn verify_audit_file(path: &Path) -> Result<Vec<AuditRecord>, AuditProblem> {
    let file = std::fs::File::open(path).map_err(|_| AuditProblem::Unreadable { line: 0 })?;
    verify_audit_lines(BufReader::new(file).lines().map(|line| line.map_err(|_| ())))
}

/// Verifies audit records given as lines (of the file, or of the `audit` table in
/// order); returns the records, or the first problem found.
pub(crate) fn verify_audit_lines(
    lines: impl Iterator<Item = Result<String, ()>>,
) -> Result<Vec<AuditRecord>, AuditProblem> {
    let mut records = Vec::new();
    for (index, line) in lines.enumerate() {
        let line = line.map_err(|_| AuditProblem::Unreadable { line: index + 1 })?;
        let record: AuditRecord =
            serde_json::from_str(&line).map_err(|_| AuditProblem::Unreadable { line: index + 1 })?;
        if record_hash(&record) != record.hash {
            return Err(AuditProblem::Edited { seq: record.seq });
        }
        records.push(record);
    }
    let mut sorted: Vec<u64> = records.iter().map(|r| r.seq).collect();
    sorted.sort_unstable();
    if let Some((record, expected)) = records.iter().zip(&sorted).find(|(record, seq)| record.seq != **seq) {
        return Err(AuditProblem::Reordered { seq: record.seq, expected: *expected });
    }
    let mut prev_hash = GENESIS;
    for (index, record) in records.iter().enumerate() {
        let expected = index as u64 + 1;
        if record.seq != expected {
            return Err(AuditProblem::Deleted { expected, found: record.seq });
        }
        if record.prev_hash != prev_hash {
            return Err(AuditProblem::BrokenLink { seq: record.seq, prev: expected - 1 });
        }
        prev_hash = &record.hash;
    }
    Ok(records)
}
