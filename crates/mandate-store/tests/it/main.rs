//! Store tests: reservation atomicity under concurrency, nonces, the audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::sync::Arc;

use alloy_primitives::U256;
use mandate_core::amount::parse_units;
use mandate_core::policy::{evaluate, Action, Asset, Context, Decision, Policy, Verdict};
use mandate_store::{
    AuditEntry, AuditProblem, Broadcast, BroadcastKind, Claim, NewTransaction, OperatorKeyRecord, OutboxEvent,
    QuorumStep, ReserveOutcome, ReserveView, Resolution, Store, TxStatus, WalletRecord, WebhookRecord,
};

const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

fn entry(event: &str) -> AuditEntry {
    AuditEntry {
        actor: "test".into(),
        event: event.into(),
        wallet: None,
        decision: None,
        policy_hash: None,
        details: serde_json::json!({}),
        events: Vec::new(),
    }
}

/// A broadcast session `id` of wallet `wal_a`, valid for an hour from 1.
fn session(id: &str) -> mandate_store::SessionRecord {
    mandate_store::SessionRecord {
        id: id.into(),
        token_hash: format!("hash-{id}"),
        wallet_id: "wal_a".into(),
        scopes: vec!["broadcast".into()],
        created_at: 1,
        ttl_secs: 3600,
        expires_at: 3601,
        absolute_expires_at: 3601,
        renewals: 0,
        max_renewals: 0,
        revoked_at: None,
    }
}

/// A reservation that reports nothing to webhooks.
fn no_events(_: &ReserveOutcome) -> Vec<OutboxEvent> {
    Vec::new()
}

/// A native transfer of `value` wei to ALICE.
fn native(id: &str, key: Option<&str>, value: U256) -> NewTransaction {
    NewTransaction {
        id: id.into(),
        wallet_id: "wal_a".into(),
        idempotency_key: key.map(str::to_string),
        to: ALICE.into(),
        value,
        data: Vec::new(),
        kind: "native_transfer".into(),
        asset: Asset::Native,
        amount: value,
        usd_micro: None,
        recipient: Some(ALICE.parse().unwrap()),
        chain_nonce: 0,
        chain_id: 31337,
        gas_limit: 21_000,
        max_fee_per_gas: 2_000_000_000,
        approval_ttl_secs: 3600,
        requested: None,
    }
}

/// Decides a native transfer of `value` to ALICE at `now` with the reserve view.
fn decide(policy: &Policy, value: U256, view: &ReserveView, now: u64) -> Decision {
    let prices = Default::default();
    let ctx = Context {
        now,
        chain_id: 31337,
        history: &view.spends,
        prices: &prices,
        recipient_seen: view.recipient_seen,
        fees: None,
        simulation: None,
    };
    evaluate(Some(policy), &Action::NativeTransfer { to: ALICE.parse().unwrap(), value }, &ctx)
}

fn store_with_wallet() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, with_wallet(store))
}

/// `store` with wallet `wal_a`.
fn with_wallet(store: Store) -> Arc<Store> {
    store
        .insert_wallet(
            &WalletRecord {
                id: "wal_a".into(),
                name: "a".into(),
                address: ALICE.into(),
                chain_id: 31337,
                created_at: 1,
            },
            entry("wallet.created"),
        )
        .unwrap();
    Arc::new(store)
}

#[test]
fn concurrent_reservations_never_exceed_the_cap_and_nonces_are_unique() {
    let (_dir, store) = store_with_wallet();
    concurrent_reservations(&[store]);
}

