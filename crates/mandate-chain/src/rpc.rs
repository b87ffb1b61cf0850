//! An async EVM JSON-RPC client: the few calls the daemon needs to fund, price,
//! broadcast and follow a transaction.
//!
//! Everything the node answers is untrusted: every quantity and hash is parsed
//! strictly ([`parse_quantity`], [`parse_data`]) and a malformed answer is
//! [`ChainError::BadResponse`], never a panic. The RPC URL may carry an API key,
//! so neither `Debug` nor any error message contains more than its scheme and host.
//!
//! Error classes matter for broadcasting: [`ChainError::Rejected`] means the node
//! answered the submission with a JSON-RPC error (it did not accept it), while
//! [`ChainError::Unavailable`] and [`ChainError::BadResponse`] mean the outcome is
//! unknown — the transaction may have been broadcast, so look it up by hash before
//! doing anything else with its nonce.

use std::fmt;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{keccak256, Address, B256, U256};
use reqwest::Url;
use serde_json::{json, Value};

use crate::{ChainError, Result};

/// Per-request timeout (connect, send and read the whole answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection timeout, within the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from a node; a larger one is `BadResponse`.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Longest piece of node-supplied text kept in an error message.
const MAX_NODE_TEXT: usize = 300;
/// Priority fee used when the node does not implement `eth_maxPriorityFeePerGas`.
const FALLBACK_PRIORITY_FEE: u128 = 1_000_000_000;

/// Fee parameters for an EIP-1559 transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// Base fee of the latest block.
    pub base_fee_per_gas: u128,
    /// Suggested tip (`eth_maxPriorityFeePerGas`, or 1 gwei if the node lacks it).
    pub max_priority_fee_per_gas: u128,
    /// `2 × base + priority`: room for the base fee to double before inclusion.
    pub max_fee_per_gas: u128,
}

/// The parts of a transaction receipt the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// `status == 1`: the transaction executed without reverting.
    pub success: bool,
    /// The block that included it.
    pub block_number: u64,
    /// Gas it used.
    pub gas_used: u64,
}

/// A JSON-RPC client for one EVM node. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    url: Url,
    /// `scheme://host[:port]`, the only form of the URL ever shown.
    shown: String,
    next_id: Arc<AtomicU64>,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient").field("endpoint", &self.shown).finish_non_exhaustive()
    }
}

/// What a node answered: a result, or a JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Result(Value),
    Error(NodeError),
}

