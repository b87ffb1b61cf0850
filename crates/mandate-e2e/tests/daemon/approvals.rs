//! Humans in the loop, end to end on anvil: owner approvals (verified by the daemon
//! and again by the cosigner, which refuses a tampered daemon), the delay queue
//! across a restart, and the freeze at the daemon and the cosigner with the
//! owner-signed unfreeze after the cool-down.

use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{Address, U256};
use mandate_chain::approval::{OwnerDecision, OwnerSecret, SignedDecision};
use mandate_chain::UnsignedTx;
use mandate_test_support::{run_json, wait_until};
use serde_json::{json, Value};

use crate::owner_view::owner_run;
use crate::{bin, code, eth, recipient, CosignerMode, Daemon};

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A new owner key file made by `mandate owner keygen`; returns (path, public hex, secret).
pub(crate) fn owner_key(daemon: &Daemon, name: &str) -> (PathBuf, String, OwnerSecret) {
    let path = daemon.dir.path().join(format!("{name}.owner"));
    let (ok, made) = daemon.cli(&["owner", "keygen", "--out", path.to_str().unwrap()]);
    assert!(ok, "{made}");
    let mode = std::fs::metadata(&path).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    let public = made["owner_key"].as_str().unwrap().strip_prefix("ed25519:").unwrap().to_string();
    let secret = OwnerSecret::from_file_text(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, public, secret)
}

pub(crate) fn add_owner(daemon: &Daemon, wallet: &str, public: &str) {
    let (ok, added) = daemon.cli(&["owner", "add", "--wallet", wallet, "--ed25519-pubkey", public]);
    assert!(ok && added["added"] == true, "{added}");
}

/// The cosigner's own limits: 5 ETH per transaction, owner approval above
/// `approval_above` ETH (worst-case cost) by `owners`, a 3 s freeze cool-down.
pub(crate) fn cosigner_limits(daemon: &Daemon, approval_above: Option<&str>, owners: &[&str]) {
    let owners: Vec<String> = owners.iter().map(|key| format!("\"ed25519:{key}\"")).collect();
    let approval =
        approval_above.map(|eth_text| format!("approval_above = \"{}\"\n", eth(eth_text))).unwrap_or_default();
    let limits = format!(
        "frozen = false\nfreeze_cooldown_secs = 3\n[default]\nper_tx_max = \"5000000000000000000\"\n\
         daily_max = \"50000000000000000000\"\n{approval}owners = [{}]\n",
        owners.join(", ")
    );
    std::fs::write(daemon.cosigner_home().join("limits.toml"), limits).unwrap();
}

fn get_tx(daemon: &Daemon, token: &str, id: &str) -> Value {
    let (status, tx) = daemon.call("GET", &format!("/v1/transactions/{id}"), Some(token), None);
    assert_eq!(status, 200, "{tx}");
    tx
}

