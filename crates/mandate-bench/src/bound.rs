//! What `mandate bench send` compares a run with, measured in the same run: the
//! threshold signatures alone (this process as the service party, with the daemon's
//! own share, identity and pins, over a kept-open channel to the daemon's cosigner)
//! and the CPU time they cost both parties, read from `/proc/<pid>/stat` of this
//! process and of the cosigner process.
//!
//! From those: at concurrency 1, send p50 ÷ (threshold sign p50 + single-key send
//! p50); at concurrency ≥ cores, the signing bound (cores ÷ CPU seconds per
//! threshold signature, both parties together) and the sends per second achieved as
//! a fraction of it.

use std::path::Path;
use std::time::Instant;

use alloy_primitives::{Address, U256};
use mandate_chain::UnsignedTx;
use mandate_core::{Role, WalletId};
use mandate_cosigner::PartyHome;
use mandate_mpc::net::{no_commit, read_secret_file, Coordinator, Operation, RunOutput, RunPlan};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::mpc::{internal, percentile};
use crate::BenchResult as CliResult;

/// `/proc/<pid>/stat` counts in clock ticks; Linux reports them at USER_HZ = 100.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system, every thread, exited ones included) of `pid`.
fn cpu_secs(pid: &str) -> CliResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(internal)?;
    // The command name (field 2) may hold spaces; the fields after its `)` do not.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) / TICKS_PER_SEC),
        _ => Err(internal(format!("unreadable /proc/{pid}/stat"))),
    }
}

/// The process whose command line names `cosigner` and `dir`: the daemon's `--dev`
/// cosigner for the data directory `dir`.
fn cosigner_pid(dir: &Path) -> CliResult<String> {
    let wanted = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").map_err(internal)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
        if args.iter().any(|a| a == "cosigner") && args.iter().any(|a| a.contains(&wanted)) {
            return Ok(name);
        }
    }
    Err(internal(format!("no cosigner process for {wanted}")))
}

/// Threshold signatures alone against the daemon's cosigner.
pub(crate) struct SignOnly {
    coordinator: Coordinator,
    share: std::sync::Arc<mandate_mpc::KeyShare>,
    wallet: WalletId,
    cosigner_pid: String,
}

/// What [`SignOnly::measure`] found.
pub(crate) struct SignFigures {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// CPU seconds per signature, this process and the cosigner together.
    pub(crate) cpu_secs_per_signature: f64,
}

impl SignOnly {
    /// The daemon's service party as `data` (a `--dev` data directory) holds it.
    pub(crate) fn open(data: &Path, wallet: &str) -> CliResult<SignOnly> {
        let home = PartyHome::new(data.join("service"), Role::Service);
        let mut password = read_secret_file(&data.join("master-password"))?;
        while password.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            password.pop();
        }
        let shares = home.shares(Zeroizing::new(password.to_vec()))?;
        let wallet: WalletId = wallet.parse().map_err(internal)?;
        let share = shares.load(&wallet)?;
        let coordinator = Coordinator::new(home.identity()?, home.peers()?);
        Ok(SignOnly { coordinator, share, wallet, cosigner_pid: cosigner_pid(data)? })
    }

    /// `count` signatures one after another (after one unmeasured warm-up). Each
    /// signs a 1-wei transfer at a nonce far above any the benchmark broadcasts.
    pub(crate) fn measure(&self, count: usize) -> CliResult<SignFigures> {
        let sign = |nonce: u64| -> CliResult<()> {
            let tx = UnsignedTx::new(
                31337,
                1_000_000 + nonce,
                Address::repeat_byte(0x42),
                U256::from(1u64),
                21_000,
                2_000_000_000,
                1_000_000_000,
                vec![],
            );
            let operation = Operation::Sign { payload: tx.encode(), approval: None };
            let plan = RunPlan::new(self.wallet.clone(), vec![Role::Service, Role::Cosigner], operation)?;
            match self.coordinator.coordinate(&plan, Some(&self.share), Some(tx.signing_hash()), &mut no_commit)? {
                RunOutput::Signature { .. } => Ok(()),
                _ => Err(internal("signing returned no signature")),
            }
        };
        sign(0)?;
        let cpu = || -> CliResult<f64> { Ok(cpu_secs("self")? + cpu_secs(&self.cosigner_pid)?) };
        let cpu_before = cpu()?;
        let mut latencies = Vec::with_capacity(count);
        for nonce in 1..=count as u64 {
            let begun = Instant::now();
            sign(nonce)?;
            latencies.push(begun.elapsed().as_secs_f64() * 1e3);
        }
        let cpu_used = cpu()? - cpu_before;
        latencies.sort_by(f64::total_cmp);
        Ok(SignFigures {
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
            cpu_secs_per_signature: cpu_used / count.max(1) as f64,
        })
    }
}

/// The figures against the targets of issue 14 from one run: `mandate` and
/// `baseline` are the run's reports (`p50_ms`, `sends_per_sec`).
pub(crate) fn against_targets(
    sign: &SignFigures,
    mandate: &Value,
    baseline: &Value,
    concurrency: usize,
    cores: usize,
) -> Value {
    let field = |report: &Value, name: &str| report.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let bound = cores as f64 / sign.cpu_secs_per_signature;
    let mut figures = serde_json::Map::new();
    figures.insert("threshold_sign_p50_ms".into(), json!(sign.p50_ms));
    figures.insert("threshold_sign_p99_ms".into(), json!(sign.p99_ms));
    figures.insert("cpu_ms_per_threshold_signature".into(), json!(sign.cpu_secs_per_signature * 1e3));
    figures.insert("signing_bound_per_sec".into(), json!(bound));
    if concurrency == 1 {
        let ratio = field(mandate, "p50_ms") / (sign.p50_ms + field(baseline, "p50_ms"));
        figures.insert("ratio_send_p50_over_sign_plus_single_key_p50".into(), json!(ratio));
        figures.insert("target_ratio".into(), json!(1.15));
        figures.insert("meets_ratio_target".into(), json!(ratio <= 1.15));
    }
    if concurrency >= cores {
        let fraction = field(mandate, "sends_per_sec") / bound;
        figures.insert("throughput_fraction_of_signing_bound".into(), json!(fraction));
        figures.insert("target_fraction".into(), json!(0.9));
        figures.insert("meets_bound_target".into(), json!(fraction >= 0.9));
    }
    Value::Object(figures)
}
