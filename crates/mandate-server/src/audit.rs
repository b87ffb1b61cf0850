//! Audit entries as the daemon writes them (the store chains and persists them).

use mandate_store::AuditEntry;
use serde_json::Value;

/// An audit entry for `actor`.
pub(crate) fn audit_entry(actor: &str, event: &str, wallet: Option<&str>, details: Value) -> AuditEntry {
    AuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        wallet: wallet.map(str::to_string),
        decision: None,
        policy_hash: None,
        details,
        events: Vec::new(),
    }
}
