//! Complete refresh: all three parties re-randomise their shares; the group key
//! and address stay the same, and shares from before the refresh no longer combine
//! with shares from after it.

use std::collections::BTreeMap;

use dkls23::protocols::dkg::{
    ProofCommitment, TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::secp256k1::{Party, PublicKeyPackage};
use k256_dkls::{Scalar, Secp256k1};
use mandate_core::{Role, WalletId};
use serde::{Deserialize, Serialize};

use super::{addressed_to, check_parties, confirm_transcript, derive_id, from_abort, transcript_hash};
use crate::envelope::{Router, SessionId, Transport};
use crate::error::{MpcError, Result};
use crate::share::KeyShare;

#[derive(Serialize, Deserialize)]
struct Round1 {
    fragment: Scalar,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Round2 {
    proof_commitment: ProofCommitment<Secp256k1>,
    zero: TransmitInitZeroSharePhase2to4,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Round3 {
    zero: TransmitInitZeroSharePhase3to4,
    mul: TransmitInitMulPhase3to4<Secp256k1>,
}

/// Runs this share's side of a complete refresh with the other two parties.
/// Returns the refreshed share; the caller replaces the old one with it.
pub fn refresh<T: Transport>(transport: &mut T, share: &KeyShare, session_id: SessionId) -> Result<KeyShare> {
    share.check_not_banned(&Role::ALL)?;
    let mut router = Router::new(transport, share.role(), session_id, &Role::ALL);
    let (party, package) = refresh_rounds(&mut router, &share.party, &share.package, &share.wallet_id, session_id, 0)?;
    let mut refreshed = KeyShare::new(share.wallet_id.clone(), share.role, party, package)?;
    refreshed.banned = share.banned.clone();
    if refreshed.public() != share.public() {
        return Err(MpcError::Aborted {
            culprit: crate::error::Culprit::Unknown,
            reason: "refresh changed the group key".into(),
            ban: false,
        });
    }
    Ok(refreshed)
}

/// The refresh rounds, numbered from `first_round + 1`, shared with repair.
pub(crate) fn refresh_rounds<T: Transport>(
    router: &mut Router<'_, T>,
    party: &Party,
    package: &PublicKeyPackage,
    wallet_id: &WalletId,
    session_id: SessionId,
    first_round: u8,
) -> Result<(Party, PublicKeyPackage)> {
    let me = router.me();
    let refresh_sid = derive_id("refresh", &session_id, wallet_id.as_str().as_bytes());

    let evaluations = party.refresh_complete_phase1();
    let own_fragment = *evaluations
        .get(usize::from(me.index() - 1))
        .ok_or_else(|| MpcError::InvalidInput("missing own evaluation".into()))?;
    let received: Vec<(Role, Round1)> = router.exchange(first_round + 1, |peer| {
        evaluations
            .get(usize::from(peer.index() - 1))
            .map(|fragment| Round1 { fragment: *fragment })
            .ok_or_else(|| MpcError::InvalidInput("missing evaluation".into()))
    })?;
    let mut fragments: BTreeMap<u8, Scalar> = received.into_iter().map(|(r, m)| (r.index(), m.fragment)).collect();
    fragments.insert(me.index(), own_fragment);
    let fragments: Vec<Scalar> = fragments.into_values().collect();

    let (correction, own_commitment, zero_keep, zero_out) = party.refresh_complete_phase2(&refresh_sid, &fragments);
    let received: Vec<(Role, Round2)> = router.exchange(first_round + 2, |peer| {
        Ok(Round2 { proof_commitment: own_commitment.clone(), zero: addressed_to(&zero_out, peer, |m| &m.parties)? })
    })?;
    let mut commitments = BTreeMap::new();
    commitments.insert(me.index(), own_commitment);
    let mut zero_in2 = Vec::new();
    for (peer, message) in received {
        check_parties(&message.zero.parties, peer, me)?;
        if message.proof_commitment.index.as_u8() != peer.index() {
            return Err(MpcError::WrongSender { culprit: peer, claimed: peer });
        }
        commitments.insert(peer.index(), message.proof_commitment);
        zero_in2.push(message.zero);
    }
    let commitments: Vec<ProofCommitment<Secp256k1>> = commitments.into_values().collect();

    let (zero_keep3, zero_out3, mul_keep, mul_out) = party.refresh_complete_phase3(&refresh_sid, &zero_keep);
    let received: Vec<(Role, Round3)> = router.exchange(first_round + 3, |peer| {
        Ok(Round3 {
            zero: addressed_to(&zero_out3, peer, |m| &m.parties)?,
            mul: addressed_to(&mul_out, peer, |m| &m.parties)?,
        })
    })?;
    let mut zero_in3 = Vec::new();
    let mut mul_in = Vec::new();
    for (peer, message) in received {
        check_parties(&message.zero.parties, peer, me)?;
        check_parties(&message.mul.parties, peer, me)?;
        zero_in3.push(message.zero);
        mul_in.push(message.mul);
    }

    let refreshed = party
        .refresh_complete_phase4(
            &refresh_sid,
            &correction,
            &commitments,
            &zero_keep3,
            &zero_in2,
            &zero_in3,
            &mul_keep,
            &mul_in,
        )
        .map_err(from_abort)?;
    let new_package = package.refresh(&refresh_sid, &commitments).map_err(|reason| MpcError::Aborted {
        culprit: crate::error::Culprit::Unknown,
        reason: reason.to_string(),
        ban: false,
    })?;

    let items: Vec<&ProofCommitment<Secp256k1>> = commitments.iter().collect();
    let public = crate::share::PublicKeyInfo::from_point(&refreshed.pk);
    let transcript = transcript_hash("mandate/refresh-transcript", &items, &public.public_key)?;
    confirm_transcript(router, first_round + 4, transcript)?;
    Ok((refreshed, new_package))
}
