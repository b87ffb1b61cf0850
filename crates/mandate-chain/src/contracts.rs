//! Typed contract reads over [`RpcClient`]'s `eth_call`: an ERC-20's `decimals`,
//! `symbol` and `balanceOf`, a Chainlink-style feed's `latestRoundData`, and
//! [`RpcClient::simulate`], which tells a revert (with its decoded reason) from a
//! node failure.
//!
//! Both the contract and the node are untrusted. Every return value is decoded by a
//! pure function that checks lengths and ranges and never panics (property-tested
//! below); text a contract chose (a symbol, a revert reason) is stripped of control
//! and bidirectional-formatting characters and capped before anyone shows it.
//!
//! Reads run at `latest`. A contract that does not answer as expected is
//! [`ChainError::NotAToken`] or [`ChainError::BadPriceFeed`]; a node that cannot
//! answer stays [`ChainError::Unavailable`] (or [`ChainError::BadResponse`]).

use alloy_primitives::{Address, U256};
use serde_json::{json, Value};

use crate::rpc::{parse_data, RpcClient};
use crate::{ChainError, Result};

/// `decimals()`.
const DECIMALS: [u8; 4] = [0x31, 0x3c, 0xe5, 0x67];
/// `symbol()`.
const SYMBOL: [u8; 4] = [0x95, 0xd8, 0x9b, 0x41];
/// `balanceOf(address)`.
const BALANCE_OF: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];
/// `latestRoundData()`.
const LATEST_ROUND_DATA: [u8; 4] = [0xfe, 0xaf, 0x96, 0x8c];
/// `Error(string)`, the revert of `require(cond, "reason")`.
const ERROR_STRING: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
/// `Panic(uint256)`, a failed assertion, overflow, division by zero…
const PANIC: [u8; 4] = [0x4e, 0x48, 0x7b, 0x71];

/// Largest meaningful `decimals`: 10^77 < 2^256 < 10^78.
const MAX_DECIMALS: u8 = 77;
/// Longest symbol kept, in characters.
const MAX_SYMBOL_CHARS: usize = 32;
/// Longest revert reason kept, in characters.
const MAX_REASON_CHARS: usize = 256;
/// The reason given for a revert without data.
const NO_REASON: &str = "reverted without a reason";
/// ABI word size.
const WORD: usize = 32;

/// A price feed's latest round, checked: a positive answer and a completed round.
/// Staleness is the caller's to judge (it knows `now` and the maximum age).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundData {
    /// The answer, in units of `10^-decimals` (positive).
    pub answer: U256,
    /// The feed's `decimals()` (at most 77).
    pub decimals: u8,
    /// When the answer was last updated, in Unix seconds (non-zero).
    pub updated_at: u64,
}

/// What `eth_call` of a transaction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Simulation {
    /// The call succeeded; what it returned.
    Success(Vec<u8>),
    /// The call reverted; the decoded reason (see [`decode_revert`]).
    Reverted {
        /// Sanitized, at most 256 characters.
        reason: String,
    },
}

/// What an `eth_call` came to, before the caller gives it a meaning.
enum CallOutcome {
    Returned(Vec<u8>),
    Reverted(String),
}

impl RpcClient {
    /// `token.decimals()`. An address that does not answer with one 32-byte word
    /// of at most 77 (an account without code, a contract without `decimals`) is
    /// [`ChainError::NotAToken`].
    pub async fn erc20_decimals(&self, token: Address) -> Result<u8> {
        let returned = self.token_call(token, "decimals()", &DECIMALS).await?;
        decode_decimals(&returned).map_err(|e| ChainError::NotAToken(format!("{token}: decimals(): {e}")))
    }

    /// `token.symbol()`, as an ABI string or (older tokens) a `bytes32`. The text
    /// is the contract's choice: control and bidirectional-formatting characters
    /// are removed and it is capped at 32 characters. An empty symbol is
    /// [`ChainError::NotAToken`].
    pub async fn erc20_symbol(&self, token: Address) -> Result<String> {
        let returned = self.token_call(token, "symbol()", &SYMBOL).await?;
        decode_symbol(&returned).map_err(|e| ChainError::NotAToken(format!("{token}: symbol(): {e}")))
    }

