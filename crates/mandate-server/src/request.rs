//! Decoding of untrusted request bodies into typed requests, with specific codes for
//! each way they can be wrong. Property-tested: arbitrary bytes never panic.

use alloy_primitives::{Address, U256};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
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

/// An amount as the request gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AmountSpec {
    /// Whole units (`"0.5"`), to be scaled by the asset's decimals.
    Whole(String),
    /// Base units (wei for the native asset).
    Base(U256),
}

/// A transfer request: `{"to", "amount" | "amount_wei"}` for the native asset, or
/// `{"to", "token", "amount" | "amount_base"}` for an ERC-20 token (a symbol the policy
/// declares, or the contract address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransferRequest {
    /// Recipient.
    pub(crate) to: Address,
    /// The token (symbol or address); `None` for the native asset.
    pub(crate) token: Option<String>,
    /// The amount.
    pub(crate) amount: AmountSpec,
    /// The chain it names (a name or a chain id); `None`: the daemon's only chain.
    pub(crate) chain: Option<String>,
}

/// A contract call request: `{"to", "value"|"value_wei"?, "data"}` or
/// `{"to", "value"|"value_wei"?, "function", "args"}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallRequest {
    /// Target contract.
    pub(crate) to: Address,
    /// Native value in wei.
    pub(crate) value: U256,
    /// Calldata (encoded from `function` + `args` when given that way).
    pub(crate) data: Vec<u8>,
    /// The chain it names (a name or a chain id); `None`: the daemon's only chain.
    pub(crate) chain: Option<String>,
}

/// An off-chain signature request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SignRequest {
    /// `{"typed_data": {…}}` (eth_signTypedData_v4 JSON).
    TypedData(Value),
    /// `{"message": "text"}` or `{"message_hex": "0x…"}`.
    Message(Vec<u8>),
    /// `{"hash": "0x…"}` (32 bytes).
    Hash([u8; 32]),
}

/// Largest personal message (bytes).
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024;

fn object(value: &Value) -> ApiResult<&serde_json::Map<String, Value>> {
    value.as_object().ok_or_else(|| ApiError::new(ErrorCode::InvalidJson, "expected a JSON object"))
}

fn only_fields(map: &serde_json::Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => {
            Err(ApiError::new(ErrorCode::InvalidJson, format!("unknown field {key:?}"))
                .with_details(json!({"field": key})))
        }
        None => Ok(()),
    }
}

/// `"chain"`: a chain's name or id (a string, or a number), at most 64 characters.
fn chain_field(map: &serde_json::Map<String, Value>) -> ApiResult<Option<String>> {
    match map.get("chain") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.is_empty() && text.len() <= 64 => Ok(Some(text.clone())),
        Some(Value::Number(number)) if number.is_u64() => Ok(Some(number.to_string())),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidJson, "chain: expected a chain name or chain id")
            .with_details(json!({"field": "chain"}))),
    }
}

fn to_field(map: &serde_json::Map<String, Value>) -> ApiResult<Address> {
    match map.get("to") {
        Some(Value::String(text)) => address_field("to", text),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidAddress, "to: expected an address string")),
        None => Err(ApiError::new(ErrorCode::InvalidJson, "missing field \"to\"")),
    }
}

fn hex_field(field: &str, text: &str, code: ErrorCode) -> ApiResult<Vec<u8>> {
    text.strip_prefix("0x").and_then(|digits| hex::decode(digits).ok()).ok_or_else(|| {
        ApiError::new(code, format!("{field}: expected 0x-prefixed hex")).with_details(json!({"field": field}))
    })
}

