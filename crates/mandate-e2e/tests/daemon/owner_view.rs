//! Owners sign what they see, with the owner key alone: `mandate approve|deny|unfreeze`
//! run with no operator credential in their environment, check the daemon's answer
//! against the canonical decision (a lying daemon, played by a fake HTTP server, gets
//! no signature), show the decision and ask, refuse an expiry beyond the owner's
//! bound; and no wallet signs an owner-decision text or is registered as an owner.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, U256};
use mandate_chain::approval::{ApprovedTx, DecisionAction, OwnerDecision, OwnerSecret, OwnerSignature};
use mandate_test_support::run_json;
use serde_json::{json, Value};

use crate::approvals::{add_owner, owner_key};
use crate::{bin, code, eth, recipient, CosignerMode, Daemon};

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Runs `mandate --json args` as an owner: the daemon's URL and nothing else in the
/// environment (no MANDATE_MASTER_PASSWORD*), stdin not a terminal. Returns
/// (success, stdout JSON, stderr).
pub(crate) fn owner_run(url: &str, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(bin())
        .arg("--json")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MANDATE_URL", url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout:?} {stderr}"));
    (output.status.success(), value, stderr)
}

fn tx_status(daemon: &Daemon, token: &str, id: &str) -> String {
    let (_, tx) = daemon.call("GET", &format!("/v1/transactions/{id}"), Some(token), None);
    tx["status"].as_str().unwrap().to_string()
}

