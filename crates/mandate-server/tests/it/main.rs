//! The daemon's HTTP surface in process: `mandate_server::app` over a temporary store,
//! a fake node and a fake signer (one k256 key standing in for the two parties), driven
//! with `tower::ServiceExt::oneshot`. No anvil, no cosigner, no sockets: each test
//! states one behaviour of the send path and the session checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{keccak256, Address, B256};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use mandate_core::policy::Policy;
use mandate_core::WalletId;
use mandate_server::{app, AppState, Signer};
use mandate_store::{AuditEntry, FreezeRecord, SessionRecord, Store, WalletRecord, WebhookRecord};
use mandate_test_support::fakes::{loopback_config, Broadcast, FakeChain, FakeSigner, Signing, CHAIN_ID};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    chain: Arc<FakeChain>,
    signer: Arc<FakeSigner>,
    state: Arc<AppState>,
    wallet: String,
}

fn entry(event: &str) -> AuditEntry {
    AuditEntry {
        actor: "test".into(),
        event: event.into(),
        wallet: None,
        decision: None,
        policy_hash: None,
        details: json!({}),
        events: Vec::new(),
    }
}

impl Harness {
    /// A wallet with `rules` as its policy.
    fn new(rules: Value) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        store.set_meta("master_password_hash", "not used: these tests log in with sessions").unwrap();
        let signer = Arc::new(FakeSigner::new());
        let wallet = WalletId::from_random(rand::random()).to_string();
        let address = signer.address(&wallet.parse().unwrap()).unwrap();
        let record =
            WalletRecord { id: wallet.clone(), name: "w".into(), address, chain_id: CHAIN_ID, created_at: now() };
        store.insert_wallet(&record, entry("wallet.created")).unwrap();
        let document = json!({"version": 1, "rules": rules}).to_string();
        let policy = Policy::parse(&document).unwrap();
        store.set_policy(&wallet, &document, &policy.hash, now(), entry("policy.set")).unwrap();
        let chain = Arc::new(FakeChain::new());
        let config = loopback_config();
        let state = AppState::new(
            store.clone(),
            chain.clone(),
            CHAIN_ID,
            signer.clone(),
            b"a master password for in-process tests",
            config,
        )
        .unwrap();
        Harness { _dir: dir, store, chain, signer, state: Arc::new(state), wallet }
    }

    /// A session token for the wallet with `scopes`, valid until `expires_at`.
    fn session(&self, scopes: &[&str], expires_at: u64) -> String {
        let token = format!("mnd_sess_{}", hex::encode(rand::random::<[u8; 24]>()));
        let record = SessionRecord {
            id: format!("ses_{}", hex::encode(rand::random::<[u8; 8]>())),
            token_hash: hex::encode(Sha256::digest(token.as_bytes())),
            wallet_id: self.wallet.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: now() - 10,
            ttl_secs: 3600,
            expires_at,
            absolute_expires_at: expires_at,
            renewals: 0,
            max_renewals: 0,
            revoked_at: None,
        };
        assert!(self.store.insert_session(&record, entry("session.created")).unwrap());
        token
    }

    fn agent(&self) -> String {
        self.session(&["broadcast"], now() + 3600)
    }

    async fn send(&self, token: &str, amount: &str) -> (StatusCode, Value) {
        let to = Address::repeat_byte(0x42).to_checksum(None);
        let request = Request::post(format!("/v1/wallets/{}/transactions", self.wallet))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({"to": to, "amount": amount}).to_string()))
            .unwrap();
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn spent(&self) -> usize {
        self.store.spends(&self.wallet, 0).unwrap().len()
    }

    fn broadcasts(&self) -> usize {
        self.chain.sent.lock().unwrap().len()
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error envelope: {body}"))
}

fn cap(eth: &str) -> Value {
    json!([{"id": "per-tx", "type": "max_per_tx", "amount": eth}])
}

