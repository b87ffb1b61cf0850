//! The three key-holding parties of a wallet.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the three parties that each hold one share of a wallet key.
///
/// The numeric index is the party's fixed position in the threshold scheme
/// (1-based, as the DKLs23 protocol expects) and never changes for a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The daemon (`mandate serve`): signs day to day together with the cosigner.
    Service,
    /// The cosigner process: second online share, enforces its own hard limits.
    Cosigner,
    /// The offline recovery share, brought online only by the operator's CLI.
    Recovery,
}

/// A role name or index that is not one of the three parties.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown party role {0:?}: expected service, cosigner or recovery")]
pub struct RoleError(pub String);

impl Role {
    /// All three roles, in index order.
    pub const ALL: [Role; 3] = [Role::Service, Role::Cosigner, Role::Recovery];

    /// The 1-based protocol index of this party.
    pub const fn index(self) -> u8 {
        match self {
            Role::Service => 1,
            Role::Cosigner => 2,
            Role::Recovery => 3,
        }
    }

    /// The role at a 1-based protocol index.
    pub fn from_index(index: u8) -> Result<Self, RoleError> {
        match index {
            1 => Ok(Role::Service),
            2 => Ok(Role::Cosigner),
            3 => Ok(Role::Recovery),
            other => Err(RoleError(other.to_string())),
        }
    }

    /// The lowercase name used in files, logs and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Cosigner => "cosigner",
            Role::Recovery => "recovery",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "service" => Ok(Role::Service),
            "cosigner" => Ok(Role::Cosigner),
            "recovery" => Ok(Role::Recovery),
            other => Err(RoleError(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_zero_is_refused() {
        for role in Role::ALL {
            assert_eq!(Role::from_index(role.index()), Ok(role));
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(Role::from_index(0).is_err());
        assert!(Role::from_index(4).is_err());
        assert!("Service".parse::<Role>().is_err());
    }
}
