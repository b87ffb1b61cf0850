//! The daemon's logs with `--log-format json`: one JSON object per stderr line, every
//! request answered with an `X-Request-Id` that its log line carries, and no secret
//! (the master password, tokens, a webhook secret, an agent's headers) in any line.

use std::time::Duration;

use mandate_client::RawRequest;
use mandate_test_support::wait_until;
use serde_json::{json, Value};

use crate::{recipient, CosignerMode, Daemon};

fn log_lines(path: &std::path::Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
        .collect();
    (text, lines)
}

/// The `answered` line of the request `id`.
fn answered<'a>(lines: &'a [Value], id: &str) -> Option<&'a Value> {
    lines.iter().find(|line| line["span"]["request_id"] == id && line["fields"]["message"] == "answered")
}

#[test]
fn json_logs_carry_request_ids_and_no_secret() {
    let mut daemon = Daemon::start_with(CosignerMode::Dev, &["--log-format", "json"]);
    let log = daemon.dir.path().join("daemon.log");
    daemon.stderr_log = Some(log.clone());
    daemon.restart();
    let (wallet, _) = daemon.wallet("logged", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let (ok, hook) = daemon.cli(&["webhook", "add", "--url", "http://127.0.0.1:9/hook", "--events", "wallet.frozen"]);
    assert!(ok, "{hook}");
    let webhook_secret = hook["secret"].as_str().unwrap().to_string();

    // A send that carries the caller's request id, one refused by the policy, one
    // with an id that could forge a log line.
    let path = format!("/v1/wallets/{wallet}/transactions");
    let body = |amount: &str| json!({"to": recipient().to_checksum(None), "amount": amount}).to_string().into_bytes();
    let sent = daemon.api.raw(
        Some(&agent),
        RawRequest::new("POST".parse().unwrap(), &path)
            .header("content-type", "application/json")
            .header("x-request-id", "lb-trace-42")
            .body(body("0.1")),
    );
    assert_eq!((sent.status, sent.header("x-request-id")), (200, Some("lb-trace-42")));
    let denied = daemon.api.raw(
        Some(&agent),
        RawRequest::new("POST".parse().unwrap(), &path).header("content-type", "application/json").body(body("2")),
    );
    assert_eq!(denied.status, 403);
    let denied_id = denied.header("x-request-id").expect("a request id on every answer").to_string();
    assert!(denied_id.starts_with("req_") && denied_id.len() == 20, "{denied_id}");
    let forged = daemon.api.raw(
        None,
        RawRequest::new("GET".parse().unwrap(), "/v1/health?probe=1")
            .header("x-request-id", "a b\"}{\"level\":\"ERROR"),
    );
    let forged_id = forged.header("x-request-id").unwrap().to_string();
    assert!(forged_id.starts_with("req_"), "a caller's id with spaces or quotes is replaced: {forged_id}");

    // A freeze reaches the cosigner, which logs it (in JSON too: it is a child process
    // writing to the same stderr).
    let (ok, frozen) = daemon.cli(&["freeze", "--wallet", &wallet]);
    assert!(ok, "{frozen}");
    let cosigner_logged = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("frozen by the daemon"))
    });
    assert!(cosigner_logged, "the cosigner never logged the freeze");
    daemon.terminate();
    let (text, lines) = log_lines(&log);
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string(), "{line}");
    }
    let line = answered(&lines, "lb-trace-42").unwrap_or_else(|| panic!("no log line for lb-trace-42: {text}"));
    assert_eq!(
        (&line["span"]["method"], &line["span"]["path"], &line["fields"]["status"]),
        (&json!("POST"), &json!(path), &json!(200)),
        "{line}"
    );
    assert!(line["fields"]["ms"].as_f64().is_some_and(|ms| ms > 0.0), "{line}");
    let line = answered(&lines, &denied_id).unwrap_or_else(|| panic!("no log line for {denied_id}: {text}"));
    assert_eq!(line["fields"]["status"], 403, "{line}");
    let line = answered(&lines, &forged_id).unwrap();
    assert_eq!(line["span"]["path"], "/v1/health", "the path is logged, never the query: {line}");
    assert!(!text.contains("probe=1"));
    assert!(lines.iter().any(|line| line["fields"]["message"].as_str().is_some_and(|m| m.contains("frozen by"))));

    let password = std::fs::read_to_string(daemon.master_file()).unwrap();
    for secret in [password.trim(), daemon.admin.as_str(), agent.as_str(), webhook_secret.as_str()] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
    for word in ["Bearer", "authorization", "mnd_sess_", "mnd_admin_"] {
        assert!(!text.to_ascii_lowercase().contains(&word.to_ascii_lowercase()), "{word} in the log: {text}");
    }
}
