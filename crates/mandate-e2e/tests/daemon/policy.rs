//! The complete policy engine through the daemon, on anvil with real contracts: ERC-20
//! transfers and approvals, contract calls with argument conditions, EIP-712 permits,
//! USD limits from an aggregator, simulation, tiers and `mandate policy test`.

use alloy_primitives::{Address, Signature, B256, I256, U256};
use mandate_test_support::contracts::{self, DynSolValue};
use serde_json::{json, Value};

use crate::{code, recipient, CosignerMode, Daemon};

/// Lets the cosigner sign calldata and typed data for every wallet (its default
/// refuses both); it reads the file on every request.
fn open_cosigner_limits(daemon: &Daemon) {
    let limits = r#"frozen = false
[default]
per_tx_max = "2000000000000000000"
daily_max = "20000000000000000000"
allow_calldata = true
allow_typed_data = true
allow_messages = true
"#;
    std::fs::write(daemon.cosigner_home().join("limits.toml"), limits).unwrap();
}

fn put_policy(daemon: &Daemon, wallet: &str, document: &Value) -> (u16, Value) {
    daemon.call("PUT", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), Some(document))
}

fn post(daemon: &Daemon, token: &str, wallet: &str, what: &str, body: Value) -> (u16, Value) {
    daemon.call("POST", &format!("/v1/wallets/{wallet}/{what}"), Some(token), Some(&body))
}

fn rule_of(body: &Value) -> &str {
    body["error"]["details"]["rule_id"].as_str().unwrap_or_else(|| panic!("no decision in {body}"))
}

fn checksum(address: Address) -> String {
    address.to_checksum(None)
}

fn units(text: &str, decimals: u8) -> U256 {
    mandate_core::amount::parse_units(text, decimals).unwrap()
}

