//! The Solidity test contracts in `fixtures/contracts/` (see its README): their
//! creation bytecode, ABI encoders for the calls tests make, and one-line deployers
//! onto an [`Anvil`].
//!
//! ```ignore
//! let anvil = Anvil::start();
//! let token = contracts::deploy_test_token(&anvil, "TST", 6, U256::from(1_000_000u64));
//! anvil.transact_as_dev(token, &contracts::transfer(holder, U256::from(5u64)));
//! assert_eq!(anvil.token_balance(token, holder), U256::from(5u64));
//! ```

use alloy_primitives::{keccak256, Address, I256, U256};

pub use alloy_dyn_abi::DynSolValue;

use crate::Anvil;

/// `TestToken` creation bytecode (hex, no `0x`): an ERC-20 with EIP-2612 permit.
pub const TEST_TOKEN_BIN: &str = include_str!("../fixtures/contracts/TestToken.bin").trim_ascii();
/// `TestToken` ABI (JSON).
pub const TEST_TOKEN_ABI: &str = include_str!("../fixtures/contracts/TestToken.abi");
/// `MockAggregator` creation bytecode: a Chainlink AggregatorV3-style feed.
pub const MOCK_AGGREGATOR_BIN: &str = include_str!("../fixtures/contracts/MockAggregator.bin").trim_ascii();
/// `MockAggregator` ABI (JSON).
pub const MOCK_AGGREGATOR_ABI: &str = include_str!("../fixtures/contracts/MockAggregator.abi");
/// `Target` creation bytecode: `swap`, `deposit`, `fail`, `divide`.
pub const TARGET_BIN: &str = include_str!("../fixtures/contracts/Target.bin").trim_ascii();
/// `Target` ABI (JSON).
pub const TARGET_ABI: &str = include_str!("../fixtures/contracts/Target.abi");

/// The exact revert reason of `Target.swap` when `minOut > amountIn`.
pub const SWAP_REVERT_REASON: &str = "Target: minOut above amountIn";

