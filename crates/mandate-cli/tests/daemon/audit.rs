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
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(daemon.anvil.nonce(address), before, "nothing broadcast");
}