#[test]
fn owners_review_then_sign_with_the_owner_key_alone() {
    let daemon = Daemon::start_with(CosignerMode::Dev, &["--approval-ttl-secs", "600"]);
    let (wallet, wallet_address) = daemon.wallet("reviewed", "10");
    let (owner_file, owner_public, _) = owner_key(&daemon, "owner");
    add_owner(&daemon, &wallet, &owner_public);
    let limits = format!(
        "frozen = false\n[default]\nper_tx_max = \"5000000000000000000\"\ndaily_max = \"50000000000000000000\"\n\
         approval_above = \"{}\"\nallow_messages = true\nowners = [\"ed25519:{owner_public}\"]\n",
        eth("1")
    );
    std::fs::write(daemon.data().join("cosigner").join("limits.toml"), limits).unwrap();
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "big", "type": "tiers", "approval_above": "1"},
               {"id": "messages", "type": "personal_message", "mode": "allow", "pattern": "(?s).*"}]),
    );
    let agent = daemon.session(&wallet, &["broadcast", "sign"]);
    let key = owner_file.to_str().unwrap();
    let url = daemon.url.as_str();

    let payee = recipient();
    let (status, held) = daemon.send(&agent, &wallet, payee, "1.5");
    assert_eq!((status, held["status"].as_str()), (202, Some("pending_approval")), "{held}");
    let id = held["id"].as_str().unwrap().to_string();

    // No terminal and no --yes: shown, then refused; nothing signed.
    let (ok, refused, review) = owner_run(url, &["approve", &id, "--owner-key", key]);
    assert!(!ok && code(&refused) == "CONFIRMATION_REQUIRED", "{refused}");
    for shown in [
        payee.to_checksum(None),
        "1.5 ETH (1500000000000000000 wei)".to_string(),
        format!("chain: {}", daemon.anvil.chain_id()),
        " UTC (in ".to_string(),
        "fees at most".to_string(),
        format!("item: {id}"),
    ] {
        assert!(review.contains(&shown), "the review lacks {shown:?}:\n{review}");
    }
    // An approval window (600 s) beyond the owner's bound (60 s) is refused.
    let (ok, refused, _) = owner_run(url, &["approve", &id, "--owner-key", key, "--yes", "--max-expiry-secs", "60"]);
    assert!(!ok && code(&refused) == "DECISION_EXPIRY_TOO_FAR", "{refused}");
    assert_eq!(tx_status(&daemon, &agent, &id), "pending_approval");

    // With --yes, and no master password anywhere: approved, sent, exact amount.
    let (ok, approved, _) = owner_run(url, &["approve", &id, "--owner-key", key, "--yes"]);
    assert!(ok && approved["status"] == "approved", "{approved}");
    assert_eq!(daemon.wait_final(&agent, &id)["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(payee), eth("1.5"));

    // The daemon's database rewritten under a held item: the owner is shown the
    // recipient that would really be signed (the stored one), not the agent's.
    let honest = recipient();
    let attacker = recipient();
    let (_, second) = daemon.send(&agent, &wallet, honest, "1.2");
    let second = second["id"].as_str().unwrap().to_string();
    let db = daemon.data().join("data.db");
    let update = format!(
        "PRAGMA busy_timeout = 5000; UPDATE transactions SET to_address = '{}' WHERE id = '{second}';",
        attacker.to_checksum(None)
    );
    let sqlite = Command::new("sqlite3").arg(&db).arg(&update).output().unwrap();
    assert!(sqlite.status.success(), "{}", String::from_utf8_lossy(&sqlite.stderr));
    let (ok, refused, review) = owner_run(url, &["approve", &second, "--owner-key", key]);
    assert!(!ok && code(&refused) == "CONFIRMATION_REQUIRED", "{refused}");
    assert!(review.contains(&attacker.to_checksum(None)), "{review}");
    assert!(!review.contains(&honest.to_checksum(None)), "{review}");
    // The owner denies it instead, again with the owner key alone.
    let (ok, denied, review) = owner_run(url, &["deny", &second, "--owner-key", key, "--yes"]);
    assert!(ok && denied["status"] == "denied", "{denied}");
    assert!(review.contains("DENY"), "{review}");
    assert_eq!(daemon.anvil.balance(attacker), U256::ZERO);

    // Domain separation: a wallet signs ordinary messages, never an owner-decision text.
    let sign =
        |body: Value| daemon.call("POST", &format!("/v1/wallets/{wallet}/sign-message"), Some(&agent), Some(&body));
    let (status, signed) = sign(json!({"message": "hello"}));
    assert_eq!(status, 200, "{signed}");
    let decision_text = OwnerDecision {
        action: DecisionAction::Approve,
        item: "tx_forged".into(),
        wallet: wallet.clone(),
        tx: Some(ApprovedTx::new(daemon.anvil.chain_id(), attacker, eth("4"), b"", 21_000, 2_000_000_000)),
        expires_at: unix_now() + 600,
    }
    .message();
    for body in [
        json!({"message": decision_text}),
        json!({"message": "Mandate owner decision"}),
        json!({"message_hex": format!("0x{}", hex::encode(format!("\n  mandate OWNER decision v1\n{decision_text}")))}),
    ] {
        let (status, refused) = sign(body.clone());
        assert_eq!((status, code(&refused)), (403, "RESERVED_MESSAGE"), "{body}: {refused}");
    }
    // ... and none of its wallets can be registered as an owner.
    let own = format!("evm:{}", wallet_address.to_checksum(None));
    let (status, refused) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/owners"),
        Some(&daemon.admin),
        Some(&json!({"owner_key": own})),
    );
    assert_eq!((status, code(&refused)), (400, "OWNER_KEY_IS_WALLET"), "{refused}");
}

/// A fake daemon that answers every `GET` with `view` and records every `POST`.
struct FakeDaemon {
    url: String,
    posts: Arc<Mutex<Vec<(String, Value)>>>,
}

fn fake_daemon(view: Value) -> FakeDaemon {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(Mutex::new(Vec::new()));
    let recorded = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
            let answer = if method == "POST" {
                recorded.lock().unwrap().push((path, serde_json::from_slice(&body).unwrap()));
                json!({"status": "approved"})
            } else {
                view.clone()
            };
            let text = answer.to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    FakeDaemon { url, posts }
}

fn keygen(dir: &Path) -> (PathBuf, OwnerSecret) {
    let path = dir.join("owner.key");
    let (ok, out) = run_json(bin(), &["owner", "keygen", "--out", path.to_str().unwrap()], &[]);
    assert!(ok, "{out}");
    let secret = OwnerSecret::from_file_text(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, secret)
}

