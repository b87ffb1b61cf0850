//! `mandate bench replicas`: the same agent load against two `mandate serve` replicas
//! on one PostgreSQL database (one cosigner, one anvil, the production layout) and
//! against one daemon on SQLite (the baseline, measured in the same run). Each wallet's
//! rolling cap admits exactly `--sends` sends; a quarter more are asked for, so the
//! cap is contended. Printed per setup: sends/s, p50/p99 of the accepted sends, and
//! the invariant violations found afterwards, which must be 0: accepted sends other
//! than the cap admits, nonces handed out twice or skipped, a chain nonce or a
//! recipient balance other than the accepted sends make, an audit chain that does
//! not verify.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use alloy_primitives::{Address, U256};
use mandate_chain::rpc::RpcClient;
use mandate_client::{Client, Credential, Method, RawRequest, Secret};
use mandate_core::ErrorCode;
use mandate_test_support::{free_port, Anvil, Postgres};
use serde_json::{json, Value};

use crate::mpc::{internal, percentile, KillOnDrop};
use crate::send::{bench_daemon, mandate, wait_for};
use crate::{BenchError, BenchResult};

/// Wei per send (0.001 ETH).
const AMOUNT_WEI: u64 = 1_000_000_000_000_000;

/// Runs the benchmark: `mandate bench replicas`.
pub fn replicas(sends: usize, concurrency: usize) -> BenchResult {
    if sends < 20 || concurrency == 0 {
        return Err(BenchError::invalid("--sends must be at least 20 and --concurrency at least 1"));
    }
    if !postgres_installed() {
        return Err(BenchError::new(
            ErrorCode::PeerUnavailable,
            "PostgreSQL's server binaries are missing: install Debian's `postgresql` (scripts/test.sh does it) \
             or set MANDATE_PG_BIN",
        ));
    }
    let dir = std::env::temp_dir().join(format!("mandate-bench-replicas-{}", hex::encode(rand::random::<[u8; 6]>())));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(internal)?;
    let result = runtime.block_on(replicas_in(&dir, sends, concurrency));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn postgres_installed() -> bool {
    std::env::var_os("MANDATE_PG_BIN").is_some()
        || std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| entry.path().join("bin/pg_ctl").is_file())
}

/// One setup under load: where to send, as whom, and what to check afterwards.
struct Target {
    /// One client per daemon (the agent's session on each).
    clients: Vec<Client>,
    /// The operator on the first daemon (policy, transaction reads).
    admin: Client,
    /// The operator on each daemon (audit verification).
    admins: Vec<Client>,
    wallet_id: String,
    address: Address,
    rpc: RpcClient,
}

async fn replicas_in(dir: &Path, sends: usize, concurrency: usize) -> BenchResult {
    let requests = sends + sends.div_ceil(4);
    let recipient = Address::repeat_byte(0x51);

    // Baseline: one daemon on SQLite (its data directory, the --dev layout).
    let single = bench_daemon(&dir.join("sqlite"), "broadcast").await?;
    let admin = admin_client(&single.url, &dir.join("sqlite/data/master-password")).await?;
    set_cap(&admin, &single.wallet_id, sends).await?;
    let baseline = Target {
        clients: vec![single.client.clone()],
        admins: vec![admin.clone()],
        admin,
        wallet_id: single.wallet_id.clone(),
        address: single.address,
        rpc: single.rpc.clone(),
    };
    rpc_call(&single.rpc, "evm_setIntervalMining", json!([1])).await?;
    let sqlite = load(&baseline, requests, concurrency, recipient).await?;
    let sqlite_violations = check(&baseline, &sqlite, sends, recipient).await?;
    drop(single);

    // Two replicas on PostgreSQL, one cosigner, one anvil.
    let postgres = Postgres::start();
    let cluster = Cluster::start(&dir.join("postgres"), &postgres.new_database("bench")).await?;
    set_cap(&cluster.target.admin, &cluster.target.wallet_id, sends).await?;
    rpc_call(&cluster.target.rpc, "evm_setIntervalMining", json!([1])).await?;
    let replicated = load(&cluster.target, requests, concurrency, recipient).await?;
    let replicated_violations = check(&cluster.target, &replicated, sends, recipient).await?;
    drop(cluster);
    drop(postgres);

    let (s, r) = (sqlite.report(), replicated.report());
    let field = |value: &Value, name: &str| value.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let total = sqlite_violations.get("total").and_then(Value::as_u64).unwrap_or(u64::MAX)
        + replicated_violations.get("total").and_then(Value::as_u64).unwrap_or(u64::MAX);
    Ok(json!({
        "machine_cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "sends_admitted_by_cap": sends,
        "requests": requests,
        "concurrency": concurrency,
        "sqlite_one_daemon": {"load": s, "violations": sqlite_violations},
        "postgres_two_replicas": {"load": r, "violations": replicated_violations},
        "ratio_throughput_replicas_over_sqlite": field(&r, "sends_per_sec") / field(&s, "sends_per_sec"),
        "ratio_p50_replicas_over_sqlite": field(&r, "p50_ms") / field(&s, "p50_ms"),
        "invariant_violations": total,
        "notes": "each request 0.001 ETH from one wallet; the wallet's rolling cap admits exactly `sends_admitted_by_cap`; requests alternate between the replicas; latency is request → answer of the accepted sends; anvil with 1 s interval mining; PostgreSQL from Debian's package with its default fsync; all on this machine",
    }))
}