fn held(daemon: &Daemon, token: &str, wallet: &str, to: Address, amount: &str, status: &str) -> String {
    let (code, body) = daemon.send(token, wallet, to, amount);
    assert_eq!((code, body["status"].as_str()), (202, Some(status)), "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn post_decision(daemon: &Daemon, id: &str, verb: &str, signature: &str) -> (u16, Value) {
    daemon.call("POST", &format!("/v1/approvals/{id}/{verb}"), None, Some(&json!({"signature": signature})))
}

/// The approve decision the daemon offers for `id`.
fn approve_decision(daemon: &Daemon, id: &str) -> OwnerDecision {
    let (status, offer) = daemon.call("GET", &format!("/v1/approvals/{id}"), Some(&daemon.admin), None);
    assert_eq!(status, 200, "{offer}");
    let decision: OwnerDecision = serde_json::from_value(offer["approve_decision"].clone()).unwrap();
    assert_eq!(offer["approve_message"].as_str().unwrap(), decision.message());
    decision
}

#[test]
fn approvals_end_to_end_on_anvil() {
    let daemon = Daemon::start_with(CosignerMode::Dev, &["--approval-ttl-secs", "40"]);
    let (wallet, address) = daemon.wallet("approved", "20");
    let (owner_file, owner_public, owner) = owner_key(&daemon, "owner");
    let (stranger_file, _, stranger) = owner_key(&daemon, "stranger");
    add_owner(&daemon, &wallet, &owner_public);
    cosigner_limits(&daemon, Some("1"), &[&owner_public]);
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "big", "type": "tiers", "approval_above": "1"}]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);

    // Held first, left alone: it must expire, never sent.
    let late = recipient();
    let expiring = held(&daemon, &agent, &wallet, late, "1.1", "pending_approval");

    // Over the threshold: 202, pending, nothing signed.
    let payee = recipient();
    let nonce = daemon.anvil.nonce(address);
    let (status, pending) = daemon.send(&agent, &wallet, payee, "1.5");
    assert_eq!((status, pending["status"].as_str()), (202, Some("pending_approval")), "{pending}");
    assert!(pending["expires_at"].as_u64().unwrap() > 0 && pending["reason"].is_string(), "{pending}");
    let id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(get_tx(&daemon, &agent, &id)["status"], "pending_approval");
    assert_eq!(daemon.anvil.nonce(address), nonce);

    // A key that is not the wallet's owner is refused, through the CLI and raw.
    let (ok, refused) = daemon.cli(&["approve", &id, "--owner-key", stranger_file.to_str().unwrap(), "--yes"]);
    assert!(!ok && code(&refused) == "OWNER_SIGNATURE_INVALID", "{refused}");
    let decision = approve_decision(&daemon, &id);
    let (status, refused) = post_decision(&daemon, &id, "approve", &stranger.sign(&decision).unwrap().to_string());
    assert_eq!((status, code(&refused)), (401, "OWNER_SIGNATURE_INVALID"), "{refused}");

    // The owner's signature over another payload (1 wei more) is refused.
    let mut other = decision.clone();
    let mut tx = other.tx.clone().unwrap();
    tx.value += U256::from(1);
    other.tx = Some(tx);
    let (_, refused) = post_decision(&daemon, &id, "approve", &owner.sign(&other).unwrap().to_string());
    assert_eq!(code(&refused), "OWNER_SIGNATURE_INVALID", "{refused}");
    // The master password alone cannot approve: no signature, no approval.
    let (status, refused) =
        daemon.call("POST", &format!("/v1/approvals/{id}/approve"), Some(&daemon.admin), Some(&json!({})));
    assert_eq!(status, 400, "{refused}");
    assert_eq!(get_tx(&daemon, &agent, &id)["status"], "pending_approval");

    // The owner approves (signature printed, then posted): confirmed, exact amount.
    let (ok, printed) =
        daemon.cli(&["approve", &id, "--owner-key", owner_file.to_str().unwrap(), "--print-signature", "--yes"]);
    assert!(ok, "{printed}");
    assert_eq!(printed["message"].as_str().unwrap(), decision.message());
    let signature = printed["signature"].as_str().unwrap().to_string();
    assert_eq!(get_tx(&daemon, &agent, &id)["status"], "pending_approval", "printing does not approve");
    let (status, approved) = post_decision(&daemon, &id, "approve", &signature);
    assert_eq!((status, approved["status"].as_str()), (200, Some("approved")), "{approved}");
    let done = daemon.wait_final(&agent, &id);
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(daemon.anvil.balance(payee), eth("1.5"));

    // Single use: the same signature again, or on a second pending item, is refused.
    let (status, again) = post_decision(&daemon, &id, "approve", &signature);
    assert_eq!((status, code(&again)), (409, "NOT_PENDING"), "{again}");
    let second_payee = recipient();
    let second = held(&daemon, &agent, &wallet, second_payee, "1.2", "pending_approval");
    let (_, replayed) = post_decision(&daemon, &second, "approve", &signature);
    assert_eq!(code(&replayed), "OWNER_SIGNATURE_INVALID", "{replayed}");

    // Denied: never broadcast.
    let nonce = daemon.anvil.nonce(address);
    let (ok, denied) = daemon.cli(&["deny", &second, "--owner-key", owner_file.to_str().unwrap(), "--yes"]);
    assert!(ok && denied["status"] == "denied", "{denied}");
    let (status, late_approval) = post_decision(
        &daemon,
        &second,
        "approve",
        &owner.sign(&OwnerDecision { item: second.clone(), ..decision.clone() }).unwrap().to_string(),
    );
    assert_eq!((status, code(&late_approval)), (409, "NOT_PENDING"), "{late_approval}");

    // The first item expires (40 s after it was made); approving it then fails.
    let expired = wait_until(Duration::from_secs(60), || get_tx(&daemon, &agent, &expiring)["status"] == "expired");
    assert!(expired, "{}", get_tx(&daemon, &agent, &expiring));
    let (ok, too_late) = daemon.cli(&["approve", &expiring, "--owner-key", owner_file.to_str().unwrap(), "--yes"]);
    assert!(!ok && code(&too_late) == "NOT_PENDING", "{too_late}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(daemon.anvil.balance(second_payee), U256::ZERO);
    assert_eq!(daemon.anvil.balance(late), U256::ZERO);
    assert_eq!(daemon.anvil.nonce(address), nonce, "nothing was broadcast after the approved send");
    let tx = get_tx(&daemon, &agent, &second);
    assert!(tx["tx_hash"].is_null() && tx["status"] == "denied", "{tx}");
}

