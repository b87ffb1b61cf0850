//! Nonces against a real node: a nonce freed below broadcast transactions is filled at
//! once (no acknowledged send waits for unrelated traffic), and a transaction the node
//! dropped is broadcast again from its stored bytes, never signed again.

use std::time::Duration;

use alloy_primitives::U256;
use mandate_test_support::wait_until;
use serde_json::{json, Value};

use crate::{code, eth, recipient, CosignerMode, Daemon};

/// The cosigner signs at most 1 ETH per transaction; the daemon's policy allows 5.
fn cosigner_per_tx_max_one_eth(daemon: &Daemon) {
    let limits =
        "frozen = false\n[default]\nper_tx_max = \"1000000000000000000\"\ndaily_max = \"50000000000000000000\"\n";
    std::fs::write(daemon.cosigner_home().join("limits.toml"), limits).unwrap();
}

fn transactions(daemon: &Daemon, wallet: &str) -> Vec<Value> {
    let (status, body) =
        daemon.call("GET", &format!("/v1/wallets/{wallet}/transactions?limit=200"), Some(&daemon.admin), None);
    assert_eq!(status, 200, "{body}");
    body["transactions"].as_array().unwrap().clone()
}

fn audit_events(daemon: &Daemon) -> Vec<Value> {
    let (status, tail) = daemon.call("GET", "/v1/audit/tail?n=500", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{tail}");
    tail["records"].as_array().unwrap().clone()
}

#[test]
fn a_send_refused_at_signing_leaves_no_gap_that_strands_acknowledged_sends() {
    let daemon = Daemon::start(CosignerMode::Dev);
    cosigner_per_tx_max_one_eth(&daemon);
    let (wallet, address) = daemon.wallet("gaps", "20");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "5"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    // Interval mining: anvil's automine can drop out-of-order nonces arriving together.
    daemon.anvil.rpc("evm_setIntervalMining", json!([1]));
    let to = recipient();

    let mut acknowledged = Vec::new();
    let mut gaps = 0;
    // Rounds until one leaves a gap (a refused nonce below one broadcast in the same
    // round); no send follows that round, so only the daemon's fill can close it (a
    // later send taking the freed nonce is the other way the daemon closes gaps).
    for round in 0..6 {
        // Four small sends and two the cosigner refuses, all at once.
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let amounts = ["0.01", "2", "0.01", "0.01", "2", "0.01"];
            let handles: Vec<_> =
                amounts.iter().map(|amount| scope.spawn(|| daemon.send(&agent, &wallet, to, amount))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (mut refused_nonces, mut this_round) = (Vec::new(), Vec::new());
        for (status, body) in &outcomes {
            match status {
                200 => this_round.push(body["id"].as_str().unwrap().to_string()),
                _ => {
                    assert_eq!(code(body), "COSIGNER_PER_TX_LIMIT", "round {round}: {body}");
                    assert_eq!(body["error"]["details"]["broadcast"], false, "{body}");
                    let id = body["error"]["details"]["transaction_id"].as_str().unwrap();
                    let tx = transactions(&daemon, &wallet).into_iter().find(|tx| tx["id"] == id).unwrap();
                    refused_nonces.push(tx["nonce"].as_u64().unwrap());
                }
            }
        }
        assert_eq!(refused_nonces.len(), 2, "round {round}: {outcomes:?}");
        let highest_sent = transactions(&daemon, &wallet)
            .iter()
            .filter(|tx| this_round.iter().any(|id| tx["id"] == id.as_str()))
            .filter_map(|tx| tx["nonce"].as_u64())
            .max()
            .unwrap();
        acknowledged.extend(this_round);
        gaps += refused_nonces.iter().filter(|nonce| **nonce < highest_sent).count();
        if gaps > 0 {
            break;
        }
    }
    assert!(gaps > 0, "no refused send freed a nonce below a broadcast one; the test proved nothing");

    // No further traffic: every acknowledged send is mined.
    for id in &acknowledged {
        let tx = daemon.wait_final(&agent, id);
        assert_eq!(tx["status"], "confirmed", "{tx}");
    }
    let paid = eth("0.01") * U256::from(acknowledged.len() as u64);
    assert_eq!(daemon.anvil.balance(to), paid, "each acknowledged send paid once");
    // The gaps were filled by zero-value self-sends, audited, and the nonces are contiguous.
    let fills: Vec<Value> =
        transactions(&daemon, &wallet).into_iter().filter(|tx| tx["kind"] == "nonce_fill").collect();
    assert!(!fills.is_empty(), "the gaps were filled by the daemon");
    for fill in &fills {
        assert_eq!(
            (fill["to"].as_str(), fill["value_wei"].as_str()),
            (Some(address.to_checksum(None).as_str()), Some("0"))
        );
        daemon.wait_final(&agent, fill["id"].as_str().unwrap());
    }
    let events = audit_events(&daemon);
    assert!(events.iter().any(|r| r["event"] == "transaction.nonce_fill"), "audited");
    assert_eq!(
        daemon.anvil.nonce(address),
        (acknowledged.len() + fills.len()) as u64,
        "every nonce used once, none skipped"
    );
}

#[test]
fn a_transaction_the_node_dropped_is_broadcast_again_not_signed_again() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("dropped", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();
    // Nothing is mined until the test says so; then the node forgets its pool.
    daemon.anvil.rpc("evm_setAutomine", json!([false]));
    let (status, sent) = daemon.send(&agent, &wallet, to, "0.3");
    assert_eq!(status, 200, "{sent}");
    let hash = sent["tx_hash"].as_str().unwrap().to_string();
    daemon.anvil.rpc("anvil_dropAllTransactions", json!([]));
    assert!(daemon.anvil.rpc("eth_getTransactionByHash", json!([hash])).is_null(), "the node forgot it");

    // The tracker notices and hands the node the same signed bytes again.
    let back =
        wait_until(Duration::from_secs(20), || !daemon.anvil.rpc("eth_getTransactionByHash", json!([hash])).is_null());
    assert!(back, "the dropped transaction was never broadcast again");
    daemon.anvil.rpc("evm_mine", json!([]));
    let tx = daemon.wait_final(&agent, sent["id"].as_str().unwrap());
    assert_eq!((tx["status"].as_str(), tx["tx_hash"].as_str()), (Some("confirmed"), Some(hash.as_str())), "{tx}");
    assert_eq!(daemon.anvil.balance(to), eth("0.3"));
    let events = audit_events(&daemon);
    let about =
        |event: &str| events.iter().filter(|r| r["event"] == event && r["details"]["tx_id"] == sent["id"]).count();
    assert_eq!((about("transaction.signed"), about("transaction.rebroadcast")), (1, 1), "signed once, sent twice");
}

#[test]
fn a_stuck_transaction_is_sped_up_or_cancelled_at_its_nonce() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("stuck", "5");
    daemon.set_policy(
        &wallet,
        json!([{"id": "daily", "type": "rolling_cap", "amount": "1", "window_secs": 86400},
               {"id": "per-tx", "type": "max_per_tx", "amount": "1"}]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    let other = daemon.session(&daemon.wallet("other", "0").0, &["broadcast"]);
    let to = recipient();
    // Nothing is mined until the test says so: the sends sit in the pool, "stuck".
    daemon.anvil.rpc("evm_setAutomine", json!([false]));

    // Speed-up: the same transfer at the same nonce with higher fees replaces it in the pool.
    let (status, sent) = daemon.send(&agent, &wallet, to, "0.4");
    assert_eq!(status, 200, "{sent}");
    let (id, first_hash) = (sent["id"].as_str().unwrap().to_string(), sent["tx_hash"].as_str().unwrap().to_string());
    let speed_up = format!("/v1/transactions/{id}/speed-up");
    let (status, refused) = daemon.call("POST", &speed_up, Some(&other), None);
    assert_eq!((status, code(&refused)), (403, "WALLET_NOT_PERMITTED"), "another wallet's agent: {refused}");
    let (status, faster) = daemon.call("POST", &speed_up, Some(&agent), None);
    assert_eq!(status, 200, "{faster}");
    let faster_hash = faster["tx_hash"].as_str().unwrap().to_string();
    assert_ne!(faster_hash, first_hash);
    let pooled = daemon.anvil.rpc("eth_getTransactionByHash", json!([faster_hash]));
    let pooled_nonce = u64::from_str_radix(pooled["nonce"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(Some(pooled_nonce), sent["nonce"].as_u64(), "the replacement takes the same nonce");
    daemon.anvil.rpc("evm_mine", json!([]));
    let done = daemon.wait_final(&agent, &id);
    assert_eq!((done["status"].as_str(), done["tx_hash"].as_str()), (Some("confirmed"), Some(faster_hash.as_str())));
    assert_eq!(daemon.anvil.balance(to), eth("0.4"), "paid once");
    let (status, late) = daemon.call("POST", &speed_up, Some(&agent), None);
    assert_eq!((status, code(&late)), (409, "NOT_PENDING"), "{late}");

    // Cancel: a zero-value self-send at the nonce; mined, the transaction is cancelled
    // and its spend still counts for the window (the node's word is all that says the
    // cancel, not the payment, was mined).
    let (status, sent) = daemon.send(&agent, &wallet, to, "0.5");
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    let (status, over) = daemon.send(&agent, &wallet, to, "0.5");
    assert_eq!((status, code(&over)), (403, "POLICY_DENIED"), "0.4 + 0.5 + 0.5 > 1: {over}");
    let (status, cancelling) = daemon.call("POST", &format!("/v1/transactions/{id}/cancel"), Some(&agent), None);
    assert_eq!(status, 200, "{cancelling}");
    let cancel_hash = cancelling["tx_hash"].as_str().unwrap();
    let pooled = daemon.anvil.rpc("eth_getTransactionByHash", json!([cancel_hash]));
    assert_eq!(
        (pooled["to"].as_str().map(str::to_lowercase), pooled["value"].as_str()),
        (Some(format!("{address:#x}")), Some("0x0")),
        "{pooled}"
    );
    daemon.anvil.rpc("evm_mine", json!([]));
    let mut done = Value::Null;
    let settled = wait_until(Duration::from_secs(30), || {
        done = daemon.call("GET", &format!("/v1/transactions/{id}"), Some(&agent), None).1;
        matches!(done["status"].as_str(), Some("cancelled" | "confirmed" | "failed"))
    });
    assert!(settled, "{done}");
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(daemon.anvil.balance(to), eth("0.4"), "the cancelled payment never arrived");
    daemon.anvil.rpc("evm_setAutomine", json!([true]));
    let (status, again) = daemon.send(&agent, &wallet, to, "0.5");
    assert_eq!((status, code(&again)), (403, "POLICY_DENIED"), "the cancelled 0.5 still counts: {again}");
    let (status, within) = daemon.send(&agent, &wallet, to, "0.1");
    assert_eq!(status, 200, "0.4 + 0.5 + 0.1 = 1: {within}");
    let events = audit_events(&daemon);
    for event in ["transaction.speed_up", "transaction.cancel_sent", "transaction.cancelled"] {
        assert!(events.iter().any(|r| r["event"] == event), "{event} audited");
    }
}
