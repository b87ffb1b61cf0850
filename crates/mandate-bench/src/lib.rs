//! The benchmarks behind `mandate bench` (README, "Benchmarks"): each prints one JSON
//! object of figures measured in one run, against a baseline measured in the same run.
//!
//! - [`mpc`]: DKG, threshold signing and refresh, every party in its own process,
//!   against single-key k256 signing;
//! - [`send`]: agent sends through the whole daemon against a real anvil, against a
//!   single-key, no-policy sender on the same node;
//! - [`policy`]: policy decisions for a 100-rule policy (the pure engine);
//! - [`mcp_bench`]: MCP `tools/call` round trips against the same calls over REST;
//! - [`replicas`]: agent sends through two daemons on one PostgreSQL database against
//!   one daemon on SQLite, with the invariant violations counted afterwards.
//!
//! The daemon is reached through `mandate-client` (the one HTTP client to it); anvil
//! comes from `mandate-test-support`. [`mpc`], [`send`] and [`mcp_bench`] start the
//! `mandate` binary as child processes: they must run inside it (`mandate bench …`),
//! since they start the current executable.

mod auth;
mod bound;
mod mcp;
mod mpc;
mod policy;
mod replicas;
mod send;

use mandate_core::{ErrorCode, Role};
use serde_json::Value;

pub use crate::auth::auth_bench;
pub use crate::mcp::mcp_bench;
pub use crate::mpc::mpc;
pub use crate::policy::policy;
pub use crate::replicas::replicas;
pub use crate::send::send;

/// Why a benchmark did not finish: a stable code and a message (the CLI prints them
/// as it prints any error).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BenchError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

impl BenchError {
    /// An error with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        BenchError { code, message: message.into() }
    }

    /// A bad argument (`INVALID_INPUT`).
    pub fn invalid(message: impl Into<String>) -> Self {
        BenchError::new(ErrorCode::InvalidInput, message)
    }
}

impl From<mandate_mpc::MpcError> for BenchError {
    fn from(error: mandate_mpc::MpcError) -> Self {
        BenchError::new(error.code(), error.to_string())
    }
}

impl From<mandate_chain::ChainError> for BenchError {
    fn from(error: mandate_chain::ChainError) -> Self {
        BenchError::new(error.code(), error.to_string())
    }
}

impl From<mandate_mpc::net::Refusal> for BenchError {
    fn from(refusal: mandate_mpc::net::Refusal) -> Self {
        BenchError::new(refusal.code, refusal.message)
    }
}

impl From<mandate_client::Error> for BenchError {
    fn from(error: mandate_client::Error) -> Self {
        BenchError::new(error.code(), error.to_string())
    }
}

/// A benchmark's figures, or why it did not finish. (The modules were written in the
/// CLI, with its names for these two.)
pub type BenchResult<T = Value> = Result<T, BenchError>;

/// The variable holding a party's secret (as `mandate` reads it).
fn secret_var(role: Role) -> &'static str {
    match role {
        Role::Service => "MANDATE_MASTER_PASSWORD",
        Role::Cosigner => "MANDATE_COSIGNER_PASSWORD",
        Role::Recovery => "MANDATE_RECOVERY_PASSPHRASE",
    }
}
