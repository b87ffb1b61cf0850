//! Operator credentials and the daemon's front door, against a real daemon process:
//! operator API keys instead of the master password, the login limiter under a flood
//! of bad logins from another process's threads (an emergency freeze still goes
//! through), the `Host` check (DNS rebinding), the dashboard's body limit, and a
//! revoked session's held sends.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use base64::Engine;
use mandate_client::{Client, Method, RawRequest};
use mandate_test_support::{run_json, wait_until};
use serde_json::{json, Value};

use crate::approvals::cosigner_limits;
use crate::{bin, code, recipient, CosignerMode, Daemon};

/// Writes `key` to a 0600 file in the daemon's temp dir.
fn key_file(daemon: &Daemon, name: &str, key: &str) -> String {
    let path = daemon.dir.path().join(name);
    std::fs::write(&path, format!("{key}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// Runs the CLI with an operator key file and no master password in its environment.
fn cli_with_key(daemon: &Daemon, key_file: &str, args: &[&str]) -> (bool, Value) {
    run_json(bin(), args, &[("MANDATE_URL", &daemon.url), ("MANDATE_OPERATOR_KEY_FILE", key_file)])
}

fn create_key(daemon: &Daemon, name: &str, scopes: &[&str]) -> (String, String) {
    let mut args = vec!["operator", "key", "create", "--name", name];
    for scope in scopes {
        args.extend(["--scopes", scope]);
    }
    let (ok, created) = daemon.cli(&args);
    assert!(ok, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("mnd_op_"), "{created}");
    (key, created["operator_key"]["id"].as_str().unwrap().to_string())
}

fn audit_events(daemon: &Daemon) -> Vec<Value> {
    let (status, tail) = daemon.call("GET", "/v1/audit/tail?n=1000", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{tail}");
    tail["records"].as_array().unwrap().clone()
}

/// A one-request HTTP server that records what it was sent (someone who bound the
/// daemon's port while it was down).
fn impostor() -> (String, Arc<Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(String::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buffer = [0u8; 8192];
            let read = stream.read(&mut buffer).unwrap_or(0);
            *record.lock().unwrap() = String::from_utf8_lossy(&buffer[..read]).into_owned();
            let body = r#"{"wallets":[]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn operator_keys_replace_the_master_password_for_day_to_day_commands() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("keyed", "0");
    let (admin_key, admin_id) = create_key(&daemon, "laptop", &[]);
    let admin_file = key_file(&daemon, "admin.key", &admin_key);

    // Day-to-day commands with the key and no master password anywhere in the environment.
    let (ok, listed) = cli_with_key(&daemon, &admin_file, &["wallet", "list"]);
    assert!(ok, "{listed}");
    assert_eq!(listed["wallets"][0]["id"], wallet.as_str());
    let (ok, session) = cli_with_key(&daemon, &admin_file, &["session", "create", "--wallet", &wallet, "--ttl", "60"]);
    assert!(ok, "{session}");
    // An admin key creates keys itself, and the audit names it.
    let (ok, made) =
        cli_with_key(&daemon, &admin_file, &["operator", "key", "create", "--name", "ro", "--scopes", "read"]);
    assert!(ok, "{made}");
    let read_key = made["key"].as_str().unwrap().to_string();
    let read_id = made["operator_key"]["id"].as_str().unwrap().to_string();
    assert_eq!(made["operator_key"]["created_by"], format!("operator:key:{admin_id}"));

    // A key file others can read is refused before any request.
    let loose = key_file(&daemon, "loose.key", &admin_key);
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, refused) = cli_with_key(&daemon, &loose, &["wallet", "list"]);
    assert!(!ok && code(&refused) == "INSECURE_FILE_PERMISSIONS", "{refused}");

    // Scopes: a read key reads and changes nothing; a freeze key freezes and reads nothing.
    let read_file = key_file(&daemon, "read.key", &read_key);
    let (ok, shown) = cli_with_key(&daemon, &read_file, &["wallet", "show", &wallet]);
    assert!(ok, "{shown}");
    let (ok, refused) = cli_with_key(&daemon, &read_file, &["session", "create", "--wallet", &wallet, "--ttl", "60"]);
    assert!(!ok && code(&refused) == "SCOPE_MISSING", "{refused}");
    let (status, reply) = daemon.call("POST", "/v1/operator-keys", Some(&read_key), Some(&json!({"name": "x"})));
    assert_eq!((status, code(&reply)), (403, "SCOPE_MISSING"), "a read key cannot mint an admin key");
    let (freeze_key, _) = create_key(&daemon, "panic-button", &["freeze"]);
    let (status, reply) = daemon.call("GET", "/v1/wallets", Some(&freeze_key), None);
    assert_eq!((status, code(&reply)), (403, "SCOPE_MISSING"));
    let (status, frozen) =
        daemon.call("POST", &format!("/v1/wallets/{wallet}/freeze"), Some(&freeze_key), Some(&json!({})));
    assert_eq!(status, 200, "{frozen}");

    // Listing shows state and last use, never a key; the database holds only hashes.
    let (ok, keys) = cli_with_key(&daemon, &admin_file, &["operator", "key", "list"]);
    assert!(ok, "{keys}");
    let text = keys.to_string();
    assert!(!text.contains("mnd_op_"), "{text}");
    let laptop = keys["operator_keys"].as_array().unwrap().iter().find(|k| k["id"] == admin_id.as_str()).unwrap();
    assert!(laptop["last_used_at"].is_u64() && laptop["expires_at"].is_u64(), "{laptop}");
    let db = std::fs::read(daemon.data().join("data.db")).unwrap();
    let wal = std::fs::read(daemon.data().join("data.db-wal")).unwrap_or_default();
    for key in [&admin_key, &read_key, &freeze_key] {
        for bytes in [&db, &wal] {
            assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "an operator key is stored in clear");
        }
    }

    // Revocation applies to the next request; unknown keys are refused and audited.
    let (ok, revoked) = cli_with_key(&daemon, &admin_file, &["operator", "key", "revoke", &read_id]);
    assert!(ok && revoked["revoked"] == true, "{revoked}");
    let (ok, refused) = cli_with_key(&daemon, &read_file, &["wallet", "list"]);
    assert!(!ok && code(&refused) == "UNAUTHENTICATED", "{refused}");
    let (status, reply) = daemon.call("GET", "/v1/wallets", Some("mnd_op_not-a-key"), None);
    assert_eq!((status, code(&reply)), (401, "UNAUTHENTICATED"));
    let (ok, missing) = cli_with_key(&daemon, &admin_file, &["operator", "key", "revoke", "opk_nope"]);
    assert!(!ok && code(&missing) == "NOT_FOUND", "{missing}");
    let records = audit_events(&daemon);
    let event = |name: &str| records.iter().filter(|r| r["event"] == name).cloned().collect::<Vec<_>>();
    assert_eq!(event("operator_key.created").len(), 3);
    assert_eq!(event("operator_key.revoked").len(), 1);
    let failures = event("operator_key.use_failed");
    let reasons: Vec<&str> = failures.iter().filter_map(|r| r["details"]["reason"].as_str()).collect();
    assert!(reasons.contains(&"this operator key was revoked"), "{reasons:?}");
    assert!(reasons.contains(&"unknown operator key"), "{reasons:?}");
    assert!(reasons.contains(&"scope"), "{reasons:?}");
    assert!(failures.iter().any(|r| r["details"]["key_id"] == read_id.as_str()));
    assert!(records
        .iter()
        .any(|r| r["event"] == "session.created" && r["actor"] == format!("operator:key:{admin_id}")));

    // Whoever answers at the daemon's address gets the key, never the sealing secret,
    // even with both set.
    let master = std::fs::read_to_string(daemon.master_file()).unwrap().trim().to_string();
    let (fake_url, seen) = impostor();
    let (ok, out) = run_json(
        bin(),
        &["wallet", "list"],
        &[("MANDATE_URL", &fake_url), ("MANDATE_OPERATOR_KEY_FILE", &admin_file), ("MANDATE_MASTER_PASSWORD", &master)],
    );
    assert!(ok, "{out}");
    let request = seen.lock().unwrap().clone();
    assert!(request.starts_with("GET /v1/wallets "), "{request}");
    assert!(request.to_ascii_lowercase().contains(&format!("authorization: bearer {admin_key}").to_ascii_lowercase()));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("operator:{master}"));
    assert!(!request.contains(&master) && !request.contains(&basic), "the master password was sent: {request}");
}

/// What one attacker request got.
struct Outcome {
    status: u16,
    code: String,
    retry_after: Option<u64>,
    header: bool,
}

#[test]
fn a_flood_of_bad_logins_is_rate_limited_and_starves_no_freeze_nor_another_clients_login() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("flooded", "0");
    let (key, _) = create_key(&daemon, "responder", &["freeze"]);
    let url = daemon.url.clone();

    // The attacker: 8 threads posting wrong passwords as fast as the daemon answers,
    // from another loopback address (127.0.0.2), i.e. another client.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let attackers: Vec<_> = (0..8)
        .map(|n| {
            let (stop, outcomes, url) = (stop.clone(), outcomes.clone(), url.clone());
            std::thread::spawn(move || {
                // Another client: the daemon's client library on a connection from 127.0.0.2.
                let http = reqwest::Client::builder()
                    .local_address(IpAddr::from([127, 0, 0, 2]))
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                let client = Client::with_http(&url, http).unwrap();
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("operator:guess {n}"));
                while !stop.load(Ordering::Relaxed) {
                    let login = RawRequest::new(Method::POST, "/v1/admin/login")
                        .header("Authorization", format!("Basic {basic}"));
                    let Ok(response) = runtime.block_on(client.send_raw(login)) else {
                        continue;
                    };
                    let status = response.status;
                    let header = response.header("retry-after").is_some();
                    let body: Value = response.json().unwrap_or(Value::Null);
                    outcomes.lock().unwrap().push(Outcome {
                        status,
                        code: body["error"]["code"].as_str().unwrap_or("").to_string(),
                        retry_after: body["error"]["retry_after"].as_u64(),
                        header,
                    });
                }
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(20), || outcomes.lock().unwrap().iter().any(|o| o.status == 429)),
        "the flood was never rate limited"
    );

    // During the flood: the operator's existing token freezes a wallet, an operator
    // key freezes everything, and a correct login from this client succeeds.
    let started = Instant::now();
    let (status, frozen) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/freeze"),
        Some(&daemon.admin),
        Some(&json!({"reason": "flood"})),
    );
    let freeze_took = started.elapsed();
    assert_eq!(status, 200, "{frozen}");
    let started = Instant::now();
    let (status, all) = daemon.call("POST", "/v1/freeze", Some(&key), Some(&json!({"reason": "flood"})));
    let freeze_all_took = started.elapsed();
    assert_eq!(status, 200, "{all}");
    let started = Instant::now();
    let token = daemon.login();
    let login_took = started.elapsed();
    assert!(token.starts_with("mnd_admin_"));

    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    // Generous bounds: each answer needs at most a handful of password checks' time.
    for (what, took) in [("freeze", freeze_took), ("freeze all", freeze_all_took), ("login", login_took)] {
        assert!(took < Duration::from_secs(15), "{what} took {took:?} during the flood");
    }
    let outcomes = outcomes.lock().unwrap();
    let limited: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 429).collect();
    assert!(!limited.is_empty());
    for outcome in &limited {
        assert_eq!(outcome.code, "RATE_LIMITED");
        assert!(outcome.retry_after.is_some_and(|secs| (1..=60).contains(&secs)), "retry_after missing");
        assert!(outcome.header, "no Retry-After header");
    }
    // The attacker's client had its budget of password checks and no more.
    let checked = outcomes.iter().filter(|o| o.status == 401).count();
    assert!(checked <= 5, "{checked} wrong passwords were checked for one client within a minute");
    assert!(outcomes.iter().all(|o| matches!(o.status, 401 | 429)));
    let failures = audit_events(&daemon).iter().filter(|r| r["event"] == "admin.login_failed").count();
    assert_eq!(failures, checked, "each checked failure is audited, refusals are not");
    eprintln!(
        "flood: {} requests, {checked} checked, {} limited; freeze {freeze_took:?}, freeze all {freeze_all_took:?}, \
         login {login_took:?}",
        outcomes.len(),
        limited.len()
    );
}

