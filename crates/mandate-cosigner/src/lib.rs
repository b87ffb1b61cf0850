//! The cosigning party: holds the second share of every wallet and signs only what
//! its own hard limits allow.
//!
//! It runs as its own process (`mandate cosigner serve`) with its own data
//! directory, its own secret and its own limits file. Nothing it receives can change
//! its limits: they are read from `limits.toml` on the cosigner host, which no API
//! writes. It decodes the full payload (transaction, typed data, message) and
//! recomputes the digest itself; a bare hash is signed only if `limits.toml` allows
//! raw hashes for the wallet (off by default).
//!
//! Must never depend on the daemon (`mandate-server`) or its database.

mod anchor;
mod ceremony;
mod durable;
mod handler;
mod home;
mod ledger;
mod limits;
mod notices;

pub use anchor::{AnchorRecord, AuditAnchorFile};
pub use handler::{CosignerHandler, OwnerSource};
pub use home::{CosignerHome, PartyHome};
pub use ledger::{SpendLedger, WINDOW_SECS};
pub use limits::{LimitsFile, WalletLimits, DEFAULT_LIMITS};
pub use notices::{NoticedFreeze, Notices};
