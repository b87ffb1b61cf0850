//! The audit trail: tampering is detected and named; an unwritable trail stops signing.

use serde_json::json;

use crate::{code, recipient, CosignerMode, Daemon};

#[test]
fn an_edited_audit_record_is_named_and_an_unwritable_trail_refuses_to_sign() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("audited", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let (status, sent) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!(status, 200, "{sent}");
    daemon.wait_final(&agent, sent["id"].as_str().unwrap());
    let (ok, verified) = daemon.cli(&["audit", "verify"]);
    assert!(ok, "{verified}");

    // Edit one byte of one record in the middle of the file.
    let path = daemon.data().join("audit").join("audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let victim = lines.len() / 2;
    let seq = serde_json::from_str::<serde_json::Value>(lines[victim]).unwrap()["seq"].as_u64().unwrap();
    let offset: usize =
        lines[..victim].iter().map(|l| l.len() + 1).sum::<usize>() + lines[victim].find("\"ts\":").unwrap() + 6;
    let mut bytes = text.clone().into_bytes();
    bytes[offset] = if bytes[offset] == b'1' { b'2' } else { b'1' };
    std::fs::write(&path, &bytes).unwrap();
    let (ok, reply) = daemon.cli(&["audit", "verify"]);
    assert!(!ok, "verify passed on an edited log: {reply}");
    assert_eq!(reply["error"]["details"]["seq"], seq, "{reply}");
    assert_eq!(reply["error"]["details"]["kind"], "edited");
    // Undo the edit (the CLI's own login was appended meanwhile, so flip the byte back in place).
    let mut current = std::fs::read(&path).unwrap();
    current[offset] = text.as_bytes()[offset];
    std::fs::write(&path, &current).unwrap();
    let (ok, reply) = daemon.cli(&["audit", "verify"]);
    assert!(ok, "restored log verifies: {reply}");

    // The trail cannot be written (its file replaced by a directory): nothing is signed.
    std::fs::rename(&path, path.with_extension("moved")).unwrap();
    std::fs::create_dir(&path).unwrap();
    let before = daemon.anvil.nonce(address);
    let (status, reply) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!((status, code(&reply)), (503, "AUDIT_UNAVAILABLE"), "{reply}");
    // The body names a log id, not the file system's words or the data directory.
    assert!(reply["error"]["details"]["log_id"].as_str().is_some_and(|id| id.starts_with("err_")), "{reply}");
    let text = reply.to_string();
    assert!(!text.contains("audit.jsonl") && !text.contains("os error"), "internals in the body: {reply}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(daemon.anvil.nonce(address), before, "nothing broadcast");
}

/// Removes every audit record from `from_seq` on, from the JSONL file and the table
/// alike, as someone who can write the data directory would (the daemon stopped).
fn cut_audit_tail(daemon: &Daemon, from_seq: u64) {
    let path = daemon.data().join("audit").join("audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"].as_u64().unwrap() < from_seq)
        .collect();
    assert!(kept.len() < text.lines().count(), "nothing to cut");
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
    let db = daemon.data().join("data.db");
    let script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('DELETE FROM audit WHERE seq >= ?', (int(sys.argv[2]),))\nc.commit()\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, db.to_str().unwrap(), &from_seq.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_tail_cut_from_file_and_table_alike_is_found_against_the_cosigner_anchor() {
    let mut daemon = Daemon::start(CosignerMode::External);
    let (wallet, _) = daemon.wallet("anchored", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    for _ in 0..2 {
        let (status, sent) = daemon.send(&agent, &wallet, recipient(), "0.1");
        assert_eq!(status, 200, "{sent}");
        daemon.wait_final(&agent, sent["id"].as_str().unwrap());
    }

    // On the cosigner's host: the highest audit head the daemon showed it.
    let home = daemon.cosigner_home();
    let (ok, anchor) = mandate_test_support::run_json(
        crate::bin(),
        &["cosigner", "anchor", "--data-dir", home.to_str().unwrap()],
        &[],
    );
    assert!(ok, "{anchor}");
    let anchored = anchor["seq"].as_u64().unwrap();
    assert!(anchored > 5, "{anchor}");
    let anchor_file = daemon.dir.path().join("anchor.json");
    std::fs::write(&anchor_file, anchor.to_string()).unwrap();
    let anchor_arg = anchor_file.to_str().unwrap().to_string();
    let (ok, verified) = daemon.cli(&["audit", "verify", "--anchor", &anchor_arg]);
    assert!(ok, "{verified}");

    // The daemon host's data directory: the last records, the anchored one included, go.
    assert!(daemon.terminate());
    cut_audit_tail(&daemon, anchored - 2);
    daemon.start_server();
    daemon.admin = daemon.login();

    // The chain alone still verifies: nothing inside the data directory shows the cut.
    let (ok, plain) = daemon.cli(&["audit", "verify"]);
    assert!(ok, "{plain}");
    // Against the cosigner's anchor it does not: the anchored record is gone (new
    // records took its number since, so the hash differs).
    let (ok, refused) = daemon.cli(&["audit", "verify", "--anchor", &anchor_arg]);
    assert!(!ok, "a cut trail verified against the anchor: {refused}");
    assert_eq!(code(&refused), "AUDIT_CHAIN_BROKEN", "{refused}");
    let details = &refused["error"]["details"];
    assert!(matches!(details["kind"].as_str(), Some("anchor_mismatch" | "cut")), "{refused}");
    assert!(details["message"].as_str().unwrap().contains(&anchored.to_string()), "{refused}");
}
