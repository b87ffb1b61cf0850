//! x402 (HTTP `402 Payment Required`), protocol version 2, `exact` scheme on EVM
//! chains: what a resource server asks for (the `PAYMENT-REQUIRED` header), the
//! EIP-3009 `TransferWithAuthorization` a wallet signs for it, the payment sent back
//! (`PAYMENT-SIGNATURE`) and the settlement the server reports (`PAYMENT-RESPONSE`).
//! Every header comes from an untrusted server: it is decoded only here, with
//! property tests.

use alloy_primitives::{Address, B256, U256};
use base64::Engine;
use serde_json::{json, Map, Value};

use mandate_core::ErrorCode;

/// Largest header accepted (base64 text).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The EIP-712 primary type an `exact` payment signs.
pub const PRIMARY_TYPE: &str = "TransferWithAuthorization";

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("x402: {0}")]
pub struct X402Error(pub String);

impl X402Error {
    /// The stable code: the resource server's answer is unusable.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::X402Invalid
    }
}

fn bad(message: impl Into<String>) -> X402Error {
    X402Error(message.into())
}

/// One way to pay that the server accepts (`accepts[i]`), for the `exact` scheme on
/// an `eip155` network.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// The EVM chain id (`network` is `eip155:<id>`).
    pub chain_id: u64,
    /// Base units of `asset` to pay.
    pub amount: U256,
    /// The token contract (EIP-3009).
    pub asset: Address,
    /// Who is paid.
    pub pay_to: Address,
    /// How long the authorization may stay valid, in seconds.
    pub max_timeout_seconds: u64,
    /// The token's EIP-712 domain name and version (`extra.name`, `extra.version`).
    pub token_name: String,
    /// See `token_name`.
    pub token_version: String,
    /// The entry as the server sent it (echoed back as `accepted`).
    pub raw: Value,
}

/// A `PAYMENT-REQUIRED` header.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRequired {
    /// The usable `exact`/`eip155` entries, in the server's order.
    pub accepts: Vec<Requirement>,
    /// `resource` as sent (echoed back).
    pub resource: Option<Value>,
    /// Entries of other schemes or networks, left out.
    pub skipped: usize,
}

fn decode_header(header: &str) -> Result<Value, X402Error> {
    let text = header.trim();
    if text.is_empty() || text.len() > MAX_HEADER_BYTES {
        return Err(bad(format!("a header of {} bytes (at most {MAX_HEADER_BYTES})", text.len())));
    }
    let engines = [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE];
    let bytes = engines
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')).ok())
        .ok_or_else(|| bad("the header is not base64"))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("the header is not JSON: {e}")))
}

fn text<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, X402Error> {
    map.get(field).and_then(Value::as_str).ok_or_else(|| bad(format!("{field}: expected a string")))
}

fn address(map: &Map<String, Value>, field: &str) -> Result<Address, X402Error> {
    text(map, field)?.parse().map_err(|_| bad(format!("{field}: not an address")))
}

fn requirement(entry: &Value) -> Result<Option<Requirement>, X402Error> {
    let map = entry.as_object().ok_or_else(|| bad("accepts: expected objects"))?;
    let (scheme, network) = (text(map, "scheme")?, text(map, "network")?);
    let Some(chain) = network.strip_prefix("eip155:") else { return Ok(None) };
    if scheme != "exact" {
        return Ok(None);
    }
    let chain_id = chain.parse::<u64>().map_err(|_| bad(format!("network {network:?}: not a chain id")))?;
    let amount = text(map, "amount")?;
    if amount.is_empty() || amount.len() > 78 || !amount.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("amount: expected base units as a decimal string"));
    }
    let amount = U256::from_str_radix(amount, 10).map_err(|_| bad("amount: too large"))?;
    if amount.is_zero() {
        return Err(bad("amount: zero"));
    }
    let max_timeout_seconds = map
        .get("maxTimeoutSeconds")
        .and_then(Value::as_u64)
        .filter(|secs| (1..=86_400).contains(secs))
        .ok_or_else(|| bad("maxTimeoutSeconds: expected 1 to 86400"))?;
    let extra =
        map.get("extra").and_then(Value::as_object).ok_or_else(|| bad("extra: the token's name and version"))?;
    let short = |field: &str| -> Result<String, X402Error> {
        let value = text(extra, field)?;
        if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
            return Err(bad(format!("extra.{field}: 1 to 64 printable characters")));
        }
        Ok(value.to_string())
    };
    Ok(Some(Requirement {
        chain_id,
        amount,
        asset: address(map, "asset")?,
        pay_to: address(map, "payTo")?,
        max_timeout_seconds,
        token_name: short("name")?,
        token_version: short("version")?,
        raw: entry.clone(),
    }))
}

