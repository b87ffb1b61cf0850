//! Decoding of untrusted payloads into [`Action`]s: transaction calldata (ERC-20
//! transfers and approvals, registered contract functions), EIP-712 typed data and
//! EIP-191 messages; and, for the REST API, the reverse: a call encoded from a
//! human-readable signature and JSON arguments.
//!
//! Everything here reads bytes or JSON that an agent (or anyone) sent. The decoders
//! never panic, bound what they read, and refuse what could be read two ways: an
//! address word with high bytes set (a token contract would read it differently),
//! trailing bytes, a non-canonical ABI encoding, a typed-data domain whose declared
//! type does not match its fields. A refusal is always an error, never a silent
//! "could not decode" that a policy might treat as harmless.

use std::io;

use alloy_dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier, TypedData};
use alloy_primitives::{Address, B256, U256};
use serde_json::Value;

/// A function signature, parsed (what a policy registers for a contract). Re-exported
/// so that other crates need not depend on `alloy-json-abi`.
pub use alloy_json_abi::Function;

use crate::action::{Action, DecodedCall, TypedDataAction};
use crate::ErrorCode;

/// A payload that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// [`ErrorCode::InvalidCalldata`], [`ErrorCode::InvalidTypedData`] or
    /// [`ErrorCode::InvalidInput`] (a signature or an argument given to the API).
    pub code: ErrorCode,
    /// What is wrong, for a human.
    pub message: String,
}

impl DecodeError {
    fn calldata(message: impl Into<String>) -> Self {
        DecodeError { code: ErrorCode::InvalidCalldata, message: message.into() }
    }

    fn typed_data(message: impl Into<String>) -> Self {
        DecodeError { code: ErrorCode::InvalidTypedData, message: message.into() }
    }

    fn input(message: impl Into<String>) -> Self {
        DecodeError { code: ErrorCode::InvalidInput, message: message.into() }
    }
}

/// `transfer(address,uint256)`.
pub const ERC20_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `transferFrom(address,address,uint256)`.
pub const ERC20_TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// `approve(address,uint256)`.
pub const ERC20_APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
/// `increaseAllowance(address,uint256)`.
pub const ERC20_INCREASE_ALLOWANCE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];

/// Longest function signature [`parse_function`] reads, in bytes.
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Largest typed-data document [`parse_typed_data`] reads (serialized JSON, bytes).
pub const MAX_TYPED_DATA_BYTES: usize = 64 * 1024;
/// Most struct types a typed-data document may declare.
pub const MAX_TYPED_DATA_TYPES: usize = 64;
/// Deepest nesting of arrays and tuples in a JSON call argument.
const MAX_ARG_DEPTH: usize = 16;
/// Largest integer a JSON number may carry (2^53 − 1): a JavaScript client cannot
/// represent more exactly, so bigger amounts must come as decimal strings.
const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;

/// Parses a function signature: `swap(address,uint256)` or
/// `function swap(address tokenIn, uint256 amountIn)` (names are kept; `returns (…)`
/// and a state mutability are allowed and ignored by the decoder). Every parameter
/// type must be an ABI type (struct names are refused; write tuples).
pub fn parse_function(signature: &str) -> Result<Function, DecodeError> {
    if signature.len() > MAX_SIGNATURE_LEN {
        return Err(DecodeError::input(format!(
            "function signature is {} bytes, longer than {MAX_SIGNATURE_LEN}",
            signature.len()
        )));
    }
    let function = Function::parse(signature.trim())
        .map_err(|e| DecodeError::input(format!("invalid function signature {signature:?}: {e}")))?;
    for (index, param) in function.inputs.iter().enumerate() {
        param.resolve().map_err(|e| {
            DecodeError::input(format!("invalid function signature {signature:?}: parameter {index}: {e}"))
        })?;
    }
    Ok(function)
}

/// Decodes what a transaction to `to` with `value` and calldata `data` does.
///
/// - No calldata: a native transfer.
/// - ERC-20 `transfer`, `transferFrom`, `approve`, `increaseAllowance` without native
///   value: a token transfer or approval. The arguments must be exactly the words of
///   the function (no trailing bytes) and address words must have 12 zero high bytes.
/// - Anything else (including an ERC-20 selector sent with value): a contract call.
///   When `registered(to, selector)` gives a function with that selector, its
///   arguments must decode, canonically and without trailing bytes, or the calldata is
///   refused; otherwise the call is left undecoded (`call: None`).
///
/// Never panics.
pub fn decode_call(
    to: Address,
    value: U256,
    data: &[u8],
    registered: &dyn Fn(Address, [u8; 4]) -> Option<Function>,
) -> Result<Action, DecodeError> {
    if data.is_empty() {
        return Ok(Action::NativeTransfer { to, value });
    }
    let Some((selector, args)) = data.split_first_chunk::<4>() else {
        return Err(DecodeError::calldata(format!(
            "calldata is {} bytes, shorter than a 4-byte function selector",
            data.len()
        )));
    };
    let selector = *selector;
    if value.is_zero() {
        match selector {
            ERC20_TRANSFER => {
                let [recipient, amount] = words("transfer(address,uint256)", args)?;
                return Ok(Action::TokenTransfer {
                    token: to,
                    from: None,
                    to: address_word("transfer", 0, recipient)?,
                    amount: U256::from_be_bytes(amount.0),
                });
            }
            ERC20_TRANSFER_FROM => {
                let [from, recipient, amount] = words("transferFrom(address,address,uint256)", args)?;
                return Ok(Action::TokenTransfer {
                    token: to,
                    from: Some(address_word("transferFrom", 0, from)?),
                    to: address_word("transferFrom", 1, recipient)?,
                    amount: U256::from_be_bytes(amount.0),
                });
            }
            ERC20_APPROVE => {
                let [spender, amount] = words("approve(address,uint256)", args)?;
                return Ok(Action::TokenApprove {
                    token: to,
                    spender: address_word("approve", 0, spender)?,
                    amount: U256::from_be_bytes(amount.0),
                    increase: false,
                });
            }
            ERC20_INCREASE_ALLOWANCE => {
                let [spender, amount] = words("increaseAllowance(address,uint256)", args)?;
                return Ok(Action::TokenApprove {
                    token: to,
                    spender: address_word("increaseAllowance", 0, spender)?,
                    amount: U256::from_be_bytes(amount.0),
                    increase: true,
                });
            }
            _ => {}
        }
    }
    let call = match registered(to, selector) {
        // A function under another selector is a registry mix-up, not this call's ABI.
        Some(function) if function.selector().0 == selector => Some(decode_registered(&function, args)?),
        _ => None,
    };
    Ok(Action::ContractCall { to, value, selector, call })
}

