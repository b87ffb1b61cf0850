//! `mandate bench mpc`: DKG, threshold signing and refresh with every party in its
//! own process over loopback, against single-key k256 signing of the same digests.
//!
//! Layout of the run: this process is the service party (a listener thread plus the
//! coordinator of each signing run); the cosigner is a child `mandate cosigner serve`;
//! the recovery party is a child `mandate recovery dkg|refresh`. No process holds
//! two shares.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use k256::ecdsa::SigningKey;
use mandate_chain::UnsignedTx;
use mandate_core::{ErrorCode, Role, WalletId};
use mandate_cosigner::{CosignerHandler, PartyHome};
use mandate_mpc::net::{coordinate, serve, Operation, PeerBook, PeerEntry, RunOutput, RunPlan};
use serde_json::{json, Value};

use crate::secret_var;
use crate::{BenchError as CliError, BenchResult as CliResult};

pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> CliError {
    CliError::new(ErrorCode::Internal, e.to_string())
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    (percentile(&samples, 0.5), percentile(&samples, 0.99), mean)
}

fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

fn free_addr() -> CliResult<String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(internal)?;
    Ok(listener.local_addr().map_err(internal)?.to_string())
}

fn run_child(args: &[&str], env: (&str, &str)) -> CliResult<Value> {
    let exe = std::env::current_exe().map_err(internal)?;
    let output = Command::new(exe).arg("--json").args(args).env(env.0, env.1).output().map_err(internal)?;
    let value: Value = serde_json::from_slice(&output.stdout).map_err(internal)?;
    if !output.status.success() {
        return Err(CliError::new(ErrorCode::Internal, format!("mandate {args:?} failed: {value}")));
    }
    Ok(value)
}

fn wait_listening(addr: &str) -> CliResult<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(CliError::new(ErrorCode::PeerUnavailable, format!("nothing listening on {addr}")))
}

