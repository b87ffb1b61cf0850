//! Subaccounts: wallets whose key is a child of a main wallet's threshold key (no new
//! DKG). Each has its own derived address, policy and caps; a transfer from one is
//! signed by the daemon and the cosigner with the child key and mined from that
//! address; caps do not leak between the main wallet and its subaccounts.

use serde_json::json;

use crate::{code, eth, recipient, CosignerMode, Daemon};

#[test]
fn a_subaccount_pays_from_its_derived_address_under_caps_of_its_own() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (main, main_address) = daemon.wallet("treasury", "10");
    let (ok, pool) = daemon.cli(&["wallet", "subaccount", "create", "--wallet", &main, "--name", "pool-a"]);
    assert!(ok, "{pool}");
    let (ok, other) = daemon.cli(&["wallet", "subaccount", "create", "--wallet", &main, "--name", "pool-b"]);
    assert!(ok, "{other}");
    assert_eq!((&pool["parent_id"], &pool["index"], &other["index"]), (&json!(main), &json!(0), &json!(1)));
    let sub = pool["id"].as_str().unwrap().to_string();
    let sub_address: alloy_primitives::Address = pool["address"].as_str().unwrap().parse().unwrap();
    assert_ne!(sub_address, main_address, "a subaccount has an address of its own");
    assert_ne!(pool["address"], other["address"]);
    let (ok, listed) = daemon.cli(&["wallet", "subaccount", "list", "--wallet", &main]);
    assert!(ok, "{listed}");
    assert_eq!(listed["subaccounts"].as_array().map(Vec::len), Some(2), "{listed}");
    // Only a main wallet has subaccounts.
    let (status, nested) = daemon.call(
        "POST",
        &format!("/v1/wallets/{sub}/subaccounts"),
        Some(&daemon.admin),
        Some(&json!({"name": "x"})),
    );
    assert_eq!((status, code(&nested)), (400, "INVALID_INPUT"), "{nested}");

    daemon.anvil.fund(sub_address, eth("5"));
    let cap = |amount: &str| {
        json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"},
               {"id": "day", "type": "rolling_cap", "window_secs": 86400, "amount": amount}])
    };
    daemon.set_policy(&main, cap("1.5"));
    daemon.set_policy(&sub, cap("1"));
    let sub_agent = daemon.session(&sub, &["broadcast"]);
    let main_agent = daemon.session(&main, &["broadcast"]);
    let to = recipient();

    // The subaccount pays: signed with the child key, mined from its own address.
    let (status, sent) = daemon.send(&sub_agent, &sub, to, "0.6");
    assert_eq!(status, 200, "{sent}");
    let done = daemon.wait_final(&sub_agent, sent["id"].as_str().unwrap());
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!((daemon.anvil.nonce(sub_address), daemon.anvil.nonce(main_address)), (1, 0));
    assert_eq!(daemon.anvil.balance(to), eth("0.6"));

    // Its cap is its own: exhausted there while the main wallet still pays...
    let (status, refused) = daemon.send(&sub_agent, &sub, to, "0.6");
    assert_eq!((status, code(&refused)), (403, "POLICY_DENIED"), "{refused}");
    let (status, sent) = daemon.send(&main_agent, &main, to, "0.9");
    assert_eq!(status, 200, "{sent}");
    daemon.wait_final(&main_agent, sent["id"].as_str().unwrap());
    // ...and the reverse: the main wallet's cap spent, the subaccount still pays.
    let (status, refused) = daemon.send(&main_agent, &main, to, "0.7");
    assert_eq!((status, code(&refused)), (403, "POLICY_DENIED"), "{refused}");
    let (status, sent) = daemon.send(&sub_agent, &sub, to, "0.3");
    assert_eq!(status, 200, "{sent}");
    daemon.wait_final(&sub_agent, sent["id"].as_str().unwrap());
    assert_eq!((daemon.anvil.nonce(sub_address), daemon.anvil.nonce(main_address)), (2, 1));
    assert_eq!(daemon.anvil.balance(to), eth("1.8"), "0.6 + 0.9 + 0.3 arrived");

    // A session of the main wallet is not a session of its subaccount, nor the reverse.
    let (status, refused) = daemon.send(&main_agent, &sub, to, "0.1");
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = daemon.send(&sub_agent, &main, to, "0.1");
    assert_eq!(status, 403, "{refused}");
}
