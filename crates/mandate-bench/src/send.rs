//! `mandate bench send`: N agent sends, C at a time, through the whole daemon
//! (session auth, policy + reservation, fees and gas, 2-of-3 signing with a cosigner
//! process, broadcast) against a real anvil; and the same load with a single k256 key,
//! no policy and no daemon (build → estimate → sign → broadcast with the same RPC
//! client) as the baseline. Latency is request → transaction hash; throughput counts
//! sends accepted per second; both runs end when every transaction is mined.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use k256::ecdsa::SigningKey;
use mandate_chain::rpc::RpcClient;
use mandate_chain::UnsignedTx;
use mandate_client::{Client, Credential, Method, RawRequest, Secret};
use mandate_core::ErrorCode;
use mandate_test_support::{anvil::anvil_binary, free_port, Anvil};
use serde_json::{json, Value};

use crate::mpc::{internal, percentile, KillOnDrop};
use crate::{BenchError as CliError, BenchResult as CliResult};

struct Run {
    latencies_ms: Vec<f64>,
    elapsed: Duration,
}

impl Run {
    fn report(mut self) -> Value {
        self.latencies_ms.sort_by(f64::total_cmp);
        let sends = self.latencies_ms.len() as f64;
        json!({
            "p50_ms": percentile(&self.latencies_ms, 0.5),
            "p99_ms": percentile(&self.latencies_ms, 0.99),
            "sends_per_sec": sends / self.elapsed.as_secs_f64(),
        })
    }
}

