//! The party subcommands: init, pair, serve, and the runs each party coordinates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy_primitives::{keccak256, Address};
use mandate_chain::approval::{CeremonyKind, OwnerCeremony, SignedCeremony, MAX_CEREMONY_LIFETIME_SECS};
use mandate_chain::UnsignedTx;
use mandate_core::address::parse_address;
use mandate_core::{ErrorCode, Role, WalletId};
use mandate_cosigner::{CosignerHandler, LimitsFile, PartyHome};
use mandate_mpc::net::{
    coordinate, no_commit, read_secret_env, read_secret_file, serve as serve_runs, write_secret_file, Operation,
    PeerBook, PeerEntry, PublicIdentity, RunOutput, RunPlan,
};
use mandate_mpc::{blob, KeyShare, MpcError};
use serde_json::{json, Value};

use crate::output::{CliError, CliResult};

/// The environment variable holding each party's share secret.
pub(crate) fn secret_var(role: Role) -> &'static str {
    match role {
        Role::Service => "MANDATE_MASTER_PASSWORD",
        Role::Cosigner => "MANDATE_COSIGNER_PASSWORD",
        Role::Recovery => "MANDATE_RECOVERY_PASSPHRASE",
    }
}

/// Creates a party's home; returns its public key.
pub(crate) fn init(dir: &Path, role: Role) -> CliResult<PublicIdentity> {
    Ok(PartyHome::new(dir, role).init()?)
}

/// Pins a party's peers; returns its own public key and the book pinned.
pub(crate) fn pair(
    dir: &Path,
    role: Role,
    entries: &[(Role, &String, Option<&String>)],
) -> CliResult<(PublicIdentity, PeerBook)> {
    let mut book = PeerBook::default();
    for (peer, key, addr) in entries {
        book.peers.insert(*peer, PeerEntry { public_key: key.parse()?, addr: addr.map(|a| a.to_string()) });
    }
    let home = PartyHome::new(dir, role);
    let own = home.identity()?.public();
    home.pair(&book)?;
    Ok((own, book))
}

