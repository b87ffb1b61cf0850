//! `mandate bench mcp`: round trips of `tools/call get_balance` and `evaluate_action`
//! over the daemon's streamable HTTP `/mcp`, against the same calls over REST as the
//! baseline, in the same run, on a real daemon and anvil. The MCP client is a minimal
//! JSON-RPC-over-HTTP client of the transport (initialize, then one POST per call,
//! JSON replies): what is measured is the server side of MCP, not a client library.

use std::time::{Duration, Instant};

use mandate_client::{Client, Credential, Method, RawRequest, Secret};
use serde_json::{json, Value};

use crate::mpc::{internal, percentile};
use crate::send::bench_daemon;
use crate::BenchResult as CliResult;

/// The MCP protocol version the benchmark client speaks.
const PROTOCOL: &str = "2025-06-18";

fn stats(mut latencies_ms: Vec<f64>) -> Value {
    latencies_ms.sort_by(f64::total_cmp);
    json!({"p50_ms": percentile(&latencies_ms, 0.5), "p99_ms": percentile(&latencies_ms, 0.99)})
}

async fn timed<F, Fut>(calls: usize, mut one: F) -> CliResult<Vec<f64>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = CliResult<()>>,
{
    let mut latencies = Vec::with_capacity(calls);
    for n in 0..calls {
        let begun = Instant::now();
        one(n).await?;
        latencies.push(begun.elapsed().as_secs_f64() * 1e3);
    }
    Ok(latencies)
}

/// One JSON-RPC request to `/mcp`; the `result`.
async fn mcp(http: &Client, id: usize, method: &str, params: Value) -> CliResult<Value> {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let request = RawRequest::new(Method::POST, "/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&body);
    let reply: Value = http.send_raw(request).await?.json()?;
    let result = reply.get("result").cloned().ok_or_else(|| internal(format!("{method}: {reply}")))?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(internal(format!("{method}: tool error {result}")));
    }
    Ok(result)
}

async fn rest(http: &Client, method: &str, path: &str, body: Option<&Value>) -> CliResult<()> {
    let mut request = RawRequest::new(method.parse().map_err(internal)?, path);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = http.send_raw(request).await?;
    let status = response.status;
    let reply: Value = response.json()?;
    if !(200..300).contains(&status) {
        return Err(internal(format!("{path}: {status} {reply}")));
    }
    Ok(())
}

/// Runs the benchmark.
pub fn mcp_bench(calls: usize) -> CliResult {
    if calls < 50 {
        return Err(crate::BenchError::invalid("--calls must be at least 50"));
    }
    let dir = std::env::temp_dir().join(format!("mandate-bench-mcp-{}", hex::encode(rand::random::<[u8; 6]>())));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(internal)?;
    let result = runtime.block_on(mcp_in(&dir, calls));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn mcp_in(dir: &std::path::Path, calls: usize) -> CliResult {
    let bench = bench_daemon(dir, "read").await?;
    let http = Client::with_timeouts(&bench.url, Duration::from_secs(5), Duration::from_secs(60))?
        .with_credential(Credential::Session(Secret::new(bench.token.clone())));
    let wallet = bench.wallet_id.clone();
    let to = "0x4242424242424242424242424242424242424242";
    let evaluate = json!({"type": "transfer", "to": to, "amount": "0.5"});

    let init = mcp(
        &http,
        0,
        "initialize",
        json!({"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "mandate-bench", "version": "1"}}),
    )
    .await?;
    let tools = mcp(&http, 1, "tools/list", json!({})).await?;
    let listed = tools.get("tools").and_then(Value::as_array).map_or(0, Vec::len);

    // Warm-up of both paths (connections, caches), not measured.
    for n in 0..20 {
        mcp(&http, 2 + n, "tools/call", json!({"name": "get_balance", "arguments": {}})).await?;
        rest(&http, "GET", &format!("/v1/wallets/{wallet}/balance"), None).await?;
    }

    let balance_path = format!("/v1/wallets/{wallet}/balance");
    let evaluate_path = format!("/v1/wallets/{wallet}/policy/evaluate");
    let (e, h) = (&evaluate, &http);
    let rest_balance = timed(calls, |_| rest(h, "GET", &balance_path, None)).await?;
    let mcp_balance = timed(calls, |n| async move {
        mcp(h, 100 + n, "tools/call", json!({"name": "get_balance", "arguments": {}})).await.map(|_| ())
    })
    .await?;
    let rest_evaluate = timed(calls, |_| rest(h, "POST", &evaluate_path, Some(e))).await?;
    let mcp_evaluate = timed(calls, |n| async move {
        mcp(h, 100 + calls + n, "tools/call", json!({"name": "evaluate_action", "arguments": e})).await.map(|_| ())
    })
    .await?;

    let (rest_balance, mcp_balance) = (stats(rest_balance), stats(mcp_balance));
    let (rest_evaluate, mcp_evaluate) = (stats(rest_evaluate), stats(mcp_evaluate));
    let ratio = |m: &Value, r: &Value, field: &str| {
        m.get(field).and_then(Value::as_f64).unwrap_or(f64::NAN) / r.get(field).and_then(Value::as_f64).unwrap_or(1.0)
    };
    Ok(json!({
        "machine_cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "calls": calls,
        "protocol": init.get("protocolVersion"),
        "tools_listed": listed,
        "get_balance": {"mcp": mcp_balance, "rest": rest_balance,
            "ratio_p50": ratio(&mcp_balance, &rest_balance, "p50_ms"),
            "ratio_p99": ratio(&mcp_balance, &rest_balance, "p99_ms")},
        "evaluate_action": {"mcp": mcp_evaluate, "rest": rest_evaluate,
            "ratio_p50": ratio(&mcp_evaluate, &rest_evaluate, "p50_ms"),
            "ratio_p99": ratio(&mcp_evaluate, &rest_evaluate, "p99_ms")},
        "notes": "sequential round trips on one keep-alive connection; MCP = POST /mcp tools/call (session check + the same REST handler in-process); REST = the endpoint itself; get_balance reads anvil, evaluate_action runs policy + fee/gas reads; all on this machine",
    }))
}