/// 20 concurrent 0.5 ETH reservations against a 3 ETH rolling cap, spread over
/// `stores` (replicas on one database): exactly 6, with nonces 0..6.
fn concurrent_reservations(stores: &[Arc<Store>]) {
    let store = &stores[0];
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"},{"id":"day","type":"rolling_cap","window_secs":86400,"amount":"3"}]}"#;
    let policy = Arc::new(Policy::parse(document).unwrap());
    store.set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let handles: Vec<_> = (0..20)
        .map(|n| {
            let (store, policy) = (stores[n % stores.len()].clone(), policy.clone());
            std::thread::spawn(move || {
                let value = parse_units("0.5", 18).unwrap();
                let request = native(&format!("tx_{n}"), None, value);
                store
                    .reserve(
                        request,
                        policy.lookback_secs(),
                        1000,
                        "agent",
                        |view| decide(&policy, value, view, 1000),
                        no_events,
                    )
                    .unwrap()
            })
        })
        .collect();
    let mut nonces = Vec::new();
    let mut denied = 0;
    for handle in handles {
        match handle.join().unwrap() {
            ReserveOutcome::Reserved { tx } => nonces.push(tx.nonce.unwrap()),
            ReserveOutcome::Denied(decision) => {
                assert_eq!((decision.verdict, decision.rule_id.as_str()), (Verdict::Deny, "day"));
                denied += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (0..6).collect::<Vec<_>>());
    assert_eq!(denied, 14);
}

/// Two stores on one SQLite data directory (two connections, as a CLI beside the
/// daemon would have), the first having created wallet `wal_a`.
fn two_sqlite_stores() -> (tempfile::TempDir, Vec<Arc<Store>>) {
    let dir = tempfile::tempdir().unwrap();
    let first = with_wallet(Store::open(dir.path()).unwrap());
    let second = Arc::new(Store::open(dir.path()).unwrap());
    (dir, vec![first, second])
}

#[test]
fn caps_hold_when_reservations_alternate_between_two_stores_on_one_database() {
    let (_dir, stores) = two_sqlite_stores();
    concurrent_reservations(&stores);
}

#[test]
fn a_store_sees_spends_another_store_reserved_or_released_since_it_last_looked() {
    let (_dir, stores) = two_sqlite_stores();
    spends_seen_across_stores(&stores);
}

/// Each store keeps the spends it decided on in memory: a cap must still count what
/// another store (another daemon on PostgreSQL) reserved or released since.
fn spends_seen_across_stores(stores: &[Arc<Store>]) {
    let (a, b) = (&stores[0], &stores[1]);
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"},{"id":"day","type":"rolling_cap","window_secs":86400,"amount":"3"}]}"#;
    let policy = Policy::parse(document).unwrap();
    a.set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let value = parse_units("0.5", 18).unwrap();
    let mut n = 0;
    let mut send = |store: &Store| {
        n += 1;
        let now = 1000 + n;
        let outcome = store
            .reserve(
                native(&format!("tx_{n}"), None, value),
                policy.lookback_secs(),
                now,
                "agent",
                |view| decide(&policy, value, view, now),
                no_events,
            )
            .unwrap();
        match outcome {
            ReserveOutcome::Reserved { tx } => Some(tx.id),
            ReserveOutcome::Denied(decision) => {
                assert_eq!(decision.rule_id, "day");
                None
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    // A decides twice (its window is warm), then B reserves three times: 2.5 ETH.
    let first = send(a).expect("0.5 of 3");
    assert!(send(a).is_some());
    for _ in 0..3 {
        assert!(send(b).is_some());
    }
    assert_eq!(a.spends("wal_a", 0).unwrap().len(), 5, "A's read counts B's reservations");
    // A: 3.0 is the cap; 3.5 is over it, however little A itself reserved.
    assert!(send(a).is_some());
    assert!(send(a).is_none(), "a stale window would have allowed a spend over the cap");
    assert!(send(b).is_none());
    // B releases one of A's reservations: A may spend that 0.5 again, once.
    b.release(&first, "test", 2000, entry("transaction.failed")).unwrap();
    assert!(send(a).is_some(), "A's read counts B's release");
    assert!(send(a).is_none());
    assert!(send(b).is_none());
}

#[test]
fn released_nonce_is_reused_and_idempotency_returns_the_first() {
    let (_dir, store) = store_with_wallet();
    released_nonce_and_idempotency(&store);
}

fn released_nonce_and_idempotency(store: &Store) {
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    store.set_policy("wal_a", document, &Policy::parse(document).unwrap().hash, 1, entry("policy.set")).unwrap();
    let p = Policy::parse(document).unwrap();
    let allow = |view: &ReserveView| decide(&p, U256::from(1), view, 5);
    let request = |id: &str, key: Option<&str>| native(id, key, U256::from(1));
    let ReserveOutcome::Reserved { tx: first } =
        store.reserve(request("t1", Some("k")), 0, 5, "a", allow, no_events).unwrap()
    else {
        panic!()
    };
    assert!(
        matches!(store.reserve(request("t2", Some("k")), 0, 5, "a", allow, no_events).unwrap(), ReserveOutcome::Existing(tx) if tx.id == "t1")
    );
    store.release("t1", "cosigner down", 6, entry("transaction.failed")).unwrap();
    let ReserveOutcome::Reserved { tx: again } =
        store.reserve(request("t3", None), 0, 7, "a", allow, no_events).unwrap()
    else {
        panic!()
    };
    assert_eq!(again.nonce, first.nonce, "a released nonce is handed out again: no gap");
}

#[test]
fn a_spend_committed_at_the_signing_point_of_no_return_survives_a_release() {
    let (_dir, store) = store_with_wallet();
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let p = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &p.hash, 1, entry("policy.set")).unwrap();
    let allow = |view: &ReserveView| decide(&p, U256::from(7), view, 5);
    for id in ["uncommitted", "committed"] {
        let outcome = store.reserve(native(id, None, U256::from(7)), 0, 5, "a", allow, no_events).unwrap();
        assert!(matches!(outcome, ReserveOutcome::Reserved { .. }), "{outcome:?}");
    }
    // One run failed before its last message; the other after it (the cosigner may
    // hold the signature): only the first spend goes.
    store.commit_spend("committed").unwrap();
    for id in ["uncommitted", "committed"] {
        store.release(id, "the cosigner hung up", 6, entry("transaction.released")).unwrap();
    }
    let spends = store.spends("wal_a", 0).unwrap();
    assert_eq!(spends.iter().map(|spend| spend.amount).collect::<Vec<_>>(), vec![U256::from(7)]);
}

#[test]
fn audit_verify_names_edited_deleted_and_reordered_records() {
    let (dir, store) = store_with_wallet();
    for n in 0..4 {
        store.audit(entry(&format!("e{n}")), 10 + n).unwrap();
    }
    assert_eq!(store.verify_audit().unwrap(), Ok(5));
    let path = dir.path().join("audit/audit.jsonl");
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    std::fs::write(&path, original.replacen("\"e1\"", "\"e9\"", 1)).unwrap();
    assert_eq!(store.verify_audit().unwrap(), Err(AuditProblem::Edited { seq: 3 }));

    let deleted: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| *l).collect();
    std::fs::write(&path, deleted.join("\n") + "\n").unwrap();
    assert_eq!(store.verify_audit().unwrap(), Err(AuditProblem::Deleted { expected: 3, found: 4 }));

    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    std::fs::write(&path, swapped.join("\n") + "\n").unwrap();
    assert_eq!(store.verify_audit().unwrap(), Err(AuditProblem::Reordered { seq: 3, expected: 2 }));

    std::fs::write(&path, lines[..4].join("\n") + "\n").unwrap();
    assert_eq!(store.verify_audit().unwrap(), Err(AuditProblem::Truncated { file_last: 4, table_last: 5 }));
}

#[test]
fn a_tail_cut_alike_from_file_and_table_is_named_against_an_anchor() {
    let (dir, store) = store_with_wallet();
    for n in 0..6 {
        store.audit(entry(&format!("e{n}")), 10 + n).unwrap();
    }
    let anchor = store.audit_head().unwrap().unwrap();
    assert_eq!(anchor.seq, 7);
    assert_eq!(store.verify_audit_anchored(Some(&anchor)).unwrap(), Ok(7));

    // Records 5..=7 removed from the file and the table alike.
    let path = dir.path().join("audit/audit.jsonl");
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    std::fs::write(&path, lines[..4].join("\n") + "\n").unwrap();
    let db = rusqlite::Connection::open(dir.path().join("data.db")).unwrap();
    db.execute("DELETE FROM audit WHERE seq >= 5", []).unwrap();
    assert_eq!(store.verify_audit().unwrap(), Ok(4), "the chain alone cannot tell");
    let cut = store.verify_audit_anchored(Some(&anchor)).unwrap().unwrap_err();
    assert_eq!(cut, AuditProblem::Cut { last: 4, anchored: 7 });
    assert!(cut.to_string().starts_with("records 5 to 7 are missing"), "{cut}");

    // New records take the numbers again: the anchored one now differs.
    for n in 0..3 {
        store.audit(entry(&format!("again{n}")), 30 + n).unwrap();
    }
    assert_eq!(store.verify_audit().unwrap(), Ok(7));
    assert_eq!(store.verify_audit_anchored(Some(&anchor)).unwrap(), Err(AuditProblem::AnchorMismatch { seq: 7 }));
}

#[test]
fn unwritable_audit_refuses_the_reservation() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = store_with_wallet();
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    store.set_policy("wal_a", document, &Policy::parse(document).unwrap().hash, 1, entry("policy.set")).unwrap();
    let audit_dir = dir.path().join("audit");
    std::fs::remove_file(audit_dir.join("audit.jsonl")).unwrap();
    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let probe = std::fs::File::create(audit_dir.join("probe"));
    if probe.is_ok() {
        // Running as root ignores directory permissions: make the path unusable instead.
        std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::remove_file(audit_dir.join("probe")).unwrap();
        std::fs::create_dir(audit_dir.join("audit.jsonl")).unwrap();
    }
    let request = native("t", None, U256::from(1));
    let p = Policy::parse(document).unwrap();
    let result = store.reserve(request, 0, 5, "a", |view| decide(&p, U256::from(1), view, 5), no_events);
    assert!(matches!(result, Err(mandate_store::StoreError::AuditUnavailable(_))), "{result:?}");
    assert!(store.transaction("t").unwrap().is_none(), "nothing was reserved");
}

#[test]
fn a_decision_made_with_a_replaced_policy_reserves_nothing() {
    let (_dir, store) = store_with_wallet();
    let old = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"5"}]}"#;
    let new = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let old_policy = Policy::parse(old).unwrap();
    store.set_policy("wal_a", old, &old_policy.hash, 1, entry("policy.set")).unwrap();
    // The operator tightens the policy after the caller loaded the old one.
    store.set_policy("wal_a", new, &Policy::parse(new).unwrap().hash, 2, entry("policy.set")).unwrap();
    let value = parse_units("3", 18).unwrap();
    let request = native("tx_stale", None, value);
    let outcome = store.reserve(request, 0, 3, "agent", |view| decide(&old_policy, value, view, 3), no_events).unwrap();
    assert!(matches!(outcome, ReserveOutcome::PolicyChanged), "{outcome:?}");
    assert!(store.transaction("tx_stale").unwrap().is_none());
}

