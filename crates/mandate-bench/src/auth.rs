//! `mandate bench auth`: what a signed agent request costs (recover the signer from the
//! EIP-712 digest, look the agent up, check and keep the nonce) against a bearer
//! session token (hash lookup), in the same run, on a real daemon: the same
//! `GET /v1/wallets/{id}` alternately with each credential. Prints both latencies and
//! the difference, against a target of at most 0.1 ms added at p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mandate_client::{Client, Credential, Secret};
use mandate_core::agent::AgentKey;
use serde_json::{json, Value};

use crate::mpc::{internal, percentile};
use crate::send::{bench_daemon, mandate};
use crate::BenchResult as CliResult;

/// The target: microseconds a signed request may add at p99.
const TARGET_ADDED_P99_MS: f64 = 0.1;

/// Runs `requests` requests with each credential.
pub fn auth_bench(requests: usize) -> CliResult {
    if requests < 100 {
        return Err(crate::BenchError::invalid("--requests must be at least 100"));
    }
    let dir = std::env::temp_dir().join(format!("mandate-bench-auth-{}", hex::encode(rand::random::<[u8; 6]>())));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(internal)?;
    let result = runtime.block_on(auth_in(&dir, requests));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn path_text(path: &std::path::Path) -> String {
    path.display().to_string()
}

async fn auth_in(dir: &std::path::Path, requests: usize) -> CliResult {
    let bench = bench_daemon(dir, "read").await?;
    let wallet = bench.wallet_id.clone();
    let env = [
        ("MANDATE_URL", bench.url.clone()),
        ("MANDATE_MASTER_PASSWORD_FILE", path_text(&dir.join("data").join("master-password"))),
    ];
    // An owner registers an agent key for the wallet, as a user would.
    let owner_file = dir.join("owner.key");
    let owner = mandate(&["owner", "keygen", "--out", &path_text(&owner_file)], &env)?;
    let public = owner.get("owner_key").and_then(Value::as_str).unwrap_or_default();
    let public = public.strip_prefix("ed25519:").unwrap_or(public).to_string();
    mandate(&["owner", "add", "--wallet", &wallet, "--ed25519-pubkey", &public], &env)?;
    let agent_file = dir.join("bench.agent");
    mandate(&["agent", "keygen", "--out", &path_text(&agent_file)], &env)?;
    let args = [
        "agent",
        "register",
        "--wallet",
        &wallet,
        "--key",
        &path_text(&agent_file),
        "--name",
        "bench",
        "--scopes",
        "read",
        "--valid-for-secs",
        "3600",
        "--owner-key",
        &path_text(&owner_file),
    ];
    mandate(&args, &env)?;
    let key_text = std::fs::read_to_string(&agent_file).map_err(internal)?;
    let key = AgentKey::from_file_text(&key_text).map_err(internal)?;

    let timeouts = (Duration::from_secs(5), Duration::from_secs(30));
    let bearer = Client::with_timeouts(&bench.url, timeouts.0, timeouts.1)?
        .with_credential(Credential::Session(Secret::new(bench.token.clone())));
    let signed = Client::with_timeouts(&bench.url, timeouts.0, timeouts.1)?
        .with_credential(Credential::Agent { key: Arc::new(key), wallet: wallet.clone() });
    // Warm-up (connections, caches), not measured.
    for _ in 0..20 {
        bearer.wallet(&wallet).await?;
        signed.wallet(&wallet).await?;
    }
    let (mut bearer_ms, mut signed_ms) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
    for _ in 0..requests {
        let begun = Instant::now();
        bearer.wallet(&wallet).await?;
        bearer_ms.push(begun.elapsed().as_secs_f64() * 1e3);
        let begun = Instant::now();
        signed.wallet(&wallet).await?;
        signed_ms.push(begun.elapsed().as_secs_f64() * 1e3);
    }
    bearer_ms.sort_by(f64::total_cmp);
    signed_ms.sort_by(f64::total_cmp);
    let (b50, b99) = (percentile(&bearer_ms, 0.5), percentile(&bearer_ms, 0.99));
    let (s50, s99) = (percentile(&signed_ms, 0.5), percentile(&signed_ms, 0.99));
    Ok(json!({
        "requests": requests,
        "bearer_session": {"p50_ms": b50, "p99_ms": b99},
        "signed_agent_request": {"p50_ms": s50, "p99_ms": s99},
        "added_p50_ms": s50 - b50,
        "added_p99_ms": s99 - b99,
        "target_added_p99_ms": TARGET_ADDED_P99_MS,
        "meets_target": s99 - b99 <= TARGET_ADDED_P99_MS,
        "notes": "the same GET /v1/wallets/{id} alternately with a session token and an agent key's signature \
                  (client signs, daemon recovers the signer, looks the agent up and keeps the nonce in a \
                  database transaction); real daemon and anvil on this machine",
    }))
}
