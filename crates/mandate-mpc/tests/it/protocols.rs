use std::sync::Arc;

use mandate_core::Role;
use mandate_mpc::protocol::{self, RepairSide};
use mandate_mpc::{KeyShare, MpcError};

use crate::{dkg_all, run_all, sid};

fn sign_with(shares: &[Arc<KeyShare>], digest: [u8; 32]) -> Vec<Result<mandate_mpc::EcdsaSig, MpcError>> {
    let mut roles: Vec<Role> = shares.iter().map(|s| s.role()).collect();
    roles.sort();
    let session = sid();
    let shares: Vec<Arc<KeyShare>> = shares.to_vec();
    let signers = roles.clone();
    run_all(&roles, move |role, mut t| {
        let share = shares.iter().find(|s| s.role() == role).unwrap();
        protocol::sign(&mut t, share, session, &signers, &digest, &mut mandate_mpc::net::no_commit)
    })
}

#[test]
fn dkg_gives_one_address_and_every_pair_signs() {
    let (_, shares) = dkg_all();
    let address = shares[0].public().address.clone();
    assert!(address.starts_with("0x") && address.len() == 42);
    assert!(address.chars().any(|c| c.is_ascii_uppercase()), "EIP-55 checksum expected: {address}");
    assert!(shares.iter().all(|s| s.public() == shares[0].public()));
    let shares: Vec<Arc<KeyShare>> = shares.into_iter().map(Arc::new).collect();
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let digest: [u8; 32] = rand::random();
        let results = sign_with(&[shares[a].clone(), shares[b].clone()], digest);
        let sigs: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(sigs[0], sigs[1]);
        protocol::verify_signature(shares[0].public(), &digest, &sigs[0]).unwrap();
        // A different digest does not verify: the check can fail.
        let mut other = digest;
        other[0] ^= 1;
        assert!(protocol::verify_signature(shares[0].public(), &other, &sigs[0]).is_err());
    }
}

#[test]
fn refresh_keeps_address_and_old_shares_stop_combining_with_new() {
    let (_, old) = dkg_all();
    let old: Vec<Arc<KeyShare>> = old.into_iter().map(Arc::new).collect();
    let session = sid();
    let old_for_run = old.clone();
    let new: Vec<Arc<KeyShare>> = run_all(&Role::ALL, move |role, mut t| {
        let share = old_for_run.iter().find(|s| s.role() == role).unwrap();
        Arc::new(protocol::refresh(&mut t, share, session).unwrap())
    });
    assert_eq!(new[0].public(), old[0].public(), "address must not change");
    let digest: [u8; 32] = rand::random();
    for result in sign_with(&[new[0].clone(), new[1].clone()], digest) {
        protocol::verify_signature(new[0].public(), &digest, &result.unwrap()).unwrap();
    }
    let mixed = sign_with(&[new[0].clone(), old[1].clone()], digest);
    assert!(mixed.iter().all(|r| r.is_err()), "old + new share must not sign");
}

#[test]
fn lost_cosigner_share_is_repaired_then_signs() {
    let (wallet, shares) = dkg_all();
    let address = shares[0].public().address.clone();
    let helpers: Vec<Arc<KeyShare>> = shares.into_iter().filter(|s| s.role() != Role::Cosigner).map(Arc::new).collect();
    let session = sid();
    let run_helpers = helpers.clone();
    let new: Vec<Arc<KeyShare>> = run_all(&Role::ALL, move |role, mut t| {
        let side = match run_helpers.iter().find(|s| s.role() == role) {
            Some(share) => RepairSide::Helper(share),
            None => RepairSide::Target { wallet_id: wallet.clone(), expected_address: address.clone() },
        };
        Arc::new(protocol::repair_and_refresh(&mut t, side, role, Role::Cosigner, session).unwrap())
    });
    let digest: [u8; 32] = rand::random();
    for result in sign_with(&[new[0].clone(), new[1].clone()], digest) {
        protocol::verify_signature(new[1].public(), &digest, &result.unwrap()).unwrap();
    }
    // The pre-repair service share no longer combines with the rebuilt cosigner share.
    assert!(sign_with(&[helpers[0].clone(), new[1].clone()], digest).iter().all(|r| r.is_err()));
}

#[test]
fn repair_refuses_helpers_offering_another_wallet() {
    let (wallet, shares) = dkg_all();
    let helpers: Vec<Arc<KeyShare>> = shares.into_iter().filter(|s| s.role() != Role::Cosigner).map(Arc::new).collect();
    let session = sid();
    let results = run_all(&Role::ALL, move |role, mut t| {
        let side = match helpers.iter().find(|s| s.role() == role) {
            Some(share) => RepairSide::Helper(share),
            None => RepairSide::Target {
                wallet_id: wallet.clone(),
                expected_address: "0x0000000000000000000000000000000000000001".into(),
            },
        };
        protocol::repair_and_refresh(&mut t, side, role, Role::Cosigner, session).map(|_| ())
    });
    let target = &results[1];
    assert!(matches!(target, Err(MpcError::Aborted { .. })), "{target:?}");
}

