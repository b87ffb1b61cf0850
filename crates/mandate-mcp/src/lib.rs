//! Mandate's MCP server (docs/MCP.md): the tools an LLM agent may use, in bands.
//!
//! The model is an untrusted caller — it may be prompt-injected — so this crate holds
//! no authority of its own. Every tool is a thin translation of one REST call made
//! with the agent's own session token ([`Backend`]); the daemon's REST layer is the
//! single place where sessions, scopes, freezes and the policy are enforced, and
//! where everything is audited. What this crate adds is *discoverability control*:
//! a tool outside the active [`Band`] is never listed and is refused as unknown.
//!
//! Two transports share one handler, [`MandateMcp`]:
//! - stdio (`mandate mcp --band …`, [`serve_stdio`]): one session token from the
//!   environment, a fixed band (at most the session's), calls over HTTP to the daemon;
//! - streamable HTTP at `/mcp` on the daemon ([`http_service`]): each request carries
//!   its session token in `Authorization`, the band is the session's own, and calls go
//!   to the daemon's router in-process.
//!
//! No tool approves, unfreezes, edits a policy or manages sessions, and tool
//! descriptions are static text written here.

mod backend;
mod band;
mod server;
mod tools;

pub use backend::{decode_reply, Backend, Credential, RestCall, RestFailure};
pub use band::{Band, BandError};
pub use server::{http_service, serve_stdio, MandateMcp, StdioError, SESSION_ENDED};
pub use tools::{tool_names, Access, ToolSpec, TOOLS};
