//! `mandate-client`: the Rust SDK for Mandate's REST API (docs/API.md). One async
//! [`Client`] (reqwest, rustls) with a method per endpoint, typed request bodies
//! ([`requests`]), typed answers ([`types`]) and the daemon's error envelope as a
//! typed [`Error`].
//!
//! ```no_run
//! # async fn demo() -> mandate_client::Result<()> {
//! use mandate_client::{Client, Credential, Secret, Transfer};
//! let token = Secret::from_file(std::path::Path::new("session.token"))?;
//! let client = Client::new("http://127.0.0.1:3100")?.with_credential(Credential::Session(token));
//! let sent = client
//!     .send_transfer("wal_…", &Transfer::native("0x4242424242424242424242424242424242424242", "0.01"))
//!     .await?;
//! println!("{}", sent.id());
//! # Ok(())
//! # }
//! ```
//!
//! Secrets ([`Secret`], [`Credential`]) print `<redacted>` in `Debug` and travel only in
//! headers. The base URL must be `https://`, or `http://` to localhost. Sends carry an
//! `Idempotency-Key` (a fresh random one unless given), so a retry with the same key
//! cannot pay twice.

mod error;
pub mod requests;
mod secret;
pub mod types;
mod url;

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use crate::error::{ApiError, Error, Result, Transport, TransportKind};
pub use crate::requests::{
    ContractCall, CreateOperatorKey, CreateSession, CreateWebhook, Evaluate, SignPayload, Transfer,
};
pub use crate::secret::{Credential, Secret};
pub use crate::types::*;
pub use crate::url::check_base_url;
/// HTTP methods, statuses and URLs, as the client takes and gives them.
pub use reqwest::{Method, StatusCode, Url};

/// The header naming an idempotent send.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// The header the daemon sets on a replayed send.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// Longest idempotency key the daemon takes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// A fresh idempotency key: 128 random bits in hex.
pub fn new_idempotency_key() -> String {
    format!("idem_{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Checks a caller's idempotency key as the daemon will (1 to 128 printable ASCII).
fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidInput(format!(
            "an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
        )));
    }
    Ok(())
}

/// An answer as it came: status, headers and body (for callers that pass envelopes on
/// as they are, like the MCP stdio server, and for tests and benchmarks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// HTTP status.
    pub status: u16,
    /// The headers (names in lower case), in the order they came.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawReply {
    /// The first value of header `name` (any case), if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::UnexpectedReply { status: self.status, message: format!("not JSON: {e}") })
    }
}

/// A request body for [`Client::call`].
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// No body.
    Empty,
    /// A JSON value.
    Json(&'a Value),
    /// Bytes sent as they are, as `application/json`: a document whose exact text the
    /// daemon should judge (a policy document with a duplicate key must be refused, not
    /// silently merged by a parse here).
    Raw(&'a [u8]),
}

/// A request of the caller's making for [`Client::send_raw`], below the typed
/// methods: any method, path, headers, body and time limit, as the client's credential
/// unless it sets `Authorization` itself. For tests and benchmarks that probe the API.
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: Method,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl RawRequest {
    /// `method` on `path_and_query` (beginning with `/`, e.g. `/v1/health?x=1`).
    pub fn new(method: Method, path_and_query: impl Into<String>) -> RawRequest {
        RawRequest { method, path_and_query: path_and_query.into(), headers: Vec::new(), body: None, timeout: None }
    }

    /// Adds a header (also `Host` or `Authorization`, to probe the daemon's checks).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> RawRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `value` as the body, with `Content-Type: application/json`.
    pub fn json(self, value: &Value) -> RawRequest {
        self.header("content-type", "application/json").body(value.to_string().into_bytes())
    }

    /// `bytes` as the body, as they are (set `Content-Type` with [`RawRequest::header`]).
    pub fn body(mut self, bytes: Vec<u8>) -> RawRequest {
        self.body = Some(bytes);
        self
    }

    /// Gives up after `limit` (the client's own limit otherwise).
    pub fn timeout(mut self, limit: Duration) -> RawRequest {
        self.timeout = Some(limit);
        self
    }
}

/// A client of one daemon, acting as one credential.
#[derive(Clone, Debug)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    credential: Option<Credential>,
}