/// A JSON-RPC error object from the node (its text already sanitized).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeError {
    code: i64,
    message: String,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl RpcClient {
    /// A client for `url`. Only `https://` is accepted, or `http://` when the host
    /// is `localhost`, in 127.0.0.0/8 or `[::1]`; anything else is
    /// [`ChainError::InsecureUrl`]. Redirects are not followed (a redirect could
    /// downgrade to plain HTTP); each request times out after 10 s.
    pub fn new(url: &str) -> Result<Self> {
        let url = check_outbound_url(url)?;
        let shown = shown_form(&url);
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ChainError::Unavailable(format!("cannot build the HTTP client: {}", e.without_url())))?;
        Ok(RpcClient { http, url, shown, next_id: Arc::new(AtomicU64::new(1)) })
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64> {
        let value = self.read("eth_chainId", json!([])).await?;
        to_u64(&value, "eth_chainId")
    }

    /// The hash of block 0: which chain this is, beyond its id (a restarted dev
    /// chain keeps the id but not the genesis).
    pub async fn genesis_hash(&self) -> Result<B256> {
        let block = self.read("eth_getBlockByNumber", json!(["0x0", false])).await?;
        let hash = block.get("hash").ok_or_else(|| bad("eth_getBlockByNumber: no genesis block"))?;
        parse_b256(as_str(hash, "genesis hash")?)
    }

    /// `eth_getBalance` at the latest block, in wei.
    pub async fn balance(&self, address: Address) -> Result<U256> {
        let value = self.read("eth_getBalance", json!([encode_address(address), "latest"])).await?;
        parse_quantity(as_str(&value, "eth_getBalance")?)
    }

    /// `eth_getTransactionCount` at `pending`: the next nonce the node expects,
    /// counting transactions still in its pool.
    pub async fn pending_nonce(&self, address: Address) -> Result<u64> {
        let value = self.read("eth_getTransactionCount", json!([encode_address(address), "pending"])).await?;
        to_u64(&value, "eth_getTransactionCount")
    }

    /// `eth_estimateGas` for a call from `from` to `to`. A JSON-RPC error (a revert,
    /// insufficient funds) is [`ChainError::EstimateFailed`] with the node's message.
    pub async fn estimate_gas(&self, from: Address, to: Address, value: U256, data: &[u8]) -> Result<u64> {
        let call = json!({
            "from": encode_address(from),
            "to": encode_address(to),
            "value": encode_quantity(value),
            "data": encode_data(data),
        });
        match self.request("eth_estimateGas", json!([call])).await? {
            Answer::Result(value) => to_u64(&value, "eth_estimateGas"),
            Answer::Error(e) => Err(ChainError::EstimateFailed(e.to_string())),
        }
    }

    /// Fees for a transaction now: the latest block's base fee, the node's
    /// suggested tip (1 gwei if it does not implement `eth_maxPriorityFeePerGas`),
    /// and `max_fee = 2 × base + tip`.
    pub async fn fees(&self) -> Result<Fees> {
        let block = self.read("eth_getBlockByNumber", json!(["latest", false])).await?;
        let base = match block.get("baseFeePerGas") {
            Some(base) => to_u128(base, "baseFeePerGas")?,
            None if block.is_null() => return Err(bad("eth_getBlockByNumber: no latest block")),
            None => return Err(bad("latest block has no baseFeePerGas (chain without EIP-1559)")),
        };
        let priority = match self.request("eth_maxPriorityFeePerGas", json!([])).await? {
            Answer::Result(value) => to_u128(&value, "eth_maxPriorityFeePerGas")?,
            Answer::Error(_) => FALLBACK_PRIORITY_FEE,
        };
        let max = base
            .checked_mul(2)
            .and_then(|double| double.checked_add(priority))
            .ok_or_else(|| bad("fees overflow u128"))?;
        Ok(Fees { base_fee_per_gas: base, max_priority_fee_per_gas: priority, max_fee_per_gas: max })
    }

    /// `eth_sendRawTransaction`; returns the transaction hash (checked to be the
    /// keccak of `raw`). A JSON-RPC error is [`ChainError::Rejected`]: the node did
    /// not accept this submission (a message such as "already known" or "nonce too
    /// low" can still mean an identical transaction is pending or mined — look the
    /// hash up). A transport error or timeout is [`ChainError::Unavailable`] and a
    /// malformed answer [`ChainError::BadResponse`]: for both the outcome is unknown.
    pub async fn send_raw_transaction(&self, raw: &[u8]) -> Result<B256> {
        match self.request("eth_sendRawTransaction", json!([encode_data(raw)])).await? {
            Answer::Result(value) => {
                let hash = parse_b256(as_str(&value, "eth_sendRawTransaction")?)?;
                let expected = keccak256(raw);
                if hash != expected {
                    return Err(bad(format!("eth_sendRawTransaction returned hash {hash}, expected {expected}")));
                }
                Ok(hash)
            }
            Answer::Error(e) => Err(ChainError::Rejected(e.to_string())),
        }
    }

    /// `eth_getTransactionReceipt`: `None` while the transaction is not mined (or
    /// unknown to the node).
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>> {
        let value = self.read("eth_getTransactionReceipt", json!([encode_b256(hash)])).await?;
        if value.is_null() {
            return Ok(None);
        }
        if let Some(reported) = value.get("transactionHash") {
            if parse_b256(as_str(reported, "transactionHash")?)? != hash {
                return Err(bad("receipt is for another transaction"));
            }
        }
        let field = |name: &'static str| value.get(name).ok_or_else(|| bad(format!("receipt without {name}")));
        let success = match to_u64(field("status")?, "status")? {
            0 => false,
            1 => true,
            other => return Err(bad(format!("receipt status {other}"))),
        };
        Ok(Some(Receipt {
            success,
            block_number: to_u64(field("blockNumber")?, "blockNumber")?,
            gas_used: to_u64(field("gasUsed")?, "gasUsed")?,
        }))
    }

    /// Any method, for what the typed calls do not cover. The result is returned
    /// as JSON, unparsed; a JSON-RPC error answer is [`ChainError::Rejected`] with
    /// the node's message (the request was refused).
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value> {
        match self.request(method, params).await? {
            Answer::Result(value) => Ok(value),
            Answer::Error(e) => Err(ChainError::Rejected(format!("{}: {e}", untrusted_text(method)))),
        }
    }

    /// A read: a JSON-RPC error means the node could not answer (rate limit,
    /// pruned state, internal error), so it is `Unavailable`.
    async fn read(&self, method: &str, params: Value) -> Result<Value> {
        match self.request(method, params).await? {
            Answer::Result(value) => Ok(value),
            Answer::Error(e) => Err(ChainError::Unavailable(format!("{method}: {e}"))),
        }
    }

    /// One JSON-RPC round trip.
    async fn request(&self, method: &str, params: Value) -> Result<Answer> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let body = serde_json::to_vec(&body).map_err(|e| bad(format!("cannot encode the request: {e}")))?;
        let mut response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let status = response.status();
        if !status.is_success() {
            // Not a JSON-RPC answer: the outcome of a submission is unknown.
            return Err(ChainError::Unavailable(format!("{method}: {} answered HTTP {status}", self.shown)));
        }
        if response.content_length().is_some_and(|len| len > MAX_RESPONSE_BYTES as u64) {
            return Err(bad(format!("{method}: answer larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(method, e))? {
            if bytes.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(bad(format!("{method}: answer larger than {MAX_RESPONSE_BYTES} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        parse_response(&bytes, id).map_err(|e| match e {
            ChainError::BadResponse(detail) => ChainError::BadResponse(format!("{method}: {detail}")),
            other => other,
        })
    }

    /// A transport failure, described without the URL (which may carry an API key).
    fn transport_error(&self, method: &str, error: reqwest::Error) -> ChainError {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        let error = error.without_url();
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        ChainError::Unavailable(format!("{method}: {kind} ({}): {}", self.shown, untrusted_text(&self.scrub(&detail))))
    }

    /// Removes the URL's secret-bearing parts from a message, in case a lower
    /// layer put them there.
    fn scrub(&self, message: &str) -> String {
        let mut out = message.replace(self.url.as_str(), &self.shown);
        let parts =
            [self.url.path(), self.url.query().unwrap_or(""), self.url.password().unwrap_or(""), self.url.username()];
        for part in parts {
            if part.len() > 1 {
                out = out.replace(part, "<redacted>");
            }
        }
        out
    }
}

/// Checks an outbound URL (RPC, webhooks): `https://`, or `http://` only when the host
/// is `localhost`, in 127.0.0.0/8 or `[::1]`. Errors never echo a path, query or
/// credentials.
pub fn check_outbound_url(text: &str) -> Result<Url> {
    let url = Url::parse(text).map_err(|e| ChainError::InsecureUrl(format!("not a valid URL: {e}")))?;
    let shown = shown_form(&url);
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => {
            Err(ChainError::InsecureUrl(format!("{shown}: plain http:// is only allowed for localhost; use https://")))
        }
        other => Err(ChainError::InsecureUrl(format!("scheme {other}: use https://"))),
    }
}

/// `scheme://host[:port]`: the URL without user info, path or query.
fn shown_form(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return ip.is_loopback();
    }
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .is_some_and(|ip| ip == Ipv6Addr::LOCALHOST)
}

/// Parses a JSON-RPC 2.0 response to request `id`: exactly one of `result`
/// (which may be `null`) and `error`.
fn parse_response(bytes: &[u8], id: u64) -> Result<Answer> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(bad("not a JSON-RPC response object"));
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad("not a JSON-RPC 2.0 response"));
    }
    if object.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(bad("response id does not match the request"));
    }
    match (object.get("result"), object.get("error")) {
        (Some(result), None) => Ok(Answer::Result(result.clone())),
        (None, Some(error)) => {
            let code = error.get("code").and_then(Value::as_i64).ok_or_else(|| bad("error without an integer code"))?;
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            // Revert reasons and similar detail travel in `data`; keep it short.
            let message = match error.get("data") {
                Some(Value::String(data)) if !data.is_empty() => format!("{message}: {data}"),
                _ => message.to_owned(),
            };
            Ok(Answer::Error(NodeError { code, message: untrusted_text(&message) }))
        }
        _ => Err(bad("response must have exactly one of result and error")),
    }
}

