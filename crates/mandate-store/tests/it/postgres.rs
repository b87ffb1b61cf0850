//! The same invariants on PostgreSQL, with two stores on one database standing for two
//! daemons (replicas): a real server started here ([`mandate_test_support::Postgres`]).

use super::*;
use mandate_store::DatabaseUrl;
use mandate_test_support::Postgres;

/// Two replicas on a fresh database `name` (opened concurrently: they migrate once),
/// the first having created wallet `wal_a`.
fn replicas(pg: &Postgres, name: &str) -> (tempfile::TempDir, Vec<Arc<Store>>) {
    let url = DatabaseUrl::parse(&pg.new_database(name)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opened: Vec<Store> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..2).map(|_| scope.spawn(|| Store::open_with(dir.path(), Some(&url)).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut opened = opened.into_iter();
    let first = with_wallet(opened.next().unwrap());
    let second = Arc::new(opened.next().unwrap());
    assert!(first.is_shared() && second.is_shared());
    (dir, vec![first, second])
}

#[test]
fn on_postgres_every_invariant_holds_across_two_replicas() {
    let pg = Postgres::start();

    // Caps and nonces: 20 concurrent reservations over both replicas, exactly 6.
    let (dir, stores) = replicas(&pg, "caps");
    concurrent_reservations(&stores);
    assert_eq!(stores[1].verify_audit().unwrap(), Ok(2 + 20));
    assert!(!dir.path().join("audit/audit.jsonl").exists(), "on PostgreSQL the table is the trail");

    // A replica's decision counts what the other reserved or released since it last looked.
    let (_dir, stores) = replicas(&pg, "windows");
    spends_seen_across_stores(&stores);

    // Both replicas' trackers report one receipt: recorded once.
    let (_dir, stores) = replicas(&pg, "receipts");
    receipt_recorded_once(&stores);

    // A replica releases the other's abandoned reservation once; its late signature is refused.
    let (_dir, stores) = replicas(&pg, "abandoned");
    abandoned_reservation_released(&stores);

    // A released nonce is handed out again; an idempotency key returns the first.
    let (_dir, stores) = replicas(&pg, "nonces");
    released_nonce_and_idempotency(&stores[0]);
    let document = r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"1"}]}"#;
    let policy = Arc::new(Policy::parse(document).unwrap());
    // The same key sent 10 times at once to both replicas: one reservation.
    let outcomes: Vec<_> = (0..10)
        .map(|n| {
            let (store, policy) = (stores[n % 2].clone(), policy.clone());
            std::thread::spawn(move || {
                let request = native(&format!("dup_{n}"), Some("same-key"), U256::from(1));
                store.reserve(request, 0, 9, "a", |v| decide(&policy, U256::from(1), v, 9), no_events).unwrap()
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    let reserved: Vec<_> =
        outcomes.iter().filter_map(|o| if let ReserveOutcome::Reserved { tx } = o { Some(tx) } else { None }).collect();
    assert_eq!(reserved.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            ReserveOutcome::Reserved { tx } | ReserveOutcome::Existing(tx) => assert_eq!(tx.id, reserved[0].id),
            other => panic!("{other:?}"),
        }
    }

    // Held transactions are claimed once by executors of both replicas.
    let (_dir, stores) = replicas(&pg, "held");
    held_claimed_once(&stores);

    // The audit chain: appends from both replicas at once form one chain.
    let (_dir, stores) = replicas(&pg, "audit");
    let handles: Vec<_> = (0..40)
        .map(|n| {
            let store = stores[n % 2].clone();
            std::thread::spawn(move || store.audit(entry(&format!("e{n}")), 10).unwrap().seq)
        })
        .collect();
    let mut seqs: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..42).collect::<Vec<_>>(), "every record its own number");
    assert_eq!(stores[0].verify_audit().unwrap(), Ok(41));
    let anchor = stores[1].audit_head().unwrap().unwrap();
    assert_eq!(stores[0].verify_audit_anchored(Some(&anchor)).unwrap(), Ok(41));
    // Tampering with the table is named, as with the file.
    let mut client = ::postgres::Client::connect(&pg.new_database_url("audit"), ::postgres::NoTls).unwrap();
    client
        .execute("UPDATE audit SET line = replace(line, '\"e1\"', '\"x1\"') WHERE line LIKE '%\"e1\"%'", &[])
        .unwrap();
    let edited = stores[0].verify_audit().unwrap().unwrap_err();
    assert!(matches!(edited, AuditProblem::Edited { .. }), "{edited:?}");
    client.execute("UPDATE audit SET line = replace(line, '\"x1\"', '\"e1\"')", &[]).unwrap();
    assert_eq!(stores[0].verify_audit().unwrap(), Ok(41));
    client.execute("DELETE FROM audit WHERE seq = 3", &[]).unwrap();
    assert_eq!(stores[0].verify_audit().unwrap(), Err(AuditProblem::Deleted { expected: 3, found: 4 }));
    client.execute("DELETE FROM audit WHERE seq >= 3", &[]).unwrap();
    assert_eq!(
        stores[0].verify_audit_anchored(Some(&anchor)).unwrap(),
        Err(AuditProblem::Cut { last: 2, anchored: 41 })
    );

    // Webhook events are written with the change, seen by every replica.
    let (_dir, stores) = replicas(&pg, "outbox");
    let hook = WebhookRecord {
        id: "whk_a".into(),
        url: "https://example.com/hook".into(),
        events: vec!["policy.denied".into()],
        created_at: 1,
    };
    stores[0].add_webhook(&hook, "sealed", entry("webhook.added")).unwrap();
    stores[0].set_policy("wal_a", document, &policy.hash, 1, entry("policy.set")).unwrap();
    let two = U256::from(2_000_000_000_000_000_000u128);
    let announce = |_: &ReserveOutcome| vec![outbox_event("policy.denied", "evt_denied")];
    let denied = stores[1].reserve(native("t_big", None, two), 0, 5, "a", |v| decide(&policy, two, v, 5), announce);
    assert!(matches!(denied.unwrap(), ReserveOutcome::Denied(_)));
    let due = stores[0].due_deliveries(10).unwrap();
    assert_eq!(due.iter().map(|(d, _, _)| d.event_id.as_str()).collect::<Vec<_>>(), ["evt_denied"]);

    // A wrong password is refused without showing it.
    let wrong = pg.url().replace(pg.password(), "not-the-password-xyz");
    let refused = Store::open_with(_dir.path(), Some(&DatabaseUrl::parse(&wrong).unwrap())).err().unwrap();
    let shown = format!("{refused} {refused:?}");
    assert!(!shown.contains("not-the-password-xyz") && !shown.contains(pg.password()), "{shown}");
}
