//! Exact amounts: decimal strings in, 256-bit integers out. No floats anywhere.

use std::fmt;

use alloy_primitives::U256;

/// Why an amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Empty, signed, scientific notation, spaces or other characters.
    #[error("amount {0:?} is not a plain decimal number (digits with at most one '.')")]
    NotDecimal(String),
    /// More fractional digits than the asset has.
    #[error("amount {text:?} has more than {decimals} decimal places")]
    TooManyDecimals {
        /// The input.
        text: String,
        /// The asset's decimals.
        decimals: u8,
    },
    /// Does not fit in 256 bits.
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

/// Parses `text` (e.g. `"0.5"`) into base units with `decimals` (18 for ether).
/// Accepts only `digits[.digits]`: no sign, exponent, spaces or separators.
pub fn parse_units(text: &str, decimals: u8) -> Result<U256, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_string());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
        return Err(not_decimal());
    }
    if fraction.len() > usize::from(decimals) {
        return Err(AmountError::TooManyDecimals { text: text.to_string(), decimals });
    }
    let padded = format!("{whole}{fraction:0<width$}", width = usize::from(decimals));
    U256::from_str_radix(&padded, 10).map_err(|_| AmountError::TooLarge(text.to_string()))
}

/// Parses a plain decimal integer of base units (wei).
pub fn parse_base_units(text: &str) -> Result<U256, AmountError> {
    parse_units(text, 0).map_err(|e| match e {
        AmountError::TooManyDecimals { .. } => AmountError::NotDecimal(text.to_string()),
        other => other,
    })
}

/// Formats base units as a decimal string with `decimals` places, trimming zeros.
pub fn format_units(value: U256, decimals: u8) -> String {
    let digits = value.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// An amount of wei, serialised as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Wei(pub U256);

impl fmt::Display for Wei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl serde::Serialize for Wei {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Wei {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_base_units(&text).map(Wei).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(parse_units("0.5", 18).unwrap(), U256::from(500_000_000_000_000_000u64));
        assert_eq!(parse_units("1", 18).unwrap(), U256::from(10u64).pow(U256::from(18)));
        assert_eq!(parse_units("0.000000000000000001", 18).unwrap(), U256::from(1));
        for bad in ["", "-1", "+1", "1e18", "1E3", " 1", "1 ", "1,5", ".5", "5.", "0x10", "1..2", "NaN", "١"] {
            assert!(parse_units(bad, 18).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(parse_units("0.0000000000000000001", 18), Err(AmountError::TooManyDecimals { .. })));
        assert!(matches!(parse_units(&"9".repeat(90), 18), Err(AmountError::TooLarge(_))));
        assert!(parse_base_units("1.5").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(value in any::<u128>(), decimals in 0u8..=18) {
            let v = U256::from(value);
            prop_assert_eq!(parse_units(&format_units(v, decimals), decimals).unwrap(), v);
        }

        #[test]
        fn parser_never_panics(text in ".{0,40}") {
            let _ = parse_units(&text, 18);
        }
    }
}
