//! Decoding of untrusted request bodies into typed requests, with specific codes for
//! each way they can be wrong. Property-tested: arbitrary bytes never panic.

use alloy_primitives::{Address, U256};
use mandate_core::address::{parse_address, AddressError};
use mandate_core::amount::{parse_base_units, parse_units};
use mandate_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};

/// Largest request body accepted (bytes).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest idempotency key.
pub(crate) const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// A native transfer request: `{"to", "amount" | "amount_wei"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransferRequest {
    /// Recipient.
    pub(crate) to: Address,
    /// Value in wei.
    pub(crate) value: U256,
}

/// Parses a JSON body into `T` (unknown fields refused by `T`).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("request body: {e}")))
}

/// Parses an address field, telling malformed from a bad checksum.
pub(crate) fn address_field(field: &str, text: &str) -> ApiResult<Address> {
    parse_address(text).map_err(|e| {
        let code = match e {
            AddressError::BadChecksum(_) => ErrorCode::InvalidAddressChecksum,
            _ => ErrorCode::InvalidAddress,
        };
        ApiError::new(code, format!("{field}: {e}")).with_details(json!({"field": field}))
    })
}

fn amount_error(field: &str, message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidAmount, format!("{field}: {message}")).with_details(json!({"field": field}))
}

impl TransferRequest {
    /// Parses a transfer body.
    pub(crate) fn parse(body: &[u8]) -> ApiResult<Self> {
        let value: Value = parse_json(body)?;
        let map = value.as_object().ok_or_else(|| ApiError::new(ErrorCode::InvalidJson, "expected a JSON object"))?;
        if let Some(key) = map.keys().find(|k| !["to", "amount", "amount_wei"].contains(&k.as_str())) {
            return Err(ApiError::new(ErrorCode::InvalidJson, format!("unknown field {key:?}"))
                .with_details(json!({"field": key})));
        }
        let to = match map.get("to") {
            Some(Value::String(text)) => address_field("to", text)?,
            Some(_) => return Err(ApiError::new(ErrorCode::InvalidAddress, "to: expected an address string")),
            None => return Err(ApiError::new(ErrorCode::InvalidJson, "missing field \"to\"")),
        };
        let value = match (map.get("amount"), map.get("amount_wei")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(ErrorCode::AmountConflict, "give amount (ether) or amount_wei, not both"))
            }
            (None, None) => return Err(ApiError::new(ErrorCode::AmountConflict, "give amount (ether) or amount_wei")),
            (Some(Value::String(text)), None) => {
                parse_units(text, 18).map_err(|e| amount_error("amount", e.to_string()))?
            }
            (None, Some(Value::String(text))) => {
                parse_base_units(text).map_err(|e| amount_error("amount_wei", e.to_string()))?
            }
            (Some(_), None) => return Err(amount_error("amount", "expected a decimal string such as \"0.5\"".into())),
            (None, Some(_)) => return Err(amount_error("amount_wei", "expected a decimal string of wei".into())),
        };
        if value.is_zero() {
            return Err(amount_error("amount", "must be greater than zero".into()));
        }
        Ok(TransferRequest { to, value })
    }
}

/// Checks an `Idempotency-Key` header value.
pub(crate) fn idempotency_key(value: Option<&axum::http::HeaderValue>) -> ApiResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"),
        )
    };
    let text = value.to_str().map_err(|_| invalid())?;
    if text.is_empty() || text.len() > MAX_IDEMPOTENCY_KEY_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(body: &str) -> ErrorCode {
        TransferRequest::parse(body.as_bytes()).unwrap_err().code
    }

    const TO: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

    #[test]
    fn each_bad_input_has_its_code() {
        let t = |extra: &str| format!("{{\"to\": \"{TO}\", {extra}}}");
        assert_eq!(code(&t("\"amount\": \"-1\"")), ErrorCode::InvalidAmount);
        assert_eq!(code(&t("\"amount\": \"1e18\"")), ErrorCode::InvalidAmount);
        assert_eq!(code(&t("\"amount\": \"0.1234567890123456789\"")), ErrorCode::InvalidAmount);
        assert_eq!(code(&t("\"amount\": 0.5")), ErrorCode::InvalidAmount);
        assert_eq!(code(&t("\"amount\": \"0\"")), ErrorCode::InvalidAmount);
        assert_eq!(code(&t("\"amount\": \"1\", \"amount_wei\": \"1\"")), ErrorCode::AmountConflict);
        assert_eq!(code(&format!("{{\"to\": \"{TO}\"}}")), ErrorCode::AmountConflict);
        assert_eq!(code(&t("\"amount\": \"1\", \"memo\": \"x\"")), ErrorCode::InvalidJson);
        assert_eq!(code("{\"to\": \"0x1234\", \"amount\": \"1\"}"), ErrorCode::InvalidAddress);
        assert_eq!(
            code("{\"to\": \"0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", \"amount\": \"1\"}"),
            ErrorCode::InvalidAddressChecksum
        );
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1]"), ErrorCode::InvalidJson);
        let ok = TransferRequest::parse(t("\"amount\": \"0.5\"").as_bytes()).unwrap();
        assert_eq!(ok.value, U256::from(500_000_000_000_000_000u64));
        let ok = TransferRequest::parse(t("\"amount_wei\": \"7\"").as_bytes()).unwrap();
        assert_eq!(ok.value, U256::from(7u64));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = TransferRequest::parse(&bytes);
        }

        #[test]
        fn arbitrary_amount_strings_never_panic(text in "\\PC{0,40}") {
            let body = json!({"to": TO, "amount": text}).to_string();
            let _ = TransferRequest::parse(body.as_bytes());
        }
    }
}