/// The 4-byte selector of a canonical signature such as `"transfer(address,uint256)"`.
pub fn selector(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

/// ABI-encoded arguments (a constructor's, or a call's without the selector).
pub fn encode_args(args: &[DynSolValue]) -> Vec<u8> {
    DynSolValue::Tuple(args.to_vec()).abi_encode_params()
}

/// Calldata: the selector of `signature` followed by the encoded `args`.
pub fn encode_call(signature: &str, args: &[DynSolValue]) -> Vec<u8> {
    let mut data = selector(signature).to_vec();
    data.extend_from_slice(&encode_args(args));
    data
}

fn uint(value: U256) -> DynSolValue {
    DynSolValue::Uint(value, 256)
}

/// Constructor arguments of `TestToken(name, symbol, decimals, initialSupply)`.
pub fn test_token_constructor(name: &str, symbol: &str, decimals: u8, initial_supply: U256) -> Vec<u8> {
    encode_args(&[
        DynSolValue::String(name.to_owned()),
        DynSolValue::String(symbol.to_owned()),
        DynSolValue::Uint(U256::from(decimals), 8),
        uint(initial_supply),
    ])
}

/// Constructor arguments of `MockAggregator(decimals, answer, updatedAt)`.
pub fn mock_aggregator_constructor(decimals: u8, answer: I256, updated_at: u64) -> Vec<u8> {
    encode_args(&[
        DynSolValue::Uint(U256::from(decimals), 8),
        DynSolValue::Int(answer, 256),
        uint(U256::from(updated_at)),
    ])
}

/// Constructor arguments of `Target` (it has none).
pub fn target_constructor() -> Vec<u8> {
    Vec::new()
}

/// `transfer(to, amount)`.
pub fn transfer(to: Address, amount: U256) -> Vec<u8> {
    encode_call("transfer(address,uint256)", &[DynSolValue::Address(to), uint(amount)])
}

/// `approve(spender, amount)`.
pub fn approve(spender: Address, amount: U256) -> Vec<u8> {
    encode_call("approve(address,uint256)", &[DynSolValue::Address(spender), uint(amount)])
}

/// `balanceOf(holder)`.
pub fn balance_of(holder: Address) -> Vec<u8> {
    encode_call("balanceOf(address)", &[DynSolValue::Address(holder)])
}

/// `allowance(owner, spender)`.
pub fn allowance(owner: Address, spender: Address) -> Vec<u8> {
    encode_call("allowance(address,address)", &[DynSolValue::Address(owner), DynSolValue::Address(spender)])
}

/// `MockAggregator.set(answer, updatedAt)`: starts a new round.
pub fn aggregator_set(answer: I256, updated_at: u64) -> Vec<u8> {
    encode_call("set(int256,uint256)", &[DynSolValue::Int(answer, 256), uint(U256::from(updated_at))])
}

/// `Target.swap(token, amountIn, minOut)`: returns `amountIn`, or reverts with
/// [`SWAP_REVERT_REASON`] when `min_out > amount_in`.
pub fn swap(token: Address, amount_in: U256, min_out: U256) -> Vec<u8> {
    encode_call("swap(address,uint256,uint256)", &[DynSolValue::Address(token), uint(amount_in), uint(min_out)])
}

/// `Target.deposit()` (payable).
pub fn deposit() -> Vec<u8> {
    encode_call("deposit()", &[])
}

/// `Target.fail()`: reverts with the custom error `Nope(42)`.
pub fn fail() -> Vec<u8> {
    encode_call("fail()", &[])
}

/// `Target.divide(a, b)`: panics with code 0x12 when `b` is zero.
pub fn divide(a: U256, b: U256) -> Vec<u8> {
    encode_call("divide(uint256,uint256)", &[uint(a), uint(b)])
}

/// A single 32-byte return word as a number (panics on another length).
pub fn decode_u256(returned: &[u8]) -> U256 {
    assert_eq!(returned.len(), 32, "expected one 32-byte word, got {} bytes", returned.len());
    U256::from_be_slice(returned)
}

/// Deploys `TestToken(symbol, symbol, decimals, supply)` from dev account 0, which
/// receives the whole supply.
pub fn deploy_test_token(anvil: &Anvil, symbol: &str, decimals: u8, supply: U256) -> Address {
    anvil.deploy(TEST_TOKEN_BIN, &test_token_constructor(symbol, symbol, decimals, supply))
}

/// Deploys `MockAggregator(decimals, answer, updatedAt)` from dev account 0.
pub fn deploy_mock_aggregator(anvil: &Anvil, decimals: u8, answer: I256, updated_at: u64) -> Address {
    anvil.deploy(MOCK_AGGREGATOR_BIN, &mock_aggregator_constructor(decimals, answer, updated_at))
}

/// Deploys `Target` from dev account 0.
pub fn deploy_target(anvil: &Anvil) -> Address {
    anvil.deploy(TARGET_BIN, &target_constructor())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_encodings_are_the_standard_ones() {
        assert_eq!(selector("transfer(address,uint256)"), [0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(selector("balanceOf(address)"), [0x70, 0xa0, 0x82, 0x31]);
        assert_eq!(selector("approve(address,uint256)"), [0x09, 0x5e, 0xa7, 0xb3]);
        let data = transfer(Address::repeat_byte(0x11), U256::from(5u64));
        assert_eq!(data.len(), 4 + 64);
        assert_eq!(&data[4 + 12..4 + 32], Address::repeat_byte(0x11).as_slice());
        assert_eq!(decode_u256(&data[36..]), U256::from(5u64));
        // Two dynamic strings: four head words, then each string's length and one data word.
        let args = test_token_constructor("Test", "TST", 6, U256::from(1u64));
        assert_eq!(args.len(), 32 * 8);
        assert_eq!(decode_u256(&args[..32]), U256::from(128u64));
        assert_eq!(decode_u256(&args[64..96]), U256::from(6u64));
        assert!(target_constructor().is_empty());
    }

    #[test]
    fn bytecode_is_one_line_of_hex() {
        for bin in [TEST_TOKEN_BIN, MOCK_AGGREGATOR_BIN, TARGET_BIN] {
            assert!(!bin.is_empty() && bin.len().is_multiple_of(2));
            assert!(bin.bytes().all(|b| b.is_ascii_hexdigit()), "not hex");
        }
        for abi in [TEST_TOKEN_ABI, MOCK_AGGREGATOR_ABI, TARGET_ABI] {
            assert!(serde_json::from_str::<serde_json::Value>(abi).unwrap().is_array());
        }
    }
}
