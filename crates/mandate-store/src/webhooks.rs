//! Webhooks and their delivery log. An event is recorded once per subscribed
//! webhook; the dispatcher delivers each webhook's events in the order they were
//! recorded (only the oldest pending one of a webhook is due), retrying until it is
//! delivered or given up.

use crate::db::{params, Conn, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::audit::{AuditEntry, OutboxEvent};
use crate::store::{i, u, Result, Store};

/// A webhook. The secret is never part of it (it is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    /// `whk_…`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event names it receives.
    pub events: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
}

/// How long a delivery handed to a dispatcher stays its own (longer than an attempt's
/// 10 s timeout): another daemon on the same database does not take it meanwhile.
pub const DELIVERY_LEASE_SECS: u64 = 60;

/// One event for one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Log id.
    pub id: i64,
    /// The webhook.
    pub webhook_id: String,
    /// The event id (the same for every webhook; receivers dedupe on it).
    pub event_id: String,
    /// The event name.
    pub event: String,
    /// The exact JSON body POSTed.
    #[serde(skip)]
    pub body: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Attempts so far.
    pub attempts: u64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: u64,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// The HTTP status of the last attempt, if one answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub delivered_at: Option<u64>,
}

/// What a delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Failed; retry at `retry_at`, or give up with `None`.
    Failed {
        /// The status, if the receiver answered.
        status: Option<u16>,
        /// Why.
        error: String,
        /// The next attempt.
        retry_at: Option<u64>,
    },
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event, body, created_at, attempts, next_attempt_at, status, \
                                last_status, last_error, delivered_at";

fn delivery_from_row(r: &Row) -> Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event_id: r.get(2)?,
        event: r.get(3)?,
        body: r.get(4)?,
        created_at: u(r.get(5)?),
        attempts: u(r.get(6)?),
        next_attempt_at: u(r.get(7)?),
        status: r.get(8)?,
        last_status: r.get::<_, Option<i64>>(9)?.and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(10)?,
        delivered_at: r.get::<_, Option<i64>>(11)?.map(u),
    })
}

fn webhook_from_row(r: &Row) -> Result<WebhookRecord> {
    let events: String = r.get(2)?;
    Ok(WebhookRecord {
        id: r.get(0)?,
        url: r.get(1)?,
        events: events.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect(),
        created_at: u(r.get(3)?),
    })
}

