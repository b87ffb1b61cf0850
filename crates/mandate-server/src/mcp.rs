//! `/mcp`: the MCP server of `mandate-mcp` on the daemon, over streamable HTTP.
//! Each request must carry an agent session token; every tool call is a request to
//! the REST router itself, in-process, with that same token — so MCP gets exactly the
//! REST API's authentication, scopes, freeze checks, policy and audit, and nothing more.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use mandate_core::ErrorCode;
use mandate_mcp::{decode_reply, Backend, Credential, RestCall, RestFailure};
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::SESSION_TOKEN_PREFIX;
use crate::error::ApiError;
use crate::request::MAX_BODY_BYTES;

/// The REST router, called in-process.
#[derive(Clone)]
pub(crate) struct InProcess(pub(crate) Router);

impl Backend for InProcess {
    fn call(&self, credential: &Credential, call: RestCall) -> impl Future<Output = Result<Value, RestFailure>> + Send {
        let router = self.0.clone();
        let authorization = HeaderValue::from_str(credential.authorization().as_str()).map(|mut value| {
            value.set_sensitive(true);
            value
        });
        async move {
            let authorization =
                authorization.map_err(|_| RestFailure::Unreachable("the token is not a valid header value".into()))?;
            let mut request =
                Request::builder().method(call.method).uri(&call.path).header(AUTHORIZATION, authorization);
            if let Some(key) = &call.idempotency_key {
                request = request.header("idempotency-key", key);
            }
            let body = match &call.body {
                Some(body) => {
                    request = request.header(CONTENT_TYPE, "application/json");
                    Body::from(body.to_string())
                }
                None => Body::empty(),
            };
            let request = request.body(body).map_err(|e| RestFailure::Unreachable(e.to_string()))?;
            let response = router.oneshot(request).await.map_err(|e| RestFailure::Unreachable(e.to_string()))?;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 16 * MAX_BODY_BYTES)
                .await
                .map_err(|e| RestFailure::Unreachable(e.to_string()))?;
            decode_reply(status.as_u16(), &bytes)
        }
    }
}

/// Only agent session tokens reach the MCP service (operators use REST and the CLI);
/// anything else is `401` with the error envelope. The token's validity is checked by
/// the MCP handler on every request.
async fn require_session_token(request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim().starts_with(SESSION_TOKEN_PREFIX));
    if presented {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        ErrorCode::Unauthenticated,
        "/mcp needs Authorization: Bearer <agent session token> (mnd_sess_…)",
    )
    .into_response();
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `rest` with `/mcp` added. `hosts` are the names accepted in `Host` headers besides
/// the loopback names (the listen address, `--allowed-host`).
pub(crate) fn with_mcp(rest: Router, hosts: Vec<String>) -> Router {
    let service = mandate_mcp::http_service(Arc::new(InProcess(rest.clone())), hosts, MAX_BODY_BYTES);
    let mcp = Router::new().route_service("/mcp", service).layer(axum::middleware::from_fn(require_session_token));
    rest.merge(mcp)
}