#[test]
fn rest_and_dashboard_refuse_foreign_hosts_and_large_dashboard_bodies() {
    let daemon = Daemon::start_with(CosignerMode::Dev, &["--allowed-host", "wallet.example"]);
    let port = daemon.url.rsplit(':').next().unwrap().to_string();
    let admin = daemon.admin.clone();
    let with_host = |method: &str, path: &str, host: &str| {
        let request = RawRequest::new(method.parse().unwrap(), path)
            .header("host", host)
            .header("content-type", "application/json")
            .body(b"{}".to_vec());
        let reply = daemon.api.raw(Some(&admin), request);
        (reply.status, String::from_utf8_lossy(&reply.body).into_owned())
    };
    let rebinding = format!("attacker.example:{port}");
    for (method, path) in [
        ("GET", "/v1/health"),
        ("GET", "/v1/wallets"),
        ("POST", "/v1/freeze"),
        ("GET", "/dashboard"),
        ("POST", "/dashboard/login"),
        ("POST", "/mcp"),
    ] {
        let (status, body) = with_host(method, path, &rebinding);
        assert_eq!(status, 403, "{method} {path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code(&body), "HOST_NOT_ALLOWED", "{method} {path}");
    }
    for host in
        [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "wallet.example".into(), "WALLET.example:443".into()]
    {
        let (status, body) = with_host("GET", "/v1/wallets", &host);
        assert_eq!(status, 200, "{host}: {body}");
        let (status, _) = with_host("GET", "/dashboard", &host);
        assert_eq!(status, 200, "{host}");
    }

    // The dashboard takes at most 64 KiB, as REST does.
    let form = format!("csrf=x&password={}", "a".repeat(100 * 1024));
    let request = RawRequest::new(Method::POST, "/dashboard/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", "mandate_login_csrf=x")
        .body(form.into_bytes());
    assert_eq!(daemon.api.raw(None, request).status, 413);
    let (status, reply) = daemon.call_with("POST", "/v1/sessions", Some(&admin), Some(vec![b' '; 100 * 1024]), &[]);
    assert_eq!((status, code(&reply)), (413, "BODY_TOO_LARGE"));
}

#[test]
fn revoking_a_session_cancels_its_held_and_delayed_sends() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("revoked", "10");
    cosigner_limits(&daemon, None, &[]);
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "slow", "type": "tiers", "delay_above": "0.5", "delay_secs": 3, "approval_above": "2"}]),
    );
    let doomed = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 600, "scopes": ["broadcast"]}));
    let doomed_token = doomed["token"].as_str().unwrap().to_string();
    let other = daemon.session(&wallet, &["broadcast"]);
    let (delayed_payee, pending_payee, other_payee) = (recipient(), recipient(), recipient());
    let held = |token: &str, to, amount: &str, status: &str| {
        let (code, body) = daemon.send(token, &wallet, to, amount);
        assert_eq!((code, body["status"].as_str()), (202, Some(status)), "{body}");
        body["id"].as_str().unwrap().to_string()
    };
    let delayed = held(&doomed_token, delayed_payee, "1", "delayed");
    let pending = held(&doomed_token, pending_payee, "3", "pending_approval");
    let kept = held(&other, other_payee, "1", "delayed");

    let (ok, revoked) = daemon.cli(&["session", "revoke", doomed["session"]["id"].as_str().unwrap()]);
    assert!(ok, "{revoked}");
    let mut cancelled: Vec<&str> = revoked["cancelled"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    cancelled.sort();
    let mut expected = vec![delayed.as_str(), pending.as_str()];
    expected.sort();
    assert_eq!(cancelled, expected, "{revoked}");

    // The other session's delayed send runs after its delay; the revoked one's never does.
    let done = daemon.wait_final(&other, &kept);
    assert_eq!(done["status"], "confirmed", "{done}");
    std::thread::sleep(Duration::from_secs(1));
    for id in [&delayed, &pending] {
        let (status, tx) = daemon.call("GET", &format!("/v1/transactions/{id}"), Some(&daemon.admin), None);
        assert_eq!((status, tx["status"].as_str()), (200, Some("cancelled")), "{tx}");
    }
    assert_eq!(daemon.anvil.balance(delayed_payee), U256::ZERO);
    assert_eq!(daemon.anvil.balance(pending_payee), U256::ZERO);
    let records = audit_events(&daemon);
    let cancellations = records.iter().filter(|r| r["event"] == "transaction.cancelled").count();
    assert_eq!(cancellations, 2, "each cancellation is audited");
}
