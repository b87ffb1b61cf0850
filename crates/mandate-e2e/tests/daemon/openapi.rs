//! The OpenAPI document against independent validators: `openapi-spec-validator`
//! checks the document served at `/v1/openapi.json`, and `jsonschema` checks real
//! responses of a daemon (success bodies, a 202 held send, error envelopes) against
//! the schema the document declares for their path, method and status. Both are
//! Python packages pinned in tests/openapi/requirements.txt and installed by
//! scripts/setup-python.sh into the venv the MCP tests use.

use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

use crate::mcp::{python, repo_root};
use crate::{code, recipient, CosignerMode, Daemon};

/// One response to check: the path as the document names it (`{id}`), the method,
/// the status and the body as received.
struct Sample {
    method: &'static str,
    path: &'static str,
    status: u16,
    body: Value,
}

/// Runs tests/openapi/check_responses.py on `document` and `samples`: the
/// document's problem (if any) and, per sample, why its body does not match.
fn check(daemon: &Daemon, document: &Value, samples: &[Sample]) -> (Option<String>, Vec<Option<String>>) {
    let responses: Vec<Value> = samples
        .iter()
        .map(|s| json!({"method": s.method, "path": s.path, "status": s.status, "body": s.body}))
        .collect();
    let input = daemon.dir.path().join("openapi-check.json");
    std::fs::write(&input, json!({"document": document, "responses": responses}).to_string()).unwrap();
    let output = Command::new(python())
        .arg(repo_root().join("crates/mandate-e2e/tests/openapi/check_responses.py"))
        .arg(&input)
        .output()
        .expect("python checker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "checker failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("checker printed no JSON: {stdout}"));
    let problems = report["responses"].as_array().unwrap().iter().map(|p| p.as_str().map(str::to_string)).collect();
    (report["document"].as_str().map(str::to_string), problems)
}

/// A call whose status must be `expected`; the sample to check.
fn sample(
    daemon: &Daemon,
    (method, path): (&'static str, &'static str),
    concrete: &str,
    token: Option<&str>,
    body: Option<&Value>,
    expected: u16,
) -> Sample {
    let (status, reply) = daemon.call(&method.to_uppercase(), concrete, token, body);
    assert_eq!(status, expected, "{method} {concrete}: {reply}");
    Sample { method, path, status, body: reply }
}

/// A session of `wallet` with only the `freeze` scope (its band is `null`).
fn agent_freeze(daemon: &Daemon, wallet: &str) -> Option<String> {
    Some(daemon.session(wallet, &["freeze"]))
}

