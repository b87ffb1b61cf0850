//! Signed webhooks: events written to a delivery log (in the database) in the same
//! transaction as the change they report (an outbox), delivered by a background
//! dispatcher with retries, exponential backoff and jitter. Each
//! webhook receives its events in the order they were recorded, at least once.
//!
//! Every POST carries `mandate-webhook-id` (the event id), `mandate-webhook-timestamp`
//! (unix seconds) and `mandate-webhook-signature: v1=<hex HMAC-SHA256(secret,
//! "<timestamp>.<body>")>` (docs/WEBHOOKS.md).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hmac::{Hmac, Mac};
use mandate_core::ErrorCode;
use mandate_store::{Attempt, Delivery, OutboxEvent, WebhookRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::audit::audit_entry;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::now;
use crate::request::body_bytes;
use crate::request::parse_json;
use crate::state::AppState;
use crate::task::blocking;

/// The events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A transaction is held for an owner's approval.
    ApprovalRequested,
    /// An owner approved or denied, or the approval expired or was cancelled.
    ApprovalResolved,
    /// A transaction was mined with success.
    TransactionConfirmed,
    /// A transaction reverted, or could not be signed or broadcast.
    TransactionFailed,
    /// The policy denied a request.
    PolicyDenied,
    /// A notify-tier transaction was sent.
    PolicyNotify,
    /// A wallet was frozen.
    WalletFrozen,
    /// A wallet was unfrozen.
    WalletUnfrozen,
}

impl Event {
    /// Every event, in documentation order.
    pub(crate) const ALL: [Event; 8] = [
        Event::ApprovalRequested,
        Event::ApprovalResolved,
        Event::TransactionConfirmed,
        Event::TransactionFailed,
        Event::PolicyDenied,
        Event::PolicyNotify,
        Event::WalletFrozen,
        Event::WalletUnfrozen,
    ];

    /// The event's name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::ApprovalRequested => "approval.requested",
            Event::ApprovalResolved => "approval.resolved",
            Event::TransactionConfirmed => "transaction.confirmed",
            Event::TransactionFailed => "transaction.failed",
            Event::PolicyDenied => "policy.denied",
            Event::PolicyNotify => "policy.notify",
            Event::WalletFrozen => "wallet.frozen",
            Event::WalletUnfrozen => "wallet.unfrozen",
        }
    }
}

/// `event` with `data` as it goes into the outbox: the caller hands it to the store
/// with the change it reports (`AuditEntry::with_event`, or a store call's announce
/// step), so both are written in one database transaction or neither is.
pub(crate) fn event(event: Event, data: Value) -> OutboxEvent {
    let id = format!("evt_{}", hex::encode(rand::random::<[u8; 12]>()));
    let body = json!({"id": id, "type": event.name(), "created_at": now(), "data": data}).to_string();
    OutboxEvent { name: event.name().to_string(), id, body }
}

/// Wakes the dispatcher after a change that wrote events (it also polls).
pub(crate) fn wake(state: &AppState) {
    state.webhook_wake.notify_one();
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub(crate) fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(), // HMAC takes keys of any length
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Attempts before a delivery is given up (about 2 h of backoff in all).
pub(crate) const MAX_ATTEMPTS: u64 = 15;
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: u64 = 600;

/// The wait after the `attempts`-th failed attempt: 1 s doubling up to 10 min, plus
/// up to half of it again as random jitter (so receivers coming back are not
/// stampeded). `None` once the attempts are used up.
pub(crate) fn backoff_secs(attempts: u64, jitter: f64) -> Option<u64> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let base = 1u64.checked_shl(u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX)).unwrap_or(u64::MAX);
    let base = base.min(MAX_BACKOFF_SECS);
    let extra = (base as f64 * jitter.clamp(0.0, 1.0) / 2.0) as u64;
    Some(base + extra)
}

