//! Repair of a lost share, always followed by a complete refresh in the same run.
//!
//! The two surviving parties (helpers) each send the lost party (target) a masked
//! term; the target assembles a share that cannot sign yet, and all three then run a
//! complete refresh, which rebuilds the target's signing state and invalidates every
//! share from before the repair.

use dkls23::protocols::repair::{repair_assemble, RepairTerm};
use dkls23::secp256k1::{compute_eth_address, PublicKeyPackage};
use k256_dkls::Secp256k1;
use mandate_core::{Role, WalletId};
use serde::{Deserialize, Serialize};

use super::party_index;
use super::refresh::refresh_rounds;
use crate::envelope::{Router, SessionId, Transport};
use crate::error::{Culprit, MpcError, Result};
use crate::share::{KeyShare, PublicKeyInfo};

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Term {
    term: RepairTerm<Secp256k1>,
    package: PublicKeyPackage,
}

/// This party's part in a repair.
pub enum RepairSide<'a> {
    /// A surviving party holding its share.
    Helper(&'a KeyShare),
    /// The party whose share was lost.
    Target {
        /// The wallet being repaired.
        wallet_id: WalletId,
        /// The address the repaired share must belong to (from the party's own records).
        expected_address: String,
    },
}

/// Runs one side of repair + complete refresh for the lost party `target`.
/// Returns this party's new share (helpers: refreshed; target: rebuilt).
pub fn repair_and_refresh<T: Transport>(
    transport: &mut T,
    side: RepairSide<'_>,
    me: Role,
    target: Role,
    session_id: SessionId,
) -> Result<KeyShare> {
    let helpers: Vec<Role> = Role::ALL.into_iter().filter(|role| *role != target).collect();
    let helper_indices = helpers.iter().map(|role| party_index(*role)).collect::<Result<Vec<_>>>()?;
    let repair_id = super::derive_id("repair", &session_id, &[target.index()]);
    let mut router = Router::new(transport, me, session_id, &Role::ALL);

    let (party, package, wallet_id, banned) = match side {
        RepairSide::Helper(share) => {
            if share.role() != me || me == target {
                return Err(MpcError::InvalidParticipants(format!("{me} cannot help repair {target}")));
            }
            share.check_not_banned(&Role::ALL)?;
            let term = share
                .party
                .repair_term(&helper_indices, party_index(target)?, &repair_id)
                .map_err(|e| MpcError::Aborted { culprit: Culprit::Party(me), reason: e.to_string(), ban: false })?;
            router.send(target, 1, &Term { term, package: share.package.clone() })?;
            (share.party.clone(), share.package.clone(), share.wallet_id.clone(), share.banned.clone())
        }
        RepairSide::Target { wallet_id, expected_address } => {
            if me != target {
                return Err(MpcError::InvalidParticipants(format!("{me} is not the repair target {target}")));
            }
            let mut terms = Vec::new();
            let mut packages: Vec<(Role, Vec<u8>, PublicKeyPackage)> = Vec::new();
            for helper in &helpers {
                let message: Term = router.recv(*helper, 1)?;
                if message.term.helper.as_u8() != helper.index() {
                    return Err(MpcError::WrongSender { culprit: *helper, claimed: *helper });
                }
                let bytes = postcard::to_allocvec(&message.package)
                    .map_err(|e| MpcError::InvalidInput(format!("package: {e}")))?;
                packages.push((*helper, bytes, message.package));
                terms.push(message.term);
            }
            let package = match packages.as_slice() {
                [(_, first, package), rest @ ..] => {
                    if let Some((culprit, _, _)) = rest.iter().find(|(_, bytes, _)| bytes != first) {
                        return Err(MpcError::Aborted {
                            culprit: Culprit::Party(*culprit),
                            reason: "helpers disagree on the public key package".into(),
                            ban: false,
                        });
                    }
                    package.clone()
                }
                [] => return Err(MpcError::InvalidParticipants("no helpers".into())),
            };
            let found = PublicKeyInfo::from_point(package.verifying_key());
            if found.address != expected_address {
                return Err(MpcError::Aborted {
                    culprit: Culprit::Unknown,
                    reason: format!("helpers offered a share of {} instead of {expected_address}", found.address),
                    ban: false,
                });
            }
            let party = repair_assemble(&package, party_index(target)?, &terms, compute_eth_address)
                .map_err(|e| MpcError::Aborted { culprit: Culprit::Unknown, reason: e.to_string(), ban: false })?;
            (party, package, wallet_id, Default::default())
        }
    };

    let (party, package) = refresh_rounds(&mut router, &party, &package, &wallet_id, session_id, 1)?;
    let mut share = KeyShare::new(wallet_id, me, party, package)?;
    share.banned = banned;
    Ok(share)
}
