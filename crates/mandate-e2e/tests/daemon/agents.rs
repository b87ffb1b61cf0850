//! Agent keys against the real daemon: an owner registers an agent key with the CLI,
//! the agent (the CLI as a separate process) signs its requests and pays, and an
//! attacker who captured a signed request can neither replay it nor change it.

use std::path::Path;

use mandate_chain::agent::AgentKey;
use mandate_chain::approval::{OwnerDecision, OwnerSecret};
use serde_json::{json, Value};

use crate::approvals::{add_owner, cosigner_limits, owner_key};
use crate::mcp::{call, drive, ok as tool_ok, results};
use crate::{code, eth, recipient, Api, CosignerMode, Daemon};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A request signed by `agent` for `wallet` with `nonce`, sent through `api`.
fn signed(api: &Api, agent: &AgentKey, wallet: &str, method: &str, path: &str, body: &str, nonce: u64) -> (u16, Value) {
    let signature = agent.sign_request(method, path, body.as_bytes(), wallet, nonce).unwrap();
    let (address, nonce) = (agent.address().to_checksum(None), nonce.to_string());
    let headers = [
        ("mandate-agent", address.as_str()),
        ("mandate-agent-nonce", nonce.as_str()),
        ("mandate-agent-signature", signature.as_str()),
    ];
    let body = (!body.is_empty()).then(|| body.as_bytes().to_vec());
    api.call_with(method, path, None, body, &headers)
}

