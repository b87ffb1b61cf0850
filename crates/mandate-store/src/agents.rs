//! Agent keys: addresses an owner registered for a wallet (with the signed
//! registration kept as evidence), and each agent's highest request nonces.

use crate::db::{params, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::audit::AuditEntry;
use crate::store::{i, u, Result, Store, StoreError};

/// A registered agent key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    /// `agt_…`.
    pub id: String,
    /// The agent's address (checksummed).
    pub address: String,
    /// The wallet it acts for.
    pub wallet_id: String,
    /// Its name, or `session` for the wallet's session agent.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Unix seconds after which it stops working.
    pub valid_until: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// When revoked (or replaced by a registration with its name).
    pub revoked_at: Option<u64>,
    /// When it last signed a request that passed.
    pub last_used_at: Option<u64>,
    /// Its own policy document (docs/POLICY.md), which narrows the wallet's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, address, wallet_id, name, scopes, valid_until, created_at, revoked_at, last_used_at, policy";

fn from_row(r: &Row) -> Result<AgentRecord> {
    let scopes: String = r.get(4)?;
    Ok(AgentRecord {
        id: r.get(0)?,
        address: r.get(1)?,
        wallet_id: r.get(2)?,
        name: r.get(3)?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        valid_until: u(r.get(5)?),
        created_at: u(r.get(6)?),
        revoked_at: r.get::<_, Option<i64>>(7)?.map(u),
        last_used_at: r.get::<_, Option<i64>>(8)?.map(u),
        policy: r
            .get::<_, Option<String>>(9)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("an agent's policy: {e}")))?,
    })
}

/// The wallet already has as many named agents as it may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLimit {
    /// The named agents it has.
    pub named: usize,
}