#[tokio::test]
async fn an_allowed_send_is_signed_broadcast_and_counted() {
    let h = Harness::new(cap("1"));
    let (status, body) = h.send(&h.agent(), "0.5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "submitted", "{body}");
    assert_eq!((h.broadcasts(), h.spent()), (1, 1));
    // The broadcast transaction is the one the hash names.
    let raw = h.chain.sent.lock().unwrap()[0].clone();
    assert_eq!(body["tx_hash"].as_str().unwrap(), format!("{:#x}", keccak256(&raw)));
}

#[tokio::test]
async fn a_send_over_the_policy_is_denied_before_any_signature() {
    let h = Harness::new(cap("1"));
    let (status, body) = h.send(&h.agent(), "1.5").await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "POLICY_DENIED"), "{body}");
    assert_eq!(body["error"]["details"]["rule_id"], "per-tx", "{body}");
    assert_eq!((h.signer.runs.load(Ordering::SeqCst), h.broadcasts(), h.spent()), (0, 0, 0));
}

#[tokio::test]
async fn a_send_in_the_approval_tier_is_held_with_202() {
    let h = Harness::new(json!([
        {"id": "per-tx", "type": "max_per_tx", "amount": "5"},
        {"id": "big", "type": "tiers", "approval_above": "1"}
    ]));
    let (status, body) = h.send(&h.agent(), "2").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!((body["status"].as_str(), body["tier_rules"][0].as_str()), (Some("pending_approval"), Some("big")));
    assert_eq!(h.signer.runs.load(Ordering::SeqCst), 0, "nothing is signed while held");
    assert_eq!(h.spent(), 1, "the held amount is reserved");
}

#[tokio::test]
async fn a_signer_refusal_releases_the_spend_and_a_break_after_the_commit_keeps_it() {
    let h = Harness::new(cap("1"));
    let agent = h.agent();
    *h.signer.mode.lock().unwrap() = Signing::RefuseBeforeCommit;
    let (status, body) = h.send(&agent, "0.5").await;
    assert_eq!(code(&body), "COSIGNER_PER_TX_LIMIT", "{status} {body}");
    assert_eq!(body["error"]["details"]["broadcast"], false, "{body}");
    assert_eq!((h.broadcasts(), h.spent()), (0, 0), "released: nothing was signed");

    *h.signer.mode.lock().unwrap() = Signing::BreakAfterCommit;
    let (_, body) = h.send(&agent, "0.5").await;
    assert_eq!(code(&body), "PEER_UNAVAILABLE", "{body}");
    assert_eq!(body["error"]["details"]["spend_kept"], true, "{body}");
    assert_eq!((h.broadcasts(), h.spent()), (0, 1), "the cosigner may hold a signature: the spend stays");
}

#[tokio::test]
async fn an_unknown_broadcast_outcome_keeps_the_transaction_submitted() {
    let h = Harness::new(cap("1"));
    *h.chain.broadcast.lock().unwrap() = Broadcast::TimeOut;
    let (status, body) = h.send(&h.agent(), "0.5").await;
    assert!(status.is_server_error(), "{status} {body}");
    assert_eq!(body["error"]["details"]["broadcast"], "unknown", "{body}");
    let id = body["error"]["details"]["transaction_id"].as_str().unwrap();
    let tx = h.store.transaction(id).unwrap().unwrap();
    assert_eq!(serde_json::to_value(tx.status).unwrap(), "submitted", "never released: it may be on chain");
    assert_eq!(h.spent(), 1);
}

#[tokio::test]
async fn a_frozen_wallet_signs_nothing() {
    let h = Harness::new(cap("1"));
    let freeze = FreezeRecord {
        wallet_id: h.wallet.clone(),
        frozen_at: now(),
        frozen_by: "operator".into(),
        reason: "test".into(),
    };
    h.store.freeze(&freeze, entry("wallet.frozen")).unwrap();
    let (status, body) = h.send(&h.agent(), "0.1").await;
    assert_eq!(code(&body), "WALLET_FROZEN", "{status} {body}");
    assert_eq!((h.signer.runs.load(Ordering::SeqCst), h.spent()), (0, 0));
}