pub(crate) fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> CliResult<T> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(value) = probe() {
            return Ok(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(CliError::new(ErrorCode::PeerUnavailable, format!("timed out waiting for {what}")))
}

/// Runs the benchmark: `mandate bench send`.
pub fn send(sends: usize, concurrency: usize) -> CliResult {
    if sends < 20 || concurrency == 0 {
        return Err(CliError::invalid("--sends must be at least 20 and --concurrency at least 1"));
    }
    let dir = std::env::temp_dir().join(format!("mandate-bench-send-{}", hex::encode(rand::random::<[u8; 6]>())));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(internal)?;
    let result = runtime.block_on(send_in(&dir, sends, concurrency));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn rpc_value(http: &reqwest::Client, url: &str, method: &str, params: Value) -> CliResult<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let reply: Value = http.post(url).json(&body).send().await.map_err(internal)?.json().await.map_err(internal)?;
    reply.get("result").cloned().ok_or_else(|| internal(format!("{method}: {reply}")))
}

/// Gives `to` a balance of `eth` at once (`anvil_setBalance`: no transaction to wait
/// for, also under interval mining).
async fn fund(http: &reqwest::Client, rpc: &str, to: Address, eth: u64) -> CliResult<()> {
    let value = format!("{:#x}", U256::from(eth) * U256::from(10u64).pow(U256::from(18u64)));
    rpc_value(http, rpc, "anvil_setBalance", json!([to.to_checksum(None), value])).await?;
    Ok(())
}

pub(crate) fn mandate(args: &[&str], env: &[(&str, String)]) -> CliResult<Value> {
    let exe = std::env::current_exe().map_err(internal)?;
    let output = Command::new(exe).arg("--json").args(args).envs(env.iter().map(|(k, v)| (k, v))).output();
    let output = output.map_err(internal)?;
    let value: Value = serde_json::from_slice(&output.stdout).map_err(internal)?;
    if !output.status.success() {
        return Err(internal(format!("mandate {args:?}: {value}")));
    }
    Ok(value)
}

/// A daemon with its local cosigner on a fresh anvil, one funded wallet with a policy,
/// and an agent session: what the daemon benchmarks run against.
pub(crate) struct BenchDaemon {
    /// Stops anvil when dropped (after the daemon: fields drop in order).
    _daemon: KillOnDrop,
    _anvil: Anvil,
    pub(crate) rpc_url: String,
    pub(crate) rpc: RpcClient,
    /// For anvil's JSON-RPC (not the daemon's API).
    pub(crate) http: reqwest::Client,
    /// The daemon's API, as the agent session.
    pub(crate) client: Client,
    pub(crate) url: String,
    pub(crate) wallet_id: String,
    pub(crate) address: Address,
    pub(crate) token: String,
}

/// Starts anvil and the daemon in `dir`; a wallet with 1000 ETH and the benchmarks'
/// policy, and a session with `scope`.
pub(crate) async fn bench_daemon(dir: &std::path::Path, scope: &str) -> CliResult<BenchDaemon> {
    if !anvil_binary().is_file() {
        return Err(internal(format!("starting anvil ({}): not found; run `npm ci`", anvil_binary().display())));
    }
    let anvil = Anvil::start();
    let rpc_url = anvil.url();
    let rpc = RpcClient::new(&rpc_url)?;
    let http = reqwest::Client::new();

    // The daemon, its local cosigner, a wallet and an agent session.
    let data = dir.join("data");
    let data_text = data.display().to_string();
    let (cosigner, service, api) = (free_port(), free_port(), free_port());
    mandate(
        &[
            "init",
            "--dev",
            "--auto-provision",
            "--data-dir",
            &data_text,
            "--cosigner-addr",
            &format!("127.0.0.1:{cosigner}"),
            "--service-addr",
            &format!("127.0.0.1:{service}"),
        ],
        &[],
    )?;
    let master_file = data.join("master-password").display().to_string();
    let listen = format!("127.0.0.1:{api}");
    let exe = std::env::current_exe().map_err(internal)?;
    let daemon = KillOnDrop(
        Command::new(exe)
            .args(["serve", "--data-dir", &data_text, "--listen", &listen, "--rpc-url", &rpc_url, "--dev"])
            .env("MANDATE_MASTER_PASSWORD_FILE", &master_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(internal)?,
    );
    let url = format!("http://{listen}");
    wait_for("the daemon", || std::net::TcpStream::connect(&listen).ok())?;
    let env = [
        ("MANDATE_URL", url.clone()),
        ("MANDATE_MASTER_PASSWORD_FILE", master_file.clone()),
        ("MANDATE_RECOVERY_PASSPHRASE", hex::encode(rand::random::<[u8; 16]>())),
        ("MANDATE_RECOVERY_DIR", data.join("recovery").display().to_string()),
    ];
    let recovery_out = dir.join("bench.recovery").display().to_string();
    let wallet = mandate(&["wallet", "create", "--name", "bench", "--recovery-out", &recovery_out], &env)?;
    let wallet_id = wallet.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let address: Address =
        wallet.get("address").and_then(Value::as_str).unwrap_or_default().parse().map_err(internal)?;
    fund(&http, &rpc_url, address, 1000).await?;
    let policy = json!({"version": 1, "rules": [
        {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
        {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "100"},
        {"id": "velocity", "type": "velocity", "window_secs": 3600, "max_count": 100000}
    ]});
    let policy_file = dir.join("policy.json");
    std::fs::write(&policy_file, policy.to_string()).map_err(internal)?;
    mandate(&["policy", "set", "--wallet", &wallet_id, "--file", &policy_file.display().to_string()], &env)?;
    let session = mandate(&["session", "create", "--wallet", &wallet_id, "--ttl", "3600", "--scope", scope], &env)?;
    let token = session.get("token").and_then(Value::as_str).unwrap_or_default().to_string();
    let client = Client::new(&url)?.with_credential(Credential::Session(Secret::new(token.clone())));
    Ok(BenchDaemon { _daemon: daemon, _anvil: anvil, rpc_url, rpc, http, client, url, wallet_id, address, token })
}

async fn send_in(dir: &std::path::Path, sends: usize, concurrency: usize) -> CliResult {
    let bench = bench_daemon(dir, "broadcast").await?;
    let (http, rpc, rpc_url, client) =
        (bench.http.clone(), bench.rpc.clone(), bench.rpc_url.clone(), bench.client.clone());
    let (wallet_id, address) = (bench.wallet_id.clone(), bench.address);
    let to = Address::repeat_byte(0x42);
    // Interval mining from here on: anvil's automine can drop transactions whose nonces
    // arrive out of order at the same moment (the baseline's too). Latency is measured
    // to the transaction hash, so the block time does not enter it.
    rpc_value(&http, &rpc_url, "evm_setIntervalMining", json!([1])).await?;

    // Warm-up (share load, connections), not measured.
    let warm = agent_send(&client, &wallet_id, to).await?;
    drop(warm);

    let endpoint = Arc::new((client.clone(), wallet_id.clone()));
    let timings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = timings.clone();
    let mandate_run = drive(sends, concurrency, move || {
        let (endpoint, collected) = (endpoint.clone(), collected.clone());
        async move {
            let (client, wallet) = &*endpoint;
            let (_, timing) = agent_send(client, wallet, to).await?;
            collected.lock().map_err(|_| internal("timings lock"))?.push(timing);
            Ok(())
        }
    })
    .await?;
    let (stages, stages_first_tenth, stages_last_tenth) = {
        let timings = timings.lock().map_err(|_| internal("timings lock"))?;
        // In the order the sends finished: whether a send costs more as the wallet's
        // history grows (every spend stays in a 24 h look-back window).
        let tenth = (timings.len() / 10).max(1);
        let first = timings.get(..tenth).unwrap_or_default();
        let last = timings.get(timings.len().saturating_sub(tenth)..).unwrap_or_default();
        (stage_medians(&timings), stage_medians(first), stage_medians(last))
    };
    wait_mined(&rpc, address, sends as u64 + 1).await?;
    // Threshold signatures alone, and their CPU cost, in this same run.
    let signing = crate::bound::SignOnly::open(&dir.join("data"), &wallet_id)?.measure(sends.min(200))?;

    // Baseline: one k256 key, no policy, no daemon.
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let from = Address::from_public_key(key.verifying_key());
    fund(&http, &rpc_url, from, 1000).await?;
    let nonce = Arc::new(AtomicU64::new(0));
    let shared = Arc::new((rpc.clone(), key));
    let baseline_run = drive(sends, concurrency, move || {
        let (shared, nonce) = (shared.clone(), nonce.clone());
        async move {
            let (rpc, key) = &*shared;
            let fees = rpc.fees().await?;
            let value = U256::from(1_000_000_000_000_000u64);
            let gas = rpc.estimate_gas(from, to, value, &[]).await?;
            let n = nonce.fetch_add(1, Ordering::SeqCst);
            let tx =
                UnsignedTx::new(31337, n, to, value, gas, fees.max_fee_per_gas, fees.max_priority_fee_per_gas, vec![]);
            let (sig, recovery) = key.sign_prehash_recoverable(&tx.signing_hash()).map_err(internal)?;
            let (r, s) = (sig.r().to_bytes().into(), sig.s().to_bytes().into());
            let raw = tx.into_raw_signed(r, s, recovery.to_byte(), from)?;
            rpc.send_raw_transaction(&raw).await?;
            Ok(())
        }
    })
    .await?;
    wait_mined(&rpc, from, sends as u64).await?;
    drop(bench);

    let (m, b) = (mandate_run.report(), baseline_run.report());
    let ratio = |field: &str| {
        m.get(field).and_then(Value::as_f64).unwrap_or(f64::NAN)
            / b.get(field).and_then(Value::as_f64).unwrap_or(f64::NAN)
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let against_targets = crate::bound::against_targets(&signing, &m, &b, concurrency, cores);
    Ok(json!({
        "machine_cores": cores,
        "against_targets": against_targets,
        "sends": sends,
        "concurrency": concurrency,
        "mandate": m,
        "baseline_single_key": b,
        "ratio_p50_latency": ratio("p50_ms"),
        "ratio_p99_latency": ratio("p99_ms"),
        "ratio_throughput": ratio("sends_per_sec"),
        "mandate_stages_p50_ms": stages,
        "mandate_stages_p50_ms_first_tenth": stages_first_tenth,
        "mandate_stages_p50_ms_last_tenth": stages_last_tenth,
        "notes": "mandate = REST send through session auth, policy reservation (SQLite, audit fsync), fees, estimateGas, 2-of-3 signing with the cosigner process, broadcast; baseline = same RPC client, single k256 key, no policy; anvil with 1 s interval mining; all on this machine",
    }))
}

/// The median of each stage the daemon reported in `Server-Timing` (`name;dur=ms, …`).
fn stage_medians(timings: &[String]) -> Value {
    let mut stages: Vec<(String, Vec<f64>)> = Vec::new();
    for header in timings {
        for part in header.split(',') {
            let Some((name, ms)) = part.trim().split_once(";dur=") else { continue };
            let Ok(ms) = ms.parse::<f64>() else { continue };
            match stages.iter_mut().find(|(known, _)| known == name) {
                Some((_, values)) => values.push(ms),
                None => stages.push((name.to_string(), vec![ms])),
            }
        }
    }
    let mut medians = serde_json::Map::new();
    for (name, mut values) in stages {
        values.sort_by(f64::total_cmp);
        medians.insert(name, json!(percentile(&values, 0.5)));
    }
    Value::Object(medians)
}

/// One agent send; returns the body and the daemon's `Server-Timing` header.
async fn agent_send(client: &Client, wallet: &str, to: Address) -> CliResult<(Value, String)> {
    let request = RawRequest::new(Method::POST, format!("/v1/wallets/{wallet}/transactions"))
        .json(&json!({"to": to.to_checksum(None), "amount": "0.001"}));
    let response = client.send_raw(request).await?;
    let status = response.status;
    let timing = response.header("server-timing").unwrap_or_default().to_string();
    let body: Value = response.json()?;
    if !(200..300).contains(&status) {
        return Err(internal(format!("send failed ({status}): {body}")));
    }
    Ok((body, timing))
}

async fn drive<F, Fut>(sends: usize, concurrency: usize, one: F) -> CliResult<Run>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = CliResult<()>> + Send + 'static,
{
    let one = Arc::new(one);
    let left = Arc::new(AtomicU64::new(sends as u64));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (one, left) = (one.clone(), left.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                let begun = Instant::now();
                one().await?;
                latencies.push(begun.elapsed().as_secs_f64() * 1e3);
            }
            Ok::<_, CliError>(latencies)
        }));
    }
    let mut latencies_ms = Vec::with_capacity(sends);
    for worker in workers {
        latencies_ms.extend(worker.await.map_err(internal)??);
    }
    Ok(Run { latencies_ms, elapsed: start.elapsed() })
}

async fn wait_mined(rpc: &RpcClient, address: Address, count: u64) -> CliResult<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let pending = rpc.pending_nonce(address).await?;
        let mined = rpc.call_raw("eth_getTransactionCount", json!([address.to_checksum(None), "latest"])).await?;
        if pending >= count
            && mined.as_str().map(|m| mandate_chain::rpc::parse_quantity(m).ok()) == Some(Some(U256::from(count)))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(internal(format!("{address} did not get {count} transactions mined")))
}