    /// `token.balanceOf(holder)` at the latest block.
    pub async fn erc20_balance(&self, token: Address, holder: Address) -> Result<U256> {
        let mut data = BALANCE_OF.to_vec();
        data.extend_from_slice(holder.into_word().as_slice());
        let returned = self.token_call(token, "balanceOf(address)", &data).await?;
        decode_uint(&returned).map_err(|e| ChainError::NotAToken(format!("{token}: balanceOf(address): {e}")))
    }

    /// `aggregator.latestRoundData()` and `aggregator.decimals()` of a Chainlink
    /// AggregatorV3-style feed. A negative or zero answer, an incomplete round
    /// (`updatedAt == 0`) or anything that does not decode is
    /// [`ChainError::BadPriceFeed`].
    pub async fn latest_round(&self, aggregator: Address) -> Result<RoundData> {
        let feed_error = |what: &str, e: String| ChainError::BadPriceFeed(format!("{aggregator}: {what}: {e}"));
        let returned = match self.read_call(aggregator, &LATEST_ROUND_DATA).await? {
            CallOutcome::Returned(returned) => returned,
            CallOutcome::Reverted(reason) => {
                return Err(feed_error("latestRoundData()", format!("reverted: {reason}")))
            }
        };
        let (answer, updated_at) = decode_round(&returned).map_err(|e| feed_error("latestRoundData()", e))?;
        let decimals = match self.read_call(aggregator, &DECIMALS).await? {
            CallOutcome::Returned(returned) => decode_decimals(&returned).map_err(|e| feed_error("decimals()", e))?,
            CallOutcome::Reverted(reason) => return Err(feed_error("decimals()", format!("reverted: {reason}"))),
        };
        Ok(RoundData { answer, decimals, updated_at })
    }

    /// Runs the call `from → to` with `value` and `data` as an `eth_call` at the
    /// latest block. A revert is [`Simulation::Reverted`] with its reason, not an
    /// error: the node answered, the call would fail. Everything else the node
    /// refuses (insufficient funds for `value`, a malformed call) stays
    /// [`ChainError::Rejected`], and transport failures
    /// [`ChainError::Unavailable`].
    ///
    /// `latest`, not `pending`: not every provider serves `pending` to `eth_call`,
    /// so a call that depends on a transaction still in the pool (an approval sent
    /// just before) is simulated once that transaction is mined.
    pub async fn simulate(&self, from: Address, to: Address, value: U256, data: &[u8]) -> Result<Simulation> {
        let call = json!({
            "from": encode_data(from.as_slice()),
            "to": encode_data(to.as_slice()),
            "value": format!("0x{value:x}"),
            "data": encode_data(data),
        });
        Ok(match self.eth_call(call).await? {
            CallOutcome::Returned(returned) => Simulation::Success(returned),
            CallOutcome::Reverted(reason) => Simulation::Reverted { reason },
        })
    }

    /// A read of a token: a revert or an empty answer is [`ChainError::NotAToken`].
    async fn token_call(&self, token: Address, function: &str, data: &[u8]) -> Result<Vec<u8>> {
        match self.read_call(token, data).await? {
            CallOutcome::Returned(returned) if returned.is_empty() => Err(ChainError::NotAToken(format!(
                "{token}: {function} returned nothing (an account without code, or not an ERC-20)"
            ))),
            CallOutcome::Returned(returned) => Ok(returned),
            CallOutcome::Reverted(reason) => {
                Err(ChainError::NotAToken(format!("{token}: {function} reverted ({reason}); not an ERC-20?")))
            }
        }
    }

    /// `eth_call` of a view: a JSON-RPC error other than a revert means the node
    /// could not answer, so it is `Unavailable` (as for the other reads).
    async fn read_call(&self, to: Address, data: &[u8]) -> Result<CallOutcome> {
        let call = json!({ "to": encode_data(to.as_slice()), "data": encode_data(data) });
        self.eth_call(call).await.map_err(|e| match e {
            ChainError::Rejected(detail) => ChainError::Unavailable(detail),
            other => other,
        })
    }

    /// `eth_call` at `latest`, telling a revert from other JSON-RPC errors.
    async fn eth_call(&self, call: Value) -> Result<CallOutcome> {
        match self.call_raw("eth_call", json!([call, "latest"])).await {
            Ok(Value::String(text)) => {
                let returned = parse_data(&text).map_err(|e| match e {
                    ChainError::BadResponse(detail) => ChainError::BadResponse(format!("eth_call: {detail}")),
                    other => other,
                })?;
                Ok(CallOutcome::Returned(returned))
            }
            Ok(_) => Err(ChainError::BadResponse("eth_call: expected hex data".into())),
            Err(ChainError::Rejected(detail)) => match revert_reason(&detail) {
                Some(reason) => Ok(CallOutcome::Reverted(reason)),
                None => Err(ChainError::Rejected(detail)),
            },
            Err(other) => Err(other),
        }
    }
}