/// The operator's client, logged in with the master password in `file`.
async fn admin_client(url: &str, file: &Path) -> BenchResult<Client> {
    let password = std::fs::read_to_string(file).map_err(internal)?;
    Ok(Client::new(url)?.login_operator(&Secret::new(password.trim())).await?)
}

/// A policy whose rolling cap admits exactly `sends` sends of [`AMOUNT_WEI`].
async fn set_cap(admin: &Client, wallet: &str, sends: usize) -> BenchResult<()> {
    let cap = format!("{}", sends as f64 * 0.001);
    let policy = json!({"version": 1, "rules": [
        {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
        {"id": "cap", "type": "rolling_cap", "window_secs": 86400, "amount": cap},
    ]});
    let request = RawRequest::new(Method::PUT, format!("/v1/wallets/{wallet}/policy")).json(&policy);
    let reply = admin.send_raw(request).await?;
    if reply.status != 200 {
        return Err(internal(format!("setting the policy: {}", String::from_utf8_lossy(&reply.body))));
    }
    Ok(())
}

async fn rpc_call(rpc: &RpcClient, method: &str, params: Value) -> BenchResult<Value> {
    Ok(rpc.call_raw(method, params).await?)
}

/// What a load run saw.
struct Load {
    /// (transaction id, ms) of each accepted send.
    accepted: Vec<(String, f64)>,
    denied: usize,
    /// Answers other than accepted or denied by the policy.
    other: Vec<String>,
    elapsed_secs: f64,
}

impl Load {
    fn report(&self) -> Value {
        let mut ms: Vec<f64> = self.accepted.iter().map(|(_, ms)| *ms).collect();
        ms.sort_by(f64::total_cmp);
        json!({
            "accepted": self.accepted.len(),
            "denied": self.denied,
            "other_answers": self.other.len(),
            "p50_ms": percentile(&ms, 0.5),
            "p99_ms": percentile(&ms, 0.99),
            "sends_per_sec": self.accepted.len() as f64 / self.elapsed_secs,
        })
    }
}

/// `requests` sends, `concurrency` at a time, spread over the target's daemons in turn.
async fn load(target: &Target, requests: usize, concurrency: usize, to: Address) -> BenchResult<Load> {
    let next = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Load { accepted: Vec::new(), denied: 0, other: Vec::new(), elapsed_secs: 0.0 }));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, seen, clients, wallet) =
            (next.clone(), seen.clone(), target.clients.clone(), target.wallet_id.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                if i >= requests {
                    return Ok::<_, BenchError>(());
                }
                let client = clients.get(i % clients.len()).ok_or_else(|| internal("no daemon to send to"))?;
                let request = RawRequest::new(Method::POST, format!("/v1/wallets/{wallet}/transactions"))
                    .json(&json!({"to": to.to_checksum(None), "amount": "0.001"}));
                let begun = Instant::now();
                let reply = client.send_raw(request).await;
                let ms = begun.elapsed().as_secs_f64() * 1e3;
                let mut seen = seen.lock().map_err(|_| internal("load lock"))?;
                match reply {
                    Ok(reply) if reply.status == 200 => {
                        let body: Value = reply.json()?;
                        let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                        seen.accepted.push((id, ms));
                    }
                    Ok(reply) if reply.status == 403 => seen.denied += 1,
                    Ok(reply) => seen.other.push(format!("{}: {}", reply.status, String::from_utf8_lossy(&reply.body))),
                    Err(error) => seen.other.push(error.to_string()),
                }
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(internal)??;
    }
    let mut load = std::mem::replace(
        &mut *seen.lock().map_err(|_| internal("load lock"))?,
        Load { accepted: Vec::new(), denied: 0, other: Vec::new(), elapsed_secs: 0.0 },
    );
    load.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(load)
}

