"""Every REST route the clients call, by method name: the one table their methods are
built from. ``tests/test_openapi.py`` checks it against the daemon's
``GET /v1/openapi.json`` both ways (a route with no method, a method with no route)."""

ROUTES: dict[str, tuple[str, str]] = {
    # Public
    "health": ("GET", "/v1/health"),
    "ready": ("GET", "/v1/ready"),
    "openapi": ("GET", "/v1/openapi.json"),
    "metrics": ("GET", "/metrics"),
    # Operator credentials
    "login": ("POST", "/v1/admin/login"),
    "create_operator_key": ("POST", "/v1/operator-keys"),
    "list_operator_keys": ("GET", "/v1/operator-keys"),
    "revoke_operator_key": ("POST", "/v1/operator-keys/{id}/revoke"),
    # Wallets and policies
    "register_wallet": ("POST", "/v1/wallets"),
    "list_wallets": ("GET", "/v1/wallets"),
    "get_wallet": ("GET", "/v1/wallets/{id}"),
    "get_balance": ("GET", "/v1/wallets/{id}/balance"),
    "set_policy": ("PUT", "/v1/wallets/{id}/policy"),
    "get_policy": ("GET", "/v1/wallets/{id}/policy"),
    "get_policy_summary": ("GET", "/v1/wallets/{id}/policy/summary"),
    "evaluate_action": ("POST", "/v1/wallets/{id}/policy/evaluate"),
    "dev_fund": ("POST", "/v1/wallets/{id}/dev/fund"),
    # Sessions
    "create_session": ("POST", "/v1/sessions"),
    "list_sessions": ("GET", "/v1/sessions"),
    "revoke_session": ("POST", "/v1/sessions/{id}/revoke"),
    "renew_session": ("POST", "/v1/sessions/renew"),
    "current_session": ("GET", "/v1/session"),
    # Sends and signatures
    "send_transfer": ("POST", "/v1/wallets/{id}/transactions"),
    "dry_run": ("POST", "/v1/wallets/{id}/transactions/dry-run"),
    "send_contract_call": ("POST", "/v1/wallets/{id}/contract-calls"),
    "sign_typed_data": ("POST", "/v1/wallets/{id}/sign-typed-data"),
    "sign_message": ("POST", "/v1/wallets/{id}/sign-message"),
    "sign_hash": ("POST", "/v1/wallets/{id}/sign-hash"),
    "list_transactions": ("GET", "/v1/wallets/{id}/transactions"),
    "get_transaction": ("GET", "/v1/transactions/{id}"),
    "cancel_transaction": ("POST", "/v1/transactions/{id}/cancel"),
    "speed_up_transaction": ("POST", "/v1/transactions/{id}/speed-up"),
    # Held transactions, owners, freeze
    "list_approvals": ("GET", "/v1/approvals"),
    "get_approval": ("GET", "/v1/approvals/{id}"),
    "approve": ("POST", "/v1/approvals/{id}/approve"),
    "deny": ("POST", "/v1/approvals/{id}/deny"),
    "owner_approval": ("GET", "/v1/owner/approvals/{id}"),
    "list_owners": ("GET", "/v1/wallets/{id}/owners"),
    "add_owner": ("POST", "/v1/wallets/{id}/owners"),
    "set_owner_quorum": ("PUT", "/v1/wallets/{id}/owners/quorum"),
    "freeze_wallet": ("POST", "/v1/wallets/{id}/freeze"),
    "freeze_all": ("POST", "/v1/freeze"),
    "unfreeze_text": ("GET", "/v1/wallets/{id}/unfreeze"),
    "unfreeze": ("POST", "/v1/wallets/{id}/unfreeze"),
    "owner_unfreeze_text": ("GET", "/v1/owner/wallets/{id}/unfreeze"),
    # Agent keys (docs/AGENTS.md)
    "list_agents": ("GET", "/v1/wallets/{id}/agents"),
    "list_subaccounts": ("GET", "/v1/wallets/{id}/subaccounts"),
    "create_subaccount": ("POST", "/v1/wallets/{id}/subaccounts"),
    "pay_x402": ("POST", "/v1/wallets/{id}/x402/pay"),
    "register_agent": ("POST", "/v1/wallets/{id}/agents"),
    "revoke_agent": ("POST", "/v1/agents/{address}/revoke"),
    # Audit
    "audit_verify": ("GET", "/v1/audit/verify"),
    "audit_tail": ("GET", "/v1/audit/tail"),
    # Webhooks
    "create_webhook": ("POST", "/v1/webhooks"),
    "list_webhooks": ("GET", "/v1/webhooks"),
    "delete_webhook": ("DELETE", "/v1/webhooks/{id}"),
    "list_deliveries": ("GET", "/v1/webhooks/{id}/deliveries"),
}

#: Routes docs/API.md documents that the OpenAPI document leaves out on purpose
#: (``/metrics`` answers Prometheus text). The check fails if one appears in the document.
NOT_IN_OPENAPI = frozenset({"metrics"})
