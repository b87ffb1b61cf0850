//! The client against the real daemon app (`mandate_server::app`) served on
//! 127.0.0.1:0 over a temporary store, with a fake node and a fake signer (one k256
//! key standing in for the two parties), the same fakes as the daemon's own in-process
//! tests (`mandate_test_support::fakes`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{keccak256, Address};
use mandate_client::{
    Balance, Client, CreateOperatorKey, CreateSession, CreateWebhook, Credential, Error, Evaluate, Secret, SendResult,
    TransactionStatus, Transfer,
};
use mandate_core::policy::Policy;
use mandate_core::{ErrorCode, WalletId};
use mandate_server::{app, AppState, Signer};
use mandate_store::{AuditEntry, SessionRecord, Store, WalletRecord};
use mandate_test_support::fakes::{loopback_config, FakeChain, FakeSigner, CHAIN_ID};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "the operator's master password";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
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

/// A daemon app on a loopback port.
struct Daemon {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    chain: Arc<FakeChain>,
    signer: Arc<FakeSigner>,
    wallet: String,
    url: String,
}

impl Daemon {
    /// A wallet with `rules` as its policy, served on 127.0.0.1:0.
    async fn start(rules: Value) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        // A real (cheap) Argon2id hash, so that HTTP Basic login works.
        store.set_meta("master_password_hash", &cheap_password_hash(PASSWORD)).unwrap();
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
        let state =
            AppState::new(store.clone(), chain.clone(), CHAIN_ID, signer.clone(), PASSWORD.as_bytes(), config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = app(Arc::new(state)).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        Daemon { _dir: dir, store, chain, signer, wallet, url }
    }

    /// A session inserted into the store (no login), valid for an hour.
    fn session(&self, scopes: &[&str]) -> Secret {
        let token = format!("mnd_sess_{}", hex::encode(rand::random::<[u8; 24]>()));
        let record = SessionRecord {
            id: format!("ses_{}", hex::encode(rand::random::<[u8; 8]>())),
            token_hash: hex::encode(Sha256::digest(token.as_bytes())),
            wallet_id: self.wallet.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: now() - 10,
            ttl_secs: 3600,
            expires_at: now() + 3600,
            absolute_expires_at: now() + 3600,
            renewals: 0,
            max_renewals: 0,
            revoked_at: None,
        };
        assert!(self.store.insert_session(&record, entry("session.created")).unwrap());
        Secret::new(token)
    }

    fn agent(&self) -> Client {
        Client::new(&self.url).unwrap().with_credential(Credential::Session(self.session(&["broadcast"])))
    }

    fn broadcasts(&self) -> usize {
        self.chain.sent.lock().unwrap().len()
    }
}

fn cheap_password_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"a fixed test salt").unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn cap(eth: &str) -> Value {
    json!([{"id": "per-tx", "type": "max_per_tx", "amount": eth}])
}

fn recipient() -> String {
    Address::repeat_byte(0x42).to_checksum(None)
}

fn api_code(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Api(api)) => api.code.clone(),
        other => panic!("expected an error envelope, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_reads_its_wallet_and_the_typed_answers_parse() {
    let d = Daemon::start(cap("1")).await;
    let agent = d.agent();
    assert_eq!(agent.health().await.unwrap().chain_id, CHAIN_ID);
    let current = agent.current_session().await.unwrap();
    assert_eq!((current.session.wallet_id.as_str(), current.band.as_deref()), (d.wallet.as_str(), Some("broadcast")));
    let wallets = agent.wallets().await.unwrap();
    assert_eq!(wallets.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), [d.wallet.as_str()]);
    let wallet = agent.wallet(&d.wallet).await.unwrap();
    assert_eq!((wallet.wallet.chain_id, wallet.frozen), (CHAIN_ID, None));
    match agent.balance(&d.wallet, None).await.unwrap() {
        Balance::Native(native) => assert_eq!(native.balance_wei, "100000000000000000000"),
        other => panic!("{other:?}"),
    }
    let policy = agent.policy(&d.wallet).await.unwrap();
    assert_eq!(policy.document["rules"][0]["id"], "per-tx");
    let summary = agent.policy_summary(&d.wallet).await.unwrap();
    assert_eq!(summary.policy.map(|p| p.hash), Some(policy.hash));
    let evaluation =
        agent.evaluate(&d.wallet, &Evaluate::Transfer(Transfer::native(recipient(), "0.5")), true).await.unwrap();
    assert_eq!(evaluation.decision.verdict, "allow");
    assert_eq!(evaluation.simulation.map(|s| s.success), Some(true));
    let dry = agent.dry_run(&d.wallet, &Transfer::native(recipient(), "0.5")).await.unwrap();
    assert_eq!(dry.decision.verdict, "allow");
    // The inserted session has no renewals left: a typed refusal.
    assert_eq!(api_code(agent.renew_session().await), "SESSION_RENEWAL_EXHAUSTED");
    // A session never reaches an operator endpoint.
    assert_eq!(api_code(agent.sessions(None).await), "ADMIN_REQUIRED");
    assert_eq!(d.signer.runs.load(Ordering::SeqCst), 0, "reads sign nothing");
}