/// Counts invariant violations once every accepted send is final.
async fn check(target: &Target, load: &Load, sends: usize, to: Address) -> BenchResult<Value> {
    let admin = &target.admin;
    let mut nonces = Vec::new();
    let mut not_confirmed = 0u64;
    for (id, _) in &load.accepted {
        let tx = wait_for_final(admin, id).await?;
        if tx.get("status").and_then(Value::as_str) != Some("confirmed") {
            not_confirmed += 1;
        }
        nonces.extend(tx.get("nonce").and_then(Value::as_u64));
    }
    nonces.sort_unstable();
    let handed_twice = nonces.windows(2).filter(|pair| pair.first() == pair.get(1)).count() as u64;
    let expected: Vec<u64> = (0..load.accepted.len() as u64).collect();
    let skipped = expected.iter().filter(|n| nonces.binary_search(n).is_err()).count() as u64;
    let chain_nonce = target.rpc.pending_nonce(target.address).await?;
    let balance = rpc_call(&target.rpc, "eth_getBalance", json!([to.to_checksum(None), "latest"])).await?;
    let received = balance.as_str().and_then(|b| mandate_chain::rpc::parse_quantity(b).ok()).unwrap_or_default();
    let mut audit_broken = 0u64;
    for admin in &target.admins {
        let reply = admin.send_raw(RawRequest::new(Method::GET, "/v1/audit/verify")).await?;
        let verified: Value = reply.json()?;
        if verified.get("ok") != Some(&json!(true)) {
            audit_broken += 1;
        }
    }
    let counts = [
        ("accepted_beyond_or_short_of_cap", (load.accepted.len() as i64 - sends as i64).unsigned_abs()),
        ("other_answers", load.other.len() as u64),
        ("not_confirmed", not_confirmed),
        ("nonces_handed_out_twice", handed_twice),
        ("nonces_skipped", skipped),
        ("chain_nonce_off", (chain_nonce as i64 - load.accepted.len() as i64).unsigned_abs()),
        ("recipient_balance_off", u64::from(received != U256::from(AMOUNT_WEI) * U256::from(load.accepted.len()))),
        ("audit_chains_not_verifying", audit_broken),
    ];
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut detail = serde_json::Map::new();
    for (name, n) in counts {
        detail.insert(name.into(), json!(n));
    }
    detail.insert("total".into(), json!(total));
    if let Some(first) = load.other.first() {
        detail.insert("first_other_answer".into(), json!(first));
    }
    Ok(Value::Object(detail))
}

