//! One daemon serving two chains (two anvil nodes with different chain ids): the same
//! wallet, at the same address, pays on both; nonces and caps in ETH stay per chain, a
//! cap in USD spans both; requests name their chain; a chain the policy or the
//! cosigner does not allow is refused.

use alloy_primitives::Address;
use mandate_test_support::Anvil;
use serde_json::{json, Value};

use crate::{code, eth, recipient, CosignerMode, Daemon};

/// A send of `amount` ETH to `to`, naming `chain` when given.
fn send_on(daemon: &Daemon, token: &str, wallet: &str, to: Address, amount: &str, chain: Option<&str>) -> (u16, Value) {
    let mut body = json!({"to": to.to_checksum(None), "amount": amount});
    if let Some(chain) = chain {
        body["chain"] = json!(chain);
    }
    daemon.call("POST", &format!("/v1/wallets/{wallet}/transactions"), Some(token), Some(&body))
}

fn rule_of(body: &Value) -> &str {
    body["error"]["details"]["rule_id"].as_str().unwrap_or_default()
}

#[test]
fn one_wallet_pays_on_two_chains_with_nonces_and_eth_caps_per_chain_and_one_usd_cap() {
    let second = Anvil::start_with_chain_id(Some(1337));
    let daemon = Daemon::start_with(CosignerMode::Dev, &["--chain", &format!("second={}", second.url())]);
    let (wallet, address) = daemon.wallet("two-chains", "20");
    let (ok, funded) = daemon.cli(&["dev", "fund", "--wallet", &wallet, "--amount", "20", "--chain", "second"]);
    assert!(ok, "{funded}");
    assert_eq!((funded["chain_id"].as_u64(), second.balance(address)), (Some(1337), eth("20")), "{funded}");
    let (status, health) = daemon.call("GET", "/v1/health", None, None);
    assert_eq!(status, 200);
    assert_eq!(
        health["chains"],
        json!([{"name": "default", "chain_id": 31337}, {"name": "second", "chain_id": 1337}]),
        "{health}"
    );
    daemon.set_policy(
        &wallet,
        json!([{"id": "where", "type": "allow_chains", "chain_ids": [31337, 1337]},
               {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
               {"id": "eth-day", "type": "rolling_cap", "window_secs": 86400, "amount": "1.2"},
               {"id": "usd-day", "type": "rolling_cap_usd", "window_secs": 86400, "usd": "4000"}]),
    );
    // The USD cap needs a price: a fixed one, in the policy document.
    let (status, policy) = daemon.call("GET", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), None);
    assert_eq!(status, 200, "{policy}");
    let mut document = match &policy["document"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    document["prices"] = json!({"native": {"usd": "2000"}});
    let (status, set) =
        daemon.call("PUT", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), Some(&document));
    assert_eq!(status, 200, "{set}");
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();

    // With two chains a send must name one; an unknown one is refused.
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.1", None);
    assert_eq!((status, code(&body)), (400, "CHAIN_REQUIRED"), "{body}");
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.1", Some("mainnet"));
    assert_eq!((status, code(&body)), (400, "UNKNOWN_CHAIN"), "{body}");

    // The same wallet pays on both, by name or by id, each chain at its own nonce 0.
    let (status, first) = send_on(&daemon, &agent, &wallet, to, "0.8", Some("default"));
    assert_eq!(status, 200, "{first}");
    let (status, other) = send_on(&daemon, &agent, &wallet, to, "0.8", Some("1337"));
    assert_eq!(status, 200, "{other}");
    for (tx, chain) in [(&first, 31337), (&other, 1337)] {
        let done = daemon.wait_final(&agent, tx["id"].as_str().unwrap());
        assert_eq!(
            (&done["status"], &done["nonce"], &done["chain_id"]),
            (&json!("confirmed"), &json!(0), &json!(chain))
        );
    }
    assert_eq!((daemon.anvil.balance(to), second.balance(to)), (eth("0.8"), eth("0.8")));

    // ETH caps count each chain's own spends; the USD cap counts both ($3200 spent).
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.3", Some("default"));
    assert_eq!(status, 200, "1.1 ETH on this chain, $3800 in all: {body}");
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.3", Some("second"));
    assert_eq!((status, code(&body), rule_of(&body)), (403, "POLICY_DENIED", "usd-day"), "{body}");
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.2", Some("default"));
    assert_eq!((status, code(&body), rule_of(&body)), (403, "POLICY_DENIED", "eth-day"), "{body}");
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.1", Some("second"));
    assert_eq!(status, 200, "0.9 ETH on the second chain, $4000 in all: {body}");
    daemon.wait_final(&agent, body["id"].as_str().unwrap());
    assert_eq!((daemon.anvil.nonce(address), second.nonce(address)), (2, 2), "two sends on each chain");
    let (status, balance) =
        daemon.call("GET", &format!("/v1/wallets/{wallet}/balance?chain=second"), Some(&agent), None);
    assert_eq!((status, balance["chain_id"].as_u64()), (200, Some(1337)), "{balance}");
    assert_eq!(balance["balance_wei"].as_str().unwrap(), second.balance(address).to_string());

    // The policy drops the second chain: refused there, still paying on the first.
    document["rules"][0]["chain_ids"] = json!([31337]);
    document["rules"][2]["amount"] = json!("10");
    document["rules"][3]["usd"] = json!("100000");
    let (status, set) =
        daemon.call("PUT", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), Some(&document));
    assert_eq!(status, 200, "{set}");
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.1", Some("second"));
    assert_eq!((status, code(&body), rule_of(&body)), (403, "POLICY_DENIED", "where"), "{body}");

    // The cosigner's own limits allow only the first chain: the daemon's policy allows
    // the second again, the cosigner refuses to sign there.
    document["rules"][0]["chain_ids"] = json!([31337, 1337]);
    let (status, set) =
        daemon.call("PUT", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), Some(&document));
    assert_eq!(status, 200, "{set}");
    let limits = daemon.cosigner_home().join("limits.toml");
    let text = std::fs::read_to_string(&limits).unwrap().replace("# chains = [1, 8453]", "chains = [31337]");
    assert!(text.contains("chains = [31337]"), "the default limits file documents `chains`");
    std::fs::write(&limits, text).unwrap();
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.1", Some("second"));
    assert_eq!((status, code(&body)), (403, "COSIGNER_CHAIN_REFUSED"), "{body}");
    let (status, body) = send_on(&daemon, &agent, &wallet, to, "0.1", Some("default"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(second.nonce(address), 2, "nothing more was signed for the second chain");
}
