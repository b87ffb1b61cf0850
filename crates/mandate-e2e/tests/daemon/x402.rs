//! x402 pay-per-call under the mandate, against a real resource server and facilitator
//! (`@x402/express`, `@x402/evm` from npm: tests/x402/server.mjs) settling an EIP-3009
//! token on anvil: a paid request returns the resource and the token moves once; a
//! budget, a per-payment maximum and the allowed hosts are enforced before anything is
//! signed; an idempotent retry pays nothing more.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use alloy_primitives::{Address, U256};
use mandate_test_support::{contracts, free_port};
use serde_json::{json, Value};

use crate::{code, recipient, CosignerMode, Daemon};

/// anvil's well-known dev account #1 key (public test key): the facilitator pays gas with it.
const FACILITATOR_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// The resource server's process; killed when dropped.
struct ResourceServer {
    child: Child,
    base: String,
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_resource_server(daemon: &Daemon, token: Address, pay_to: Address) -> ResourceServer {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/x402/server.mjs");
    let port = free_port();
    let mut child = Command::new("node")
        .arg(script)
        .env("RPC_URL", daemon.anvil.url())
        .env("CHAIN_ID", daemon.anvil.chain_id().to_string())
        .env("TOKEN", token.to_checksum(None))
        .env("TOKEN_NAME", "TUSD")
        .env("PAY_TO", pay_to.to_checksum(None))
        .env("FACILITATOR_KEY", FACILITATOR_KEY)
        .env("PORT", port.to_string())
        .env("PRICE", "10000")
        .env("PRICE_HIGH", "5000000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs the x402 resource server (npm ci installs its packages)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "the resource server did not start: {line:?}");
    ResourceServer { child, base: format!("http://127.0.0.1:{port}") }
}

/// A plain HTTP/1.1 GET to the resource server, as an eavesdropper would send it:
/// (status, body).
fn get(server: &ResourceServer, path: &str, payment: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let payment = payment.map(|p| format!("PAYMENT-SIGNATURE: {p}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{payment}\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

fn pay(daemon: &Daemon, token: &str, wallet: &str, url: &str, key: Option<&str>) -> (u16, Value) {
    let body = json!({"url": url}).to_string().into_bytes();
    let headers: Vec<(&str, &str)> = key.map(|key| ("idempotency-key", key)).into_iter().collect();
    daemon.call_with("POST", &format!("/v1/wallets/{wallet}/x402/pay"), Some(token), Some(body), &headers)
}

fn rule_of(body: &Value) -> &str {
    body["error"]["details"]["rule_id"].as_str().unwrap_or_default()
}

#[test]
fn an_x402_resource_is_paid_once_within_the_budget_and_hosts_of_the_policy() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("payer", "1");
    let token = contracts::deploy_test_token(&daemon.anvil, "TUSD", 6, U256::from(1_000_000_000_000u64));
    daemon.anvil.transact_as_dev(token, &contracts::transfer(address, U256::from(10_000_000u64)));
    let pay_to = recipient();
    let server = start_resource_server(&daemon, token, pay_to);
    // The cosigner signs x402 authorizations for this wallet (off by default).
    std::fs::write(
        daemon.cosigner_home().join("limits.toml"),
        "frozen = false\nfreeze_cooldown_secs = 3\n[default]\nper_tx_max = \"5000000000000000000\"\n\
         daily_max = \"50000000000000000000\"\nallow_x402 = true\nx402_max_base = \"1000000\"\n\
         x402_daily_max_base = \"100000000\"\n",
    )
    .unwrap();
    let policy = json!({"version": 1,
        "tokens": {"TUSD": {"address": token.to_checksum(None), "decimals": 6}},
        "prices": {"TUSD": {"usd": "1"}},
        "rules": [{"id": "tusd", "type": "max_per_tx", "asset": "TUSD", "amount": "10"},
                  {"id": "pay", "type": "x402", "hosts": ["127.0.0.1"], "max_per_call_usd": "1",
                   "budget_usd": "0.025", "window_secs": 3600}]});
    let (status, set) = daemon.call("PUT", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), Some(&policy));
    assert_eq!(status, 200, "{set}");
    let agent = daemon.session(&wallet, &["broadcast"]);
    let weather = format!("{}/weather", server.base);

    // Paid: the resource comes back, the token moved once, the record confirms.
    let (status, paid) = pay(&daemon, &agent, &wallet, &weather, Some("order-1"));
    assert_eq!(status, 200, "{paid}");
    assert_eq!((&paid["paid"], &paid["body"]["weather"]), (&json!(true), &json!("sunny")), "{paid}");
    assert_eq!(daemon.anvil.token_balance(token, pay_to), U256::from(10_000u64));
    assert_eq!(daemon.anvil.token_balance(token, address), U256::from(9_990_000u64));
    let record = daemon.wait_final(&agent, paid["payment"]["id"].as_str().unwrap());
    assert_eq!((&record["status"], &record["kind"]), (&json!("confirmed"), &json!("x402_payment")), "{record}");
    assert_eq!(record["tx_hash"], paid["settlement"]["transaction"]);

    // The same idempotency key again: the first payment, nothing paid.
    let (status, again) = pay(&daemon, &agent, &wallet, &weather, Some("order-1"));
    assert_eq!((status, &again["replayed"], &again["payment"]["id"]), (200, &json!(true), &paid["payment"]["id"]));
    assert_eq!(daemon.anvil.token_balance(token, pay_to), U256::from(10_000u64), "paid once");

    // An eavesdropper replays the payment header the daemon sent: the facilitator
    // refuses the used authorization and nothing moves.
    let (_, captured) = get(&server, "/last-payment", None);
    let captured: Value = serde_json::from_str(&captured).unwrap();
    let header = captured["header"].as_str().expect("the server saw the payment").to_string();
    let (status, _) = get(&server, "/weather", Some(&header));
    assert_eq!(status, 402, "a replayed authorization is refused");
    assert_eq!(daemon.anvil.token_balance(token, pay_to), U256::from(10_000u64), "the replay moved nothing");

    // A server that asks more once it holds the signed payment: not settled, the
    // payment fails, and its spend counts (the authorization existed).
    let (status, shifted) = pay(&daemon, &agent, &wallet, &format!("{}/shifty", server.base), None);
    assert_eq!((status, code(&shifted)), (409, "X402_PAYMENT_FAILED"), "{shifted}");
    assert_eq!(daemon.anvil.token_balance(token, pay_to), U256::from(10_000u64), "a changed amount moved nothing");

    // $0.02 counted of the $0.025 budget: one more payment does not fit.
    let (status, over) = pay(&daemon, &agent, &wallet, &weather, None);
    assert_eq!((status, code(&over), rule_of(&over)), (403, "POLICY_DENIED", "pay"), "{over}");

    // Above the per-payment maximum, and a host the rule does not name: refused before
    // anything is signed.
    let (status, pricey) = pay(&daemon, &agent, &wallet, &format!("{}/pricey", server.base), None);
    assert_eq!((status, code(&pricey), rule_of(&pricey)), (403, "POLICY_DENIED", "pay"), "{pricey}");
    // A host the rule does not name is not even fetched (the same server, by another name).
    let requests = || serde_json::from_str::<Value>(&get(&server, "/stats", None).1).unwrap()["requests"].clone();
    let before = requests();
    let foreign = weather.replace("127.0.0.1", "localhost");
    let (status, refused) = pay(&daemon, &agent, &wallet, &foreign, None);
    assert_eq!((status, code(&refused), rule_of(&refused)), (403, "POLICY_DENIED", "pay"), "{refused}");
    assert_eq!(requests(), before, "the daemon fetched a URL on a host no x402 rule names");
    assert_eq!(daemon.anvil.token_balance(token, pay_to), U256::from(10_000u64), "one payment, once");

    // A free resource is fetched without paying; a plain-http remote URL is refused.
    let (status, free) = pay(&daemon, &agent, &wallet, &format!("{}/free", server.base), None);
    assert_eq!((status, &free["paid"], &free["body"]["free"]), (200, &json!(false), &json!(true)), "{free}");
    let (status, insecure) = pay(&daemon, &agent, &wallet, "http://example.com/weather", None);
    assert_eq!((status, code(&insecure)), (400, "X402_INVALID"), "{insecure}");

    // The bare EIP-3009 signature, outside the caps, is refused at sign-typed-data.
    let typed = json!({"typed_data": {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}],
                  "TransferWithAuthorization": [{"name": "value", "type": "uint256"}]},
        "primaryType": "TransferWithAuthorization", "domain": {"name": "TUSD"}, "message": {"value": "1"}}});
    let (status, bare) =
        daemon.call("POST", &format!("/v1/wallets/{wallet}/sign-typed-data"), Some(&agent), Some(&typed));
    assert_eq!((status, code(&bare), rule_of(&bare)), (403, "POLICY_DENIED", "eip3009"), "{bare}");
}
