//! The owner's commands: `owner keygen|add|list`, `approve`, `deny` (signed with the
//! owner key file, verified by the daemon and again by the cosigner), and the
//! operator's `pending`, `cancel`, `freeze`, `unfreeze`.
//!
//! The owner key never leaves this process: the CLI fetches the exact decision text
//! from the daemon, signs it locally and sends only the signature.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use mandate_chain::approval::{OwnerDecision, OwnerKey, OwnerSecret};
use mandate_core::ErrorCode;
use mandate_mpc::net::{read_secret_file, write_secret_file};
use serde_json::{json, Value};

use crate::api::{path_id, Daemon};
use crate::operator::DaemonArg;
use crate::output::{CliError, CliResult, Report};

#[derive(Subcommand)]
pub(crate) enum OwnerCommand {
    /// Create an owner key file (0600): Ed25519 by default, or secp256k1 with --evm.
    /// Prints the public identity to register with `owner add`.
    Keygen {
        /// Where to write the key (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// An EVM (secp256k1) key instead: it signs EIP-191 messages.
        #[arg(long)]
        evm: bool,
    },
    /// Register an owner of a wallet (operator).
    Add {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// The owner's Ed25519 public key, hex (from `owner keygen`).
        #[arg(long, conflicts_with = "evm_address", required_unless_present = "evm_address")]
        ed25519_pubkey: Option<String>,
        /// The owner's EVM address (signs with EIP-191 personal_sign).
        #[arg(long)]
        evm_address: Option<String>,
        /// A name for people.
        #[arg(long)]
        label: Option<String>,
    },
    /// List a wallet's owners.
    List {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
    },
}

/// Reads an owner key file, refusing one group/world-readable.
fn load_owner_key(path: &Path) -> CliResult<OwnerSecret> {
    let bytes = read_secret_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CliError::invalid("the owner key file is not text"))?;
    OwnerSecret::from_file_text(text).map_err(|e| CliError::invalid(format!("{}: {e}", path.display())))
}

pub(crate) fn owner(daemon: &DaemonArg, command: OwnerCommand) -> CliResult<Report> {
    match command {
        OwnerCommand::Keygen { out, evm } => {
            let secret = if evm {
                let bytes: [u8; 32] = rand::random();
                OwnerSecret::evm_from_bytes(&bytes).map_err(|e| CliError::new(ErrorCode::Internal, e.to_string()))?
            } else {
                OwnerSecret::generate_ed25519()
            };
            write_secret_file(&out, secret.to_file_text().as_bytes(), false)?;
            let public = secret.public();
            let (flag, value) = match public {
                OwnerKey::Ed25519(key) => ("--ed25519-pubkey", hex::encode(key)),
                OwnerKey::Evm(address) => ("--evm-address", address.to_checksum(None)),
            };
            let value_json = json!({"owner_key": public.to_string(), "file": out.display().to_string(),
                                    "register": format!("mandate owner add --wallet <wal_…> {flag} {value}")});
            Ok(Report::with_text(
                value_json,
                format!(
                    "owner key written to {} (0600)\nidentity: {public}\nregister it: mandate owner add --wallet <wal_…> {flag} {value}",
                    out.display()
                ),
            ))
        }
        OwnerCommand::Add { wallet, ed25519_pubkey, evm_address, label } => {
            let owner_key = match (ed25519_pubkey, evm_address) {
                (Some(key), _) => format!("ed25519:{}", key.trim_start_matches("0x")),
                (None, Some(address)) => format!("evm:{address}"),
                (None, None) => return Err(CliError::invalid("give --ed25519-pubkey or --evm-address")),
            };
            let body = json!({"owner_key": owner_key, "label": label});
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon.post(&["v1", "wallets", path_id("wallet", &wallet)?, "owners"], Some(&body))?.into())
        }
        OwnerCommand::List { wallet } => {
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon.get(&["v1", "wallets", path_id("wallet", &wallet)?, "owners"], &[])?.into())
        }
    }
}

fn decision_of(value: &Value, field: &str) -> CliResult<OwnerDecision> {
    let decision = value.get(field).cloned().ok_or_else(|| {
        let status = value.pointer("/transaction/status").and_then(Value::as_str).unwrap_or("unknown");
        CliError::new(ErrorCode::NotPending, format!("the transaction is {status}; there is nothing to decide"))
    })?;
    serde_json::from_value(decision)
        .map_err(|e| CliError::new(ErrorCode::Internal, format!("the daemon's decision does not parse: {e}")))
}