impl Store {
    /// Every webhook's stored secret (sealed by the daemon, or clear from an older
    /// one), removed webhooks included: `(id, secret)`.
    pub fn webhook_secrets(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id, secret FROM webhooks")?;
        let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Replaces a webhook's stored secret (to seal one an older daemon kept in the clear).
    pub fn set_webhook_secret(&self, id: &str, secret: &str) -> Result<()> {
        self.conn()?.execute("UPDATE webhooks SET secret = ?2 WHERE id = ?1", params![id, secret])?;
        Ok(())
    }

    /// Adds a webhook (audited without its secret). `secret` is stored as given: the
    /// daemon gives it sealed.
    pub fn add_webhook(&self, webhook: &WebhookRecord, secret: &str, entry: AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO webhooks (id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![webhook.id, webhook.url, webhook.events.join(","), secret, i(webhook.created_at)],
        )?;
        Self::append_audit(&tx, self.audit_path(), entry, webhook.created_at)?;
        tx.commit()?;
        Ok(())
    }

    /// Active webhooks.
    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, url, events, created_at FROM webhooks WHERE removed_at IS NULL ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![], webhook_from_row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// An active webhook.
    pub fn webhook(&self, id: &str) -> Result<Option<WebhookRecord>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT id, url, events, created_at FROM webhooks WHERE id = ?1 AND removed_at IS NULL",
            [id],
            webhook_from_row,
        )
        .optional()
    }

    /// Removes a webhook (audited); its pending deliveries stop. False if unknown.
    pub fn remove_webhook(&self, id: &str, now: u64, entry: AuditEntry) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let removed = tx
            .execute("UPDATE webhooks SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL", params![id, i(now)])?;
        if removed > 0 {
            tx.execute(
                "UPDATE webhook_deliveries SET status = 'failed', last_error = 'webhook removed'
                 WHERE webhook_id = ?1 AND status = 'pending'",
                [id],
            )?;
            Self::append_audit(&tx, self.audit_path(), entry, now)?;
        }
        tx.commit()?;
        Ok(removed > 0)
    }

    /// Records each event of the outbox for every active webhook subscribed to it, in
    /// the caller's transaction. Returns how many deliveries were recorded.
    pub(crate) fn record_events_in(conn: &Conn<'_>, events: &[OutboxEvent], now: u64) -> Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let webhooks: Vec<(String, String)> = {
            let mut stmt = conn.prepare("SELECT id, events FROM webhooks WHERE removed_at IS NULL")?;
            let rows = stmt.query_map(params![], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            rows.collect::<Result<Vec<_>>>()?
        };
        let mut recorded = 0;
        for event in events {
            for (id, _) in webhooks.iter().filter(|(_, names)| names.split(',').any(|n| n == event.name)) {
                conn.execute(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, event, body, created_at, next_attempt_at, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'pending')",
                    params![id, event.id, event.name, event.body, i(now)],
                )?;
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    /// `(held transactions, pending webhook deliveries)`: transactions waiting for an
    /// owner, a delay or the executor, and deliveries not yet made or given up.
    pub fn queue_depths(&self) -> Result<(u64, u64)> {
        let conn = self.conn()?;
        let held: i64 = conn.query_row(
            "SELECT COUNT(*) FROM transactions WHERE status IN ('pending_approval', 'delayed', 'approved')",
            params![],
            |r| r.get(0),
        )?;
        let backlog: i64 =
            conn.query_row("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'", params![], |r| {
                r.get(0)
            })?;
        Ok((u(held), u(backlog)))
    }

    /// Deliveries due at `now` with their webhook's URL and stored (sealed) secret: for each
    /// webhook only its oldest pending delivery (so each receives its events in order).
    ///
    /// Each one returned is claimed for [`DELIVERY_LEASE_SECS`] in the same database
    /// transaction, so that daemons sharing a database never deliver it twice at once;
    /// [`Store::record_attempt`] ends the lease.
    pub fn due_deliveries(&self, now: u64) -> Result<Vec<(Delivery, String, String)>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {DELIVERY_COLUMNS}, (SELECT url FROM webhooks w WHERE w.id = d.webhook_id),
                        (SELECT secret FROM webhooks w WHERE w.id = d.webhook_id)
                 FROM webhook_deliveries d
                 WHERE d.id IN (SELECT MIN(id) FROM webhook_deliveries WHERE status = 'pending' GROUP BY webhook_id)
                   AND d.next_attempt_at <= ?1
                 ORDER BY d.id"
            ))?;
            let rows = stmt.query_map([i(now)], |r| Ok((delivery_from_row(r)?, r.get(12)?, r.get(13)?)))?;
            rows.collect::<Result<Vec<(Delivery, String, String)>>>()?
        };
        for (delivery, _, _) in &due {
            tx.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                params![delivery.id, i(now.saturating_add(DELIVERY_LEASE_SECS))],
            )?;
        }
        tx.commit()?;
        Ok(due)
    }

    /// Records an attempt's outcome.
    pub fn record_attempt(&self, id: i64, attempt: &Attempt, now: u64) -> Result<()> {
        let conn = self.conn()?;
        match attempt {
            Attempt::Delivered { status } => conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status = 'delivered', last_status = ?2,
                        last_error = NULL, delivered_at = ?3 WHERE id = ?1",
                params![id, i64::from(*status), i(now)],
            )?,
            Attempt::Failed { status, error, retry_at } => conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?2, last_status = ?3,
                        last_error = ?4, next_attempt_at = ?5 WHERE id = ?1",
                params![
                    id,
                    if retry_at.is_some() { "pending" } else { "failed" },
                    status.map(i64::from),
                    error,
                    i(retry_at.unwrap_or(now))
                ],
            )?,
        };
        Ok(())
    }

    /// A webhook's delivery log, newest first (at most `limit`).
    pub fn deliveries(&self, webhook_id: &str, limit: u64) -> Result<Vec<Delivery>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![webhook_id, i(limit)], delivery_from_row)?;
        rows.collect::<Result<Vec<_>>>()
    }
}
