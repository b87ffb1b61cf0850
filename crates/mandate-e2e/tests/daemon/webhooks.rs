//! Signed webhooks against a local receiver: every event's HMAC verifies (and a
//! tampered body would not), events arrive in order, a receiver that is down gets
//! the event after a retry, secrets never show again, insecure URLs are refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mandate_test_support::{free_port, wait_until};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{code, recipient, CosignerMode, Daemon};

/// One request the receiver got: its headers (lower-case names) and body.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// A minimal HTTP receiver on 127.0.0.1:`port` answering 200 to every POST.
fn receiver(port: u16) -> Arc<Mutex<Vec<Received>>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                let (name, value) = trimmed.split_once(':').unwrap();
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
            let length: usize =
                headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            sink.lock().unwrap().push(Received { headers, body: String::from_utf8(body).unwrap() });
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        }
    });
    got
}

/// HMAC-SHA256 written out from its definition (RFC 2104), independent of the daemon's.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(inner_hash.iter().copied()).collect();
    Sha256::digest(&outer).into()
}

/// Whether the request's signature header is the HMAC of timestamp + body.
fn verifies(secret: &str, timestamp: &str, body: &str, header: &str) -> bool {
    let expected =
        format!("v1={}", hex::encode(hmac_sha256(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes())));
    expected == header
}

fn add_webhook(daemon: &Daemon, url: &str, events: &str) -> (String, String) {
    let (ok, added) = daemon.cli(&["webhook", "add", "--url", url, "--events", events]);
    assert!(ok, "{added}");
    (added["id"].as_str().unwrap().to_string(), added["secret"].as_str().unwrap().to_string())
}

fn deliveries(daemon: &Daemon, id: &str) -> Vec<Value> {
    let (ok, log) = daemon.cli(&["webhook", "deliveries", id]);
    assert!(ok, "{log}");
    log["deliveries"].as_array().unwrap().clone()
}

