//! The first answer to a send that failed, kept under its idempotency key, so that a
//! replay answers what the first request got (its status and body) instead of a
//! fresh decision or the failed transaction's record.

use crate::db::{params, OptionalExtension};

use crate::store::{i, u, Result, Store};

/// A stored answer to a request with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentAnswer {
    /// What was asked (the caller's fingerprint of the request: a replay with the same
    /// key must ask the same).
    pub request: String,
    /// The HTTP status of the first answer.
    pub status: u16,
    /// The first answer's body (JSON text).
    pub body: String,
    /// Unix seconds.
    pub created_at: u64,
}

impl Store {
    /// The answer stored for `key` of `wallet_id`, if any.
    pub fn idempotent_answer(&self, wallet_id: &str, key: &str) -> Result<Option<IdempotentAnswer>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT request, status, body, created_at FROM idempotent_answers
                 WHERE wallet_id = ?1 AND idempotency_key = ?2",
            params![wallet_id, key],
            |r| {
                Ok(IdempotentAnswer {
                    request: r.get(0)?,
                    status: u16::try_from(r.get::<_, i64>(1)?).unwrap_or(500),
                    body: r.get(2)?,
                    created_at: u(r.get(3)?),
                })
            },
        )
        .optional()
    }

    /// Keeps `answer` for `key` of `wallet_id`. The first answer stays: returns
    /// `false` (and changes nothing) when one was stored already.
    pub fn record_idempotent_answer(&self, wallet_id: &str, key: &str, answer: &IdempotentAnswer) -> Result<bool> {
        let conn = self.conn()?;
        let inserted = conn.execute(
            "INSERT INTO idempotent_answers (wallet_id, idempotency_key, request, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (wallet_id, idempotency_key) DO NOTHING",
            params![wallet_id, key, answer.request, i64::from(answer.status), answer.body, i(answer.created_at)],
        )?;
        Ok(inserted == 1)
    }

    /// Whether a transaction of `wallet_id` was recorded under `key`.
    pub fn has_transaction_with_key(&self, wallet_id: &str, key: &str) -> Result<bool> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT 1 FROM transactions WHERE wallet_id = ?1 AND idempotency_key = ?2",
                params![wallet_id, key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let wallet = crate::WalletRecord {
            id: "wal_1".into(),
            name: "w".into(),
            address: "0x0000000000000000000000000000000000000001".into(),
            chain_id: 31337,
            created_at: 1,
        };
        let entry = crate::AuditEntry {
            actor: "operator".into(),
            event: "wallet.created".into(),
            wallet: Some("wal_1".into()),
            decision: None,
            policy_hash: None,
            details: serde_json::json!({}),
            events: Vec::new(),
        };
        store.insert_wallet(&wallet, entry).unwrap();
        assert_eq!(store.idempotent_answer("wal_1", "k").unwrap(), None);
        let first = IdempotentAnswer { request: "a".into(), status: 403, body: "{\"x\":1}".into(), created_at: 5 };
        assert!(store.record_idempotent_answer("wal_1", "k", &first).unwrap());
        let second = IdempotentAnswer { status: 400, ..first.clone() };
        assert!(!store.record_idempotent_answer("wal_1", "k", &second).unwrap());
        assert_eq!(store.idempotent_answer("wal_1", "k").unwrap(), Some(first));
        assert_eq!(store.idempotent_answer("wal_1", "other").unwrap(), None);
        assert!(!store.has_transaction_with_key("wal_1", "k").unwrap());
    }
}