/// Decodes a `PAYMENT-REQUIRED` header (base64 JSON, `x402Version` 2). Entries of
/// other schemes or networks are skipped; a malformed `exact`/`eip155` entry refuses
/// the whole header.
pub fn parse_payment_required(header: &str) -> Result<PaymentRequired, X402Error> {
    let value = decode_header(header)?;
    let map = value.as_object().ok_or_else(|| bad("expected a JSON object"))?;
    match map.get("x402Version").and_then(Value::as_u64) {
        Some(2) => {}
        other => return Err(bad(format!("x402Version {other:?}: only version 2 is spoken"))),
    }
    let entries = map.get("accepts").and_then(Value::as_array).ok_or_else(|| bad("accepts: expected an array"))?;
    if entries.len() > 32 {
        return Err(bad("accepts: more than 32 entries"));
    }
    let mut accepts = Vec::new();
    for entry in entries {
        if let Some(requirement) = requirement(entry)? {
            accepts.push(requirement);
        }
    }
    let skipped = entries.len() - accepts.len();
    Ok(PaymentRequired { accepts, resource: map.get("resource").cloned(), skipped })
}

/// An EIP-3009 `TransferWithAuthorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The payer (the wallet).
    pub from: Address,
    /// The payee.
    pub to: Address,
    /// Base units.
    pub value: U256,
    /// Valid strictly after this (unix seconds).
    pub valid_after: u64,
    /// Valid strictly before this (unix seconds).
    pub valid_before: u64,
    /// Random; each (from, nonce) settles once.
    pub nonce: B256,
}

impl Authorization {
    /// The authorization `from` signs for `requirement`, valid from now for the
    /// requirement's timeout (at most `max_secs`), with a fresh random nonce.
    pub fn for_requirement(from: Address, requirement: &Requirement, now: u64, max_secs: u64) -> Authorization {
        Authorization {
            from,
            to: requirement.pay_to,
            value: requirement.amount,
            valid_after: 0,
            valid_before: now + requirement.max_timeout_seconds.min(max_secs),
            nonce: {
                let mut nonce = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
                B256::from(nonce)
            },
        }
    }