/// What an honest daemon answers for a held 1.5 ETH transfer to `to`.
fn honest_view(item: &str, to: Address) -> (Value, OwnerDecision) {
    let decision = OwnerDecision {
        action: DecisionAction::Approve,
        item: item.into(),
        wallet: "wal_0123456789abcdef01234567".into(),
        tx: Some(ApprovedTx::new(31337, to, eth("1.5"), b"", 21_000, 2_000_000_000)),
        expires_at: unix_now() + 600,
    };
    let view = json!({
        "transaction": {"id": item, "wallet_id": decision.wallet, "status": "pending_approval", "chain_id": 31337,
                        "to": to.to_checksum(None), "value_wei": eth("1.5").to_string(), "data": "0x",
                        "gas_limit": 21_000, "max_fee_per_gas": "2000000000"},
        "approve_decision": decision,
        "approve_message": decision.message(),
    });
    (view, decision)
}

#[test]
fn a_lying_daemon_gets_no_owner_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (key, secret) = keygen(dir.path());
    let key = key.to_str().unwrap();
    let item = "tx_00112233445566778899";
    let payee = recipient();
    let attacker = recipient();

    // The check is not a blanket refusal: an honest answer is shown, signed and posted.
    let (view, decision) = honest_view(item, payee);
    let honest = fake_daemon(view.clone());
    let (ok, out, review) = owner_run(&honest.url, &["approve", item, "--owner-key", key, "--yes"]);
    assert!(ok, "{out} {review}");
    assert!(review.contains(&payee.to_checksum(None)), "{review}");
    let posts = honest.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0, format!("/v1/approvals/{item}/approve"));
    let signature: OwnerSignature = posts[0].1["signature"].as_str().unwrap().parse().unwrap();
    signature.verify_owner(&decision, &[secret.public()], unix_now()).unwrap();

    let mut lies: Vec<(&str, Value)> = Vec::new();
    // The text says 1.5 ETH to the payee; the fields the owner would sign say the attacker.
    let mut lie = view.clone();
    let (_, to_attacker) = honest_view(item, attacker);
    lie["approve_decision"] = json!(to_attacker);
    lies.push(("message differs from its fields", lie));
    // The decision (and its text) name the attacker; the transaction shown names the payee.
    let mut lie = view.clone();
    lie["approve_decision"] = json!(to_attacker);
    lie["approve_message"] = json!(to_attacker.message());
    lies.push(("recipient differs from the transaction", lie));
    // Calldata that is not the calldata the decision binds.
    let mut lie = view.clone();
    lie["transaction"]["data"] = json!("0xa9059cbb");
    lies.push(("calldata", lie));
    // A decision on another item than the one asked about.
    let (other, _) = honest_view("tx_99887766554433221100", payee);
    lies.push(("another item", other));
    for (what, lie) in lies {
        let liar = fake_daemon(lie);
        let (ok, refused, _) = owner_run(&liar.url, &["approve", item, "--owner-key", key, "--yes"]);
        assert!(!ok && code(&refused) == "DECISION_MISMATCH", "{what}: {refused}");
        assert!(liar.posts.lock().unwrap().is_empty(), "{what}: a signature was sent");
    }

    // Asked to deny, offered the approval: refused.
    let mut lie = view.clone();
    lie["deny_decision"] = view["approve_decision"].clone();
    lie["deny_message"] = view["approve_message"].clone();
    let liar = fake_daemon(lie);
    let (ok, refused, _) = owner_run(&liar.url, &["deny", item, "--owner-key", key, "--yes"]);
    assert!(!ok && code(&refused) == "DECISION_MISMATCH", "{refused}");
    assert!(liar.posts.lock().unwrap().is_empty());

    // No terminal, no --yes: even an honest answer is not signed.
    let quiet = fake_daemon(view);
    let (ok, refused, _) = owner_run(&quiet.url, &["approve", item, "--owner-key", key]);
    assert!(!ok && code(&refused) == "CONFIRMATION_REQUIRED", "{refused}");
    assert!(quiet.posts.lock().unwrap().is_empty());
}
