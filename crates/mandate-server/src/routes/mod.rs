//! The REST routes (docs/API.md; `GET /v1/openapi.json`): the route table here, the
//! handlers by area in the submodules (`transactions` runs the send pipeline) and in
//! the modules of their own subsystems (signatures, approvals, freezes, webhooks).

mod admin;
pub(crate) mod agents;
mod ops;
pub(crate) mod sessions;
mod subaccounts;
mod transactions;
pub(crate) mod wallets;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use mandate_core::ErrorCode;

use crate::error::ApiError;
use crate::request::MAX_BODY_BYTES;
use crate::state::AppState;
use crate::{actions, approvals, dev, freeze, openapi, webhooks};

/// The router of the whole API.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(admin::health))
        .route("/v1/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/v1/admin/login", post(admin::login))
        .route("/v1/operator-keys", get(admin::list_operator_keys).post(admin::create_operator_key))
        .route("/v1/operator-keys/{id}/revoke", post(admin::revoke_operator_key))
        .route("/v1/wallets", get(wallets::list_wallets).post(wallets::register_wallet))
        .route("/v1/wallets/{id}", get(wallets::show_wallet))
        .route("/v1/wallets/{id}/balance", get(wallets::balance))
        .route("/v1/wallets/{id}/policy", get(wallets::show_policy).put(wallets::set_policy))
        .route("/v1/wallets/{id}/transactions", get(wallets::list_transactions).post(transactions::send))
        .route("/v1/wallets/{id}/transactions/dry-run", post(actions::dry_run))
        .route("/v1/wallets/{id}/contract-calls", post(transactions::contract_call))
        .route("/v1/wallets/{id}/sign-typed-data", post(actions::sign_typed_data))
        .route("/v1/wallets/{id}/sign-message", post(actions::sign_message))
        .route("/v1/wallets/{id}/sign-hash", post(actions::sign_hash))
        .route("/v1/wallets/{id}/policy/evaluate", post(actions::evaluate_action))
        .route("/v1/wallets/{id}/policy/summary", get(wallets::policy_summary))
        .route("/v1/wallets/{id}/dev/fund", post(dev::fund))
        .route("/v1/wallets/{id}/freeze", post(freeze::freeze_handler))
        .route("/v1/wallets/{id}/unfreeze", get(freeze::unfreeze_message).post(freeze::unfreeze))
        .route("/v1/freeze", post(freeze::freeze_all))
        .route("/v1/wallets/{id}/owners", get(approvals::list_owners).post(approvals::add_owner))
        .route("/v1/wallets/{id}/owners/quorum", put(approvals::set_quorum))
        .route("/v1/wallets/{id}/agents", get(agents::list).post(agents::register))
        .route("/v1/wallets/{id}/subaccounts", get(subaccounts::list).post(subaccounts::create))
        .route("/v1/wallets/{id}/x402/pay", post(crate::x402::pay))
        .route("/v1/agents/{address}/revoke", post(agents::revoke))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/owner/approvals/{id}", get(approvals::owner_view))
        .route("/v1/owner/wallets/{id}/unfreeze", get(freeze::owner_unfreeze_view))
        .route("/v1/transactions/{id}/cancel", post(transactions::cancel))
        .route("/v1/transactions/{id}/speed-up", post(transactions::speed_up))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::remove))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/transactions/{id}", get(wallets::show_transaction))
        .route("/v1/sessions", get(sessions::list_sessions).post(sessions::create_session))
        .route("/v1/sessions/renew", post(sessions::renew_session))
        .route("/v1/session", get(sessions::current_session))
        .route("/v1/sessions/{id}/revoke", post(sessions::revoke_session))
        .route("/v1/audit/verify", get(admin::verify_audit))
        .route("/v1/audit/tail", get(admin::audit_tail))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this endpoint")
        })
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::agent_auth::verify_agent_requests))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), ops::count_requests))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