    /// The `eth_signTypedData_v4` JSON the wallet signs: the token's EIP-712 domain
    /// (name, version, chain, contract) and this authorization.
    pub fn typed_data(&self, requirement: &Requirement) -> Value {
        json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
                ],
                PRIMARY_TYPE: [
                    {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                    {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
                    {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}
                ]
            },
            "primaryType": PRIMARY_TYPE,
            "domain": {"name": requirement.token_name, "version": requirement.token_version,
                       "chainId": requirement.chain_id, "verifyingContract": requirement.asset.to_checksum(None)},
            "message": self.message(),
        })
    }

    fn message(&self) -> Value {
        json!({"from": self.from.to_checksum(None), "to": self.to.to_checksum(None), "value": self.value.to_string(),
               "validAfter": self.valid_after.to_string(), "validBefore": self.valid_before.to_string(),
               "nonce": format!("{:#x}", self.nonce)})
    }

    /// Reads a `TransferWithAuthorization` back out of typed data (what the cosigner
    /// checks): `None` when the typed data is something else; the token contract and
    /// chain from its domain.
    pub fn of_typed_data(typed: &Value) -> Option<Result<(Authorization, Address, u64), X402Error>> {
        if typed.get("primaryType").and_then(Value::as_str) != Some(PRIMARY_TYPE) {
            return None;
        }
        Some((|| {
            let message = typed.get("message").and_then(Value::as_object).ok_or_else(|| bad("message"))?;
            let domain = typed.get("domain").and_then(Value::as_object).ok_or_else(|| bad("domain"))?;
            let number = |field: &str| -> Result<U256, X402Error> {
                match message.get(field) {
                    Some(Value::String(text)) => text.parse::<U256>().map_err(|_| bad(format!("message.{field}"))),
                    Some(Value::Number(n)) => n.as_u64().map(U256::from).ok_or_else(|| bad(format!("message.{field}"))),
                    _ => Err(bad(format!("message.{field}"))),
                }
            };
            let seconds = |field: &str| -> Result<u64, X402Error> {
                u64::try_from(number(field)?).map_err(|_| bad(format!("message.{field}: out of range")))
            };
            let authorization = Authorization {
                from: address(message, "from")?,
                to: address(message, "to")?,
                value: number("value")?,
                valid_after: seconds("validAfter")?,
                valid_before: seconds("validBefore")?,
                nonce: text(message, "nonce")?.parse().map_err(|_| bad("message.nonce"))?,
            };
            let chain = match domain.get("chainId") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(text)) => text.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| bad("domain.chainId"))?;
            Ok((authorization, address(domain, "verifyingContract")?, chain))
        })())
    }
}

/// The `PAYMENT-SIGNATURE` header value: the signed authorization for `requirement`
/// of `required`, as x402 version 2 clients send it (base64 JSON).
pub fn payment_header(
    required: &PaymentRequired,
    requirement: &Requirement,
    authorization: &Authorization,
    signature: &[u8; 65],
) -> String {
    let mut payload = json!({
        "x402Version": 2,
        "accepted": requirement.raw,
        "payload": {"authorization": authorization.message(), "signature": format!("0x{}", hex::encode(signature))},
    });
    if let (Some(resource), Some(map)) = (&required.resource, payload.as_object_mut()) {
        map.insert("resource".into(), resource.clone());
    }
    base64::engine::general_purpose::STANDARD.encode(payload.to_string())
}

/// What the server reported about settling the payment (`PAYMENT-RESPONSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Whether it settled.
    pub success: bool,
    /// The settlement transaction, when there is one.
    pub transaction: Option<B256>,
    /// The facilitator's reason, when it failed (at most 200 characters).
    pub error: Option<String>,
}

