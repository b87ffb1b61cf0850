//! Typed actions: what a signing request does, decoded from its payload. The policy
//! engine sees only these values, never the RPC method or endpoint that asked.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, B256, U256};
use serde::Serialize;

/// An asset a transfer moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Asset {
    /// The chain's native coin (ETH on Ethereum), 18 decimals.
    Native,
    /// An ERC-20 token contract.
    Token(Address),
}

/// A contract call whose function is registered (in the policy's `allow_contracts`),
/// with its arguments decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCall {
    /// Canonical signature, e.g. `swap(address,uint256,uint256)`.
    pub signature: String,
    /// Argument names from the registered signature (empty strings when unnamed).
    pub names: Vec<String>,
    /// Decoded arguments, in order.
    pub args: Vec<DynSolValue>,
}

/// EIP-712 typed data, decoded: what the policy may check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedDataAction {
    /// `domain.chainId`, when present.
    pub chain_id: Option<u64>,
    /// `domain.verifyingContract`, when present.
    pub verifying_contract: Option<Address>,
    /// `domain.name`, when present.
    pub name: Option<String>,
    /// The primary type, e.g. `Permit`.
    pub primary_type: String,
    /// The EIP-712 digest that would be signed.
    pub signing_hash: B256,
}

/// What a signing request does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Native-asset transfer without calldata.
    NativeTransfer {
        /// Recipient.
        to: Address,
        /// Value in wei.
        value: U256,
    },
    /// ERC-20 `transfer(to, amount)` or `transferFrom(from, to, amount)` (no native value).
    TokenTransfer {
        /// Token contract.
        token: Address,
        /// `transferFrom`'s source; `None` for `transfer` (the wallet itself).
        from: Option<Address>,
        /// Recipient.
        to: Address,
        /// Amount in the token's base units.
        amount: U256,
    },
    /// ERC-20 `approve(spender, amount)` or `increaseAllowance(spender, amount)`.
    TokenApprove {
        /// Token contract.
        token: Address,
        /// Who may spend.
        spender: Address,
        /// Amount in base units (`U256::MAX` is an unlimited approval).
        amount: U256,
        /// `increaseAllowance` rather than `approve`.
        increase: bool,
    },
    /// Any other contract call.
    ContractCall {
        /// Target contract.
        to: Address,
        /// Native value sent with the call, in wei.
        value: U256,
        /// First four bytes of the calldata.
        selector: [u8; 4],
        /// The decoded call, when the target's function is registered.
        call: Option<DecodedCall>,
    },
    /// EIP-712 typed data signature.
    TypedData(TypedDataAction),
    /// EIP-191 `personal_sign` message.
    PersonalMessage {
        /// The message bytes (before the EIP-191 prefix).
        message: Vec<u8>,
    },
    /// A bare 32-byte hash (denied unless a `raw_hash` rule allows it).
    RawHash {
        /// The hash.
        hash: B256,
    },
    /// An x402 payment: an EIP-3009 `transferWithAuthorization` of `amount` of `token`
    /// to `to`, asked for by the resource at `host`. Caps count it like a token
    /// transfer; only an `x402` rule naming the host permits it.
    X402Payment {
        /// The resource's host (lower case, without port).
        host: String,
        /// Token contract.
        token: Address,
        /// Who is paid.
        to: Address,
        /// Amount in the token's base units.
        amount: U256,
    },
}

impl Action {
    /// Short machine name of the kind, e.g. `token_transfer`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::NativeTransfer { .. } => "native_transfer",
            Action::TokenTransfer { .. } => "token_transfer",
            Action::TokenApprove { .. } => "token_approve",
            Action::ContractCall { .. } => "contract_call",
            Action::TypedData(_) => "typed_data",
            Action::PersonalMessage { .. } => "personal_message",
            Action::RawHash { .. } => "raw_hash",
            Action::X402Payment { .. } => "x402_payment",
        }
    }

    /// The asset and amount the action moves out of the wallet, if any (a contract
    /// call moves its native value; an approval moves nothing yet).
    pub fn outflow(&self) -> Option<(Asset, U256)> {
        match self {
            Action::NativeTransfer { value, .. } => Some((Asset::Native, *value)),
            Action::TokenTransfer { token, amount, .. } | Action::X402Payment { token, amount, .. } => {
                Some((Asset::Token(*token), *amount))
            }
            Action::ContractCall { value, .. } if !value.is_zero() => Some((Asset::Native, *value)),
            _ => None,
        }
    }

    /// Who receives the outflow: the transfer's recipient, or the called contract.
    pub fn recipient(&self) -> Option<Address> {
        match self {
            Action::NativeTransfer { to, .. } | Action::TokenTransfer { to, .. } | Action::X402Payment { to, .. } => {
                Some(*to)
            }
            Action::ContractCall { to, value, .. } if !value.is_zero() => Some(*to),
            _ => None,
        }
    }

    /// Whether the action is an on-chain transaction (rather than an off-chain signature).
    pub fn is_transaction(&self) -> bool {
        matches!(
            self,
            Action::NativeTransfer { .. }
                | Action::TokenTransfer { .. }
                | Action::TokenApprove { .. }
                | Action::ContractCall { .. }
        )
    }
}