/// The dispatcher loop (runs until the daemon stops).
pub(crate) async fn run_dispatcher(state: Arc<AppState>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!("webhooks: cannot build the HTTP client: {error}");
            return;
        }
    };
    loop {
        let store = state.store.clone();
        match blocking(move || Ok(store.due_deliveries(now())?)).await {
            Ok(due) => {
                for (delivery, url, sealed) in due {
                    match state.sealer.open(&delivery.webhook_id, &sealed) {
                        Ok(secret) => deliver(&state, &client, delivery, &url, &secret).await,
                        Err(error) => tracing::warn!("webhooks: {error}"),
                    }
                }
            }
            Err(error) => tracing::warn!("webhooks: {error}"),
        }
        tokio::select! {
            _ = state.webhook_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn deliver(state: &AppState, client: &reqwest::Client, delivery: Delivery, url: &str, secret: &str) {
    let timestamp = now();
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("mandate-webhook-id", &delivery.event_id)
        .header("mandate-webhook-timestamp", timestamp.to_string())
        .header("mandate-webhook-signature", signature(secret, timestamp, &delivery.body))
        .body(delivery.body.clone());
    let attempts = delivery.attempts + 1;
    let failed = |status: Option<u16>, error: String| Attempt::Failed {
        status,
        error,
        retry_at: backoff_secs(attempts, rand::random::<f64>()).map(|wait| now() + wait),
    };
    let attempt = match request.send().await {
        Ok(response) if response.status().is_success() => Attempt::Delivered { status: response.status().as_u16() },
        Ok(response) => failed(Some(response.status().as_u16()), format!("HTTP {}", response.status().as_u16())),
        // Without the URL: it may carry a token in its path or query.
        Err(error) => failed(None, error.without_url().to_string()),
    };
    if let Err(error) = state.store.record_attempt(delivery.id, &attempt, now()) {
        tracing::warn!("webhooks: could not record delivery {}: {error}", delivery.id);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhook {
    url: String,
    events: Vec<String>,
}

/// `POST /v1/webhooks` `{"url", "events"}` (operator) → `201` with the secret, shown once.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require_operator()?;
    let request: CreateWebhook = parse_json(&body_bytes(body)?)?;
    let url = mandate_chain::rpc::check_outbound_url(&request.url)?;
    if request.events.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidInput, "events: name at least one event"));
    }
    let mut events = Vec::new();
    for name in &request.events {
        let event = Event::ALL.iter().find(|e| e.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("events: unknown event {name:?}; known: {}", known.join(", ")),
            )
        })?;
        if !events.contains(&event.name().to_string()) {
            events.push(event.name().to_string());
        }
    }
    let webhook = WebhookRecord {
        id: format!("whk_{}", hex::encode(rand::random::<[u8; 10]>())),
        url: url.to_string(),
        events,
        created_at: now(),
    };
    let secret = zeroize::Zeroizing::new(format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>())));
    let entry = audit_entry(
        &principal.actor(),
        "webhook.added",
        None,
        json!({"webhook_id": webhook.id, "origin": url.origin().ascii_serialization(), "events": webhook.events}),
    );
    let store = state.store.clone();
    let (record, sealed) = (webhook.clone(), state.sealer.seal(&webhook.id, &secret)?);
    blocking(move || Ok(store.add_webhook(&record, &sealed, entry)?)).await?;
    let mut body = json!(webhook);
    if let Some(map) = body.as_object_mut() {
        map.insert("secret".into(), json!(secret.as_str()));
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v1/webhooks` (operator): without secrets.
pub(crate) async fn list(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    Ok(Json(json!({"webhooks": state.store.webhooks()?})))
}

fn known(state: &AppState, id: &str) -> ApiResult<WebhookRecord> {
    state.store.webhook(id)?.ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no webhook {id}")))
}

/// `DELETE /v1/webhooks/{id}` (operator): its pending deliveries stop.
pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    known(&state, &id)?;
    let entry = audit_entry(&principal.actor(), "webhook.removed", None, json!({"webhook_id": id}));
    let store = state.store.clone();
    let webhook = id.clone();
    let removed = blocking(move || Ok(store.remove_webhook(&webhook, now(), entry)?)).await?;
    Ok(Json(json!({"id": id, "removed": removed})))
}

/// `GET /v1/webhooks/{id}/deliveries` (operator): the delivery log, newest first.
pub(crate) async fn deliveries(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require_operator()?;
    let webhook = known(&state, &id)?;
    Ok(Json(json!({"webhook": webhook, "deliveries": state.store.deliveries(&id, 200)?})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231-style check against an independent computation of the same construction.
        let sig = signature("whsec_test", 1_700_000_000, r#"{"a":1}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(br#"1700000000.{"a":1}"#);
        assert_eq!(sig, format!("v1={}", hex::encode(mac.finalize().into_bytes())));
        assert_ne!(sig, signature("whsec_test", 1_700_000_001, r#"{"a":1}"#));
        assert_ne!(sig, signature("whsec_test", 1_700_000_000, r#"{"a":2}"#));
        assert_ne!(sig, signature("whsec_other", 1_700_000_000, r#"{"a":1}"#));
        // A known vector: HMAC-SHA256(key "key", "1.x").
        assert_eq!(
            signature("key", 1, "x"),
            "v1=".to_string()
                + &hex::encode({
                    let mut m = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
                    m.update(b"1.x");
                    m.finalize().into_bytes()
                })
        );
    }

    #[test]
    fn backoff_doubles_caps_jitters_and_gives_up() {
        assert_eq!(backoff_secs(1, 0.0), Some(1));
        assert_eq!(backoff_secs(2, 0.0), Some(2));
        assert_eq!(backoff_secs(5, 0.0), Some(16));
        assert_eq!(backoff_secs(12, 0.0), Some(600), "capped at 10 min");
        assert_eq!(backoff_secs(12, 1.0), Some(900), "jitter adds up to half");
        assert_eq!(backoff_secs(4, 0.5), Some(10));
        assert_eq!(backoff_secs(MAX_ATTEMPTS, 0.0), None);
        let total: u64 = (1..MAX_ATTEMPTS).filter_map(|n| backoff_secs(n, 0.0)).sum();
        assert!((3000..10_000).contains(&total), "{total}");
    }
}