/// `mandate approve|deny ID --owner-key FILE [--print-signature]`: fetches the
/// decision text, checks the daemon's text is the one rebuilt from its fields,
/// signs it locally, and (unless printing) sends the signature.
pub(crate) fn decide(daemon: &DaemonArg, id: &str, owner_key: &Path, approve: bool, print: bool) -> CliResult<Report> {
    let secret = load_owner_key(owner_key)?;
    let daemon = Daemon::login(&daemon.url)?;
    let id = path_id("transaction", id)?;
    let held = daemon.get(&["v1", "approvals", id], &[])?;
    let (field, text_field, verb) = if approve {
        ("approve_decision", "approve_message", "approve")
    } else {
        ("deny_decision", "deny_message", "deny")
    };
    let decision = decision_of(&held, field)?;
    if held.get(text_field).and_then(Value::as_str) != Some(decision.message().as_str()) {
        return Err(CliError::new(ErrorCode::Internal, "the daemon's message differs from its decision; not signing"));
    }
    let signature = secret.sign(&decision).map_err(|e| CliError::invalid(e.to_string()))?.to_string();
    if print {
        return Ok(Report::with_text(
            json!({"id": id, "decision": verb, "message": decision.message(), "signature": signature}),
            signature,
        ));
    }
    let tx = daemon.post(&["v1", "approvals", id, verb], Some(&json!({"signature": signature})))?;
    Ok(tx.into())
}

/// `mandate unfreeze --wallet ID --owner-key FILE`.
pub(crate) fn unfreeze(daemon: &DaemonArg, wallet: &str, owner_key: &Path) -> CliResult<Report> {
    let secret = load_owner_key(owner_key)?;
    let daemon = Daemon::login(&daemon.url)?;
    let wallet = path_id("wallet", wallet)?;
    let offer = daemon.get(&["v1", "wallets", wallet, "unfreeze"], &[])?;
    let decision = decision_of(&offer, "decision")?;
    if offer.get("message").and_then(Value::as_str) != Some(decision.message().as_str()) {
        return Err(CliError::new(ErrorCode::Internal, "the daemon's message differs from its decision; not signing"));
    }
    let signature = secret.sign(&decision).map_err(|e| CliError::invalid(e.to_string()))?.to_string();
    let body = json!({"signature": signature, "expires_at": decision.expires_at});
    Ok(daemon.post(&["v1", "wallets", wallet, "unfreeze"], Some(&body))?.into())
}

/// `mandate freeze --wallet ID | --all [--reason TEXT]` (operator).
pub(crate) fn freeze(daemon: &DaemonArg, wallet: Option<&str>, all: bool, reason: Option<String>) -> CliResult<Report> {
    let body = json!({"reason": reason.unwrap_or_default()});
    let daemon = Daemon::login(&daemon.url)?;
    match (wallet, all) {
        (Some(wallet), false) => {
            Ok(daemon.post(&["v1", "wallets", path_id("wallet", wallet)?, "freeze"], Some(&body))?.into())
        }
        (None, true) => Ok(daemon.post(&["v1", "freeze"], Some(&body))?.into()),
        _ => Err(CliError::invalid("give exactly one of --wallet ID and --all")),
    }
}

/// `mandate pending [--wallet ID]`: held transactions with the texts owners sign.
pub(crate) fn pending(daemon: &DaemonArg, wallet: Option<&str>) -> CliResult<Report> {
    let daemon = Daemon::login(&daemon.url)?;
    let query: Vec<(&str, &str)> = wallet.map(|w| vec![("wallet", w)]).unwrap_or_default();
    Ok(daemon.get(&["v1", "approvals"], &query)?.into())
}

/// `mandate cancel ID` (operator).
pub(crate) fn cancel(daemon: &DaemonArg, id: &str) -> CliResult<Report> {
    let daemon = Daemon::login(&daemon.url)?;
    Ok(daemon.post(&["v1", "transactions", path_id("transaction", id)?, "cancel"], None)?.into())
}