/// The request's record is written with the reservation, in one database
/// transaction: right before the decision when the send is reserved or denied,
/// alone for an idempotent replay, and not at all when a changed policy rolls the
/// attempt back (the retry writes it once).
#[test]
fn the_request_is_audited_in_the_reservation_transaction() {
    let (_dir, store) = store_with_wallet();
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let p = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &p.hash, 1, entry("policy.set")).unwrap();
    let requested = |id: &str, key: Option<&str>, value: U256| NewTransaction {
        requested: Some(entry("transaction.requested")),
        ..native(id, key, value)
    };
    let before = events(&store).len();
    let stale = Policy::parse(r#"{"version":1,"rules":[]}"#).unwrap();
    let outcome = store.reserve(
        requested("t0", None, U256::from(1)),
        0,
        5,
        "a",
        |view| decide(&stale, U256::from(1), view, 5),
        no_events,
    );
    assert!(matches!(outcome.unwrap(), ReserveOutcome::PolicyChanged));
    assert_eq!(events(&store).len(), before, "a rolled-back attempt leaves no record");

    let allow = |view: &ReserveView| decide(&p, U256::from(1), view, 5);
    let outcome = store.reserve(requested("t1", Some("k"), U256::from(1)), 0, 5, "a", allow, no_events).unwrap();
    assert!(matches!(outcome, ReserveOutcome::Reserved { .. }), "{outcome:?}");
    let too_much = parse_units("2", 18).unwrap();
    let outcome = store
        .reserve(requested("t2", None, too_much), 0, 5, "a", |view| decide(&p, too_much, view, 5), no_events)
        .unwrap();
    assert!(matches!(outcome, ReserveOutcome::Denied(_)), "{outcome:?}");
    let outcome = store.reserve(requested("t3", Some("k"), U256::from(1)), 0, 5, "a", allow, no_events).unwrap();
    assert!(matches!(outcome, ReserveOutcome::Existing(ref tx) if tx.id == "t1"), "{outcome:?}");

    let events = events(&store);
    assert_eq!(
        events[before..],
        [
            "transaction.requested",
            "policy.decision",
            "transaction.requested",
            "policy.decision",
            "transaction.requested"
        ]
    );
    assert_eq!(store.verify_audit().unwrap(), Ok(events.len() as u64));
}

