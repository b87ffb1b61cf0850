//! MCP with real clients: the official Python SDK (`mcp`, pinned in
//! tests/mcp/requirements.txt, installed by scripts/test.sh) over stdio (`mandate mcp`,
//! its own process) and over streamable HTTP (`/mcp` on the daemon), and the MCP
//! Inspector CLI as a second, independent client.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use alloy_primitives::{Address, U256};
use mandate_test_support::contracts::{deploy_test_token, transfer};
use serde_json::{json, Value};

use crate::{bin, eth, CosignerMode, Daemon};

const READ: &[&str] =
    &["get_wallet", "get_balance", "list_transactions", "get_transaction", "get_policy_summary", "evaluate_action"];
const PREPARE: &[&str] = &["prepare_transfer", "prepare_contract_call"];
const SIGN: &[&str] = &["sign_typed_data", "sign_message"];
const BROADCAST: &[&str] =
    &["send_transfer", "send_contract_call", "pay_x402", "speed_up_transaction", "cancel_transaction"];

fn band_tools(bands: &[&[&str]]) -> Vec<String> {
    bands.iter().flat_map(|band| band.iter().map(|name| name.to_string())).collect()
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv made by scripts/setup-python.sh (or MANDATE_TEST_PYTHON).
pub(crate) fn python() -> PathBuf {
    let path = std::env::var_os("MANDATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/mcp-venv/bin/python"));
    assert!(path.exists(), "{} is missing: run scripts/setup-python.sh (scripts/test.sh does)", path.display());
    path
}

