//! Distributed key generation among all three parties.

use std::collections::BTreeMap;

use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment, TransmitInitMulPhase3to4,
    TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::protocols::PartyIndex;
use dkls23::secp256k1::compute_eth_address;
use dkls23::DkgSession;
use k256_dkls::{Scalar, Secp256k1};
use mandate_core::{Role, WalletId};
use serde::{Deserialize, Serialize};

use super::{
    addressed_to, check_parties, confirm_transcript, derive_id, from_abort, parameters, party_index, transcript_hash,
};
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
    derivation: BroadcastDerivationPhase2to4,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Round3 {
    zero: TransmitInitZeroSharePhase3to4,
    mul: TransmitInitMulPhase3to4<Secp256k1>,
    derivation: BroadcastDerivationPhase3to4,
}

// All participants of a DKG: the three parties, in index order.
const DKG_PARTICIPANTS: [Role; 3] = Role::ALL;

/// Runs `me`'s side of the 2-of-3 DKG for `wallet_id`. Returns this party's share.
pub fn dkg<T: Transport>(transport: &mut T, me: Role, session_id: SessionId, wallet_id: &WalletId) -> Result<KeyShare> {
    let mut router = Router::new(transport, me, session_id, &DKG_PARTICIPANTS);
    let sid = derive_id("dkg", &session_id, wallet_id.as_str().as_bytes());
    let mut session = DkgSession::<Secp256k1>::new(parameters()?, party_index(me)?, sid);

    // Round 1: each party's polynomial evaluated at every index; secret, point to point.
    let evaluations = session.phase1();
    let own_fragment = *evaluations
        .get(usize::from(me.index() - 1))
        .ok_or_else(|| MpcError::InvalidInput("missing own evaluation".into()))?;
    let received: Vec<(Role, Round1)> = router.exchange(1, |peer| {
        evaluations
            .get(usize::from(peer.index() - 1))
            .map(|fragment| Round1 { fragment: *fragment })
            .ok_or_else(|| MpcError::InvalidInput("missing evaluation".into()))
    })?;
    let mut fragments: BTreeMap<u8, Scalar> = received.into_iter().map(|(r, m)| (r.index(), m.fragment)).collect();
    fragments.insert(me.index(), own_fragment);
    let fragments: Vec<Scalar> = fragments.into_values().collect();

    // Round 2: proof commitments and derivation commitments (broadcast), zero-share
    // commitments (point to point).
    let (own_commitment, zero_out, own_derivation) = session.phase2(&fragments).map_err(from_abort)?;
    let received: Vec<(Role, Round2)> = router.exchange(2, |peer| {
        Ok(Round2 {
            proof_commitment: own_commitment.clone(),
            zero: addressed_to(&zero_out, peer, |m| &m.parties)?,
            derivation: own_derivation.clone(),
        })
    })?;
    let mut commitments = BTreeMap::new();
    let mut derivations2 = BTreeMap::new();
    let mut zero_in2 = Vec::new();
    commitments.insert(me.index(), own_commitment);
    derivations2.insert(party_index(me)?, own_derivation);
    for (peer, message) in received {
        check_parties(&message.zero.parties, peer, me)?;
        if message.proof_commitment.index.as_u8() != peer.index()
            || message.derivation.sender_index.as_u8() != peer.index()
        {
            return Err(MpcError::WrongSender { culprit: peer, claimed: peer });
        }
        commitments.insert(peer.index(), message.proof_commitment);
        derivations2.insert(party_index(peer)?, message.derivation);
        zero_in2.push(message.zero);
    }
    let commitments: Vec<ProofCommitment<Secp256k1>> = commitments.into_values().collect();

    // Round 3: zero-share seeds and multiplication setup (point to point), chain-code
    // openings (broadcast).
    let (zero_out3, mul_out, own_derivation3) = session.phase3().map_err(from_abort)?;
    let received: Vec<(Role, Round3)> = router.exchange(3, |peer| {
        Ok(Round3 {
            zero: addressed_to(&zero_out3, peer, |m| &m.parties)?,
            mul: addressed_to(&mul_out, peer, |m| &m.parties)?,
            derivation: own_derivation3.clone(),
        })
    })?;
    let mut derivations3: BTreeMap<PartyIndex, BroadcastDerivationPhase3to4> = BTreeMap::new();
    derivations3.insert(party_index(me)?, own_derivation3);
    let mut zero_in3 = Vec::new();
    let mut mul_in = Vec::new();
    for (peer, message) in received {
        check_parties(&message.zero.parties, peer, me)?;
        check_parties(&message.mul.parties, peer, me)?;
        if message.derivation.sender_index.as_u8() != peer.index() {
            return Err(MpcError::WrongSender { culprit: peer, claimed: peer });
        }
        derivations3.insert(party_index(peer)?, message.derivation);
        zero_in3.push(message.zero);
        mul_in.push(message.mul);
    }

    let (party, package) = session
        .phase4(&commitments, &zero_in2, &zero_in3, &mul_in, &derivations2, &derivations3, compute_eth_address)
        .map_err(from_abort)?;
    let share = KeyShare::new(wallet_id.clone(), me, party, package)?;

    // Round 4: everyone must have seen the same commitments and key.
    let items: Vec<&ProofCommitment<Secp256k1>> = commitments.iter().collect();
    let transcript = transcript_hash("mandate/dkg-transcript", &items, &share.public().public_key)?;
    confirm_transcript(&mut router, 4, transcript)?;
    Ok(share)
}