#[test]
fn recipients_count_as_paid_only_once_broadcast_and_tokens_are_cached() {
    let (_dir, store) = store_with_wallet();
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let p = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &p.hash, 1, entry("policy.set")).unwrap();
    let alice = ALICE.parse().unwrap();
    let mut seen = Vec::new();
    let mut reserve = |id: &str| {
        let outcome = store
            .reserve(
                native(id, None, U256::from(1)),
                0,
                5,
                "a",
                |view| {
                    seen.push(view.recipient_seen);
                    decide(&p, U256::from(1), view, 5)
                },
                no_events,
            )
            .unwrap();
        assert!(matches!(outcome, ReserveOutcome::Reserved { .. }), "{outcome:?}");
    };
    reserve("t1");
    // Reserved or released is not paid: only a broadcast transaction counts.
    store.release("t1", "cosigner down", 6, entry("transaction.released")).unwrap();
    reserve("t2");
    assert!(!store.recipient_seen("wal_a", &alice).unwrap());
    let signed = Broadcast {
        hash: "0xabc".into(),
        kind: BroadcastKind::Original,
        raw: vec![0x02, 0xf8],
        gas: 21_000,
        max_fee_per_gas: 3,
        max_priority_fee_per_gas: 1,
        created_at: 7,
    };
    store.mark_submitted("t2", &signed, 7, entry("transaction.signed")).unwrap();
    reserve("t3");
    assert_eq!(seen, vec![false, false, true]);
    assert!(store.recipient_seen("wal_a", &alice).unwrap());
    // Spends carry their asset and amount.
    let spends = store.spends("wal_a", 0).unwrap();
    assert_eq!(spends.len(), 2);
    assert!(spends.iter().all(|s| s.asset == Asset::Native && s.amount == U256::from(1)));
    // Token metadata is cached per chain.
    let token: alloy_primitives::Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3".parse().unwrap();
    assert_eq!(store.token(31337, &token).unwrap(), None);
    store.cache_token(31337, &token, 6, "TST").unwrap();
    assert_eq!(store.token(31337, &token).unwrap(), Some((6, "TST".to_string())));
    assert_eq!(store.token(1, &token).unwrap(), None);
}

#[test]
fn a_receipt_reported_twice_is_recorded_once() {
    let (_dir, store) = store_with_wallet();
    receipt_recorded_once(&[store]);
}

/// Two trackers (replicas) report the same receipt: the second finds the transaction
/// final and writes nothing (no second audit record or webhook event).
fn receipt_recorded_once(stores: &[Arc<Store>]) {
    let store = &stores[0];
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let p = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &p.hash, 1, entry("policy.set")).unwrap();
    let outcome = store
        .reserve(native("r1", None, U256::from(1)), 0, 5, "a", |view| decide(&p, U256::from(1), view, 5), no_events)
        .unwrap();
    assert!(matches!(outcome, ReserveOutcome::Reserved { .. }), "{outcome:?}");
    let signed = Broadcast {
        hash: "0xabc".into(),
        kind: BroadcastKind::Original,
        raw: vec![0x02, 0xf8],
        gas: 21_000,
        max_fee_per_gas: 3,
        max_priority_fee_per_gas: 1,
        created_at: 7,
    };
    store.mark_submitted("r1", &signed, 7, entry("transaction.signed")).unwrap();
    for reporter in [&stores[0], &stores[stores.len() - 1]] {
        let status = reporter.mark_final("r1", "0xabc", true, 8, entry("transaction.confirmed")).unwrap();
        assert_eq!(status, TxStatus::Confirmed);
    }
    let confirmed = events(store).iter().filter(|event| *event == "transaction.confirmed").count();
    assert_eq!(confirmed, 1, "{:?}", events(store));
    assert_eq!(store.verify_audit().unwrap().map(|_| ()), Ok(()));
}

#[test]
fn held_transactions_keep_their_spend_take_no_nonce_and_are_claimed_once() {
    let (_dir, store) = store_with_wallet();
    held_claimed_once(&[store]);
}

fn held_claimed_once(stores: &[Arc<Store>]) {
    let store = &stores[0];
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"5"},
        {"id":"day","type":"rolling_cap","window_secs":86400,"amount":"4"},
        {"id":"big","type":"tiers","approval_above":"1"}]}"#;
    let policy = Arc::new(Policy::parse(document).unwrap());
    store.set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let reserve = |id: &str, eth: &str, now: u64| {
        let value = parse_units(eth, 18).unwrap();
        store
            .reserve(
                native(id, None, value),
                policy.lookback_secs(),
                now,
                "agent",
                |view| decide(&policy, value, view, now),
                no_events,
            )
            .unwrap()
    };
    let ReserveOutcome::Reserved { tx: held } = reserve("tx_big", "2", 100) else { panic!("not held") };
    assert_eq!((held.status, held.nonce, held.expires_at), (TxStatus::PendingApproval, None, Some(3700)));
    // Its 2 ETH count against the 4 ETH day: 2.5 more is denied, 1 fits (nonce 0: none was taken).
    assert!(matches!(reserve("tx_over", "2.5", 101), ReserveOutcome::Denied(_)));
    let ReserveOutcome::Reserved { tx: small } = reserve("tx_small", "1", 102) else { panic!() };
    assert_eq!(small.nonce, Some(0));

    // A quorum of two: the first signature is kept, the item stays pending; the same
    // collection again changes (and audits) nothing; the second completes it.
    let step = |collected: &str, complete: bool| {
        let collected = collected.to_string();
        move |_: Option<&str>| QuorumStep { collected: collected.clone(), complete }
    };
    let approve = |merge: &dyn Fn(Option<&str>) -> QuorumStep, now: u64| {
        store.approve_held("tx_big", now, merge, entry("ok"), entry("signed"), entry("expired")).unwrap()
    };
    let Some(Resolution::Resolved(partial)) = approve(&step("[a]", false), 199) else { panic!() };
    assert_eq!((partial.status, partial.approval.as_deref()), (TxStatus::PendingApproval, Some("[a]")));
    let audited = events(store).len();
    let seen = std::sync::Mutex::new(None);
    let Some(Resolution::Resolved(_)) = approve(
        &|current: Option<&str>| {
            *seen.lock().unwrap() = current.map(str::to_string);
            QuorumStep { collected: "[a]".into(), complete: false }
        },
        199,
    ) else {
        panic!()
    };
    assert_eq!(seen.lock().unwrap().as_deref(), Some("[a]"), "the merge sees what was collected");
    assert_eq!(events(store).len(), audited, "an unchanged collection is not audited again");
    // Approved once; the second decision finds it no longer pending.
    let Some(Resolution::Resolved(approved)) = approve(&step("[a,b]", true), 200) else { panic!() };
    assert_eq!((approved.status, approved.approval.as_deref()), (TxStatus::Approved, Some("[a,b]")));
    assert!(matches!(
        store.deny_held("tx_big", 201, entry("deny"), entry("expired")).unwrap(),
        Some(Resolution::NotPending(_))
    ));
    // Claimed by one of many concurrent executors, with the next nonce.
    let claims: Vec<_> = (0..8)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            std::thread::spawn(move || store.claim_held("tx_big", 0, 300, entry("claim")).unwrap())
        })
        .map(|handle| handle.join().unwrap())
        .collect();
    let won: Vec<_> = claims.iter().filter_map(|c| if let Claim::Claimed(tx) = c { Some(tx) } else { None }).collect();
    assert_eq!(won.len(), 1, "{claims:?}");
    assert_eq!((won[0].status, won[0].nonce), (TxStatus::Reserved, Some(1)));

    // An item left alone expires and gives its spend back.
    store.release("tx_small", "test", 400, entry("released")).unwrap();
    let ReserveOutcome::Reserved { tx: waiting } = reserve("tx_wait", "1.01", 501) else { panic!() };
    assert_eq!(waiting.status, TxStatus::PendingApproval);
    assert!(store.expire_held(501 + 3600, |_| entry("expired")).unwrap().is_empty(), "not before its deadline");
    let expired = store.expire_held(501 + 3601, |_| entry("expired")).unwrap();
    assert_eq!(
        expired.iter().map(|tx| (tx.id.as_str(), tx.status)).collect::<Vec<_>>(),
        [("tx_wait", TxStatus::Expired)]
    );
    assert!(store.spends("wal_a", 0).unwrap().len() == 1, "the expired spend is gone: big remains");
}