/// Parses `whole` (decimal units with `decimals`) or `base` (integer base units); exactly one.
fn amount_pair(
    map: &serde_json::Map<String, Value>,
    whole: &str,
    base: &str,
    decimals: Option<u8>,
    required: bool,
) -> ApiResult<Option<AmountSpec>> {
    let spec = match (map.get(whole), map.get(base)) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(ErrorCode::AmountConflict, format!("give {whole} or {base}, not both")))
        }
        (None, None) if required => {
            return Err(ApiError::new(ErrorCode::AmountConflict, format!("give {whole} or {base}")))
        }
        (None, None) => return Ok(None),
        (Some(Value::String(text)), None) => {
            // The format is checked now; the decimals once the asset is known.
            let written = text.split_once('.').map_or(0, |(_, fraction)| fraction.len()).min(77);
            let decimals = decimals.unwrap_or(u8::try_from(written).unwrap_or(77));
            parse_units(text, decimals).map_err(|e| amount_error(whole, e.to_string()))?;
            AmountSpec::Whole(text.clone())
        }
        (None, Some(Value::String(text))) => {
            AmountSpec::Base(parse_base_units(text).map_err(|e| amount_error(base, e.to_string()))?)
        }
        (Some(_), None) => return Err(amount_error(whole, "expected a decimal string such as \"0.5\"".into())),
        (None, Some(_)) => return Err(amount_error(base, "expected a decimal string of base units".into())),
    };
    Ok(Some(spec))
}

impl AmountSpec {
    /// Base units, given the asset's decimals.
    pub(crate) fn resolve(&self, decimals: u8, field: &str) -> ApiResult<U256> {
        let value = match self {
            AmountSpec::Whole(text) => parse_units(text, decimals).map_err(|e| amount_error(field, e.to_string()))?,
            AmountSpec::Base(value) => *value,
        };
        if value.is_zero() {
            return Err(amount_error(field, "must be greater than zero".into()));
        }
        Ok(value)
    }
}

impl TransferRequest {
    /// Parses a transfer body.
    pub(crate) fn parse(body: &[u8]) -> ApiResult<Self> {
        Self::from_value(&parse_json(body)?)
    }

    pub(crate) fn from_value(value: &Value) -> ApiResult<Self> {
        let map = object(value)?;
        let token = match map.get("token") {
            None => None,
            Some(Value::String(text)) if !text.is_empty() && text.len() <= 64 => Some(text.clone()),
            Some(_) => {
                return Err(ApiError::new(ErrorCode::UnknownToken, "token: expected a symbol or a contract address"))
            }
        };
        let to = {
            only_fields(
                map,
                &["to", "amount", if token.is_some() { "amount_base" } else { "amount_wei" }, "token", "chain"],
            )?;
            to_field(map)?
        };
        let amount = match &token {
            None => amount_pair(map, "amount", "amount_wei", Some(18), true)?,
            Some(_) => amount_pair(map, "amount", "amount_base", None, true)?,
        };
        let amount = amount.ok_or_else(|| ApiError::new(ErrorCode::AmountConflict, "give an amount"))?;
        if token.is_none() {
            amount.resolve(18, "amount")?;
        }
        Ok(TransferRequest { to, token, amount, chain: chain_field(map)? })
    }
}

impl CallRequest {
    /// Parses a contract call body.
    pub(crate) fn parse(body: &[u8]) -> ApiResult<Self> {
        Self::from_value(&parse_json(body)?)
    }

