//! The daemon's outside world, as traits: the EVM node ([`Chain`]) and the threshold
//! party that signs with the cosigner ([`Signer`]). `mandate serve` plugs in the real
//! ones (`RpcClient`, the embedded service party); tests drive [`crate::app`] with
//! fakes, in process, without a node or a cosigner.

use std::future::Future;
use std::pin::Pin;

use alloy_primitives::{Address, B256, U256};
use mandate_chain::contracts::{RoundData, Simulation};
use mandate_chain::rpc::{Fees, Receipt, RpcClient};
use mandate_core::WalletId;
use mandate_mpc::net::Operation;
use mandate_mpc::EcdsaSig;

use crate::error::{ApiError, ApiResult};

/// What a [`Chain`] call returns.
pub type ChainFuture<'a, T> = Pin<Box<dyn Future<Output = mandate_chain::Result<T>> + Send + 'a>>;

/// The EVM node, as the daemon uses it.
pub trait Chain: Send + Sync + 'static {
    /// `eth_chainId`.
    fn chain_id(&self) -> ChainFuture<'_, u64>;
    /// The hash of block 0 (tells a restarted dev chain from the one a wallet used).
    fn genesis_hash(&self) -> ChainFuture<'_, B256>;
    /// Native balance at the latest block.
    fn balance(&self, address: Address) -> ChainFuture<'_, U256>;
    /// The next nonce counting pending transactions.
    fn pending_nonce(&self, address: Address) -> ChainFuture<'_, u64>;
    /// `eth_estimateGas`.
    fn estimate_gas<'a>(&'a self, from: Address, to: Address, value: U256, data: &'a [u8]) -> ChainFuture<'a, u64>;
    /// EIP-1559 fee suggestion.
    fn fees(&self) -> ChainFuture<'_, Fees>;
    /// `eth_sendRawTransaction`.
    fn send_raw_transaction<'a>(&'a self, raw: &'a [u8]) -> ChainFuture<'a, B256>;
    /// The receipt, once mined.
    fn receipt(&self, hash: B256) -> ChainFuture<'_, Option<Receipt>>;
    /// Whether the node knows the transaction (pool or chain).
    fn knows_transaction(&self, hash: B256) -> ChainFuture<'_, bool>;
    /// ERC-20 `decimals()`.
    fn erc20_decimals(&self, token: Address) -> ChainFuture<'_, u8>;
    /// ERC-20 `symbol()`.
    fn erc20_symbol(&self, token: Address) -> ChainFuture<'_, String>;
    /// ERC-20 `balanceOf(holder)`.
    fn erc20_balance(&self, token: Address, holder: Address) -> ChainFuture<'_, U256>;
    /// A Chainlink-style aggregator's latest round.
    fn latest_round(&self, aggregator: Address) -> ChainFuture<'_, RoundData>;
    /// `eth_call` of the transaction: success or the revert reason.
    fn simulate<'a>(&'a self, from: Address, to: Address, value: U256, data: &'a [u8]) -> ChainFuture<'a, Simulation>;
    /// Development nodes only: sets `address`'s balance with the node's own dev
    /// method (`anvil_setBalance`, else `hardhat_setBalance`) and names the method, or
    /// `None` when the node answers neither (not a dev node). By default: `None`.
    fn dev_set_balance(&self, address: Address, balance: U256) -> ChainFuture<'_, Option<&'static str>> {
        let _ = (address, balance);
        Box::pin(async { Ok(None) })
    }
}

