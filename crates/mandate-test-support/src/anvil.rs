//! A real anvil (Foundry's local EVM node) for tests, from the npm package
//! `@foundry-rs/anvil-linux-amd64` pinned in the workspace's `package.json`
//! (`npm ci` installs it; `scripts/test.sh` does so). Killed on drop.
//!
//! The helpers here are blocking and use a minimal HTTP/1.1 client on
//! `std::net::TcpStream`, so they also work inside a `#[tokio::test]`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use serde_json::{json, Value};

/// Where `npm ci` puts the binary, relative to the workspace root.
const ANVIL_IN_NODE_MODULES: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// The anvil binary: `$MANDATE_ANVIL` if set, else the one `npm ci` installed.
pub fn anvil_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MANDATE_ANVIL") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(ANVIL_IN_NODE_MODULES)
}

/// A running anvil on 127.0.0.1 (automine: every transaction is mined at once).
pub struct Anvil {
    child: Child,
    port: u16,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::fmt::Debug for Anvil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anvil").field("port", &self.port).finish()
    }
}

impl Anvil {
    /// Starts anvil on a free loopback port and waits (up to 20 s) until
    /// `eth_chainId` answers. Panics if the binary is missing (run `npm ci`).
    pub fn start() -> Anvil {
        Anvil::start_with_chain_id(None)
    }

    /// Like [`Anvil::start`], serving chain `chain_id` when given (anvil's default is 31337).
    pub fn start_with_chain_id(chain_id: Option<u64>) -> Anvil {
        let binary = anvil_binary();
        assert!(
            binary.is_file(),
            "anvil not found at {}: run `npm ci` in the workspace root (scripts/test.sh does it)",
            binary.display()
        );
        // The free port can be taken between probing and binding: retry a few times.
        for _ in 0..3 {
            let port = crate::free_port();
            let child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(chain_id.map(|id| ["--chain-id".to_string(), id.to_string()]).into_iter().flatten())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut anvil = Anvil { child, port };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if anvil.child.try_wait().ok().flatten().is_some() {
                    break; // exited (port taken?): try another port
                }
                if matches!(post(port, "eth_chainId", json!([])), Ok(Ok(_))) {
                    return anvil;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(anvil);
        }
        panic!("anvil ({}) did not answer eth_chainId within 20 s", binary.display());
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its chain id (31337 unless configured otherwise).
    pub fn chain_id(&self) -> u64 {
        quantity(&self.rpc("eth_chainId", json!([]))).try_into().unwrap()
    }

    /// A JSON-RPC call; panics on a transport error or a JSON-RPC error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        match post(self.port, method, params.clone()) {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => panic!("anvil {method} {params}: {error}"),
            Err(e) => panic!("anvil {method}: {e}"),
        }
    }

    /// The i-th prefunded dev account (`eth_accounts`).
    pub fn dev_account(&self, i: usize) -> Address {
        let accounts = self.rpc("eth_accounts", json!([]));
        Address::from_str(accounts[i].as_str().unwrap()).unwrap()
    }

    /// Sends `wei` from dev account 0 to `to` and waits for a successful receipt.
    pub fn fund(&self, to: Address, wei: U256) {
        let from = self.dev_account(0);
        let hash = self.rpc("eth_sendTransaction", json!([{ "from": from, "to": to, "value": format!("0x{wei:x}") }]));
        let hash = B256::from_str(hash.as_str().unwrap()).unwrap();
        let receipt = self.wait_for_receipt(hash);
        assert_eq!(receipt["status"], "0x1", "funding {to} failed: {receipt}");
    }

