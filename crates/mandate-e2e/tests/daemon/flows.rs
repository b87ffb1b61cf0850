//! Sends: the whole path, policy rules, concurrency, idempotency, a cosigner outage.

use std::collections::BTreeSet;

use serde_json::json;

use crate::{code, eth, recipient, CosignerMode, Daemon};

#[test]
fn wallet_to_confirmed_payment_moves_exactly_the_amount() {
    let mut daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("treasury", "10");
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();

    // No policy: default deny, nothing reserved.
    let (status, body) = daemon.send(&agent, &wallet, to, "0.5");
    assert_eq!((status, code(&body)), (403, "POLICY_DENIED"), "{body}");
    assert_eq!(body["error"]["details"]["rule_id"], "default_deny");

    daemon.set_policy(
        &wallet,
        json!([
            {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
            {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "3"}
        ]),
    );
    let (status, dry) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/transactions/dry-run"),
        Some(&agent),
        Some(&json!({"to": to.to_checksum(None), "amount": "0.5"})),
    );
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["decision"]["verdict"], "allow");
    assert_eq!(daemon.anvil.nonce(address), 0, "a dry run signs nothing");

    let (_, info) = daemon.call("GET", &format!("/v1/wallets/{wallet}"), Some(&agent), None);
    assert_eq!(info["address"], address.to_checksum(None));
    assert_eq!(info["chain_id"], 31337);

    let (status, sent) = daemon.send(&agent, &wallet, to, "0.5");
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "submitted");
    assert!(sent["tx_hash"].as_str().unwrap().starts_with("0x"));
    let done = daemon.wait_final(&agent, sent["id"].as_str().unwrap());
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(daemon.anvil.balance(to), eth("0.5"), "recipient got exactly the amount");

    let (_, balance) = daemon.call("GET", &format!("/v1/wallets/{wallet}/balance"), Some(&agent), None);
    assert_eq!(balance["balance_wei"], daemon.anvil.balance(address).to_string());
    assert!(eth("9.5") > daemon.anvil.balance(address), "gas was paid");

    // The CLI sees the same through the operator's eyes.
    let (ok, listed) = daemon.cli(&["wallet", "list"]);
    assert!(ok, "{listed}");
    assert!(listed.to_string().contains(&wallet));
    let (ok, verified) = daemon.cli(&["audit", "verify"]);
    assert!(ok, "{verified}");
    let (ok, tail) = daemon.cli(&["audit", "tail", "-n", "50"]);
    assert!(ok, "{tail}");
    let events: Vec<String> =
        tail["records"].as_array().unwrap().iter().map(|r| r["event"].as_str().unwrap().to_string()).collect();
    for event in [
        "wallet.created",
        "policy.set",
        "session.created",
        "transaction.requested",
        "policy.decision",
        "transaction.signed",
        "transaction.confirmed",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} not audited: {events:?}");
    }
    // Every route of the OpenAPI document is served (none answers NOT_FOUND / METHOD_NOT_ALLOWED).
    let (status, openapi) = daemon.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    let paths = openapi["paths"].as_object().unwrap();
    assert_eq!(
        paths.values().map(|p| p.as_object().unwrap().keys().filter(|k| *k != "parameters").count()).sum::<usize>(),
        56
    );
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            let concrete = path.replace("{id}", "nonexistent");
            let (_, reply) = daemon.call(&method.to_uppercase(), &concrete, Some(&agent), Some(&json!({})));
            let code = reply["error"]["code"].as_str().unwrap_or("");
            assert!(code != "NOT_FOUND" && code != "METHOD_NOT_ALLOWED", "{method} {path} is not served: {reply}");
        }
    }

    // Graceful shutdown: SIGTERM stops the daemon cleanly, and its local cosigner with it.
    let cosigner = daemon.cosigner_addr().to_string();
    assert!(daemon.terminate(), "the daemon exits 0 on SIGTERM");
    assert!(
        mandate_test_support::wait_until(std::time::Duration::from_secs(10), || std::net::TcpStream::connect(
            &cosigner
        )
        .is_err()),
        "the dev cosigner outlived the daemon"
    );
    let decision = tail["records"].as_array().unwrap().iter().rev().find(|r| r["event"] == "policy.decision").unwrap();
    assert_eq!(decision["policy_hash"].as_str().unwrap().len(), 64, "decisions carry the policy version hash");
}

