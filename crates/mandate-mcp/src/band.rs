//! Tool bands: `read` ⊂ `prepare` ⊂ `sign` ⊂ `broadcast`. They mirror the session
//! scopes of the same names (a session scope grants its band and every band below).

use std::fmt;

/// A band of tools; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Band {
    /// Look: wallet, balances, transactions, policy summary, dry runs.
    Read,
    /// Build and simulate transactions; nothing signed.
    Prepare,
    /// Off-chain signatures (typed data, messages), subject to policy.
    Sign,
    /// Send transactions, subject to policy.
    Broadcast,
}

/// A band name that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandError(pub String);

impl fmt::Display for BandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown band {:?}; bands are read, prepare, sign, broadcast", self.0)
    }
}

impl std::error::Error for BandError {}

impl Band {
    /// Every band, lowest first.
    pub const ALL: [Band; 4] = [Band::Read, Band::Prepare, Band::Sign, Band::Broadcast];

    /// The band's name (also its session scope).
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Read => "read",
            Band::Prepare => "prepare",
            Band::Sign => "sign",
            Band::Broadcast => "broadcast",
        }
    }

    /// One band name.
    pub fn parse(text: &str) -> Result<Band, BandError> {
        Band::ALL.into_iter().find(|band| band.as_str() == text.trim()).ok_or_else(|| BandError(text.into()))
    }

    /// `read`, or a comma-separated list such as `read,prepare,sign`: the highest band
    /// named (bands nest, so a list means its top). Empty entries are refused.
    pub fn parse_list(text: &str) -> Result<Band, BandError> {
        text.split(',').map(Band::parse).try_fold(Band::Read, |top, band| band.map(|b| top.max(b)))
    }

    /// The highest band that session `scopes` grant, if any.
    pub fn of_scopes<S: AsRef<str>>(scopes: &[S]) -> Option<Band> {
        scopes.iter().filter_map(|scope| Band::parse(scope.as_ref()).ok()).max()
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_mean_their_highest_band_and_typos_are_refused() {
        assert_eq!(Band::parse_list("read"), Ok(Band::Read));
        assert_eq!(Band::parse_list("read,prepare,sign,broadcast"), Ok(Band::Broadcast));
        assert_eq!(Band::parse_list("sign, read"), Ok(Band::Sign));
        assert!(Band::parse_list("read,brodcast").is_err());
        assert!(Band::parse_list("read,").is_err());
        assert!(Band::parse_list("").is_err());
        assert!(Band::parse_list("admin").is_err());
    }

    #[test]
    fn bands_nest_and_scopes_grant_their_highest_band() {
        assert!(Band::Read < Band::Prepare && Band::Prepare < Band::Sign && Band::Sign < Band::Broadcast);
        assert_eq!(Band::of_scopes(&["read", "freeze", "sign"]), Some(Band::Sign));
        assert_eq!(Band::of_scopes(&["freeze"]), None);
        assert_eq!(Band::of_scopes::<&str>(&[]), None);
    }
}