/// `mandate service sign` is the service party talking to the cosigner directly,
/// as a daemon whose approval checks were removed would.
pub(crate) fn tampered_sign(
    daemon: &Daemon,
    wallet: &str,
    tx: &UnsignedTx,
    approval: Option<&SignedDecision>,
) -> (bool, Value) {
    let mut args = vec![
        "service".to_string(),
        "sign".into(),
        "--data-dir".into(),
        daemon.data().join("service").display().to_string(),
        "--wallet".into(),
        wallet.into(),
        "--tx".into(),
        format!("0x{}", hex::encode(tx.encode())),
    ];
    if let Some(approval) = approval {
        let path = daemon.dir.path().join(format!("approval-{}.json", rand::random::<u32>()));
        std::fs::write(&path, approval.encode()).unwrap();
        args.push("--approval".into());
        args.push(path.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_json(bin(), &args, &[("MANDATE_MASTER_PASSWORD_FILE", &daemon.master_file())])
}

#[test]
fn the_cosigner_refuses_a_tampered_daemon_without_a_valid_owner_approval() {
    let daemon = Daemon::start(CosignerMode::External);
    let (wallet, _) = daemon.wallet("tampered", "0");
    let (_, owner_public, owner) = owner_key(&daemon, "owner");
    let (_, _, stranger) = owner_key(&daemon, "stranger");
    cosigner_limits(&daemon, Some("1"), &[&owner_public]);
    let chain = daemon.anvil.chain_id();
    let big = UnsignedTx::new(chain, 0, recipient(), eth("1.5"), 21_000, 2_000_000_000, 1_000_000_000, vec![]);
    let decision = |tx: &UnsignedTx, item: &str| OwnerDecision {
        action: mandate_chain::approval::DecisionAction::Approve,
        item: item.into(),
        wallet: wallet.clone(),
        tx: Some(mandate_chain::approval::ApprovedTx::new(
            chain,
            tx.to().unwrap(),
            tx.value(),
            tx.input(),
            tx.gas_limit(),
            tx.max_fee_per_gas(),
        )),
        expires_at: unix_now() + 600,
    };
    let signed = |secret: &OwnerSecret, decision: OwnerDecision| {
        SignedDecision::single(decision.clone(), secret.sign(&decision).unwrap())
    };

    let (ok, refused) = tampered_sign(&daemon, &wallet, &big, None);
    assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_REQUIRED", "{refused}");
    let (ok, refused) = tampered_sign(&daemon, &wallet, &big, Some(&signed(&stranger, decision(&big, "tx_forged"))));
    assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_INVALID", "{refused}");
    // A stranger's signature relabelled as the owner's does not verify either.
    let mut relabelled = signed(&stranger, decision(&big, "tx_relabelled"));
    relabelled.signatures[0].key = owner.public();
    let (ok, refused) = tampered_sign(&daemon, &wallet, &big, Some(&relabelled));
    assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_INVALID", "{refused}");
    // The owner's approval of a smaller amount does not cover this transaction.
    let small_approved =
        UnsignedTx::new(chain, 0, big.to().unwrap(), eth("1.2"), 21_000, 2_000_000_000, 1_000_000_000, vec![]);
    let (ok, refused) =
        tampered_sign(&daemon, &wallet, &big, Some(&signed(&owner, decision(&small_approved, "tx_other"))));
    assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_INVALID", "{refused}");
    // An expired owner approval is void.
    let mut stale = decision(&big, "tx_stale");
    stale.expires_at = unix_now() - 1;
    let (ok, refused) = tampered_sign(&daemon, &wallet, &big, Some(&signed(&owner, stale)));
    assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_INVALID", "{refused}");

    // The check is not a blanket refusal: the owner's approval signs, once.
    let valid = signed(&owner, decision(&big, "tx_valid"));
    let (ok, out) = tampered_sign(&daemon, &wallet, &big, Some(&valid));
    assert!(ok, "{out}");
    let (ok, refused) = tampered_sign(&daemon, &wallet, &big, Some(&valid));
    assert!(!ok && code(&refused) == "COSIGNER_APPROVAL_INVALID", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("used already"), "{refused}");
    // Below approval_above no approval is needed.
    let small = UnsignedTx::new(chain, 1, recipient(), eth("0.5"), 21_000, 2_000_000_000, 1_000_000_000, vec![]);
    let (ok, out) = tampered_sign(&daemon, &wallet, &small, None);
    assert!(ok, "{out}");
}

#[test]
fn delayed_sends_can_be_cancelled_and_survive_a_restart() {
    let mut daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("delayed", "10");
    cosigner_limits(&daemon, None, &[]);
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "slow", "type": "tiers", "delay_above": "1", "delay_secs": 8}]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    let nonce = daemon.anvil.nonce(address);

    let cancelled_payee = recipient();
    let cancelled = held(&daemon, &agent, &wallet, cancelled_payee, "1.2", "delayed");
    let (status, body) = daemon.call("POST", &format!("/v1/transactions/{cancelled}/cancel"), Some(&agent), None);
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body}");
    let (status, again) = daemon.call("POST", &format!("/v1/transactions/{cancelled}/cancel"), Some(&agent), None);
    assert_eq!((status, code(&again)), (409, "NOT_PENDING"), "{again}");

    let payee = recipient();
    let (status, queued) = daemon.send(&agent, &wallet, payee, "1.3");
    assert_eq!((status, queued["status"].as_str()), (202, Some("delayed")), "{queued}");
    let execute_after = queued["execute_after"].as_u64().unwrap();
    let id = queued["id"].as_str().unwrap().to_string();
    // The daemon stops during the wait and comes back: the queue is in the database.
    daemon.restart();
    assert_eq!(get_tx(&daemon, &agent, &id)["status"], "delayed");
    assert_eq!(daemon.anvil.nonce(address), nonce, "nothing is sent before execute_after");
    let done = daemon.wait_final(&agent, &id);
    assert_eq!(done["status"], "confirmed", "{done}");
    assert!(unix_now() >= execute_after);
    assert_eq!(daemon.anvil.balance(payee), eth("1.3"));
    assert_eq!(daemon.anvil.balance(cancelled_payee), U256::ZERO);
    assert_eq!(daemon.anvil.nonce(address), nonce + 1, "only the uncancelled item was sent");
}

