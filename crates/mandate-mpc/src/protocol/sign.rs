//! Signing a 32-byte digest with two of the three shares.

use std::collections::BTreeMap;

use dkls23::protocols::signing::{Broadcast3to4, SignData, TransmitPhase1to2, TransmitPhase2to3};
use dkls23::SignSession;
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256_dkls::Secp256k1;
use mandate_core::Role;

use super::{addressed_to, check_participants, check_parties, derive_id, from_abort, party_index};
use crate::envelope::{Router, SessionId, Transport};
use crate::error::{MpcError, Result};
use crate::share::{EcdsaSig, KeyShare, PublicKeyInfo};

/// Runs this share's side of a 2-party signing of `digest` with the other `signers`.
///
/// The caller computes `digest` itself from the full payload; a party never signs a
/// digest it was handed. The result is verified (low-S, verifies under the wallet
/// key, recovers to it) before it is returned.
///
/// `commit` runs (alongside phase 3's computation) and returns before this party
/// sends its round-3 broadcast: that message
/// lets the other signer finish the signature on its own (phase 4 needs only the
/// round-3 broadcasts), so from then on the signature must be assumed to exist
/// whatever happens to the run. A party commits its accounting there; if `commit`
/// fails, nothing is sent and the run aborts.
pub fn sign<T: Transport>(
    transport: &mut T,
    share: &KeyShare,
    session_id: SessionId,
    signers: &[Role],
    digest: &[u8; 32],
    commit: &mut dyn FnMut() -> Result<()>,
) -> Result<EcdsaSig> {
    let me = share.role();
    check_participants(signers, me, 2)?;
    share.check_not_banned(signers)?;
    let mut router = Router::new(transport, me, session_id, signers);
    let counterparties = router.peers().iter().map(|role| party_index(*role)).collect::<Result<Vec<_>>>()?;
    let data = SignData {
        sign_id: derive_id("sign", &session_id, share.wallet_id().as_str().as_bytes()),
        counterparties,
        message_hash: *digest,
    };

    let (mut session, out1) = SignSession::new(&share.party, data).map_err(from_abort)?;
    let received: Vec<(Role, TransmitPhase1to2)> =
        router.exchange(1, |peer| addressed_to(&out1, peer, |m| &m.parties))?;
    let mut in1 = Vec::new();
    for (peer, message) in received {
        check_parties(&message.parties, peer, me)?;
        in1.push(message);
    }

    let out2 = session.phase2(&in1).map_err(from_abort)?;
    let received: Vec<(Role, TransmitPhase2to3<Secp256k1>)> =
        router.exchange(2, |peer| addressed_to(&out2, peer, |m| &m.parties))?;
    let mut in2 = Vec::new();
    for (peer, message) in received {
        check_parties(&message.parties, peer, me)?;
        in2.push(message);
    }

    // The point of no return is the round-3 send: after it the peer can compute the
    // signature. The commit (an fsync) runs while phase 3 computes, and both finish
    // before anything is sent. A phase 3 that fails after a commit leaves the
    // commit standing (accounting errs on the side of counting), never the reverse.
    let (own_broadcast, committed) = std::thread::scope(|scope| {
        let phase3 = scope.spawn(|| session.phase3(&in2));
        let committed = commit();
        let own_broadcast = phase3.join().map_err(|_| MpcError::Io("phase 3 panicked".into()));
        (own_broadcast, committed)
    });
    committed?;
    let own_broadcast = own_broadcast?.map_err(from_abort)?;
    let received: Vec<(Role, Broadcast3to4<Secp256k1>)> = router.exchange(3, |_| Ok(own_broadcast.clone()))?;
    let mut broadcasts: BTreeMap<u8, Broadcast3to4<Secp256k1>> =
        received.into_iter().map(|(r, m)| (r.index(), m)).collect();
    broadcasts.insert(me.index(), own_broadcast);
    let broadcasts: Vec<Broadcast3to4<Secp256k1>> = broadcasts.into_values().collect();

    let signature = session.phase4(&broadcasts, true).map_err(from_abort)?;
    let sig = EcdsaSig { r: signature.r, s: signature.s, recovery_id: signature.recovery_id };
    verify_signature(share.public(), digest, &sig)?;
    Ok(sig)
}

/// Verifies `sig` over `digest` with k256: low-S, valid under the wallet key, and
/// its recovery id recovers exactly that key.
pub fn verify_signature(public: &PublicKeyInfo, digest: &[u8; 32], sig: &EcdsaSig) -> Result<()> {
    let key = VerifyingKey::from_sec1_bytes(&public.sec1_bytes()?).map_err(|_| MpcError::SignatureInvalid)?;
    let signature = Signature::from_scalars(sig.r, sig.s).map_err(|_| MpcError::SignatureInvalid)?;
    if signature.normalize_s().is_some() {
        return Err(MpcError::SignatureInvalid);
    }
    key.verify_prehash(digest, &signature).map_err(|_| MpcError::SignatureInvalid)?;
    let recovery_id = RecoveryId::from_byte(sig.recovery_id).ok_or(MpcError::SignatureInvalid)?;
    let recovered =
        VerifyingKey::recover_from_prehash(digest, &signature, recovery_id).map_err(|_| MpcError::SignatureInvalid)?;
    if recovered != key {
        return Err(MpcError::SignatureInvalid);
    }
    Ok(())
}
