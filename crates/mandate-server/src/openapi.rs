//! The OpenAPI 3.1 document served at `/v1/openapi.json` (docs/API.md in prose).

use serde_json::{json, Value};

fn op(summary: &str, auth: &str, body: Option<&str>, ok: &str) -> Value {
    let mut operation = serde_json::Map::new();
    let base = json!({
        "summary": summary,
        "x-mandate-auth": auth,
        "responses": {
            ok: {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "default": {"description": "error envelope",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    });
    if let Value::Object(map) = base {
        operation.extend(map);
    }
    if let Some(schema) = body {
        operation.insert(
            "requestBody".into(),
            json!({"required": true,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
        );
    }
    let scheme = match auth {
        "none" => None,
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
    ("post", "/v1/wallets/{id}/freeze"),
    ("get", "/v1/wallets/{id}/unfreeze"),
    ("post", "/v1/wallets/{id}/unfreeze"),
    ("post", "/v1/freeze"),
    ("get", "/v1/wallets/{id}/owners"),
    ("post", "/v1/wallets/{id}/owners"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/deny"),
    ("get", "/v1/owner/approvals/{id}"),
    ("get", "/v1/owner/wallets/{id}/unfreeze"),
    ("post", "/v1/transactions/{id}/cancel"),
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
        ("get", "/v1/health") => op("Liveness and the node's chain id", "none", None, "200"),
        ("get", "/v1/openapi.json") => op("This document", "none", None, "200"),
        ("post", "/v1/admin/login") => {
            op("Operator login with the master password (HTTP Basic, user operator)", "basic", None, "200")
        }
        ("get", "/v1/operator-keys") => op("Operator keys with their state (never the keys)", "operator", None, "200"),
        ("post", "/v1/operator-keys") => op(
            "Create an operator key (shown once; only its SHA-256 is kept)",
            "operator:admin",
            Some("CreateOperatorKey"),
            "201",
        ),
        ("post", "/v1/operator-keys/{id}/revoke") => {
            op("Revoke an operator key (refused from its next request on)", "operator:admin", None, "200")
        }
        ("get", "/v1/wallets") => op("List wallets (an agent sees its own)", "operator|agent:read", None, "200"),
        ("post", "/v1/wallets") => {
            op("Register a wallet created by `mandate wallet create`", "operator", Some("RegisterWallet"), "201")
        }
        ("get", "/v1/wallets/{id}") => op("Wallet address and chain id", "operator|agent:read", None, "200"),
        ("get", "/v1/wallets/{id}/balance") => {
            op("Native balance, or ?token=SYMBOL|0x… an ERC-20 balance", "operator|agent:read", None, "200")
        }
        ("get", "/v1/wallets/{id}/policy") => op("The wallet's current policy", "operator|agent:read", None, "200"),
        ("put", "/v1/wallets/{id}/policy") => {
            op("Replace the policy (a new version)", "operator", Some("Policy"), "200")
        }
        ("get", "/v1/wallets/{id}/transactions") => {
            op("Transactions, newest first", "operator|agent:read", None, "200")
        }
        ("post", "/v1/wallets/{id}/transactions") => op(
            "Send a native or ERC-20 transfer (header Idempotency-Key honoured)",
            "operator|agent:broadcast",
            Some("Transfer"),
            "200",
        ),
        ("post", "/v1/wallets/{id}/transactions/dry-run") => {
            op("The policy decision, nothing signed", "operator|agent:read", Some("Transfer"), "200")
        }
        ("post", "/v1/wallets/{id}/contract-calls") => op(
            "Send a contract call (data, or function + args; Idempotency-Key honoured)",
            "operator|agent:broadcast",
            Some("ContractCall"),
            "200",
        ),
        ("post", "/v1/wallets/{id}/sign-typed-data") => {
            op("Sign EIP-712 typed data (policy first)", "operator|agent:sign", Some("SignTypedData"), "200")
        }
        ("post", "/v1/wallets/{id}/sign-message") => {
            op("Sign an EIP-191 personal message (policy first)", "operator|agent:sign", Some("SignMessage"), "200")
        }
        ("post", "/v1/wallets/{id}/sign-hash") => {
            op("Sign a bare hash (only with a raw_hash rule)", "operator|agent:sign", Some("SignHash"), "200")
        }
        ("post", "/v1/wallets/{id}/policy/evaluate") => op(
            "The full policy decision for an action (transfer, contract_call or sign); nothing signed",
            "operator|agent:read",
            Some("EvaluateAction"),
            "200",
        ),
        ("get", "/v1/wallets/{id}/policy/summary") => {
            op("The policy's rules and every window's remaining budget now", "operator|agent:read", None, "200")
        }
        ("post", "/v1/wallets/{id}/freeze") => op(
            "Emergency freeze: the daemon and the cosigner sign nothing more for the wallet",
            "operator|agent:freeze",
            Some("Freeze"),
            "200",
        ),
        ("get", "/v1/wallets/{id}/unfreeze") => op(
            "The text an owner signs to lift the freeze, and when the cool-down ends",
            "operator|agent:read",
            None,
            "200",
        ),
        ("post", "/v1/wallets/{id}/unfreeze") => op(
            "Lift the freeze with an owner's signature, after the cool-down",
            "owner signature",
            Some("Unfreeze"),
            "200",
        ),
        ("post", "/v1/freeze") => op("Emergency freeze of every wallet", "operator", Some("Freeze"), "200"),
        ("get", "/v1/wallets/{id}/owners") => op("The wallet's owners", "operator|agent:read", None, "200"),
        ("post", "/v1/wallets/{id}/owners") => {
            op("Register an owner (ed25519:<hex> or evm:0x…)", "operator", Some("AddOwner"), "200")
        }
        ("get", "/v1/approvals") => op(
            "Held transactions (pending approval, delayed, approved) with the texts owners sign",
            "operator|agent:read",
            None,
            "200",
        ),
        ("get", "/v1/approvals/{id}") => {
            op("One held transaction and the texts owners sign", "operator|agent:read", None, "200")
        }
        ("post", "/v1/approvals/{id}/approve") => {
            op("Approve with an owner's signature (single use)", "owner signature", Some("OwnerDecision"), "200")
        }
        ("post", "/v1/approvals/{id}/deny") => {
            op("Deny with an owner's signature: never sent", "owner signature", Some("OwnerDecision"), "200")
        }
        ("get", "/v1/owner/approvals/{id}") => op(
            "An owner's tool's view of one held transaction (the id alone; nothing else about others)",
            "none",
            None,
            "200",
        ),
        ("get", "/v1/owner/wallets/{id}/unfreeze") => {
            op("An owner's tool's view of a freeze: the unfreeze text and cool-down", "none", None, "200")
        }
        ("get", "/v1/webhooks") => op("Webhooks (no secrets)", "operator", None, "200"),
        ("post", "/v1/webhooks") => {
            op("Add a webhook (the HMAC secret is shown once)", "operator", Some("CreateWebhook"), "201")
        }
        ("delete", "/v1/webhooks/{id}") => op("Remove a webhook", "operator", None, "200"),
        ("get", "/v1/webhooks/{id}/deliveries") => {
            op("The webhook's delivery log, newest first", "operator", None, "200")
        }
        ("post", "/v1/transactions/{id}/cancel") => {
            op("Cancel a held transaction before it is sent", "operator|agent:broadcast", None, "200")
        }
        ("get", "/v1/session") => op("The calling session: wallet, scopes, band, expiry", "agent", None, "200"),
        ("get", "/v1/transactions/{id}") => op("One transaction", "operator|agent:read", None, "200"),
        ("get", "/v1/sessions") => op("List sessions", "operator", None, "200"),
        ("post", "/v1/sessions") => {
            op("Create an agent session (the token is shown once)", "operator", Some("CreateSession"), "201")
        }
        ("post", "/v1/sessions/renew") => op("Renew the calling session", "agent", None, "200"),
        ("post", "/v1/sessions/{id}/revoke") => op("Revoke a session", "operator", None, "200"),
        ("get", "/v1/audit/verify") => op("Verify the audit chain", "operator", None, "200"),
        ("get", "/v1/audit/tail") => op("The last audit records", "operator", None, "200"),
        _ => json!({}),
    }
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path) in ROUTES {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(method.to_string(), operation(method, path));
            if path.contains("{id}") {
                item.insert(
                    "parameters".into(),
                    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]),
                );
            }
        }
    }
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
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["category", "code", "message", "required_action", "retryable", "details"],
                    "properties": {"category": {"type": "string"}, "code": {"type": "string"},
                        "message": {"type": "string"}, "required_action": {"type": "string"},
                        "retryable": {"type": "boolean"},
                        "retry_after": {"type": ["integer", "null"], "description": "seconds (RATE_LIMITED)"},
                        "details": {"type": "object"}}}}},
                "CreateOperatorKey": {"type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": {"name": {"type": "string", "maxLength": 64},
                        "scopes": {"type": "array", "items": {"enum": ["admin", "read", "freeze"]},
                            "description": "default [\"admin\"]"},
                        "ttl_days": {"type": "integer", "minimum": 1, "maximum": 3650, "description": "default 90"}}},
                "Transfer": {"type": "object", "required": ["to"], "additionalProperties": false,
                    "properties": {"to": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                        "token": {"type": "string", "description": "ERC-20: a symbol the policy declares, or the contract address"},
                        "amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "description": "whole units (ether or token)"},
                        "amount_wei": {"type": "string", "pattern": "^[0-9]+$", "description": "native only"},
                        "amount_base": {"type": "string", "pattern": "^[0-9]+$", "description": "token base units"}}},
                "ContractCall": {"type": "object", "required": ["to"], "additionalProperties": false,
                    "properties": {"to": {"type": "string"}, "value": {"type": "string", "description": "ether"},
                        "value_wei": {"type": "string"}, "data": {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})+$"},
                        "function": {"type": "string", "description": "e.g. swap(address,uint256,uint256)"},
                        "args": {"type": "array"}}},
                "SignTypedData": {"type": "object", "required": ["typed_data"], "additionalProperties": false,
                    "properties": {"typed_data": {"type": "object", "description": "eth_signTypedData_v4 JSON"}}},
                "SignMessage": {"type": "object", "additionalProperties": false,
                    "properties": {"message": {"type": "string"}, "message_hex": {"type": "string"}}},
                "SignHash": {"type": "object", "required": ["hash"], "additionalProperties": false,
                    "properties": {"hash": {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}}},
                "EvaluateAction": {"type": "object", "required": ["type"],
                    "properties": {"type": {"enum": ["transfer", "contract_call", "sign"]}},
                    "description": "type plus the fields of Transfer, ContractCall or a Sign* body"},
                "RegisterWallet": {"type": "object", "required": ["name", "wallet_id"], "additionalProperties": false,
                    "properties": {"name": {"type": "string"}, "wallet_id": {"type": "string"}}},
                "CreateSession": {"type": "object", "required": ["wallet_id", "ttl_secs"], "additionalProperties": false,
                    "properties": {"wallet_id": {"type": "string"}, "ttl_secs": {"type": "integer", "minimum": 1},
                        "max_renewals": {"type": "integer", "minimum": 0},
                        "absolute_lifetime_secs": {"type": "integer", "minimum": 1},
                        "scopes": {"type": "array", "items": {"enum": ["read", "prepare", "sign", "broadcast", "freeze"]}}}},
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
                        "events": {"type": "array", "minItems": 1, "items": {"enum": ["approval.requested",
                            "approval.resolved", "transaction.confirmed", "transaction.failed", "policy.denied",
                            "policy.notify", "wallet.frozen", "wallet.unfrozen"]}}}},
                "AddOwner": {"type": "object", "required": ["owner_key"], "additionalProperties": false,
                    "properties": {"owner_key": {"type": "string"}, "label": {"type": "string", "maxLength": 100}}}
            }
        }
    })
}