    pub(crate) fn from_value(value: &Value) -> ApiResult<Self> {
        let map = object(value)?;
        only_fields(map, &["to", "value", "value_wei", "data", "function", "args", "chain"])?;
        let to = to_field(map)?;
        let value = match amount_pair(map, "value", "value_wei", Some(18), false)? {
            None => U256::ZERO,
            Some(AmountSpec::Base(wei)) => wei,
            Some(AmountSpec::Whole(text)) => {
                parse_units(&text, 18).map_err(|e| amount_error("value", e.to_string()))?
            }
        };
        let data = match (map.get("data"), map.get("function")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(ErrorCode::InvalidJson, "give data or function + args, not both"))
            }
            (Some(Value::String(text)), None) => hex_field("data", text, ErrorCode::InvalidCalldata)?,
            (None, Some(Value::String(signature))) => {
                let args = match map.get("args") {
                    None => Vec::new(),
                    Some(Value::Array(args)) => args.clone(),
                    Some(_) => return Err(ApiError::new(ErrorCode::InvalidJson, "args: expected an array")),
                };
                mandate_core::decode::encode_call(signature, &args)
                    .map_err(|e| ApiError::new(e.code, e.message).with_details(json!({"field": "args"})))?
            }
            (Some(_), None) => return Err(ApiError::new(ErrorCode::InvalidCalldata, "data: expected a hex string")),
            (None, Some(_)) => {
                return Err(ApiError::new(ErrorCode::InvalidJson, "function: expected a signature string"))
            }
            (None, None) => return Err(ApiError::new(ErrorCode::InvalidJson, "give data, or function and args")),
        };
        if data.len() < 4 {
            return Err(ApiError::new(ErrorCode::InvalidCalldata, "data: a call needs at least a 4-byte selector"));
        }
        if data.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(ErrorCode::InvalidCalldata, "data: too long"));
        }
        Ok(CallRequest { to, value, data, chain: chain_field(map)? })
    }
}

impl SignRequest {
    /// Parses `{"typed_data"}`, `{"message"}`, `{"message_hex"}` or `{"hash"}`.
    pub(crate) fn from_value(value: &Value) -> ApiResult<Self> {
        let map = object(value)?;
        only_fields(map, &["typed_data", "message", "message_hex", "hash"])?;
        if map.len() != 1 {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                "give exactly one of typed_data, message, message_hex, hash",
            ));
        }
        let message = |bytes: Vec<u8>| {
            if bytes.len() > MAX_MESSAGE_BYTES {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("a message is at most {MAX_MESSAGE_BYTES} bytes"),
                ));
            }
            Ok(SignRequest::Message(bytes))
        };
        match map.iter().next() {
            Some((key, Value::Object(_))) if key == "typed_data" => Ok(SignRequest::TypedData(map[key].clone())),
            Some((key, _)) if key == "typed_data" => {
                Err(ApiError::new(ErrorCode::InvalidTypedData, "typed_data: expected an object"))
            }
            Some((key, Value::String(text))) if key == "message" => message(text.as_bytes().to_vec()),
            Some((key, Value::String(text))) if key == "message_hex" => {
                message(hex_field("message_hex", text, ErrorCode::InvalidInput)?)
            }
            Some((key, Value::String(text))) if key == "hash" => {
                let bytes = hex_field("hash", text, ErrorCode::InvalidInput)?;
                let hash: [u8; 32] =
                    bytes.try_into().map_err(|_| ApiError::new(ErrorCode::InvalidInput, "hash: expected 32 bytes"))?;
                Ok(SignRequest::Hash(hash))
            }
            Some((key, _)) => Err(ApiError::new(ErrorCode::InvalidJson, format!("{key}: expected a string"))),
            None => Err(ApiError::new(ErrorCode::InvalidJson, "empty request")),
        }
    }
}

/// What `POST …/policy/evaluate` (and `mandate policy test`) evaluates:
/// `{"type": "transfer" | "contract_call" | "sign", …the fields of that request}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EvaluateRequest {
    /// A transfer.
    Transfer(TransferRequest),
    /// A contract call.
    Call(CallRequest),
    /// A signature.
    Sign(SignRequest),
}

impl EvaluateRequest {
    /// Parses the body.
    pub(crate) fn parse(body: &[u8]) -> ApiResult<Self> {
        let mut value: Value = parse_json(body)?;
        let map =
            value.as_object_mut().ok_or_else(|| ApiError::new(ErrorCode::InvalidJson, "expected a JSON object"))?;
        let kind = match map.remove("type") {
            Some(Value::String(kind)) => kind,
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidJson,
                    "type: expected \"transfer\", \"contract_call\" or \"sign\"",
                ))
            }
        };
        match kind.as_str() {
            "transfer" => Ok(EvaluateRequest::Transfer(TransferRequest::from_value(&value)?)),
            "contract_call" => Ok(EvaluateRequest::Call(CallRequest::from_value(&value)?)),
            "sign" => Ok(EvaluateRequest::Sign(SignRequest::from_value(&value)?)),
            other => Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("type: unknown {other:?}; expected transfer, contract_call or sign"),
            )),
        }
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

