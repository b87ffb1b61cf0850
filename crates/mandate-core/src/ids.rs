//! Validated identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A wallet identifier: `wal_` followed by 1 to 60 characters of `[a-z0-9_-]`.
///
/// It is bound into every key-share blob and every protocol session, so it is
/// validated once at the edge and carried as this type afterwards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WalletId(String);

/// A string that is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid wallet id {0:?}: expected wal_ followed by 1-60 of [a-z0-9_-]")]
pub struct IdError(pub String);

impl WalletId {
    /// A new wallet id from 12 random bytes supplied by the caller.
    pub fn from_random(bytes: [u8; 12]) -> Self {
        WalletId(format!("wal_{}", hex::encode(bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WalletId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("wal_").ok_or_else(|| IdError(s.to_string()))?;
        let ok = !rest.is_empty()
            && rest.len() <= 60
            && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(WalletId(s.to_string()))
        } else {
            Err(IdError(s.to_string()))
        }
    }
}

impl TryFrom<String> for WalletId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<WalletId> for String {
    fn from(id: WalletId) -> Self {
        id.0
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_generated_and_rejects_bad_ids() {
        let id = WalletId::from_random([7; 12]);
        assert_eq!(id.as_str().parse::<WalletId>(), Ok(id.clone()));
        for bad in ["", "wal_", "wallet", "wal_ABC", "wal_a/b", "wal_a b", "../wal_a"] {
            assert!(bad.parse::<WalletId>().is_err(), "{bad:?} accepted");
        }
        let too_long = format!("wal_{}", "a".repeat(61));
        assert!(too_long.parse::<WalletId>().is_err());
        assert!(serde_json::from_str::<WalletId>("\"wal_../x\"").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_accepts_only_safe_file_names(s in ".*") {
            if let Ok(id) = s.parse::<WalletId>() {
                prop_assert!(!id.as_str().contains('/'));
                prop_assert!(!id.as_str().contains(".."));
            }
        }
    }
}
