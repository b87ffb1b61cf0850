//! A party that cheats on the wire is refused, and the error names it.

use std::sync::Arc;

use mandate_core::Role;
use mandate_mpc::memory::{mesh, MemoryTransport};
use mandate_mpc::net::no_commit;
use mandate_mpc::{protocol, Envelope, KeyShare, MpcError, Result, SessionId, Transport};

use crate::{dkg_all, sid};

/// Wraps the cheater's transport and rewrites what it sends.
struct Cheat {
    inner: MemoryTransport,
    sent: Vec<Vec<u8>>,
    mode: Mode,
}

#[derive(Clone, Copy)]
enum Mode {
    ReplayFirst,
    ClaimRecovery,
}

impl Transport for Cheat {
    fn send(&mut self, to: Role, bytes: Vec<u8>) -> Result<()> {
        let out = match (self.mode, self.sent.first()) {
            (Mode::ReplayFirst, Some(first)) => first.clone(),
            (Mode::ClaimRecovery, _) => {
                let mut envelope = Envelope::decode(Role::Cosigner, &bytes)?;
                envelope.sender = Role::Recovery;
                envelope.encode()?
            }
            _ => bytes.clone(),
        };
        self.sent.push(bytes);
        self.inner.send(to, out)
    }
    fn recv(&mut self, from: Role) -> Result<Vec<u8>> {
        self.inner.recv(from)
    }
}

/// Service (honest) and cosigner (transport given by `cosigner`) sign; returns the
/// service's result.
fn service_result(
    shares: Vec<KeyShare>,
    service_session: SessionId,
    cosigner_session: SessionId,
    mode: Option<Mode>,
) -> std::result::Result<mandate_mpc::EcdsaSig, MpcError> {
    let shares: Vec<Arc<KeyShare>> = shares.into_iter().map(Arc::new).collect();
    let signers = [Role::Service, Role::Cosigner];
    let mut ends = mesh(&signers).into_iter();
    let (mut service_t, cosigner_t) = (ends.next().unwrap(), ends.next().unwrap());
    let digest = [9u8; 32];
    let cosigner_share = shares[1].clone();
    let cheater = std::thread::spawn(move || match mode {
        Some(mode) => {
            let mut t = Cheat { inner: cosigner_t, sent: Vec::new(), mode };
            protocol::sign(&mut t, &cosigner_share, cosigner_session, &signers, &digest, &mut no_commit).map(|_| ())
        }
        None => {
            let mut t = cosigner_t;
            protocol::sign(&mut t, &cosigner_share, cosigner_session, &signers, &digest, &mut no_commit).map(|_| ())
        }
    });
    let result = protocol::sign(&mut service_t, &shares[0], service_session, &signers, &digest, &mut no_commit);
    drop(service_t);
    let _ = cheater.join();
    result
}

#[test]
fn message_from_another_session_is_refused_naming_the_sender() {
    let (_, shares) = dkg_all();
    let err = service_result(shares, sid(), sid(), None).unwrap_err();
    assert!(matches!(err, MpcError::WrongSession { culprit: Role::Cosigner }), "{err:?}");
    assert_eq!(err.code().as_str(), "WRONG_SESSION");
}

#[test]
fn replayed_message_is_refused_naming_the_sender() {
    let (_, shares) = dkg_all();
    let session = sid();
    let err = service_result(shares, session, session, Some(Mode::ReplayFirst)).unwrap_err();
    assert!(matches!(err, MpcError::Replay { culprit: Role::Cosigner, round: 1 }), "{err:?}");
    assert_eq!(err.code().as_str(), "MESSAGE_REPLAYED");
}

#[test]
fn message_claiming_another_sender_is_refused() {
    let (_, shares) = dkg_all();
    let session = sid();
    let err = service_result(shares, session, session, Some(Mode::ClaimRecovery)).unwrap_err();
    assert!(matches!(err, MpcError::WrongSender { culprit: Role::Cosigner, claimed: Role::Recovery }), "{err:?}");
}

#[test]
fn banned_party_stays_excluded() {
    let (_, mut shares) = dkg_all();
    shares[0].ban(Role::Cosigner);
    let session = sid();
    let err = service_result(shares, session, session, None).unwrap_err();
    assert!(matches!(err, MpcError::Banned { party: Role::Cosigner }), "{err:?}");
}
