//! Session scopes, one type for REST and MCP. The bands `read` ⊂ `prepare` ⊂ `sign` ⊂
//! `broadcast` nest (a band grants every band below it); `freeze` stands alone (it
//! grants the emergency freeze, and nothing else).

use std::fmt;

/// A session scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Look: wallet, balances, transactions, policy summary, dry runs.
    Read,
    /// Build and simulate transactions; nothing signed.
    Prepare,
    /// Off-chain signatures (typed data, messages), subject to policy.
    Sign,
    /// Send transactions, subject to policy.
    Broadcast,
    /// Freeze the session's wallet (an emergency brake), outside the bands.
    Freeze,
}

/// A scope name that is not one (or, where a band is wanted, a scope that is not a band).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError(pub String);

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown band {:?}; bands are read, prepare, sign, broadcast", self.0)
    }
}

impl std::error::Error for ScopeError {}

impl Scope {
    /// The bands, lowest first.
    pub const BANDS: [Scope; 4] = [Scope::Read, Scope::Prepare, Scope::Sign, Scope::Broadcast];
    /// Scopes outside the bands.
    pub const EXTRA: [Scope; 1] = [Scope::Freeze];
    /// Every scope: the bands, then the others.
    pub const ALL: [Scope; 5] = [Scope::Read, Scope::Prepare, Scope::Sign, Scope::Broadcast, Scope::Freeze];

    /// The scope's name, as sessions store it and MCP names its band.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Prepare => "prepare",
            Scope::Sign => "sign",
            Scope::Broadcast => "broadcast",
            Scope::Freeze => "freeze",
        }
    }

    /// One scope name, exactly (no surrounding space, no other case).
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text).ok_or_else(|| ScopeError(text.into()))
    }

    /// The band's rank, lowest 0; `None` for a scope outside the bands.
    const fn band_rank(self) -> Option<u8> {
        match self {
            Scope::Read => Some(0),
            Scope::Prepare => Some(1),
            Scope::Sign => Some(2),
            Scope::Broadcast => Some(3),
            Scope::Freeze => None,
        }
    }

    /// Whether the scope is one of the nested bands.
    pub const fn is_band(self) -> bool {
        self.band_rank().is_some()
    }

    /// Whether holding `self` grants `needed`: a band grants itself and every band
    /// below it; any other scope grants only itself.
    pub fn includes(self, needed: Scope) -> bool {
        match (self.band_rank(), needed.band_rank()) {
            (Some(held), Some(needed)) => held >= needed,
            _ => self == needed,
        }
    }

    /// Whether the stored scope names `scopes` grant `needed` (unknown names grant nothing).
    pub fn granted<S: AsRef<str>>(scopes: &[S], needed: Scope) -> bool {
        scopes.iter().filter_map(|scope| Scope::parse(scope.as_ref()).ok()).any(|held| held.includes(needed))
    }

    /// The highest band that the scope names `scopes` grant, if any.
    pub fn top_band<S: AsRef<str>>(scopes: &[S]) -> Option<Scope> {
        Scope::BANDS.into_iter().rev().find(|band| Scope::granted(scopes, *band))
    }

    /// One band name (surrounding space ignored); `freeze` and unknown names are refused.
    pub fn parse_band(text: &str) -> Result<Scope, ScopeError> {
        Scope::parse(text.trim()).ok().filter(|scope| scope.is_band()).ok_or_else(|| ScopeError(text.into()))
    }

    /// `read`, or a comma-separated list of bands such as `read,prepare,sign`: the
    /// highest band named (bands nest, so a list means its top). Empty entries are refused.
    pub fn parse_band_list(text: &str) -> Result<Scope, ScopeError> {
        text.split(',')
            .map(Scope::parse_band)
            .try_fold(Scope::Read, |top, band| band.map(|band| if band.includes(top) { band } else { top }))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_exactly() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Ok(scope));
            assert_eq!(scope.to_string(), scope.as_str());
        }
        assert_eq!(Scope::ALL.map(Scope::as_str), ["read", "prepare", "sign", "broadcast", "freeze"]);
        for bad in ["", "admin", "Read", " read", "read ", "brodcast", "read,sign"] {
            assert_eq!(Scope::parse(bad), Err(ScopeError(bad.into())), "{bad:?}");
        }
        assert_eq!(Scope::BANDS.len() + Scope::EXTRA.len(), Scope::ALL.len());
        assert!(Scope::BANDS.iter().all(|s| s.is_band()) && !Scope::Freeze.is_band());
    }

    #[test]
    fn bands_include_the_bands_below_and_freeze_only_itself() {
        for (i, held) in Scope::BANDS.into_iter().enumerate() {
            for (j, needed) in Scope::BANDS.into_iter().enumerate() {
                assert_eq!(held.includes(needed), i >= j, "{held} includes {needed}?");
            }
            assert!(!held.includes(Scope::Freeze), "{held} grants no freeze");
            assert!(!Scope::Freeze.includes(held), "freeze grants no {held}");
        }
        assert!(Scope::Freeze.includes(Scope::Freeze));
    }

    #[test]
    fn stored_scopes_grant_and_name_their_top_band() {
        assert!(Scope::granted(&["sign"], Scope::Read) && Scope::granted(&["sign"], Scope::Prepare));
        assert!(!Scope::granted(&["sign"], Scope::Broadcast) && !Scope::granted(&["sign"], Scope::Freeze));
        assert!(Scope::granted(&["freeze"], Scope::Freeze) && !Scope::granted(&["freeze"], Scope::Read));
        assert!(!Scope::granted(&["admin", "Broadcast"], Scope::Read), "unknown names grant nothing");
        assert_eq!(Scope::top_band(&["read", "freeze", "sign"]), Some(Scope::Sign));
        assert_eq!(Scope::top_band(&["broadcast"]), Some(Scope::Broadcast));
        assert_eq!(Scope::top_band(&["freeze"]), None);
        assert_eq!(Scope::top_band::<&str>(&[]), None);
    }

    #[test]
    fn band_lists_mean_their_highest_band_and_typos_are_refused() {
        assert_eq!(Scope::parse_band_list("read"), Ok(Scope::Read));
        assert_eq!(Scope::parse_band_list("read,prepare,sign,broadcast"), Ok(Scope::Broadcast));
        assert_eq!(Scope::parse_band_list("sign, read"), Ok(Scope::Sign));
        assert_eq!(Scope::parse_band_list("prepare,broadcast,read"), Ok(Scope::Broadcast));
        for bad in ["read,brodcast", "read,", "", "admin", "freeze", "read,freeze"] {
            assert!(Scope::parse_band_list(bad).is_err(), "{bad:?}");
        }
    }
}
