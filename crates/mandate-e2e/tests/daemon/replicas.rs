//! Two `mandate serve` processes on one PostgreSQL database, one cosigner, one anvil:
//! a rolling cap, the nonces, the receipt tracker and the audit chain hold across
//! them (docs/ARCHITECTURE.md, "Several daemons on one database").

use alloy_primitives::U256;
use std::time::Duration;

use mandate_client::RawRequest;
use mandate_test_support::{run_json, wait_until, Postgres, RpcHold};
use serde_json::{json, Value};

use crate::{code, eth, recipient, Api, CosignerMode, Daemon};

fn send(api: &Api, token: &str, wallet: &str, to: alloy_primitives::Address, amount: &str) -> (u16, Value) {
    let body = json!({"to": to.to_checksum(None), "amount": amount}).to_string().into_bytes();
    api.call_with("POST", &format!("/v1/wallets/{wallet}/transactions"), Some(token), Some(body), &[])
}

#[test]
fn two_daemons_on_one_postgres_database_keep_one_rolling_cap_and_one_nonce_sequence() {
    let postgres = Postgres::start();
    let database = postgres.new_database("replicas");
    let daemon = Daemon::start_on(CosignerMode::External, &[], Some(&database));
    let (wallet, address) = daemon.wallet("replicated", "20");
    daemon.set_policy(
        &wallet,
        json!([{"id": "day", "type": "rolling_cap", "window_secs": 86400, "amount": "3"},
               {"id": "per-tx", "type": "max_per_tx", "amount": "1"}]),
    );
    // The second daemon: a copy of the data directory (the wallet's service share
    // included), the same database, node and cosigner.
    let replica = daemon.replica();
    let agent = daemon.session(&wallet, &["broadcast"]);
    // Interval mining: anvil's automine can drop out-of-order nonces arriving together.
    daemon.anvil.rpc("evm_setIntervalMining", json!([1]));
    let to = recipient();

    // 20 sends of 0.5 ETH at once, every other one through the second daemon.
    let outcomes: Vec<(usize, u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let api = if i % 2 == 0 { &daemon.api } else { &replica.api };
                let (agent, wallet) = (&agent, &wallet);
                scope.spawn(move || {
                    let (status, body) = send(api, agent, wallet, to, "0.5");
                    (i % 2, status, body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut accepted = Vec::new();
    for (_, status, body) in &outcomes {
        match status {
            200 => accepted.push(body["id"].as_str().unwrap().to_string()),
            _ => assert_eq!((*status, code(body)), (403, "POLICY_DENIED"), "{body}"),
        }
    }
    assert_eq!(accepted.len(), 6, "3 ETH / 0.5 ETH across both daemons: {outcomes:?}");
    for served_by in [0, 1] {
        let answered = outcomes.iter().filter(|(by, _, _)| *by == served_by).count();
        assert_eq!(answered, 10, "each daemon answered its ten");
    }

    // Every accepted send is mined, at nonces 0..6 (each handed out once), whichever
    // daemon accepted it; the recipient got exactly 3 ETH.
    let mut nonces = Vec::new();
    for id in &accepted {
        let tx = daemon.wait_final(&agent, id);
        assert_eq!(tx["status"], "confirmed", "{tx}");
        nonces.push(tx["nonce"].as_u64().unwrap());
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (0..6).collect::<Vec<u64>>(), "contiguous nonces");
    assert_eq!(daemon.anvil.nonce(address), 6, "the chain saw six transactions of the wallet");
    assert_eq!(daemon.anvil.balance(to), eth("0.5") * U256::from(6u64), "exactly 3 ETH arrived");
    // The other daemon sees the same transactions, and still refuses more.
    let (status, refused) = send(&replica.api, &agent, &wallet, to, "0.5");
    assert_eq!((status, code(&refused)), (403, "POLICY_DENIED"), "{refused}");

    // One audit chain, in one order, verifies from either daemon and against the
    // cosigner's anchor (the highest head either daemon showed it).
    let home = daemon.cosigner_home();
    let (ok, anchor) = run_json(crate::bin(), &["cosigner", "anchor", "--data-dir", home.to_str().unwrap()], &[]);
    assert!(ok, "{anchor}");
    let anchored =
        format!("/v1/audit/verify?anchor_seq={}&anchor_hash={}", anchor["seq"], anchor["hash"].as_str().unwrap());
    for (api, admin) in [(&daemon.api, &daemon.admin), (&replica.api, &replica.admin)] {
        for path in ["/v1/audit/verify", anchored.as_str()] {
            let (status, verified) = api.call_with("GET", path, Some(admin), None, &[]);
            assert_eq!((status, &verified["ok"]), (200, &json!(true)), "{path}: {verified}");
        }
    }
    // Each transaction's receipt was recorded once, though both daemons' trackers
    // poll the same table.
    let (status, tail) = daemon.call("GET", "/v1/audit/tail?n=500", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{tail}");
    let records = tail["records"].as_array().unwrap();
    for id in &accepted {
        let about =
            |event: &str| records.iter().filter(|r| r["event"] == event && r["details"]["tx_id"] == *id).count();
        assert_eq!((about("transaction.signed"), about("transaction.confirmed")), (1, 1), "{id}");
    }

    // PostgreSQL goes down: both daemons answer a retryable 503 and change nothing; back
    // up, they serve again with nothing lost.
    postgres.stop();
    for api in [&daemon.api, &replica.api] {
        let (status, down) =
            api.call_with("GET", &format!("/v1/wallets/{wallet}/transactions"), Some(&agent), None, &[]);
        assert_eq!((status, code(&down)), (503, "DATABASE_UNAVAILABLE"), "{down}");
        assert_eq!(
            (down["error"]["retryable"].as_bool(), down["error"]["retry_after"].as_u64()),
            (Some(true), Some(1))
        );
        assert!(!down.to_string().contains(&postgres.password().to_string()), "no password in the answer: {down}");
    }
    postgres.restart();
    let listed = wait_until(Duration::from_secs(30), || {
        let (status, list) =
            replica.api.call_with("GET", &format!("/v1/wallets/{wallet}/transactions"), Some(&agent), None, &[]);
        status == 200
            && list["transactions"]
                .as_array()
                .is_some_and(|txs| txs.iter().filter(|tx| tx["status"] == "confirmed").count() == 6)
    });
    assert!(listed, "after the restart both daemons serve the same six confirmed sends");
}

/// How many audit records of `event` name transaction `id`.
fn audited(daemon: &Daemon, event: &str, id: &str) -> usize {
    let (status, tail) = daemon.call("GET", "/v1/audit/tail?n=500", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{tail}");
    tail["records"].as_array().unwrap().iter().filter(|r| r["event"] == event && r["details"]["tx_id"] == id).count()
}

#[test]
fn a_replica_killed_before_its_broadcast_leaves_one_signature_and_held_sends_run_once() {
    let postgres = Postgres::start();
    let database = postgres.new_database("faults");
    let daemon = Daemon::start_on(CosignerMode::External, &[], Some(&database));
    let (wallet, address) = daemon.wallet("faulty", "20");
    daemon.set_policy(
        &wallet,
        json!([{"id": "per-tx", "type": "max_per_tx", "amount": "5"},
               {"id": "slow", "type": "tiers", "delay_above": "0.5", "delay_secs": 3}]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    daemon.anvil.rpc("evm_setIntervalMining", json!([1]));

    // A replica whose node never receives its broadcasts: it signs, records the signed
    // bytes, calls eth_sendRawTransaction and waits. Then it is killed (SIGKILL).
    let hold = RpcHold::start(&daemon.rpc_url);
    let mut doomed = daemon.replica_on(&hold.url);
    let to = recipient();
    let body = json!({"to": to.to_checksum(None), "amount": "0.5"}).to_string().into_bytes();
    let request = RawRequest::new("POST".parse().unwrap(), format!("/v1/wallets/{wallet}/transactions"))
        .header("content-type", "application/json")
        .body(body);
    let answer = std::thread::scope(|scope| {
        let sending = scope.spawn(|| {
            let api = Api::new(&doomed.url);
            api.block_on(api.client(Some(&agent)).send_raw(request))
        });
        assert!(wait_until(Duration::from_secs(60), || hold.held() == 1), "the replica never broadcast");
        doomed.server.kill();
        sending.join().unwrap()
    });
    assert!(answer.is_err(), "the killed replica answered nothing: {answer:?}");
    assert_eq!(daemon.anvil.nonce(address), 0, "nothing reached the node from the killed replica");

    // The surviving daemon finds the stored signed transaction, broadcasts it and tracks
    // it to confirmed: the same bytes, signed once.
    let (status, list) = daemon.call("GET", &format!("/v1/wallets/{wallet}/transactions"), Some(&agent), None);
    assert_eq!(status, 200, "{list}");
    let id = list["transactions"][0]["id"].as_str().unwrap().to_string();
    let done = daemon.wait_final(&agent, &id);
    assert_eq!((&done["status"], &done["nonce"]), (&json!("confirmed"), &json!(0)), "{done}");
    assert_eq!(daemon.anvil.balance(to), eth("0.5"), "paid once");
    assert_eq!((audited(&daemon, "transaction.signed", &id), audited(&daemon, "transaction.rebroadcast", &id)), (1, 1));

    // Delayed sends queued on both daemons are executed once each, by whichever
    // executor claims them first.
    let other = daemon.replica();
    let mut queued = Vec::new();
    for i in 0..4 {
        let api = if i % 2 == 0 { &daemon.api } else { &other.api };
        let (status, body) = send(api, &agent, &wallet, to, "0.75");
        assert_eq!((status, body["status"].as_str()), (202, Some("delayed")), "{body}");
        queued.push(body["id"].as_str().unwrap().to_string());
    }
    let mut nonces = vec![0];
    for id in &queued {
        let done = daemon.wait_final(&agent, id);
        assert_eq!(done["status"], "confirmed", "{done}");
        nonces.push(done["nonce"].as_u64().unwrap());
        assert_eq!(audited(&daemon, "transaction.signed", id), 1, "{id} signed once");
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (0..5).collect::<Vec<u64>>(), "one nonce each, no gap");
    assert_eq!(daemon.anvil.balance(to), eth("3.5"), "each delayed send paid once");
    assert_eq!(daemon.anvil.nonce(address), 5);
}

/// `mandate bench replicas` (README, "Benchmarks") runs as a user would start it and
/// finds no invariant violated on either setup.
#[test]
fn the_replicas_benchmark_counts_no_violation() {
    let (ok, report) = run_json(crate::bin(), &["bench", "replicas", "--sends", "20", "--concurrency", "3"], &[]);
    assert!(ok, "{report}");
    assert_eq!(report["invariant_violations"], 0, "{report}");
    for setup in ["sqlite_one_daemon", "postgres_two_replicas"] {
        assert_eq!(report[setup]["load"]["accepted"], 20, "the cap admits exactly 20: {report}");
        assert_eq!(report[setup]["load"]["denied"], 5, "{report}");
        assert!(report[setup]["load"]["sends_per_sec"].as_f64().is_some_and(|rate| rate > 0.0), "{report}");
    }
}

/// PostgreSQL goes down and comes back while both replicas take sends: every answer is
/// a send or a clean retryable 503; afterwards every accepted send is confirmed, each
/// signed once, the chain's nonce matches the confirmed transactions (a reservation
/// abandoned by the outage is released after the lease and its nonce filled), and the
/// recipient got exactly the accepted sends.
#[test]
fn postgres_restarted_under_load_loses_nothing_and_signs_nothing_twice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let postgres = Postgres::start();
    let database = postgres.new_database("restart");
    let daemon = Daemon::start_on(CosignerMode::External, &["--reservation-lease-secs", "5"], Some(&database));
    let (wallet, address) = daemon.wallet("restarted", "50");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let replica = daemon.replica();
    let agent = daemon.session(&wallet, &["broadcast"]);
    daemon.anvil.rpc("evm_setIntervalMining", json!([1]));
    let to = recipient();
    let stop = AtomicBool::new(false);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let senders: Vec<_> = [&daemon.api, &replica.api]
            .into_iter()
            .map(|api| {
                let (stop, agent, wallet) = (&stop, &agent, &wallet);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        answers.push(send(api, agent, wallet, to, "0.01"));
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    answers
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        postgres.stop();
        std::thread::sleep(Duration::from_secs(3));
        postgres.restart();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::SeqCst);
        senders.into_iter().flat_map(|handle| handle.join().unwrap()).collect()
    });
    let mut accepted = Vec::new();
    for (status, body) in &answers {
        match status {
            200 => accepted.push(body["id"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!((code(body), &body["error"]["retryable"]), ("DATABASE_UNAVAILABLE", &json!(true)), "{body}")
            }
            _ => panic!("an answer that is neither a send nor a retryable 503: {status} {body}"),
        }
    }
    // A request during the outage either waits for a connection (up to 10 s) and goes
    // through, or gets the 503; either way it is one of the two.
    assert!(!accepted.is_empty(), "{answers:?}");

    // Everything settles: no transaction stays reserved or submitted.
    let listed = |path: &str| daemon.call("GET", path, Some(&daemon.admin), None).1;
    let settled = wait_until(Duration::from_secs(90), || {
        listed(&format!("/v1/wallets/{wallet}/transactions?limit=100"))["transactions"]
            .as_array()
            .is_some_and(|txs| txs.iter().all(|tx| !matches!(tx["status"].as_str(), Some("reserved" | "submitted"))))
    });
    assert!(settled, "{}", listed(&format!("/v1/wallets/{wallet}/transactions?limit=100")));
    let txs =
        listed(&format!("/v1/wallets/{wallet}/transactions?limit=100"))["transactions"].as_array().unwrap().clone();
    assert!(txs.len() < 100, "fewer transactions than one page: {}", txs.len());
    let confirmed: Vec<&Value> = txs.iter().filter(|tx| tx["status"] == "confirmed").collect();
    for id in &accepted {
        let tx = listed(&format!("/v1/transactions/{id}"));
        assert_eq!(tx["status"], "confirmed", "an accepted send was lost: {tx}");
        assert_eq!(audited(&daemon, "transaction.signed", id), 1, "{id} signed once");
    }
    assert_eq!(daemon.anvil.nonce(address), confirmed.len() as u64, "one nonce per confirmed transaction, no gap");
    let paid = confirmed.iter().filter(|tx| tx["kind"] != "nonce_fill").count();
    assert_eq!(paid, accepted.len(), "only accepted sends paid");
    assert_eq!(daemon.anvil.balance(to), eth("0.01") * U256::from(paid as u64));
}
