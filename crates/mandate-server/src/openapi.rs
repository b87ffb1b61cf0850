//! The OpenAPI 3.1 document served at `/v1/openapi.json` (docs/API.md in prose):
//! every route with its request body, each success status with its schema, and the
//! error envelope. The schemas are closed (`additionalProperties: false`) so that a
//! field the daemon adds or drops shows up in the end-to-end schema test
//! (crates/mandate-e2e/tests/daemon/openapi.rs) rather than in a generated client.

use mandate_core::ErrorCode;
use serde_json::{json, Map, Value};

use mandate_core::Scope;

use crate::auth::OPERATOR_SCOPES;
use crate::webhooks::Event;

/// A reference to a component schema.
fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `schema` or `null`.
fn or_null(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn text() -> Value {
    json!({"type": "string"})
}

fn text_or_null() -> Value {
    json!({"type": ["string", "null"]})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

/// A non-negative integer (counts, versions, nonces, chain ids).
fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

/// Unix seconds.
fn time() -> Value {
    json!({"type": "integer", "minimum": 0, "description": "unix seconds"})
}

fn time_or_null() -> Value {
    json!({"type": ["integer", "null"], "minimum": 0, "description": "unix seconds"})
}

/// A decimal integer as a string (wei, token base units).
fn digits() -> Value {
    json!({"type": "string", "pattern": "^[0-9]+$"})
}

/// An EIP-55 address.
fn address() -> Value {
    json!({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"})
}

/// `0x` and bytes in hex.
fn hex() -> Value {
    json!({"type": "string", "pattern": "^0x([0-9a-fA-F]{2})*$"})
}

/// 32 bytes, `0x` and hex.
fn hash32() -> Value {
    json!({"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"})
}

/// A string from a fixed list.
fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    json!({"type": "string", "enum": values.into_iter().collect::<Vec<_>>()})
}

/// A string that is exactly `value`.
fn exactly(value: &str) -> Value {
    json!({"type": "string", "const": value})
}

/// Sets `key` of the object `target`.
fn set(target: &mut Value, key: &str, value: Value) {
    if let Some(map) = target.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}

/// A closed object: every property is required except those in `optional`, and no
/// other key is allowed.
fn object(properties: Value, optional: &[&str]) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|map| map.keys().filter(|key| !optional.contains(&key.as_str())).cloned().collect())
        .unwrap_or_default();
    json!({"type": "object", "required": required, "additionalProperties": false, "properties": properties})
}

/// `{"<key>": [<item>, …]}`.
fn list_of(key: &str, item: &str) -> Value {
    let mut properties = Map::new();
    properties.insert(key.to_string(), array(schema(item)));
    object(Value::Object(properties), &[])
}

/// The HTTP status's reason, for a response's description.
fn reason(status: &str) -> &'static str {
    match status {
        "201" => "created",
        "202" => "held: accepted, not sent yet (poll GET /v1/transactions/{id})",
        _ => "success",
    }
}

/// One operation: `ok` lists each success status with its component schema.
fn op(summary: &str, auth: &str, body: Option<&str>, ok: &[(&str, &str)]) -> Value {
    let mut responses = Map::new();
    for (status, name) in ok {
        responses.insert(
            status.to_string(),
            json!({"description": reason(status), "content": {"application/json": {"schema": schema(name)}}}),
        );
    }
    responses.insert(
        "default".into(),
        json!({"description": "error envelope (docs/API.md, Errors)",
               "headers": {"Retry-After": {"description": "seconds; with RATE_LIMITED (429) and DATABASE_UNAVAILABLE (503)",
                                           "schema": {"type": "integer", "minimum": 1}}},
               "content": {"application/json": {"schema": schema("Error")}}}),
    );
    let mut operation = Map::new();
    operation.insert("summary".into(), json!(summary));
    operation.insert("x-mandate-auth".into(), json!(auth));
    operation.insert("responses".into(), Value::Object(responses));
    if let Some(name) = body {
        operation.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema(name)}}}),
        );
    }
    let scheme = match auth {
        "none" | "owner signature" => None,
        "basic" => Some("basic"),
        _ => Some("bearer"),
    };
    if let Some(scheme) = scheme {
        operation.insert("security".into(), json!([{ scheme: [] }]));
    }
    Value::Object(operation)
}

