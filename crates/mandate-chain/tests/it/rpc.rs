//! `RpcClient` against a real anvil.

use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use k256::ecdsa::SigningKey;
use mandate_chain::rpc::{Receipt, RpcClient};
use mandate_chain::{ChainError, UnsignedTx};
use mandate_test_support::Anvil;
use serde_json::json;

const ETHER: u64 = 1_000_000_000_000_000_000;

fn client(anvil: &Anvil) -> RpcClient {
    RpcClient::new(&anvil.url()).unwrap()
}

/// A throwaway key (fixed bytes: each test has its own fresh anvil).
fn throwaway_key(seed: u8) -> (SigningKey, Address) {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let address = Address::from_public_key(key.verifying_key());
    (key, address)
}

fn sign(tx: UnsignedTx, key: &SigningKey, from: Address) -> Vec<u8> {
    let (signature, recovery_id) = key.sign_prehash_recoverable(&tx.signing_hash()).unwrap();
    let bytes = signature.to_bytes();
    let (r, s) = bytes.split_at(32);
    tx.into_raw_signed(r.try_into().unwrap(), s.try_into().unwrap(), recovery_id.to_byte(), from).unwrap()
}

async fn wait_for_receipt(rpc: &RpcClient, hash: B256) -> Receipt {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(receipt) = rpc.receipt(hash).await.unwrap() {
            return receipt;
        }
        assert!(Instant::now() < deadline, "no receipt for {hash}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reads_chain_id_balance_nonce_and_fees() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    assert_eq!(rpc.chain_id().await.unwrap(), 31337);
    assert_eq!(anvil.chain_id(), 31337);

    let dev = anvil.dev_account(0);
    let balance = rpc.balance(dev).await.unwrap();
    assert_eq!(balance, anvil.balance(dev));
    assert!(balance >= U256::from(ETHER), "{balance}");
    assert_eq!(rpc.pending_nonce(dev).await.unwrap(), 0);
    assert_eq!(rpc.balance(Address::repeat_byte(0x42)).await.unwrap(), U256::ZERO);

    let fees = rpc.fees().await.unwrap();
    assert!(fees.base_fee_per_gas > 0, "{fees:?}");
    assert!(fees.max_priority_fee_per_gas > 0, "{fees:?}");
    assert!(fees.max_fee_per_gas >= fees.base_fee_per_gas, "{fees:?}");
    assert_eq!(fees.max_fee_per_gas, 2 * fees.base_fee_per_gas + fees.max_priority_fee_per_gas);

    assert_eq!(rpc.call_raw("eth_chainId", json!([])).await.unwrap(), json!("0x7a69"));
    let unknown = rpc.call_raw("no_suchMethod", json!([])).await.unwrap_err();
    assert!(matches!(unknown, ChainError::Rejected(_)), "{unknown:?}");
}

#[tokio::test]
async fn estimates_gas_and_reports_failures() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let dev = anvil.dev_account(0);
    let to = Address::repeat_byte(0x11);
    assert_eq!(rpc.estimate_gas(dev, to, U256::from(1000u64), &[]).await.unwrap(), 21000);

    // A contract that always reverts: PUSH1 0, PUSH1 0, REVERT.
    let reverter = Address::repeat_byte(0x66);
    anvil.rpc("anvil_setCode", json!([reverter, "0x60006000fd"]));
    let error = rpc.estimate_gas(dev, reverter, U256::ZERO, &[0xde, 0xad]).await.unwrap_err();
    assert!(matches!(error, ChainError::EstimateFailed(_)), "{error:?}");
    assert_eq!(error.code(), mandate_core::ErrorCode::GasEstimationFailed);
}

#[tokio::test]
async fn signed_transaction_round_trip_and_resend_is_rejected() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let (key, from) = throwaway_key(0x07);
    anvil.fund(from, U256::from(ETHER));
    assert_eq!(rpc.balance(from).await.unwrap(), U256::from(ETHER));

    let to = Address::repeat_byte(0x22);
    let value = U256::from(ETHER / 10);
    let chain_id = rpc.chain_id().await.unwrap();
    let nonce = rpc.pending_nonce(from).await.unwrap();
    let gas = rpc.estimate_gas(from, to, value, &[]).await.unwrap();
    let fees = rpc.fees().await.unwrap();
    let tx =
        UnsignedTx::new(chain_id, nonce, to, value, gas, fees.max_fee_per_gas, fees.max_priority_fee_per_gas, vec![]);
    let raw = sign(tx, &key, from);

    let hash = rpc.send_raw_transaction(&raw).await.unwrap();
    assert_eq!(hash, alloy_primitives::keccak256(&raw));
    let receipt = wait_for_receipt(&rpc, hash).await;
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(receipt.gas_used, 21000);
    assert!(receipt.block_number >= 1);
    assert_eq!(rpc.balance(to).await.unwrap(), value);
    assert_eq!(rpc.pending_nonce(from).await.unwrap(), 1);
    assert_eq!(anvil.nonce(from), 1);
    assert_eq!(anvil.transactions_from(from), vec![(0, hash)]);

    let again = rpc.send_raw_transaction(&raw).await.unwrap_err();
    assert!(matches!(again, ChainError::Rejected(_)), "{again:?}");
    assert_eq!(again.code(), mandate_core::ErrorCode::ChainRejected);

    assert_eq!(rpc.receipt(B256::repeat_byte(0x33)).await.unwrap(), None);
    anvil.mine();
    assert!(rpc.receipt(hash).await.unwrap().is_some());
}

#[test]
fn only_https_or_loopback_http_urls() {
    let insecure = RpcClient::new("http://example.com").unwrap_err();
    assert!(matches!(insecure, ChainError::InsecureUrl(_)), "{insecure:?}");
    assert_eq!(insecure.code(), mandate_core::ErrorCode::InsecureUrl);
    assert!(RpcClient::new("https://example.com").is_ok());
    assert!(RpcClient::new("http://127.0.0.1:8545").is_ok());
}

#[tokio::test]
async fn unreachable_node_is_unavailable_and_the_error_hides_the_url() {
    let port = mandate_test_support::free_port();
    let rpc = RpcClient::new(&format!("http://127.0.0.1:{port}/v2/SECRET-API-KEY")).unwrap();
    assert!(!format!("{rpc:?}").contains("SECRET"));
    let error = rpc.chain_id().await.unwrap_err();
    assert!(matches!(error, ChainError::Unavailable(_)), "{error:?}");
    assert_eq!(error.code(), mandate_core::ErrorCode::ChainUnavailable);
    assert!(!error.to_string().contains("SECRET"), "{error}");
    let broadcast = rpc.send_raw_transaction(&[0x02, 0xc0]).await.unwrap_err();
    assert!(matches!(broadcast, ChainError::Unavailable(_)), "{broadcast:?}");
}