#[tokio::test]
async fn a_send_is_signed_broadcast_and_shown() {
    let d = Daemon::start(cap("1")).await;
    let agent = d.agent();
    let sent = agent.send_transfer(&d.wallet, &Transfer::native(recipient(), "0.5")).await.unwrap();
    assert!(!sent.replayed);
    let SendResult::Sent(tx) = &sent.result else { panic!("held: {sent:?}") };
    assert_eq!(tx.status, TransactionStatus::Submitted);
    let raw = d.chain.sent.lock().unwrap()[0].clone();
    assert_eq!(tx.tx_hash.as_deref(), Some(format!("{:#x}", keccak256(&raw)).as_str()));
    assert_eq!(agent.transaction(&tx.id).await.unwrap().id, tx.id);
    let listed = agent.transactions(&d.wallet, Some(10)).await.unwrap();
    assert_eq!(listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), [tx.id.as_str()]);
}

#[tokio::test]
async fn a_denial_is_a_typed_policy_denied_error() {
    let d = Daemon::start(cap("1")).await;
    let error = d.agent().send_transfer(&d.wallet, &Transfer::native(recipient(), "1.5")).await.unwrap_err();
    let api = error.api().unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!((api.status, api.code.as_str(), api.category.as_str()), (403, "POLICY_DENIED", "policy"));
    assert_eq!(api.error_code(), Some(ErrorCode::PolicyDenied));
    assert!(!api.retryable);
    assert_eq!(api.retry_after, None);
    assert_eq!(api.details["rule_id"], "per-tx");
    assert_eq!(error.code(), ErrorCode::PolicyDenied);
    assert_eq!((d.signer.runs.load(Ordering::SeqCst), d.broadcasts()), (0, 0));
}