/// Every (method, path) the router serves; the daemon tests call each one.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/ready"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/admin/login"),
    ("get", "/v1/operator-keys"),
    ("post", "/v1/operator-keys"),
    ("post", "/v1/operator-keys/{id}/revoke"),
    ("get", "/v1/wallets"),
    ("post", "/v1/wallets"),
    ("get", "/v1/wallets/{id}"),
    ("get", "/v1/wallets/{id}/balance"),
    ("get", "/v1/wallets/{id}/policy"),
    ("put", "/v1/wallets/{id}/policy"),
    ("get", "/v1/wallets/{id}/transactions"),
    ("post", "/v1/wallets/{id}/transactions"),
    ("post", "/v1/wallets/{id}/transactions/dry-run"),
    ("post", "/v1/wallets/{id}/contract-calls"),
    ("post", "/v1/wallets/{id}/sign-typed-data"),
    ("post", "/v1/wallets/{id}/sign-message"),
    ("post", "/v1/wallets/{id}/sign-hash"),
    ("post", "/v1/wallets/{id}/policy/evaluate"),
    ("get", "/v1/wallets/{id}/policy/summary"),
    ("post", "/v1/wallets/{id}/dev/fund"),
    ("post", "/v1/wallets/{id}/freeze"),
    ("get", "/v1/wallets/{id}/unfreeze"),
    ("post", "/v1/wallets/{id}/unfreeze"),
    ("post", "/v1/freeze"),
    ("get", "/v1/wallets/{id}/owners"),
    ("get", "/v1/wallets/{id}/agents"),
    ("post", "/v1/wallets/{id}/agents"),
    ("get", "/v1/wallets/{id}/subaccounts"),
    ("post", "/v1/wallets/{id}/subaccounts"),
    ("post", "/v1/wallets/{id}/x402/pay"),
    ("post", "/v1/agents/{address}/revoke"),
    ("post", "/v1/wallets/{id}/owners"),
    ("put", "/v1/wallets/{id}/owners/quorum"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/deny"),
    ("get", "/v1/owner/approvals/{id}"),
    ("get", "/v1/owner/wallets/{id}/unfreeze"),
    ("post", "/v1/transactions/{id}/cancel"),
    ("post", "/v1/transactions/{id}/speed-up"),
    ("get", "/v1/webhooks"),
    ("post", "/v1/webhooks"),
    ("delete", "/v1/webhooks/{id}"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("get", "/v1/transactions/{id}"),
    ("get", "/v1/sessions"),
    ("post", "/v1/sessions"),
    ("post", "/v1/sessions/renew"),
    ("get", "/v1/session"),
    ("post", "/v1/sessions/{id}/revoke"),
    ("get", "/v1/audit/verify"),
    ("get", "/v1/audit/tail"),
];

fn operation(method: &str, path: &str) -> Value {
    match (method, path) {
        ("get", "/v1/health") => op("Liveness and the node's chain id", "none", None, &[("200", "Health")]),
        ("get", "/v1/ready") => op(
            "Readiness: the database, the node and the cosigner reachable (503 names what is not)",
            "none",
            None,
            &[("200", "Ready"), ("503", "Ready")],
        ),
        ("get", "/v1/openapi.json") => op("This document", "none", None, &[("200", "OpenApiDocument")]),
        ("post", "/v1/admin/login") => op(
            "Operator login with the master password (HTTP Basic, user operator)",
            "basic",
            None,
            &[("200", "Login")],
        ),
        ("get", "/v1/operator-keys") => {
            op("Operator keys with their state (never the keys)", "operator", None, &[("200", "OperatorKeyList")])
        }
        ("post", "/v1/operator-keys") => op(
            "Create an operator key (shown once; only its SHA-256 is kept)",
            "operator:admin",
            Some("CreateOperatorKey"),
            &[("201", "OperatorKeyCreated")],
        ),
        ("post", "/v1/operator-keys/{id}/revoke") => op(
            "Revoke an operator key (refused from its next request on)",
            "operator:admin",
            None,
            &[("200", "OperatorKeyRevoked")],
        ),
        ("get", "/v1/wallets") => {
            op("List wallets (an agent sees its own)", "operator|agent:read", None, &[("200", "WalletList")])
        }
        ("post", "/v1/wallets") => op(
            "Register a wallet created by `mandate wallet create`",
            "operator",
            Some("RegisterWallet"),
            &[("201", "Wallet")],
        ),
        ("get", "/v1/wallets/{id}") => {
            op("Wallet address and chain id", "operator|agent:read", None, &[("200", "WalletDetail")])
        }
        ("get", "/v1/wallets/{id}/balance") => op(
            "Native balance, or ?token=SYMBOL|0x… an ERC-20 balance",
            "operator|agent:read",
            None,
            &[("200", "Balance")],
        ),
        ("get", "/v1/wallets/{id}/policy") => {
            op("The wallet's current policy", "operator|agent:read", None, &[("200", "PolicyShown")])
        }
        ("put", "/v1/wallets/{id}/policy") => {
            op("Replace the policy (a new version)", "operator", Some("Policy"), &[("200", "PolicyVersion")])
        }
        ("get", "/v1/wallets/{id}/transactions") => {
            op("Transactions, newest first", "operator|agent:read", None, &[("200", "TransactionList")])
        }
        ("post", "/v1/wallets/{id}/transactions") => op(
            "Send a native or ERC-20 transfer (header Idempotency-Key honoured)",
            "operator|agent:broadcast",
            Some("Transfer"),
            &[("200", "Transaction"), ("202", "HeldTransaction")],
        ),
        ("post", "/v1/wallets/{id}/transactions/dry-run") => {
            op("The policy decision, nothing signed", "operator|agent:read", Some("Transfer"), &[("200", "Evaluation")])
        }
        ("post", "/v1/wallets/{id}/contract-calls") => op(
            "Send a contract call (data, or function + args; Idempotency-Key honoured)",
            "operator|agent:broadcast",
            Some("ContractCall"),
            &[("200", "Transaction"), ("202", "HeldTransaction")],
        ),
        ("post", "/v1/wallets/{id}/sign-typed-data") => op(
            "Sign EIP-712 typed data (policy first)",
            "operator|agent:sign",
            Some("SignTypedData"),
            &[("200", "SignatureResult")],
        ),
        ("post", "/v1/wallets/{id}/sign-message") => op(
            "Sign an EIP-191 personal message (policy first)",
            "operator|agent:sign",
            Some("SignMessage"),
            &[("200", "SignatureResult")],
        ),
        ("post", "/v1/wallets/{id}/sign-hash") => op(
            "Sign a bare hash (only with a raw_hash rule)",
            "operator|agent:sign",
            Some("SignHash"),
            &[("200", "SignatureResult")],
        ),
        ("post", "/v1/wallets/{id}/policy/evaluate") => op(
            "The full policy decision for an action (transfer, contract_call or sign); nothing signed",
            "operator|agent:read",
            Some("EvaluateAction"),
            &[("200", "Evaluation")],
        ),
        ("get", "/v1/wallets/{id}/policy/summary") => op(
            "The policy's rules and every window's remaining budget now",
            "operator|agent:read",
            None,
            &[("200", "PolicySummary")],
        ),
        ("post", "/v1/wallets/{id}/dev/fund") => op(
            "Development chains only (chain id 31337 or 1337 answering anvil's or hardhat's dev methods): \
             add ether to the wallet's balance",
            "operator",
            Some("DevFund"),
            &[("200", "DevFunded")],
        ),
        ("post", "/v1/wallets/{id}/freeze") => op(
            "Emergency freeze: the daemon and the cosigner sign nothing more for the wallet",
            "operator|agent:freeze",
            Some("Freeze"),
            &[("200", "FreezeResult")],
        ),
        ("get", "/v1/wallets/{id}/unfreeze") => op(
            "The text an owner signs to lift the freeze, and when the cool-down ends",
            "operator|agent:read",
            None,
            &[("200", "UnfreezeText")],
        ),
        ("post", "/v1/wallets/{id}/unfreeze") => op(
            "Lift the freeze with an owner's signature, after the cool-down",
            "owner signature",
            Some("Unfreeze"),
            &[("200", "Unfrozen")],
        ),
        ("post", "/v1/freeze") => {
            op("Emergency freeze of every wallet", "operator", Some("Freeze"), &[("200", "FreezeAllResult")])
        }
        ("get", "/v1/wallets/{id}/owners") => {
            op("The wallet's owners", "operator|agent:read", None, &[("200", "OwnerList")])
        }
        ("post", "/v1/wallets/{id}/owners") => op(
            "Register an owner (ed25519:<hex>, evm:0x… or webauthn:<key>@<origin>#<credential>)",
            "operator",
            Some("AddOwner"),
            &[("200", "OwnerAdded")],
        ),
        ("put", "/v1/wallets/{id}/owners/quorum") => op(
            "Set how many distinct owners must sign an approval or unfreeze (1 to the number of owners)",
            "operator",
            Some("SetQuorum"),
            &[("200", "QuorumSet")],
        ),
        ("get", "/v1/wallets/{id}/agents") => {
            op("The wallet's agent keys, active and revoked", "operator|agent:read", None, &[("200", "AgentList")])
        }
        ("post", "/v1/wallets/{id}/agents") => op(
            "Register an agent key with an owner's signature over the registration (no bearer token)",
            "none",
            Some("RegisterAgent"),
            &[("201", "AgentRegistered")],
        ),
        ("get", "/v1/wallets/{id}/subaccounts") => op(
            "The main wallet's subaccounts, by child index",
            "operator|agent:read",
            None,
            &[("200", "SubaccountList")],
        ),
        ("post", "/v1/wallets/{id}/subaccounts") => op(
            "Create a subaccount: a wallet whose key is the main wallet's key derived at the next child index",
            "operator",
            Some("CreateSubaccount"),
            &[("201", "Subaccount")],
        ),
        ("post", "/v1/wallets/{id}/x402/pay") => op(
            "Fetch a URL and pay its x402 `exact` requirement under the mandate (docs/API.md, \"x402\")",
            "operator|agent:broadcast",
            Some("X402Pay"),
            &[("200", "X402Paid")],
        ),
        ("post", "/v1/agents/{address}/revoke") => {
            op("Revoke an agent key at once", "operator", None, &[("200", "AgentRevoked")])
        }
        ("get", "/v1/approvals") => op(
            "Held transactions (pending approval, delayed, approved) with the texts owners sign",
            "operator|agent:read",
            None,
            &[("200", "ApprovalList")],
        ),
        ("get", "/v1/approvals/{id}") => op(
            "One held transaction and the texts owners sign",
            "operator|agent:read",
            None,
            &[("200", "ApprovalItem")],
        ),
        ("post", "/v1/approvals/{id}/approve") => op(
            "Approve with an owner's signature (single use)",
            "owner signature",
            Some("OwnerDecision"),
            &[("200", "Transaction")],
        ),
        ("post", "/v1/approvals/{id}/deny") => op(
            "Deny with an owner's signature: never sent",
            "owner signature",
            Some("OwnerDecision"),
            &[("200", "Transaction")],
        ),
        ("get", "/v1/owner/approvals/{id}") => op(
            "An owner's tool's view of one held transaction (the id alone; nothing else about others)",
            "none",
            None,
            &[("200", "OwnerApprovalView")],
        ),
        ("get", "/v1/owner/wallets/{id}/unfreeze") => op(
            "An owner's tool's view of a freeze: the unfreeze text and cool-down",
            "none",
            None,
            &[("200", "OwnerUnfreezeView")],
        ),
        ("get", "/v1/webhooks") => op("Webhooks (no secrets)", "operator", None, &[("200", "WebhookList")]),
        ("post", "/v1/webhooks") => op(
            "Add a webhook (the HMAC secret is shown once)",
            "operator",
            Some("CreateWebhook"),
            &[("201", "WebhookCreated")],
        ),
        ("delete", "/v1/webhooks/{id}") => op("Remove a webhook", "operator", None, &[("200", "WebhookRemoved")]),
        ("get", "/v1/webhooks/{id}/deliveries") => {
            op("The webhook's delivery log, newest first", "operator", None, &[("200", "DeliveryList")])
        }
        ("post", "/v1/transactions/{id}/cancel") => op(
            "Cancel a held transaction before it is sent, or replace a submitted one by a zero-value self-send",
            "operator|agent:broadcast",
            None,
            &[("200", "Transaction")],
        ),
        ("post", "/v1/transactions/{id}/speed-up") => op(
            "Send a submitted transaction again at its nonce with higher fees",
            "operator|agent:broadcast",
            None,
            &[("200", "Transaction")],
        ),
        ("get", "/v1/session") => {
            op("The calling session: wallet, scopes, band, expiry", "agent", None, &[("200", "CurrentSession")])
        }
        ("get", "/v1/transactions/{id}") => {
            op("One transaction", "operator|agent:read", None, &[("200", "Transaction")])
        }
        ("get", "/v1/sessions") => op("List sessions", "operator", None, &[("200", "SessionList")]),
        ("post", "/v1/sessions") => op(
            "Create an agent session (the token is shown once)",
            "operator",
            Some("CreateSession"),
            &[("201", "SessionCreated")],
        ),
        ("post", "/v1/sessions/renew") => op("Renew the calling session", "agent", None, &[("200", "Session")]),
        ("post", "/v1/sessions/{id}/revoke") => op("Revoke a session", "operator", None, &[("200", "SessionRevoked")]),
        ("get", "/v1/audit/verify") => op("Verify the audit chain", "operator", None, &[("200", "AuditVerify")]),
        ("get", "/v1/audit/tail") => op("The last audit records", "operator", None, &[("200", "AuditTail")]),
        _ => json!({}),
    }
}

/// The error envelope: `code` is one of every stable code, `category` one of theirs.
fn error_schemas(schemas: &mut Map<String, Value>) {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    let mut categories: Vec<String> = Vec::new();
    for code in ErrorCode::ALL {
        if let Value::String(category) = json!(code.category()) {
            if !categories.contains(&category) {
                categories.push(category);
            }
        }
    }
    schemas.insert(
        "ErrorCode".into(),
        json!({"type": "string", "enum": codes,
        "description": "stable: a code never changes meaning (mandate-core/src/error_code.rs)"}),
    );
    schemas.insert("ErrorCategory".into(), json!({"type": "string", "enum": categories}));
    schemas.insert(
        "Error".into(),
        object(
            json!({"error": object(json!({
                "category": schema("ErrorCategory"),
                "code": schema("ErrorCode"),
                "message": text(),
                "required_action": text(),
                "retryable": boolean(),
                "retry_after": {"type": ["integer", "null"], "minimum": 1,
                                "description": "seconds; set with RATE_LIMITED, otherwise null"},
                "details": {"type": "object", "description": "a policy decision, a JSON path, …"},
            }), &[])}),
            &[],
        ),
    );
}

/// Wallets, freezes, owners, policies and balances.
fn wallet_schemas(schemas: &mut Map<String, Value>) {
    let wallet = json!({"id": text(), "name": text(), "address": address(), "chain_id": count(), "created_at": time()});
    schemas.insert("Wallet".into(), object(wallet.clone(), &[]));
    let mut detail = wallet;
    set(&mut detail, "frozen", or_null(schema("WalletFreeze")));
    schemas.insert("WalletDetail".into(), object(detail, &[]));
    schemas.insert("WalletList".into(), list_of("wallets", "Wallet"));
    schemas.insert(
        "WalletFreeze".into(),
        object(
            json!({"wallet_id": text(), "frozen_at": time(),
                   "frozen_by": {"type": "string", "description": "operator, operator:key:<id> or agent:<session id>"},
                   "reason": text()}),
            &[],
        ),
    );
    let frozen = json!({"wallet_id": text(), "frozen": schema("WalletFreeze"), "newly_frozen": boolean(),
        "cosigner": {"type": "string", "description": "notified, or why the cosigner could not be told"}});
    schemas.insert("FreezeResult".into(), object(frozen, &[]));
    schemas.insert(
        "DevFunded".into(),
        object(
            json!({"wallet_id": text(), "address": address(), "chain_id": count(),
                   "amount": {"type": "string", "description": "ether"}, "amount_wei": digits(),
                   "balance": {"type": "string", "description": "ether"}, "balance_wei": digits(),
                   "method": one_of(["anvil_setBalance", "hardhat_setBalance"])}),
            &[],
        ),
    );
    schemas.insert("FreezeAllResult".into(), list_of("wallets", "FreezeResult"));
    schemas.insert(
        "UnfreezeText".into(),
        object(
            json!({"wallet_id": text(), "frozen": schema("WalletFreeze"), "cooldown_ends_at": time(),
                   "decision": schema("OwnerDecisionText"), "message": text(), "quorum": schema("Quorum")}),
            &[],
        ),
    );
    schemas.insert(
        "OwnerUnfreezeView".into(),
        object(
            json!({"wallet_id": text(), "frozen_at": time(), "cooldown_ends_at": time(),
                   "decision": schema("OwnerDecisionText"), "message": text(), "quorum": schema("Quorum")}),
            &[],
        ),
    );
    schemas.insert(
        "Unfrozen".into(),
        object(json!({"wallet_id": text(), "unfrozen": boolean(), "quorum": schema("Quorum")}), &["quorum"]),
    );
    schemas.insert(
        "Owner".into(),
        object(
            json!({"wallet_id": text(), "owner_key": {"type": "string", "pattern": "^(ed25519|evm|webauthn):"},
                   "label": text(), "created_at": time()}),
            &[],
        ),
    );
    schemas.insert(
        "Agent".into(),
        object(
            json!({"id": text(), "address": address(), "wallet_id": text(), "name": text(), "scopes": array(text()),
                   "valid_until": time(), "created_at": time(), "revoked_at": time_or_null(),
                   "last_used_at": time_or_null()}),
            &[],
        ),
    );
    schemas.insert("AgentList".into(), object(json!({"agents": array(schema("Agent"))}), &[]));
    schemas.insert(
        "Subaccount".into(),
        object(
            json!({"id": text(), "name": text(), "address": address(), "chain_id": count(), "created_at": time(),
                   "parent_id": text(), "index": count()}),
            &[],
        ),
    );
    schemas.insert(
        "X402Paid".into(),
        json!({"type": "object", "required": ["paid"],
               "description": "paid: the resource's status, content_type, body, the payment record and the settlement; not paid (the URL asked for no payment, or an idempotent replay): the resource's answer or the earlier payment",
               "properties": {"paid": {"type": "boolean"}, "replayed": {"type": "boolean"}, "status": count(),
                              "content_type": text_or_null(), "body": {},
                              "payment": schema("Transaction"),
                              "settlement": object(json!({"transaction": text(), "chain_id": count(), "amount": text(),
                                                          "amount_base": digits(), "token": address(),
                                                          "token_symbol": text(), "pay_to": address()}), &[])}}),
    );
    schemas.insert(
        "SubaccountList".into(),
        object(json!({"wallet_id": text(), "subaccounts": array(schema("Subaccount"))}), &[]),
    );
    schemas.insert("AgentRegistered".into(), object(json!({"agent": schema("Agent"), "replaced": array(text())}), &[]));
    schemas.insert(
        "AgentRevoked".into(),
        object(json!({"address": address(), "agent_id": text(), "revoked": boolean()}), &[]),
    );
    schemas.insert(
        "OwnerList".into(),
        object(json!({"wallet_id": text(), "owners": array(schema("Owner")), "owner_threshold": count()}), &[]),
    );
    schemas.insert("SetQuorum".into(), object(json!({"threshold": count()}), &[]));
    schemas.insert("QuorumSet".into(), object(json!({"wallet_id": text(), "owner_threshold": count()}), &[]));
    schemas.insert(
        "OwnerAdded".into(),
        object(
            json!({"owner": schema("Owner"), "added": {"type": "boolean", "description": "false: known already"}}),
            &[],
        ),
    );
    schemas
        .insert("PolicyVersion".into(), object(json!({"wallet_id": text(), "version": count(), "hash": text()}), &[]));
    schemas.insert(
        "PolicyShown".into(),
        object(json!({"wallet_id": text(), "version": count(), "hash": text(), "document": schema("Policy")}), &[]),
    );
    schemas.insert(
        "PolicySummary".into(),
        object(
            json!({"wallet_id": text(),
                   "policy": or_null(object(json!({"version": count(), "hash": text()}), &[])),
                   "frozen": or_null(schema("WalletFreeze")),
                   "rules": {"type": ["array", "null"], "items": {"type": "object"}},
                   "budgets": array(schema("Budget")),
                   "note": text()}),
            &[],
        ),
    );
    let place = json!({"wallet_id": text(), "address": address(), "chain_id": count()});
    let mut native = place.clone();
    set(&mut native, "asset", exactly("native"));
    set(&mut native, "balance_wei", digits());
    set(&mut native, "balance", json!({"type": "string", "description": "ether"}));
    let mut token = place;
    set(&mut token, "asset", exactly("token"));
    set(&mut token, "token", address());
    set(&mut token, "token_symbol", json!({"type": "string", "description": "as the contract says: untrusted"}));
    set(&mut token, "decimals", count());
    set(&mut token, "balance_base", digits());
    set(&mut token, "balance", json!({"type": "string", "description": "whole tokens"}));
    schemas.insert("NativeBalance".into(), object(native, &[]));
    schemas.insert("TokenBalance".into(), object(token, &[]));
    schemas.insert("Balance".into(), json!({"oneOf": [schema("NativeBalance"), schema("TokenBalance")]}));
}

/// Transactions, held items, decisions, evaluations and signatures.
fn transaction_schemas(schemas: &mut Map<String, Value>) {
    let statuses = [
        "reserved",
        "submitted",
        "confirmed",
        "failed",
        "pending_approval",
        "delayed",
        "approved",
        "denied",
        "expired",
        "cancelled",
    ];
    schemas.insert("TransactionStatus".into(), one_of(statuses));
    schemas.insert(
        "Budget".into(),
        object(
            json!({"rule_id": text(), "unit": {"type": "string", "description": "native, a token symbol, usd or count"},
                   "window_secs": count(), "limit": text(), "used": text(), "remaining": text(),
                   "frees_at": time_or_null()}),
            &[],
        ),
    );
    schemas.insert(
        "Decision".into(),
        object(
            json!({"verdict": one_of(["allow", "deny"]), "tier": one_of(["instant", "notify", "delay", "approval"]),
                   "delay_secs": count(), "code": schema("ErrorCode"), "rule_id": text(), "reason": text(),
                   "observed": text(), "limit": text(), "usd_value": text(),
                   "tier_rules": array(text()), "budgets": array(schema("Budget")), "policy_hash": text()}),
            &["delay_secs", "code", "observed", "limit", "usd_value", "tier_rules", "budgets"],
        ),
    );
    schemas.insert(
        "Transaction".into(),
        object(
            json!({"id": text(), "wallet_id": text(), "to": address(), "value_wei": digits(),
                   "nonce": {"type": ["integer", "null"], "minimum": 0}, "status": schema("TransactionStatus"),
                   "tx_hash": {"type": ["string", "null"], "pattern": "^0x[0-9a-fA-F]{64}$"},
                   "error": text_or_null(), "decision": schema("Decision"), "created_at": time(),
                   "kind": one_of(["native_transfer", "token_transfer", "token_approve", "contract_call", "nonce_fill"]),
                   "data": hex(),
                   "asset": {"type": "string", "pattern": "^(native|0x[0-9a-fA-F]{40})$"},
                   "amount": digits(),
                   "recipient": {"type": ["string", "null"], "pattern": "^0x[0-9a-fA-F]{40}$"},
                   "chain_id": count(), "expires_at": time(), "execute_after": time(), "gas_limit": count(),
                   "max_fee_per_gas": digits(),
                   "value": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "description": "value_wei in ether"},
                   "amount_units": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$",
                                    "description": "amount in the asset's units (when its decimals are known)"},
                   "decimals": count(),
                   "symbol": {"type": "string", "description": "ETH, or as the token contract says: untrusted"},
                   "quorum": schema("Quorum")}),
            &[
                "quorum",
                "chain_id",
                "expires_at",
                "execute_after",
                "gas_limit",
                "max_fee_per_gas",
                "amount_units",
                "decimals",
                "symbol",
            ],
        ),
    );
    schemas.insert("TransactionList".into(), list_of("transactions", "Transaction"));
    let mut held = object(
        json!({"id": text(), "status": one_of(["pending_approval", "delayed"]), "reason": text_or_null(),
               "expires_at": time_or_null(), "execute_after": time_or_null(),
               "tier_rules": {"type": ["array", "null"], "items": text()}, "transaction": schema("Transaction")}),
        &["expires_at", "execute_after"],
    );
    set(&mut held, "description", json!("approval tier: expires_at; delay tier: execute_after"));
    set(&mut held, "oneOf", json!([{"required": ["expires_at"]}, {"required": ["execute_after"]}]));
    schemas.insert("HeldTransaction".into(), held);
    schemas.insert(
        "ApprovedTx".into(),
        object(
            json!({"chain_id": count(), "to": address(), "value": {"type": "string", "pattern": "^0x[0-9a-fA-F]+$"},
                   "data_hash": hash32(), "data_len": count(), "gas_limit_max": count(),
                   "max_fee_per_gas_max": count()}),
            &[],
        ),
    );
    schemas.insert(
        "OwnerDecisionText".into(),
        object(
            json!({"action": one_of(["approve", "deny", "unfreeze"]),
                   "item": {"type": "string", "description": "the held transaction's id, or freeze:<frozen_at>"},
                   "wallet": text(), "tx": schema("ApprovedTx"), "expires_at": time()}),
            &["tx"],
        ),
    );
    schemas.insert(
        "Quorum".into(),
        object(
            json!({"required": {"type": "integer", "minimum": 1, "description": "distinct owners who must sign"},
                   "signed": count(), "owners": array(text())}),
            &[],
        ),
    );
    let texts = json!({"approve_message": text(), "approve_decision": schema("OwnerDecisionText"),
                       "deny_message": text(), "deny_decision": schema("OwnerDecisionText"),
                       "quorum": schema("Quorum")});
    let mut item = texts.clone();
    set(&mut item, "transaction", schema("Transaction"));
    schemas.insert(
        "ApprovalItem".into(),
        object(item, &["approve_message", "approve_decision", "deny_message", "deny_decision", "quorum"]),
    );
    schemas.insert("ApprovalList".into(), list_of("held", "ApprovalItem"));
    let mut view = texts;
    set(
        &mut view,
        "transaction",
        object(
            json!({"id": text(), "wallet_id": text(), "status": schema("TransactionStatus"),
               "chain_id": {"type": ["integer", "null"]}, "to": address(), "value_wei": digits(), "data": hex(),
               "gas_limit": {"type": ["integer", "null"]}, "max_fee_per_gas": text_or_null(),
               "expires_at": time_or_null(), "execute_after": time_or_null()}),
            &["chain_id", "to", "value_wei", "data", "gas_limit", "max_fee_per_gas", "expires_at", "execute_after"],
        ),
    );
    schemas.insert(
        "OwnerApprovalView".into(),
        object(view, &["approve_message", "approve_decision", "deny_message", "deny_decision", "quorum"]),
    );
    let actions = [
        (
            "native_transfer",
            json!({"to": address(), "amount": text(), "amount_wei": digits(), "asset": exactly("native")}),
        ),
        (
            "token_transfer",
            json!({"token": address(), "asset": text(), "from": {"type": ["string", "null"]}, "to": address(),
                   "amount": text(), "amount_base": digits()}),
        ),
        (
            "token_approve",
            json!({"token": address(), "asset": text(), "spender": address(), "unlimited": boolean(),
                   "amount_base": digits(), "increase": boolean()}),
        ),
        (
            "contract_call",
            json!({"to": address(), "value_wei": digits(), "value": {"type": "string", "description": "ether"},
                   "selector": {"type": "string", "pattern": "^0x[0-9a-fA-F]{8}$"},
                   "function": text_or_null(), "args": {"type": ["array", "null"], "items": text()}}),
        ),
        (
            "typed_data",
            json!({"primary_type": text(), "chain_id": {"type": ["integer", "null"]},
                   "verifying_contract": {"type": ["string", "null"]}, "domain_name": text_or_null(),
                   "digest": hash32()}),
        ),
        ("personal_message", json!({"bytes": count(), "text": text_or_null()})),
        ("raw_hash", json!({"hash": hash32()})),
    ];
    let mut variants = Vec::new();
    for (kind, mut properties) in actions {
        set(&mut properties, "kind", exactly(kind));
        variants.push(object(properties, &[]));
    }
    schemas.insert(
        "Action".into(),
        json!({"description": "the action as the policy judged it, by kind", "oneOf": variants}),
    );
    schemas.insert(
        "Evaluation".into(),
        object(
            json!({"action": schema("Action"), "decision": schema("Decision"),
                   "gas": {"type": ["integer", "null"], "minimum": 0}, "max_fee_per_gas": {"type": ["string", "null"], "pattern": "^[0-9]+$"},
                   "simulation": or_null(object(json!({"success": boolean(), "revert_reason": text()}), &["revert_reason"]))}),
            &["gas", "max_fee_per_gas", "simulation"],
        ),
    );
    schemas.insert(
        "SignatureResult".into(),
        object(
            json!({"signature": {"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$",
                                 "description": "65 bytes r‖s‖v, v = 27|28"},
                   "digest": hash32(), "address": address(), "action": schema("Action"),
                   "decision": schema("Decision")}),
            &[],
        ),
    );
}

