use crate::{error_code, ok, signer_of, transfer, Cluster, RECOVERY_ENV};

#[test]
fn three_processes_run_dkg_and_every_pair_signs() {
    let cluster = Cluster::start();
    let (wallet, address) = cluster.create_wallet();
    assert!(address.starts_with("0x") && address.len() == 42);

    // Each process holds exactly one share, in its own place.
    assert!(cluster.share_file("service", &wallet).exists());
    assert!(cluster.share_file("cosigner", &wallet).exists());
    assert!(std::path::Path::new(&cluster.recovery_share()).exists());
    for party in ["service", "cosigner"] {
        let count = std::fs::read_dir(cluster.dir.path().join(party).join("shares")).unwrap().count();
        assert_eq!(count, 1, "{party} holds exactly one share file");
    }
    assert!(!cluster.dir.path().join("recovery").join("shares").exists(), "recovery keeps no online share");

    let tx = transfer("100000000000000000", 0);
    let (success, signed) = cluster.service_sign(&wallet, &tx);
    assert!(success, "{signed}");
    assert_eq!(signer_of(&signed), address);

    for with in ["service", "cosigner"] {
        let (success, signed) = cluster.recovery_sign(&cluster.recovery_share(), with, &transfer("1000", 1));
        assert!(success, "recovery + {with}: {signed}");
        assert_eq!(signer_of(&signed), address, "recovery + {with}");
    }
}

#[test]
fn refresh_keeps_the_address_and_old_shares_stop_working() {
    let cluster = Cluster::start();
    let (wallet, address) = cluster.create_wallet();
    let old = cluster.path("old-recovery.share");
    std::fs::copy(cluster.recovery_share(), &old).unwrap();

    let out = ok(
        &[
            "recovery",
            "refresh",
            "--dir",
            &cluster.path("recovery"),
            "--share",
            &cluster.recovery_share(),
            "--owner-key",
            &cluster.owner_key(),
        ],
        &[RECOVERY_ENV],
    );
    assert_eq!(out["address"], address);

    let tx = transfer("1000", 0);
    let (success, signed) = cluster.service_sign(&wallet, &tx);
    assert!(success, "{signed}");
    assert_eq!(signer_of(&signed), address);
    let (success, signed) = cluster.recovery_sign(&cluster.recovery_share(), "cosigner", &tx);
    assert!(success, "{signed}");
    assert_eq!(signer_of(&signed), address);

    // The pre-refresh recovery share with the refreshed cosigner share: refused.
    let (success, out) = cluster.recovery_sign(&old, "cosigner", &tx);
    assert!(!success);
    assert_eq!(error_code(&out), "PROTOCOL_ABORTED", "{out}");
    assert!(out.get("raw_tx").is_none());
}

#[test]
fn deleted_cosigner_share_is_repaired_from_service_and_recovery() {
    let mut cluster = Cluster::start();
    let (wallet, address) = cluster.create_wallet();
    cluster.cosigner = None;
    std::fs::remove_file(cluster.share_file("cosigner", &wallet)).unwrap();
    cluster.start_cosigner();

    let tx = transfer("1000", 0);
    let (success, out) = cluster.service_sign(&wallet, &tx);
    assert!(!success);
    assert_eq!(error_code(&out), "SHARE_NOT_FOUND", "{out}");

    let out = ok(
        &[
            "recovery",
            "repair",
            "--dir",
            &cluster.path("recovery"),
            "--share",
            &cluster.recovery_share(),
            "--owner-key",
            &cluster.owner_key(),
            "--target",
            "cosigner",
        ],
        &[RECOVERY_ENV],
    );
    assert_eq!(out["address"], address);
    assert!(cluster.share_file("cosigner", &wallet).exists());

    let (success, signed) = cluster.service_sign(&wallet, &tx);
    assert!(success, "{signed}");
    assert_eq!(signer_of(&signed), address);
}
