//! Mandate's storage. SQLite (bundled, WAL) is the embedded default; every invariant
//! that needs atomicity — spend-cap reservations, nonce allocation, the audit chain —
//! is implemented here inside one database transaction.
//!
//! Must never depend on the server, the HTTP stack or key shares.

mod audit;
mod held;
mod migrations;
mod operator_keys;
mod store;
mod webhooks;

pub use audit::{check_anchor, verify_audit_file, AuditAnchor, AuditEntry, AuditProblem, AuditRecord};
pub use held::{Claim, OwnerRecord, Resolution};
pub use operator_keys::OperatorKeyRecord;
pub use store::{
    FreezeRecord, NewTransaction, ReserveOutcome, ReserveView, SessionRecord, Store, StoreError, TxRecord, TxStatus,
    WalletRecord,
};
pub use webhooks::{Attempt, Delivery, WebhookRecord};
