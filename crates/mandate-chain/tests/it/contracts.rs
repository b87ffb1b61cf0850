//! Typed contract reads and `simulate` against the Solidity fixtures on a real anvil.

use alloy_primitives::{Address, I256, U256};
use mandate_chain::contracts::{RoundData, Simulation};
use mandate_chain::rpc::RpcClient;
use mandate_chain::ChainError;
use mandate_test_support::{contracts, Anvil};
use serde_json::json;

fn client(anvil: &Anvil) -> RpcClient {
    RpcClient::new(&anvil.url()).unwrap()
}

#[tokio::test]
async fn reads_an_erc20s_decimals_symbol_and_balances() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let supply = U256::from(1_000_000_000_000u64);
    let token = contracts::deploy_test_token(&anvil, "TST", 6, supply);
    let dev = anvil.dev_account(0);

    assert_eq!(rpc.erc20_decimals(token).await.unwrap(), 6);
    assert_eq!(rpc.erc20_symbol(token).await.unwrap(), "TST");
    assert_eq!(rpc.erc20_balance(token, dev).await.unwrap(), supply);

    let holder = Address::repeat_byte(0x42);
    assert_eq!(rpc.erc20_balance(token, holder).await.unwrap(), U256::ZERO);
    let amount = U256::from(2_500_000u64);
    anvil.transact_as_dev(token, &contracts::transfer(holder, amount));
    assert_eq!(rpc.erc20_balance(token, holder).await.unwrap(), amount);
    assert_eq!(rpc.erc20_balance(token, dev).await.unwrap(), supply - amount);
    assert_eq!(anvil.token_balance(token, holder), amount);
}

#[tokio::test]
async fn an_account_or_contract_that_is_not_a_token_is_a_clear_error() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let target = contracts::deploy_target(&anvil);
    let eoa = anvil.dev_account(1);

    for address in [eoa, target, Address::repeat_byte(0x99)] {
        let error = rpc.erc20_decimals(address).await.unwrap_err();
        assert!(matches!(error, ChainError::NotAToken(_)), "{address}: {error:?}");
        assert_eq!(error.code(), mandate_core::ErrorCode::UnknownToken);
        assert!(error.to_string().contains(&address.to_string()), "{error}");
        assert!(matches!(rpc.erc20_symbol(address).await, Err(ChainError::NotAToken(_))));
        assert!(matches!(rpc.erc20_balance(address, eoa).await, Err(ChainError::NotAToken(_))));
    }
    let reverted = rpc.erc20_decimals(target).await.unwrap_err().to_string();
    assert!(reverted.contains("reverted"), "{reverted}");
    let empty = rpc.erc20_decimals(eoa).await.unwrap_err().to_string();
    assert!(empty.contains("returned nothing"), "{empty}");
}

#[tokio::test]
async fn reads_a_price_feed_and_refuses_bad_rounds() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let updated_at = anvil.latest_timestamp();
    let price = I256::try_from(300_012_345_678i64).unwrap();
    let feed = contracts::deploy_mock_aggregator(&anvil, 8, price, updated_at);

    let round = rpc.latest_round(feed).await.unwrap();
    assert_eq!(round, RoundData { answer: U256::from(300_012_345_678u64), decimals: 8, updated_at });

    anvil.transact_as_dev(feed, &contracts::aggregator_set(I256::try_from(-1i64).unwrap(), updated_at));
    let negative = rpc.latest_round(feed).await.unwrap_err();
    assert!(matches!(negative, ChainError::BadPriceFeed(_)), "{negative:?}");
    assert!(negative.to_string().contains("negative answer"), "{negative}");
    assert_eq!(negative.code(), mandate_core::ErrorCode::PriceUnavailable);

    anvil.transact_as_dev(feed, &contracts::aggregator_set(I256::ZERO, updated_at));
    assert!(matches!(rpc.latest_round(feed).await, Err(ChainError::BadPriceFeed(_))));

    anvil.transact_as_dev(feed, &contracts::aggregator_set(price, 0));
    assert!(matches!(rpc.latest_round(feed).await, Err(ChainError::BadPriceFeed(_))));

    anvil.transact_as_dev(feed, &contracts::aggregator_set(price, updated_at + 60));
    assert_eq!(rpc.latest_round(feed).await.unwrap().updated_at, updated_at + 60);

    let not_a_feed = contracts::deploy_target(&anvil);
    assert!(matches!(rpc.latest_round(not_a_feed).await, Err(ChainError::BadPriceFeed(_))));
    assert!(matches!(rpc.latest_round(Address::repeat_byte(0x77)).await, Err(ChainError::BadPriceFeed(_))));
}