/// Decodes a `PAYMENT-RESPONSE` header.
pub fn parse_settlement(header: &str) -> Result<Settlement, X402Error> {
    let value = decode_header(header)?;
    let map = value.as_object().ok_or_else(|| bad("expected a JSON object"))?;
    let success = map.get("success").and_then(Value::as_bool).ok_or_else(|| bad("success: expected a boolean"))?;
    let transaction = match map.get("transaction").and_then(Value::as_str) {
        None | Some("") => None,
        Some(hash) => Some(hash.parse::<B256>().map_err(|_| bad("transaction: not a transaction hash"))?),
    };
    let error = map
        .get("errorReason")
        .and_then(Value::as_str)
        .map(|reason| reason.chars().filter(|c| !c.is_control()).take(200).collect());
    Ok(Settlement { success, transaction, error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const PAYEE: &str = "0x000000000000000000000000000000000000dEaD";

    fn entry(amount: &str) -> Value {
        json!({"scheme": "exact", "network": "eip155:31337", "amount": amount, "asset": TOKEN, "payTo": PAYEE,
               "maxTimeoutSeconds": 300, "extra": {"name": "Test USD", "version": "1"}})
    }

    fn header(value: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(value.to_string())
    }

    #[test]
    fn a_v2_header_gives_its_exact_evm_entries_and_skips_the_rest() {
        let other = json!({"scheme": "exact", "network": "solana:mainnet", "amount": "1"});
        let value = json!({"x402Version": 2, "resource": {"url": "http://127.0.0.1/weather"},
                           "accepts": [other, entry("10000")]});
        let parsed = parse_payment_required(&header(&value)).unwrap();
        assert_eq!((parsed.accepts.len(), parsed.skipped), (1, 1));
        let requirement = &parsed.accepts[0];
        assert_eq!((requirement.chain_id, requirement.amount), (31337, U256::from(10_000u64)));
        assert_eq!(requirement.pay_to, PAYEE.parse::<Address>().unwrap());
        for bad_entry in [entry("0"), entry("-1"), entry("1e6"), json!({"scheme": "exact", "network": "eip155:x"})] {
            let value = json!({"x402Version": 2, "accepts": [bad_entry]});
            assert!(parse_payment_required(&header(&value)).is_err(), "{value}");
        }
        assert!(parse_payment_required(&header(&json!({"x402Version": 1, "accepts": []}))).is_err());
    }

    #[test]
    fn the_payment_echoes_the_entry_and_the_typed_data_reads_back() {
        let value = json!({"x402Version": 2, "resource": {"url": "u"}, "accepts": [entry("10000")]});
        let required = parse_payment_required(&header(&value)).unwrap();
        let requirement = &required.accepts[0];
        let from: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap();
        let authorization = Authorization::for_requirement(from, requirement, 1_000, 600);
        assert_eq!((authorization.valid_before, authorization.value), (1_300, U256::from(10_000u64)));
        let typed = authorization.typed_data(requirement);
        let (back, token, chain) = Authorization::of_typed_data(&typed).unwrap().unwrap();
        assert_eq!((back, token, chain), (authorization.clone(), TOKEN.parse().unwrap(), 31337));
        let sent = decode_header(&payment_header(&required, requirement, &authorization, &[7u8; 65])).unwrap();
        assert_eq!(sent["accepted"], entry("10000"));
        assert_eq!(sent["resource"], json!({"url": "u"}));
        assert_eq!(sent["payload"]["authorization"]["value"], "10000");
        assert!(Authorization::of_typed_data(&json!({"primaryType": "Permit"})).is_none());
    }

    #[test]
    fn settlements_decode_and_refuse_bad_hashes() {
        let ok = json!({"success": true, "transaction": format!("0x{}", "ab".repeat(32)), "network": "eip155:1"});
        let settled = parse_settlement(&header(&ok)).unwrap();
        assert!(settled.success && settled.transaction.is_some());
        let failed =
            parse_settlement(&header(&json!({"success": false, "errorReason": "insufficient_funds"}))).unwrap();
        assert_eq!((failed.success, failed.error.as_deref()), (false, Some("insufficient_funds")));
        assert!(parse_settlement(&header(&json!({"success": true, "transaction": "0x12"}))).is_err());
    }

    proptest! {
        /// Headers come from untrusted servers: any text is an error or a value, never a panic.
        #[test]
        fn any_header_text_decodes_or_is_refused(text in ".{0,400}") {
            let _ = parse_payment_required(&text);
            let _ = parse_settlement(&text);
        }

        #[test]
        fn any_base64_json_decodes_or_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let _ = parse_payment_required(&encoded);
            let _ = parse_settlement(&encoded);
        }

        #[test]
        fn amounts_round_trip(amount in 1u64.., timeout in 1u64..=86_400) {
            let mut value = entry(&amount.to_string());
            value["maxTimeoutSeconds"] = json!(timeout);
            let parsed = parse_payment_required(&header(&json!({"x402Version": 2, "accepts": [value]}))).unwrap();
            prop_assert_eq!(parsed.accepts[0].amount, U256::from(amount));
            prop_assert_eq!(parsed.accepts[0].max_timeout_seconds, timeout);
        }
    }
}
