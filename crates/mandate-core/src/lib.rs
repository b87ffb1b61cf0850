//! Mandate's domain core: party roles, identifiers and the stable error codes that
//! every surface (REST, MCP, CLI) shows the same way.
//!
//! This crate must never depend on IO: no tokio, no sockets, no files, no HTTP
//! clients, no database drivers. Everything here is a plain value, so it is
//! small enough to audit and exact to test.

pub mod action;
pub mod address;
pub mod agent;
pub mod amount;
pub mod decode;
mod error_code;
mod ids;
pub mod policy;
mod role;
mod scope;

pub use error_code::{envelope as error_envelope, ErrorCategory, ErrorCode};
pub use ids::{IdError, WalletId};
pub use role::{Role, RoleError};
pub use scope::{Scope, ScopeError};