#[test]
fn tokens_approvals_contract_calls_and_permits_follow_the_policy() {
    let daemon = Daemon::start(CosignerMode::Dev);
    open_cosigner_limits(&daemon);
    let (wallet, address) = daemon.wallet("trader", "5");
    let anvil = &daemon.anvil;
    let token = contracts::deploy_test_token(anvil, "TST", 6, units("1000000", 6));
    let target = contracts::deploy_target(anvil);
    let router = recipient();
    anvil.transact_as_dev(token, &contracts::transfer(address, units("1000", 6)));

    let policy = json!({
        "version": 1,
        "tokens": {"TST": {"address": checksum(token), "decimals": 6}},
        "rules": [
            {"id": "tokens", "type": "allow_tokens", "tokens": ["TST"]},
            {"id": "tst-cap", "type": "max_per_tx", "asset": "TST", "amount": "100"},
            {"id": "tst-day", "type": "rolling_cap", "asset": "TST", "window_secs": 86400, "amount": "250"},
            {"id": "approve", "type": "erc20_approve", "token": "TST", "spenders": [checksum(router)], "amount": "500"},
            {"id": "target", "type": "allow_contracts", "contracts": [{"address": checksum(target), "functions": [
                {"signature": "swap(address token, uint256 amountIn, uint256 minOut)", "conditions": [
                    {"arg": "token", "op": "eq", "value": checksum(token)},
                    {"arg": "amountIn", "op": "lte", "value": "1000"}]}]}]},
            {"id": "permits", "type": "typed_data", "domains": [
                {"chain_id": 31337, "verifying_contract": checksum(token), "primary_types": ["Permit"]}]}
        ]
    });
    // Declared decimals that differ from the contract's would scale every cap wrongly: refused.
    let mut wrong = policy.clone();
    wrong["tokens"]["TST"]["decimals"] = json!(18);
    let (status, refused) = put_policy(&daemon, &wallet, &wrong);
    assert_eq!(
        (status, code(&refused), refused["error"]["details"]["path"].as_str()),
        (422, "INVALID_POLICY", Some("$.tokens.TST.decimals")),
        "{refused}"
    );
    let (status, body) = put_policy(&daemon, &wallet, &policy);
    assert_eq!(status, 200, "{body}");
    let agent = daemon.session(&wallet, &["broadcast", "sign"]);

    // A token transfer within the cap confirms and moves exactly the amount.
    let payee = recipient();
    let (status, sent) = post(
        &daemon,
        &agent,
        &wallet,
        "transactions",
        json!({"to": checksum(payee), "token": "TST", "amount": "99.5"}),
    );
    assert_eq!(status, 200, "{sent}");
    assert_eq!((sent["kind"].as_str(), sent["amount"].as_str()), (Some("token_transfer"), Some("99500000")));
    let done = daemon.wait_final(&agent, sent["id"].as_str().unwrap());
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(anvil.token_balance(token, payee), units("99.5", 6));
    // By address too; over the per-tx cap, then over the daily window: denied, nothing moves.
    let (status, over) = post(
        &daemon,
        &agent,
        &wallet,
        "transactions",
        json!({"to": checksum(payee), "token": checksum(token), "amount": "100.000001"}),
    );
    assert_eq!((status, code(&over), rule_of(&over)), (403, "POLICY_DENIED", "tst-cap"), "{over}");
    let (status, first) =
        post(&daemon, &agent, &wallet, "transactions", json!({"to": checksum(payee), "token": "TST", "amount": "100"}));
    assert_eq!(status, 200, "{first}");
    daemon.wait_final(&agent, first["id"].as_str().unwrap());
    let (status, window) =
        post(&daemon, &agent, &wallet, "transactions", json!({"to": checksum(payee), "token": "TST", "amount": "51"}));
    assert_eq!((status, rule_of(&window)), (403, "tst-day"), "{window}");
    assert_eq!(window["error"]["details"]["budgets"][0]["remaining"], "50.5 TST", "{window}");
    assert_eq!(anvil.token_balance(token, payee), units("199.5", 6));
    // An amount finer than the token's decimals is bad input, not a rounding.
    let (status, fine) = post(
        &daemon,
        &agent,
        &wallet,
        "transactions",
        json!({"to": checksum(payee), "token": "TST", "amount": "1.0000001"}),
    );
    assert_eq!((status, code(&fine)), (400, "INVALID_AMOUNT"), "{fine}");

    // Approvals: unlimited denied, unlisted spender denied, a capped one to the router goes through.
    let approve = |spender: Address, amount: &str| {
        post(
            &daemon,
            &agent,
            &wallet,
            "contract-calls",
            json!({"to": checksum(token),
            "function": "approve(address,uint256)", "args": [checksum(spender), amount]}),
        )
    };
    let (status, unlimited) = approve(router, &U256::MAX.to_string());
    assert_eq!((status, rule_of(&unlimited)), (403, "approve"), "{unlimited}");
    assert_eq!(unlimited["error"]["details"]["reason"], "unlimited approvals are not allowed");
    let (status, stranger) = approve(recipient(), "1");
    assert_eq!((status, rule_of(&stranger)), (403, "approve"), "{stranger}");
    assert_eq!(stranger["error"]["details"]["reason"], "spender is not on the approval allowlist");
    let (status, approved) = approve(router, "500000000");
    assert_eq!(status, 200, "{approved}");
    assert_eq!(daemon.wait_final(&agent, approved["id"].as_str().unwrap())["status"], "confirmed");
    let allowance = anvil.call(token, &contracts::allowance(address, router));
    assert_eq!(contracts::decode_u256(&allowance), units("500", 6));

    // Contract calls: unlisted selector denied, argument outside its condition denied, inside confirmed.
    let (status, fail) = post(
        &daemon,
        &agent,
        &wallet,
        "contract-calls",
        json!({"to": checksum(target), "data": format!("0x{}", hex::encode(contracts::fail()))}),
    );
    assert_eq!((status, rule_of(&fail)), (403, "target"), "{fail}");
    assert_eq!(fail["error"]["details"]["reason"], "function is not allowed on this contract");
    let swap = |amount_in: &str| {
        post(
            &daemon,
            &agent,
            &wallet,
            "contract-calls",
            json!({"to": checksum(target),
            "function": "swap(address,uint256,uint256)", "args": [checksum(token), amount_in, "1"]}),
        )
    };
    let (status, big) = swap("1001");
    assert_eq!((status, rule_of(&big)), (403, "target"), "{big}");
    assert_eq!(
        (big["error"]["details"]["observed"].as_str(), big["error"]["details"]["limit"].as_str()),
        (Some("1001"), Some("1000"))
    );
    let (status, ok) = swap("1000");
    assert_eq!(status, 200, "{ok}");
    assert_eq!(daemon.wait_final(&agent, ok["id"].as_str().unwrap())["status"], "confirmed");

    // EIP-712: a permit for another verifying contract is denied; the token's own is signed,
    // recovers to the wallet, and the token accepts it on chain.
    let permit = |verifying: Address, value: &str| {
        json!({"typed_data": {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                           {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                           {"name": "deadline", "type": "uint256"}]},
            "primaryType": "Permit",
            "domain": {"name": "TST", "version": "1", "chainId": 31337, "verifyingContract": checksum(verifying)},
            "message": {"owner": checksum(address), "spender": checksum(router), "value": value,
                        "nonce": "0", "deadline": "99999999999"}}})
    };
    let (status, other) = post(&daemon, &agent, &wallet, "sign-typed-data", permit(target, "7"));
    assert_eq!((status, rule_of(&other)), (403, "permits"), "{other}");
    let (status, signed) = post(&daemon, &agent, &wallet, "sign-typed-data", permit(token, "7000000"));
    assert_eq!(status, 200, "{signed}");
    let signature: Signature = signed["signature"].as_str().unwrap().parse().unwrap();
    let digest: B256 = signed["digest"].as_str().unwrap().parse().unwrap();
    assert_eq!(signature.recover_address_from_prehash(&digest).unwrap(), address);
    let call = contracts::encode_call(
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
        &[
            DynSolValue::Address(address),
            DynSolValue::Address(router),
            DynSolValue::Uint(U256::from(7_000_000u64), 256),
            DynSolValue::Uint(U256::from(99_999_999_999u64), 256),
            DynSolValue::Uint(U256::from(27 + u8::from(signature.v())), 8),
            DynSolValue::FixedBytes(B256::from(signature.r()), 32),
            DynSolValue::FixedBytes(B256::from(signature.s()), 32),
        ],
    );
    anvil.transact_as_dev(token, &call);
    assert_eq!(
        contracts::decode_u256(&anvil.call(token, &contracts::allowance(address, router))),
        U256::from(7_000_000u64)
    );
    // Messages and raw hashes have no permitting rule here: default deny.
    let (status, message) = post(&daemon, &agent, &wallet, "sign-message", json!({"message": "hello"}));
    assert_eq!((status, rule_of(&message)), (403, "default_deny"), "{message}");
    let (status, raw) =
        post(&daemon, &agent, &wallet, "sign-hash", json!({"hash": format!("{:#x}", B256::repeat_byte(1))}));
    assert_eq!((status, rule_of(&raw)), (403, "default_deny"), "{raw}");
}

