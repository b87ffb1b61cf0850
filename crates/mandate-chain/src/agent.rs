//! Agent keys: an agent holds its own secp256k1 key instead of a bearer secret.
//!
//! - An owner registers the agent's address for a wallet by signing the
//!   registration's canonical text ([`AgentRegistration::message`]) with an owner key
//!   (Ed25519, or EIP-191 for an EVM owner), as owners sign approvals.
//! - The agent signs every request: the EIP-712 digest of `mandate_core::agent`
//!   (re-exported here), sent in the `Mandate-Agent`, `Mandate-Agent-Nonce` and
//!   `Mandate-Agent-Signature` headers. The secret never crosses the wire.

use std::collections::BTreeSet;

use alloy_primitives::Address;
pub use mandate_core::agent::*;

use mandate_core::policy::Policy;

use crate::approval::{ApprovalError, OwnerKey, OwnerSignature};

/// The name that marks a wallet's session agent (at most one, it must expire).
pub const SESSION_AGENT: &str = "session";
/// Named agents a wallet may have at once.
pub const MAX_NAMED_AGENTS: usize = 3;

/// An owner's authorisation of an agent key for one wallet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRegistration {
    /// The wallet (`wal_…`).
    pub wallet: String,
    /// The agent's address (its secp256k1 key).
    pub agent: Address,
    /// The agent's name, or `session` for the wallet's one session agent.
    pub name: String,
    /// What it may do: the session scopes (`read`, `prepare`, `sign`, `broadcast`, `freeze`).
    pub scopes: Vec<String>,
    /// Unix seconds after which it stops working.
    pub valid_until: u64,
    /// A number the owner picks, so that two registrations never share a text.
    pub nonce: u64,
    /// The agent's own policy (docs/POLICY.md), evaluated together with the wallet's:
    /// both must allow, so it can only narrow what the agent may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

impl AgentRegistration {
    /// The text the owner signs, one field per line, nothing left out (the policy by
    /// its hash, `none` without one).
    pub fn message(&self) -> String {
        let policy = self.policy().ok().flatten().map_or_else(|| "none".to_string(), |p| p.hash);
        format!(
            "Mandate agent registration\nwallet: {}\nagent: {}\nname: {}\nscopes: {}\npolicy: {policy}\nvalid until: {}\nnonce: {}",
            self.wallet,
            self.agent.to_checksum(None),
            self.name,
            self.scopes.join(","),
            self.valid_until,
            self.nonce
        )
    }

    /// The agent's own policy, parsed (`None` without one).
    pub fn policy(&self) -> Result<Option<Policy>, ApprovalError> {
        self.policy
            .as_ref()
            .map(|document| {
                Policy::parse(&document.to_string())
                    .map_err(|e| ApprovalError::Malformed(format!("the agent's policy: {e}")))
            })
            .transpose()
    }

    /// Well-formed: printable short wallet and name, known scopes, no duplicates.
    pub fn validate(&self) -> Result<(), ApprovalError> {
        let printable = |text: &str| {
            !text.is_empty()
                && text.len() <= 64
                && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !printable(&self.wallet) || !printable(&self.name) {
            return Err(ApprovalError::Malformed("wallet and name: 1 to 64 letters, digits, '_' or '-'".into()));
        }
        let known = ["read", "prepare", "sign", "broadcast", "freeze"];
        if self.scopes.is_empty() || self.scopes.iter().any(|s| !known.contains(&s.as_str())) {
            return Err(ApprovalError::Malformed(format!("scopes: one or more of {}", known.join(", "))));
        }
        let unique: BTreeSet<&String> = self.scopes.iter().collect();
        if unique.len() != self.scopes.len() {
            return Err(ApprovalError::Malformed("scopes: each at most once".into()));
        }
        self.policy()?;
        Ok(())
    }

    /// Verifies that one of `owners` signed this registration and that it is still
    /// valid at `now` (unix seconds).
    pub fn verify_owner(&self, signature: &OwnerSignature, owners: &[OwnerKey], now: u64) -> Result<(), ApprovalError> {
        self.validate()?;
        if !owners.contains(&signature.key) {
            return Err(ApprovalError::NotAnOwner(signature.key.to_string()));
        }
        if now >= self.valid_until {
            return Err(ApprovalError::Expired(self.valid_until));
        }
        signature.verify_message(&self.message())
    }
}