#[test]
fn events_are_signed_ordered_and_retried_until_delivered() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let port = free_port();
    let got = receiver(port);
    let (_, secret) =
        add_webhook(&daemon, &format!("http://127.0.0.1:{port}/hook"), "transaction.confirmed,wallet.frozen");
    let (wallet, _) = daemon.wallet("hooked", "2");
    daemon.set_policy(&wallet, json!([{"id": "cap", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let (status, sent) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!(status, 200, "{sent}");
    let tx_id = sent["id"].as_str().unwrap().to_string();
    daemon.wait_final(&agent, &tx_id);
    let (ok, frozen) = daemon.cli(&["freeze", "--wallet", &wallet, "--reason", "webhook test"]);
    assert!(ok, "{frozen}");

    assert!(wait_until(Duration::from_secs(20), || got.lock().unwrap().len() >= 2), "{:?}", got.lock().unwrap());
    let received = got.lock().unwrap().clone();
    let types: Vec<String> = received
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["transaction.confirmed", "wallet.frozen"], "in the order they happened");
    for request in &received {
        let (timestamp, signature) =
            (request.header("mandate-webhook-timestamp"), request.header("mandate-webhook-signature"));
        assert!(verifies(&secret, timestamp, &request.body, signature), "{request:?}");
        // The verifier can fail: another body, timestamp or secret does not verify.
        assert!(!verifies(&secret, timestamp, &format!("{} ", request.body), signature));
        assert!(!verifies(&secret, &(timestamp.parse::<u64>().unwrap() + 1).to_string(), &request.body, signature));
        assert!(!verifies("whsec_wrong", timestamp, &request.body, signature));
        let event: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(request.header("mandate-webhook-id"), event["id"].as_str().unwrap());
    }
    let confirmed: Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(
        (confirmed["data"]["tx_id"].as_str(), confirmed["data"]["status"].as_str()),
        (Some(tx_id.as_str()), Some("confirmed"))
    );

    // The secret is shown once: never in the list.
    let (status, listed) = daemon.call("GET", "/v1/webhooks", Some(&daemon.admin), None);
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(&secret) && listed["webhooks"][0].get("secret").is_none(), "{listed}");

    // A receiver that is down: the event waits in the log and is retried once it is up.
    let down = free_port();
    let (late_id, late_secret) = add_webhook(&daemon, &format!("http://127.0.0.1:{down}/late"), "wallet.frozen");
    let (second, _) = daemon.wallet("second", "0");
    let (ok, frozen) = daemon.cli(&["freeze", "--wallet", &second]);
    assert!(ok, "{frozen}");
    let mut log = Vec::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            log = deliveries(&daemon, &late_id);
            log.first().is_some_and(|d| d["attempts"].as_u64().unwrap() >= 1)
        }),
        "{log:?}"
    );
    assert_eq!(log[0]["status"], "pending", "{log:?}");
    assert!(log[0]["last_error"].is_string(), "{log:?}");
    let late = receiver(down);
    assert!(
        wait_until(Duration::from_secs(30), || !late.lock().unwrap().is_empty()),
        "never delivered after the retry"
    );
    let request = late.lock().unwrap()[0].clone();
    assert!(verifies(
        &late_secret,
        request.header("mandate-webhook-timestamp"),
        &request.body,
        request.header("mandate-webhook-signature")
    ));
    assert!(request.body.contains(&second), "{}", request.body);
    assert!(wait_until(Duration::from_secs(5), || deliveries(&daemon, &late_id)[0]["status"] == "delivered"));
    let log = deliveries(&daemon, &late_id);
    assert!(log[0]["attempts"].as_u64().unwrap() >= 2, "{log:?}");

    // Insecure and unknown input is refused.
    let (status, refused) = daemon.call(
        "POST",
        "/v1/webhooks",
        Some(&daemon.admin),
        Some(&json!({"url": "http://hooks.example.com/x", "events": ["wallet.frozen"]})),
    );
    assert_eq!((status, code(&refused)), (400, "INSECURE_URL"), "{refused}");
    let (status, refused) = daemon.call(
        "POST",
        "/v1/webhooks",
        Some(&daemon.admin),
        Some(&json!({"url": "https://hooks.example.com/x", "events": ["wallet.melted"]})),
    );
    assert_eq!((status, code(&refused)), (400, "INVALID_INPUT"), "{refused}");
    let agent_try = daemon.call(
        "POST",
        "/v1/webhooks",
        Some(&agent),
        Some(&json!({"url": "https://hooks.example.com/x", "events": ["wallet.frozen"]})),
    );
    assert_eq!(code(&agent_try.1), "ADMIN_REQUIRED", "{}", agent_try.1);
}

#[test]
fn webhook_secrets_are_sealed_at_rest_and_still_sign_after_a_restart() {
    let mut daemon = Daemon::start(CosignerMode::Dev);
    let port = free_port();
    let (id, secret) = add_webhook(&daemon, &format!("http://127.0.0.1:{port}/hook"), "wallet.frozen");
    let (wallet, _) = daemon.wallet("sealed", "0");

    // What a reader of the data directory finds: ciphertext bound to the webhook.
    assert!(daemon.terminate());
    let data = daemon.data();
    for file in ["data.db", "data.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(file)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&secret) && !text.contains(&secret["whsec_".len()..]), "{file} holds the secret");
        }
    }
    let script = "import sqlite3, sys\nprint(sqlite3.connect(sys.argv[1]).execute('SELECT secret FROM webhooks WHERE id = ?', (sys.argv[2],)).fetchone()[0])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, data.join("data.db").to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = String::from_utf8(out.stdout).unwrap();
    assert!(stored.starts_with("sealed:v1:"), "{stored}");

    // The restarted daemon opens it again: the event is signed with the same secret.
    let got = receiver(port);
    daemon.start_server();
    daemon.admin = daemon.login();
    let (ok, frozen) = daemon.cli(&["freeze", "--wallet", &wallet]);
    assert!(ok, "{frozen}");
    assert!(wait_until(Duration::from_secs(20), || !got.lock().unwrap().is_empty()));
    let request = got.lock().unwrap()[0].clone();
    let (timestamp, signature) =
        (request.header("mandate-webhook-timestamp"), request.header("mandate-webhook-signature"));
    assert!(verifies(&secret, timestamp, &request.body, signature), "{request:?}");
}
