//! The owner's commands: `owner keygen`, `approve`, `deny`, `unfreeze` (signed with
//! the owner key file, verified by the daemon and again by the cosigner; they need no
//! operator credential), and the operator's `owner add|list`, `pending`, `cancel`,
//! `freeze`.
//!
//! The owner key never leaves this process. The CLI reads the decision from the
//! daemon's owner view, trusts none of it until it has rebuilt the text and checked
//! it against the fields and the calldata (`owner_review`), shows the owner what
//! signing does and asks, then signs locally and sends only the signature.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use mandate_chain::approval::{DecisionAction, OwnerKey, OwnerSecret};
use mandate_core::ErrorCode;
use mandate_mpc::net::{read_secret_file, write_secret_file};
use serde_json::json;

use crate::api::{path_id, Daemon};
use crate::operator::DaemonArg;
use crate::output::{CliError, CliResult, Report};
use crate::owner_review::{
    check_held, check_unfreeze, parse_token, render_held, render_unfreeze, KnownToken, DEFAULT_MAX_EXPIRY_SECS,
};

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
        #[arg(long, conflicts_with_all = ["evm_address", "passkey"], required_unless_present_any = ["evm_address", "passkey"])]
        ed25519_pubkey: Option<String>,
        /// The owner's EVM address (signs with EIP-191 personal_sign).
        #[arg(long, conflicts_with = "passkey")]
        evm_address: Option<String>,
        /// The owner's passkey, `webauthn:<key>@<origin>#<credential id>` as the
        /// dashboard shows it (registering in the dashboard proves the key first).
        #[arg(long)]
        passkey: Option<String>,
        /// A name for people.
        #[arg(long)]
        label: Option<String>,
    },
    /// List a wallet's owners and its quorum.
    List {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
    },
    /// The owner quorum: how many distinct owners must sign (operator).
    Quorum {
        #[command(subcommand)]
        command: QuorumCommand,
    },
}

/// `mandate owner quorum …`.
#[derive(Subcommand)]
pub(crate) enum QuorumCommand {
    /// Require M distinct owners' signatures over the same decision to approve a
    /// held transaction or lift a freeze (M is 1 to the number of owners).
    Set {
        /// The wallet id (`wal_…`).
        #[arg(long)]
        wallet: String,
        /// M, the number of distinct owners that must sign.
        #[arg(long)]
        threshold: u64,
    },
}

/// Reads an owner key file, refusing one group/world-readable.
pub(crate) fn load_owner_key(path: &Path) -> CliResult<OwnerSecret> {
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
            let (flag, value) = match &public {
                OwnerKey::Ed25519(key) => ("--ed25519-pubkey", hex::encode(key)),
                OwnerKey::Evm(address) => ("--evm-address", address.to_checksum(None)),
                OwnerKey::Passkey(passkey) => ("--passkey", passkey.to_string()),
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
        OwnerCommand::Add { wallet, ed25519_pubkey, evm_address, passkey, label } => {
            let owner_key = match (ed25519_pubkey, evm_address, passkey) {
                (Some(key), _, _) => format!("ed25519:{}", key.trim_start_matches("0x")),
                (None, Some(address), _) => format!("evm:{address}"),
                (None, None, Some(passkey)) => passkey,
                (None, None, None) => {
                    return Err(CliError::invalid("give --ed25519-pubkey, --evm-address or --passkey"))
                }
            };
            let body = json!({"owner_key": owner_key, "label": label});
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon.post(&["v1", "wallets", path_id("wallet", &wallet)?, "owners"], Some(&body))?.into())
        }
        OwnerCommand::List { wallet } => {
            let daemon = Daemon::login(&daemon.url)?;
            Ok(daemon.get(&["v1", "wallets", path_id("wallet", &wallet)?, "owners"], &[])?.into())
        }
        OwnerCommand::Quorum { command: QuorumCommand::Set { wallet, threshold } } => {
            let daemon = Daemon::login(&daemon.url)?;
            let body = serde_json::to_vec(&json!({"threshold": threshold}))
                .map_err(|e| CliError::new(ErrorCode::Internal, e.to_string()))?;
            let segments = ["v1", "wallets", path_id("wallet", &wallet)?, "owners", "quorum"];
            Ok(daemon.send_raw(mandate_client::Method::PUT, &segments, body)?.into())
        }
    }
}