#[test]
fn the_document_is_valid_openapi_and_real_responses_match_its_schemas() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let admin = Some(daemon.admin.as_str());
    let mut samples = Vec::new();

    let (status, document) = daemon.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    samples.push(Sample { method: "get", path: "/v1/openapi.json", status, body: document.clone() });
    samples.push(sample(&daemon, ("get", "/v1/health"), "/v1/health", None, None, 200));

    // Wallet create (`mandate wallet create` prints the daemon's 201 body and adds
    // where it wrote the recovery share), list, show; registering it again is a 409.
    let out = daemon.dir.path().join("w.recovery");
    let (ok, mut created) =
        daemon.cli(&["wallet", "create", "--name", "schema", "--recovery-out", out.to_str().unwrap()]);
    assert!(ok, "{created}");
    created.as_object_mut().unwrap().remove("recovery_share").expect("the CLI's own field");
    let wallet = created["id"].as_str().unwrap().to_string();
    daemon.anvil.fund(created["address"].as_str().unwrap().parse().unwrap(), crate::eth("10"));
    samples.push(Sample { method: "post", path: "/v1/wallets", status: 201, body: created });
    let again = json!({"name": "again", "wallet_id": wallet});
    samples.push(sample(&daemon, ("post", "/v1/wallets"), "/v1/wallets", admin, Some(&again), 409));
    samples.push(sample(&daemon, ("get", "/v1/wallets"), "/v1/wallets", admin, None, 200));
    let at = |suffix: &str| format!("/v1/wallets/{wallet}{suffix}");
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}"), &at(""), admin, None, 200));

    // Policy set and show: small sends instant, above 0.8 ETH delayed (held), above 1 denied.
    let policy = json!({"version": 1, "rules": [
        {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
        {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "5"},
        {"id": "slow", "type": "tiers", "delay_above": "0.8", "delay_secs": 3600}]});
    samples.push(sample(&daemon, ("put", "/v1/wallets/{id}/policy"), &at("/policy"), admin, Some(&policy), 200));
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}/policy"), &at("/policy"), admin, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}/policy/summary"), &at("/policy/summary"), admin, None, 200));

    // A webhook (its receiver is down: deliveries are logged as failed attempts).
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["policy.denied", "transaction.confirmed"]});
    let webhook = sample(&daemon, ("post", "/v1/webhooks"), "/v1/webhooks", admin, Some(&hook), 201);
    let webhook_id = webhook.body["id"].as_str().unwrap().to_string();
    samples.push(webhook);

    // Session create; the agent's view of it.
    let grant = json!({"wallet_id": wallet, "ttl_secs": 3600, "max_renewals": 1, "scopes": ["broadcast"]});
    let session = sample(&daemon, ("post", "/v1/sessions"), "/v1/sessions", admin, Some(&grant), 201);
    let agent_token = session.body["token"].as_str().unwrap().to_string();
    samples.push(session);
    let agent = Some(agent_token.as_str());
    samples.push(sample(&daemon, ("get", "/v1/session"), "/v1/session", agent, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/sessions"), "/v1/sessions", admin, None, 200));

    // A send that is allowed, its dry run, the transaction and the balance.
    let transfer = |amount: &str| json!({"to": recipient().to_checksum(None), "amount": amount});
    let txs = ("post", "/v1/wallets/{id}/transactions");
    samples.push(sample(
        &daemon,
        ("post", "/v1/wallets/{id}/transactions/dry-run"),
        &at("/transactions/dry-run"),
        agent,
        Some(&transfer("0.5")),
        200,
    ));
    let sent = sample(&daemon, txs, &at("/transactions"), agent, Some(&transfer("0.5")), 200);
    let tx = sent.body["id"].as_str().unwrap().to_string();
    assert_eq!(sent.body["status"], "submitted", "{}", sent.body);
    samples.push(sent);
    let done = daemon.wait_final(&agent_token, &tx);
    assert_eq!(done["status"], "confirmed", "{done}");
    samples.push(Sample { method: "get", path: "/v1/transactions/{id}", status: 200, body: done });
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}/transactions"), &at("/transactions"), agent, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}/balance"), &at("/balance"), agent, None, 200));
    let fund = json!({"amount": "0.25"});
    samples.push(sample(&daemon, ("post", "/v1/wallets/{id}/dev/fund"), &at("/dev/fund"), admin, Some(&fund), 200));

    // A denied send: the error envelope with the decision in its details.
    let denied = sample(&daemon, txs, &at("/transactions"), agent, Some(&transfer("2")), 403);
    assert_eq!(code(&denied.body), "POLICY_DENIED");
    samples.push(denied);

    // A held send (202), the held item as the operator and an owner's tool see it, cancelled.
    let held = sample(&daemon, txs, &at("/transactions"), agent, Some(&transfer("0.9")), 202);
    assert_eq!(held.body["status"], "delayed", "{}", held.body);
    let held_id = held.body["id"].as_str().unwrap().to_string();
    samples.push(held);
    samples.push(sample(&daemon, ("get", "/v1/approvals"), "/v1/approvals", admin, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/approvals/{id}"), &format!("/v1/approvals/{held_id}"), admin, None, 200));
    let owner_view = ("get", "/v1/owner/approvals/{id}");
    samples.push(sample(&daemon, owner_view, &format!("/v1/owner/approvals/{held_id}"), None, None, 200));
    let cancel = ("post", "/v1/transactions/{id}/cancel");
    samples.push(sample(&daemon, cancel, &format!("/v1/transactions/{held_id}/cancel"), agent, None, 200));

    // Owners, the audit trail, webhooks and their delivery log.
    let owner = json!({"owner_key": format!("evm:{}", recipient().to_checksum(None)), "label": "o"});
    samples.push(sample(&daemon, ("post", "/v1/wallets/{id}/owners"), &at("/owners"), admin, Some(&owner), 200));
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}/owners"), &at("/owners"), admin, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/audit/tail"), "/v1/audit/tail?n=100", admin, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/audit/verify"), "/v1/audit/verify", admin, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/ready"), "/v1/ready", None, None, 200));
    samples.push(sample(&daemon, ("get", "/v1/webhooks"), "/v1/webhooks", admin, None, 200));
    let log = format!("/v1/webhooks/{webhook_id}/deliveries");
    let deliveries = sample(&daemon, ("get", "/v1/webhooks/{id}/deliveries"), &log, admin, None, 200);
    assert!(!deliveries.body["deliveries"].as_array().unwrap().is_empty(), "{}", deliveries.body);
    samples.push(deliveries);

    // Evaluations (a signature: denied without a rule, still a 200; a simulated transfer).
    let evaluate = ("post", "/v1/wallets/{id}/policy/evaluate");
    let sign = json!({"type": "sign", "message": "hello"});
    samples.push(sample(&daemon, evaluate, &at("/policy/evaluate"), agent, Some(&sign), 200));
    let mut simulated = transfer("0.1");
    simulated["type"] = json!("transfer");
    samples.push(sample(&daemon, evaluate, &at("/policy/evaluate?simulate=true"), admin, Some(&simulated), 200));

    // Operator keys: create, list, revoke.
    let key = json!({"name": "schema", "scopes": ["read"]});
    let key = sample(&daemon, ("post", "/v1/operator-keys"), "/v1/operator-keys", admin, Some(&key), 201);
    let key_id = key.body["operator_key"]["id"].as_str().unwrap().to_string();
    samples.push(key);
    samples.push(sample(&daemon, ("get", "/v1/operator-keys"), "/v1/operator-keys", admin, None, 200));
    let revoke_key = ("post", "/v1/operator-keys/{id}/revoke");
    samples.push(sample(&daemon, revoke_key, &format!("/v1/operator-keys/{key_id}/revoke"), admin, None, 200));

    // Freeze, the unfreeze texts, freeze everything; the webhook removed; the session renewed and revoked.
    let reason = json!({"reason": "drill"});
    samples.push(sample(
        &daemon,
        ("post", "/v1/wallets/{id}/freeze"),
        &at("/freeze"),
        agent_freeze(&daemon, &wallet).as_deref(),
        Some(&reason),
        200,
    ));
    samples.push(sample(&daemon, ("get", "/v1/wallets/{id}/unfreeze"), &at("/unfreeze"), admin, None, 200));
    let owner_unfreeze = ("get", "/v1/owner/wallets/{id}/unfreeze");
    samples.push(sample(&daemon, owner_unfreeze, &format!("/v1/owner/wallets/{wallet}/unfreeze"), None, None, 200));
    samples.push(sample(&daemon, ("post", "/v1/freeze"), "/v1/freeze", admin, Some(&reason), 200));
    samples.push(sample(
        &daemon,
        ("delete", "/v1/webhooks/{id}"),
        &format!("/v1/webhooks/{webhook_id}"),
        admin,
        None,
        200,
    ));
    samples.push(sample(&daemon, ("post", "/v1/sessions/renew"), "/v1/sessions/renew", agent, None, 200));
    let session_id =
        samples.iter().find(|s| s.path == "/v1/session").unwrap().body["session"]["id"].as_str().unwrap().to_string();
    let revoke = ("post", "/v1/sessions/{id}/revoke");
    samples.push(sample(&daemon, revoke, &format!("/v1/sessions/{session_id}/revoke"), admin, None, 200));

    // Failed logins until the client is rate limited: an envelope with `retry_after`.
    let wrong = base64::engine::general_purpose::STANDARD.encode("operator:not the password");
    let basic = format!("Basic {wrong}");
    let limited = (0..10)
        .map(|_| daemon.call_with("POST", "/v1/admin/login", None, None, &[("Authorization", &basic)]))
        .find(|(status, _)| *status == 429)
        .expect("failed logins are rate limited");
    assert!(limited.1["error"]["retry_after"].as_u64().unwrap() >= 1, "{}", limited.1);
    samples.push(Sample { method: "post", path: "/v1/admin/login", status: 429, body: limited.1 });

    let (problem, mismatches) = check(&daemon, &document, &samples);
    assert_eq!(problem, None, "the document is not valid OpenAPI 3.1");
    let failures: Vec<String> = samples
        .iter()
        .zip(&mismatches)
        .filter_map(|(s, p)| {
            p.as_ref().map(|p| format!("{} {} {}: {p}\n  body: {}", s.method, s.path, s.status, s.body))
        })
        .collect();
    assert!(failures.is_empty(), "responses that do not match the document:\n{}", failures.join("\n"));

    // The checks can fail: wrong bodies, an undeclared status and a broken document are refused.
    let transaction = samples.iter().find(|s| s.path == "/v1/transactions/{id}").unwrap().body.clone();
    let error = samples.iter().find(|s| s.status == 403).unwrap().body.clone();
    let mutate = |body: &Value, edit: &dyn Fn(&mut Value)| {
        let mut body = body.clone();
        edit(&mut body);
        body
    };
    let wrong = [
        mutate(&transaction, &|tx| tx["status"] = json!("teleported")),
        mutate(&transaction, &|tx| {
            tx.as_object_mut().unwrap().remove("decision");
        }),
        mutate(&transaction, &|tx| tx["surprise"] = json!(1)),
        mutate(&transaction, &|tx| tx["decision"]["verdict"] = json!("maybe")),
        mutate(&error, &|e| e["error"]["retry_after"] = json!("soon")),
        mutate(&error, &|e| e["error"]["code"] = json!("NOT_A_CODE")),
        mutate(&error, &|e| {
            e["error"].as_object_mut().unwrap().remove("retry_after");
        }),
    ];
    let mut bad: Vec<Sample> = wrong
        .into_iter()
        .enumerate()
        .map(|(i, body)| Sample {
            method: "get",
            path: "/v1/transactions/{id}",
            status: if i < 4 { 200 } else { 403 },
            body,
        })
        .collect();
    // A 201 that GET /v1/transactions/{id} never answers, with a valid transaction body.
    bad.push(Sample { method: "get", path: "/v1/transactions/{id}", status: 201, body: transaction });
    let mut broken = document.clone();
    broken["paths"]["/v1/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/Nowhere"});
    let (problem, mismatches) = check(&daemon, &broken, &bad);
    assert!(problem.is_some(), "a dangling $ref must make the document invalid");
    for (sample, mismatch) in bad.iter().zip(&mismatches) {
        assert!(mismatch.is_some(), "accepted a wrong body ({}): {}", sample.status, sample.body);
    }
}
