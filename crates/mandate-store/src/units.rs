//! A transaction's amounts in units beside its base units (`value` beside `value_wei`,
//! `amount_units` beside `amount`), so that no reader has to divide by 10^18.

use alloy_primitives::U256;
use mandate_core::amount::format_units;
use serde::Serialize;

/// The amounts of a transaction in units, serialised beside its base units.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AmountUnits {
    /// `value_wei` in ether.
    pub value: String,
    /// `amount` in the asset's units (ether, or tokens by their decimals), when the
    /// token's decimals are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_units: Option<String>,
    /// The asset's decimals (18 for ether), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
    /// The asset's symbol (`ETH`, or as the token contract says: untrusted), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
}

impl AmountUnits {
    /// The units of `value_wei` and of `amount` of `asset` (`native` or a token whose
    /// cached `(decimals, symbol)` is `token`). Unparseable base units are shown as
    /// they are.
    pub fn of(value_wei: &str, asset: &str, amount: &str, token: Option<(u8, String)>) -> AmountUnits {
        let units = |text: &str, decimals: u8| match U256::from_str_radix(text, 10) {
            Ok(base) => format_units(base, decimals),
            Err(_) => text.to_string(),
        };
        let (decimals, symbol) = match (asset, token) {
            ("native", _) => (Some(18), Some("ETH".to_string())),
            (_, Some((decimals, symbol))) => (Some(decimals), Some(symbol)),
            (_, None) => (None, None),
        };
        AmountUnits { value: units(value_wei, 18), amount_units: decimals.map(|d| units(amount, d)), decimals, symbol }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_units_read_as_units() {
        let native = AmountUnits::of("1500000000000000000", "native", "1500000000000000000", None);
        assert_eq!((native.value.as_str(), native.amount_units.as_deref()), ("1.5", Some("1.5")));
        assert_eq!((native.decimals, native.symbol.as_deref()), (Some(18), Some("ETH")));
        let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        let usdc = AmountUnits::of("0", token, "12500000", Some((6, "USDC".into())));
        assert_eq!((usdc.value.as_str(), usdc.amount_units.as_deref()), ("0", Some("12.5")));
        let unknown = AmountUnits::of("0", token, "12500000", None);
        assert_eq!((unknown.amount_units, unknown.decimals, unknown.symbol), (None, None, None));
        let json = serde_json::to_value(&usdc).unwrap();
        assert_eq!(json, serde_json::json!({"value": "0", "amount_units": "12.5", "decimals": 6, "symbol": "USDC"}));
    }
}