#[test]
fn freeze_holds_at_daemon_and_cosigner_until_an_owner_unfreezes_after_the_cooldown() {
    let daemon = Daemon::start_with(CosignerMode::External, &["--freeze-cooldown-secs", "3"]);
    let (wallet, address) = daemon.wallet("frozen", "10");
    let (owner_file, owner_public, _) = owner_key(&daemon, "owner");
    let (stranger_file, _, _) = owner_key(&daemon, "stranger");
    add_owner(&daemon, &wallet, &owner_public);
    cosigner_limits(&daemon, None, &[&owner_public]);
    daemon.set_policy(&wallet, json!([{"id": "cap", "type": "max_per_tx", "amount": "5"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let chain = daemon.anvil.chain_id();
    let probe = |nonce: u64| UnsignedTx::new(chain, nonce, recipient(), eth("0.1"), 21_000, 2_000_000_000, 1, vec![]);

    let (ok, frozen) = daemon.cli(&["freeze", "--wallet", &wallet, "--reason", "lost laptop"]);
    assert!(ok && frozen["cosigner"] == "notified", "{frozen}");
    let (status, refused) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!((status, code(&refused)), (403, "WALLET_FROZEN"), "{refused}");
    // The cosigner refuses by itself: the service party asking it directly gets nothing.
    let (ok, refused) = tampered_sign(&daemon, &wallet, &probe(0), None);
    assert!(!ok && code(&refused) == "COSIGNER_FROZEN", "{refused}");

    // Before the cool-down: refused, still frozen. A stranger is refused after it too.
    let owner = owner_file.to_str().unwrap();
    let (ok, early, _) = owner_run(&daemon.url, &["unfreeze", "--wallet", &wallet, "--owner-key", owner, "--yes"]);
    assert!(!ok && code(&early) == "FREEZE_COOLDOWN", "{early}");
    std::thread::sleep(Duration::from_secs(4));
    let stranger_key = stranger_file.to_str().unwrap();
    let (ok, stranger, _) =
        owner_run(&daemon.url, &["unfreeze", "--wallet", &wallet, "--owner-key", stranger_key, "--yes"]);
    assert!(!ok && code(&stranger) == "OWNER_SIGNATURE_INVALID", "{stranger}");
    let (status, still) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!((status, code(&still)), (403, "WALLET_FROZEN"), "{still}");

    // After it, the owner unfreezes both.
    let (ok, lifted, review) =
        owner_run(&daemon.url, &["unfreeze", "--wallet", &wallet, "--owner-key", owner, "--yes"]);
    assert!(review.contains("UNFREEZE") && review.contains(&wallet), "{review}");
    assert!(ok && lifted["unfrozen"] == true, "{lifted}");
    let payee = recipient();
    let (status, sent) = daemon.send(&agent, &wallet, payee, "0.2");
    assert_eq!(status, 200, "{sent}");
    assert_eq!(daemon.wait_final(&agent, sent["id"].as_str().unwrap())["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(payee), eth("0.2"));
    let (ok, out) = tampered_sign(&daemon, &wallet, &probe(daemon.anvil.nonce(address)), None);
    assert!(ok, "the cosigner signs again after the unfreeze: {out}");

    // `mandate cosigner freeze` on the cosigner host: the daemon's sends fail there.
    let home = daemon.cosigner_home();
    let (ok, out) =
        run_json(bin(), &["cosigner", "freeze", "--data-dir", home.to_str().unwrap(), "--wallet", &wallet], &[]);
    assert!(ok, "{out}");
    let (_, refused) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!(code(&refused), "COSIGNER_FROZEN", "{refused}");
    assert_eq!(refused["error"]["details"]["broadcast"], false, "{refused}");
    let (ok, out) =
        run_json(bin(), &["cosigner", "unfreeze", "--data-dir", home.to_str().unwrap(), "--wallet", &wallet], &[]);
    assert!(ok, "{out}");
    let (status, sent) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!(status, 200, "{sent}");
}

#[test]
fn owners_are_registered_by_the_operator_only_and_keys_are_checked() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("owned", "0");
    let agent = daemon.session(&wallet, &["broadcast", "freeze"]);
    let body = json!({"owner_key": format!("ed25519:{}", "11".repeat(32))});
    let (status, refused) = daemon.call("POST", &format!("/v1/wallets/{wallet}/owners"), Some(&agent), Some(&body));
    assert_eq!((status, code(&refused)), (403, "ADMIN_REQUIRED"), "{refused}");
    for bad in ["ed25519:zz", "rsa:00", "evm:0x1234"] {
        let (status, refused) = daemon.call(
            "POST",
            &format!("/v1/wallets/{wallet}/owners"),
            Some(&daemon.admin),
            Some(&json!({"owner_key": bad})),
        );
        assert_eq!((status, code(&refused)), (400, "INVALID_INPUT"), "{bad}: {refused}");
    }
    let evm = format!("evm:{}", recipient().to_checksum(None));
    let (status, added) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/owners"),
        Some(&daemon.admin),
        Some(&json!({"owner_key": evm, "label": "alice's ledger"})),
    );
    assert_eq!((status, added["added"].as_bool()), (200, Some(true)), "{added}");
    let (_, listed) = daemon.call("GET", &format!("/v1/wallets/{wallet}/owners"), Some(&agent), None);
    assert_eq!(listed["owners"][0]["owner_key"], json!(evm), "{listed}");
}

/// The cosigner's limits with an owner quorum: approval above 1 ETH by
/// `threshold` of `owners`, a 3 s freeze cool-down.
fn quorum_limits(daemon: &Daemon, owners: &[&str], threshold: u64) {
    let owners: Vec<String> = owners.iter().map(|key| format!("\"ed25519:{key}\"")).collect();
    let limits = format!(
        "frozen = false\nfreeze_cooldown_secs = 3\n[default]\nper_tx_max = \"5000000000000000000\"\n\
         daily_max = \"50000000000000000000\"\napproval_above = \"{}\"\nowners = [{}]\nowner_threshold = {threshold}\n",
        eth("1"),
        owners.join(", ")
    );
    std::fs::write(daemon.cosigner_home().join("limits.toml"), limits).unwrap();
}

#[test]
fn an_owner_quorum_holds_a_send_until_two_distinct_owners_signed_and_the_cosigner_counts_its_own() {
    let daemon = Daemon::start_with(CosignerMode::External, &["--freeze-cooldown-secs", "3"]);
    let (wallet, address) = daemon.wallet("quorum", "20");
    let (alice_file, alice_public, alice) = owner_key(&daemon, "alice");
    let (bob_file, bob_public, bob) = owner_key(&daemon, "bob");
    let (_, _, stranger) = owner_key(&daemon, "stranger");
    add_owner(&daemon, &wallet, &alice_public);
    // A quorum larger than the owners is refused; the default is one owner.
    let (ok, refused) = daemon.cli(&["owner", "quorum", "set", "--wallet", &wallet, "--threshold", "2"]);
    assert!(!ok && code(&refused) == "INVALID_INPUT", "{refused}");
    add_owner(&daemon, &wallet, &bob_public);
    let (ok, set) = daemon.cli(&["owner", "quorum", "set", "--wallet", &wallet, "--threshold", "2"]);
    assert!(ok && set["owner_threshold"] == 2, "{set}");
    let (ok, listed) = daemon.cli(&["owner", "list", "--wallet", &wallet]);
    assert!(ok && listed["owner_threshold"] == 2 && listed["owners"].as_array().unwrap().len() == 2, "{listed}");
    let agent = daemon.session(&wallet, &["broadcast"]);
    let (status, refused) = daemon.call(
        "PUT",
        &format!("/v1/wallets/{wallet}/owners/quorum"),
        Some(&agent),
        Some(&json!({"threshold": 1})),
    );
    assert_eq!((status, code(&refused)), (403, "ADMIN_REQUIRED"), "{refused}");
    quorum_limits(&daemon, &[&alice_public, &bob_public], 2);
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "big", "type": "tiers", "approval_above": "1"}]),
    );

    let payee = recipient();
    let nonce = daemon.anvil.nonce(address);
    let id = held(&daemon, &agent, &wallet, payee, "1.5", "pending_approval");
    let decision = approve_decision(&daemon, &id);

    // Alice signs: "1 of 2", still held, nothing sent.
    let (ok, first) = daemon.cli(&["approve", &id, "--owner-key", alice_file.to_str().unwrap(), "--yes"]);
    assert!(ok && first["status"] == "pending_approval", "{first}");
    assert_eq!(first["quorum"], json!({"required": 2, "signed": 1, "owners": [format!("ed25519:{alice_public}")]}));
    // The same owner again does not count twice (and a stranger not at all).
    let (status, again) = post_decision(&daemon, &id, "approve", &alice.sign(&decision).unwrap().to_string());
    assert_eq!(
        (status, again["status"].as_str(), again["quorum"]["signed"].as_u64()),
        (200, Some("pending_approval"), Some(1))
    );
    let (status, refused) = post_decision(&daemon, &id, "approve", &stranger.sign(&decision).unwrap().to_string());
    assert_eq!((status, code(&refused)), (401, "OWNER_SIGNATURE_INVALID"), "{refused}");
    let (_, shown) = daemon.call("GET", &format!("/v1/owner/approvals/{id}"), None, None);
    assert_eq!(
        (shown["quorum"]["signed"].as_u64(), shown["quorum"]["required"].as_u64()),
        (Some(1), Some(2)),
        "{shown}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(get_tx(&daemon, &agent, &id)["status"], "pending_approval");
    assert_eq!(daemon.anvil.nonce(address), nonce, "one of two owners sends nothing");

    // A daemon that forwards one owner's signature (or the same owner's twice) to a
    // cosigner that requires two of its own owners is refused there.
    let chain = daemon.anvil.chain_id();
    let big = UnsignedTx::new(chain, 0, recipient(), eth("1.5"), 21_000, 2_000_000_000, 1_000_000_000, vec![]);
    let tampered = OwnerDecision {
        item: "tx_tampered_quorum".into(),
        tx: Some(mandate_chain::approval::ApprovedTx::new(
            chain,
            big.to().unwrap(),
            big.value(),
            big.input(),
            big.gas_limit(),
            big.max_fee_per_gas(),
        )),
        ..decision.clone()
    };
    let by = |signers: &[&OwnerSecret]| SignedDecision {
        decision: tampered.clone(),
        signatures: signers.iter().map(|secret| secret.sign(&tampered).unwrap()).collect(),
    };
    for signers in [vec![&alice], vec![&alice, &alice], vec![&alice, &stranger]] {
        let (ok, refused) = tampered_sign(&daemon, &wallet, &big, Some(&by(&signers)));
        assert!(!ok && code(&refused) == "COSIGNER_QUORUM_NOT_MET", "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("1 of 2"), "{refused}");
    }

    // Bob signs too: approved, signed by both parties (the cosigner got both), confirmed.
    let (ok, second) = daemon.cli(&["approve", &id, "--owner-key", bob_file.to_str().unwrap(), "--yes"]);
    assert!(ok && second["status"] == "approved", "{second}");
    assert_eq!(second["quorum"]["signed"], 2, "{second}");
    let done = daemon.wait_final(&agent, &id);
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(daemon.anvil.balance(payee), eth("1.5"));
    let _ = bob;

    // An unfreeze needs the quorum too: one owner leaves the wallet frozen.
    let (ok, frozen) = daemon.cli(&["freeze", "--wallet", &wallet, "--reason", "quorum test"]);
    assert!(ok && frozen["cosigner"] == "notified", "{frozen}");
    std::thread::sleep(Duration::from_secs(4));
    let (ok, partial, _) = owner_run(
        &daemon.url,
        &["unfreeze", "--wallet", &wallet, "--owner-key", alice_file.to_str().unwrap(), "--yes"],
    );
    assert!(ok && partial["unfrozen"] == false && partial["quorum"]["signed"] == 1, "{partial}");
    let (status, still) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!((status, code(&still)), (403, "WALLET_FROZEN"), "{still}");
    let (ok, lifted, _) =
        owner_run(&daemon.url, &["unfreeze", "--wallet", &wallet, "--owner-key", bob_file.to_str().unwrap(), "--yes"]);
    assert!(ok && lifted["unfrozen"] == true, "{lifted}");
    let (status, sent) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!(status, 200, "the cosigner lifted its freeze too: {sent}");
}