fn bad(detail: impl Into<String>) -> ChainError {
    ChainError::BadResponse(untrusted_text(&detail.into()))
}

/// Node-supplied text made safe to log: control characters replaced, length capped.
fn untrusted_text(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_NODE_TEXT).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().nth(MAX_NODE_TEXT).is_some() {
        out.push('…');
    }
    out
}

fn as_str<'a>(value: &'a Value, what: &str) -> Result<&'a str> {
    value.as_str().ok_or_else(|| bad(format!("{what}: expected a hex string")))
}

fn to_u64(value: &Value, what: &str) -> Result<u64> {
    let quantity = parse_quantity(as_str(value, what)?)?;
    u64::try_from(quantity).map_err(|_| bad(format!("{what}: {quantity} does not fit in 64 bits")))
}

fn to_u128(value: &Value, what: &str) -> Result<u128> {
    let quantity = parse_quantity(as_str(value, what)?)?;
    u128::try_from(quantity).map_err(|_| bad(format!("{what}: {quantity} does not fit in 128 bits")))
}

/// Parses a JSON-RPC quantity: `0x` followed by 1 to 64 significant hex digits
/// (leading zeros are tolerated, some nodes send them). No sign, no spaces, no
/// empty `0x`. Never panics.
pub fn parse_quantity(text: &str) -> Result<U256> {
    let digits = text.strip_prefix("0x").ok_or_else(|| bad("quantity without 0x prefix"))?;
    if digits.is_empty() {
        return Err(bad("empty quantity"));
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("quantity is not hex"));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 64 {
        return Err(bad("quantity larger than 256 bits"));
    }
    // Left-pad to 64 digits and decode as 32 big-endian bytes.
    let padded = format!("{significant:0>64}");
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(padded, &mut bytes).map_err(|e| bad(format!("quantity: {e}")))?;
    Ok(U256::from_be_bytes(bytes))
}