#[tokio::test]
async fn simulate_tells_success_from_each_kind_of_revert() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let target = contracts::deploy_target(&anvil);
    let token = Address::repeat_byte(0x10);
    let from = anvil.dev_account(1);

    let swap = contracts::swap(token, U256::from(100u64), U256::from(90u64));
    let ok = rpc.simulate(from, target, U256::ZERO, &swap).await.unwrap();
    let mut returned = [0u8; 32];
    returned[31] = 100;
    assert_eq!(ok, Simulation::Success(returned.to_vec()));

    let too_much = contracts::swap(token, U256::from(100u64), U256::from(101u64));
    assert_eq!(
        rpc.simulate(from, target, U256::ZERO, &too_much).await.unwrap(),
        Simulation::Reverted { reason: contracts::SWAP_REVERT_REASON.to_owned() }
    );
    // `simulate` reads the revert out of `call_raw`'s error text: check that the
    // whole revert data gets there, so the reason is decoded from it exactly.
    let raw = anvil.try_call(target, &too_much).unwrap_err();
    assert_eq!(raw["code"], 3, "{raw}");
    let data = raw["data"].as_str().unwrap().to_owned();
    let call = json!([{ "to": target, "data": format!("0x{}", hex::encode(&too_much)) }, "latest"]);
    let Err(ChainError::Rejected(detail)) = rpc.call_raw("eth_call", call).await else { panic!("not rejected") };
    assert!(detail.ends_with(&format!(": {data} (code 3)")), "{detail}");

    let nope = contracts::selector("Nope(uint256)");
    assert_eq!(
        rpc.simulate(from, target, U256::ZERO, &contracts::fail()).await.unwrap(),
        Simulation::Reverted { reason: format!("custom error 0x{}", hex::encode(nope)) }
    );
    assert_eq!(
        rpc.simulate(from, target, U256::ZERO, &contracts::divide(U256::from(1u64), U256::ZERO)).await.unwrap(),
        Simulation::Reverted { reason: "panic 0x12".into() }
    );
    // A non-payable function given value reverts without a reason.
    assert_eq!(
        rpc.simulate(from, target, U256::from(1u64), &contracts::fail()).await.unwrap(),
        Simulation::Reverted { reason: "reverted without a reason".into() }
    );
    assert_eq!(
        rpc.simulate(from, target, U256::from(5u64), &contracts::deposit()).await.unwrap(),
        Simulation::Success(Vec::new())
    );
    // Simulations change nothing.
    assert_eq!(anvil.call(target, &contracts::encode_call("swaps()", &[])), vec![0u8; 32]);
}

#[tokio::test]
async fn simulate_reports_node_refusals_as_errors() {
    let anvil = Anvil::start();
    let rpc = client(&anvil);
    let target = contracts::deploy_target(&anvil);
    let broke = Address::repeat_byte(0x55);
    // Sending more value than the account holds is the node's refusal, not a revert.
    let error = rpc.simulate(broke, target, U256::from(10u64).pow(U256::from(30u64)), &contracts::deposit()).await;
    assert!(matches!(error, Err(ChainError::Rejected(_))), "{error:?}");

    let unreachable = RpcClient::new(&format!("http://127.0.0.1:{}", mandate_test_support::free_port())).unwrap();
    let error = unreachable.simulate(broke, target, U256::ZERO, &[]).await.unwrap_err();
    assert!(matches!(error, ChainError::Unavailable(_)), "{error:?}");
    let error = unreachable.erc20_decimals(target).await.unwrap_err();
    assert!(matches!(error, ChainError::Unavailable(_)), "{error:?}");
}