#[tokio::test]
async fn sends_carry_an_idempotency_key_and_a_replay_returns_the_same_transaction() {
    let d = Daemon::start(cap("1")).await;
    let agent = d.agent();
    let transfer = Transfer::native(recipient(), "0.1");
    // A generated key: sending it again is a replay, not a second payment.
    let first = agent.send_transfer(&d.wallet, &transfer).await.unwrap();
    assert!(first.idempotency_key.len() >= 32, "{}", first.idempotency_key);
    let again = agent.send_transfer_with_key(&d.wallet, &transfer, &first.idempotency_key).await.unwrap();
    assert_eq!((again.id(), again.replayed), (first.id(), true));
    assert_eq!(d.broadcasts(), 1);
    // Each call without a key gets a fresh one: two payments.
    let other = agent.send_transfer(&d.wallet, &transfer).await.unwrap();
    assert_ne!(other.idempotency_key, first.idempotency_key);
    assert_ne!(other.id(), first.id());
    assert_eq!(d.broadcasts(), 2);
    // The caller's own key; the same key with another body is refused.
    let mine = agent.send_transfer_with_key(&d.wallet, &transfer, "order-1234").await.unwrap();
    assert_eq!(mine.idempotency_key, "order-1234");
    let replay = agent.send_transfer_with_key(&d.wallet, &transfer, "order-1234").await.unwrap();
    assert_eq!((replay.id(), replay.replayed), (mine.id(), true));
    let changed = agent.send_transfer_with_key(&d.wallet, &Transfer::native(recipient(), "0.2"), "order-1234").await;
    assert_eq!(api_code(changed), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(d.broadcasts(), 3);
    // A key the daemon would refuse is refused before sending.
    assert!(matches!(
        agent.send_transfer_with_key(&d.wallet, &transfer, "with space").await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn a_held_send_is_listed_and_cancelled() {
    let d = Daemon::start(json!([
        {"id": "per-tx", "type": "max_per_tx", "amount": "5"},
        {"id": "big", "type": "tiers", "approval_above": "1"}
    ]))
    .await;
    let agent = d.agent();
    let sent = agent.send_transfer(&d.wallet, &Transfer::native(recipient(), "2")).await.unwrap();
    let SendResult::Held(held) = &sent.result else { panic!("not held: {sent:?}") };
    assert_eq!((held.status, held.tier_rules.clone()), (TransactionStatus::PendingApproval, Some(vec!["big".into()])));
    let listed = agent.approvals(Some(&d.wallet)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].approve_message.is_some());
    assert_eq!(agent.approval(&held.id).await.unwrap().transaction.id, held.id);
    // An owner signature that is not one: typed refusal, nothing signed.
    assert_eq!(api_code(agent.approve(&held.id, "ed25519:00:00").await), "OWNER_SIGNATURE_INVALID");
    assert_eq!(agent.cancel(&held.id).await.unwrap().status, TransactionStatus::Cancelled);
    assert_eq!(d.signer.runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_operator_logs_in_with_basic_auth_and_manages_sessions_keys_webhooks_and_audit() {
    let d = Daemon::start(cap("1")).await;
    let anonymous = Client::new(&d.url).unwrap();
    assert_eq!(api_code(anonymous.login(&Secret::new("wrong")).await), "INVALID_CREDENTIALS");
    let operator = anonymous.login_operator(&Secret::new(PASSWORD)).await.unwrap();

    // Sessions: create, use, renew, list, revoke.
    let mut request = CreateSession::new(d.wallet.clone(), 600, &["read", "freeze"]);
    request.max_renewals = Some(1);
    let created = operator.create_session(&request).await.unwrap();
    let agent = anonymous.with_credential(Credential::Session(created.token.clone()));
    assert_eq!(agent.current_session().await.unwrap().session.id, created.session.id);
    assert_eq!(agent.renew_session().await.unwrap().renewals, 1);
    let sessions = operator.sessions(Some(&d.wallet)).await.unwrap();
    assert!(sessions.iter().any(|s| s.id == created.session.id));
    let frozen = agent.freeze(&d.wallet, Some("agent saw something odd")).await.unwrap();
    assert!(frozen.newly_frozen);
    assert_eq!(frozen.frozen.frozen_by, format!("agent:{}", created.session.id));
    let revoked = operator.revoke_session(&created.session.id).await.unwrap();
    assert!(revoked.revoked);
    assert_eq!(api_code(agent.current_session().await), "SESSION_REVOKED");
    let all = operator.freeze_all(None).await.unwrap();
    assert_eq!(all.iter().map(|f| f.newly_frozen).collect::<Vec<_>>(), [false]);

    // Operator keys: create, use, list, revoke.
    let key = operator
        .create_operator_key(&CreateOperatorKey {
            name: "ci".into(),
            scopes: Some(vec!["read".into()]),
            ttl_days: None,
        })
        .await
        .unwrap();
    let reader = anonymous.with_credential(Credential::OperatorKey(key.key.clone()));
    assert_eq!(reader.wallets().await.unwrap().len(), 1);
    assert_eq!(api_code(reader.freeze_all(None).await), "SCOPE_MISSING");
    assert!(operator.operator_keys().await.unwrap().iter().any(|k| k.id == key.operator_key.id));
    assert!(operator.revoke_operator_key(&key.operator_key.id).await.unwrap().revoked);
    assert_eq!(api_code(reader.wallets().await), "UNAUTHENTICATED");

    // A leaked admin key mints itself a spare; revoking the leaked key stops both.
    let create = |name: &str| CreateOperatorKey { name: name.into(), scopes: None, ttl_days: None };
    let leaked = operator.create_operator_key(&create("leaked")).await.unwrap();
    let thief = anonymous.with_credential(Credential::OperatorKey(leaked.key.clone()));
    let spare = thief.create_operator_key(&create("spare")).await.unwrap();
    let spare_client = anonymous.with_credential(Credential::OperatorKey(spare.key.clone()));
    assert_eq!(spare_client.wallets().await.unwrap().len(), 1);
    // ... and an agent session with the spare, and one with the leaked key itself.
    let mut agents = Vec::new();
    for creator in [&thief, &spare_client] {
        let created = creator.create_session(&CreateSession::new(d.wallet.clone(), 600, &["read"])).await.unwrap();
        agents.push((created.session.id.clone(), anonymous.with_credential(Credential::Session(created.token))));
    }
    let mine = operator.create_session(&CreateSession::new(d.wallet.clone(), 600, &["read"])).await.unwrap();
    let revocation = operator.revoke_operator_key(&leaked.operator_key.id).await.unwrap();
    assert_eq!(revocation.also_revoked, vec![spare.operator_key.id.clone()]);
    assert_eq!(api_code(spare_client.wallets().await), "UNAUTHENTICATED");
    assert_eq!(api_code(thief.wallets().await), "UNAUTHENTICATED");
    let mut revoked_sessions = revocation.sessions_revoked.clone();
    revoked_sessions.sort();
    let mut expected: Vec<String> = agents.iter().map(|(id, _)| id.clone()).collect();
    expected.sort();
    assert_eq!(revoked_sessions, expected, "the sessions the two keys made");
    for (_, agent) in &agents {
        assert_eq!(api_code(agent.current_session().await), "SESSION_REVOKED");
    }
    assert!(!revocation.sessions_revoked.contains(&mine.session.id), "the operator's own session stays");

    // Webhooks: add, list, deliveries, remove.
    let hook = operator
        .add_webhook(&CreateWebhook {
            url: "https://hooks.example.com/mandate".into(),
            events: vec!["policy.denied".into()],
        })
        .await
        .unwrap();
    assert!(!format!("{hook:?}").contains(hook.secret.expose()), "the secret is redacted in Debug");
    assert_eq!(operator.webhooks().await.unwrap().len(), 1);
    assert_eq!(operator.deliveries(&hook.webhook.id).await.unwrap().webhook.id, hook.webhook.id);
    assert!(operator.remove_webhook(&hook.webhook.id).await.unwrap().removed);
    assert!(operator.webhooks().await.unwrap().is_empty());

    // Audit: whole, and the tail names what happened.
    let verify = operator.verify_audit(None).await.unwrap();
    assert!(verify.ok, "{verify:?}");
    let tail = operator.audit_tail(50).await.unwrap();
    let last = tail.last().unwrap();
    assert!(tail.iter().any(|r| r.event == "webhook.removed"), "{tail:?}");
    let anchored = operator.verify_audit(Some((last.seq, &last.hash))).await.unwrap();
    assert!(anchored.ok, "{anchored:?}");
    let wrong = operator.verify_audit(Some((last.seq, &"0".repeat(64)))).await.unwrap();
    assert_eq!(wrong.problem.map(|p| p.kind), Some("anchor_mismatch".into()));
}

#[tokio::test]
async fn credentials_never_show_in_debug() {
    let d = Daemon::start(cap("1")).await;
    let token = d.session(&["read"]);
    let client = Client::new(&d.url).unwrap().with_credential(Credential::Session(token.clone()));
    let shown = format!("{client:?} {token:?} {:?}", Credential::Admin(Secret::new("mnd_admin_abc")));
    assert!(!shown.contains(token.expose()) && !shown.contains("mnd_admin_abc"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let login = Client::new(&d.url).unwrap().login(&Secret::new(PASSWORD)).await.unwrap();
    assert!(!format!("{login:?}").contains(login.token.expose()));
}

#[test]
fn only_https_urls_or_local_http_are_accepted() {
    for url in ["http://mandate.example.com:3100", "http://192.168.1.10:3100"] {
        let error = Client::new(url).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InsecureUrl, "{url}");
    }
    assert!(Client::new("https://mandate.example.com").is_ok());
    assert!(Client::new("http://127.0.0.1:3100").is_ok());
    assert!(Client::new("http://localhost:3100").is_ok());
}

#[tokio::test]
async fn a_policy_set_by_the_operator_governs_signatures_and_contract_calls() {
    let d = Daemon::start(cap("1")).await;
    let operator = Client::new(&d.url).unwrap().login_operator(&Secret::new(PASSWORD)).await.unwrap();
    let document = json!({"version": 1, "rules": [
        {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
        {"id": "hello", "type": "personal_message", "mode": "allow", "pattern": "^hello"},
        {"id": "raw", "type": "raw_hash", "allow": true}
    ]});
    let set = operator.set_policy(&d.wallet, &document).await.unwrap();
    assert_eq!(operator.policy(&d.wallet).await.unwrap().hash, set.hash);
    assert_eq!(
        api_code(operator.set_policy(&d.wallet, &json!({"version": 1, "rules": [{"type": "nonsense"}]})).await),
        "INVALID_POLICY"
    );

    let agent = d.agent();
    let address = agent.wallet(&d.wallet).await.unwrap().wallet.address;
    let signed = agent.sign_message(&d.wallet, "hello mandate").await.unwrap();
    assert_eq!((signed.signature.len(), signed.address.as_str()), (132, address.as_str()));
    assert!(matches!(signed.action, mandate_client::Action::PersonalMessage { .. }), "{:?}", signed.action);
    assert_eq!(api_code(agent.sign_message(&d.wallet, "goodbye").await), "POLICY_DENIED");
    let hashed = agent.sign_hash(&d.wallet, &format!("0x{}", "11".repeat(32))).await.unwrap();
    assert_eq!(hashed.digest, format!("0x{}", "11".repeat(32)));
    let typed = json!({
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}], "Mail": [{"name": "body", "type": "string"}]},
        "primaryType": "Mail", "domain": {"name": "test"}, "message": {"body": "hi"}
    });
    assert_eq!(api_code(agent.sign_typed_data(&d.wallet, &typed).await), "POLICY_DENIED");
    let call = mandate_client::ContractCall::data(recipient(), "0x12345678");
    assert_eq!(api_code(agent.contract_call(&d.wallet, &call).await), "POLICY_DENIED");
    assert_eq!(d.signer.runs.load(Ordering::SeqCst), 2, "the two allowed signatures only");
    assert_eq!(d.broadcasts(), 0);
}

#[tokio::test]
async fn an_agent_key_credential_signs_every_request_and_sends_no_token() {
    let d = Daemon::start(cap("1")).await;
    let key = mandate_core::agent::AgentKey::generate();
    let record = mandate_store::AgentRecord {
        id: "agt_client".into(),
        address: key.address().to_checksum(None),
        wallet_id: d.wallet.clone(),
        name: "bot".into(),
        scopes: vec!["read".into(), "broadcast".into()],
        valid_until: now() + 3600,
        created_at: now(),
        revoked_at: None,
        last_used_at: None,
        policy: None,
    };
    // Registered as the daemon would after checking an owner's signature (tested in mandate-server).
    d.store
        .register_agent(&record, "registration text", "owner signature", 3, entry("agent.registered"))
        .unwrap()
        .unwrap();
    let file: Value = serde_json::from_str(&key.to_file_text()).unwrap();
    let secret = file["secret"].as_str().unwrap().to_string();
    let credential = Credential::Agent { key: Arc::new(key), wallet: d.wallet.clone() };
    assert!(!format!("{credential:?}").contains(&secret), "no secret in Debug: {credential:?}");
    let agent = Client::new(&d.url).unwrap().with_credential(credential);
    // Reads and a send in quick succession: each request its own nonce.
    for _ in 0..5 {
        assert_eq!(agent.wallet(&d.wallet).await.unwrap().wallet.id, d.wallet);
    }
    let sent = agent.send_transfer(&d.wallet, &Transfer::native(recipient(), "0.5")).await.unwrap();
    let SendResult::Sent(tx) = &sent.result else { panic!("held: {sent:?}") };
    assert_eq!(tx.status, TransactionStatus::Submitted);
    assert_eq!(d.broadcasts(), 1);
    let listed = agent.transactions(&d.wallet, Some(10)).await.unwrap();
    assert_eq!(listed.len(), 1, "a query string is part of what is signed");
    // Revoked: the same credential stops working.
    d.store.revoke_agent(&record.address, now(), entry("agent.revoked")).unwrap();
    assert_eq!(api_code(agent.wallet(&d.wallet).await), "AGENT_UNKNOWN");
}