/// Parses JSON-RPC data: `0x` followed by an even number of hex digits (`0x`
/// alone is empty data). Never panics.
pub fn parse_data(text: &str) -> Result<Vec<u8>> {
    let digits = text.strip_prefix("0x").ok_or_else(|| bad("data without 0x prefix"))?;
    hex::decode(digits).map_err(|e| bad(format!("data: {e}")))
}

/// Parses a 32-byte hash given as JSON-RPC data.
fn parse_b256(text: &str) -> Result<B256> {
    let bytes = parse_data(text)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| bad(format!("hash of {} bytes", b.len())))?;
    Ok(B256::from(bytes))
}

/// Encodes a quantity the way nodes expect it: `0x` and no leading zeros.
fn encode_quantity(value: U256) -> String {
    format!("0x{value:x}")
}

fn encode_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn encode_address(address: Address) -> String {
    encode_data(address.as_slice())
}

fn encode_b256(hash: B256) -> String {
    encode_data(hash.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantities_are_parsed_strictly() {
        assert_eq!(parse_quantity("0x0").unwrap(), U256::ZERO);
        assert_eq!(parse_quantity("0x7a69").unwrap(), U256::from(31337u64));
        assert_eq!(parse_quantity("0x7A69").unwrap(), U256::from(31337u64));
        assert_eq!(parse_quantity("0x0001").unwrap(), U256::from(1u64));
        assert_eq!(parse_quantity(&format!("0x{}", "f".repeat(64))).unwrap(), U256::MAX);
        for bad in ["", "0x", "7a69", "0X1", "0x+1", "0x-1", " 0x1", "0x1 ", "0xg", "0x1_0", "+0x1"] {
            assert!(matches!(parse_quantity(bad), Err(ChainError::BadResponse(_))), "{bad:?}");
        }
        assert!(parse_quantity(&format!("0x1{}", "0".repeat(64))).is_err());
        assert_eq!(encode_quantity(U256::ZERO), "0x0");
        assert_eq!(encode_quantity(U256::from(255u64)), "0xff");
    }

    #[test]
    fn data_and_hashes_are_parsed_strictly() {
        assert_eq!(parse_data("0x").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_data("0x00ff").unwrap(), vec![0, 0xff]);
        for bad in ["", "00", "0x0", "0xzz", "0x 00"] {
            assert!(parse_data(bad).is_err(), "{bad:?}");
        }
        let hash = B256::repeat_byte(0xab);
        assert_eq!(parse_b256(&encode_b256(hash)).unwrap(), hash);
        assert!(parse_b256("0x00").is_err());
    }

    #[test]
    fn responses_are_checked() {
        let ok = br#"{"jsonrpc":"2.0","id":7,"result":"0x1"}"#;
        assert_eq!(parse_response(ok, 7).unwrap(), Answer::Result(json!("0x1")));
        let null = br#"{"jsonrpc":"2.0","id":7,"result":null}"#;
        assert_eq!(parse_response(null, 7).unwrap(), Answer::Result(Value::Null));
        let error = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"nonce too low"}}"#;
        assert_eq!(
            parse_response(error, 7).unwrap(),
            Answer::Error(NodeError { code: -32000, message: "nonce too low".into() })
        );
        for bad in [
            &br#"{"jsonrpc":"2.0","id":8,"result":"0x1"}"#[..],
            br#"{"jsonrpc":"1.0","id":7,"result":"0x1"}"#,
            br#"{"jsonrpc":"2.0","id":7}"#,
            br#"{"jsonrpc":"2.0","id":7,"result":"0x1","error":{"code":1,"message":""}}"#,
            br#"{"jsonrpc":"2.0","id":7,"error":{"message":"no code"}}"#,
            br#"[{"jsonrpc":"2.0","id":7,"result":"0x1"}]"#,
            b"<html>502</html>",
            b"",
        ] {
            assert!(
                matches!(parse_response(bad, 7), Err(ChainError::BadResponse(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn node_text_is_sanitized_and_capped() {
        assert_eq!(untrusted_text("a\nb\u{1b}[31m"), "a?b?[31m");
        let long = "x".repeat(10_000);
        assert!(untrusted_text(&long).chars().count() <= MAX_NODE_TEXT + 1);
    }

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://example.com",
            "https://rpc.example.com/v2/key",
            "http://127.0.0.1:8545",
            "http://127.5.6.7:8545",
            "http://localhost:8545",
            "http://[::1]:8545",
        ] {
            assert!(RpcClient::new(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://example.com",
            "http://10.0.0.1:8545",
            "http://[::2]:8545",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "ws://127.0.0.1:8545",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(matches!(RpcClient::new(insecure), Err(ChainError::InsecureUrl(_))), "{insecure}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_path_or_credentials() {
        let client = RpcClient::new("https://user:pw@rpc.example.com:8443/v2/SECRETKEY?token=SECRET2").unwrap();
        let shown = format!("{client:?}");
        assert!(shown.contains("https://rpc.example.com:8443"), "{shown}");
        for secret in ["SECRETKEY", "SECRET2", "pw", "user"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let scrubbed =
            client.scrub("error for https://user:pw@rpc.example.com:8443/v2/SECRETKEY?token=SECRET2 and /v2/SECRETKEY");
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        let Err(error) = RpcClient::new("http://rpc.example.com/v2/SECRETKEY") else { panic!("accepted") };
        assert!(!error.to_string().contains("SECRETKEY"), "{error}");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*", raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_quantity(&text);
            let _ = parse_data(&text);
            let _ = parse_b256(&text);
            let _ = parse_response(text.as_bytes(), 1);
            let _ = parse_response(&raw, 1);
            let prefixed = format!("0x{text}");
            let _ = parse_quantity(&prefixed);
            let _ = parse_data(&prefixed);
        }

        #[test]
        fn hexish_strings_never_panic(text in "0x[0-9a-fA-F+_ -]{0,80}") {
            if let Ok(value) = parse_quantity(&text) {
                prop_assert_eq!(parse_quantity(&encode_quantity(value)).unwrap(), value);
            }
            let _ = parse_data(&text);
        }

        #[test]
        fn quantities_round_trip(limbs in any::<[u64; 4]>(), small in any::<u64>(), mid in any::<u128>()) {
            let value = U256::from_limbs(limbs);
            prop_assert_eq!(parse_quantity(&encode_quantity(value)).unwrap(), value);
            prop_assert_eq!(to_u64(&json!(encode_quantity(U256::from(small))), "q").unwrap(), small);
            prop_assert_eq!(to_u128(&json!(encode_quantity(U256::from(mid))), "q").unwrap(), mid);
        }

        #[test]
        fn data_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(parse_data(&encode_data(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn u64_overflow_is_an_error_not_a_panic(value in any::<u128>()) {
            let result = to_u64(&json!(encode_quantity(U256::from(value))), "q");
            prop_assert_eq!(result.is_ok(), value <= u128::from(u64::MAX));
        }
    }
}
