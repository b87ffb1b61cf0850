use mandate_core::{Role, WalletId};
use mandate_mpc::blob::{self, KdfParams};
use mandate_mpc::MpcError;
use proptest::prelude::*;

use crate::dkg_all;

fn sealed() -> (WalletId, Vec<u8>) {
    let (wallet, shares) = dkg_all();
    let bytes = blob::seal_with(&shares[1], b"correct horse", KdfParams::MINIMUM, &mut rand::rngs::OsRng).unwrap();
    (wallet, bytes)
}

#[test]
fn production_cost_round_trips() {
    let (wallet, shares) = dkg_all();
    let bytes = blob::seal(&shares[0], b"pw", &mut rand::rngs::OsRng).unwrap();
    let opened = blob::open(&bytes, b"pw", &wallet, Role::Service).unwrap();
    assert_eq!(opened.public(), shares[0].public());
}

#[test]
fn wrong_passphrase_is_its_own_error() {
    let (wallet, bytes) = sealed();
    let err = blob::open(&bytes, b"wrong", &wallet, Role::Cosigner).unwrap_err();
    assert!(matches!(err, MpcError::WrongPassphrase), "{err:?}");
    assert!(blob::open(&bytes, b"correct horse", &wallet, Role::Cosigner).is_ok());
}

#[test]
fn every_flipped_byte_is_rejected_without_panic() {
    let (wallet, bytes) = sealed();
    // Every header byte, every trailing checksum byte, and a stride through the
    // ciphertext (flipping all of it would only repeat the same AEAD check).
    let positions = (0..256).chain((256..bytes.len() - 32).step_by(97)).chain(bytes.len() - 32..bytes.len());
    for i in positions {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x01;
        let err = blob::open(&tampered, b"correct horse", &wallet, Role::Cosigner).unwrap_err();
        assert!(matches!(err, MpcError::ShareTampered | MpcError::UnsupportedVersion(_)), "byte {i}: {err:?}");
    }
}

#[test]
fn blob_moved_to_another_wallet_or_role_is_refused() {
    let (wallet, bytes) = sealed();
    let other = WalletId::from_random([1; 12]);
    let err = blob::open(&bytes, b"correct horse", &other, Role::Cosigner).unwrap_err();
    assert!(matches!(err, MpcError::ShareWrongContext { .. }), "{err:?}");
    let err = blob::open(&bytes, b"correct horse", &wallet, Role::Service).unwrap_err();
    assert!(matches!(err, MpcError::ShareWrongContext { .. }), "{err:?}");
    assert_eq!(err.code().as_str(), "SHARE_WRONG_CONTEXT");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let wallet = WalletId::from_random([2; 12]);
        prop_assert!(blob::open(&bytes, b"x", &wallet, Role::Service).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    #[test]
    fn seal_open_round_trips(pass in proptest::collection::vec(any::<u8>(), 1..64), role_pick in 0usize..3) {
        let (wallet, shares) = dkg_all();
        let share = &shares[role_pick];
        let bytes = blob::seal_with(share, &pass, KdfParams::MINIMUM, &mut rand::rngs::OsRng).unwrap();
        let opened = blob::open(&bytes, &pass, &wallet, share.role()).unwrap();
        prop_assert_eq!(opened.public(), share.public());
        prop_assert_eq!(opened.role(), share.role());
    }
}

#[test]
fn a_ban_survives_sealing_and_still_refuses_the_party() {
    let (wallet, shares) = dkg_all();
    let banned = shares[0].with_ban(Role::Cosigner);
    let bytes = blob::seal_with(&banned, b"pw", KdfParams::MINIMUM, &mut rand::rngs::OsRng).unwrap();
    let reopened = blob::open(&bytes, b"pw", &wallet, Role::Service).unwrap();
    assert!(reopened.banned().contains(&Role::Cosigner));
    let err = reopened.check_not_banned(&[Role::Service, Role::Cosigner]).unwrap_err();
    assert!(matches!(err, MpcError::Banned { party: Role::Cosigner }), "{err:?}");
    assert!(reopened.check_not_banned(&[Role::Service, Role::Recovery]).is_ok());
}