/// Runs the benchmark: `mandate bench mpc`.
pub fn mpc(signatures: usize) -> CliResult {
    if signatures < 50 {
        return Err(CliError::invalid("--signatures must be at least 50 for a meaningful p99"));
    }
    let dir = std::env::temp_dir().join(format!("mandate-bench-{}", hex::encode(rand::random::<[u8; 6]>())));
    let result = mpc_in(&dir, signatures);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn mpc_in(dir: &std::path::Path, signatures: usize) -> CliResult {
    let homes = Role::ALL.map(|role| PartyHome::new(dir.join(role.as_str()), role));
    let keys = homes.iter().map(|home| home.init()).collect::<Result<Vec<_>, _>>()?;
    let (service_addr, cosigner_addr) = (free_addr()?, free_addr()?);
    let [service_key, cosigner_key, recovery_key] = keys.as_slice() else {
        return Err(internal("expected three identity keys"));
    };
    let key_of = |role: Role| match role {
        Role::Service => *service_key,
        Role::Cosigner => *cosigner_key,
        Role::Recovery => *recovery_key,
    };
    let entry = |role: Role, addr: Option<&String>| (role, PeerEntry { public_key: key_of(role), addr: addr.cloned() });
    let [service_home, cosigner_home, recovery_home] = homes;
    service_home
        .pair(&PeerBook { peers: [entry(Role::Cosigner, Some(&cosigner_addr)), entry(Role::Recovery, None)].into() })?;
    cosigner_home.pair(&PeerBook { peers: [entry(Role::Service, None), entry(Role::Recovery, None)].into() })?;
    recovery_home.pair(&PeerBook {
        peers: [entry(Role::Service, Some(&service_addr)), entry(Role::Cosigner, Some(&cosigner_addr))].into(),
    })?;

    // The wallet owner, known to the service and the cosigner: the refresh at the end
    // is a ceremony it authorises.
    let owner = mandate_chain::approval::OwnerSecret::generate_ed25519();
    let owner_file = dir.join("owner.key");
    mandate_mpc::net::write_secret_file(&owner_file, owner.to_file_text().as_bytes(), false)?;
    let owners_line = format!("owners = [\"{}\"]\n", owner.public());
    std::fs::write(service_home.owners_path(), &owners_line).map_err(internal)?;
    let limits = std::fs::read_to_string(cosigner_home.limits_path()).map_err(internal)?;
    let limits = limits.replacen("allow_calldata = false\n", &format!("allow_calldata = false\n{owners_line}"), 1);
    std::fs::write(cosigner_home.limits_path(), limits).map_err(internal)?;

    let cosigner_secret = random_secret();
    let exe = std::env::current_exe().map_err(internal)?;
    let cosigner_dir = cosigner_home.dir().display().to_string();
    let _cosigner = KillOnDrop(
        Command::new(exe)
            .args(["cosigner", "serve", "--data-dir", &cosigner_dir, "--listen", &cosigner_addr])
            .env(secret_var(Role::Cosigner), &cosigner_secret)
            .stdout(Stdio::null())
            .spawn()
            .map_err(internal)?,
    );
    wait_listening(&cosigner_addr)?;

    let service_secret = zeroize::Zeroizing::new(random_secret().into_bytes());
    let shares = service_home.shares(service_secret.clone())?;
    let listener = TcpListener::bind(&service_addr).map_err(internal)?;
    let (identity, peers) = (service_home.identity()?, service_home.peers()?);
    let handler = CosignerHandler::service(service_home.clone(), service_home.shares(service_secret)?);
    std::thread::spawn(move || serve(listener, identity, peers, handler));

    let recovery_env = (secret_var(Role::Recovery), random_secret());
    let recovery_dir = recovery_home.dir().display().to_string();
    let share_file = dir.join("recovery.share").display().to_string();
    let env = (recovery_env.0, recovery_env.1.as_str());
    let dkg = run_child(&["recovery", "dkg", "--dir", &recovery_dir, "--out", &share_file], env)?;
    let wallet: WalletId =
        dkg.get("wallet_id").and_then(Value::as_str).unwrap_or_default().parse().map_err(internal)?;
    let dkg_ms = dkg.get("elapsed_ms").and_then(Value::as_f64).unwrap_or(f64::NAN);

    let share = shares.load(&wallet)?;
    let (identity, peers) = (service_home.identity()?, service_home.peers()?);
    let to = Address::repeat_byte(0x42);
    let mut threshold_ms = Vec::with_capacity(signatures);
    let mut digests = Vec::with_capacity(signatures);
    for nonce in 0..signatures {
        let tx =
            UnsignedTx::new(31337, nonce as u64, to, U256::from(1u64), 21_000, 2_000_000_000, 1_000_000_000, vec![]);
        let digest = tx.signing_hash();
        let start = Instant::now();
        let plan = RunPlan::new(
            wallet.clone(),
            vec![Role::Service, Role::Cosigner],
            Operation::Sign { payload: tx.encode(), approval: None },
        )?;
        let output =
            coordinate(&identity, &peers, &plan, Some(&share), Some(digest), &mut mandate_mpc::net::no_commit)?;
        threshold_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if !matches!(output, RunOutput::Signature { .. }) {
            return Err(internal("signing returned no signature"));
        }
        digests.push(digest);
    }

    let baseline_key = SigningKey::random(&mut rand::rngs::OsRng);
    let mut baseline_ms = Vec::with_capacity(signatures);
    for digest in &digests {
        let start = Instant::now();
        let signed = baseline_key.sign_prehash_recoverable(digest).map_err(internal)?;
        baseline_ms.push(start.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(signed);
    }

    let owner_file = owner_file.display().to_string();
    let refresh = run_child(
        &["recovery", "refresh", "--dir", &recovery_dir, "--share", &share_file, "--owner-key", &owner_file],
        env,
    )?;
    let refresh_ms = refresh.get("elapsed_ms").and_then(Value::as_f64).unwrap_or(f64::NAN);

    let (p50, p99, mean) = stats(threshold_ms);
    let (b50, b99, bmean) = stats(baseline_ms);
    Ok(json!({
        "machine_cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "signatures": signatures,
        "dkg_ms": dkg_ms,
        "refresh_ms": refresh_ms,
        "threshold_sign_p50_ms": p50,
        "threshold_sign_p99_ms": p99,
        "threshold_sign_mean_ms": mean,
        "k256_sign_p50_ms": b50,
        "k256_sign_p99_ms": b99,
        "k256_sign_mean_ms": bmean,
        "ratio_p50_threshold_over_k256": p50 / b50,
        "target_sign_p50_ms": 15.0,
        "meets_target": p50 <= 15.0,
        "notes": "threshold sign = service (this process) + cosigner (child process) over loopback, per signature: TCP connect, Noise XX handshake, proposal with cosigner limit check and ledger write, 3 DKLs23 rounds, verification, completion notice. dkg/refresh include sealing each share with Argon2id (64 MiB, t=3, p=4).",
    }))
}