/// Decodes revert data into a short, safe text:
/// - `Error(string)` → the string (control and bidi-formatting characters removed,
///   at most 256 characters);
/// - `Panic(uint256)` → `panic 0x11`;
/// - any other 4-byte selector → `custom error 0x…` (the selector);
/// - nothing → `reverted without a reason`.
///
/// Never panics, whatever the bytes.
pub fn decode_revert(data: &[u8]) -> String {
    let Some((selector, args)) = data.split_first_chunk::<4>() else {
        return if data.is_empty() {
            NO_REASON.to_owned()
        } else {
            format!("reverted with {} bytes of malformed data", data.len())
        };
    };
    match *selector {
        ERROR_STRING => match decode_abi_string(args) {
            Some(bytes) => {
                let reason = sanitize(&String::from_utf8_lossy(&bytes), MAX_REASON_CHARS);
                if reason.is_empty() {
                    "reverted with an empty reason".to_owned()
                } else {
                    reason
                }
            }
            None => "reverted with a malformed Error(string)".to_owned(),
        },
        PANIC => match single_word(args).map(|word| u64::try_from(U256::from_be_slice(word))) {
            Some(Ok(code)) => format!("panic 0x{code:02x}"),
            _ => "reverted with a malformed Panic(uint256)".to_owned(),
        },
        _ => format!("custom error 0x{}", hex::encode(selector)),
    }
}

/// `decimals()`'s answer: exactly one word, at most 77.
fn decode_decimals(returned: &[u8]) -> std::result::Result<u8, String> {
    let value = decode_uint(returned)?;
    match u8::try_from(value) {
        Ok(decimals) if decimals <= MAX_DECIMALS => Ok(decimals),
        _ => Err(format!("{value} is not a number of decimals (at most {MAX_DECIMALS})")),
    }
}

/// A `uint256` answer: exactly one word.
fn decode_uint(returned: &[u8]) -> std::result::Result<U256, String> {
    single_word(returned)
        .map(U256::from_be_slice)
        .ok_or_else(|| format!("expected one 32-byte word, got {} bytes", returned.len()))
}

/// `symbol()`'s answer: an ABI string, or a `bytes32` (NUL-padded) as some older
/// tokens return. Sanitized and capped; empty is refused.
fn decode_symbol(returned: &[u8]) -> std::result::Result<String, String> {
    let raw = if let Some(word) = single_word(returned) {
        let end = word.iter().position(|&b| b == 0).unwrap_or(WORD);
        word.get(..end).unwrap_or_default().to_vec()
    } else {
        decode_abi_string(returned).ok_or_else(|| format!("not an ABI string ({} bytes)", returned.len()))?
    };
    let symbol = sanitize(&String::from_utf8_lossy(&raw), MAX_SYMBOL_CHARS);
    if symbol.is_empty() {
        return Err("empty symbol".into());
    }
    Ok(symbol)
}

/// `latestRoundData()`'s answer `(roundId, answer, startedAt, updatedAt,
/// answeredInRound)`: exactly five words; returns `(answer, updatedAt)` after
/// checking the answer is positive and the round complete.
fn decode_round(returned: &[u8]) -> std::result::Result<(U256, u64), String> {
    if returned.len() != 5 * WORD {
        return Err(format!("expected five 32-byte words, got {} bytes", returned.len()));
    }
    let word = |i: usize| returned.get(i * WORD..(i + 1) * WORD).map(U256::from_be_slice).unwrap_or_default();
    let answer = word(1);
    if answer.bit(255) {
        return Err("negative answer".into());
    }
    if answer.is_zero() {
        return Err("zero answer".into());
    }
    let updated_at = u64::try_from(word(3)).map_err(|_| format!("updatedAt {} is not a time", word(3)))?;
    if updated_at == 0 {
        return Err("round not complete (updatedAt is 0)".into());
    }
    Ok((answer, updated_at))
}