impl Store {
    /// Registers `agent` (audited with `entry`, evidence kept): an active agent of the
    /// wallet with the same name (the session agent included) is revoked at once;
    /// `Err(AgentLimit)` inside when the wallet would have more than `max_named`
    /// named agents. An address active for another wallet is a conflict.
    pub fn register_agent(
        &self,
        agent: &AgentRecord,
        registration: &str,
        owner_signature: &str,
        max_named: usize,
        entry: AuditEntry,
    ) -> Result<std::result::Result<Vec<String>, AgentLimit>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let elsewhere: Option<String> = tx
            .query_row(
                "SELECT wallet_id FROM agents WHERE address = ?1 AND revoked_at IS NULL AND wallet_id != ?2",
                params![agent.address, agent.wallet_id],
                |r| r.get(0),
            )
            .optional()?;
        if elsewhere.is_some() {
            return Err(StoreError::Conflict(format!("agent {} acts for another wallet", agent.address)));
        }
        // A registration is used once: replaying an old one never revives a revoked agent.
        let used: Option<i64> =
            tx.query_row("SELECT 1 FROM agents WHERE registration = ?1", [registration], |r| r.get(0)).optional()?;
        if used.is_some() {
            return Err(StoreError::Conflict("this registration was used already; sign a new one".into()));
        }
        let replaced: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM agents WHERE wallet_id = ?1 AND revoked_at IS NULL AND (name = ?2 OR address = ?3)",
            )?;
            let rows = stmt.query_map(params![agent.wallet_id, agent.name, agent.address], |r| r.get(0))?;
            rows.collect::<Result<Vec<_>>>()?
        };
        for id in &replaced {
            tx.execute("UPDATE agents SET revoked_at = ?2 WHERE id = ?1", params![id, i(agent.created_at)])?;
        }
        if agent.name != "session" {
            let named: i64 = tx.query_row(
                "SELECT COUNT(*) FROM agents WHERE wallet_id = ?1 AND revoked_at IS NULL AND name != 'session'",
                [&agent.wallet_id],
                |r| r.get(0),
            )?;
            let named = usize::try_from(named).unwrap_or(usize::MAX);
            if named >= max_named {
                return Ok(Err(AgentLimit { named }));
            }
        }
        tx.execute(
            "INSERT INTO agents (id, address, wallet_id, name, scopes, valid_until, registration, owner_signature,
                                 created_at, policy)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                agent.id,
                agent.address,
                agent.wallet_id,
                agent.name,
                agent.scopes.join(","),
                i(agent.valid_until),
                registration,
                owner_signature,
                i(agent.created_at),
                agent.policy.as_ref().map(|policy| policy.to_string())
            ],
        )?;
        Self::append_audit(&tx, self.audit_path(), entry, agent.created_at)?;
        tx.commit()?;
        Ok(Ok(replaced))
    }

    /// The active agent with `address`, if any.
    pub fn active_agent(&self, address: &str) -> Result<Option<AgentRecord>> {
        self.conn()?
            .query_row(
                &format!("SELECT {COLUMNS} FROM agents WHERE address = ?1 AND revoked_at IS NULL"),
                [address],
                from_row,
            )
            .optional()
    }

    /// The agent `id` (active or not).
    pub fn agent(&self, id: &str) -> Result<Option<AgentRecord>> {
        self.conn()?.query_row(&format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"), [id], from_row).optional()
    }

    /// The registration of agent `id` as stored (the signed registration and the
    /// owner's signature, kept as evidence and shown to the cosigner).
    pub fn agent_registration(&self, id: &str) -> Result<Option<(String, String)>> {
        self.conn()?
            .query_row("SELECT registration, owner_signature FROM agents WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
    }

    /// A wallet's agents, active and revoked, newest first.
    pub fn agents(&self, wallet: &str) -> Result<Vec<AgentRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM agents WHERE wallet_id = ?1 ORDER BY created_at DESC, rowid DESC"
        ))?;
        let rows = stmt.query_map([wallet], from_row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Revokes the active agent with `address` (audited). False if none.
    pub fn revoke_agent(&self, address: &str, now: u64, entry: AuditEntry) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let revoked = tx.execute(
            "UPDATE agents SET revoked_at = ?2 WHERE address = ?1 AND revoked_at IS NULL",
            params![address, i(now)],
        )?;
        if revoked > 0 {
            Self::append_audit(&tx, self.audit_path(), entry, now)?;
        }
        tx.commit()?;
        Ok(revoked > 0)
    }

    /// Checks and keeps a request nonce of agent `id` in one transaction: `window`
    /// gets the nonces kept (ascending) and returns those to keep, or why the nonce
    /// is refused (then nothing changes). Marks the agent used at `now`.
    pub fn use_agent_nonce<R>(
        &self,
        id: &str,
        now: u64,
        window: impl FnOnce(Vec<u64>) -> std::result::Result<Vec<u64>, R>,
    ) -> Result<std::result::Result<(), R>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let kept: Vec<u64> = {
            let mut stmt = tx.prepare("SELECT nonce FROM agent_nonces WHERE agent_id = ?1 ORDER BY nonce")?;
            let rows = stmt.query_map([id], |r| r.get::<_, i64>(0))?;
            rows.map(|row| row.map(u)).collect::<Result<Vec<_>>>()?
        };
        let keep = match window(kept.clone()) {
            Ok(keep) => keep,
            Err(refusal) => return Ok(Err(refusal)),
        };
        for nonce in kept.iter().filter(|n| !keep.contains(n)) {
            tx.execute("DELETE FROM agent_nonces WHERE agent_id = ?1 AND nonce = ?2", params![id, i(*nonce)])?;
        }
        for nonce in keep.iter().filter(|n| !kept.contains(n)) {
            tx.execute("INSERT INTO agent_nonces (agent_id, nonce) VALUES (?1, ?2)", params![id, i(*nonce)])?;
        }
        tx.execute("UPDATE agents SET last_used_at = ?2 WHERE id = ?1", params![id, i(now)])?;
        tx.commit()?;
        Ok(Ok(()))
    }
}