#[test]
fn high_s_and_wrong_recovery_id_are_refused() {
    use k256::ecdsa::Signature;
    let (_, shares) = dkg_all();
    let shares: Vec<Arc<KeyShare>> = shares.into_iter().map(Arc::new).collect();
    let digest: [u8; 32] = rand::random();
    let sig = sign_with(&[shares[0].clone(), shares[2].clone()], digest).remove(0).unwrap();
    protocol::verify_signature(shares[0].public(), &digest, &sig).unwrap();
    // The same signature with s replaced by n - s is valid ECDSA but not low-S.
    let low = Signature::from_scalars(sig.r, sig.s).unwrap();
    let high_s: [u8; 32] = (-*low.s()).to_bytes().into();
    let high = mandate_mpc::EcdsaSig { s: high_s, recovery_id: sig.recovery_id ^ 1, ..sig };
    assert!(protocol::verify_signature(shares[0].public(), &digest, &high).is_err());
    let wrong_id = mandate_mpc::EcdsaSig { recovery_id: sig.recovery_id ^ 1, ..sig };
    assert!(protocol::verify_signature(shares[0].public(), &digest, &wrong_id).is_err());
}

#[test]
fn child_keys_derive_per_party_sign_together_and_survive_a_refresh() {
    let (_, shares) = dkg_all();
    // Every party derives child 7 by itself: one new address, the same for all.
    let children: Vec<Arc<KeyShare>> = shares.iter().map(|s| Arc::new(s.derive_child(7).unwrap())).collect();
    assert!(children.iter().all(|c| c.public() == children[0].public()));
    assert_ne!(children[0].public(), shares[0].public(), "a child has its own key");
    assert_ne!(shares[0].derive_child(8).unwrap().public(), children[0].public());
    let digest: [u8; 32] = rand::random();
    let sigs: Vec<_> =
        sign_with(&[children[0].clone(), children[2].clone()], digest).into_iter().map(|r| r.unwrap()).collect();
    protocol::verify_signature(children[0].public(), &digest, &sigs[0]).unwrap();
    assert!(protocol::verify_signature(shares[0].public(), &digest, &sigs[0]).is_err(), "not the parent's key");
    // Parties that derive different children produce no signature.
    let other = Arc::new(shares[1].derive_child(8).unwrap());
    assert!(sign_with(&[children[0].clone(), other], digest).iter().any(|r| r.is_err()));
    // Hardened children are refused (no party holds the whole key).
    assert!(shares[0].derive_child(mandate_mpc::HARDENED).is_err());
    // After a refresh the same child index gives the same address.
    let shares: Vec<Arc<KeyShare>> = shares.into_iter().map(Arc::new).collect();
    let session = sid();
    let refreshed: Vec<KeyShare> = run_all(&Role::ALL, move |role, mut t| {
        let share = shares.iter().find(|s| s.role() == role).unwrap();
        protocol::refresh(&mut t, share, session).unwrap()
    });
    assert_eq!(refreshed[0].derive_child(7).unwrap().public(), children[0].public());
}

/// The commit hook is the signing run's point of no return: it has returned before
/// this party's round-3 message leaves (the peer cannot finish earlier), and when it
/// fails nothing leaves (the peer cannot finish at all).
#[test]
fn the_round_three_message_leaves_only_after_a_successful_commit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_, shares) = dkg_all();
    let shares: Vec<Arc<KeyShare>> = shares.into_iter().map(Arc::new).collect();
    let pair = [shares[0].clone(), shares[1].clone()];
    for commit_succeeds in [true, false] {
        let committed = Arc::new(AtomicBool::new(false));
        let session = sid();
        let (pair, flag) = (pair.clone(), committed.clone());
        let digest: [u8; 32] = rand::random();
        let results = run_all(&[Role::Service, Role::Cosigner], move |role, mut t| {
            let share = pair.iter().find(|s| s.role() == role).unwrap();
            let signers = [Role::Service, Role::Cosigner];
            if role == Role::Service {
                // A slow commit (an fsync on a busy disk).
                let mut commit = || {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    flag.store(true, Ordering::SeqCst);
                    if commit_succeeds {
                        Ok(())
                    } else {
                        Err(MpcError::Io("disk gone".into()))
                    }
                };
                (protocol::sign(&mut t, share, session, &signers, &digest, &mut commit), true)
            } else {
                let result =
                    protocol::sign(&mut t, share, session, &signers, &digest, &mut mandate_mpc::net::no_commit);
                // The peer finished only with the service's round-3 message.
                (result, flag.load(Ordering::SeqCst))
            }
        });
        let (service, (cosigner, committed_when_cosigner_finished)) = (&results[0].0, &results[1]);
        assert!(committed.load(Ordering::SeqCst));
        if commit_succeeds {
            assert!(service.is_ok() && cosigner.is_ok(), "{service:?} {cosigner:?}");
            assert!(committed_when_cosigner_finished, "the peer finished before the commit returned");
        } else {
            assert!(matches!(service, Err(MpcError::Io(m)) if m == "disk gone"), "{service:?}");
            assert!(cosigner.is_err(), "the peer signed without the service's round-3 message");
        }
    }
}