pub(crate) fn serve(dir: PathBuf, role: Role, listen: &str) -> CliResult {
    let home = PartyHome::new(&dir, role);
    let identity = home.identity()?;
    let peers = home.peers()?;
    let shares = home.shares(read_secret_env(secret_var(role))?)?;
    let handler = match role {
        Role::Cosigner => CosignerHandler::cosigner(home, shares)?,
        _ => CosignerHandler::service(home, shares),
    };
    let listener = TcpListener::bind(listen)
        .map_err(|e| CliError::new(ErrorCode::PeerUnavailable, format!("bind {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| CliError::invalid(e.to_string()))?;
    println!("{}", json!({"role": role, "listening": addr.to_string(), "public_key": identity.public().to_hex()}));
    serve_runs(listener, identity, peers, handler)?;
    Ok(json!({"stopped": true}))
}

/// Exits the process once standard input reaches end of file (the parent died).
pub(crate) fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
}

fn decode_tx(hex_tx: &str) -> CliResult<UnsignedTx> {
    let bytes = hex::decode(hex_tx.trim().trim_start_matches("0x"))
        .map_err(|_| CliError::new(ErrorCode::InvalidTransaction, "transaction is not hex"))?;
    Ok(UnsignedTx::decode(&bytes)?)
}

fn signed_output(share: &KeyShare, signers: &[Role], tx: UnsignedTx, output: RunOutput, elapsed_ms: f64) -> CliResult {
    let RunOutput::Signature { sig, digest } = output else {
        return Err(CliError::new(ErrorCode::Internal, "signing run returned no signature"));
    };
    let address: Address = share.public().address.parse().map_err(|_| CliError::new(ErrorCode::Internal, "address"))?;
    let raw = tx.into_raw_signed(sig.r, sig.s, sig.recovery_id, address)?;
    Ok(json!({
        "wallet_id": share.wallet_id(),
        "address": share.public().address,
        "signers": signers,
        "digest": format!("0x{}", hex::encode(digest)),
        "r": format!("0x{}", hex::encode(sig.r)),
        "s": format!("0x{}", hex::encode(sig.s)),
        "recovery_id": sig.recovery_id,
        "raw_tx": format!("0x{}", hex::encode(raw)),
        "elapsed_ms": elapsed_ms,
    }))
}

/// Runs `plan` as coordinator; a ban the protocol demands is recorded with `on_ban`.
fn coordinate_run(
    home: &PartyHome,
    plan: &RunPlan,
    share: Option<&KeyShare>,
    digest: Option<[u8; 32]>,
    on_ban: impl FnOnce(Role) -> Result<(), MpcError>,
) -> CliResult<(RunOutput, f64)> {
    let identity = home.identity()?;
    let peers = home.peers()?;
    let start = Instant::now();
    match coordinate(&identity, &peers, plan, share, digest, &mut no_commit) {
        Ok(output) => Ok((output, start.elapsed().as_secs_f64() * 1e3)),
        Err(error) => {
            if let MpcError::Aborted { ban: true, culprit: mandate_mpc::Culprit::Party(culprit), .. } = &error {
                if let Err(e) = on_ban(*culprit) {
                    eprintln!("could not record the ban of {culprit}: {e}");
                }
            }
            Err(error.into())
        }
    }
}

pub(crate) fn service_sign(dir: PathBuf, wallet: &str, hex_tx: &str, approval: Option<&Path>) -> CliResult {
    let approval = approval
        .map(|path| std::fs::read(path).map_err(|e| CliError::invalid(format!("{}: {e}", path.display()))))
        .transpose()?;
    let wallet: WalletId = wallet.parse().map_err(|e: mandate_core::IdError| CliError::invalid(e.to_string()))?;
    let tx = decode_tx(hex_tx)?;
    let home = PartyHome::new(&dir, Role::Service);
    let shares = home.shares(read_secret_env(secret_var(Role::Service))?)?;
    let share = shares.load(&wallet)?;
    let signers = [Role::Service, Role::Cosigner];
    let plan = RunPlan::new(wallet, signers.to_vec(), Operation::Sign { payload: tx.encode(), approval })?;
    let (output, elapsed) = coordinate_run(&home, &plan, Some(&share), Some(tx.signing_hash()), |culprit| {
        shares.store(share.with_ban(culprit)).map(|_| ())
    })?;
    signed_output(&share, &signers, tx, output, elapsed)
}

fn recovery_passphrase() -> CliResult<zeroize::Zeroizing<Vec<u8>>> {
    Ok(read_secret_env(secret_var(Role::Recovery))?)
}

/// The fewest characters of a passphrase that seals a new recovery share.
const MIN_RECOVERY_PASSPHRASE_CHARS: usize = 12;

/// Checks the floor a new recovery share's passphrase must meet: at least
/// [`MIN_RECOVERY_PASSPHRASE_CHARS`] characters from at least two classes (lower
/// case, upper case, digits, others such as spaces). Its text is never in the error.
fn passphrase_floor(passphrase: &[u8]) -> CliResult<()> {
    let var = secret_var(Role::Recovery);
    let text = std::str::from_utf8(passphrase).map_err(|_| CliError::invalid(format!("{var}[_FILE] is not UTF-8")))?;
    let classes = [
        text.chars().any(char::is_lowercase),
        text.chars().any(char::is_uppercase),
        text.chars().any(|c| c.is_ascii_digit()),
        text.chars().any(|c| !c.is_alphanumeric()),
    ];
    let count = classes.iter().filter(|present| **present).count();
    if text.chars().count() < MIN_RECOVERY_PASSPHRASE_CHARS || count < 2 {
        return Err(CliError::invalid(format!(
            "the recovery passphrase ({var}[_FILE]) is too weak: use at least {MIN_RECOVERY_PASSPHRASE_CHARS} \
             characters of at least two kinds (lower case, upper case, digits, spaces or symbols), e.g. five random \
             words, or `head -c 24 /dev/urandom | base64`"
        )));
    }
    Ok(())
}

fn load_recovery_share(path: &Path) -> CliResult<KeyShare> {
    let passphrase = recovery_passphrase()?;
    let bytes = read_secret_file(path)?;
    let header = blob::peek_header(&bytes)?;
    let wallet: WalletId =
        header.wallet_id.parse().map_err(|_| CliError::new(ErrorCode::ShareTampered, "share names no valid wallet"))?;
    Ok(blob::open(&bytes, &passphrase, &wallet, Role::Recovery)?)
}

fn save_recovery_share(path: &Path, share: &KeyShare, replace: bool) -> CliResult<()> {
    let passphrase = recovery_passphrase()?;
    let sealed = blob::seal(share, &passphrase, &mut rand::rngs::OsRng)?;
    write_secret_file(path, &sealed, replace)?;
    Ok(())
}

fn share_of(output: RunOutput) -> CliResult<KeyShare> {
    match output {
        RunOutput::Share(share) => Ok(*share),
        RunOutput::Signature { .. } | RunOutput::Noted => {
            Err(CliError::new(ErrorCode::Internal, "run returned no share"))
        }
    }
}

/// What a DKG as the recovery party needs before it starts (checked again by
/// [`recovery_dkg`]): a free place for the share, and the passphrase to seal it.
pub(crate) fn dkg_preflight(out: &Path) -> CliResult<()> {
    if out.exists() {
        return Err(CliError::invalid(format!("{} exists; refusing to overwrite a recovery share", out.display())));
    }
    passphrase_floor(&recovery_passphrase()?)
}

/// Creates a wallet key: DKG with the service and the cosigner, coordinated by the
/// recovery party in `dir`; seals the recovery share into `out`. Used by
/// `mandate recovery dkg` and `mandate wallet create`.
pub(crate) fn recovery_dkg(dir: PathBuf, out: PathBuf) -> CliResult {
    dkg_preflight(&out)?;
    let home = PartyHome::new(&dir, Role::Recovery);
    let wallet = WalletId::from_random(rand::random());
    let plan = RunPlan::new(wallet, Role::ALL.to_vec(), Operation::Dkg)?;
    let (output, elapsed) = coordinate_run(&home, &plan, None, None, |_| Ok(()))?;
    let share = share_of(output)?;
    save_recovery_share(&out, &share, false)?;
    Ok(json!({
        "wallet_id": share.wallet_id(),
        "address": share.public().address,
        "public_key": share.public().public_key,
        "recovery_share": out.display().to_string(),
        "elapsed_ms": elapsed,
    }))
}

/// The owner who authorises a ceremony, and for how long.
pub(crate) struct CeremonyOwner {
    key_file: PathBuf,
    valid_for: u64,
}

impl CeremonyOwner {
    pub(crate) fn new(key_file: PathBuf, valid_for: u64) -> Self {
        CeremonyOwner { key_file, valid_for }
    }

    /// Signs the owner's authorization of exactly `plan` (printing the text it
    /// signs on stderr) and returns the plan carrying it.
    fn authorize(&self, plan: RunPlan, share: &KeyShare) -> CliResult<RunPlan> {
        if self.valid_for == 0 || self.valid_for > MAX_CEREMONY_LIFETIME_SECS {
            return Err(CliError::invalid(format!("--valid-for must be 1..={MAX_CEREMONY_LIFETIME_SECS} seconds")));
        }
        let secret = crate::owner::load_owner_key(&self.key_file)?;
        let (kind, target, payload) = match &plan.operation {
            Operation::Refresh => (CeremonyKind::Refresh, None, None),
            Operation::Repair { target, .. } => (CeremonyKind::Repair, Some(*target), None),
            Operation::Sign { payload, .. } => (CeremonyKind::RecoverySign, None, Some(keccak256(payload))),
            _ => return Err(CliError::invalid(format!("a {} run is not a ceremony", plan.operation_name()))),
        };
        let address: Address = share
            .public()
            .address
            .parse()
            .map_err(|_| CliError::new(ErrorCode::ShareTampered, "the share's address is unreadable"))?;
        let now = crate::owner::unix_now()?;
        let ceremony = OwnerCeremony {
            kind,
            id: format!("cer_{}", hex::encode(rand::random::<[u8; 12]>())),
            wallet: plan.wallet_id.to_string(),
            address,
            participants: plan.participants.clone(),
            target,
            payload,
            expires_at: now.saturating_add(self.valid_for),
        };
        let signature = secret.sign_ceremony(&ceremony).map_err(|e| CliError::invalid(e.to_string()))?;
        eprintln!("The owner {} authorises:\n{}\n", signature.key, ceremony.message());
        Ok(plan.authorized(SignedCeremony { ceremony, signature }.encode()))
    }
}

pub(crate) fn recovery_sign(
    dir: PathBuf,
    share_path: PathBuf,
    owner: &CeremonyOwner,
    with: Role,
    hex_tx: &str,
) -> CliResult {
    if with == Role::Recovery {
        return Err(CliError::invalid("--with must be service or cosigner"));
    }
    let tx = decode_tx(hex_tx)?;
    let share = load_recovery_share(&share_path)?;
    let home = PartyHome::new(&dir, Role::Recovery);
    let signers = vec![with, Role::Recovery];
    let plan = RunPlan::new(
        share.wallet_id().clone(),
        signers.clone(),
        Operation::Sign { payload: tx.encode(), approval: None },
    )?;
    let plan = owner.authorize(plan, &share)?;
    let signers = plan.participants.clone();
    let (output, elapsed) = coordinate_run(&home, &plan, Some(&share), Some(tx.signing_hash()), |culprit| {
        save_recovery_share(&share_path, &share.with_ban(culprit), true).map_err(|e| MpcError::Io(e.message))
    })?;
    signed_output(&share, &signers, tx, output, elapsed)
}

/// Runs a three-party operation built from the opened recovery share (opened once:
/// Argon2id is deliberately slow).
fn recovery_rerun(
    dir: PathBuf,
    share_path: PathBuf,
    owner: &CeremonyOwner,
    operation: impl FnOnce(&KeyShare) -> Operation,
) -> CliResult {
    let share = load_recovery_share(&share_path)?;
    let operation = operation(&share);
    let home = PartyHome::new(&dir, Role::Recovery);
    let plan = RunPlan::new(share.wallet_id().clone(), Role::ALL.to_vec(), operation)?;
    let plan = owner.authorize(plan, &share)?;
    let (output, elapsed) = coordinate_run(&home, &plan, Some(&share), None, |culprit| {
        save_recovery_share(&share_path, &share.with_ban(culprit), true).map_err(|e| MpcError::Io(e.message))
    })?;
    let refreshed = share_of(output)?;
    if refreshed.public() != share.public() {
        return Err(CliError::new(ErrorCode::ProtocolAborted, "the run changed the wallet key; old share kept"));
    }
    save_recovery_share(&share_path, &refreshed, true)?;
    Ok(json!({
        "wallet_id": refreshed.wallet_id(),
        "address": refreshed.public().address,
        "operation": plan.operation_name(),
        "elapsed_ms": elapsed,
    }))
}

pub(crate) fn recovery_refresh(dir: PathBuf, share_path: PathBuf, owner: &CeremonyOwner) -> CliResult {
    recovery_rerun(dir, share_path, owner, |_| Operation::Refresh)
}

pub(crate) fn recovery_repair(dir: PathBuf, share_path: PathBuf, owner: &CeremonyOwner, target: Role) -> CliResult {
    if target == Role::Recovery {
        return Err(CliError::invalid("the recovery share is repaired by the service and cosigner, not by itself"));
    }
    recovery_rerun(dir, share_path, owner, |share| Operation::Repair {
        target,
        expected_address: share.public().address.clone(),
    })
}

pub(crate) fn set_frozen(dir: PathBuf, wallet: Option<String>, frozen: bool) -> CliResult {
    let home = PartyHome::new(&dir, Role::Cosigner);
    let path = home.limits_path();
    let mut limits = LimitsFile::load(&path)?;
    match &wallet {
        None => limits.frozen = frozen,
        Some(wallet) => {
            let id: WalletId = wallet.parse().map_err(|e: mandate_core::IdError| CliError::invalid(e.to_string()))?;
            let entry = match limits.wallets.get(id.as_str()).or(limits.default.as_ref()) {
                Some(entry) => entry.clone(),
                None => return Err(CliError::invalid(format!("no limits for {id} to freeze; add them first"))),
            };
            limits.wallets.insert(id.to_string(), mandate_cosigner::WalletLimits { frozen, ..entry });
        }
    }
    let text = toml::to_string(&limits).map_err(|e| CliError::new(ErrorCode::Internal, e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| CliError::new(ErrorCode::Internal, e.to_string()))?;
    // The host's operator also lifts freezes the daemon sent (an owner's signed
    // unfreeze is the other way).
    let lifted_notices = if frozen {
        0
    } else {
        mandate_cosigner::Notices::new(&dir).lift(wallet.as_deref()).map_err(|r| CliError::new(r.code, r.message))?
    };
    Ok(json!({"frozen": frozen, "wallet": wallet, "daemon_freezes_lifted": lifted_notices}))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn build_tx(
    chain_id: u64,
    nonce: u64,
    to: &str,
    value_wei: &str,
    gas_limit: u64,
    max_fee: u128,
    priority_fee: u128,
    data: &str,
) -> CliResult<Value> {
    let to = parse_address(to).map_err(|e| CliError::invalid(e.to_string()))?;
    let value = mandate_core::amount::parse_base_units(value_wei)
        .map_err(|e| CliError::invalid(format!("--value-wei: {e}")))?;
    if priority_fee > max_fee {
        return Err(CliError::invalid("--priority-fee exceeds --max-fee"));
    }
    let input = hex::decode(data.trim_start_matches("0x")).map_err(|_| CliError::invalid("--data is not hex"))?;
    let tx = UnsignedTx::new(chain_id, nonce, to, value, gas_limit, max_fee, priority_fee, input);
    Ok(
        json!({"unsigned_tx": format!("0x{}", hex::encode(tx.encode())), "signing_hash": format!("0x{}", hex::encode(tx.signing_hash()))}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_recovery_passphrase_needs_length_and_two_kinds_of_characters() {
        for weak in ["a", "aaaaaaaaaaa", "abcdefghijklmnop", "123456789012345", "ABCDEFGHIJKLMN"] {
            let error = passphrase_floor(weak.as_bytes()).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidInput, "{weak}");
            assert!(error.message.contains("too weak"), "{}", error.message);
            assert!(!error.message.contains(weak) || weak.len() < 2, "the passphrase is not echoed");
        }
        for strong in ["recovery passphrase for tests", "Tr0ub4dor&3x", "correct horse battery staple"] {
            assert!(passphrase_floor(strong.as_bytes()).is_ok(), "{strong}");
        }
    }
}
