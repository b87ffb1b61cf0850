//! Mandate's storage. SQLite (bundled, WAL) is the embedded default, PostgreSQL the
//! database several daemons share; every invariant
//! that needs atomicity — spend-cap reservations, nonce allocation, the audit chain —
//! is implemented here inside one database transaction.
//!
//! Must never depend on the server, the HTTP stack or key shares.

mod agents;
mod audit;
mod chains;
mod db;
mod held;
mod idempotency;
mod migrations;
mod operator_keys;
mod spend_window;
mod store;
mod subaccounts;
mod units;
mod webhooks;

pub use agents::{AgentLimit, AgentRecord};
pub use audit::{check_anchor, verify_audit_file, AuditAnchor, AuditEntry, AuditProblem, AuditRecord, OutboxEvent};
pub use db::{DatabaseUrl, DbError};
pub use held::{Claim, OwnerRecord, QuorumStep, Resolution};
pub use idempotency::IdempotentAnswer;
pub use operator_keys::{KeyRevocation, OperatorKeyRecord};
pub use store::{
    Broadcast, BroadcastKind, FreezeRecord, NewTransaction, NonceGap, ReserveOutcome, ReserveView, SessionRecord,
    Store, StoreError, StoredPolicy, TxRecord, TxStatus, WalletRecord, X402_KIND,
};
pub use subaccounts::SubaccountRecord;
pub use units::AmountUnits;
pub use webhooks::{Attempt, Delivery, WebhookRecord, DELIVERY_LEASE_SECS};

/// Prefix of the actor name of an agent session: `agent:<session id>` (audit actors,
/// `requested_by` of transactions).
pub const AGENT_ACTOR_PREFIX: &str = "agent:";

/// The actor name of session `session_id`: `agent:<session id>`.
pub fn agent_actor(session_id: &str) -> String {
    format!("{AGENT_ACTOR_PREFIX}{session_id}")
}

/// The session id of an actor name, if it names an agent session.
pub fn agent_session_of(actor: &str) -> Option<&str> {
    actor.strip_prefix(AGENT_ACTOR_PREFIX)
}