/// The audit records' events, in order.
fn events(store: &Store) -> Vec<String> {
    store.audit_tail(1000).unwrap().iter().map(|r| r["event"].as_str().unwrap().to_string()).collect()
}

#[test]
fn an_approval_that_finds_the_item_expired_is_audited() {
    let (_dir, store) = store_with_wallet();
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"5"},
        {"id":"big","type":"tiers","approval_above":"1"}]}"#;
    let policy = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let value = parse_units("2", 18).unwrap();
    let outcome = store
        .reserve(
            native("tx_late", None, value),
            policy.lookback_secs(),
            100,
            "agent:ses_a",
            |view| decide(&policy, value, view, 100),
            no_events,
        )
        .unwrap();
    assert!(matches!(outcome, ReserveOutcome::Reserved { .. }));
    let merge = |_: Option<&str>| QuorumStep { collected: "{}".into(), complete: true };
    let resolved = store
        .approve_held("tx_late", 100 + 3601, merge, entry("approved"), entry("signed"), entry("approval.expired"))
        .unwrap();
    let Some(Resolution::Expired(tx)) = resolved else { panic!("{resolved:?}") };
    assert_eq!(tx.status, TxStatus::Expired);
    let events = events(&store);
    assert_eq!(events.last().map(String::as_str), Some("approval.expired"), "{events:?}");
    assert!(!events.iter().any(|e| e == "approved"));
    assert_eq!(store.verify_audit().unwrap(), Ok(events.len() as u64));
}

#[test]
fn an_owner_quorum_is_at_most_the_owners_and_an_unfreeze_collects_signatures() {
    let (_dir, store) = store_with_wallet();
    assert_eq!(store.owner_threshold("wal_a").unwrap(), 1, "one owner unless set");
    for key in ["ed25519:aa", "ed25519:bb"] {
        let owner = mandate_store::OwnerRecord {
            wallet_id: "wal_a".into(),
            owner_key: key.into(),
            label: String::new(),
            created_at: 1,
        };
        assert!(store.add_owner(&owner, entry("owner.added")).unwrap());
    }
    let check = |threshold: u64| move |owners: u64| if threshold <= owners { Ok(()) } else { Err(format!("{owners}")) };
    assert_eq!(store.set_owner_threshold("wal_a", 3, 5, check(3), entry("quorum")).unwrap(), Err("2".into()));
    assert_eq!(store.owner_threshold("wal_a").unwrap(), 1, "a refused quorum changes nothing");
    store.set_owner_threshold("wal_a", 2, 6, check(2), entry("owner.quorum_set")).unwrap().unwrap();
    assert_eq!(store.owner_threshold("wal_a").unwrap(), 2);
    assert_eq!(events(&store).last().map(String::as_str), Some("owner.quorum_set"));

    let record = mandate_store::FreezeRecord {
        wallet_id: "wal_a".into(),
        frozen_at: 10,
        frozen_by: "operator".into(),
        reason: "test".into(),
    };
    let freeze = store.freeze(&record, entry("wallet.frozen")).unwrap().0;
    let merge = |collected: &str, complete: bool| {
        let collected = collected.to_string();
        move |_: Option<&str>| QuorumStep { collected, complete }
    };
    assert_eq!(store.collect_unfreeze("wal_a", freeze.frozen_at + 1, 11, merge("x", false), entry("e")).unwrap(), None);
    let step = store.collect_unfreeze("wal_a", freeze.frozen_at, 11, merge("[a]", false), entry("unfreeze.signed"));
    assert!(!step.unwrap().unwrap().complete);
    assert_eq!(store.unfreeze_collected("wal_a", freeze.frozen_at).unwrap().as_deref(), Some("[a]"));
    assert_eq!(events(&store).last().map(String::as_str), Some("unfreeze.signed"));
    assert!(store.unfreeze("wal_a", freeze.frozen_at, 12, entry("wallet.unfrozen")).unwrap());
    assert_eq!(store.unfreeze_collected("wal_a", freeze.frozen_at).unwrap(), None);
    assert_eq!(store.verify_audit().unwrap(), Ok(events(&store).len() as u64));

    // Passkey counters only go up (0 stays allowed while none was seen).
    let key = "webauthn:04…@https://x.example#01";
    assert!(store.advance_passkey_counter(key, 0).unwrap());
    assert!(store.advance_passkey_counter(key, 5).unwrap());
    assert!(!store.advance_passkey_counter(key, 5).unwrap(), "the same counter twice");
    assert!(!store.advance_passkey_counter(key, 4).unwrap(), "a counter that went back");
    assert!(!store.advance_passkey_counter(key, 0).unwrap(), "0 after a counter was seen");
    assert!(store.advance_passkey_counter(key, 6).unwrap());
}

