//! Attacks on the parties: each is refused with its own code and nothing is signed.

use mandate_test_support::{Mischief, Proxy};

use crate::{error_code, mandate, ok, transfer, Cluster, SERVICE_ENV};

fn refused(result: (bool, serde_json::Value), code: &str) {
    let (success, out) = result;
    assert!(!success, "expected {code}, got success: {out}");
    assert_eq!(error_code(&out), code, "{out}");
    assert!(out.get("raw_tx").is_none(), "no signature may be produced");
}

#[test]
fn cosigner_refuses_a_service_with_an_unpinned_key() {
    let cluster = Cluster::start();
    let (wallet, _) = cluster.create_wallet();
    // A stolen service share on a machine whose identity key the cosigner never pinned.
    let rogue = cluster.path("rogue");
    ok(&["service", "init", "--data-dir", &rogue], &[]);
    std::fs::create_dir_all(format!("{rogue}/shares")).unwrap();
    std::fs::copy(cluster.share_file("service", &wallet), format!("{rogue}/shares/{wallet}.share")).unwrap();
    let r = cluster.keys[2].clone();
    ok(
        &[
            "service",
            "pair",
            "--data-dir",
            &rogue,
            "--cosigner-pubkey",
            &cluster.keys[1],
            "--cosigner-addr",
            &cluster.cosigner_addr,
            "--recovery-pubkey",
            &r,
        ],
        &[],
    );
    let result = mandate(
        &["service", "sign", "--data-dir", &rogue, "--wallet", &wallet, "--tx", &transfer("1", 0)],
        &[SERVICE_ENV],
    );
    refused(result, "PEER_IDENTITY_MISMATCH");
}

#[test]
fn service_refuses_a_cosigner_with_another_key() {
    let cluster = Cluster::start();
    let (wallet, _) = cluster.create_wallet();
    let impostor_key = ok(&["cosigner", "init", "--data-dir", &cluster.path("impostor")], &[])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    cluster.pair_service(&impostor_key, &cluster.cosigner_addr);
    refused(cluster.service_sign(&wallet, &transfer("1", 0)), "PEER_IDENTITY_MISMATCH");
}

#[test]
fn tampered_message_is_refused() {
    let cluster = Cluster::start();
    let (wallet, _) = cluster.create_wallet();
    // Frames from the cosigner: 0 handshake, 1 welcome, 2 accept, 3 first protocol message.
    let proxy = Proxy::start(cluster.cosigner_addr.clone(), Mischief::Tamper(3));
    cluster.pair_service(&cluster.keys[1], &proxy.addr);
    refused(cluster.service_sign(&wallet, &transfer("1", 0)), "MESSAGE_TAMPERED");
}

#[test]
fn replayed_message_is_refused() {
    let cluster = Cluster::start();
    let (wallet, _) = cluster.create_wallet();
    let proxy = Proxy::start(cluster.cosigner_addr.clone(), Mischief::Replay(3));
    cluster.pair_service(&cluster.keys[1], &proxy.addr);
    refused(cluster.service_sign(&wallet, &transfer("1", 0)), "MESSAGE_REPLAYED");
}

#[test]
fn cosigner_limits_and_freeze_refuse_before_any_protocol_message() {
    let mut cluster = Cluster::start();
    let (wallet, address) = cluster.create_wallet();
    let cosigner_dir = cluster.path("cosigner");

    // Default limits: 1 ETH per transaction (value + gas × max fee), 5 ETH per day.
    refused(cluster.service_sign(&wallet, &transfer("1000000000000000000", 0)), "COSIGNER_PER_TX_LIMIT");

    // Calldata cannot be valued by the cosigner: refused unless allowed.
    let call = ok(
        &[
            "tx",
            "build",
            "--chain-id",
            "31337",
            "--nonce",
            "0",
            "--to",
            &address,
            "--value-wei",
            "0",
            "--gas-limit",
            "60000",
            "--data",
            "0xa9059cbb",
        ],
        &[],
    )["unsigned_tx"]
        .as_str()
        .unwrap()
        .to_string();
    refused(cluster.service_sign(&wallet, &call), "COSIGNER_CALLDATA_REFUSED");

    // Daily maximum: five 0.99 ETH transfers fit in 5 ETH, the sixth does not.
    // The ledger is kept across a cosigner restart.
    for nonce in 0..5 {
        let (success, out) = cluster.service_sign(&wallet, &transfer("990000000000000000", nonce));
        assert!(success, "transfer {nonce}: {out}");
    }
    cluster.start_cosigner();
    refused(cluster.service_sign(&wallet, &transfer("990000000000000000", 5)), "COSIGNER_DAILY_LIMIT");

    // Frozen on the cosigner host: refuses even a tiny amount, for this wallet or all.
    ok(&["cosigner", "freeze", "--data-dir", &cosigner_dir, "--wallet", &wallet], &[]);
    refused(cluster.service_sign(&wallet, &transfer("1", 6)), "COSIGNER_FROZEN");
    ok(&["cosigner", "unfreeze", "--data-dir", &cosigner_dir, "--wallet", &wallet], &[]);
    ok(&["cosigner", "freeze", "--data-dir", &cosigner_dir], &[]);
    refused(cluster.service_sign(&wallet, &transfer("1", 6)), "COSIGNER_FROZEN");
    ok(&["cosigner", "unfreeze", "--data-dir", &cosigner_dir], &[]);
    let (success, out) = cluster.service_sign(&wallet, &transfer("1", 6));
    assert!(success, "{out}");
}

#[test]
fn secret_files_with_loose_permissions_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cluster = Cluster::start();
    let key = format!("{}/identity.key", cluster.path("service"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (success, out) = mandate(
        &["service", "serve", "--data-dir", &cluster.path("service"), "--listen", "127.0.0.1:0"],
        &[SERVICE_ENV],
    );
    assert!(!success);
    assert_eq!(error_code(&out), "INSECURE_FILE_PERMISSIONS", "{out}");
}

#[test]
fn a_flood_of_idle_connections_is_bounded_and_does_not_stop_signing() {
    use std::io::Read;
    let cluster = Cluster::start();
    let (wallet, _) = cluster.create_wallet();
    // An attacker who can reach the cosigner's port opens connections and says nothing.
    let idle: Vec<std::net::TcpStream> = (0..mandate_mpc::net::MAX_OPEN_CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(&cluster.cosigner_addr).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // One more is closed at once, unanswered.
    let mut extra = std::net::TcpStream::connect(&cluster.cosigner_addr).unwrap();
    extra.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    let read = extra.read(&mut byte);
    assert!(matches!(read, Ok(0)) || read.is_err(), "the connection over the bound stayed open: {read:?}");
    assert!(
        !matches!(read, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the connection over the bound was left hanging"
    );
    // The attacker's connections end; the legitimate service signs again.
    drop(idle);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (success, signed) = cluster.service_sign(&wallet, &transfer("1", 0));
    assert!(success, "{signed}");
}
