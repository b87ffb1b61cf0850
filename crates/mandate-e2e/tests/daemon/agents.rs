//! Agent keys against the real daemon: an owner registers an agent key with the CLI,
//! the agent (the CLI as a separate process) signs its requests and pays, and an
//! attacker who captured a signed request can neither replay it nor change it.

use mandate_chain::agent::AgentKey;
use serde_json::json;

use crate::approvals::{add_owner, owner_key};
use crate::mcp::{call, drive, ok as tool_ok, results};
use crate::{code, eth, recipient, CosignerMode, Daemon};

#[test]
fn an_agent_signs_its_own_requests_and_a_captured_request_is_worth_nothing() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("bot", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let (owner_file, public, _) = owner_key(&daemon, "alice");
    add_owner(&daemon, &wallet, &public);

    // The agent makes its key; the owner registers its address (no operator credential).
    let key_file = daemon.dir.path().join("bot.agent");
    let (ok, made) = daemon.cli(&["agent", "keygen", "--out", key_file.to_str().unwrap()]);
    assert!(ok, "{made}");
    let mode = std::fs::metadata(&key_file).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    let (ok, registered) = daemon.cli(&[
        "agent",
        "register",
        "--wallet",
        &wallet,
        "--key",
        key_file.to_str().unwrap(),
        "--name",
        "trader",
        "--scopes",
        "read,broadcast",
        "--valid-for-secs",
        "3600",
        "--owner-key",
        owner_file.to_str().unwrap(),
    ]);
    assert!(ok, "{registered}");
    assert_eq!(registered["agent"]["address"], made["address"]);

    // The agent pays with a signed request (the CLI, a separate process).
    let to = recipient();
    let body = json!({"to": to.to_checksum(None), "amount": "0.25"}).to_string();
    let path = format!("/v1/wallets/{wallet}/transactions");
    let key = key_file.to_str().unwrap();
    let (ok, sent) = daemon.cli(&["agent", "call", "--key", key, "--wallet", &wallet, "POST", &path, "--body", &body]);
    assert!(ok, "{sent}");
    let admin = daemon.admin.clone();
    let done = daemon.wait_final(&admin, sent["id"].as_str().unwrap());
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(daemon.anvil.balance(to), eth("0.25"));

    // An attacker with a captured signed request: replaying it, or changing its body.
    let agent = AgentKey::from_file_text(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let signature = agent.sign_request("POST", &path, body.as_bytes(), &wallet, nonce).unwrap();
    let address = agent.address().to_checksum(None);
    let nonce_text = nonce.to_string();
    let headers = [
        ("mandate-agent", address.as_str()),
        ("mandate-agent-nonce", nonce_text.as_str()),
        ("mandate-agent-signature", signature.as_str()),
    ];
    let (status, first) = daemon.call_with("POST", &path, None, Some(body.clone().into_bytes()), &headers);
    assert_eq!(status, 200, "{first}");
    let (status, replayed) = daemon.call_with("POST", &path, None, Some(body.clone().into_bytes()), &headers);
    assert_eq!((status, code(&replayed)), (401, "AGENT_NONCE_REPLAYED"), "{replayed}");
    let other = json!({"to": recipient().to_checksum(None), "amount": "0.25"}).to_string();
    let (status, changed) = daemon.call_with("POST", &path, None, Some(other.into_bytes()), &headers);
    assert_eq!((status, code(&changed)), (401, "AGENT_SIGNATURE_INVALID"), "{changed}");

    // The MCP stdio server acting as the agent key: tools work, no token exists.
    let steps = json!([
        call("get_balance", json!({})),
        call("send_transfer", json!({"to": to.to_checksum(None), "amount": "0.05", "confirm": true}))
    ]);
    let scenario = json!({"transport": "stdio", "command": crate::bin(),
        "args": ["mcp", "--band", "broadcast", "--agent-key", key, "--wallet", wallet],
        "env": {"MANDATE_URL": daemon.url}, "steps": steps});
    let report = drive(&scenario);
    let r = results(&report);
    assert!(tool_ok(&r[0])["balance_wei"].is_string(), "{report}");
    let sent = tool_ok(&r[1]);
    let done = daemon.wait_final(&admin, sent["id"].as_str().unwrap());
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(daemon.anvil.balance(to), eth("0.55"), "0.25 by the CLI, 0.25 signed by hand, 0.05 over MCP");

    // Revoked by the operator: the key stops working at once.
    let (ok, revoked) = daemon.cli(&["agent", "revoke", &address]);
    assert!(ok && revoked["revoked"] == true, "{revoked}");
    let (ok, refused) =
        daemon.cli(&["agent", "call", "--key", key, "--wallet", &wallet, "GET", &format!("/v1/wallets/{wallet}")]);
    assert!(!ok, "{refused}");
    assert_eq!(refused["error"]["code"], "AGENT_UNKNOWN", "{refused}");
    let (ok, listed) = daemon.cli(&["agent", "list", "--wallet", &wallet]);
    assert!(ok && listed["agents"][0]["revoked_at"].is_u64(), "{listed}");
}