#[test]
fn usd_limits_simulation_tiers_and_the_explain_command() {
    let daemon = Daemon::start(CosignerMode::Dev);
    open_cosigner_limits(&daemon);
    let (wallet, address) = daemon.wallet("payer", "5");
    let anvil = &daemon.anvil;
    let now = anvil.latest_timestamp();
    // ETH at $2000.00 (8 decimals), updated now.
    let feed = contracts::deploy_mock_aggregator(anvil, 8, I256::try_from(200_000_000_000i64).unwrap(), now);
    let target = contracts::deploy_target(anvil);
    let policy = json!({
        "version": 1,
        "prices": {"native": {"aggregator": checksum(feed), "max_age_secs": 3600}},
        "rules": [
            {"id": "cap", "type": "max_per_tx", "amount": "1"},
            {"id": "usd", "type": "max_per_tx_usd", "usd": "1000"},
            {"id": "usd-day", "type": "rolling_cap_usd", "window_secs": 86400, "usd": "1500"},
            {"id": "tiers", "type": "tiers", "basis": "usd", "approval_above": "900"},
            {"id": "target", "type": "allow_contracts", "contracts": [{"address": checksum(target), "functions": [
                {"signature": "swap(address,uint256,uint256)"}]}]},
            {"id": "sim", "type": "require_simulation"}
        ]
    });
    let (status, body) = put_policy(&daemon, &wallet, &policy);
    assert_eq!(status, 200, "{body}");
    let agent = daemon.session(&wallet, &["broadcast"]);

    // Above the approval tier: held for an owner (202), nothing sent. Cancelled, it
    // gives its USD back to the day's window.
    let nonce_before = anvil.nonce(address);
    let (status, held) = daemon.send(&agent, &wallet, recipient(), "0.46");
    assert_eq!((status, held["status"].as_str()), (202, Some("pending_approval")), "{held}");
    assert_eq!(held["tier_rules"], json!(["tiers"]), "{held}");
    assert_eq!(anvil.nonce(address), nonce_before);
    let held_id = held["id"].as_str().unwrap();
    let (status, cancelled) = daemon.call("POST", &format!("/v1/transactions/{held_id}/cancel"), Some(&agent), None);
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");

    // $800 (0.4 ETH) passes; $1000.000… (0.5 ETH + 1 wei) is above the USD cap.
    let payee = recipient();
    let (status, sent) = daemon.send(&agent, &wallet, payee, "0.4");
    assert_eq!(status, 200, "{sent}");
    daemon.wait_final(&agent, sent["id"].as_str().unwrap());
    let (status, over) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/transactions"),
        Some(&agent),
        Some(&json!({"to": checksum(payee), "amount_wei": (units("0.5", 18) + U256::from(1)).to_string()})),
    );
    assert_eq!((status, rule_of(&over)), (403, "usd"), "{over}");
    // The day's USD window: $800 spent + $800 > $1500.
    let (status, day) = daemon.send(&agent, &wallet, payee, "0.4");
    assert_eq!((status, rule_of(&day)), (403, "usd-day"), "{day}");
    assert_eq!(day["error"]["details"]["budgets"][0]["used"], "800 USD", "{day}");

    // A call that reverts is denied with the revert reason, as data.
    let (status, reverted) = daemon.call(
        "POST",
        &format!("/v1/wallets/{wallet}/contract-calls"),
        Some(&agent),
        Some(&json!({"to": checksum(target), "function": "swap(address,uint256,uint256)",
                     "args": [checksum(target), "5", "6"]})),
    );
    assert_eq!((status, code(&reverted)), (403, "SIMULATION_REVERTED"), "{reverted}");
    assert_eq!(reverted["error"]["details"]["observed"], contracts::SWAP_REVERT_REASON);

    // `mandate policy test` explains without signing: the deciding rule, its limit, the budgets.
    let action = daemon.dir.path().join("action.json");
    std::fs::write(&action, json!({"type": "transfer", "to": checksum(payee), "amount": "0.36"}).to_string()).unwrap();
    let (ok, explained) = daemon.cli(&["policy", "test", "--wallet", &wallet, "--file", action.to_str().unwrap()]);
    assert!(!ok, "a denial exits non-zero (3), with the explanation on stdout: {explained}");
    let decision = &explained["decision"];
    assert_eq!(
        (decision["verdict"].as_str(), decision["rule_id"].as_str()),
        (Some("deny"), Some("usd-day")),
        "{explained}"
    );
    assert_eq!((decision["observed"].as_str(), decision["limit"].as_str()), (Some("1520 USD"), Some("1500 USD")));
    let budget = &decision["budgets"][0];
    assert_eq!(
        (budget["remaining"].as_str(), budget["window_secs"].as_u64()),
        (Some("700 USD"), Some(86400)),
        "{budget}"
    );
    assert!(budget["frees_at"].as_u64().unwrap() > now);
    assert_eq!(explained["action"]["kind"], "native_transfer");

    // A stale price denies with PRICE_UNAVAILABLE, never guesses.
    anvil.transact_as_dev(feed, &contracts::aggregator_set(I256::try_from(200_000_000_000i64).unwrap(), now - 7200));
    let (status, stale) = daemon.send(&agent, &wallet, payee, "0.01");
    assert_eq!((status, code(&stale)), (403, "PRICE_UNAVAILABLE"), "{stale}");

    // Policy documents are validated on upload, naming the JSON path; the old version stays.
    let bad = json!({"version": 1, "tokens": {"TST": {"address": checksum(target), "decimals": 6}}, "rules": []});
    let (status, refused) = put_policy(&daemon, &wallet, &bad);
    assert_eq!((status, code(&refused)), (400, "UNKNOWN_TOKEN"), "{refused}");
    let (status, refused) = put_policy(
        &daemon,
        &wallet,
        &json!({"version": 1, "rules": [{"id": "x", "type": "max_per_tx", "amount": "1", "colour": "red"}]}),
    );
    assert_eq!(
        (status, code(&refused), refused["error"]["details"]["path"].as_str()),
        (422, "INVALID_POLICY", Some("$.rules[0].colour"))
    );
    let (_, shown) = daemon.call("GET", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), None);
    assert_eq!(shown["version"], 1, "{shown}");
}