#[test]
fn revoking_a_session_cancels_what_it_left_held_and_nothing_else() {
    let (_dir, store) = store_with_wallet();
    assert!(store.insert_session(&session("ses_bad"), entry("session.created")).unwrap());
    assert!(store.insert_session(&session("ses_good"), entry("session.created")).unwrap());
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"5"},
        {"id":"slow","type":"tiers","delay_above":"0.5","delay_secs":60,"approval_above":"2"}]}"#;
    let policy = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let reserve = |id: &str, eth: &str, actor: &str| {
        let value = parse_units(eth, 18).unwrap();
        match store
            .reserve(
                native(id, None, value),
                policy.lookback_secs(),
                10,
                actor,
                |view| decide(&policy, value, view, 10),
                no_events,
            )
            .unwrap()
        {
            ReserveOutcome::Reserved { tx } => tx,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(reserve("tx_delayed", "1", "agent:ses_bad").status, TxStatus::Delayed);
    assert_eq!(reserve("tx_pending", "3", "agent:ses_bad").status, TxStatus::PendingApproval);
    assert_eq!(reserve("tx_now", "0.1", "agent:ses_bad").status, TxStatus::Reserved);
    assert_eq!(reserve("tx_other", "1", "agent:ses_good").status, TxStatus::Delayed);

    let (revoked, cancelled) =
        store.revoke_session("ses_bad", 20, entry("session.revoked"), |_| entry("transaction.cancelled")).unwrap();
    assert!(revoked);
    let mut ids: Vec<_> = cancelled.iter().map(|tx| (tx.id.as_str(), tx.status)).collect();
    ids.sort_by_key(|(id, _)| *id);
    assert_eq!(ids, [("tx_delayed", TxStatus::Cancelled), ("tx_pending", TxStatus::Cancelled)]);
    // The already-running send and another session's held send are untouched.
    assert_eq!(store.transaction("tx_now").unwrap().unwrap().status, TxStatus::Reserved);
    assert_eq!(store.transaction("tx_other").unwrap().unwrap().status, TxStatus::Delayed);
    // The spends of the cancelled ones are released.
    let spent = store.spends("wal_a", 0).unwrap();
    assert_eq!(spent.len(), 2, "tx_now and tx_other keep theirs");
    // The delayed one never runs, even when its delay has passed.
    assert!(matches!(store.claim_held("tx_delayed", 0, 1000, entry("claim")).unwrap(), Claim::NotDue));
    let tail = events(&store);
    assert_eq!(tail.iter().filter(|e| *e == "transaction.cancelled").count(), 2, "{tail:?}");

    // A send in flight at the revocation is refused at its reservation: nothing is held.
    let value = parse_units("1", 18).unwrap();
    let late = store
        .reserve(native("tx_late", None, value), 0, 21, "agent:ses_bad", |v| decide(&policy, value, v, 21), no_events)
        .unwrap();
    assert!(matches!(late, ReserveOutcome::Revoked), "{late:?}");
    assert!(store.transaction("tx_late").unwrap().is_none());
    // The other session's send still runs.
    assert!(matches!(store.claim_held("tx_other", 0, 1000, entry("claim")).unwrap(), Claim::Claimed(_)));
    assert_eq!(store.verify_audit().unwrap(), Ok(events(&store).len() as u64));
}

#[test]
fn operator_keys_are_stored_hashed_listed_touched_and_revoked_once() {
    let (dir, store) = store_with_wallet();
    let key = mandate_store::OperatorKeyRecord {
        id: "opk_1".into(),
        name: "laptop".into(),
        key_hash: "ab".repeat(32),
        scopes: vec!["read".into(), "freeze".into()],
        created_at: 10,
        created_by: "operator".into(),
        expires_at: Some(1000),
        last_used_at: None,
        revoked_at: None,
    };
    assert!(store.insert_operator_key(&key, entry("operator_key.created")).unwrap());
    assert_eq!(store.operator_key_by_hash(&"ab".repeat(32)).unwrap().unwrap(), key);
    assert!(store.operator_key_by_hash(&"cd".repeat(32)).unwrap().is_none());
    store.touch_operator_key("opk_1", 100).unwrap();
    store.touch_operator_key("opk_1", 130).unwrap();
    assert_eq!(store.operator_key("opk_1").unwrap().unwrap().last_used_at, Some(100), "once a minute at most");
    assert!(key.last_use_due(100), "never used: due");
    let used = store.operator_key("opk_1").unwrap().unwrap();
    assert!(!used.last_use_due(159) && used.last_use_due(160), "due again a minute after the last write");
    store.touch_operator_key("opk_1", 161).unwrap();
    assert_eq!(store.operator_key("opk_1").unwrap().unwrap().last_used_at, Some(161));
    assert!(store.revoke_operator_key("opk_1", 200, entry("operator_key.revoked")).unwrap().revoked);
    assert!(!store.revoke_operator_key("opk_1", 201, entry("operator_key.revoked")).unwrap().revoked);
    assert!(!store.revoke_operator_key("opk_nope", 201, entry("operator_key.revoked")).unwrap().revoked);
    let listed = store.operator_keys().unwrap();
    assert_eq!((listed.len(), listed[0].revoked_at), (1, Some(200)));
    assert!(!serde_json::to_string(&listed).unwrap().contains(&"ab".repeat(32)), "the hash is not serialized");
    assert_eq!(events(&store).iter().filter(|e| e.starts_with("operator_key.")).count(), 2);

    // A key minted with a key, and one minted with that: revoked with the first. A key
    // the operator made with the password stays.
    let minted = |id: &str, by: &str| OperatorKeyRecord {
        id: id.into(),
        key_hash: format!("{id:0>64}"),
        created_by: by.into(),
        ..key.clone()
    };
    for (id, by) in [("opk_2", "operator"), ("opk_3", "operator:key:opk_2"), ("opk_4", "operator:key:opk_3")] {
        assert!(store.insert_operator_key(&minted(id, by), entry("operator_key.created")).unwrap());
    }
    assert!(store.insert_operator_key(&minted("opk_5", "operator"), entry("operator_key.created")).unwrap());
    let revocation = store.revoke_operator_key("opk_2", 300, entry("operator_key.revoked")).unwrap();
    assert!(revocation.revoked);
    assert_eq!(revocation.also_revoked, vec!["opk_3".to_string(), "opk_4".to_string()]);
    let state: Vec<_> = store.operator_keys().unwrap().into_iter().map(|k| (k.id, k.revoked_at)).collect();
    assert!(state.contains(&("opk_4".into(), Some(300))) && state.contains(&("opk_5".into(), None)), "{state:?}");
    assert_eq!(events(&store).iter().filter(|e| *e == "operator_key.revoked").count(), 4);
    // A create made with a key that was revoked meanwhile writes nothing.
    assert!(!store.insert_operator_key(&minted("opk_6", "operator:key:opk_3"), entry("operator_key.created")).unwrap());
    assert!(store.operator_key("opk_6").unwrap().is_none());
    // Nor is a session made with a revoked key; one made with a live key is, and is found.
    let by = |actor: &str| AuditEntry { actor: actor.into(), ..entry("session.created") };
    assert!(!store.insert_session(&session("ses_by_revoked"), by("operator:key:opk_3")).unwrap());
    assert!(store.insert_session(&session("ses_by_live"), by("operator:key:opk_5")).unwrap());
    let made = store.sessions_created_by(&["operator:key:opk_3".into(), "operator:key:opk_5".into()]).unwrap();
    assert_eq!(made.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["ses_by_live"]);
    let again = store.revoke_operator_key("opk_2", 400, entry("operator_key.revoked")).unwrap();
    assert_eq!((again.revoked, again.also_revoked.len()), (false, 0), "nothing left to revoke");
    drop(dir);
}

fn outbox_event(name: &str, id: &str) -> OutboxEvent {
    OutboxEvent { name: name.into(), id: id.into(), body: format!(r#"{{"id":"{id}","type":"{name}"}}"#) }
}

/// The webhook events of a change are written in its database transaction: a denial
/// records its event with the decision, a release with the released transaction, and
/// a change that fails (the audit trail unwritable) leaves no event behind.
#[test]
fn webhook_events_are_written_with_the_change_they_report_and_never_without_it() {
    let (dir, store) = store_with_wallet();
    let hook = WebhookRecord {
        id: "whk_a".into(),
        url: "https://example.com/hook".into(),
        events: vec!["policy.denied".into(), "transaction.failed".into()],
        created_at: 1,
    };
    store.add_webhook(&hook, "sealed", entry("webhook.added")).unwrap();
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let policy = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let announce = |outcome: &ReserveOutcome| match outcome {
        ReserveOutcome::Denied(_) => vec![outbox_event("policy.denied", "evt_denied")],
        ReserveOutcome::Reserved { tx } => vec![outbox_event("policy.notify", &format!("evt_{}", tx.id))],
        _ => Vec::new(),
    };
    let two_eth = U256::from(2_000_000_000_000_000_000u128);
    let denied = store.reserve(native("t_big", None, two_eth), 0, 5, "a", |v| decide(&policy, two_eth, v, 5), announce);
    assert!(matches!(denied.unwrap(), ReserveOutcome::Denied(_)));
    let one = U256::from(1u64);
    let reserved = store.reserve(native("t_small", None, one), 0, 5, "a", |v| decide(&policy, one, v, 5), announce);
    assert!(matches!(reserved.unwrap(), ReserveOutcome::Reserved { .. }));
    let released = entry("transaction.released").with_event(outbox_event("transaction.failed", "evt_failed"));
    store.release("t_small", "the cosigner refused", 6, released).unwrap();
    // Oldest first: the denial, then the failure; `policy.notify` has no subscriber.
    let mut recorded: Vec<(String, String)> =
        store.deliveries("whk_a", 10).unwrap().into_iter().map(|d| (d.event, d.event_id)).collect();
    recorded.reverse();
    assert_eq!(
        recorded,
        vec![("policy.denied".into(), "evt_denied".into()), ("transaction.failed".into(), "evt_failed".into())]
    );

    // With the audit trail unwritable the denial is refused, and so is its event.
    let audit_dir = dir.path().join("audit");
    std::fs::remove_file(audit_dir.join("audit.jsonl")).unwrap();
    std::fs::create_dir(audit_dir.join("audit.jsonl")).unwrap();
    let refused =
        store.reserve(native("t_big2", None, two_eth), 0, 7, "a", |v| decide(&policy, two_eth, v, 7), announce);
    assert!(matches!(refused, Err(mandate_store::StoreError::AuditUnavailable(_))), "{refused:?}");
    assert_eq!(store.deliveries("whk_a", 10).unwrap().len(), 2, "no event without its change");
}

mod postgres;

/// A session or agent key revoked while its request was on its way reserves nothing:
/// the reservation re-checks the revocation in its own transaction.
#[test]
fn a_request_of_a_revoked_session_or_agent_reserves_nothing() {
    let (_dir, store) = store_with_wallet();
    assert!(store.insert_session(&session("ses_gone"), entry("session.created")).unwrap());
    let agent = mandate_store::AgentRecord {
        id: "agt_gone".into(),
        address: ALICE.into(),
        wallet_id: "wal_a".into(),
        name: "bot".into(),
        scopes: vec!["broadcast".into()],
        valid_until: 10_000,
        created_at: 1,
        revoked_at: None,
        last_used_at: None,
        policy: None,
    };
    store.register_agent(&agent, "registration", "signature", 3, entry("agent.registered")).unwrap().unwrap();
    let allow =
        |view: &ReserveView| decide(&Policy::parse(r#"{"version":1,"rules":[]}"#).unwrap(), U256::from(1), view, 5);
    // Still active: reserved.
    let outcome = store.reserve(native("t_ok", None, U256::from(1)), 0, 5, "agent:ses_gone", allow, no_events).unwrap();
    assert!(!matches!(outcome, ReserveOutcome::Revoked), "{outcome:?}");
    store.revoke_session("ses_gone", 6, entry("session.revoked"), |_| entry("transaction.cancelled")).unwrap();
    store.revoke_agent(ALICE, 6, entry("agent.revoked")).unwrap();
    for (id, actor) in [("t_ses", "agent:ses_gone"), ("t_agt", "agent:agt_gone")] {
        let outcome = store.reserve(native(id, None, U256::from(1)), 0, 7, actor, allow, no_events).unwrap();
        assert!(matches!(outcome, ReserveOutcome::Revoked), "{actor}: {outcome:?}");
        assert!(store.transaction(id).unwrap().is_none(), "{actor}: nothing reserved");
    }
    assert!(events(&store).iter().any(|e| e == "transaction.refused_revoked"), "audited");
}

/// A due delivery is handed to one dispatcher at a time: two daemons on one database
/// (here two stores on one file) never both get it; after the lease it is due again.
#[test]
fn a_due_delivery_is_leased_to_one_dispatcher() {
    let (dir, store) = store_with_wallet();
    let other = Store::open(dir.path()).unwrap();
    let hook = WebhookRecord {
        id: "whk_l".into(),
        url: "https://example.com/hook".into(),
        events: vec!["wallet.frozen".into()],
        created_at: 1,
    };
    store.add_webhook(&hook, "sealed", entry("webhook.added")).unwrap();
    store.audit(entry("wallet.frozen").with_event(outbox_event("wallet.frozen", "evt_l")), 10).unwrap();
    let first = store.due_deliveries(10).unwrap();
    assert_eq!(first.len(), 1);
    assert!(other.due_deliveries(10).unwrap().is_empty(), "leased to the first dispatcher");
    assert!(store.due_deliveries(10 + mandate_store::DELIVERY_LEASE_SECS - 1).unwrap().is_empty());
    // The first dispatcher died without recording an attempt: due again after the lease.
    assert_eq!(other.due_deliveries(10 + mandate_store::DELIVERY_LEASE_SECS).unwrap().len(), 1);
}

#[test]
fn an_abandoned_reservation_is_released_once_and_its_late_signature_is_never_stored() {
    let (_dir, store) = store_with_wallet();
    abandoned_reservation_released(&[store]);
}

/// A reservation whose daemon died: released once its lease has passed (not before,
/// not when signed), its nonce handed to the next transaction, and the dead daemon's
/// late signature refused, so one nonce never gets two stored signatures.
fn abandoned_reservation_released(stores: &[Arc<Store>]) {
    let (store, other) = (&stores[0], &stores[stores.len() - 1]);
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"5"}]}"#;
    let p = Policy::parse(document).unwrap();
    store.set_policy("wal_a", document, &p.hash, 1, entry("policy.set")).unwrap();
    let reserve = |id: &str, at: u64| {
        let outcome = store
            .reserve(native(id, None, U256::from(1)), 0, at, "a", |view| decide(&p, U256::from(1), view, at), no_events)
            .unwrap();
        assert!(matches!(outcome, ReserveOutcome::Reserved { .. }), "{outcome:?}");
        store.transaction(id).unwrap().unwrap()
    };
    let abandoned = reserve("ab1", 100);
    let released = |id: &str, cutoff: u64| other.release_abandoned(id, cutoff, "abandoned", 300, entry("x")).unwrap();
    assert!(!released("ab1", 99), "reserved after the cutoff: maybe still being signed");
    assert_eq!(store.transaction("ab1").unwrap().unwrap().status, TxStatus::Reserved);
    assert!(released("ab1", 100));
    assert!(!released("ab1", 100), "released once");
    assert_eq!(store.transaction("ab1").unwrap().unwrap().status, TxStatus::Failed);
    // The freed nonce goes to the next transaction.
    let next = reserve("ab2", 300);
    assert_eq!(next.nonce, abandoned.nonce);
    // The dead daemon's signature arrives late: refused, nothing stored for it.
    let signed = |hash: &str| Broadcast {
        hash: hash.into(),
        kind: BroadcastKind::Original,
        raw: vec![0x02, 0xf8],
        gas: 21_000,
        max_fee_per_gas: 3,
        max_priority_fee_per_gas: 1,
        created_at: 301,
    };
    let late = store.mark_submitted("ab1", &signed("0xdead"), 301, entry("transaction.signed"));
    assert!(matches!(late, Err(mandate_store::StoreError::Conflict(_))), "{late:?}");
    assert!(store.broadcasts("ab1").unwrap().is_empty());
    assert_eq!(store.transaction("ab1").unwrap().unwrap().status, TxStatus::Failed);
    // A signed (submitted) transaction is never taken for abandoned.
    store.mark_submitted("ab2", &signed("0xbeef"), 302, entry("transaction.signed")).unwrap();
    assert!(!released("ab2", u64::MAX));
    assert_eq!(store.transaction("ab2").unwrap().unwrap().status, TxStatus::Submitted);
}