    /// Polls `eth_getTransactionReceipt` (up to 10 s) and returns the receipt.
    pub fn wait_for_receipt(&self, hash: B256) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(Instant::now() < deadline, "no receipt for {hash} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Balance at the latest block.
    pub fn balance(&self, address: Address) -> U256 {
        quantity(&self.rpc("eth_getBalance", json!([address, "latest"])))
    }

    /// Nonce at the latest block (mined transactions only).
    pub fn nonce(&self, address: Address) -> u64 {
        quantity(&self.rpc("eth_getTransactionCount", json!([address, "latest"]))).try_into().unwrap()
    }

    /// Mines one block.
    pub fn mine(&self) {
        self.rpc("evm_mine", json!([]));
    }

    /// Deploys `bytecode_hex` (creation code, with or without `0x`) followed by
    /// `constructor_args` from dev account 0, waits for the receipt and returns the
    /// new contract's address. Panics if the deployment fails.
    pub fn deploy(&self, bytecode_hex: &str, constructor_args: &[u8]) -> Address {
        let code = bytecode_hex.trim();
        let code = code.strip_prefix("0x").unwrap_or(code);
        assert!(
            !code.is_empty() && code.len().is_multiple_of(2) && code.bytes().all(|b| b.is_ascii_hexdigit()),
            "deploy: the bytecode is not hex"
        );
        let data = format!("0x{code}{}", hex(constructor_args));
        let from = self.dev_account(0);
        let hash = self.rpc("eth_sendTransaction", json!([{ "from": from, "data": data }]));
        let hash = B256::from_str(hash.as_str().unwrap()).unwrap();
        let receipt = self.wait_for_receipt(hash);
        assert_eq!(receipt["status"], "0x1", "deployment failed (constructor reverted?): {receipt}");
        let address = receipt["contractAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("deployment receipt without contractAddress: {receipt}"));
        Address::from_str(address).unwrap()
    }

    /// `eth_call` of `data` to `to` at the latest block; returns what it returned.
    /// Panics if the call reverts (use [`Anvil::try_call`] to see the revert).
    pub fn call(&self, to: Address, data: &[u8]) -> Vec<u8> {
        self.try_call(to, data).unwrap_or_else(|error| panic!("eth_call to {to} failed: {error}"))
    }

    /// `eth_call` of `data` to `to` at the latest block: the returned bytes, or the
    /// JSON-RPC error object (a revert is code 3 with the revert data in `data`).
    pub fn try_call(&self, to: Address, data: &[u8]) -> Result<Vec<u8>, Value> {
        let call = json!({ "to": to, "data": format!("0x{}", hex(data)) });
        match post(self.port, "eth_call", json!([call, "latest"])) {
            Ok(Ok(result)) => Ok(unhex(&result)),
            Ok(Err(error)) => Err(error),
            Err(e) => panic!("anvil eth_call: {e}"),
        }
    }

    /// Sends `data` to `to` from dev account 0, waits for the receipt and asserts
    /// that the transaction succeeded; returns the receipt.
    pub fn transact_as_dev(&self, to: Address, data: &[u8]) -> Value {
        self.send_from(self.dev_account(0), to, U256::ZERO, data)
    }

    /// Sends `value` wei and `data` from `from` (a dev account, or one unlocked
    /// with `anvil_impersonateAccount`) to `to`, waits for the receipt and asserts
    /// that the transaction succeeded; returns the receipt.
    pub fn send_from(&self, from: Address, to: Address, value: U256, data: &[u8]) -> Value {
        let tx = json!({ "from": from, "to": to, "value": format!("0x{value:x}"), "data": format!("0x{}", hex(data)) });
        let hash = self.rpc("eth_sendTransaction", json!([tx]));
        let hash = B256::from_str(hash.as_str().unwrap()).unwrap();
        let receipt = self.wait_for_receipt(hash);
        assert_eq!(receipt["status"], "0x1", "transaction from {from} to {to} reverted: {receipt}");
        receipt
    }

    /// `token.balanceOf(holder)`.
    pub fn token_balance(&self, token: Address, holder: Address) -> U256 {
        crate::contracts::decode_u256(&self.call(token, &crate::contracts::balance_of(holder)))
    }

    /// The next block (mined by the next transaction or [`Anvil::mine`]) gets
    /// this timestamp (seconds; must be later than the latest block's).
    pub fn set_next_block_timestamp(&self, timestamp: u64) {
        self.rpc("evm_setNextBlockTimestamp", json!([timestamp]));
    }

    /// The latest block's timestamp, in seconds.
    pub fn latest_timestamp(&self) -> u64 {
        let block = self.rpc("eth_getBlockByNumber", json!(["latest", false]));
        quantity(&block["timestamp"]).try_into().unwrap()
    }

    /// Every mined transaction sent by `from`, as (nonce, hash), in block order.
    /// Proves there is no nonce gap or reuse.
    pub fn transactions_from(&self, from: Address) -> Vec<(u64, B256)> {
        let latest: u64 = quantity(&self.rpc("eth_blockNumber", json!([]))).try_into().unwrap();
        let mut found = Vec::new();
        for number in 0..=latest {
            let block = self.rpc("eth_getBlockByNumber", json!([format!("{number:#x}"), true]));
            for tx in block["transactions"].as_array().unwrap() {
                if Address::from_str(tx["from"].as_str().unwrap()).unwrap() == from {
                    let nonce = quantity(&tx["nonce"]).try_into().unwrap();
                    found.push((nonce, B256::from_str(tx["hash"].as_str().unwrap()).unwrap()));
                }
            }
        }
        found
    }
}

/// A hex quantity from anvil (trusted here: it is our own test node).
fn quantity(value: &Value) -> U256 {
    let text = value.as_str().unwrap_or_else(|| panic!("not a quantity: {value}"));
    U256::from_str_radix(text.strip_prefix("0x").unwrap(), 16).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON-RPC data (`0x` and hex) from anvil.
fn unhex(value: &Value) -> Vec<u8> {
    let text = value.as_str().and_then(|t| t.strip_prefix("0x")).unwrap_or_else(|| panic!("not data: {value}"));
    assert!(text.len().is_multiple_of(2), "odd-length data: {value}");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// One JSON-RPC call over a fresh HTTP/1.1 connection. The outer error is the
/// transport, the inner one a JSON-RPC error object.
fn post(port: u16, method: &str, params: Value) -> std::io::Result<Result<Value, Value>> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| invalid("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| invalid(&format!("{e}: {head}")))?;
    Ok(match value.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(value["result"].clone()),
    })
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}