/// The revert reason in a [`ChainError::Rejected`] detail from `call_raw`, or
/// `None` if the JSON-RPC error is not a revert (code 3, or a message that says
/// "revert").
///
/// The detail reads `eth_call: <message>[: <data>] (code <n>)`, where the node's
/// message and revert data were joined and then capped (with a trailing `…`) by the
/// client. The code is always intact (appended after the cap). Whole data is
/// decoded exactly; capped data cannot be, so then the node's own text is used.
fn revert_reason(detail: &str) -> Option<String> {
    let (message, code) = detail.rsplit_once(" (code ")?;
    let code: i64 = code.strip_suffix(')')?.parse().ok()?;
    let message = message.strip_prefix("eth_call: ").unwrap_or(message);
    if code != 3 && !message.to_ascii_lowercase().contains("revert") {
        return None;
    }
    // The data, when the node sent it, is the last `: `-separated part (hex has no
    // `: `), so a reason text cannot pose as it unless the node sent no data.
    if !message.ends_with('…') {
        if let Some(data) = message.rsplit_once(": ").and_then(|(_, last)| parse_data(last).ok()) {
            return Some(decode_revert(&data));
        }
    }
    Some(reason_from_text(message))
}

/// A revert reason from the node's message when the revert data is missing or was
/// cut: `execution reverted: <reason>[: 0x<data…>]`.
fn reason_from_text(message: &str) -> String {
    let text = message.strip_suffix('…').unwrap_or(message);
    let text = match text.rsplit_once(": ") {
        Some((head, last)) if last.starts_with("0x") => head,
        _ => text,
    };
    let text = match text.get(..18) {
        Some(prefix) if prefix.eq_ignore_ascii_case("execution reverted") => text.get(18..).unwrap_or_default(),
        _ => text,
    };
    let text = text.trim_start_matches(':').trim();
    if text.is_empty() {
        return NO_REASON.to_owned();
    }
    // Nodes spell a custom error `custom error 0x<selector>: <raw arguments>`; keep
    // what `decode_revert` would say.
    if let Some(selector) = text.strip_prefix("custom error 0x").and_then(|rest| rest.get(..8)) {
        if selector.bytes().all(|b| b.is_ascii_hexdigit()) {
            return format!("custom error 0x{}", selector.to_ascii_lowercase());
        }
    }
    sanitize(text, MAX_REASON_CHARS)
}

/// Decodes the ABI encoding of one `string` (or `bytes`): an offset word, then at
/// the offset a length word and the bytes. `None` if anything is out of bounds.
fn decode_abi_string(data: &[u8]) -> Option<Vec<u8>> {
    let offset = word_as_usize(data.get(..WORD)?)?;
    let length_end = offset.checked_add(WORD)?;
    let length = word_as_usize(data.get(offset..length_end)?)?;
    let end = length_end.checked_add(length)?;
    data.get(length_end..end).map(<[u8]>::to_vec)
}

fn word_as_usize(word: &[u8]) -> Option<usize> {
    usize::try_from(U256::from_be_slice(word)).ok()
}

/// The data if it is exactly one word.
fn single_word(data: &[u8]) -> Option<&[u8]> {
    (data.len() == WORD).then_some(data)
}

/// Contract-chosen text made safe to show: control characters and invisible or
/// bidirectional-formatting characters (which can make text read as something
/// else) removed, surrounding whitespace trimmed, at most `max_chars` characters.
fn sanitize(text: &str, max_chars: usize) -> String {
    let kept: String = text.chars().filter(|&c| !c.is_control() && !is_invisible_format(c)).collect();
    kept.trim().chars().take(max_chars).collect::<String>().trim_end().to_owned()
}