async fn wait_for_final(admin: &Client, id: &str) -> BenchResult<Value> {
    let start = Instant::now();
    loop {
        let reply = admin.send_raw(RawRequest::new(Method::GET, format!("/v1/transactions/{id}"))).await?;
        let tx: Value = reply.json()?;
        let status = tx.get("status").and_then(Value::as_str).unwrap_or_default();
        if !matches!(status, "submitted" | "reserved" | "signed") {
            return Ok(tx);
        }
        if start.elapsed().as_secs() > 120 {
            return Err(internal(format!("{id} is still {status} after 120 s")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The production layout on one host: daemon, cosigner and recovery directories
/// paired by public key, the cosigner as its own process, two `serve` replicas on one
/// database (the second on a copy of the first's data directory).
struct Cluster {
    target: Target,
    _replicas: Vec<KillOnDrop>,
    _cosigner: KillOnDrop,
    _anvil: Anvil,
}

fn spawn(args: &[&str], env: &[(&str, String)]) -> BenchResult<KillOnDrop> {
    let exe = std::env::current_exe().map_err(internal)?;
    let child = Command::new(exe)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("MANDATE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(internal)?;
    Ok(KillOnDrop(child))
}

/// The public key `init` printed for `role` (the daemon's `init` lists its parties).
fn key_of(init: &Value, role: &str) -> String {
    let party = match init.get("parties").and_then(Value::as_array) {
        Some(parties) => parties.iter().find(|party| party.get("role") == Some(&json!(role))),
        None => Some(init),
    };
    party.and_then(|p| p.get("public_key")).and_then(Value::as_str).unwrap_or_default().to_string()
}

impl Cluster {
    async fn start(root: &Path, database: &str) -> BenchResult<Cluster> {
        std::fs::create_dir_all(root).map_err(internal)?;
        let path = |name: &str| root.join(name).display().to_string();
        let anvil = Anvil::start();
        let rpc_url = anvil.url();
        let db = [("MANDATE_DATABASE_URL", database.to_string())];
        let (cosigner_addr, service_addr) =
            (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let service =
            mandate(&["init", "--auto-provision", "--data-dir", &path("data"), "--service-addr", &service_addr], &db)?;
        let cosigner = mandate(&["cosigner", "init", "--data-dir", &path("cosigner")], &[])?;
        let recovery = mandate(&["recovery", "init", "--dir", &path("recovery")], &[])?;
        let (s, c, r) = (key_of(&service, "service"), key_of(&cosigner, "cosigner"), key_of(&recovery, "recovery"));
        #[rustfmt::skip]
        mandate(&["pair", "--data-dir", &path("data"), "--cosigner-pubkey", &c, "--cosigner-addr", &cosigner_addr,
                  "--recovery-pubkey", &r], &db)?;
        mandate(
            &["cosigner", "pair", "--data-dir", &path("cosigner"), "--service-pubkey", &s, "--recovery-pubkey", &r],
            &[],
        )?;
        #[rustfmt::skip]
        mandate(&["recovery", "pair", "--dir", &path("recovery"), "--service-pubkey", &s, "--service-addr", &service_addr,
                  "--cosigner-pubkey", &c, "--cosigner-addr", &cosigner_addr], &[])?;
        let cosigner_password = root.join("cosigner-password");
        std::fs::write(&cosigner_password, hex::encode(rand::random::<[u8; 32]>())).map_err(internal)?;
        std::fs::set_permissions(&cosigner_password, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(internal)?;
        let cosigner_child = spawn(
            &["cosigner", "serve", "--data-dir", &path("cosigner"), "--listen", &cosigner_addr],
            &[("MANDATE_COSIGNER_PASSWORD_FILE", cosigner_password.display().to_string())],
        )?;
        wait_for("the cosigner", || std::net::TcpStream::connect(&cosigner_addr).ok())?;

        let master = root.join("data/master-password");
        let first_listen = format!("127.0.0.1:{}", free_port());
        let serve_env = |data: &str| {
            vec![
                ("MANDATE_MASTER_PASSWORD_FILE", Path::new(data).join("master-password").display().to_string()),
                ("MANDATE_DATABASE_URL", database.to_string()),
            ]
        };
        let first = spawn(
            &["serve", "--data-dir", &path("data"), "--listen", &first_listen, "--rpc-url", &rpc_url],
            &serve_env(&path("data")),
        )?;
        wait_for("the first replica", || std::net::TcpStream::connect(&first_listen).ok())?;
        let first_url = format!("http://{first_listen}");
        let cli_env = [
            ("MANDATE_URL", first_url.clone()),
            ("MANDATE_MASTER_PASSWORD_FILE", master.display().to_string()),
            ("MANDATE_RECOVERY_PASSPHRASE", hex::encode(rand::random::<[u8; 16]>())),
            ("MANDATE_RECOVERY_DIR", path("recovery")),
        ];
        let recovery_out = root.join("bench.recovery").display().to_string();
        let wallet = mandate(&["wallet", "create", "--name", "bench", "--recovery-out", &recovery_out], &cli_env)?;
        let wallet_id = wallet.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let address: Address =
            wallet.get("address").and_then(Value::as_str).unwrap_or_default().parse().map_err(internal)?;
        let rpc = RpcClient::new(&rpc_url)?;
        let value = format!("{:#x}", U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64)));
        rpc_call(&rpc, "anvil_setBalance", json!([address.to_checksum(None), value])).await?;
        let session =
            mandate(&["session", "create", "--wallet", &wallet_id, "--ttl", "3600", "--scope", "broadcast"], &cli_env)?;
        let token = session.get("token").and_then(Value::as_str).unwrap_or_default().to_string();

        // The second replica: a copy of the data directory taken after the wallet exists.
        let copied = Command::new("cp").arg("-a").arg(root.join("data")).arg(root.join("data2")).status();
        if !copied.map_err(internal)?.success() {
            return Err(internal("copying the data directory"));
        }
        let (second_listen, second_service) =
            (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        #[rustfmt::skip]
        let second = spawn(
            &["serve", "--data-dir", &path("data2"), "--listen", &second_listen, "--service-listen", &second_service,
              "--rpc-url", &rpc_url],
            &serve_env(&path("data2")),
        )?;
        wait_for("the second replica", || std::net::TcpStream::connect(&second_listen).ok())?;
        let second_url = format!("http://{second_listen}");

        let agent = |url: &str| -> BenchResult<Client> {
            Ok(Client::new(url)?.with_credential(Credential::Session(Secret::new(token.clone()))))
        };
        let clients = vec![agent(&first_url)?, agent(&second_url)?];
        let admin = admin_client(&first_url, &master).await?;
        let admins = vec![admin.clone(), admin_client(&second_url, &master).await?];
        Ok(Cluster {
            target: Target { clients, admin, admins, wallet_id, address, rpc },
            _replicas: vec![second, first],
            _cosigner: cosigner_child,
            _anvil: anvil,
        })
    }
}