/// One answer before decoding.
struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    replayed: bool,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

impl Client {
    /// A client of the daemon at `base_url` (`https://…`, or `http://` to localhost),
    /// without a credential yet. Redirects are not followed (one could carry the
    /// token elsewhere); connecting times out after 5 s, a call after 180 s.
    pub fn new(base_url: &str) -> Result<Client> {
        Client::with_timeouts(base_url, Duration::from_secs(5), Duration::from_secs(180))
    }

    /// Like [`Client::new`] with other limits for connecting and for a whole call.
    pub fn with_timeouts(base_url: &str, connect: Duration, call: Duration) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(call)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::InvalidInput(format!("HTTP client: {e}")))?;
        Client::with_http(base_url, http)
    }

    /// Like [`Client::new`] with the caller's reqwest client (timeouts, proxies). It
    /// should not follow redirects.
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Client> {
        Ok(Client { base: check_base_url(base_url)?, http, credential: None })
    }

    /// The same daemon as `credential`.
    pub fn with_credential(&self, credential: Credential) -> Client {
        Client { base: self.base.clone(), http: self.http.clone(), credential: Some(credential) }
    }

    /// The daemon's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Logs the operator in with the master password (HTTP Basic, user `operator`;
    /// never in a body or URL). Use the token with [`Credential::Admin`], or
    /// [`Client::login_operator`] for both steps.
    pub async fn login(&self, password: &Secret) -> Result<Login> {
        let url = self.url(&["v1", "admin", "login"])?;
        let request = self.http.post(url).header(AUTHORIZATION, basic_authorization(password.expose().as_bytes())?);
        self.decode(self.execute(request, false).await?)
    }

    /// A client acting as the operator, logged in with the master password.
    pub async fn login_operator(&self, password: &Secret) -> Result<Client> {
        let login = self.login(password).await?;
        Ok(self.with_credential(Credential::Admin(login.token)))
    }

    // --- health ---

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health> {
        self.get(&["v1", "health"], &[]).await
    }

    /// `GET /v1/openapi.json`.
    pub async fn openapi(&self) -> Result<Value> {
        self.get(&["v1", "openapi.json"], &[]).await
    }

    // --- wallets ---

    /// `GET /v1/wallets` (an agent sees its own).
    pub async fn wallets(&self) -> Result<Vec<Wallet>> {
        Ok(self.get::<types::Wallets>(&["v1", "wallets"], &[]).await?.wallets)
    }

    /// `GET /v1/wallets/{id}`.
    pub async fn wallet(&self, wallet_id: &str) -> Result<WalletDetail> {
        self.get(&["v1", "wallets", wallet_id], &[]).await
    }

    /// `GET /v1/wallets/{id}/balance[?token=…]`: native, or a token by symbol or address.
    pub async fn balance(&self, wallet_id: &str, token: Option<&str>) -> Result<Balance> {
        let query: Vec<(&str, String)> = token.map(|token| ("token", token.to_string())).into_iter().collect();
        self.get(&["v1", "wallets", wallet_id, "balance"], &query).await
    }

    // --- policy ---

    /// `GET /v1/wallets/{id}/policy`.
    pub async fn policy(&self, wallet_id: &str) -> Result<PolicyShown> {
        self.get(&["v1", "wallets", wallet_id, "policy"], &[]).await
    }

    /// `PUT /v1/wallets/{id}/policy` with `document` (docs/POLICY.md).
    pub async fn set_policy(&self, wallet_id: &str, document: &Value) -> Result<PolicyVersion> {
        let url = self.url(&["v1", "wallets", wallet_id, "policy"])?;
        self.decode(self.execute(self.http.put(url).json(document), true).await?)
    }

    /// `GET /v1/wallets/{id}/policy/summary`.
    pub async fn policy_summary(&self, wallet_id: &str) -> Result<PolicySummary> {
        self.get(&["v1", "wallets", wallet_id, "policy", "summary"], &[]).await
    }

    /// `POST /v1/wallets/{id}/policy/evaluate[?simulate=true]`: the decision, nothing signed.
    pub async fn evaluate(&self, wallet_id: &str, action: &Evaluate, simulate: bool) -> Result<Evaluation> {
        let query: Vec<(&str, String)> = if simulate { vec![("simulate", "true".into())] } else { Vec::new() };
        self.post(&["v1", "wallets", wallet_id, "policy", "evaluate"], &query, Some(&action.body())).await
    }

    // --- transactions ---

    /// `POST /v1/wallets/{id}/transactions` with a fresh idempotency key.
    pub async fn send_transfer(&self, wallet_id: &str, transfer: &Transfer) -> Result<SendResponse> {
        self.send_transfer_with_key(wallet_id, transfer, &new_idempotency_key()).await
    }

    /// `POST /v1/wallets/{id}/transactions` with the caller's idempotency key: the same
    /// key again returns the first transaction (`replayed`), never a second payment.
    pub async fn send_transfer_with_key(
        &self,
        wallet_id: &str,
        transfer: &Transfer,
        key: &str,
    ) -> Result<SendResponse> {
        self.send(&["v1", "wallets", wallet_id, "transactions"], transfer, key).await
    }

    /// `POST /v1/wallets/{id}/contract-calls` with a fresh idempotency key.
    pub async fn contract_call(&self, wallet_id: &str, call: &ContractCall) -> Result<SendResponse> {
        self.contract_call_with_key(wallet_id, call, &new_idempotency_key()).await
    }

    /// `POST /v1/wallets/{id}/contract-calls` with the caller's idempotency key.
    pub async fn contract_call_with_key(
        &self,
        wallet_id: &str,
        call: &ContractCall,
        key: &str,
    ) -> Result<SendResponse> {
        self.send(&["v1", "wallets", wallet_id, "contract-calls"], call, key).await
    }

    /// `POST /v1/wallets/{id}/transactions/dry-run`: the decision, nothing reserved or signed.
    pub async fn dry_run(&self, wallet_id: &str, transfer: &Transfer) -> Result<Evaluation> {
        self.post(&["v1", "wallets", wallet_id, "transactions", "dry-run"], &[], Some(transfer)).await
    }

    /// `GET /v1/wallets/{id}/transactions[?limit=N]`, newest first.
    pub async fn transactions(&self, wallet_id: &str, limit: Option<u32>) -> Result<Vec<Transaction>> {
        let query: Vec<(&str, String)> = limit.map(|n| ("limit", n.to_string())).into_iter().collect();
        Ok(self.get::<types::Transactions>(&["v1", "wallets", wallet_id, "transactions"], &query).await?.transactions)
    }

    /// `GET /v1/transactions/{id}`.
    pub async fn transaction(&self, transaction_id: &str) -> Result<Transaction> {
        self.get(&["v1", "transactions", transaction_id], &[]).await
    }

    // --- signatures ---

    /// `POST /v1/wallets/{id}/sign-typed-data` (`eth_signTypedData_v4` JSON).
    pub async fn sign_typed_data(&self, wallet_id: &str, typed_data: &Value) -> Result<SignatureResult> {
        let body = serde_json::json!({"typed_data": typed_data});
        self.post(&["v1", "wallets", wallet_id, "sign-typed-data"], &[], Some(&body)).await
    }

    /// `POST /v1/wallets/{id}/sign-message`: an EIP-191 text message.
    pub async fn sign_message(&self, wallet_id: &str, message: &str) -> Result<SignatureResult> {
        let body = serde_json::json!({"message": message});
        self.post(&["v1", "wallets", wallet_id, "sign-message"], &[], Some(&body)).await
    }

    /// `POST /v1/wallets/{id}/sign-message`: an EIP-191 message given as `0x` hex.
    pub async fn sign_message_hex(&self, wallet_id: &str, message_hex: &str) -> Result<SignatureResult> {
        let body = serde_json::json!({"message_hex": message_hex});
        self.post(&["v1", "wallets", wallet_id, "sign-message"], &[], Some(&body)).await
    }

    /// `POST /v1/wallets/{id}/sign-hash`: a bare 32-byte hash (only with a `raw_hash` rule).
    pub async fn sign_hash(&self, wallet_id: &str, hash: &str) -> Result<SignatureResult> {
        let body = serde_json::json!({"hash": hash});
        self.post(&["v1", "wallets", wallet_id, "sign-hash"], &[], Some(&body)).await
    }

    // --- sessions ---

    /// `POST /v1/sessions` (operator): the token is in the answer, once.
    pub async fn create_session(&self, request: &CreateSession) -> Result<SessionCreated> {
        self.post(&["v1", "sessions"], &[], Some(request)).await
    }

    /// `GET /v1/sessions[?wallet_id=…]` (operator).
    pub async fn sessions(&self, wallet_id: Option<&str>) -> Result<Vec<Session>> {
        let query: Vec<(&str, String)> = wallet_id.map(|id| ("wallet_id", id.to_string())).into_iter().collect();
        Ok(self.get::<types::Sessions>(&["v1", "sessions"], &query).await?.sessions)
    }

    /// `POST /v1/sessions/renew` (the calling session).
    pub async fn renew_session(&self) -> Result<Session> {
        self.post::<Session, Value>(&["v1", "sessions", "renew"], &[], None).await
    }

    /// `POST /v1/sessions/{id}/revoke` (operator).
    pub async fn revoke_session(&self, session_id: &str) -> Result<SessionRevoked> {
        self.post::<SessionRevoked, Value>(&["v1", "sessions", session_id, "revoke"], &[], None).await
    }

    /// `GET /v1/session`: the calling session and its band.
    pub async fn current_session(&self) -> Result<CurrentSession> {
        self.get(&["v1", "session"], &[]).await
    }

    // --- approvals ---

    /// `GET /v1/approvals[?wallet=…]`: held transactions.
    pub async fn approvals(&self, wallet_id: Option<&str>) -> Result<Vec<ApprovalItem>> {
        let query: Vec<(&str, String)> = wallet_id.map(|id| ("wallet", id.to_string())).into_iter().collect();
        Ok(self.get::<types::Held>(&["v1", "approvals"], &query).await?.held)
    }

    /// `GET /v1/approvals/{id}`.
    pub async fn approval(&self, transaction_id: &str) -> Result<ApprovalItem> {
        self.get(&["v1", "approvals", transaction_id], &[]).await
    }

    /// `POST /v1/approvals/{id}/approve` with an owner's signature
    /// (`ed25519:<key>:<sig>` or `eip191:<address>:0x…`). The signature is the
    /// credential: no bearer token is sent.
    pub async fn approve(&self, transaction_id: &str, signature: &str) -> Result<Transaction> {
        self.owner_decision(&["v1", "approvals", transaction_id, "approve"], signature).await
    }

    /// `POST /v1/approvals/{id}/deny` with an owner's signature (also cancels a delayed item).
    pub async fn deny(&self, transaction_id: &str, signature: &str) -> Result<Transaction> {
        self.owner_decision(&["v1", "approvals", transaction_id, "deny"], signature).await
    }

    /// `POST /v1/transactions/{id}/cancel`: cancels a held item before it runs.
    pub async fn cancel(&self, transaction_id: &str) -> Result<Transaction> {
        self.post::<Transaction, Value>(&["v1", "transactions", transaction_id, "cancel"], &[], None).await
    }

    // --- freeze ---

    /// `POST /v1/wallets/{id}/freeze`.
    pub async fn freeze(&self, wallet_id: &str, reason: Option<&str>) -> Result<FreezeResult> {
        let body = freeze_body(reason);
        self.post(&["v1", "wallets", wallet_id, "freeze"], &[], Some(&body)).await
    }

    /// `POST /v1/freeze`: every wallet (operator).
    pub async fn freeze_all(&self, reason: Option<&str>) -> Result<Vec<FreezeResult>> {
        let body = freeze_body(reason);
        Ok(self.post::<types::FreezeAll, Value>(&["v1", "freeze"], &[], Some(&body)).await?.wallets)
    }

    // --- audit ---

    /// `GET /v1/audit/verify[?anchor_seq=N&anchor_hash=H]`: the chain, and with the
    /// cosigner's anchor `(seq, hash)` that the trail still holds it.
    pub async fn verify_audit(&self, anchor: Option<(u64, &str)>) -> Result<AuditVerify> {
        let query: Vec<(&str, String)> = match anchor {
            Some((seq, hash)) => vec![("anchor_seq", seq.to_string()), ("anchor_hash", hash.to_string())],
            None => Vec::new(),
        };
        self.get(&["v1", "audit", "verify"], &query).await
    }

    /// `GET /v1/audit/tail?n=N`: the last records.
    pub async fn audit_tail(&self, n: u32) -> Result<Vec<AuditRecord>> {
        Ok(self.get::<types::Records>(&["v1", "audit", "tail"], &[("n", n.to_string())]).await?.records)
    }

    // --- webhooks ---

    /// `POST /v1/webhooks`: the secret is in the answer, once.
    pub async fn add_webhook(&self, request: &CreateWebhook) -> Result<WebhookCreated> {
        self.post(&["v1", "webhooks"], &[], Some(request)).await
    }

    /// `GET /v1/webhooks`.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.get::<types::Webhooks>(&["v1", "webhooks"], &[]).await?.webhooks)
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn remove_webhook(&self, webhook_id: &str) -> Result<WebhookRemoved> {
        let url = self.url(&["v1", "webhooks", webhook_id])?;
        self.decode(self.execute(self.http.delete(url), true).await?)
    }

    /// `GET /v1/webhooks/{id}/deliveries`, newest first.
    pub async fn deliveries(&self, webhook_id: &str) -> Result<DeliveryList> {
        self.get(&["v1", "webhooks", webhook_id, "deliveries"], &[]).await
    }

    // --- operator keys ---

    /// `POST /v1/operator-keys`: the key is in the answer, once.
    pub async fn create_operator_key(&self, request: &CreateOperatorKey) -> Result<OperatorKeyCreated> {
        self.post(&["v1", "operator-keys"], &[], Some(request)).await
    }

    /// `GET /v1/operator-keys` (never the keys).
    pub async fn operator_keys(&self) -> Result<Vec<OperatorKey>> {
        Ok(self.get::<types::OperatorKeys>(&["v1", "operator-keys"], &[]).await?.operator_keys)
    }

    /// `POST /v1/operator-keys/{id}/revoke`.
    pub async fn revoke_operator_key(&self, key_id: &str) -> Result<OperatorKeyRevoked> {
        self.post::<OperatorKeyRevoked, Value>(&["v1", "operator-keys", key_id, "revoke"], &[], None).await
    }

    // --- raw ---

    /// Any request, as the client's credential: `path_and_query` starts with `/`
    /// (e.g. `/v1/wallets/wal_…/balance?token=USDC`). The answer is not decoded, so an
    /// error envelope can be passed on as it is.
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<RawReply> {
        let url = url::join_raw(&self.base, path_and_query)?;
        let mut request = self.http.request(method, url);
        if let Some(key) = idempotency_key {
            // Not checked here: the daemon's refusal is the answer passed on.
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = self.execute(request, true).await?;
        Ok(RawReply { status: reply.status.as_u16(), headers: reply.headers, body: reply.body })
    }

    /// `method` on the endpoint named by `segments` (each percent-encoded, so an id
    /// cannot add a path) with `query`, as the client's credential: the answer's JSON
    /// (`{}` for an empty body), or the daemon's error envelope as a typed [`Error`].
    /// For endpoints without a method of their own here, and for callers that show
    /// the answer as it came (the CLI).
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Value> {
        let mut url = self.url(segments)?;
        url::set_query(&mut url, query);
        let mut request = self.http.request(method, url);
        match body {
            Body::Empty => {}
            Body::Json(value) => request = request.json(value),
            Body::Raw(bytes) => request = request.header(CONTENT_TYPE, "application/json").body(bytes.to_vec()),
        }
        let reply = self.execute(request, true).await?;
        if reply.status.is_success() && reply.body.is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        self.decode(reply)
    }

    /// Sends a request of the caller's making ([`RawRequest`]); the answer as it came,
    /// whatever its status.
    pub async fn send_raw(&self, raw: RawRequest) -> Result<RawReply> {
        let url = url::join_raw(&self.base, &raw.path_and_query)?;
        let mut request = self.http.request(raw.method, url);
        let mut own_authorization = false;
        for (name, value) in &raw.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::InvalidInput(format!("{name:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| Error::InvalidInput(format!("the value of {name} is not a header value")))?;
            if name == AUTHORIZATION {
                own_authorization = true;
                value.set_sensitive(true);
            }
            request = request.header(name, value);
        }
        if let Some(body) = raw.body {
            request = request.body(body);
        }
        if let Some(limit) = raw.timeout {
            request = request.timeout(limit);
        }
        let reply = self.execute(request, !own_authorization).await?;
        Ok(RawReply { status: reply.status.as_u16(), headers: reply.headers, body: reply.body })
    }

    // --- plumbing ---

    fn url(&self, segments: &[&str]) -> Result<Url> {
        url::endpoint(&self.base, segments)
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)]) -> Result<T> {
        let mut url = self.url(segments)?;
        url::set_query(&mut url, query);
        self.decode(self.execute(self.http.get(url), true).await?)
    }

    async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let mut url = self.url(segments)?;
        url::set_query(&mut url, query);
        let mut request = self.http.post(url);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.decode(self.execute(request, true).await?)
    }

    async fn send<B: Serialize + ?Sized>(&self, segments: &[&str], body: &B, key: &str) -> Result<SendResponse> {
        check_idempotency_key(key)?;
        let url = self.url(segments)?;
        let request = self.http.post(url).header(IDEMPOTENCY_KEY_HEADER, key).json(body);
        let reply = self.execute(request, true).await?;
        let replayed = reply.replayed;
        let result = if reply.status == StatusCode::ACCEPTED {
            SendResult::Held(Box::new(self.decode(reply)?))
        } else {
            SendResult::Sent(Box::new(self.decode(reply)?))
        };
        Ok(SendResponse { result, idempotency_key: key.to_string(), replayed })
    }

    async fn owner_decision(&self, segments: &[&str], signature: &str) -> Result<Transaction> {
        let url = self.url(segments)?;
        let request = self.http.post(url).json(&serde_json::json!({"signature": signature}));
        self.decode(self.execute(request, false).await?)
    }

    /// Sends `request`, with the credential when `authenticated`: a bearer token, or
    /// an agent key's signature over this exact request.
    async fn execute(&self, mut request: RequestBuilder, authenticated: bool) -> Result<Reply> {
        let mut agent = None;
        if authenticated {
            match &self.credential {
                Some(Credential::Agent { key, wallet }) => agent = Some((key.clone(), wallet.clone())),
                Some(credential) => {
                    if let Some(token) = credential.token() {
                        let text = zeroize::Zeroizing::new(format!("Bearer {}", token.expose()));
                        let mut value = HeaderValue::from_str(&text)
                            .map_err(|_| Error::InvalidInput("the credential is not a valid header value".into()))?;
                        value.set_sensitive(true);
                        request = request.header(AUTHORIZATION, value);
                    }
                }
                None => {}
            }
        }
        let mut request = request.build().map_err(|e| Error::InvalidInput(format!("building the request: {e}")))?;
        if let Some((key, wallet)) = agent {
            self.sign_as_agent(&mut request, &key, &wallet)?;
        }
        let response = self.http.execute(request).await.map_err(|e| Error::Unreachable(Transport::from_reqwest(e)))?;
        let status = response.status();
        let headers = response.headers();
        let replayed = headers.get(REPLAYED_HEADER).and_then(|v| v.to_str().ok()) == Some("true");
        let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        let headers = headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let body = response.bytes().await.map_err(|e| Error::Unreachable(Transport::from_reqwest(e)))?;
        Ok(Reply { status, headers, replayed, retry_after, body: body.to_vec() })
    }

    /// Adds the three agent headers: the key's address, a nonce (milliseconds, never
    /// repeated by this client) and the signature over method, path with query, body,
    /// wallet and nonce.
    fn sign_as_agent(
        &self,
        request: &mut reqwest::Request,
        key: &mandate_core::agent::AgentKey,
        wallet: &str,
    ) -> Result<()> {
        let body = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default().to_vec();
        let url = request.url();
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let nonce = self.next_agent_nonce();
        let signature = key
            .sign_request(request.method().as_str(), &path, &body, wallet, nonce)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let headers = request.headers_mut();
        let value = |text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| Error::InvalidInput("an agent header is not a header value".into()))
        };
        headers.insert("mandate-agent", value(key.address().to_checksum(None))?);
        headers.insert("mandate-agent-nonce", value(nonce.to_string())?);
        headers.insert("mandate-agent-signature", value(signature)?);
        Ok(())
    }

    /// The current time in milliseconds, above every nonce this process handed out.
    fn next_agent_nonce(&self) -> u64 {
        static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut last = LAST.load(std::sync::atomic::Ordering::Relaxed);
        loop {
            let next = now.max(last.saturating_add(1));
            match LAST.compare_exchange(
                last,
                next,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    fn decode<T: DeserializeOwned>(&self, reply: Reply) -> Result<T> {
        let status = reply.status.as_u16();
        if !reply.status.is_success() {
            return Err(error::from_reply(status, reply.retry_after, &reply.body));
        }
        serde_json::from_slice(&reply.body).map_err(|e| Error::UnexpectedReply { status, message: e.to_string() })
    }
}

/// `Authorization: Basic base64("operator:" + password)`, built in buffers that are
/// wiped afterwards and marked sensitive.
fn basic_authorization(password: &[u8]) -> Result<HeaderValue> {
    use base64::Engine;
    const USER: &[u8] = b"operator:";
    // Exact capacities: no reallocation leaves a copy of the secret behind.
    let mut credentials = zeroize::Zeroizing::new(Vec::with_capacity(USER.len() + password.len()));
    credentials.extend_from_slice(USER);
    credentials.extend_from_slice(password);
    let encoded_len = base64::encoded_len(credentials.len(), true)
        .ok_or_else(|| Error::InvalidInput("the master password is too long".into()))?;
    let mut header = zeroize::Zeroizing::new(String::with_capacity("Basic ".len() + encoded_len));
    header.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(credentials.as_slice(), &mut header);
    let mut value = HeaderValue::from_str(&header)
        .map_err(|_| Error::InvalidInput("the login header could not be built".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn freeze_body(reason: Option<&str>) -> Value {
    match reason {
        Some(reason) => serde_json::json!({"reason": reason}),
        None => serde_json::json!({}),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_login_header_is_basic_and_sensitive() {
        use base64::Engine;
        let value = basic_authorization(b"correct horse").unwrap();
        assert!(value.is_sensitive());
        let text = value.to_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(text.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(decoded, b"operator:correct horse");
        assert!(!format!("{value:?}").contains(text), "a sensitive header's Debug hides it");
    }

    #[test]
    fn idempotency_keys_are_fresh_and_valid() {
        let (a, b) = (new_idempotency_key(), new_idempotency_key());
        assert_ne!(a, b);
        assert!(check_idempotency_key(&a).is_ok());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key("has space").is_err());
        assert!(check_idempotency_key(&"k".repeat(129)).is_err());
    }
}