/// Credentials, webhooks, the audit trail and the small answers.
fn other_schemas(schemas: &mut Map<String, Value>) {
    let chain = object(json!({"name": text(), "chain_id": count()}), &[]);
    schemas.insert(
        "Health".into(),
        object(json!({"status": exactly("ok"), "chain_id": count(), "chains": array(chain)}), &[]),
    );
    let check = json!({"type": "string", "description": "`ok`, or what is wrong"});
    schemas.insert(
        "Ready".into(),
        object(
            json!({"ready": {"type": "boolean"},
                   "checks": object(json!({"database": check, "node": check, "cosigner": check}), &[]),
                   "chains": {"type": "object", "additionalProperties": check,
                              "description": "each chain served, by name: `ok`, or what is wrong"}}),
            &[],
        ),
    );
    schemas.insert(
        "OpenApiDocument".into(),
        json!({"type": "object", "required": ["openapi", "info", "paths", "components"]}),
    );
    schemas.insert(
        "Login".into(),
        object(json!({"token": {"type": "string", "pattern": "^mnd_admin_"}, "expires_at": time()}), &[]),
    );
    schemas.insert(
        "OperatorKey".into(),
        object(
            json!({"id": {"type": "string", "pattern": "^opk_"}, "name": text(), "scopes": array(one_of(OPERATOR_SCOPES)),
                   "created_at": time(), "created_by": text(), "expires_at": time_or_null(),
                   "last_used_at": time_or_null(), "revoked_at": time_or_null()}),
            &[],
        ),
    );
    schemas.insert(
        "OperatorKeyCreated".into(),
        object(
            json!({"key": {"type": "string", "pattern": "^mnd_op_", "description": "shown once"},
                   "operator_key": schema("OperatorKey")}),
            &[],
        ),
    );
    schemas.insert("OperatorKeyList".into(), list_of("operator_keys", "OperatorKey"));
    schemas.insert(
        "OperatorKeyRevoked".into(),
        object(
            json!({"revoked": boolean(), "key_id": text(), "also_revoked": array(text()),
                   "sessions_revoked": array(text()), "cancelled": array(text())}),
            &[],
        ),
    );
    let scopes: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    schemas.insert(
        "Session".into(),
        object(
            json!({"id": {"type": "string", "pattern": "^ses_"}, "wallet_id": text(), "scopes": array(one_of(scopes)),
                   "created_at": time(), "ttl_secs": count(), "expires_at": time(), "absolute_expires_at": time(),
                   "renewals": count(), "max_renewals": count(), "revoked_at": time_or_null()}),
            &[],
        ),
    );
    schemas.insert(
        "SessionCreated".into(),
        object(
            json!({"token": {"type": "string", "pattern": "^mnd_sess_", "description": "shown once"},
                   "session": schema("Session")}),
            &[],
        ),
    );
    schemas.insert("SessionList".into(), list_of("sessions", "Session"));
    let mut bands: Vec<Value> = Scope::BANDS.iter().map(|band| json!(band.as_str())).collect();
    bands.push(Value::Null);
    schemas.insert(
        "CurrentSession".into(),
        object(
            json!({"session": schema("Session"),
                   "band": {"enum": bands, "description": "the highest band the scopes grant; null: freeze only"}}),
            &[],
        ),
    );
    schemas.insert(
        "SessionRevoked".into(),
        object(json!({"revoked": boolean(), "session_id": text(), "cancelled": array(text())}), &[]),
    );
    let events: Vec<&str> = Event::ALL.iter().map(|event| event.name()).collect();
    let webhook = json!({"id": {"type": "string", "pattern": "^whk_"}, "url": text(),
                         "events": array(one_of(events)), "created_at": time()});
    schemas.insert("Webhook".into(), object(webhook.clone(), &[]));
    let mut created = webhook;
    set(&mut created, "secret", json!({"type": "string", "description": "the HMAC secret, shown once"}));
    schemas.insert("WebhookCreated".into(), object(created, &[]));
    schemas.insert("WebhookList".into(), list_of("webhooks", "Webhook"));
    schemas.insert("WebhookRemoved".into(), object(json!({"id": text(), "removed": boolean()}), &[]));
    schemas.insert(
        "Delivery".into(),
        object(
            json!({"id": count(), "webhook_id": text(), "event_id": text(), "event": text(), "created_at": time(),
                   "attempts": count(), "next_attempt_at": time(), "status": one_of(["pending", "delivered", "failed"]),
                   "last_status": {"type": ["integer", "null"]}, "last_error": text_or_null(),
                   "delivered_at": time_or_null()}),
            &[],
        ),
    );
    schemas.insert(
        "DeliveryList".into(),
        object(json!({"webhook": schema("Webhook"), "deliveries": array(schema("Delivery"))}), &[]),
    );
    schemas.insert(
        "AuditRecord".into(),
        object(
            json!({"seq": {"type": "integer", "minimum": 1}, "ts": time(),
                   "actor": {"type": "string", "description": "operator, operator:key:<id>, agent:<session id>, owner:<key>, daemon, …"},
                   "event": text(), "wallet": text(), "decision": {"type": "object"}, "policy_hash": text(),
                   "details": {"description": "anything else about the event (never a secret)"},
                   "prev_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                   "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}),
            &["wallet", "decision", "policy_hash"],
        ),
    );
    schemas.insert("AuditTail".into(), list_of("records", "AuditRecord"));
    let kinds = ["unreadable", "edited", "deleted", "truncated", "reordered", "broken_link", "cut", "anchor_mismatch"];
    schemas.insert(
        "AuditVerify".into(),
        json!({"oneOf": [
            object(json!({"ok": {"const": true}, "records": count()}), &[]),
            object(json!({"ok": {"const": false},
                          "problem": object(json!({"kind": one_of(kinds), "seq": count(), "message": text()}), &[])}), &[]),
        ]}),
    );
}

