//! Operations: the readiness check (`GET /v1/ready`: the database, the node and the
//! cosigner reachable), Prometheus metrics (`GET /metrics`, an operator credential)
//! and the middleware that counts requests by route template.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::task::blocking;

/// Counts every routed request by its route template, and stamps its arrival for
/// the send's `Server-Timing` (middleware).
pub(crate) async fn count_requests(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(crate::timing::RequestStarted(std::time::Instant::now()));
    let method = request.method().as_str().to_string();
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string());
    let response = next.run(request).await;
    if let Some(route) = route {
        state.metrics.count_request(&method, &route, response.status().as_u16());
    }
    response
}

/// `GET /metrics` (an operator credential): Prometheus text format.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Response> {
    principal.require_operator()?;
    let store = state.store.clone();
    let (held, backlog) = blocking(move || Ok(store.queue_depths()?)).await?;
    let body = state.metrics.render(held, backlog);
    Ok(([("content-type", "text/plain; version=0.0.4; charset=utf-8")], body).into_response())
}

/// `GET /v1/ready`: `200` when the database answers, the node serves the daemon's
/// chain and the cosigner accepts a connection; `503` with the failing checks.
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let store = state.store.clone();
    let database = match blocking(move || Ok(store.queue_depths()?)).await {
        Ok(_) => "ok".to_string(),
        Err(error) => error.code.as_str().to_string(),
    };
    // Every chain served: `node` is "ok" when all are, else the first that is not.
    let mut chains = serde_json::Map::new();
    for chain in &state.chains {
        let check = match tokio::time::timeout(Duration::from_secs(3), chain.node.chain_id()).await {
            Ok(Ok(id)) if id == chain.id => "ok".to_string(),
            Ok(Ok(id)) => format!("serves chain {id}, not {}", chain.id),
            Ok(Err(_)) | Err(_) => "unreachable".to_string(),
        };
        chains.insert(chain.name.clone(), json!(check));
    }
    let node = chains.values().filter_map(Value::as_str).find(|check| *check != "ok").unwrap_or("ok").to_string();
    let cosigner = match &state.cosigner_addr {
        None => "not configured".to_string(),
        Some(addr) => {
            let connect = tokio::net::TcpStream::connect(addr.as_str());
            match tokio::time::timeout(Duration::from_secs(3), connect).await {
                Ok(Ok(_)) => "ok".to_string(),
                Ok(Err(_)) | Err(_) => "unreachable".to_string(),
            }
        }
    };
    let ready = database == "ok" && node == "ok" && cosigner != "unreachable";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"ready": ready, "checks": {"database": database, "node": node, "cosigner": cosigner},
                      "chains": chains});
    (status, Json(body)).into_response()
}
