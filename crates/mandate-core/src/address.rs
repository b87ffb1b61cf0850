//! EVM addresses from untrusted text.

use alloy_primitives::Address;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not `0x` + 40 hex digits.
    #[error("{0:?} is not an address (0x followed by 40 hex digits)")]
    Malformed(String),
    /// Mixed case with a wrong EIP-55 checksum.
    #[error("{0:?} has a bad EIP-55 checksum")]
    BadChecksum(String),
}

/// Parses `0x` + 40 hex digits. All-lowercase or all-uppercase is accepted;
/// mixed case must be a valid EIP-55 checksum.
pub fn parse_address(text: &str) -> Result<Address, AddressError> {
    let hex_part = text.strip_prefix("0x").ok_or_else(|| AddressError::Malformed(text.to_string()))?;
    if hex_part.len() != 40 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError::Malformed(text.to_string()));
    }
    let address: Address = text.to_ascii_lowercase().parse().map_err(|_| AddressError::Malformed(text.to_string()))?;
    let mixed = hex_part.bytes().any(|b| b.is_ascii_lowercase()) && hex_part.bytes().any(|b| b.is_ascii_uppercase());
    if mixed && address.to_checksum(None) != text {
        return Err(AddressError::BadChecksum(text.to_string()));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checksum_rules() {
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_ok());
        assert!(parse_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_ok());
        assert!(matches!(
            parse_address("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(AddressError::BadChecksum(_))
        ));
        for bad in [
            "",
            "0x",
            "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            "0x1234",
            "0xZZaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ] {
            assert!(matches!(parse_address(bad), Err(AddressError::Malformed(_))), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,60}") {
            let _ = parse_address(&text);
        }
    }
}