/// How an owner's tool reviews a decision before signing it.
#[derive(clap::Args, Debug)]
pub(crate) struct Review {
    /// Sign without asking (for scripts). The decision is still checked and shown on
    /// stderr. Without it, the tool asks y/N on the terminal and refuses with no terminal.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Refuse a decision that stays valid longer than this many seconds from now.
    #[arg(long, env = "MANDATE_OWNER_MAX_EXPIRY_SECS", default_value_t = DEFAULT_MAX_EXPIRY_SECS)]
    pub(crate) max_expiry_secs: u64,
}

/// Tokens the owner vouches for, to show ERC-20 amounts in units.
#[derive(clap::Args, Debug)]
pub(crate) struct Tokens {
    /// A token you trust, SYMBOL=0xADDRESS:DECIMALS (repeatable, or comma-separated in
    /// MANDATE_OWNER_TOKENS). Amounts of other tokens are shown in base units.
    #[arg(long = "token", env = "MANDATE_OWNER_TOKENS", value_delimiter = ',', value_parser = parse_token)]
    pub(crate) tokens: Vec<KnownToken>,
}

pub(crate) fn unix_now() -> CliResult<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CliError::new(ErrorCode::Internal, "the system clock is before 1970"))
}

/// Shows `review` on stderr and asks y/N on the terminal, unless `--yes`.
fn confirm(review: &str, yes: bool) -> CliResult<()> {
    eprintln!("{}", review.trim_end());
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::new(
            ErrorCode::ConfirmationRequired,
            "no terminal to confirm on: review the decision above and pass --yes to sign it; nothing was signed",
        ));
    }
    eprint!("Sign this decision? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.read_line(&mut answer).map_err(|e| CliError::new(ErrorCode::Internal, format!("reading the answer: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::new(ErrorCode::ConfirmationRequired, "not confirmed; nothing was signed"))
    }
}

/// `mandate approve|deny ID --owner-key FILE [--print-signature] [--yes]
/// [--max-expiry-secs N] [--token SYMBOL=0x…:DECIMALS]`: reads the owner view of the
/// held item (no operator credential), checks it against the canonical decision,
/// shows the owner what signing does, asks, signs locally, and (unless printing)
/// posts only the signature.
pub(crate) fn decide(
    daemon: &DaemonArg,
    id: &str,
    owner_key: &Path,
    action: DecisionAction,
    print: bool,
    review: &Review,
    tokens: &Tokens,
) -> CliResult<Report> {
    let secret = load_owner_key(owner_key)?;
    // No operator credential: the owner views are readable with the item's id, and the
    // signature posted is the credential of the approve and deny endpoints.
    let client = Daemon::anonymous(&daemon.url)?;
    let id = path_id("transaction", id)?;
    let view = client.get(&["v1", "owner", "approvals", id], &[])?;
    let now = unix_now()?;
    let (decision, data) = check_held(&view, id, action, now, review.max_expiry_secs)?;
    confirm(&render_held(&decision, &data, &tokens.tokens, now), review.yes)?;
    let signature = secret.sign(&decision).map_err(|e| CliError::invalid(e.to_string()))?.to_string();
    let verb = if action == DecisionAction::Approve { "approve" } else { "deny" };
    if print {
        return Ok(Report::with_text(
            json!({"id": id, "decision": verb, "message": decision.message(), "signature": signature}),
            signature,
        ));
    }
    Ok(client.post(&["v1", "approvals", id, verb], Some(&json!({"signature": signature})))?.into())
}