/// Exactly `N` 32-byte words.
fn words<const N: usize>(function: &str, args: &[u8]) -> Result<[B256; N], DecodeError> {
    if args.len() != 32 * N {
        return Err(DecodeError::calldata(format!(
            "{function}: {} argument bytes, expected exactly {}",
            args.len(),
            32 * N
        )));
    }
    let mut out = [B256::ZERO; N];
    for (slot, chunk) in out.iter_mut().zip(args.chunks_exact(32)) {
        let word: [u8; 32] =
            chunk.try_into().map_err(|_| DecodeError::calldata(format!("{function}: truncated word")))?;
        *slot = B256::from(word);
    }
    Ok(out)
}

/// An address word: 12 zero bytes, then the address. A token contract compiled
/// without ABI-decoder checks would read only the low 20 bytes of a dirty word, so
/// what the policy sees and what the token does could differ: refused.
fn address_word(function: &str, index: usize, word: B256) -> Result<Address, DecodeError> {
    if word.0.iter().take(12).any(|byte| *byte != 0) {
        return Err(DecodeError::calldata(format!(
            "{function}: argument {index} is not an address (its 12 high bytes are not zero)"
        )));
    }
    Ok(Address::from_word(word))
}

/// Decodes the arguments of a registered function, refusing anything but the one
/// canonical encoding: alloy's decoder tolerates trailing bytes, dirty padding and
/// unusual offsets, which the contract's own decoder might read differently.
fn decode_registered(function: &Function, args: &[u8]) -> Result<DecodedCall, DecodeError> {
    let signature = function.signature();
    let values = function
        .abi_decode_input(args)
        .map_err(|e| DecodeError::calldata(format!("{signature}: arguments do not decode: {e}")))?;
    let canonical = function
        .abi_encode_input_raw(&values)
        .map_err(|e| DecodeError::calldata(format!("{signature}: arguments do not re-encode: {e}")))?;
    if canonical != args {
        return Err(DecodeError::calldata(format!(
            "{signature}: arguments are not canonically ABI-encoded (trailing bytes, dirty padding or unusual offsets)"
        )));
    }
    Ok(DecodedCall { signature, names: function.inputs.iter().map(|p| p.name.clone()).collect(), args: values })
}

