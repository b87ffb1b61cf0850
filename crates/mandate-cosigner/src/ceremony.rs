//! Share ceremonies (refresh, repair, recovery signing) are authorised by an owner:
//! every participant checks the owner's signed [`OwnerCeremony`] against the exact
//! plan it is asked to run and against its *own* list of owners, before any
//! protocol message. The recovery identity key alone (or a stolen `peers.json`)
//! can therefore not rebuild a share, refresh shares away from their owner, or
//! have an online party sign outside the daemon's policy.

use alloy_primitives::{keccak256, Address};
use mandate_chain::approval::{CeremonyKind, OwnerKey, SignedCeremony};
use mandate_core::ErrorCode;
use mandate_mpc::net::{Operation, Refusal, RunPlan};

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::CeremonyAuthorizationInvalid, why)
}

/// Checks `plan`'s owner authorization: it decodes, is signed by one of `owners`,
/// is unexpired and describes exactly this plan (kind, wallet, participants,
/// target, address, payload). `known_address` is the wallet's address in this
/// party's own records, when it has one. Returns the verified authorization; the
/// caller marks its id used.
pub(crate) fn check(
    plan: &RunPlan,
    owners: &[OwnerKey],
    known_address: Option<&str>,
    now: u64,
) -> Result<SignedCeremony, Refusal> {
    let bytes = plan.authorization.as_deref().ok_or_else(|| {
        Refusal::new(
            ErrorCode::CeremonyUnauthorized,
            format!("a {} run needs an owner's signed authorization of the exact plan", plan.operation_name()),
        )
    })?;
    let signed = SignedCeremony::decode(bytes).map_err(|e| invalid(e.to_string()))?;
    if owners.is_empty() {
        return Err(invalid(format!("no owners are configured for {} on this party", plan.wallet_id)));
    }
    signed.verify_owner(owners, now).map_err(|e| invalid(e.to_string()))?;
    let ceremony = &signed.ceremony;
    if ceremony.wallet != plan.wallet_id.as_str() {
        return Err(invalid("the authorization is for another wallet"));
    }
    if ceremony.participants != plan.participants {
        return Err(invalid("the authorization names other participants"));
    }
    if let Some(known) = known_address {
        let known: Address = known.parse().map_err(|_| invalid("this party's record of the address is unreadable"))?;
        if known != ceremony.address {
            return Err(invalid("the authorization names another address for this wallet"));
        }
    }
    let fits = match (&plan.operation, ceremony.kind) {
        (Operation::Refresh, CeremonyKind::Refresh) => true,
        (Operation::Repair { target, expected_address }, CeremonyKind::Repair) => {
            let expected: Option<Address> = expected_address.parse().ok();
            ceremony.target == Some(*target) && expected == Some(ceremony.address)
        }
        (Operation::Sign { payload, .. }, CeremonyKind::RecoverySign) => ceremony.payload == Some(keccak256(payload)),
        _ => false,
    };
    if !fits {
        return Err(invalid(format!(
            "the authorization is for a {} ceremony with other terms, not this {} run",
            ceremony.kind.as_str(),
            plan.operation_name()
        )));
    }
    Ok(signed)
}