/// `mandate unfreeze --wallet ID --owner-key FILE [--yes] [--max-expiry-secs N]`.
pub(crate) fn unfreeze(daemon: &DaemonArg, wallet: &str, owner_key: &Path, review: &Review) -> CliResult<Report> {
    let secret = load_owner_key(owner_key)?;
    let client = Daemon::anonymous(&daemon.url)?;
    let wallet = path_id("wallet", wallet)?;
    let view = client.get(&["v1", "owner", "wallets", wallet, "unfreeze"], &[])?;
    let now = unix_now()?;
    let decision = check_unfreeze(&view, wallet, now, review.max_expiry_secs)?;
    confirm(&render_unfreeze(&decision, &view, now), review.yes)?;
    let signature = secret.sign(&decision).map_err(|e| CliError::invalid(e.to_string()))?.to_string();
    let body = json!({"signature": signature, "expires_at": decision.expires_at});
    Ok(client.post(&["v1", "wallets", wallet, "unfreeze"], Some(&body))?.into())
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
    let listed = daemon.get(&["v1", "approvals"], &query)?;
    let lines: Vec<String> =
        listed.get("held").and_then(serde_json::Value::as_array).into_iter().flatten().map(held_line).collect();
    let text = if lines.is_empty() { "nothing is held".to_string() } else { lines.join("\n") };
    Ok(Report::with_text(listed, text))
}

/// One held item in two lines: what it is and until when, then how an owner decides.
fn held_line(item: &serde_json::Value) -> String {
    use serde_json::Value;
    let tx = item.get("transaction").cloned().unwrap_or(Value::Null);
    let text = |key: &str| tx.get(key).and_then(Value::as_str).unwrap_or("-").to_string();
    let id = text("id");
    let what = match (tx.get("amount_units").and_then(Value::as_str), tx.get("symbol").and_then(Value::as_str)) {
        (Some(amount), Some(symbol)) => format!("{amount} {symbol}"),
        _ => tx
            .get("value_wei")
            .and_then(Value::as_str)
            .and_then(|wei| mandate_core::amount::parse_base_units(wei).ok())
            .map(|wei| format!("{} ETH", mandate_core::amount::format_units(wei, 18)))
            .unwrap_or_else(|| "-".into()),
    };
    let recipient = tx.get("recipient").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| text("to"));
    let when = match (tx.get("expires_at").and_then(Value::as_u64), tx.get("execute_after").and_then(Value::as_u64)) {
        (Some(at), _) => format!("expires {}", crate::operator::time_text(at)),
        (None, Some(at)) => format!("runs after {}", crate::operator::time_text(at)),
        _ => String::new(),
    };
    let mut lines =
        vec![format!("{id}  {}  wallet {}  {what} to {recipient}  {when}", text("status"), text("wallet_id"))];
    if item.get("approve_message").is_some() {
        lines.push(format!("  mandate approve {id} --owner-key FILE   |   mandate deny {id} --owner-key FILE"));
    } else if item.get("deny_message").is_some() {
        lines.push(format!("  mandate deny {id} --owner-key FILE (cancels it)"));
    }
    lines.join("\n")
}

/// `mandate cancel ID` (operator).
pub(crate) fn cancel(daemon: &DaemonArg, id: &str) -> CliResult<Report> {
    let daemon = Daemon::login(&daemon.url)?;
    Ok(daemon.post(&["v1", "transactions", path_id("transaction", id)?, "cancel"], None)?.into())
}

/// `mandate speed-up ID`.
pub(crate) fn speed_up(daemon: &DaemonArg, id: &str) -> CliResult<Report> {
    let daemon = Daemon::login(&daemon.url)?;
    Ok(daemon.post(&["v1", "transactions", path_id("transaction", id)?, "speed-up"], None)?.into())
}