#[test]
fn twenty_concurrent_sends_confirm_exactly_six_under_a_three_eth_cap() {
    let mut daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("busy", "10");
    daemon.set_policy(
        &wallet,
        json!([
            {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
            {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "3"}
        ]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();
    let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20).map(|_| scope.spawn(|| daemon.send(&agent, &wallet, to, "0.5"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let allowed: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    let denied: Vec<_> = results.iter().filter(|(s, b)| *s == 403 && code(b) == "POLICY_DENIED").collect();
    assert_eq!((allowed.len(), denied.len()), (6, 14), "{results:?}");
    for (_, body) in &denied {
        assert_eq!(body["error"]["details"]["rule_id"], "daily");
    }
    for (_, tx) in &allowed {
        assert_eq!(daemon.wait_final(&agent, tx["id"].as_str().unwrap())["status"], "confirmed");
    }
    assert_eq!(daemon.anvil.balance(to), eth("3"), "chain agrees with the cap");
    let nonces: BTreeSet<u64> = allowed.iter().map(|(_, tx)| tx["nonce"].as_u64().unwrap()).collect();
    assert_eq!(nonces, (0..6).collect(), "six distinct nonces, no gap");
    let mined: Vec<u64> = daemon.anvil.transactions_from(address).into_iter().map(|(n, _)| n).collect();
    assert_eq!(mined, (0..6).collect::<Vec<_>>(), "no nonce gap or reuse on chain");

    // The nonce manager survives a restart: the next send takes nonce 6.
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    daemon.restart();
    let (status, next) = daemon.send(&agent, &wallet, to, "0.1");
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["nonce"], 6);
    assert_eq!(daemon.wait_final(&agent, next["id"].as_str().unwrap())["status"], "confirmed");
}

#[test]
fn each_rule_denies_with_its_rule_id_and_bad_input_has_specific_codes() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("rules", "5");
    let agent = daemon.session(&wallet, &["broadcast"]);
    let (friend, stranger, blocked) = (recipient(), recipient(), recipient());
    daemon.set_policy(&wallet, json!([
        {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
        {"id": "blocklist", "type": "deny_recipients", "addresses": [blocked.to_checksum(None)]},
        {"id": "allowlist", "type": "allow_recipients", "addresses": [friend.to_checksum(None), blocked.to_checksum(None)]},
        {"id": "velocity", "type": "velocity", "window_secs": 3600, "max_count": 1},
        {"id": "cap", "type": "rolling_cap", "window_secs": 3600, "amount": "2"}
    ]));
    let denied = |to, amount: &str| {
        let (status, body) = daemon.send(&agent, &wallet, to, amount);
        assert_eq!((status, code(&body)), (403, "POLICY_DENIED"), "{body}");
        let details = &body["error"]["details"];
        assert!(details["reason"].as_str().is_some() && details["policy_hash"].as_str().is_some(), "{details}");
        details["rule_id"].as_str().unwrap().to_string()
    };
    assert_eq!(denied(friend, "1.5"), "per-tx");
    assert_eq!(denied(blocked, "0.1"), "blocklist");
    assert_eq!(denied(stranger, "0.1"), "allowlist");
    let (status, first) = daemon.send(&agent, &wallet, friend, "0.1");
    assert_eq!(status, 200, "{first}");
    assert_eq!(denied(friend, "0.1"), "velocity");
    let (status, dry) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/transactions/dry-run"),
        Some(&agent),
        Some(&json!({"to": friend.to_checksum(None), "amount": "0.1"})),
    );
    assert_eq!(status, 200);
    assert_eq!(dry["decision"]["rule_id"], "velocity");
    assert_eq!(dry["decision"]["observed"], "2", "{dry}");

    // Bad input: a specific 4xx code each, nothing signed.
    let path = format!("/v1/wallets/{wallet}/transactions");
    let good = friend.to_checksum(None);
    let bad_checksum = {
        let mut text = good.clone().into_bytes();
        let i = text.iter().rposition(|b| b.is_ascii_alphabetic() && *b != b'x').unwrap();
        text[i] ^= 0x20;
        String::from_utf8(text).unwrap()
    };
    let cases = [
        (json!({"to": "0x1234", "amount": "0.1"}), 400, "INVALID_ADDRESS"),
        (json!({"to": bad_checksum, "amount": "0.1"}), 400, "INVALID_ADDRESS_CHECKSUM"),
        (json!({"to": good, "amount": "-0.1"}), 400, "INVALID_AMOUNT"),
        (json!({"to": good, "amount": "1e17"}), 400, "INVALID_AMOUNT"),
        (json!({"to": good, "amount": "0.0000000000000000001"}), 400, "INVALID_AMOUNT"),
        (json!({"to": good, "amount": 0.1}), 400, "INVALID_AMOUNT"),
        (json!({"to": good, "amount": "0.1", "amount_wei": "1"}), 400, "AMOUNT_CONFLICT"),
        (json!({"to": good, "amount": "0.1", "gas": "1"}), 400, "INVALID_JSON"),
    ];
    for (body, status, expected) in cases {
        let (got, reply) = daemon.call("POST", &path, Some(&agent), Some(&body));
        assert_eq!((got, code(&reply)), (status, expected), "{body} → {reply}");
        for field in ["category", "message", "required_action", "retryable", "details"] {
            assert!(reply["error"].get(field).is_some(), "{field} missing in {reply}");
        }
    }
    let huge = format!("{{\"to\": \"{good}\", \"amount\": \"0.1\", \"pad\": \"{}\"}}", "x".repeat(100_000));
    let (status, reply) = daemon.call_with("POST", &path, Some(&agent), Some(huge.into_bytes()), &[]);
    assert_eq!((status, code(&reply)), (413, "BODY_TOO_LARGE"));
    let (status, reply) = daemon.call_with("POST", &path, Some(&agent), Some(b"{not json".to_vec()), &[]);
    assert_eq!((status, code(&reply)), (400, "INVALID_JSON"));
    let (status, reply) = daemon.call("GET", "/v1/nope", Some(&agent), None);
    assert_eq!((status, code(&reply)), (404, "NOT_FOUND"));
    let (status, reply) = daemon.call("DELETE", &path, Some(&agent), None);
    assert_eq!((status, code(&reply)), (405, "METHOD_NOT_ALLOWED"));
    assert_eq!(daemon.anvil.nonce(address), 1, "only the one allowed send reached the chain");
}

#[test]
fn the_same_idempotency_key_sends_once() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("idem", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();
    let path = format!("/v1/wallets/{wallet}/transactions");
    let body = json!({"to": to.to_checksum(None), "amount_wei": "1000"}).to_string().into_bytes();
    let key = [("Idempotency-Key", "order-42")];
    let (s1, first) = daemon.call_with("POST", &path, Some(&agent), Some(body.clone()), &key);
    let (s2, second) = daemon.call_with("POST", &path, Some(&agent), Some(body), &key);
    assert_eq!((s1, s2), (200, 200), "{first} {second}");
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["tx_hash"], second["tx_hash"]);
    daemon.wait_final(&agent, first["id"].as_str().unwrap());
    assert_eq!(daemon.anvil.balance(to), alloy_primitives::U256::from(1000u64));
    assert_eq!(daemon.anvil.nonce(address), 1, "one transaction on chain");
    let other = json!({"to": to.to_checksum(None), "amount_wei": "2000"}).to_string().into_bytes();
    let (status, reply) = daemon.call_with("POST", &path, Some(&agent), Some(other), &key);
    assert_eq!((status, code(&reply)), (409, "IDEMPOTENCY_KEY_REUSED"));

    // Agents that hang up mid-send abandon nothing: every send still ends confirmed
    // (or released), and the nonces stay contiguous.
    let impatient = daemon.api.client(Some(&agent));
    for _ in 0..3 {
        let send = mandate_client::RawRequest::new(mandate_client::Method::POST, path.as_str())
            .json(&json!({"to": to.to_checksum(None), "amount_wei": "1"}))
            .timeout(std::time::Duration::from_millis(15));
        let _ = daemon.api.block_on(impatient.send_raw(send));
    }
    // Settled: every listed send is final, and no send still on its way to its
    // reservation has appeared for two seconds (a hung-up request may still be reading
    // the chain when the first poll comes).
    let mut last = (0, std::time::Instant::now());
    let settled = mandate_test_support::wait_until(std::time::Duration::from_secs(30), || {
        let (_, list) = daemon.call("GET", &format!("/v1/wallets/{wallet}/transactions"), Some(&agent), None);
        let txs = list["transactions"].as_array().unwrap();
        let all_final = txs.iter().all(|tx| tx["status"] == "confirmed" || tx["status"] == "failed");
        if txs.len() != last.0 || !all_final {
            last = (txs.len(), std::time::Instant::now());
        }
        all_final && last.1.elapsed() >= std::time::Duration::from_secs(2)
    });
    assert!(settled, "a send was left half done after its client hung up");
    let (_, list) = daemon.call("GET", &format!("/v1/wallets/{wallet}/transactions"), Some(&agent), None);
    let confirmed = list["transactions"].as_array().unwrap().iter().filter(|tx| tx["status"] == "confirmed").count();
    assert_eq!(daemon.anvil.nonce(address), confirmed as u64, "no nonce gap: {list}");
    let (status, next) = daemon.send(&agent, &wallet, to, "0.001");
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["nonce"].as_u64().unwrap(), confirmed as u64);
}

#[test]
fn cosigner_down_is_a_clear_error_and_releases_the_reservation() {
    let mut daemon = Daemon::start(CosignerMode::External);
    let (wallet, address) = daemon.wallet("outage", "5");
    daemon.set_policy(
        &wallet,
        json!([
            {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
            {"id": "cap", "type": "rolling_cap", "window_secs": 3600, "amount": "0.9"}
        ]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();
    daemon.stop_cosigner();
    let (status, reply) = daemon.send(&agent, &wallet, to, "0.9");
    assert_eq!((status, code(&reply)), (503, "PEER_UNAVAILABLE"), "{reply}");
    assert_eq!(reply["error"]["retryable"], true);
    assert_eq!(reply["error"]["details"]["broadcast"], false);
    let tx_id = reply["error"]["details"]["transaction_id"].as_str().unwrap();
    let (_, tx) = daemon.call("GET", &format!("/v1/transactions/{tx_id}"), Some(&agent), None);
    assert_eq!(tx["status"], "failed", "{tx}");
    assert!(tx["tx_hash"].is_null());
    assert_eq!(daemon.anvil.nonce(address), 0, "nothing broadcast");

    // Released: the whole 0.9 ETH cap is available again, and nonce 0 is reused.
    daemon.start_cosigner();
    let (status, sent) = daemon.send(&agent, &wallet, to, "0.9");
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["nonce"], 0);
    assert_eq!(daemon.wait_final(&agent, sent["id"].as_str().unwrap())["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(to), eth("0.9"));
}