#[tokio::test]
async fn expired_sessions_and_missing_scopes_are_refused() {
    let h = Harness::new(cap("1"));
    let expired = h.session(&["broadcast"], now() - 1);
    let (status, body) = h.send(&expired, "0.1").await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "SESSION_EXPIRED"), "{body}");
    let reader = h.session(&["read"], now() + 3600);
    let (status, body) = h.send(&reader, "0.1").await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "SCOPE_MISSING"), "{body}");
    let (status, body) = h.send("mnd_sess_not-a-token", "0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!((h.signer.runs.load(Ordering::SeqCst), h.spent()), (0, 0));
}

/// The events a webhook receives, oldest first: `(event, tx_id)`.
fn delivered_events(h: &Harness, webhook: &str) -> Vec<(String, String)> {
    let mut deliveries = h.store.deliveries(webhook, 50).unwrap();
    deliveries.reverse();
    deliveries
        .into_iter()
        .map(|d| {
            let body: Value = serde_json::from_str(&d.body).unwrap();
            assert_eq!(body["type"], d.event, "the body names its event");
            let data = &body["data"];
            let tx = data["tx_id"].as_str().or(data["transaction"]["id"].as_str()).unwrap_or_default();
            (d.event, tx.to_string())
        })
        .collect()
}

#[tokio::test]
async fn each_send_outcome_writes_its_webhook_event_with_the_change() {
    let h = Harness::new(json!([
        {"id": "per-tx", "type": "max_per_tx", "amount": "5"},
        {"id": "big", "type": "tiers", "approval_above": "1"}
    ]));
    let hook = WebhookRecord {
        id: "whk_test".into(),
        url: "https://hooks.example/mandate".into(),
        events: vec!["policy.denied".into(), "approval.requested".into(), "transaction.failed".into()],
        created_at: now(),
    };
    h.store.add_webhook(&hook, "sealed", entry("webhook.added")).unwrap();
    let agent = h.agent();

    let (_, denied) = h.send(&agent, "6").await;
    assert_eq!(code(&denied), "POLICY_DENIED", "{denied}");
    let (status, held) = h.send(&agent, "2").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    *h.signer.mode.lock().unwrap() = Signing::RefuseBeforeCommit;
    let (_, refused) = h.send(&agent, "0.5").await;
    let refused_tx = refused["error"]["details"]["transaction_id"].as_str().unwrap().to_string();
    *h.signer.mode.lock().unwrap() = Signing::Sign;
    let (status, sent) = h.send(&agent, "0.5").await;
    assert_eq!(status, StatusCode::OK, "{sent}");

    let events = delivered_events(&h, "whk_test");
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["policy.denied", "approval.requested", "transaction.failed"], "{events:?}");
    assert!(events[0].1.starts_with("tx_"), "the denial names the request: {events:?}");
    assert_eq!(events[1].1, held["id"].as_str().unwrap());
    assert_eq!(events[2].1, refused_tx, "the failure names the released transaction");
}

#[tokio::test]
async fn a_wallet_is_refused_on_a_chain_with_the_same_id_but_another_genesis() {
    let h = Harness::new(cap("1"));
    let agent = h.agent();
    let (status, body) = h.send(&agent, "0.1").await;
    assert_eq!(status, StatusCode::OK, "the first use binds the wallet to the node's chain: {body}");
    // The node is replaced by a fresh chain with the same id (a restarted dev chain).
    *h.chain.genesis.lock().unwrap() = B256::repeat_byte(0x02);
    let (status, body) = h.send(&agent, "0.1").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "CHAIN_MISMATCH"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("restarted dev chain"), "{body}");
    assert_eq!((h.broadcasts(), h.spent()), (1, 1), "nothing signed or reserved on the other chain");
    // Back on its own chain, it sends again.
    *h.chain.genesis.lock().unwrap() = B256::repeat_byte(0x01);
    assert_eq!(h.send(&agent, "0.1").await.0, StatusCode::OK);
}