/// Runs the Python MCP client driver on `scenario`; its JSON report.
pub(crate) fn drive(scenario: &Value) -> Value {
    let mut child = Command::new(python())
        .arg(repo_root().join("crates/mandate-e2e/tests/mcp/mcp_driver.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python driver");
    child.stdin.take().unwrap().write_all(scenario.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "driver failed: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("driver printed no JSON: {text}"))
}

/// Writes `token` to a 0600 file (the agent's MANDATE_SESSION_TOKEN_FILE).
fn token_file(daemon: &Daemon, name: &str, token: &str) -> String {
    let path = daemon.dir.path().join(name);
    mandate_mpc::net::write_secret_file(&path, token.as_bytes(), false).unwrap();
    path.display().to_string()
}

fn stdio(daemon: &Daemon, token_file: &str, band: &str, steps: Value) -> Value {
    json!({"transport": "stdio", "command": bin(), "args": ["mcp", "--band", band],
           "env": {"MANDATE_URL": daemon.url, "MANDATE_SESSION_TOKEN_FILE": token_file}, "steps": steps})
}

fn http(daemon: &Daemon, token: &str, steps: Value) -> Value {
    json!({"transport": "http", "url": format!("{}/mcp", daemon.url),
           "headers": {"Authorization": format!("Bearer {token}")}, "steps": steps})
}

pub(crate) fn call(name: &str, arguments: Value) -> Value {
    json!({"op": "call", "name": name, "arguments": arguments})
}

pub(crate) fn results(report: &Value) -> &Vec<Value> {
    assert!(report.get("connect_error").is_none(), "could not connect: {report}");
    report["results"].as_array().unwrap()
}

fn listed(result: &Value) -> Vec<String> {
    assert_eq!(result["ok"], true, "{result}");
    result["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

/// A tool result's structured content, asserting it is a success.
pub(crate) fn ok(result: &Value) -> &Value {
    assert!(result["ok"] == true && result["is_error"] == false, "tool failed: {result}");
    &result["structured"]
}

/// A tool-level error's envelope.
fn tool_error(result: &Value) -> &Value {
    assert!(result["ok"] == true && result["is_error"] == true, "expected a tool error: {result}");
    let error = &result["structured"]["error"];
    for field in ["category", "code", "message", "required_action", "retryable"] {
        assert!(!error[field].is_null(), "{field} missing in {result}");
    }
    error
}

/// A JSON-RPC (protocol) error.
fn protocol_error(result: &Value) -> &Value {
    assert_eq!(result["ok"], false, "expected a protocol error: {result}");
    &result["error"]
}

const BOB: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

fn bob() -> Address {
    BOB.parse().unwrap()
}

#[test]
fn python_client_over_stdio_and_http_gets_its_band_and_the_policy() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("mcp", "10");
    let supply = U256::from(1_000_000_000_000u64);
    let token = deploy_test_token(&daemon.anvil, "TST", 6, supply);
    daemon.anvil.transact_as_dev(token, &transfer(address, U256::from(12_500_000u64)));
    // This policy also declares the token (set_policy sends rules only).
    let (status, body) = daemon.call(
        "PUT",
        &format!("/v1/wallets/{wallet}/policy"),
        Some(&daemon.admin),
        Some(&json!({"version": 1, "tokens": {"TST": {"address": token.to_checksum(None), "decimals": 6}},
                     "rules": [{"id": "per-tx", "type": "max_per_tx", "amount": "1"},
                               {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "3"}]})),
    );
    assert_eq!(status, 200, "{body}");
    let broadcaster = daemon.session(&wallet, &["broadcast"]);
    let reader = daemon.session(&wallet, &["read"]);
    let broadcaster_file = token_file(&daemon, "broadcaster.token", &broadcaster);

    // stdio: each band lists exactly its documented tools; a tool above the band is unknown.
    for (band, expected) in [
        ("read", band_tools(&[READ])),
        ("prepare", band_tools(&[READ, PREPARE])),
        ("read,prepare,sign", band_tools(&[READ, PREPARE, SIGN])),
        ("broadcast", band_tools(&[READ, PREPARE, SIGN, BROADCAST])),
    ] {
        let steps =
            json!([{"op": "list_tools"}, call("send_transfer", json!({"to": BOB, "amount": "0.1", "confirm": true}))]);
        let report = drive(&stdio(&daemon, &broadcaster_file, band, steps));
        let results = results(&report);
        assert_eq!(listed(&results[0]), expected, "band {band}");
        if band != "broadcast" {
            let error = protocol_error(&results[1]);
            assert_eq!(error["code"], -32602, "{error}");
            assert!(error["message"].as_str().unwrap().contains("unknown tool"), "{error}");
        }
    }
    // Only the broadcast run sent (0.1 ETH); the refused calls signed nothing.
    let sent_nonce = daemon.anvil.nonce(address);
    assert_eq!(sent_nonce, 1, "exactly one transaction was sent by the band runs");

    // stdio, broadcast band: balances match the chain, a send confirms, denials and bad
    // input come back as structured errors with nothing signed.
    let bob_before = daemon.anvil.balance(bob());
    let balance_before = daemon.anvil.balance(address);
    let steps = json!([
        call("get_balance", json!({})),
        call("get_balance", json!({"token": "TST"})),
        call("send_transfer", json!({"to": BOB, "amount": "0.5", "confirm": true, "idempotency_key": "mcp-1"})),
        call("send_transfer", json!({"to": BOB, "amount": "2", "confirm": true})),
        call("send_transfer", json!({"to": "0x1234", "amount": "0.1", "confirm": true})),
        call("send_transfer", json!({"to": BOB, "amount": "1.2.3", "confirm": true})),
        call("send_transfer", json!({"to": BOB, "amount": "0.1"})),
        call("send_transfer", json!({"to": BOB, "amount": "0.1", "confirm": "yes"})),
        call("send_transfer", json!({"to": BOB, "amount": "0.1", "confirm": true, "from": "0x0"})),
        call("get_policy_summary", json!({})),
        call("prepare_transfer", json!({"to": BOB, "amount": "0.2"})),
    ]);
    let report = drive(&stdio(&daemon, &broadcaster_file, "broadcast", steps));
    let r = results(&report);
    let native = ok(&r[0]);
    assert_eq!(native["balance_wei"], balance_before.to_string(), "{native}");
    let tst = ok(&r[1]);
    assert_eq!((tst["balance"].as_str(), tst["token_symbol"].as_str()), (Some("12.5"), Some("TST")), "{tst}");
    assert_eq!(tst["balance_base"], daemon.anvil.token_balance(token, address).to_string());
    let sent = ok(&r[2]);
    let final_tx = daemon.wait_final(&broadcaster, sent["id"].as_str().unwrap());
    assert_eq!(final_tx["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(bob()) - bob_before, eth("0.5"), "exactly the amount asked for");
    let denied = tool_error(&r[3]);
    assert_eq!((denied["code"].as_str(), denied["category"].as_str()), (Some("POLICY_DENIED"), Some("policy")));
    assert_eq!(denied["retryable"], false);
    assert_eq!(denied["details"]["rule_id"], "per-tx", "{denied}");
    assert_eq!(denied["details"]["limit"], "1 ETH", "{denied}");
    assert!(r[3]["text"][0].as_str().unwrap().starts_with("POLICY_DENIED"), "{}", r[3]);
    assert_eq!(tool_error(&r[4])["code"], "INVALID_ADDRESS");
    assert_eq!(tool_error(&r[5])["code"], "INVALID_AMOUNT");
    assert_eq!(tool_error(&r[6])["code"], "CONFIRMATION_REQUIRED");
    assert_eq!(tool_error(&r[7])["code"], "CONFIRMATION_REQUIRED");
    let unknown = tool_error(&r[8]);
    assert_eq!((unknown["code"].as_str(), unknown["details"]["field"].as_str()), (Some("INVALID_INPUT"), Some("from")));
    assert_eq!(daemon.anvil.nonce(address), sent_nonce + 1, "only the confirmed send was signed");
    let summary = ok(&r[9]);
    let daily = summary["budgets"].as_array().unwrap().iter().find(|b| b["rule_id"] == "daily").unwrap();
    assert_eq!(daily["used"], "0.6 ETH", "{summary}");
    assert_eq!(daily["remaining"], "2.4 ETH", "{summary}");
    let prepared = ok(&r[10]);
    assert_eq!(prepared["decision"]["verdict"], "allow", "{prepared}");
    assert_eq!(prepared["simulation"]["success"], true, "prepare always simulates: {prepared}");
    assert_eq!(prepared["action"]["amount"], "0.2");
    assert_eq!(daemon.anvil.nonce(address), sent_nonce + 1, "prepare signed nothing");

    // HTTP: the band is the session's own.
    let steps = json!([
        {"op": "list_tools"},
        call("get_balance", json!({})),
        call("send_transfer", json!({"to": BOB, "amount": "0.1", "confirm": true})),
        call("evaluate_action", json!({"type": "transfer", "to": BOB, "amount": "1.5"})),
    ]);
    let report = drive(&http(&daemon, &reader, steps));
    let r = results(&report);
    assert_eq!(listed(&r[0]), band_tools(&[READ]));
    assert_eq!(ok(&r[1])["balance_wei"], daemon.anvil.balance(address).to_string());
    assert_eq!(protocol_error(&r[2])["code"], -32602, "a read session cannot even name a broadcast tool");
    let evaluated = ok(&r[3]);
    assert_eq!(
        (evaluated["decision"]["verdict"].as_str(), evaluated["decision"]["rule_id"].as_str()),
        (Some("deny"), Some("per-tx"))
    );

    let steps = json!([
        {"op": "list_tools"},
        call("send_transfer", json!({"to": BOB, "amount": "0.25", "confirm": true})),
        call("send_transfer", json!({"to": BOB, "amount": "1.01", "confirm": true})),
    ]);
    let bob_before = daemon.anvil.balance(bob());
    let report = drive(&http(&daemon, &broadcaster, steps));
    let r = results(&report);
    assert_eq!(listed(&r[0]), band_tools(&[READ, PREPARE, SIGN, BROADCAST]));
    let sent = ok(&r[1]);
    assert_eq!(daemon.wait_final(&broadcaster, sent["id"].as_str().unwrap())["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(bob()) - bob_before, eth("0.25"));
    assert_eq!(tool_error(&r[2])["code"], "POLICY_DENIED");

    // The audit trail names the agent's session for MCP calls, as for REST.
    let (_, tail) = daemon.call("GET", "/v1/audit/tail?n=200", Some(&daemon.admin), None);
    let session_id = daemon.call("GET", "/v1/session", Some(&broadcaster), None).1["session"]["id"].clone();
    let actor = format!("agent:{}", session_id.as_str().unwrap());
    assert!(tail["records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["actor"] == actor.as_str() && r["event"] == "transaction.signed"));

    // REST enforces the same lines: simulating needs the prepare band, freezing the freeze scope.
    let path = format!("/v1/wallets/{wallet}/policy/evaluate?simulate=true");
    let (status, body) =
        daemon.call("POST", &path, Some(&reader), Some(&json!({"type": "transfer", "to": BOB, "amount": "0.1"})));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("SCOPE_MISSING")), "{body}");
    let (status, body) = daemon.call("POST", &format!("/v1/wallets/{wallet}/freeze"), Some(&broadcaster), None);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("SCOPE_MISSING")), "{body}");

    // freeze_wallet: only with the freeze scope; then nothing is signed, over any surface.
    let guard = daemon.session(&wallet, &["read", "freeze"]);
    let steps = json!([{"op": "list_tools"}, call("freeze_wallet", json!({"reason": "suspected prompt injection"}))]);
    let report = drive(&http(&daemon, &guard, steps));
    let r = results(&report);
    let mut expected = band_tools(&[READ]);
    expected.push("freeze_wallet".into());
    assert_eq!(listed(&r[0]), expected);
    assert_eq!(ok(&r[1])["frozen"]["frozen_by"].as_str().unwrap().split(':').next(), Some("agent"));
    let nonce = daemon.anvil.nonce(address);
    let steps = json!([
        call("send_transfer", json!({"to": BOB, "amount": "0.1", "confirm": true})),
        call("sign_message", json!({"message": "hello"})),
        call("get_wallet", json!({})),
        call(
            "sign_typed_data",
            json!({"typed_data": {"types": {"EIP712Domain": []}, "primaryType": "EIP712Domain", "domain": {}, "message": {}}})
        ),
    ]);
    let report = drive(&http(&daemon, &broadcaster, steps));
    let r = results(&report);
    assert_eq!(tool_error(&r[0])["code"], "WALLET_FROZEN");
    assert_eq!(tool_error(&r[1])["code"], "WALLET_FROZEN");
    assert!(r[2]["text"][0].as_str().unwrap().contains("FROZEN"), "{}", r[2]);
    assert_eq!(tool_error(&r[3])["code"], "WALLET_FROZEN");
    assert_eq!(daemon.anvil.nonce(address), nonce, "nothing sent while frozen");
    let (status, refused) = daemon.send(&broadcaster, &wallet, bob(), "0.1");
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("WALLET_FROZEN")), "REST too");
}

/// `mandate mcp` with no client (stdin closed): what it says when it cannot start.
fn mandate_mcp_alone(daemon: &Daemon, token_file: &str, band: &str) -> std::process::Output {
    Command::new(bin())
        .args(["mcp", "--band", band])
        .env("MANDATE_URL", &daemon.url)
        .env("MANDATE_SESSION_TOKEN_FILE", token_file)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn revoked_or_expired_sessions_end_the_mcp_session_and_bad_tokens_never_start() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("mcp-end", "1");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));

    // Expiry inside a live session, over HTTP and over stdio.
    // (TTLs leave the client and server processes time to start, even on a loaded machine)
    let short = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 10, "scopes": ["read"]}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let steps = json!([{"op": "list_tools"}, {"op": "sleep", "seconds": 11}, call("get_wallet", json!({}))]);
    let report = drive(&http(&daemon, &short, steps));
    let r = results(&report);
    assert_eq!(listed(&r[0]), band_tools(&[READ]));
    let error = protocol_error(&r[2]);
    assert_eq!(error["code"], -32001, "{error}");
    assert!(error["message"].as_str().unwrap().starts_with("SESSION_EXPIRED"), "{error}");
    assert_eq!(error["data"]["error"]["code"], "SESSION_EXPIRED");

    let short = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 10, "scopes": ["read"]}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let file = token_file(&daemon, "short.token", &short);
    let steps = vec![
        json!({"op": "list_tools"}),
        json!({"op": "sleep", "seconds": 11}),
        call("get_wallet", json!({})),
        json!({"op": "list_tools"}),
    ];
    let report = drive(&stdio(&daemon, &file, "read", Value::Array(steps)));
    let r = results(&report);
    assert_eq!(listed(&r[0]), band_tools(&[READ]));
    assert!(protocol_error(&r[2])["message"].as_str().unwrap().starts_with("SESSION_EXPIRED"), "{}", r[2]);
    assert!(
        r[3]["skipped"] == true || r[3]["error"]["code"] == -32000,
        "the stdio server ended after the expiry (connection closed): {}",
        r[3]
    );

    // Revocation between two requests of one HTTP session.
    let token = daemon.session(&wallet, &["read"]);
    let session_id =
        daemon.call("GET", "/v1/session", Some(&token), None).1["session"]["id"].as_str().unwrap().to_string();
    let marker = daemon.dir.path().join("first-call-done");
    let revoker = {
        let (api, admin, marker) = (daemon.api.clone(), daemon.admin.clone(), marker.clone());
        std::thread::spawn(move || {
            assert!(mandate_test_support::wait_until(std::time::Duration::from_secs(60), || marker.exists()));
            let (status, body) =
                api.call_with("POST", &format!("/v1/sessions/{session_id}/revoke"), Some(&admin), None, &[]);
            assert_eq!(status, 200, "{body}");
        })
    };
    let steps = json!([
        call("get_wallet", json!({})),
        {"op": "touch", "path": marker},
        {"op": "sleep", "seconds": 2},
        call("get_wallet", json!({})),
    ]);
    let report = drive(&http(&daemon, &token, steps));
    revoker.join().unwrap();
    let r = results(&report);
    ok(&r[0]);
    assert!(protocol_error(&r[3])["message"].as_str().unwrap().starts_with("SESSION_REVOKED"), "{}", r[3]);

    // A revoked token cannot start a stdio server; a token with too few scopes cannot
    // ask for a higher band; an operator token is refused at /mcp.
    let file = token_file(&daemon, "revoked.token", &token);
    let output = mandate_mcp_alone(&daemon, &file, "read");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "stdout is only for MCP");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SESSION_REVOKED"), "{stderr}");
    assert!(!stderr.contains(&token), "the token is never printed");

    let reader = daemon.session(&wallet, &["read"]);
    let file = token_file(&daemon, "reader.token", &reader);
    let output = mandate_mcp_alone(&daemon, &file, "broadcast");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("SCOPE_MISSING"), "{stderr}");

    // A world-readable token file is refused.
    let loose = daemon.dir.path().join("loose.token");
    std::fs::write(&loose, &reader).unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let output = mandate_mcp_alone(&daemon, loose.to_str().unwrap(), "read");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("INSECURE_FILE_PERMISSIONS"), "{stderr}");

    let (status, body) = daemon.call("POST", "/mcp", Some(&daemon.admin), Some(&json!({})));
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("UNAUTHENTICATED")));
    let (status, _) = daemon.call("POST", "/mcp", None, Some(&json!({})));
    assert_eq!(status, 401);

    // DNS rebinding: a valid token on a request naming another host is still refused.
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let post = |host: &str| {
        let request = mandate_client::RawRequest::new(mandate_client::Method::POST, "/mcp")
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&list);
        daemon.api.raw(Some(&reader), request)
    };
    assert_eq!(post("evil.example").status, 403);
    let port = daemon.url.rsplit(':').next().unwrap().to_string();
    assert_eq!(post(&format!("127.0.0.1:{port}")).status, 200, "the loopback name passes");
}

#[test]
fn the_mcp_inspector_cli_lists_the_stdio_servers_tools() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("inspected", "0");
    let token = daemon.session(&wallet, &["prepare"]);
    let file = token_file(&daemon, "inspector.token", &token);
    let inspector = repo_root().join("node_modules/.bin/mcp-inspector");
    assert!(inspector.exists(), "{} is missing: run npm ci", inspector.display());
    let output = Command::new(&inspector)
        .arg("--cli")
        .args(["-e", &format!("MANDATE_URL={}", daemon.url)])
        .args(["-e", &format!("MANDATE_SESSION_TOKEN_FILE={file}")])
        .arg(bin())
        .args(["mcp", "--band", "prepare", "--method", "tools/list"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "inspector: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let listed: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"));
    let names: Vec<&str> = listed["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, band_tools(&[READ, PREPARE]));
    let send = listed["tools"].as_array().unwrap().iter().find(|t| t["name"] == "prepare_transfer").unwrap();
    assert_eq!(send["inputSchema"]["required"], json!(["to", "amount"]));
}