/// `mandate agent keygen` + `mandate agent register` (the owner signs) with `extra` arguments.
fn register_agent(daemon: &Daemon, wallet: &str, owner: &Path, name: &str, extra: &[&str]) -> (AgentKey, Value) {
    let key_file = daemon.dir.path().join(format!("{name}.agent"));
    let (ok, made) = daemon.cli(&["agent", "keygen", "--out", key_file.to_str().unwrap()]);
    assert!(ok, "{made}");
    let key = key_file.to_str().unwrap();
    let mut args = vec!["agent", "register", "--wallet", wallet, "--key", key, "--name", name];
    args.extend_from_slice(&["--valid-for-secs", "3600", "--owner-key", owner.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let (ok, registered) = daemon.cli(&args);
    assert!(ok, "{registered}");
    (AgentKey::from_file_text(&std::fs::read_to_string(&key_file).unwrap()).unwrap(), registered)
}

#[test]
fn an_agent_signs_its_own_requests_and_a_captured_request_is_worth_nothing() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("bot", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let (owner_file, public, _) = owner_key(&daemon, "alice");
    add_owner(&daemon, &wallet, &public);
    // The cosigner verifies agent registrations against its own owners.
    cosigner_limits(&daemon, None, &[&public]);

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

#[test]
fn an_agents_own_policy_narrows_the_wallets_and_counts_its_own_spends() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("narrow", "10");
    daemon.set_policy(
        &wallet,
        json!([{"id": "per-tx", "type": "max_per_tx", "amount": "2"},
               {"id": "day", "type": "rolling_cap", "window_secs": 86400, "amount": "5"}]),
    );
    let (owner_file, public, _) = owner_key(&daemon, "alice");
    add_owner(&daemon, &wallet, &public);
    // The cosigner verifies agent registrations against its own owners.
    cosigner_limits(&daemon, None, &[&public]);
    // The agent's policy: a looser per-transaction cap than the wallet's (it cannot
    // widen it), a narrower daily cap, and an owner's approval above 0.4.
    let policy = daemon.dir.path().join("bot-policy.json");
    let document = json!({"version": 1, "rules": [
        {"id": "bot-per-tx", "type": "max_per_tx", "amount": "5"},
        {"id": "bot-day", "type": "rolling_cap", "window_secs": 86400, "amount": "1"},
        {"id": "bot-review", "type": "tiers", "approval_above": "0.4"}]});
    std::fs::write(&policy, document.to_string()).unwrap();
    let scopes = ["--scopes", "read,broadcast", "--policy", policy.to_str().unwrap()];
    let (agent, registered) = register_agent(&daemon, &wallet, &owner_file, "bot", &scopes);
    assert_eq!(registered["agent"]["policy"], document, "{registered}");
    let path = format!("/v1/wallets/{wallet}/transactions");
    let body = |amount: &str| json!({"to": recipient().to_checksum(None), "amount": amount}).to_string();

    // Above the wallet's per-transaction cap: the agent's looser cap changes nothing.
    let (status, refused) = signed(&daemon.api, &agent, &wallet, "POST", &path, &body("3"), now_ms());
    assert_eq!((status, code(&refused)), (403, "POLICY_DENIED"), "{refused}");
    assert_eq!(refused["error"]["details"]["rule_id"], "per-tx", "the wallet's rule decides: {refused}");

    // The agent's own tier rule holds 0.5 for an owner (it counts against its cap).
    let (status, held) = signed(&daemon.api, &agent, &wallet, "POST", &path, &body("0.5"), now_ms());
    assert_eq!(status, 202, "{held}");
    let held_id = held["id"].as_str().unwrap().to_string();
    // The agent cannot approve it (its key is no owner's), nor change the policy.
    let (status, offer) = daemon.call("GET", &format!("/v1/approvals/{held_id}"), Some(&daemon.admin), None);
    assert_eq!(status, 200, "{offer}");
    let decision: OwnerDecision = serde_json::from_value(offer["approve_decision"].clone()).unwrap();
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(daemon.dir.path().join("bot.agent")).unwrap()).unwrap();
    let secret: [u8; 32] = hex::decode(file["secret"].as_str().unwrap()).unwrap().try_into().unwrap();
    let as_owner = OwnerSecret::evm_from_bytes(&secret).unwrap().sign(&decision).unwrap().to_string();
    let approve = json!({"signature": as_owner}).to_string();
    let (status, refused) =
        signed(&daemon.api, &agent, &wallet, "POST", &format!("/v1/approvals/{held_id}/approve"), &approve, now_ms());
    assert_eq!((status, code(&refused)), (401, "OWNER_SIGNATURE_INVALID"), "{refused}");
    let loose = json!({"version": 1, "rules": [{"id": "all", "type": "max_per_tx", "amount": "100"}]}).to_string();
    let (status, refused) =
        signed(&daemon.api, &agent, &wallet, "PUT", &format!("/v1/wallets/{wallet}/policy"), &loose, now_ms());
    assert_eq!((status, code(&refused)), (403, "ADMIN_REQUIRED"), "{refused}");

    // Five sends of 0.2 at once: 0.5 held + 2 x 0.2 fit its cap of 1, the rest do not.
    let base = now_ms();
    let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5u64)
            .map(|n| {
                let (api, agent, wallet, path, body) = (Api::new(&daemon.url), &agent, &wallet, &path, body("0.2"));
                scope.spawn(move || signed(&api, agent, wallet, "POST", path, &body, base + n))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let paid: Vec<&Value> = outcomes.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert_eq!(paid.len(), 2, "{outcomes:?}");
    for (status, refused) in outcomes.iter().filter(|(status, _)| *status != 200) {
        assert_eq!((*status, code(refused)), (403, "POLICY_DENIED"), "{refused}");
        assert_eq!(refused["error"]["details"]["rule_id"], "agent:bot-day", "the agent's own rule: {refused}");
    }
    let admin = daemon.admin.clone();
    for tx in paid {
        assert_eq!(daemon.wait_final(&admin, tx["id"].as_str().unwrap())["status"], "confirmed");
    }

    // The operator on the same wallet still pays (the wallet's caps count the wallet's
    // spends: 0.5 + 0.4 + 1.5 is within 5), and the agent stays refused.
    let to = recipient();
    let (status, sent) = daemon.send(&admin, &wallet, to, "1.5");
    assert_eq!(status, 200, "{sent}");
    assert_eq!(daemon.wait_final(&admin, sent["id"].as_str().unwrap())["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(to), eth("1.5"));
    let (_, refused) = signed(&daemon.api, &agent, &wallet, "POST", &path, &body("0.2"), now_ms());
    assert_eq!(refused["error"]["details"]["rule_id"], "agent:bot-day", "{refused}");
}

/// A compromised daemon host can make the daemon accept an agent (here: the operator
/// adds an owner key of its own at the daemon and signs the registration with it),
/// but the cosigner verifies the registration against its own owners and refuses to
/// sign; a registration by a real owner signs.
#[test]
fn the_cosigner_refuses_an_agent_whose_registration_no_owner_it_knows_signed() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("guarded", "5");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let (owner_file, public, _) = owner_key(&daemon, "alice");
    add_owner(&daemon, &wallet, &public);
    cosigner_limits(&daemon, None, &[&public]);
    let (mallory_file, mallory, _) = owner_key(&daemon, "mallory");
    add_owner(&daemon, &wallet, &mallory);
    let path = format!("/v1/wallets/{wallet}/transactions");
    let scopes = ["--scopes", "read,broadcast"];

    let (genuine, _) = register_agent(&daemon, &wallet, &owner_file, "genuine", &scopes);
    let to = recipient();
    let body = json!({"to": to.to_checksum(None), "amount": "0.1"}).to_string();
    let (status, sent) = signed(&daemon.api, &genuine, &wallet, "POST", &path, &body, now_ms());
    assert_eq!(status, 200, "{sent}");
    assert_eq!(daemon.wait_final(&daemon.admin, sent["id"].as_str().unwrap())["status"], "confirmed");

    let (forged, registered) = register_agent(&daemon, &wallet, &mallory_file, "forged", &scopes);
    assert!(registered["agent"]["id"].is_string(), "the daemon accepted it: {registered}");
    let body = json!({"to": recipient().to_checksum(None), "amount": "0.1"}).to_string();
    let (status, refused) = signed(&daemon.api, &forged, &wallet, "POST", &path, &body, now_ms());
    assert_eq!((status, code(&refused)), (403, "COSIGNER_AGENT_REFUSED"), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("not an owner"), "{refused}");
    assert_eq!(daemon.anvil.balance(to), eth("0.1"), "only the genuine agent's transfer was signed");
}

/// An EVM owner (a browser wallet) signs the registration as EIP-712 typed data; the
/// daemon accepts it, and refuses the same registration signed by a key that is not
/// an owner.
#[test]
fn an_evm_owner_registers_an_agent_with_an_eip712_signature() {
    use mandate_chain::agent::AgentRegistration;
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("typed-owner", "1");
    let owner = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let owner_address = alloy_primitives::Address::from_public_key(owner.verifying_key());
    let (ok, added) =
        daemon.cli(&["owner", "add", "--wallet", &wallet, "--evm-address", &owner_address.to_checksum(None)]);
    assert!(ok, "{added}");
    let agent = mandate_core::agent::AgentKey::generate();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let registration = |nonce: u64| AgentRegistration {
        wallet: wallet.clone(),
        agent: agent.address(),
        name: "typed-bot".into(),
        scopes: vec!["read".into()],
        valid_until: now + 3600,
        nonce,
        policy: None,
    };
    let signed = |key: &k256::ecdsa::SigningKey, registration: &AgentRegistration| {
        let (signature, recovery) = key.sign_prehash_recoverable(registration.eip712_digest().as_slice()).unwrap();
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        json!({"registration": registration, "owner_signature":
               format!("eip712:{}:0x{}", owner_address.to_checksum(None), hex::encode(bytes))})
    };
    let path = format!("/v1/wallets/{wallet}/agents");
    let (status, registered) = daemon.call("POST", &path, None, Some(&signed(&owner, &registration(1))));
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["agent"]["address"], agent.address().to_checksum(None));
    let stranger = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let (status, refused) = daemon.call("POST", &path, None, Some(&signed(&stranger, &registration(2))));
    assert_eq!((status, code(&refused)), (401, "OWNER_SIGNATURE_INVALID"), "{refused}");

    // With a quorum of two owners, one owner (even twice) cannot register an agent.
    let second = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let second_address = alloy_primitives::Address::from_public_key(second.verifying_key());
    let (ok, added) =
        daemon.cli(&["owner", "add", "--wallet", &wallet, "--evm-address", &second_address.to_checksum(None)]);
    assert!(ok, "{added}");
    let (ok, quorum) = daemon.cli(&["owner", "quorum", "set", "--wallet", &wallet, "--threshold", "2"]);
    assert!(ok, "{quorum}");
    let one = signed(&owner, &registration(3));
    let (status, refused) = daemon.call("POST", &path, None, Some(&one));
    assert_eq!((status, code(&refused)), (403, "OWNER_QUORUM_NOT_MET"), "{refused}");
    let mut twice = one.clone();
    twice["owner_signatures"] = json!([one["owner_signature"]]);
    let (status, refused) = daemon.call("POST", &path, None, Some(&twice));
    assert_eq!((status, code(&refused)), (403, "OWNER_QUORUM_NOT_MET"), "the same owner twice is one: {refused}");
    let by_second = {
        let (signature, recovery) =
            second.sign_prehash_recoverable(registration(3).eip712_digest().as_slice()).unwrap();
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        format!("eip712:{}:0x{}", second_address.to_checksum(None), hex::encode(bytes))
    };
    let mut both = one.clone();
    both["owner_signatures"] = json!([by_second]);
    let (status, registered) = daemon.call("POST", &path, None, Some(&both));
    assert_eq!(status, 201, "two distinct owners register the agent: {registered}");
}