/// The body, or `BODY_TOO_LARGE` / `INVALID_JSON`.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge, format!("request bodies are limited to {MAX_BODY_BYTES} bytes"))
        } else {
            ApiError::new(ErrorCode::InvalidJson, format!("request body: {rejection}"))
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_and_sign_requests_refuse_bad_input() {
        let call = |body: Value| CallRequest::parse(body.to_string().as_bytes()).map_err(|e| e.code);
        let ok = call(json!({"to": TO, "function": "transfer(address,uint256)", "args": [TO, "5"]})).unwrap();
        assert_eq!(&ok.data[..4], &[0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(call(json!({"to": TO, "data": "0x12"})), Err(ErrorCode::InvalidCalldata));
        assert_eq!(call(json!({"to": TO, "data": "zz"})), Err(ErrorCode::InvalidCalldata));
        assert_eq!(call(json!({"to": TO})), Err(ErrorCode::InvalidJson));
        assert_eq!(call(json!({"to": TO, "data": "0x12345678", "value": "-1"})), Err(ErrorCode::InvalidAmount));
        assert_eq!(
            call(json!({"to": TO, "function": "transfer(address,uint256)", "args": ["0x12", "5"]})),
            Err(ErrorCode::InvalidInput)
        );
        let sign = |body: Value| SignRequest::from_value(&body).map_err(|e| e.code);
        assert_eq!(sign(json!({"hash": "0x12"})), Err(ErrorCode::InvalidInput));
        assert_eq!(sign(json!({"message": "a", "hash": "0x12"})), Err(ErrorCode::InvalidJson));
        assert_eq!(sign(json!({"typed_data": "x"})), Err(ErrorCode::InvalidTypedData));
        assert_eq!(sign(json!({"message": "hi"})), Ok(SignRequest::Message(b"hi".to_vec())));
        let evaluate = |body: Value| EvaluateRequest::parse(body.to_string().as_bytes()).map_err(|e| e.code);
        assert_eq!(evaluate(json!({"type": "nope"})), Err(ErrorCode::InvalidJson));
        assert!(matches!(
            evaluate(json!({"type": "transfer", "to": TO, "amount": "1"})),
            Ok(EvaluateRequest::Transfer(_))
        ));
    }

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
        assert_eq!(ok.amount.resolve(18, "amount").unwrap(), U256::from(500_000_000_000_000_000u64));
        let ok = TransferRequest::parse(t("\"amount_wei\": \"7\"").as_bytes()).unwrap();
        assert_eq!(ok.amount, AmountSpec::Base(U256::from(7u64)));
        // Tokens: amount_base instead of amount_wei; decimals are checked once known.
        let ok = TransferRequest::parse(t("\"token\": \"TST\", \"amount\": \"1.1234567\"").as_bytes()).unwrap();
        assert_eq!(ok.amount.resolve(6, "amount").unwrap_err().code, ErrorCode::InvalidAmount);
        assert_eq!(code(&t("\"token\": \"TST\", \"amount_wei\": \"1\"")), ErrorCode::InvalidJson);
        assert_eq!(code(&t("\"token\": 5, \"amount\": \"1\"")), ErrorCode::UnknownToken);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = TransferRequest::parse(&bytes);
        }

        #[test]
        fn arbitrary_json_never_panics_in_any_request_parser(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = EvaluateRequest::parse(&bytes);
            let _ = CallRequest::parse(&bytes);
            if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                let _ = SignRequest::from_value(&value);
            }
        }

        #[test]
        fn arbitrary_amount_strings_never_panic(text in "\\PC{0,40}") {
            let body = json!({"to": TO, "amount": text}).to_string();
            let _ = TransferRequest::parse(body.as_bytes());
        }
    }
}