/// Zero-width and bidirectional-formatting characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn encode_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;
    use proptest::prelude::*;

    fn word(value: u64) -> Vec<u8> {
        U256::from(value).to_be_bytes::<32>().to_vec()
    }

    /// ABI encoding of a single `string` argument.
    fn abi_string(text: &[u8]) -> Vec<u8> {
        let mut out = word(32);
        out.extend(word(text.len() as u64));
        out.extend_from_slice(text);
        out.resize(64 + text.len().div_ceil(32) * 32, 0);
        out
    }

    fn error_string(text: &[u8]) -> Vec<u8> {
        let mut out = ERROR_STRING.to_vec();
        out.extend(abi_string(text));
        out
    }

    #[test]
    fn selectors_are_the_standard_ones() {
        for (selector, signature) in [
            (DECIMALS, "decimals()"),
            (SYMBOL, "symbol()"),
            (BALANCE_OF, "balanceOf(address)"),
            (LATEST_ROUND_DATA, "latestRoundData()"),
            (ERROR_STRING, "Error(string)"),
            (PANIC, "Panic(uint256)"),
        ] {
            assert_eq!(selector, keccak256(signature)[..4], "{signature}");
        }
    }

    #[test]
    fn revert_data_is_decoded() {
        let require = hex::decode(
            "08c379a0\
             0000000000000000000000000000000000000000000000000000000000000020\
             000000000000000000000000000000000000000000000000000000000000001d\
             5461726765743a206d696e4f75742061626f766520616d6f756e74496e000000",
        )
        .unwrap();
        assert_eq!(decode_revert(&require), "Target: minOut above amountIn");
        let mut panic = PANIC.to_vec();
        panic.extend(word(0x11));
        assert_eq!(decode_revert(&panic), "panic 0x11");
        panic.truncate(4 + 31);
        assert_eq!(decode_revert(&panic), "reverted with a malformed Panic(uint256)");
        let custom = hex::decode("63a2a81f000000000000000000000000000000000000000000000000000000000000002a").unwrap();
        assert_eq!(decode_revert(&custom), "custom error 0x63a2a81f");
        assert_eq!(decode_revert(&custom[..4]), "custom error 0x63a2a81f");
        assert_eq!(decode_revert(&[]), "reverted without a reason");
        assert_eq!(decode_revert(&[0x08, 0xc3]), "reverted with 2 bytes of malformed data");
        assert_eq!(decode_revert(&ERROR_STRING), "reverted with a malformed Error(string)");
        assert_eq!(decode_revert(&error_string(b"")), "reverted with an empty reason");
        let mut lying_length = error_string(b"abc");
        lying_length[4 + 63] = 0xff;
        assert_eq!(decode_revert(&lying_length), "reverted with a malformed Error(string)");
    }

    #[test]
    fn revert_reasons_are_sanitized_and_capped() {
        let hostile = "ok\n\u{1b}[31mred\u{202E}evil\u{200B}".as_bytes();
        assert_eq!(decode_revert(&error_string(hostile)), "ok[31mredevil");
        let long = "é".repeat(1000);
        assert_eq!(decode_revert(&error_string(long.as_bytes())).chars().count(), MAX_REASON_CHARS);
        assert_eq!(decode_revert(&error_string(&[0xff, 0xfe, b'a'])), "\u{FFFD}\u{FFFD}a");
    }

    #[test]
    fn decimals_balance_and_symbol_are_decoded_strictly() {
        assert_eq!(decode_decimals(&word(6)), Ok(6));
        assert_eq!(decode_decimals(&word(77)), Ok(77));
        assert!(decode_decimals(&word(78)).is_err());
        assert!(decode_decimals(&U256::MAX.to_be_bytes::<32>()).is_err());
        assert!(decode_decimals(&[]).is_err());
        assert!(decode_decimals(&word(6)[1..]).is_err());
        assert!(decode_decimals(&[word(6), word(6)].concat()).is_err());
        assert_eq!(decode_uint(&word(1234)), Ok(U256::from(1234u64)));
        assert!(decode_uint(&[0; 33]).is_err());

        assert_eq!(decode_symbol(&abi_string(b"TST")).unwrap(), "TST");
        let mut bytes32 = [0u8; 32];
        bytes32[..3].copy_from_slice(b"MKR");
        assert_eq!(decode_symbol(&bytes32).unwrap(), "MKR");
        assert_eq!(decode_symbol(&[b'A'; 32]).unwrap(), "A".repeat(32));
        assert_eq!(decode_symbol(&abi_string(b"U\x00S\nD\xe2\x80\xaeC")).unwrap(), "USDC");
        assert_eq!(decode_symbol(&abi_string(&[b'X'; 100])).unwrap().len(), MAX_SYMBOL_CHARS);
        assert!(decode_symbol(&abi_string(b"")).is_err());
        assert!(decode_symbol(&abi_string(b" \n ")).is_err());
        assert!(decode_symbol(&[0u8; 32]).is_err());
        assert!(decode_symbol(&[]).is_err());
        let mut far_offset = abi_string(b"TST");
        far_offset[..32].copy_from_slice(&U256::MAX.to_be_bytes::<32>());
        assert!(decode_symbol(&far_offset).is_err());
    }

    #[test]
    fn rounds_are_checked() {
        let round = |answer: Vec<u8>, updated_at: Vec<u8>| [word(7), answer, word(1), updated_at, word(7)].concat();
        assert_eq!(
            decode_round(&round(word(300_000_000_000), word(1_700_000_000))),
            Ok((U256::from(300_000_000_000u64), 1_700_000_000))
        );
        let minus_one = U256::MAX.to_be_bytes::<32>().to_vec();
        assert_eq!(decode_round(&round(minus_one, word(1))), Err("negative answer".into()));
        assert_eq!(decode_round(&round(word(0), word(1))), Err("zero answer".into()));
        assert!(decode_round(&round(word(1), word(0))).is_err());
        assert!(decode_round(&round(word(1), U256::MAX.to_be_bytes::<32>().to_vec())).is_err());
        assert!(decode_round(&round(word(1), word(1))[..159]).is_err());
        assert!(decode_round(&[]).is_err());
    }

    #[test]
    fn reverts_are_told_from_node_errors() {
        let data = hex::encode(error_string(b"Target: minOut above amountIn"));
        let detail = format!("eth_call: execution reverted: Target: minOut above amountIn: 0x{data} (code 3)");
        assert_eq!(revert_reason(&detail).unwrap(), "Target: minOut above amountIn");
        // Data cut by the client's cap: the node's text is used.
        let cut = format!("eth_call: execution reverted: Target: minOut above amountIn: 0x{}… (code 3)", &data[..40]);
        assert_eq!(revert_reason(&cut).unwrap(), "Target: minOut above amountIn");
        let custom = "eth_call: execution reverted: custom error 0x63A2A81F: ????????*: 0x63a2a81f00… (code 3)";
        assert_eq!(revert_reason(custom).unwrap(), "custom error 0x63a2a81f");
        assert_eq!(revert_reason("eth_call: execution reverted: 0x (code 3)").unwrap(), NO_REASON);
        assert_eq!(revert_reason("eth_call: execution reverted (code -32000)").unwrap(), NO_REASON);
        assert_eq!(revert_reason("eth_call: execution reverted: too late (code -32000)").unwrap(), "too late");
        // A reason that looks like a code or data does not displace the real ones.
        let spoof = format!(
            "eth_call: execution reverted: x (code 1): 0x{} (code 3)",
            hex::encode(error_string(b"x (code 1)"))
        );
        assert_eq!(revert_reason(&spoof).unwrap(), "x (code 1)");
        for not_a_revert in [
            "eth_call: insufficient funds for gas * price + value (code -32003)",
            "eth_call: header not found (code -32000)",
            "eth_call: execution reverted",
            "",
        ] {
            assert_eq!(revert_reason(not_a_revert), None, "{not_a_revert}");
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let reason = decode_revert(&bytes);
            prop_assert!(reason.chars().count() <= MAX_REASON_CHARS.max(60));
            prop_assert!(!reason.chars().any(char::is_control));
            let _ = decode_decimals(&bytes);
            let _ = decode_uint(&bytes);
            let _ = decode_round(&bytes);
            if let Ok(symbol) = decode_symbol(&bytes) {
                prop_assert!(!symbol.is_empty() && symbol.chars().count() <= MAX_SYMBOL_CHARS);
                prop_assert!(!symbol.chars().any(|c| c.is_control() || is_invisible_format(c)));
            }
            let _ = decode_abi_string(&bytes);
        }

        #[test]
        fn selector_prefixed_garbage_never_panics(
            selector in prop_oneof![Just(ERROR_STRING), Just(PANIC), any::<[u8; 4]>()],
            rest in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut data = selector.to_vec();
            data.extend(rest);
            let _ = decode_revert(&data);
        }

        #[test]
        fn error_strings_round_trip_sanitized(text in "\\PC{0,300}") {
            let reason = decode_revert(&error_string(text.as_bytes()));
            let expected = sanitize(&text, MAX_REASON_CHARS);
            if expected.is_empty() {
                prop_assert_eq!(reason, "reverted with an empty reason");
            } else {
                prop_assert_eq!(reason, expected);
            }
        }

        #[test]
        fn node_text_never_panics(text in "\\PC*", code in any::<i64>()) {
            let _ = revert_reason(&text);
            let _ = revert_reason(&format!("eth_call: {text} (code {code})"));
            let _ = revert_reason(&format!("eth_call: execution reverted: {text} (code 3)"));
            let _ = reason_from_text(&text);
        }
    }
}