/// Encodes a call for the REST API's `{"function": "...", "args": [...]}`: selector
/// followed by the ABI-encoded arguments.
///
/// Each argument is a JSON string coerced to the parameter type (`"0x…"` addresses,
/// decimal or `0x` integers, `"true"`, hex bytes, `"[1,2]"` arrays), or a JSON number
/// for an integer of at most 2^53 − 1, a JSON bool for a `bool`, a JSON array for an
/// array or tuple. A wrong count or type is [`ErrorCode::InvalidInput`] naming the
/// argument index.
pub fn encode_call(signature: &str, args: &[Value]) -> Result<Vec<u8>, DecodeError> {
    let function = parse_function(signature)?;
    let canonical = function.signature();
    if args.len() != function.inputs.len() {
        return Err(DecodeError::input(format!(
            "{canonical} takes {} arguments, {} given",
            function.inputs.len(),
            args.len()
        )));
    }
    let mut values = Vec::with_capacity(args.len());
    for (index, (param, arg)) in function.inputs.iter().zip(args).enumerate() {
        let ty = param.resolve().map_err(|e| DecodeError::input(format!("argument {index}: {e}")))?;
        let name = if param.name.is_empty() { String::new() } else { format!(" {}", param.name) };
        let value = json_arg(&ty, arg, 0)
            .map_err(|why| DecodeError::input(format!("argument {index} ({}{name}): {why}", ty.sol_type_name())))?;
        values.push(value);
    }
    function.abi_encode_input(&values).map_err(|e| DecodeError::input(format!("{canonical}: {e}")))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_arg(ty: &DynSolType, arg: &Value, depth: usize) -> Result<DynSolValue, String> {
    if depth > MAX_ARG_DEPTH {
        return Err(format!("nested deeper than {MAX_ARG_DEPTH} levels"));
    }
    let items = |items: &[Value], inner: &DynSolType| {
        items.iter().map(|item| json_arg(inner, item, depth + 1)).collect::<Result<Vec<_>, _>>()
    };
    match (arg, ty) {
        // alloy's coercion does not check EIP-55 checksums; a mistyped address must not pass.
        (Value::String(text), DynSolType::Address) => {
            crate::address::parse_address(text).map(DynSolValue::Address).map_err(|e| e.to_string())
        }
        (Value::String(_), DynSolType::Array(_) | DynSolType::FixedArray(..) | DynSolType::Tuple(_))
            if contains_address(ty) =>
        {
            Err("give an array or tuple holding addresses as a JSON array, so that each address's checksum is checked"
                .into())
        }
        (Value::String(text), _) => ty.coerce_str(text).map_err(|e| e.to_string()),
        (Value::Number(number), DynSolType::Uint(_) | DynSolType::Int(_)) => {
            let small = number
                .as_u64()
                .map(|n| n <= MAX_JSON_INTEGER)
                .or(number.as_i64().map(|n| n.unsigned_abs() <= MAX_JSON_INTEGER));
            if small != Some(true) {
                return Err(format!(
                    "the number {number} is not an integer of at most 2^53-1; give it as a decimal string"
                ));
            }
            ty.coerce_str(&number.to_string()).map_err(|e| e.to_string())
        }
        (Value::Bool(flag), DynSolType::Bool) => Ok(DynSolValue::Bool(*flag)),
        (Value::Array(list), DynSolType::Array(inner)) => items(list, inner).map(DynSolValue::Array),
        (Value::Array(list), DynSolType::FixedArray(inner, len)) => {
            if list.len() != *len {
                return Err(format!("expected {len} elements, got {}", list.len()));
            }
            items(list, inner).map(DynSolValue::FixedArray)
        }
        (Value::Array(list), DynSolType::Tuple(types)) => {
            if list.len() != types.len() {
                return Err(format!("expected a tuple of {} elements, got {}", types.len(), list.len()));
            }
            list.iter()
                .zip(types)
                .map(|(item, inner)| json_arg(inner, item, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(DynSolValue::Tuple)
        }
        _ => Err(format!("expected {}, got {}", ty.sol_type_name(), json_kind(arg))),
    }
}

fn contains_address(ty: &DynSolType) -> bool {
    match ty {
        DynSolType::Address => true,
        DynSolType::Array(inner) | DynSolType::FixedArray(inner, _) => contains_address(inner),
        DynSolType::Tuple(types) => types.iter().any(contains_address),
        _ => false,
    }
}

/// The fields a domain may carry (what alloy's `Eip712Domain` hashes).
const DOMAIN_FIELDS: [&str; 5] = ["name", "version", "chainId", "verifyingContract", "salt"];
/// The keys of an `eth_signTypedData_v4` document.
const TYPED_DATA_KEYS: [&str; 4] = ["types", "primaryType", "domain", "message"];

/// Counts serialized bytes and stops past a limit.
struct Bounded {
    written: usize,
    limit: usize,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written = self.written.saturating_add(buf.len());
        if self.written > self.limit {
            return Err(io::Error::other("too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Parses `eth_signTypedData_v4` JSON (`{types, primaryType, domain, message}`) and
/// computes its EIP-712 signing hash.
///
/// Refused ([`ErrorCode::InvalidTypedData`]): more than [`MAX_TYPED_DATA_TYPES`]
/// types or more than [`MAX_TYPED_DATA_BYTES`] serialized; unknown top-level or
/// domain keys (they would not be hashed); a declared `EIP712Domain` type that is not
/// the domain's fields in the standard order (the hash would not be what a wallet or
/// the verifying contract computes); a `chainId` above `u64`; a message that does not
/// match its types, or that carries a key no declared type names at any depth (it
/// would not be hashed, hence not signed). Never panics.
pub fn parse_typed_data(json: &Value) -> Result<TypedDataAction, DecodeError> {
    let object = json.as_object().ok_or_else(|| {
        DecodeError::typed_data("typed data must be a JSON object {types, primaryType, domain, message}")
    })?;
    let mut counter = Bounded { written: 0, limit: MAX_TYPED_DATA_BYTES };
    if serde_json::to_writer(&mut counter, json).is_err() {
        return Err(DecodeError::typed_data(format!("typed data is larger than {MAX_TYPED_DATA_BYTES} bytes")));
    }
    if let Some(key) = object.keys().find(|key| !TYPED_DATA_KEYS.contains(&key.as_str())) {
        return Err(DecodeError::typed_data(format!("unknown typed-data key {key:?}")));
    }
    let types = object
        .get("types")
        .and_then(Value::as_object)
        .ok_or_else(|| DecodeError::typed_data("typed data has no \"types\" object"))?;
    if types.len() > MAX_TYPED_DATA_TYPES {
        return Err(DecodeError::typed_data(format!(
            "typed data declares {} types, more than {MAX_TYPED_DATA_TYPES}",
            types.len()
        )));
    }
    match object.get("domain") {
        None | Some(Value::Null) => {}
        Some(Value::Object(domain)) => {
            if let Some(key) = domain.keys().find(|key| !DOMAIN_FIELDS.contains(&key.as_str())) {
                return Err(DecodeError::typed_data(format!("unknown domain field {key:?}")));
            }
        }
        Some(other) => return Err(DecodeError::typed_data(format!("domain is {}, not an object", json_kind(other)))),
    }
    let typed: TypedData =
        serde_json::from_value(json.clone()).map_err(|e| DecodeError::typed_data(format!("typed data: {e}")))?;
    if let Some(declared) = types.get("EIP712Domain") {
        let declared = declared_type("EIP712Domain", declared)?;
        let hashed = typed.domain.encode_type();
        if declared != hashed {
            return Err(DecodeError::typed_data(format!(
                "declared {declared} does not match the domain's fields, which hash as {hashed}"
            )));
        }
    }
    let signing_hash = typed.eip712_signing_hash().map_err(|e| DecodeError::typed_data(format!("typed data: {e}")))?;
    if let Some(message) = object.get("message") {
        refuse_undeclared_keys(types, &typed.primary_type, message, "message", 0)?;
    }
    let chain_id = typed
        .domain
        .chain_id
        .map(u64::try_from)
        .transpose()
        .map_err(|_| DecodeError::typed_data("domain.chainId does not fit in 64 bits"))?;
    Ok(TypedDataAction {
        chain_id,
        verifying_contract: typed.domain.verifying_contract,
        name: typed.domain.name.map(|name| name.into_owned()),
        primary_type: typed.primary_type,
        signing_hash,
    })
}

/// Deepest nesting of structs and arrays [`refuse_undeclared_keys`] follows (the JSON
/// itself is bounded by [`MAX_TYPED_DATA_BYTES`]; this bounds the recursion).
const MAX_TYPED_DATA_DEPTH: usize = 64;

/// Refuses a `value` of type `type_name` that carries, at any depth (structs inside
/// structs, arrays of structs), an object key that its struct type does not declare:
/// such a key is not hashed, so it was never signed, yet it would show in the audit
/// trail as if it were. Values of atomic types are left to the hashing (which checks
/// them); `path` names the place for the error (`message.from.extra`).
fn refuse_undeclared_keys(
    types: &serde_json::Map<String, Value>,
    type_name: &str,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<(), DecodeError> {
    if depth > MAX_TYPED_DATA_DEPTH {
        return Err(DecodeError::typed_data(format!("{path} is nested deeper than {MAX_TYPED_DATA_DEPTH} levels")));
    }
    if let Some(element_type) = type_name.strip_suffix(']').and_then(|t| t.rsplit_once('[')).map(|(t, _)| t) {
        if let Value::Array(elements) = value {
            for (index, element) in elements.iter().enumerate() {
                refuse_undeclared_keys(types, element_type, element, &format!("{path}[{index}]"), depth + 1)?;
            }
        }
        return Ok(());
    }
    let (Some(fields), Value::Object(object)) = (types.get(type_name).and_then(Value::as_array), value) else {
        return Ok(());
    };
    let declared = |key: &str| {
        fields.iter().find(|field| field.get("name").and_then(Value::as_str) == Some(key)).and_then(|f| f.get("type"))
    };
    for (key, inner) in object {
        let Some(field_type) = declared(key) else {
            return Err(DecodeError::typed_data(format!(
                "{path}.{key} is not a field of {type_name}: it would not be signed"
            )));
        };
        let field_type = field_type.as_str().unwrap_or_default();
        refuse_undeclared_keys(types, field_type, inner, &format!("{path}.{key}"), depth + 1)?;
    }
    Ok(())
}

/// [`parse_typed_data`] of JSON text (what a signing payload carries), refusing text
/// over [`MAX_TYPED_DATA_BYTES`] before parsing it.
pub fn parse_typed_data_text(text: &str) -> Result<TypedDataAction, DecodeError> {
    if text.len() > MAX_TYPED_DATA_BYTES {
        return Err(DecodeError::typed_data(format!("typed data is larger than {MAX_TYPED_DATA_BYTES} bytes")));
    }
    let json: Value =
        serde_json::from_str(text).map_err(|e| DecodeError::typed_data(format!("typed data is not JSON: {e}")))?;
    parse_typed_data(&json)
}

/// `Name(type1 name1,type2 name2)` from a `types` entry.
fn declared_type(name: &str, fields: &Value) -> Result<String, DecodeError> {
    let fields = fields.as_array().ok_or_else(|| DecodeError::typed_data(format!("type {name} is not an array")))?;
    let mut parts = Vec::with_capacity(fields.len());
    for field in fields {
        let field_type = field.get("type").and_then(Value::as_str);
        let field_name = field.get("name").and_then(Value::as_str);
        let (Some(field_type), Some(field_name)) = (field_type, field_name) else {
            return Err(DecodeError::typed_data(format!("a field of {name} lacks a string name or type")));
        };
        parts.push(format!("{field_type} {field_name}"));
    }
    Ok(format!("{name}({})", parts.join(",")))
}

/// The EIP-191 `personal_sign` hash: keccak256 of `"\x19Ethereum Signed Message:\n"`,
/// the message length in decimal, and the message.
pub fn personal_message_hash(message: &[u8]) -> B256 {
    alloy_primitives::eip191_hash_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, hex, keccak256, I256};
    use proptest::prelude::*;
    use serde_json::json;

    fn none(_: Address, _: [u8; 4]) -> Option<Function> {
        None
    }

    fn mail() -> Value {
        json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
                "Mail": [
                    {"name": "from", "type": "Person"},
                    {"name": "to", "type": "Person"},
                    {"name": "contents", "type": "string"}
                ]
            },
            "primaryType": "Mail",
            "domain": {
                "name": "Ether Mail",
                "version": "1",
                "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
            },
            "message": {
                "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"
            }
        })
    }

    const TOKEN: Address = address!("0x1111111111111111111111111111111111111111");
    const BOB: Address = address!("0x2222222222222222222222222222222222222222");

    #[test]
    fn erc20_selectors_are_the_keccak_of_their_signatures() {
        for (selector, signature) in [
            (ERC20_TRANSFER, "transfer(address,uint256)"),
            (ERC20_TRANSFER_FROM, "transferFrom(address,address,uint256)"),
            (ERC20_APPROVE, "approve(address,uint256)"),
            (ERC20_INCREASE_ALLOWANCE, "increaseAllowance(address,uint256)"),
        ] {
            assert_eq!(selector, keccak256(signature)[..4], "{signature}");
        }
    }

    #[test]
    fn empty_calldata_is_a_native_transfer_and_short_calldata_is_refused() {
        let action = decode_call(BOB, U256::from(5u64), &[], &none).unwrap();
        assert_eq!(action, Action::NativeTransfer { to: BOB, value: U256::from(5u64) });
        for len in 1..4 {
            let err = decode_call(BOB, U256::ZERO, &vec![0xa9; len], &none).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidCalldata);
        }
    }

    #[test]
    fn decodes_a_known_erc20_transfer() {
        // transfer(0x2222…2222, 1000000) as any wallet encodes it.
        let data = hex!(
            "a9059cbb"
            "0000000000000000000000002222222222222222222222222222222222222222"
            "00000000000000000000000000000000000000000000000000000000000f4240"
        );
        let action = decode_call(TOKEN, U256::ZERO, &data, &none).unwrap();
        assert_eq!(
            action,
            Action::TokenTransfer { token: TOKEN, from: None, to: BOB, amount: U256::from(1_000_000u64) }
        );
        assert_eq!(
            data.to_vec(),
            encode_call("transfer(address,uint256)", &[json!(BOB.to_string()), json!(1_000_000)]).unwrap()
        );
    }

    #[test]
    fn decodes_transfer_from_approve_and_increase_allowance() {
        let from = Address::repeat_byte(0x33);
        let data = encode_call(
            "transferFrom(address,address,uint256)",
            &[json!(from.to_string()), json!(BOB.to_string()), json!("7")],
        )
        .unwrap();
        let action = decode_call(TOKEN, U256::ZERO, &data, &none).unwrap();
        assert_eq!(action, Action::TokenTransfer { token: TOKEN, from: Some(from), to: BOB, amount: U256::from(7u64) });

        let max = U256::MAX.to_string();
        let data = encode_call("approve(address,uint256)", &[json!(BOB.to_string()), json!(max)]).unwrap();
        let action = decode_call(TOKEN, U256::ZERO, &data, &none).unwrap();
        assert_eq!(action, Action::TokenApprove { token: TOKEN, spender: BOB, amount: U256::MAX, increase: false });

        let data = encode_call("increaseAllowance(address,uint256)", &[json!(BOB.to_string()), json!(9)]).unwrap();
        let action = decode_call(TOKEN, U256::ZERO, &data, &none).unwrap();
        assert_eq!(
            action,
            Action::TokenApprove { token: TOKEN, spender: BOB, amount: U256::from(9u64), increase: true }
        );
    }

    #[test]
    fn erc20_strictness_refusals() {
        let good = encode_call("transfer(address,uint256)", &[json!(BOB.to_string()), json!(1)]).unwrap();
        // Trailing bytes.
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode_call(TOKEN, U256::ZERO, &long, &none).unwrap_err().code, ErrorCode::InvalidCalldata);
        // A full trailing word too.
        let mut long = good.clone();
        long.extend_from_slice(&[0; 32]);
        assert_eq!(decode_call(TOKEN, U256::ZERO, &long, &none).unwrap_err().code, ErrorCode::InvalidCalldata);
        // Truncated.
        let short = &good[..good.len() - 1];
        assert_eq!(decode_call(TOKEN, U256::ZERO, short, &none).unwrap_err().code, ErrorCode::InvalidCalldata);
        assert_eq!(decode_call(TOKEN, U256::ZERO, &good[..4], &none).unwrap_err().code, ErrorCode::InvalidCalldata);
        // Dirty high bytes of the address word (each of the 12).
        for i in 0..12 {
            let mut dirty = good.clone();
            dirty[4 + i] = 0x01;
            let err = decode_call(TOKEN, U256::ZERO, &dirty, &none).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidCalldata);
            assert!(err.message.contains("not an address"), "{}", err.message);
        }
        // transferFrom's second address, approve's spender.
        let mut data = encode_call(
            "transferFrom(address,address,uint256)",
            &[json!(BOB.to_string()), json!(BOB.to_string()), json!(1)],
        )
        .unwrap();
        data[4 + 32] = 0xff;
        assert_eq!(decode_call(TOKEN, U256::ZERO, &data, &none).unwrap_err().code, ErrorCode::InvalidCalldata);
        let mut data = encode_call("approve(address,uint256)", &[json!(BOB.to_string()), json!(1)]).unwrap();
        data[4] = 0xff;
        assert_eq!(decode_call(TOKEN, U256::ZERO, &data, &none).unwrap_err().code, ErrorCode::InvalidCalldata);
    }

    #[test]
    fn erc20_selector_with_value_and_other_selectors_are_contract_calls() {
        let data = encode_call("transfer(address,uint256)", &[json!(BOB.to_string()), json!(1)]).unwrap();
        let action = decode_call(TOKEN, U256::from(1u64), &data, &none).unwrap();
        assert_eq!(
            action,
            Action::ContractCall { to: TOKEN, value: U256::from(1u64), selector: ERC20_TRANSFER, call: None }
        );
        // Even malformed ERC-20 arguments: with value it is not a token transfer.
        let action = decode_call(TOKEN, U256::from(1u64), &data[..5], &none).unwrap();
        assert!(matches!(action, Action::ContractCall { call: None, .. }));
        let action = decode_call(TOKEN, U256::ZERO, &[1, 2, 3, 4, 5], &none).unwrap();
        assert_eq!(action, Action::ContractCall { to: TOKEN, value: U256::ZERO, selector: [1, 2, 3, 4], call: None });
    }

    fn swap() -> Function {
        parse_function("function swap(address tokenIn, uint256 amountIn, uint256 minOut)").unwrap()
    }

    #[test]
    fn parses_signatures_with_and_without_names() {
        let plain = parse_function("swap(address,uint256,uint256)").unwrap();
        let named = swap();
        assert_eq!(plain.signature(), "swap(address,uint256,uint256)");
        assert_eq!(named.signature(), plain.signature());
        assert_eq!(named.selector(), plain.selector());
        assert_eq!(named.inputs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["tokenIn", "amountIn", "minOut"]);
        assert_eq!(parse_function("  function f(uint x) external returns (bool)").unwrap().signature(), "f(uint256)");
        for bad in ["", "swap", "swap(", "swap(address,,uint256)", "swap(Order o)", "swap(uint7)", "1x()", "event E()"]
        {
            assert_eq!(parse_function(bad).unwrap_err().code, ErrorCode::InvalidInput, "{bad:?} accepted");
        }
        let long = format!("f({})", vec!["uint256"; 200].join(","));
        assert_eq!(parse_function(&long).unwrap_err().code, ErrorCode::InvalidInput);
    }

    #[test]
    fn decodes_a_registered_function_with_names() {
        let router = Address::repeat_byte(0x44);
        let registered = |to: Address, selector: [u8; 4]| (to == router && selector == swap().selector().0).then(swap);
        let data = encode_call(
            "swap(address,uint256,uint256)",
            &[json!(TOKEN.to_string()), json!("1000000000000000000"), json!(5)],
        )
        .unwrap();
        let action = decode_call(router, U256::ZERO, &data, &registered).unwrap();
        let Action::ContractCall { to, value, selector, call: Some(call) } = action else { panic!("{action:?}") };
        assert_eq!((to, value, selector), (router, U256::ZERO, swap().selector().0));
        assert_eq!(call.signature, "swap(address,uint256,uint256)");
        assert_eq!(call.names, ["tokenIn", "amountIn", "minOut"]);
        assert_eq!(
            call.args,
            [
                DynSolValue::Address(TOKEN),
                DynSolValue::Uint(U256::from(10u64).pow(U256::from(18u64)), 256),
                DynSolValue::Uint(U256::from(5u64), 256)
            ]
        );
        // The same selector on another contract is not registered there.
        let action = decode_call(TOKEN, U256::ZERO, &data, &registered).unwrap();
        assert!(matches!(action, Action::ContractCall { call: None, .. }));
        // A registry answer under another selector is ignored.
        let confused = |_: Address, _: [u8; 4]| Some(parse_function("other(uint256)").unwrap());
        assert!(matches!(
            decode_call(router, U256::ZERO, &data, &confused).unwrap(),
            Action::ContractCall { call: None, .. }
        ));
    }

    #[test]
    fn a_registered_function_that_does_not_decode_is_refused() {
        let registered = |_: Address, _: [u8; 4]| Some(swap());
        let good =
            encode_call("swap(address,uint256,uint256)", &[json!(TOKEN.to_string()), json!(1), json!(2)]).unwrap();
        let refused = |data: &[u8]| decode_call(BOB, U256::ZERO, data, &registered).unwrap_err().code;
        // Truncated, trailing bytes, dirty address.
        assert_eq!(refused(&good[..good.len() - 1]), ErrorCode::InvalidCalldata);
        assert_eq!(refused(&good[..4]), ErrorCode::InvalidCalldata);
        let mut long = good.clone();
        long.extend_from_slice(&[0; 32]);
        assert_eq!(refused(&long), ErrorCode::InvalidCalldata);
        let mut dirty = good.clone();
        dirty[4] = 1;
        assert_eq!(refused(&dirty), ErrorCode::InvalidCalldata);

        // Dynamic types: a bool word of 2, and a string with a non-standard offset.
        let f = parse_function("g(bool flag, string memo)").unwrap();
        let registered = move |_: Address, _: [u8; 4]| Some(f.clone());
        let data = encode_call("g(bool,string)", &[json!(true), json!("hi")]).unwrap();
        assert!(matches!(
            decode_call(BOB, U256::ZERO, &data, &registered).unwrap(),
            Action::ContractCall { call: Some(_), .. }
        ));
        let mut bad_bool = data.clone();
        bad_bool[4 + 31] = 2;
        assert_eq!(decode_call(BOB, U256::ZERO, &bad_bool, &registered).unwrap_err().code, ErrorCode::InvalidCalldata);
        // Move the string one word further (offset 0x60 instead of 0x40, a gap word).
        let mut gapped = data[..4 + 32].to_vec();
        let mut offset = [0u8; 32];
        offset[31] = 0x60;
        gapped.extend_from_slice(&offset);
        gapped.extend_from_slice(&[0; 32]);
        gapped.extend_from_slice(&data[4 + 64..]);
        assert_eq!(decode_call(BOB, U256::ZERO, &gapped, &registered).unwrap_err().code, ErrorCode::InvalidCalldata);
    }

    #[test]
    fn encode_call_coerces_json_and_names_the_bad_argument() {
        let signature =
            "f(address to, uint8 small, int256 delta, bool flag, bytes data, uint256[] list, (bool,string) pair)";
        let data = encode_call(
            signature,
            &[
                json!(BOB.to_string()),
                json!(255),
                json!(-3),
                json!(false),
                json!("0x0102"),
                json!([1, "2", "0x03"]),
                json!([true, "x"]),
            ],
        )
        .unwrap();
        let function = parse_function(signature).unwrap();
        let registered = move |_: Address, _: [u8; 4]| Some(function.clone());
        let Action::ContractCall { call: Some(call), .. } = decode_call(TOKEN, U256::ZERO, &data, &registered).unwrap()
        else {
            panic!("not decoded")
        };
        assert_eq!(call.args[1], DynSolValue::Uint(U256::from(255u64), 8));
        assert_eq!(call.args[2], DynSolValue::Int(I256::try_from(-3i64).unwrap(), 256));
        assert_eq!(
            call.args[5],
            DynSolValue::Array(vec![
                DynSolValue::Uint(U256::from(1u64), 256),
                DynSolValue::Uint(U256::from(2u64), 256),
                DynSolValue::Uint(U256::from(3u64), 256)
            ])
        );
        assert_eq!(call.names[6], "pair");

        let bad = |args: &[Value]| encode_call("f(address to, uint8 small)", args).unwrap_err();
        let err = bad(&[json!(BOB.to_string())]);
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("2 arguments, 1 given"), "{}", err.message);
        for (args, index) in [
            (vec![json!("0x12"), json!(1)], 0),
            (vec![json!(1), json!(1)], 0),
            (vec![json!(BOB.to_string()), json!(256)], 1),
            (vec![json!(BOB.to_string()), json!(-1)], 1),
            (vec![json!(BOB.to_string()), json!(1.5)], 1),
            (vec![json!(BOB.to_string()), json!(true)], 1),
            (vec![json!(BOB.to_string()), json!(null)], 1),
            (vec![json!(BOB.to_string()), json!("x")], 1),
        ] {
            let err = bad(&args);
            assert_eq!(err.code, ErrorCode::InvalidInput);
            assert!(err.message.starts_with(&format!("argument {index} ")), "{args:?}: {}", err.message);
        }
        // Addresses: a bad checksum is refused, also inside arrays; address arrays must be JSON arrays.
        let mistyped = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let err = encode_call("f(address)", &[json!(mistyped)]).unwrap_err();
        assert!(err.message.starts_with("argument 0 ") && err.message.contains("checksum"), "{}", err.message);
        let err = encode_call("f(address[])", &[json!([BOB.to_string(), mistyped])]).unwrap_err();
        assert!(err.message.contains("checksum"), "{}", err.message);
        let err = encode_call("f(address[])", &[json!(format!("[{BOB}]"))]).unwrap_err();
        assert!(err.message.contains("JSON array"), "{}", err.message);
        encode_call("f(address[])", &[json!([BOB.to_string(), mistyped.to_lowercase()])]).unwrap();
        encode_call("f(uint8[])", &[json!("[1,2]")]).unwrap();
        // Beyond 2^53-1 a JSON number is refused; the same value as a string is fine.
        let err = encode_call("f(uint256)", &[json!(1u64 << 53)]).unwrap_err();
        assert!(err.message.contains("decimal string"), "{}", err.message);
        encode_call("f(uint256)", &[json!((1u64 << 53).to_string())]).unwrap();
        assert_eq!(encode_call("f(uint256[2])", &[json!([1])]).unwrap_err().code, ErrorCode::InvalidInput);
        assert_eq!(encode_call("f((bool,bool))", &[json!([true])]).unwrap_err().code, ErrorCode::InvalidInput);
        assert_eq!(encode_call("nope", &[]).unwrap_err().code, ErrorCode::InvalidInput);
    }

    #[test]
    fn eip712_mail_example_digest() {
        let action = parse_typed_data(&mail()).unwrap();
        assert_eq!(action.signing_hash, b256!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"));
        assert_eq!(action.chain_id, Some(1));
        assert_eq!(action.verifying_contract, Some(address!("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")));
        assert_eq!(action.name.as_deref(), Some("Ether Mail"));
        assert_eq!(action.primary_type, "Mail");
        // A chainId given as a string hashes the same.
        let mut text = mail();
        text["domain"]["chainId"] = json!("1");
        assert_eq!(parse_typed_data(&text).unwrap().signing_hash, action.signing_hash);
        // The text form hashes the same; text that is not JSON or too long is refused.
        assert_eq!(parse_typed_data_text(&mail().to_string()).unwrap(), action);
        assert_eq!(parse_typed_data_text("{").unwrap_err().code, ErrorCode::InvalidTypedData);
        let long = " ".repeat(MAX_TYPED_DATA_BYTES + 1);
        assert_eq!(parse_typed_data_text(&long).unwrap_err().code, ErrorCode::InvalidTypedData);
    }

    #[test]
    fn typed_data_refusals() {
        let refused = |json: &Value| parse_typed_data(json).unwrap_err().code;
        assert_eq!(refused(&json!("not an object")), ErrorCode::InvalidTypedData);
        assert_eq!(refused(&Value::String(mail().to_string())), ErrorCode::InvalidTypedData);
        let mut big_chain = mail();
        big_chain["domain"]["chainId"] = json!("18446744073709551616");
        assert_eq!(refused(&big_chain), ErrorCode::InvalidTypedData);
        let mut unknown = mail();
        unknown["extra"] = json!(1);
        assert_eq!(refused(&unknown), ErrorCode::InvalidTypedData);
        let mut unknown_domain = mail();
        unknown_domain["domain"]["foo"] = json!("bar");
        assert_eq!(refused(&unknown_domain), ErrorCode::InvalidTypedData);
        // Declared domain type in another order, or missing a present field.
        let mut reordered = mail();
        reordered["types"]["EIP712Domain"] = json!([
            {"name": "chainId", "type": "uint256"},
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "verifyingContract", "type": "address"}
        ]);
        assert_eq!(refused(&reordered), ErrorCode::InvalidTypedData);
        let mut undeclared = mail();
        undeclared["domain"]["salt"] = json!(format!("0x{}", "11".repeat(32)));
        assert_eq!(refused(&undeclared), ErrorCode::InvalidTypedData);
        // Message not matching its types, unknown primary type, missing types.
        let mut bad_message = mail();
        bad_message["message"]["from"]["wallet"] = json!("not an address");
        assert_eq!(refused(&bad_message), ErrorCode::InvalidTypedData);
        let mut bad_primary = mail();
        bad_primary["primaryType"] = json!("Nope");
        assert_eq!(refused(&bad_primary), ErrorCode::InvalidTypedData);
        let mut no_types = mail();
        no_types.as_object_mut().unwrap().remove("types");
        assert_eq!(refused(&no_types), ErrorCode::InvalidTypedData);
        // Too many types, too large.
        let mut many = mail();
        for i in 0..MAX_TYPED_DATA_TYPES {
            many["types"][format!("T{i}")] = json!([{"name": "x", "type": "uint256"}]);
        }
        assert_eq!(refused(&many), ErrorCode::InvalidTypedData);
        let mut large = mail();
        large["message"]["contents"] = json!("x".repeat(MAX_TYPED_DATA_BYTES));
        let err = parse_typed_data(&large).unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
        // A cycle of types.
        let cycle = json!({
            "types": {"A": [{"name": "b", "type": "B"}], "B": [{"name": "a", "type": "A"}]},
            "primaryType": "A",
            "domain": {},
            "message": {"b": {"a": {}}}
        });
        assert_eq!(refused(&cycle), ErrorCode::InvalidTypedData);
    }

    /// A document whose message nests structs in structs and arrays of structs.
    fn group() -> Value {
        json!({
            "types": {
                "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
                "Team": [{"name": "lead", "type": "Person"}, {"name": "members", "type": "Person[]"}],
                "Group": [
                    {"name": "teams", "type": "Team[2]"},
                    {"name": "grid", "type": "Person[][]"},
                    {"name": "note", "type": "string"}
                ]
            },
            "primaryType": "Group",
            "domain": {"name": "Groups", "chainId": 1},
            "message": {
                "teams": [
                    {"lead": {"name": "A", "wallet": BOB}, "members": [{"name": "B", "wallet": TOKEN}]},
                    {"lead": {"name": "C", "wallet": TOKEN}, "members": []}
                ],
                "grid": [[{"name": "D", "wallet": BOB}], []],
                "note": "n"
            }
        })
    }

    /// The JSON pointers of every object in `group()`'s message (where a key can be added).
    const GROUP_OBJECTS: [&str; 7] = [
        "/message",
        "/message/teams/0",
        "/message/teams/0/lead",
        "/message/teams/0/members/0",
        "/message/teams/1",
        "/message/teams/1/lead",
        "/message/grid/0/0",
    ];

    #[test]
    fn undeclared_message_keys_are_refused_at_every_depth() {
        parse_typed_data(&group()).unwrap();
        let mut mail_extra = mail();
        mail_extra["message"]["from"]["nickname"] = json!("Moo");
        let err = parse_typed_data(&mail_extra).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTypedData);
        assert!(err.message.contains("message.from.nickname"), "{}", err.message);
        let mut top = mail();
        top["message"]["cc"] = json!("Alice");
        assert_eq!(parse_typed_data(&top).unwrap_err().code, ErrorCode::InvalidTypedData);
        for pointer in GROUP_OBJECTS {
            let mut doc = group();
            doc.pointer_mut(pointer).unwrap()["extra"] = json!("never signed");
            let err = parse_typed_data(&doc).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidTypedData, "{pointer}");
            assert!(err.message.contains(".extra is not a field of"), "{pointer}: {}", err.message);
        }
    }

    #[test]
    fn personal_sign_vector() {
        assert_eq!(
            personal_message_hash(b"hello world"),
            b256!("0xd9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68")
        );
        let mut preimage = b"\x19Ethereum Signed Message:\n11".to_vec();
        preimage.extend_from_slice(b"hello world");
        assert_eq!(personal_message_hash(b"hello world"), keccak256(preimage));
    }

    /// JSON values of bounded depth.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            "[a-zA-Z0-9 ()\\[\\],x]{0,24}".prop_map(Value::String),
            prop::sample::select(vec!["0x", "0x11", "uint256", "address", "string", "Mail", "Person", "bytes32"])
                .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Typed-data-shaped documents: random types referring to each other (cycles
    /// included), random domain and message.
    fn typed_data_like() -> impl Strategy<Value = Value> {
        let names = vec!["A", "B", "Mail", "Person", "EIP712Domain"];
        let field_type = prop::sample::select(vec![
            "uint256",
            "uint8",
            "int16",
            "address",
            "bool",
            "string",
            "bytes",
            "bytes32",
            "A",
            "B[]",
            "Mail",
            "Person[2]",
            "uint256[][]",
            "X",
            "",
            "bytes0",
            "uint257",
        ]);
        let field = ("[a-z]{1,3}", field_type).prop_map(|(name, ty)| json!({"name": name, "type": ty}));
        let types =
            prop::collection::btree_map(prop::sample::select(names.clone()), prop::collection::vec(field, 0..4), 0..5);
        (types, prop::sample::select(names), json_value(), json_value()).prop_map(|(types, primary, domain, message)| {
            json!({"types": types, "primaryType": primary, "domain": domain, "message": message})
        })
    }

    fn registered_functions() -> Vec<Function> {
        [
            "swap(address,uint256,uint256)",
            "f(bytes[] a, string b, (uint8,bool)[2] c, int24 d)",
            "g(uint256[][] a, (bytes,address[])[] b)",
            "h(bool[2][] a, bytes32 b)",
            "k()",
        ]
        .iter()
        .map(|s| parse_function(s).unwrap())
        .collect()
    }

    proptest! {
        #[test]
        fn decode_call_never_panics(value in any::<[u8; 32]>(), data in prop::collection::vec(any::<u8>(), 0..400)) {
            let value = U256::from_be_bytes(value);
            let _ = decode_call(TOKEN, value, &data, &none);
            let _ = decode_call(TOKEN, U256::ZERO, &data, &none);
        }

        #[test]
        fn decode_call_never_panics_with_registered_functions(
            which in 0usize..5,
            value in prop::sample::select(vec![U256::ZERO, U256::from(1u64)]),
            words in prop::collection::vec(prop::sample::select(vec![
                [0u8; 32], [0xff; 32], U256::from(32u64).to_be_bytes(), U256::from(64u64).to_be_bytes(),
                U256::from(1u64).to_be_bytes(), U256::from(2u64).to_be_bytes(), U256::from(u64::MAX).to_be_bytes(),
            ]), 0..12),
            tail in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let functions = registered_functions();
            let function = functions[which].clone();
            let mut data = function.selector().to_vec();
            for word in words { data.extend_from_slice(&word); }
            data.extend_from_slice(&tail);
            let registered = move |_: Address, _: [u8; 4]| Some(function.clone());
            if let Ok(Action::ContractCall { call: Some(call), .. }) = decode_call(BOB, value, &data, &registered) {
                // Whatever decodes is the canonical encoding of what it decoded to.
                let again = functions[which].abi_encode_input(&call.args).unwrap();
                prop_assert_eq!(again, data);
            }
        }

        #[test]
        fn a_key_added_anywhere_in_a_message_is_refused(
            at in 0usize..GROUP_OBJECTS.len(),
            key in "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
            value in json_value(),
        ) {
            let declared = ["name", "wallet", "lead", "members", "teams", "grid", "note"];
            prop_assume!(!declared.contains(&key.as_str()));
            let mut doc = group();
            doc.pointer_mut(GROUP_OBJECTS[at]).unwrap()[key.as_str()] = value;
            prop_assert_eq!(parse_typed_data(&doc).unwrap_err().code, ErrorCode::InvalidTypedData);
        }

        #[test]
        fn parse_typed_data_never_panics(json in json_value()) {
            let _ = parse_typed_data(&json);
        }

        #[test]
        fn parse_typed_data_never_panics_on_typed_data_like_input(json in typed_data_like()) {
            let _ = parse_typed_data(&json);
        }

        #[test]
        fn swap_encode_decode_round_trips(
            token in any::<[u8; 20]>(),
            amount in any::<[u8; 32]>(),
            min_out in any::<[u8; 32]>(),
        ) {
            let token = Address::from(token);
            let (amount, min_out) = (U256::from_be_bytes(amount), U256::from_be_bytes(min_out));
            let data = encode_call(
                "function swap(address tokenIn, uint256 amountIn, uint256 minOut)",
                &[json!(token.to_string()), json!(amount.to_string()), json!(format!("{min_out:#x}"))],
            ).unwrap();
            let registered = |_: Address, _: [u8; 4]| Some(swap());
            let action = decode_call(BOB, U256::ZERO, &data, &registered).unwrap();
            let expected = DecodedCall {
                signature: "swap(address,uint256,uint256)".into(),
                names: vec!["tokenIn".into(), "amountIn".into(), "minOut".into()],
                args: vec![DynSolValue::Address(token), DynSolValue::Uint(amount, 256), DynSolValue::Uint(min_out, 256)],
            };
            prop_assert_eq!(
                action,
                Action::ContractCall { to: BOB, value: U256::ZERO, selector: swap().selector().0, call: Some(expected) }
            );
        }
    }
}