/// The request bodies.
fn request_schemas(schemas: &mut Map<String, Value>) {
    let chain_field = json!({"type": ["string", "integer"],
        "description": "the chain: its name on the daemon or its id (default: the daemon's only chain)"});
    let requests = json!({
        "CreateOperatorKey": {"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": {"type": "string", "maxLength": 64},
                "scopes": {"type": "array", "items": {"enum": OPERATOR_SCOPES},
                    "description": "default [\"admin\"]"},
                "ttl_days": {"type": "integer", "minimum": 1, "maximum": 3650, "description": "default 90"}}},
        "Transfer": {"type": "object", "required": ["to"], "additionalProperties": false,
            "properties": {"to": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                "token": {"type": "string", "description": "ERC-20: a symbol the policy declares, or the contract address"},
                "amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "description": "whole units (ether or token)"},
                "amount_wei": {"type": "string", "pattern": "^[0-9]+$", "description": "native only"},
                "amount_base": {"type": "string", "pattern": "^[0-9]+$", "description": "token base units"},
                "chain": chain_field}},
        "ContractCall": {"type": "object", "required": ["to"], "additionalProperties": false,
            "properties": {"to": {"type": "string"}, "value": {"type": "string", "description": "ether"},
                "value_wei": {"type": "string"}, "data": {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})+$"},
                "function": {"type": "string", "description": "e.g. swap(address,uint256,uint256)"},
                "args": {"type": "array"}, "chain": chain_field}},
        "SignTypedData": {"type": "object", "required": ["typed_data"], "additionalProperties": false,
            "properties": {"typed_data": {"type": "object", "description": "eth_signTypedData_v4 JSON"}}},
        "SignMessage": {"type": "object", "additionalProperties": false,
            "properties": {"message": {"type": "string"}, "message_hex": {"type": "string"}}},
        "SignHash": {"type": "object", "required": ["hash"], "additionalProperties": false,
            "properties": {"hash": {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}}},
        "EvaluateAction": {"type": "object", "required": ["type"],
            "properties": {"type": {"enum": ["transfer", "contract_call", "sign"]}},
            "description": "type plus the fields of Transfer, ContractCall or a Sign* body"},
        "DevFund": {"type": "object", "required": ["amount"], "additionalProperties": false,
            "properties": {"amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "description": "ether"},
                "chain": chain_field}},
        "X402Pay": {"type": "object", "required": ["url"], "additionalProperties": false,
            "properties": {"url": {"type": "string", "description": "https:// (http:// for localhost only)"},
                "chain": chain_field}},
        "CreateSubaccount": {"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": {"type": "string", "maxLength": 64}}},
        "RegisterWallet": {"type": "object", "required": ["name", "wallet_id"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "wallet_id": {"type": "string"}}},
        "CreateSession": {"type": "object", "required": ["wallet_id", "ttl_secs"], "additionalProperties": false,
            "properties": {"wallet_id": {"type": "string"}, "ttl_secs": {"type": "integer", "minimum": 1},
                "max_renewals": {"type": "integer", "minimum": 0},
                "absolute_lifetime_secs": {"type": "integer", "minimum": 1},
                "scopes": {"type": "array", "items": {"enum": Scope::ALL.iter().map(|scope| scope.as_str()).collect::<Vec<_>>()}}}},
        "Policy": {"type": "object", "required": ["rules"], "description": "see docs/POLICY.md"},
        "Freeze": {"type": "object", "additionalProperties": false,
            "properties": {"reason": {"type": "string", "maxLength": 500}}},
        "Unfreeze": {"type": "object", "required": ["signature", "expires_at"], "additionalProperties": false,
            "properties": {"signature": {"type": "string"}, "expires_at": {"type": "integer"}}},
        "OwnerDecision": {"type": "object", "required": ["signature"], "additionalProperties": false,
            "properties": {"signature": {"type": "string",
                "description": "ed25519:<public key hex>:<signature hex> or eip191:<address>:0x<signature>"}}},
        "CreateWebhook": {"type": "object", "required": ["url", "events"], "additionalProperties": false,
            "properties": {"url": {"type": "string", "description": "https:// (http:// only to localhost)"},
                "events": {"type": "array", "minItems": 1,
                    "items": {"enum": Event::ALL.iter().map(|event| event.name()).collect::<Vec<_>>()}}}},
        "RegisterAgent": {"type": "object", "required": ["registration", "owner_signature"], "additionalProperties": false,
            "properties": {
                "registration": {"type": "object", "additionalProperties": false,
                    "required": ["wallet", "agent", "name", "scopes", "valid_until", "nonce"],
                    "properties": {"wallet": {"type": "string"}, "agent": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                        "name": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
                        "valid_until": {"type": "integer"}, "nonce": {"type": "integer"},
                        "policy": {"type": "object", "description": "the agent's own policy (docs/POLICY.md); it only narrows the wallet's"}}},
                "owner_signature": {"type": "string",
                    "description": "an owner's signature over the registration's text, or (EVM owners) its EIP-712 form (docs/AGENTS.md)"},
                "owner_signatures": {"type": "array", "items": {"type": "string"}, "maxItems": 15,
                    "description": "further owners' signatures, where the wallet has an owner quorum"}}},
        "AddOwner": {"type": "object", "required": ["owner_key"], "additionalProperties": false,
            "properties": {"owner_key": {"type": "string"}, "label": {"type": "string", "maxLength": 100}}}
    });
    if let Value::Object(requests) = requests {
        schemas.extend(requests);
    }
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for (method, path) in ROUTES {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(method.to_string(), operation(method, path));
            for name in ["id", "address"] {
                if path.contains(&format!("{{{name}}}")) {
                    item.insert(
                        "parameters".into(),
                        json!([{"name": name, "in": "path", "required": true, "schema": {"type": "string"}}]),
                    );
                }
            }
        }
    }
    let mut schemas = Map::new();
    error_schemas(&mut schemas);
    wallet_schemas(&mut schemas);
    transaction_schemas(&mut schemas);
    other_schemas(&mut schemas);
    request_schemas(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Mandate", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Self-hosted threshold wallet for AI agents. See docs/API.md."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description":
                    "mnd_admin_… (login), mnd_op_… (operator key; scopes admin: all, read: every GET, freeze: \
                     the freeze endpoints) or mnd_sess_… (agent session)"},
                "basic": {"type": "http", "scheme": "basic"}
            },
            "schemas": schemas
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_schema_is_used() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&document, &mut found);
        for target in &found {
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "{target} does not resolve");
        }
        for name in schemas.keys() {
            let target = format!("#/components/schemas/{name}");
            assert!(found.contains(&target), "{name} is never used");
        }
    }

    #[test]
    fn no_schema_name_is_defined_twice() {
        let mut seen: Vec<String> = Vec::new();
        let parts: [fn(&mut Map<String, Value>); 5] =
            [error_schemas, wallet_schemas, transaction_schemas, other_schemas, request_schemas];
        for part in parts {
            let mut schemas = Map::new();
            part(&mut schemas);
            for name in schemas.keys() {
                assert!(!seen.contains(name), "{name} is defined twice");
                seen.push(name.clone());
            }
        }
    }

    #[test]
    fn every_route_declares_its_success_responses_and_the_error_envelope() {
        let document = document();
        for (method, path) in ROUTES {
            let operation = &document["paths"][*path][*method];
            let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}"));
            let ok: Vec<&String> = responses.keys().filter(|status| status.starts_with('2')).collect();
            assert!(!ok.is_empty(), "{method} {path} declares no success response");
            for status in ok {
                let schema = &responses[status]["content"]["application/json"]["schema"];
                assert!(schema["$ref"].is_string(), "{method} {path} {status}: {schema}");
                assert_ne!(schema, &json!({"type": "object"}), "{method} {path} {status} is untyped");
            }
            assert_eq!(responses["default"]["content"]["application/json"]["schema"], schema("Error"));
        }
        // The send paths answer 202 for a held transaction.
        for path in ["/v1/wallets/{id}/transactions", "/v1/wallets/{id}/contract-calls"] {
            assert_eq!(
                document["paths"][path]["post"]["responses"]["202"]["content"]["application/json"]["schema"],
                schema("HeldTransaction")
            );
        }
    }

    #[test]
    fn the_error_envelope_lists_every_code_and_retry_after() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        let codes: Vec<&str> =
            schemas["ErrorCode"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(codes, all);
        let error = &schemas["Error"]["properties"]["error"];
        let required: Vec<&str> = error["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for field in ["category", "code", "message", "required_action", "retryable", "retry_after", "details"] {
            assert!(required.contains(&field), "{field} is not required");
        }
        assert_eq!(error["properties"]["retry_after"]["type"], json!(["integer", "null"]));
        // The envelope the daemon sends has exactly the declared fields.
        let envelope = crate::error::ApiError::rate_limited("slow down", 3).envelope();
        let mut sent: Vec<&String> = envelope["error"].as_object().unwrap().keys().collect();
        let mut declared: Vec<&String> = error["properties"].as_object().unwrap().keys().collect();
        sent.sort();
        declared.sort();
        assert_eq!(sent, declared);
    }
}