impl Harness {
    /// An operator key with `scopes`.
    fn operator(&self, scopes: &[&str]) -> String {
        let token = format!("mnd_op_{}", hex::encode(rand::random::<[u8; 24]>()));
        let record = mandate_store::OperatorKeyRecord {
            id: format!("opk_{}", hex::encode(rand::random::<[u8; 8]>())),
            name: "monitoring".into(),
            key_hash: hex::encode(Sha256::digest(token.as_bytes())),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: now(),
            created_by: "operator".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        assert!(self.store.insert_operator_key(&record, entry("operator_key.created")).unwrap());
        token
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = app(self.state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

/// The value of the sample `name{labels}` in a Prometheus exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_decisions_and_signatures_for_an_operator_only() {
    let h = Harness::new(json!([
        {"id": "per-tx", "type": "max_per_tx", "amount": "5"},
        {"id": "big", "type": "tiers", "approval_above": "1"}
    ]));
    let agent = h.agent();
    assert_eq!(h.send(&agent, "0.5").await.0, StatusCode::OK);
    assert_eq!(h.send(&agent, "0.5").await.0, StatusCode::OK);
    assert_eq!(h.send(&agent, "6").await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.send(&agent, "2").await.0, StatusCode::ACCEPTED);

    let (status, _) = h.get("/metrics", Some(&agent)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an agent session reads no metrics");
    assert_eq!(h.get("/metrics", None).await.0, StatusCode::UNAUTHORIZED);
    let (status, text) = h.get("/metrics", Some(&h.operator(&["read"]))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let route = "route=\"/v1/wallets/{id}/transactions\"";
    assert_eq!(
        sample(&text, &format!("mandate_http_requests_total{{method=\"POST\",{route},status=\"200\"}}")),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, &format!("mandate_http_requests_total{{method=\"POST\",{route},status=\"403\"}}")),
        Some(1.0)
    );
    assert_eq!(sample(&text, "mandate_policy_decisions_total{rule=\"per-tx\",outcome=\"deny\"}"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "mandate_policy_decisions_total{rule=\"allowed\",outcome=\"allow\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "mandate_signing_seconds_count"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "mandate_signing_seconds_bucket{le=\"+Inf\"}"), Some(2.0));
    assert_eq!(sample(&text, "mandate_cosigner_up"), Some(1.0));
    assert_eq!(sample(&text, "mandate_held_transactions"), Some(1.0), "the approval-tier send waits");
    assert!(!text.contains(&h.wallet), "no wallet ids in labels");
}

#[tokio::test]
async fn readiness_names_what_is_not_ready() {
    let h = Harness::new(cap("1"));
    let (status, body) = h.get("/v1/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["node"], "ok");

    // The same daemon with a cosigner address nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let config = loopback_config();
    let state = AppState::new(h.store.clone(), h.chain.clone(), CHAIN_ID, h.signer.clone(), b"pw", config)
        .unwrap()
        .with_cosigner_addr(Some(closed));
    let request = Request::get("/v1/ready").body(Body::empty()).unwrap();
    let response = app(Arc::new(state)).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!((body["ready"].as_bool(), body["checks"]["cosigner"].as_str()), (Some(false), Some("unreachable")));
}

#[tokio::test]
async fn a_send_reports_where_its_time_went_stage_by_stage() {
    let h = Harness::new(cap("1"));
    let to = Address::repeat_byte(0x42).to_checksum(None);
    let request = Request::post(format!("/v1/wallets/{}/transactions", h.wallet))
        .header("authorization", format!("Bearer {}", h.agent()))
        .header("content-type", "application/json")
        .body(Body::from(json!({"to": to, "amount": "0.1"}).to_string()))
        .unwrap();
    let response = app(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let timing = response.headers()["server-timing"].to_str().unwrap().to_string();
    let stages: Vec<&str> = timing.split(", ").map(|entry| entry.split(';').next().unwrap()).collect();
    assert_eq!(stages, ["auth", "decode", "chain", "reserve", "sign", "record", "broadcast"], "{timing}");
    for entry in timing.split(", ") {
        let ms: f64 = entry.split("dur=").nth(1).unwrap().parse().unwrap();
        assert!((0.0..60_000.0).contains(&ms), "{entry}");
    }
}

// ---- Agent keys: requests signed by the agent's own key ----

/// A k256 key and its address.
fn evm_key() -> (k256::ecdsa::SigningKey, Address) {
    let key = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let address = Address::from_public_key(key.verifying_key());
    (key, address)
}

/// r‖s‖v (v = 27/28) over a 32-byte digest, low s.
fn sign_digest(key: &k256::ecdsa::SigningKey, digest: &[u8]) -> Vec<u8> {
    let (sig, recovery) = key.sign_prehash_recoverable(digest).unwrap();
    let sig = sig.normalize_s().unwrap_or(sig);
    let recovery =
        k256::ecdsa::RecoveryId::trial_recovery_from_prehash(key.verifying_key(), digest, &sig).unwrap_or(recovery);
    let mut raw = sig.to_bytes().to_vec();
    raw.push(27 + recovery.to_byte());
    raw
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Agents {
    h: Harness,
    owner: k256::ecdsa::SigningKey,
    owner_address: Address,
}

impl Agents {
    fn new(rules: Value) -> Agents {
        let h = Harness::new(rules);
        let (owner, owner_address) = evm_key();
        let record = mandate_store::OwnerRecord {
            wallet_id: h.wallet.clone(),
            owner_key: format!("evm:{}", owner_address.to_checksum(None)),
            label: "owner".into(),
            created_at: now(),
        };
        h.store.add_owner(&record, entry("owner.added")).unwrap();
        Agents { h, owner, owner_address }
    }

    /// The owner registers `agent` as `name` with `scopes` for `valid_secs`.
    async fn register(&self, agent: Address, name: &str, scopes: &[&str], valid_secs: u64) -> (StatusCode, Value) {
        let registration = mandate_chain::agent::AgentRegistration {
            wallet: self.h.wallet.clone(),
            agent,
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            valid_until: now() + valid_secs,
            nonce: rand::random(),
            policy: None,
        };
        let digest = alloy_primitives::eip191_hash_message(registration.message().as_bytes());
        let signature = format!(
            "eip191:{}:0x{}",
            self.owner_address.to_checksum(None),
            hex::encode(sign_digest(&self.owner, digest.as_slice()))
        );
        let body = json!({"registration": registration, "owner_signature": signature});
        self.raw("POST", &format!("/v1/wallets/{}/agents", self.h.wallet), body.to_string(), &[]).await
    }

    async fn raw(&self, method: &str, path: &str, body: String, headers: &[(&str, String)]) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = app(self.h.state.clone()).oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A request signed by `key` with `nonce`; `sent_body` lets a test change the body after signing.
    async fn signed(
        &self,
        key: &k256::ecdsa::SigningKey,
        method: &str,
        path: &str,
        body: &str,
        nonce: u64,
        sent_body: Option<&str>,
    ) -> (StatusCode, Value) {
        let address = Address::from_public_key(key.verifying_key());
        let digest = mandate_chain::agent::request_digest(method, path, body.as_bytes(), &self.h.wallet, nonce);
        let headers = [
            ("mandate-agent", address.to_checksum(None)),
            ("mandate-agent-nonce", nonce.to_string()),
            ("mandate-agent-signature", format!("0x{}", hex::encode(sign_digest(key, digest.as_slice())))),
        ];
        self.raw(method, path, sent_body.unwrap_or(body).to_string(), &headers).await
    }

    fn send_body(amount: &str) -> String {
        json!({"to": Address::repeat_byte(0x42).to_checksum(None), "amount": amount}).to_string()
    }
}

#[tokio::test]
async fn an_agent_key_signs_its_requests_and_a_changed_or_replayed_request_is_refused() {
    let a = Agents::new(cap("1"));
    let (key, agent) = evm_key();
    let (status, registered) = a.register(agent, "trader", &["read", "broadcast"], 3600).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let path = format!("/v1/wallets/{}/transactions", a.h.wallet);
    let body = Agents::send_body("0.1");

    let nonce = now_ms();
    let (status, sent) = a.signed(&key, "POST", &path, &body, nonce, None).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let tail = a.h.store.audit_tail(20).unwrap();
    let agent_id = registered["agent"]["id"].as_str().unwrap();
    assert!(
        tail.iter().any(|r| r["event"] == "transaction.requested" && r["actor"] == format!("agent:{agent_id}")),
        "the audit names the agent: {tail:?}"
    );
    assert_eq!(a.h.broadcasts(), 1, "{id}");

    let (status, replay) = a.signed(&key, "POST", &path, &body, nonce, None).await;
    assert_eq!((status, code(&replay)), (StatusCode::UNAUTHORIZED, "AGENT_NONCE_REPLAYED"), "{replay}");
    let changed = Agents::send_body("0.9");
    let (_, tampered) = a.signed(&key, "POST", &path, &body, nonce + 1, Some(&changed)).await;
    assert_eq!(code(&tampered), "AGENT_SIGNATURE_INVALID", "a body changed after signing: {tampered}");
    let stale = now_ms() - 3 * 24 * 3600 * 1000;
    let (_, old) = a.signed(&key, "POST", &path, &body, stale, None).await;
    assert_eq!(code(&old), "AGENT_NONCE_OUT_OF_RANGE", "{old}");
    let (stranger, _) = evm_key();
    let (_, unknown) = a.signed(&stranger, "POST", &path, &body, now_ms(), None).await;
    assert_eq!(code(&unknown), "AGENT_UNKNOWN", "{unknown}");
    // A bearer token beside the agent's signature is ambiguous.
    let digest = mandate_chain::agent::request_digest("GET", &path, b"", &a.h.wallet, now_ms());
    let headers = [
        ("mandate-agent", agent.to_checksum(None)),
        ("mandate-agent-nonce", now_ms().to_string()),
        ("mandate-agent-signature", format!("0x{}", hex::encode(sign_digest(&key, digest.as_slice())))),
        ("authorization", format!("Bearer {}", a.h.agent())),
    ];
    assert_eq!(a.raw("GET", &path, String::new(), &headers).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(a.h.broadcasts(), 1, "nothing but the first request was sent");
}

#[tokio::test]
async fn the_nonce_window_keeps_the_hundred_highest() {
    let a = Agents::new(cap("1"));
    let (key, agent) = evm_key();
    assert_eq!(a.register(agent, "reader", &["read"], 3600).await.0, StatusCode::CREATED);
    let path = format!("/v1/wallets/{}", a.h.wallet);
    let base = now_ms();
    for n in 0..=100u64 {
        let (status, body) = a.signed(&key, "GET", &path, "", base + n, None).await;
        assert_eq!(status, StatusCode::OK, "{n}: {body}");
    }
    // Nonces base+1 ..= base+100 are kept; base fell out, and anything below the window is refused.
    let (_, below) = a.signed(&key, "GET", &path, "", base, None).await;
    assert_eq!(code(&below), "AGENT_NONCE_TOO_OLD", "{below}");
    let (_, replay) = a.signed(&key, "GET", &path, "", base + 50, None).await;
    assert_eq!(code(&replay), "AGENT_NONCE_REPLAYED", "{replay}");
    assert_eq!(a.signed(&key, "GET", &path, "", base + 500, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn agents_are_limited_replaced_by_name_revoked_and_scoped() {
    let a = Agents::new(cap("1"));
    let path = format!("/v1/wallets/{}", a.h.wallet);
    let mut keys = Vec::new();
    for name in ["a", "b", "c"] {
        let (key, agent) = evm_key();
        assert_eq!(a.register(agent, name, &["read"], 3600).await.0, StatusCode::CREATED);
        keys.push(key);
    }
    let (_, fourth) = evm_key();
    let (status, refused) = a.register(fourth, "d", &["read"], 3600).await;
    assert_eq!((status, code(&refused)), (StatusCode::CONFLICT, "AGENT_LIMIT_REACHED"), "{refused}");
    // A session agent does not count against the three, and must expire within a week.
    let (session_key, session_agent) = evm_key();
    assert_eq!(a.register(session_agent, "session", &["read"], 3600).await.0, StatusCode::CREATED);
    let (_, too_long) = evm_key();
    assert_eq!(a.register(too_long, "session", &["read"], 30 * 24 * 3600).await.0, StatusCode::BAD_REQUEST);
    let (next_session_key, next_session) = evm_key();
    assert_eq!(a.register(next_session, "session", &["read"], 3600).await.0, StatusCode::CREATED);
    let (_, replaced) = a.signed(&session_key, "GET", &path, "", now_ms(), None).await;
    assert_eq!(code(&replaced), "AGENT_UNKNOWN", "a new session agent replaces the old one: {replaced}");
    assert_eq!(a.signed(&next_session_key, "GET", &path, "", now_ms(), None).await.0, StatusCode::OK);

    // Registering a name that exists replaces that agent at once.
    let (new_a, new_a_address) = evm_key();
    let (status, body) = a.register(new_a_address, "a", &["read"], 3600).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["replaced"].as_array().unwrap().len(), 1);
    assert_eq!(code(&a.signed(&keys[0], "GET", &path, "", now_ms(), None).await.1), "AGENT_UNKNOWN");
    assert_eq!(a.signed(&new_a, "GET", &path, "", now_ms(), None).await.0, StatusCode::OK);

    // A read-only agent cannot send; a revoked one cannot do anything.
    let (status, scoped) =
        a.signed(&keys[1], "POST", &format!("{path}/transactions"), &Agents::send_body("0.1"), now_ms(), None).await;
    assert_eq!((status, code(&scoped)), (StatusCode::FORBIDDEN, "SCOPE_MISSING"), "{scoped}");
    let b_address = Address::from_public_key(keys[1].verifying_key());
    let operator = a.h.operator(&["admin"]);
    let revoke = format!("/v1/agents/{}/revoke", b_address.to_checksum(None));
    let (status, revoked) =
        a.raw("POST", &revoke, String::new(), &[("authorization", format!("Bearer {operator}"))]).await;
    assert_eq!((status, revoked["revoked"].as_bool()), (StatusCode::OK, Some(true)), "{revoked}");
    assert_eq!(code(&a.signed(&keys[1], "GET", &path, "", now_ms(), None).await.1), "AGENT_UNKNOWN");
    let listed = a.h.store.agents(&a.h.wallet).unwrap();
    assert_eq!(listed.iter().filter(|agent| agent.revoked_at.is_none()).count(), 3, "a (new), c, session");
    // An agent cannot register agents: only an owner's signature can.
    let (_, forged) = evm_key();
    let registration = mandate_chain::agent::AgentRegistration {
        wallet: a.h.wallet.clone(),
        agent: forged,
        name: "e".into(),
        scopes: vec!["broadcast".into()],
        valid_until: now() + 60,
        nonce: 1,
        policy: None,
    };
    let digest = alloy_primitives::eip191_hash_message(registration.message().as_bytes());
    let agent_signed = format!(
        "eip191:{}:0x{}",
        Address::from_public_key(new_a.verifying_key()).to_checksum(None),
        hex::encode(sign_digest(&new_a, digest.as_slice()))
    );
    let body = json!({"registration": registration, "owner_signature": agent_signed}).to_string();
    let (status, refused) = a.raw("POST", &format!("/v1/wallets/{}/agents", a.h.wallet), body, &[]).await;
    assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, "OWNER_SIGNATURE_INVALID"), "{refused}");
    let _ = a.owner_address;
}

impl Harness {
    /// A send with an `Idempotency-Key`: status, whether it was a replay, body.
    async fn send_keyed(&self, token: &str, amount: &str, key: &str) -> (StatusCode, bool, Value) {
        let to = Address::repeat_byte(0x42).to_checksum(None);
        let request = Request::post(format!("/v1/wallets/{}/transactions", self.wallet))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(json!({"to": to, "amount": amount}).to_string()))
            .unwrap();
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, replayed, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_replay_of_a_failed_send_answers_what_the_first_request_got() {
    let h = Harness::new(cap("1"));
    let agent = h.agent();

    // Denied by policy: the replay is denied again with the same body, even after the
    // policy changed to allow it (the key's request does not run twice).
    let (status, replayed, first) = h.send_keyed(&agent, "1.5", "order-1").await;
    assert_eq!((status, replayed, code(&first)), (StatusCode::FORBIDDEN, false, "POLICY_DENIED"), "{first}");
    let document = json!({"version": 1, "rules": cap("5")}).to_string();
    let policy = Policy::parse(&document).unwrap();
    h.store.set_policy(&h.wallet, &document, &policy.hash, now(), entry("policy.set")).unwrap();
    let (status, replayed, again) = h.send_keyed(&agent, "1.5", "order-1").await;
    assert_eq!((status, replayed), (StatusCode::FORBIDDEN, true), "{again}");
    assert_eq!(again, first, "the same body");
    assert_eq!((h.signer.runs.load(Ordering::SeqCst), h.spent()), (0, 0));

    // Refused by the signer after the reservation (the transaction is recorded, failed):
    // the replay answers the refusal, not 200 with the failed record.
    *h.signer.mode.lock().unwrap() = Signing::RefuseBeforeCommit;
    let (status, _, first) = h.send_keyed(&agent, "0.5", "order-2").await;
    assert_eq!((status, code(&first)), (StatusCode::FORBIDDEN, "COSIGNER_PER_TX_LIMIT"), "{first}");
    *h.signer.mode.lock().unwrap() = Signing::Sign;
    let (status, replayed, again) = h.send_keyed(&agent, "0.5", "order-2").await;
    assert_eq!((status, replayed), (StatusCode::FORBIDDEN, true), "{again}");
    assert_eq!(again, first);
    assert_eq!((h.broadcasts(), h.spent()), (0, 0), "nothing signed on the replay");

    // The same key for another amount is refused; a fresh key runs.
    let (status, _, other) = h.send_keyed(&agent, "0.7", "order-2").await;
    assert_eq!((status, code(&other)), (StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED"), "{other}");
    let (status, _, sent) = h.send_keyed(&agent, "0.5", "order-3").await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    // A replay of an accepted send still answers 200 with its record.
    let (status, replayed, again) = h.send_keyed(&agent, "0.5", "order-3").await;
    assert_eq!((status, replayed, again["id"].clone()), (StatusCode::OK, true, sent["id"].clone()), "{again}");
    assert_eq!(h.broadcasts(), 1);
}

#[tokio::test]
async fn dev_fund_is_refused_on_a_node_without_dev_methods_and_for_agents() {
    // The fake node says chain 31337 but answers no anvil_/hardhat_ method.
    let h = Harness::new(cap("1"));
    let post = |token: String| {
        Request::post(format!("/v1/wallets/{}/dev/fund", h.wallet))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({"amount": "5"}).to_string()))
            .unwrap()
    };
    let response = app(h.state.clone()).oneshot(post(h.operator(&["admin"]))).await.unwrap();
    let status = response.status();
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "NOT_A_DEV_CHAIN"), "{body}");
    let response = app(h.state.clone()).oneshot(post(h.agent())).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "an agent funds nothing");
}
