//! Operator API keys: named, scoped, expiring and revocable credentials for the
//! operator's day-to-day commands, separate from the master password that seals the
//! service party's shares. Only the SHA-256 of a key is stored.

use crate::db::{params, Conn, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::audit::AuditEntry;
use crate::store::{i, u, Result, Store};

/// An operator key (the key itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorKeyRecord {
    /// Id (public), `opk_…`.
    pub id: String,
    /// The operator's name for it.
    pub name: String,
    /// SHA-256 of the key, hex.
    #[serde(skip)]
    pub key_hash: String,
    /// Scopes (`admin`, `read`, `freeze`).
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Who created it (`operator`, `operator:key:<id>`).
    pub created_by: String,
    /// Not valid from then on, if it expires.
    pub expires_at: Option<u64>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<u64>,
    /// When revoked, if revoked.
    pub revoked_at: Option<u64>,
}

const COLUMNS: &str = "id, name, key_hash, scopes, created_at, created_by, expires_at, last_used_at, revoked_at";

/// How often `last_used_at` is written at most (it costs a database write).
const LAST_USE_GRANULARITY_SECS: u64 = 60;

impl OperatorKeyRecord {
    /// Whether a use at `now` should be recorded: `last_used_at` is written at most
    /// once a minute, so a key used within the last minute needs no write.
    pub fn last_use_due(&self, now: u64) -> bool {
        self.last_used_at.is_none_or(|t| now >= t.saturating_add(LAST_USE_GRANULARITY_SECS))
    }
}

fn from_row(r: &Row) -> Result<OperatorKeyRecord> {
    let scopes: String = r.get(3)?;
    Ok(OperatorKeyRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        key_hash: r.get(2)?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        created_at: u(r.get(4)?),
        created_by: r.get(5)?,
        expires_at: r.get::<_, Option<i64>>(6)?.map(u),
        last_used_at: r.get::<_, Option<i64>>(7)?.map(u),
        revoked_at: r.get::<_, Option<i64>>(8)?.map(u),
    })
}

impl Store {
    /// Whether `actor` may still create things at `now`: always, unless it is an
    /// operator key (`operator:key:<id>`) that is revoked or expired.
    pub(crate) fn creator_live(tx: &Conn<'_>, actor: &str, now: u64) -> Result<bool> {
        let Some(key) = actor.strip_prefix("operator:key:") else { return Ok(true) };
        let live: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM operator_keys WHERE id = ?1 AND revoked_at IS NULL
                 AND (expires_at IS NULL OR expires_at > ?2)",
                params![key, i(now)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(live.is_some())
    }

    /// Inserts an operator key and audits it in the same transaction. A key created
    /// with another key (`created_by` `operator:key:<id>`) is refused (`Ok(false)`,
    /// nothing written) when that key was revoked or expired meanwhile: a create that
    /// was in flight during a revocation leaves no spare behind.
    pub fn insert_operator_key(&self, key: &OperatorKeyRecord, entry: AuditEntry) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !Self::creator_live(&tx, &key.created_by, key.created_at)? {
            return Ok(false);
        }
        tx.execute(
            &format!("INSERT INTO operator_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL)"),
            params![
                key.id,
                key.name,
                key.key_hash,
                key.scopes.join(" "),
                i(key.created_at),
                key.created_by,
                key.expires_at.map(i)
            ],
        )?;
        Self::append_audit(&tx, self.audit_path(), entry, key.created_at)?;
        tx.commit()?;
        Ok(true)
    }

    /// The key whose hash is `key_hash`, whatever its state.
    pub fn operator_key_by_hash(&self, key_hash: &str) -> Result<Option<OperatorKeyRecord>> {
        let conn = self.conn()?;
        conn.query_row(&format!("SELECT {COLUMNS} FROM operator_keys WHERE key_hash = ?1"), [key_hash], from_row)
            .optional()
    }

    /// A key by id.
    pub fn operator_key(&self, id: &str) -> Result<Option<OperatorKeyRecord>> {
        let conn = self.conn()?;
        conn.query_row(&format!("SELECT {COLUMNS} FROM operator_keys WHERE id = ?1"), [id], from_row).optional()
    }

    /// Every key, oldest first (revoked and expired ones too).
    pub fn operator_keys(&self) -> Result<Vec<OperatorKeyRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM operator_keys ORDER BY created_at, id"))?;
        let rows = stmt.query_map(params![], from_row)?;
        rows.collect::<Result<_>>()
    }

    /// Records that key `id` authenticated a request at `now` (at most one write a minute).
    pub fn touch_operator_key(&self, id: &str, now: u64) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE operator_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
            params![id, i(now), i(now.saturating_sub(LAST_USE_GRANULARITY_SECS))],
        )?;
        Ok(())
    }

    /// Revokes key `id` (audited), and with it every unrevoked key it created, and
    /// every key those created (each audited, naming the key it fell with): a leaked
    /// admin key's revocation must not leave the keys its holder minted working.
    pub fn revoke_operator_key(&self, id: &str, now: u64, entry: AuditEntry) -> Result<KeyRevocation> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let actor = entry.actor.clone();
        let revoke = |key: &str| {
            tx.execute(
                "UPDATE operator_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![key, i(now)],
            )
        };
        let revoked = revoke(id)? > 0;
        if revoked {
            Self::append_audit(&tx, self.audit_path(), entry, now)?;
        }
        // Every descendant, revoked ones too (a key revoked before may have children
        // that are not), each visited once.
        let (mut also_revoked, mut parents) = (Vec::new(), vec![id.to_string()]);
        let mut visited = std::collections::BTreeSet::from([id.to_string()]);
        while let Some(parent) = parents.pop() {
            let mut stmt = tx.prepare("SELECT id FROM operator_keys WHERE created_by = ?1")?;
            let children: Vec<String> =
                stmt.query_map(params![format!("operator:key:{parent}")], |r| r.get(0))?.collect::<Result<_>>()?;
            for child in children {
                if !visited.insert(child.clone()) {
                    continue;
                }
                parents.push(child.clone());
                if revoke(&child)? == 0 {
                    continue;
                }
                let entry = AuditEntry {
                    actor: actor.clone(),
                    event: "operator_key.revoked".into(),
                    wallet: None,
                    decision: None,
                    policy_hash: None,
                    details: serde_json::json!({"key_id": child, "created_by_revoked_key": parent}),
                    events: Vec::new(),
                };
                Self::append_audit(&tx, self.audit_path(), entry, now)?;
                also_revoked.push(child);
            }
        }
        tx.commit()?;
        let keys = visited.into_iter().collect();
        Ok(KeyRevocation { revoked, also_revoked, keys })
    }
}

/// What [`Store::revoke_operator_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRevocation {
    /// Whether the key itself was revoked now (false: unknown, or revoked before).
    pub revoked: bool,
    /// The keys revoked with it: those it created, and theirs.
    pub also_revoked: Vec<String>,
    /// The key and every key made with it (revoked now or before): the sessions any
    /// of them made are to be revoked too.
    pub keys: Vec<String>,
}
