//! The threshold protocols as plain functions over a [`Transport`].
//!
//! Each function is one party's side of one run. The caller supplies a fresh
//! [`SessionId`] (shared by all participants), the participant set, and a transport
//! that authenticates who sent each message; the function does no IO of its own.
//!
//! Besides the DKLs23 rounds, DKG and refresh end with a confirmation round: every
//! party sends a hash of the public transcript (group key and all proof
//! commitments) and aborts, naming the peer, if any other party saw something else.
//! This catches a party that broadcast different values to different peers.

mod dkg;
mod refresh;
mod repair;
mod sign;

use dkls23::protocols::{Abort, AbortKind, AbortReason, Parameters, PartiesMessage, PartyIndex};
use mandate_core::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use dkg::dkg;
pub use refresh::refresh;
pub use repair::{repair_and_refresh, RepairSide};
pub use sign::{sign, verify_signature};

use crate::envelope::{Router, SessionId, Transport};
use crate::error::{Culprit, MpcError, Result};

/// 2-of-3: any two of service, cosigner and recovery can sign.
pub(crate) fn parameters() -> Result<Parameters> {
    Parameters::new(2, 3).map_err(|e| MpcError::InvalidInput(e.to_string()))
}

pub(crate) fn party_index(role: Role) -> Result<PartyIndex> {
    PartyIndex::new(role.index()).map_err(|e| MpcError::InvalidInput(e.to_string()))
}

/// Derives a protocol-specific id from the run's session id, so ids of different
/// protocols and wallets never collide.
pub(crate) fn derive_id(label: &str, session_id: &SessionId, extra: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"mandate/");
    hasher.update(label.as_bytes());
    hasher.update([0]);
    hasher.update(session_id.0);
    hasher.update(extra);
    hasher.finalize().to_vec()
}

/// Checks a participant set: sorted, unique, includes `me`, exactly `expected` long.
pub(crate) fn check_participants(participants: &[Role], me: Role, expected: usize) -> Result<()> {
    let sorted_unique = participants.windows(2).all(|pair| matches!(pair, [a, b] if a < b));
    if !sorted_unique || participants.len() != expected || !participants.contains(&me) {
        return Err(MpcError::InvalidParticipants(format!(
            "expected {expected} distinct sorted parties including {me}, got {participants:?}"
        )));
    }
    Ok(())
}

/// The role of a dkls23 party index.
fn role_of(index: PartyIndex) -> Culprit {
    Role::from_index(index.as_u8()).map(Culprit::Party).unwrap_or(Culprit::Unknown)
}

/// Maps a DKLs23 abort to our error, naming the party it blames.
pub(crate) fn from_abort(abort: Abort) -> MpcError {
    let (culprit, ban) = match abort.kind {
        AbortKind::BanCounterparty(index) => (role_of(index), true),
        AbortKind::Recoverable => (reason_culprit(&abort.reason).map(role_of).unwrap_or(Culprit::Unknown), false),
    };
    MpcError::Aborted { culprit, reason: abort.reason.to_string(), ban }
}

fn reason_culprit(reason: &AbortReason) -> Option<PartyIndex> {
    use AbortReason as R;
    match reason {
        R::UnexpectedSender { sender } | R::DuplicateSender { sender } => Some(*sender),
        R::MissingMessageFromParty { party }
        | R::MissingCommittedPoint { party }
        | R::ChainCodeCommitmentFailed { party } => Some(*party),
        R::SessionBindingMismatch { counterparty }
        | R::ProofVerificationFailed { counterparty }
        | R::CommitmentMismatch { counterparty }
        | R::TrivialInstancePoint { counterparty }
        | R::OtConsistencyCheckFailed { counterparty }
        | R::MultiplicationVerificationFailed { counterparty, .. }
        | R::GammaUInconsistency { counterparty }
        | R::ZeroShareDecommitFailed { counterparty } => Some(*counterparty),
        _ => None,
    }
}

/// Picks the message addressed to `to` from a phase's outgoing list.
pub(crate) fn addressed_to<M: Clone>(messages: &[M], to: Role, parties: impl Fn(&M) -> &PartiesMessage) -> Result<M> {
    messages
        .iter()
        .find(|message| parties(message).receiver.as_u8() == to.index())
        .cloned()
        .ok_or_else(|| MpcError::InvalidInput(format!("protocol produced no message for {to}")))
}

/// Refuses a protocol message whose embedded sender or receiver disagrees with the
/// authenticated channel.
pub(crate) fn check_parties(parties: &PartiesMessage, from: Role, me: Role) -> Result<()> {
    if parties.sender.as_u8() != from.index() {
        let claimed = Role::from_index(parties.sender.as_u8()).unwrap_or(from);
        return Err(MpcError::WrongSender { culprit: from, claimed });
    }
    if parties.receiver.as_u8() != me.index() {
        return Err(MpcError::Unexpected {
            culprit: from,
            detail: "protocol message addressed to another party".into(),
        });
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Confirm {
    transcript: [u8; 32],
}

/// Final round of DKG and refresh: all parties must hold the same public transcript.
pub(crate) fn confirm_transcript<T: Transport>(
    router: &mut Router<'_, T>,
    round: u8,
    transcript: [u8; 32],
) -> Result<()> {
    let received: Vec<(Role, Confirm)> = router.exchange(round, |_| Ok(Confirm { transcript }))?;
    for (peer, confirm) in received {
        if confirm.transcript != transcript {
            return Err(MpcError::Aborted {
                culprit: Culprit::Party(peer),
                reason: "public transcript differs: a party equivocated".into(),
                ban: false,
            });
        }
    }
    Ok(())
}

pub(crate) fn transcript_hash<M: Serialize>(label: &str, items: &[&M], public_key: &str) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    hasher.update(label.as_bytes());
    hasher.update(public_key.as_bytes());
    for item in items {
        let bytes = postcard::to_allocvec(item).map_err(|e| MpcError::InvalidInput(format!("transcript: {e}")))?;
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().into())
}