impl Chain for RpcClient {
    fn chain_id(&self) -> ChainFuture<'_, u64> {
        Box::pin(RpcClient::chain_id(self))
    }
    fn genesis_hash(&self) -> ChainFuture<'_, B256> {
        Box::pin(RpcClient::genesis_hash(self))
    }
    fn balance(&self, address: Address) -> ChainFuture<'_, U256> {
        Box::pin(RpcClient::balance(self, address))
    }
    fn pending_nonce(&self, address: Address) -> ChainFuture<'_, u64> {
        Box::pin(RpcClient::pending_nonce(self, address))
    }
    fn estimate_gas<'a>(&'a self, from: Address, to: Address, value: U256, data: &'a [u8]) -> ChainFuture<'a, u64> {
        Box::pin(RpcClient::estimate_gas(self, from, to, value, data))
    }
    fn fees(&self) -> ChainFuture<'_, Fees> {
        Box::pin(RpcClient::fees(self))
    }
    fn send_raw_transaction<'a>(&'a self, raw: &'a [u8]) -> ChainFuture<'a, B256> {
        Box::pin(RpcClient::send_raw_transaction(self, raw))
    }
    fn receipt(&self, hash: B256) -> ChainFuture<'_, Option<Receipt>> {
        Box::pin(RpcClient::receipt(self, hash))
    }
    fn knows_transaction(&self, hash: B256) -> ChainFuture<'_, bool> {
        Box::pin(async move {
            let found = self.call_raw("eth_getTransactionByHash", serde_json::json!([hash])).await?;
            Ok(!found.is_null())
        })
    }
    fn erc20_decimals(&self, token: Address) -> ChainFuture<'_, u8> {
        Box::pin(RpcClient::erc20_decimals(self, token))
    }
    fn erc20_symbol(&self, token: Address) -> ChainFuture<'_, String> {
        Box::pin(RpcClient::erc20_symbol(self, token))
    }
    fn erc20_balance(&self, token: Address, holder: Address) -> ChainFuture<'_, U256> {
        Box::pin(RpcClient::erc20_balance(self, token, holder))
    }
    fn latest_round(&self, aggregator: Address) -> ChainFuture<'_, RoundData> {
        Box::pin(RpcClient::latest_round(self, aggregator))
    }
    fn simulate<'a>(&'a self, from: Address, to: Address, value: U256, data: &'a [u8]) -> ChainFuture<'a, Simulation> {
        Box::pin(RpcClient::simulate(self, from, to, value, data))
    }
    fn dev_set_balance(&self, address: Address, balance: U256) -> ChainFuture<'_, Option<&'static str>> {
        Box::pin(async move {
            let params = serde_json::json!([address.to_checksum(None), format!("{balance:#x}")]);
            for method in ["anvil_setBalance", "hardhat_setBalance"] {
                match self.call_raw(method, params.clone()).await {
                    Ok(_) => return Ok(Some(method)),
                    // The node does not know the method: try the next, then it is no dev node.
                    Err(mandate_chain::ChainError::Rejected(_)) => continue,
                    Err(other) => return Err(other),
                }
            }
            Ok(None)
        })
    }
}

/// The threshold party that signs with the cosigner. Blocking: callers run it off the
/// async workers.
pub trait Signer: Send + Sync + 'static {
    /// Signs `payload` (whose digest is `digest`), passing the owner's signed approval
    /// when there is one, and for an agent key's request its proof (the registration
    /// and the signed request, `mandate_chain::agent::AgentProof`), which the cosigner
    /// verifies itself. `commit` runs just before the message after which the
    /// cosigner can finish the signature alone; a failure after it reports
    /// `committed: true`.
    fn sign(
        &self,
        key: &KeyRef,
        payload: Vec<u8>,
        digest: [u8; 32],
        approval: Option<Vec<u8>>,
        agent: Option<Vec<u8>>,
        commit: &mut dyn FnMut() -> ApiResult<()>,
    ) -> Result<EcdsaSig, SignFailure>;

    /// Sends the cosigner a notice (a freeze, or an owner's unfreeze).
    fn notify(&self, wallet: &WalletId, operation: Operation) -> ApiResult<()>;

    /// The wallet's address, from this party's own share (never from a request).
    fn address(&self, wallet: &WalletId) -> ApiResult<String>;

    /// The address of the wallet key's non-hardened child `child` (a subaccount),
    /// derived from this party's own share.
    fn child_address(&self, wallet: &WalletId, child: u32) -> ApiResult<String>;
}

/// Which key signs: a wallet's own, or the child key of a subaccount (its parent's
/// key derived at `child`; the derivation index is part of the signing plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// The wallet whose shares sign (a subaccount's parent).
    pub wallet: WalletId,
    /// The child key, for a subaccount.
    pub child: Option<u32>,
}

/// A signing run that failed, and whether it failed after this party's point of no
/// return (its accounting was committed: the cosigner may hold the signature).
#[derive(Debug)]
pub struct SignFailure {
    /// What went wrong.
    pub error: ApiError,
    /// The commit hook ran: the spend must stay counted.
    pub committed: bool,
}

impl From<ApiError> for SignFailure {
    fn from(error: ApiError) -> Self {
        SignFailure { error, committed: false }
    }
}
