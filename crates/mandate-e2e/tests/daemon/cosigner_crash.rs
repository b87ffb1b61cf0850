//! The cosigner SIGKILLed again and again while sends are being signed (its process
//! dies wherever it is: before a run, between rounds, after its ledger commit): every
//! send either lands once or fails with a retryable error, the cosigner restarts on
//! its own ledger journal each time, its ledger counts every transaction that landed,
//! and the wallet's nonces carry on without a gap.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::U256;
use serde_json::{json, Value};

use crate::{code, eth, recipient, Api, CosignerMode, Daemon};

/// What one send answered: the transaction id when accepted, else the error code.
enum Outcome {
    Sent(String),
    Refused(String, Value),
}

fn send(api: &Api, token: &str, wallet: &str, to: alloy_primitives::Address) -> Outcome {
    let body = json!({"to": to.to_checksum(None), "amount": "0.001"}).to_string().into_bytes();
    let (status, reply) =
        api.call_with("POST", &format!("/v1/wallets/{wallet}/transactions"), Some(token), Some(body), &[]);
    match status {
        200 => Outcome::Sent(reply["id"].as_str().expect("a sent transaction has an id").to_string()),
        _ => Outcome::Refused(code(&reply).to_string(), reply),
    }
}

/// The amounts the cosigner's ledger committed for `wallet` (its snapshot and journal;
/// a run in both counts once, as the cosigner counts it).
fn cosigner_commits(daemon: &Daemon, wallet: &str) -> Vec<U256> {
    let home = daemon.cosigner_home();
    let chain_id = daemon.anvil.chain_id();
    let mut by_run = std::collections::BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(home.join("ledger.json")) {
        let ledger: Value = serde_json::from_str(&text).unwrap();
        for entry in ledger["wallets"][wallet][chain_id.to_string()].as_array().into_iter().flatten() {
            by_run.insert(entry["session"].to_string(), entry["amount"].as_str().unwrap().to_string());
        }
    }
    let journal = std::fs::read_to_string(home.join("ledger.journal")).unwrap_or_default();
    for line in journal.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        if line["wallet"] == json!(wallet) && line["chain_id"].as_u64() == Some(chain_id) && line["token"].is_null() {
            by_run.entry(line["session"].to_string()).or_insert(line["amount"].as_str().unwrap().to_string());
        }
    }
    by_run.values().map(|amount| U256::from_str(amount).unwrap()).collect()
}

#[test]
fn a_cosigner_killed_mid_signing_loses_no_ledger_entry_and_no_send_lands_twice() {
    let mut daemon = Daemon::start(CosignerMode::External);
    let (wallet, address) = daemon.wallet("crashing", "2");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "0.01"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();

    // Three agents' worth of sends in flight while the cosigner is killed five times.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (url, agent, wallet) = (daemon.url.clone(), agent.clone(), wallet.clone());
            let (stop, outcomes) = (stop.clone(), outcomes.clone());
            std::thread::spawn(move || {
                let api = Api::new(&url);
                while !stop.load(Ordering::SeqCst) {
                    let outcome = send(&api, &agent, &wallet, to);
                    let refused = matches!(outcome, Outcome::Refused(..));
                    outcomes.lock().unwrap().push(outcome);
                    if refused {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    for kill in 0..5u64 {
        // Kill at a different point of the runs in flight each time.
        std::thread::sleep(Duration::from_millis(250 + 67 * kill));
        daemon.stop_cosigner();
        std::thread::sleep(Duration::from_millis(200));
        // It starts on what it wrote: a journal it could not read would stop it here.
        daemon.start_cosigner();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let mut sent = Vec::new();
    let mut refusals = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Sent(id) => sent.push(id),
            Outcome::Refused(code, reply) => {
                // A crash is the cosigner's, not the daemon's: a clear, retryable error.
                assert_ne!(code, "INTERNAL", "{reply}");
                assert_eq!(reply["error"]["retryable"], true, "{reply}");
                refusals.push((code, reply["error"]["details"]["spend_kept"] == true));
            }
        }
    }
    assert!(!refusals.is_empty(), "the kills were never noticed");
    assert!(sent.len() >= 5, "only {} sends were accepted", sent.len());

    // Every accepted send lands, once.
    for id in &sent {
        let tx = daemon.wait_final(&agent, id);
        assert_eq!(tx["status"], "confirmed", "{tx}");
    }
    let landed = eth("0.001") * U256::from(sent.len());
    assert_eq!(daemon.anvil.balance(to), landed, "each accepted send paid once");

    // The cosigner's ledger counts every transaction that landed (its worst-case cost,
    // at least the value), whatever point of a run it was killed at.
    let commits = cosigner_commits(&daemon, &wallet);
    assert!(commits.len() >= sent.len(), "{} commits for {} landed sends", commits.len(), sent.len());
    let committed = commits.iter().fold(U256::ZERO, |sum, amount| sum + amount);
    assert!(committed >= landed, "the ledger holds {committed} wei, {landed} wei landed");

    // What the cosigner counts after a restart is exactly what its files hold: with its
    // daily maximum set to that plus 0.0015 ETH, one more 0.001 ETH send (plus at most
    // 0.0001 ETH of gas) fits and a second does not. A restart that lost a commit would
    // let both through; one that counted a commit twice would refuse the first.
    daemon.stop_cosigner();
    daemon.start_cosigner();
    let limit = committed + eth("0.0015");
    std::fs::write(
        daemon.cosigner_home().join("limits.toml"),
        format!("frozen = false\n[default]\nper_tx_max = \"1000000000000000000\"\ndaily_max = \"{limit}\"\n"),
    )
    .unwrap();
    // No nonce was lost either: the next send takes the next nonce on chain and lands.
    let next = send(&daemon.api, &agent, &wallet, to);
    let Outcome::Sent(id) = next else { panic!("a send within the cosigner's limit was refused") };
    let tx = daemon.wait_final(&agent, &id);
    assert_eq!(tx["status"], "confirmed", "{tx}");
    assert_eq!(tx["nonce"].as_u64().unwrap() + 1, daemon.anvil.nonce(address), "{tx}");
    match send(&daemon.api, &agent, &wallet, to) {
        Outcome::Refused(code, _) => assert_eq!(code, "COSIGNER_DAILY_LIMIT"),
        Outcome::Sent(_) => panic!("the restarted cosigner forgot commits: a send beyond its daily maximum was signed"),
    }
    let (status, verified) = daemon.call("GET", "/v1/audit/verify", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{verified}");
    let kept = refusals.iter().filter(|(_, kept)| *kept).count();
    eprintln!(
        "cosigner crashes: {} sends landed, {} refused, {kept} of them after the commit point",
        sent.len(),
        refusals.len()
    );
}
