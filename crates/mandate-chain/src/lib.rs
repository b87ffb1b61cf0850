//! Mandate's EVM adapter: decoding an unsigned EIP-1559 transaction from untrusted
//! bytes, its signing hash, and attaching a threshold signature (the cosigner uses
//! this to recompute what it signs instead of trusting a digest); and [`rpc`], an
//! async JSON-RPC client to an EVM node (balances, nonces, fees, broadcast, receipts).
//!
//! Must never depend on a key share or on the server: it sees transactions only.

use alloy_consensus::transaction::RlpEcdsaDecodableTx;
use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};

pub mod agent;
pub mod approval;
#[cfg(feature = "rpc")]
pub mod contracts;
mod payload;
#[cfg(feature = "rpc")]
pub mod rpc;
pub mod webauthn;
pub mod x402;
pub use payload::*;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The bytes are not a canonical unsigned EIP-1559 transaction.
    #[error("not an unsigned EIP-1559 transaction: {0}")]
    InvalidTransaction(String),
    /// The signature could not be attached or does not recover.
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// The EVM node could not be reached, timed out or could not answer. For a
    /// broadcast the outcome is unknown.
    #[error("EVM node unavailable: {0}")]
    Unavailable(String),
    /// The node refused the transaction with a JSON-RPC error.
    #[error("rejected by the EVM node: {0}")]
    Rejected(String),
    /// The node could not estimate gas (the call reverts, or funds are short).
    #[error("gas estimation failed: {0}")]
    EstimateFailed(String),
    /// The RPC URL is not https:// (plain http:// is only for localhost) or not a URL.
    #[error("insecure or invalid RPC URL: {0}")]
    InsecureUrl(String),
    /// The node's answer is malformed. For a broadcast the outcome is unknown.
    #[error("malformed answer from the EVM node: {0}")]
    BadResponse(String),
    /// The address does not answer as an ERC-20 token (no code, a revert, or a
    /// malformed or out-of-range value).
    #[error("not an ERC-20 token: {0}")]
    NotAToken(String),
    /// The price feed does not answer as a Chainlink-style aggregator, or its
    /// latest round has a non-positive answer or is not complete.
    #[error("unusable price feed: {0}")]
    BadPriceFeed(String),
    /// A signing payload (other than a transaction) does not decode or hash; `code`
    /// says how (`INVALID_TYPED_DATA`, `INVALID_INPUT`).
    #[error("invalid signing payload: {message}")]
    InvalidPayload {
        /// Stable code.
        code: mandate_core::ErrorCode,
        /// What is wrong.
        message: String,
    },
}

impl ChainError {
    /// Stable error code.
    pub fn code(&self) -> mandate_core::ErrorCode {
        match self {
            ChainError::InvalidTransaction(_) => mandate_core::ErrorCode::InvalidTransaction,
            ChainError::InvalidSignature(_) => mandate_core::ErrorCode::SignatureInvalid,
            ChainError::Unavailable(_) | ChainError::BadResponse(_) => mandate_core::ErrorCode::ChainUnavailable,
            ChainError::Rejected(_) => mandate_core::ErrorCode::ChainRejected,
            ChainError::EstimateFailed(_) => mandate_core::ErrorCode::GasEstimationFailed,
            ChainError::InsecureUrl(_) => mandate_core::ErrorCode::InsecureUrl,
            ChainError::NotAToken(_) => mandate_core::ErrorCode::UnknownToken,
            ChainError::BadPriceFeed(_) => mandate_core::ErrorCode::PriceUnavailable,
            ChainError::InvalidPayload { code, .. } => *code,
        }
    }
}

/// Result alias.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

const EIP1559_TYPE: u8 = 0x02;

/// A decoded, canonical, unsigned EIP-1559 transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedTx {
    tx: TxEip1559,
}

impl UnsignedTx {
    /// Builds a native transfer (or call, with `input`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: u64,
        nonce: u64,
        to: Address,
        value: U256,
        gas_limit: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
        input: Vec<u8>,
    ) -> Self {
        UnsignedTx {
            tx: TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: TxKind::Call(to),
                value,
                access_list: Default::default(),
                input: Bytes::from(input),
            },
        }
    }

    /// Decodes untrusted bytes: `0x02 || rlp(fields)`, the exact preimage of the
    /// signing hash. Non-canonical encodings and trailing bytes are refused. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (kind, mut rest) = bytes.split_first().ok_or_else(|| ChainError::InvalidTransaction("empty".into()))?;
        if *kind != EIP1559_TYPE {
            return Err(ChainError::InvalidTransaction(format!("type 0x{kind:02x}, expected 0x02")));
        }
        let tx = TxEip1559::rlp_decode(&mut rest).map_err(|e| ChainError::InvalidTransaction(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ChainError::InvalidTransaction("trailing bytes".into()));
        }
        let decoded = UnsignedTx { tx };
        if decoded.encode() != bytes {
            return Err(ChainError::InvalidTransaction("non-canonical encoding".into()));
        }
        Ok(decoded)
    }

    /// The canonical unsigned encoding (the signing preimage).
    pub fn encode(&self) -> Vec<u8> {
        self.tx.encoded_for_signing()
    }

    /// The hash a signer signs, recomputed from the fields.
    pub fn signing_hash(&self) -> [u8; 32] {
        self.tx.signature_hash().0
    }

    /// Chain id.
    pub fn chain_id(&self) -> u64 {
        self.tx.chain_id
    }

    /// Recipient, or `None` for contract creation.
    pub fn to(&self) -> Option<Address> {
        self.tx.to.to().copied()
    }

    /// Native value in wei.
    pub fn value(&self) -> U256 {
        self.tx.value
    }

    /// The most this transaction can take from the wallet: value plus
    /// `gas_limit × max_fee_per_gas`. Limits are checked against this, so fees
    /// cannot be used to drain a wallet around them.
    pub fn max_cost(&self) -> U256 {
        let fees = U256::from(self.tx.gas_limit).saturating_mul(U256::from(self.tx.max_fee_per_gas));
        self.tx.value.saturating_add(fees)
    }

    /// Calldata.
    pub fn input(&self) -> &[u8] {
        &self.tx.input
    }

    /// Nonce.
    pub fn nonce(&self) -> u64 {
        self.tx.nonce
    }

    /// Gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.tx.gas_limit
    }

    /// Max fee per gas, in wei.
    pub fn max_fee_per_gas(&self) -> u128 {
        self.tx.max_fee_per_gas
    }

    /// Attaches a signature (r, s, recovery id) and returns the raw signed
    /// transaction, after checking it recovers to `expected_from`.
    pub fn into_raw_signed(self, r: [u8; 32], s: [u8; 32], recovery_id: u8, expected_from: Address) -> Result<Vec<u8>> {
        let parity = match recovery_id {
            0 => false,
            1 => true,
            other => return Err(ChainError::InvalidSignature(format!("recovery id {other}"))),
        };
        let signature = Signature::new(U256::from_be_bytes(r), U256::from_be_bytes(s), parity);
        let signed: Signed<TxEip1559> = self.tx.into_signed(signature);
        let from = signed
            .signature()
            .recover_address_from_prehash(&B256::from(signed.signature_hash()))
            .map_err(|e| ChainError::InvalidSignature(e.to_string()))?;
        if from != expected_from {
            return Err(ChainError::InvalidSignature(format!("recovers to {from}, expected {expected_from}")));
        }
        Ok(TxEnvelope::from(signed).encoded_2718())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> UnsignedTx {
        UnsignedTx::new(
            31337,
            7,
            Address::repeat_byte(0x11),
            U256::from(10u64).pow(U256::from(18u64)),
            21000,
            2_000_000_000,
            1_000_000_000,
            vec![],
        )
    }

    #[test]
    fn decode_round_trips_and_hash_is_keccak_of_preimage() {
        let tx = sample();
        let bytes = tx.encode();
        assert_eq!(bytes[0], 0x02);
        let decoded = UnsignedTx::decode(&bytes).unwrap();
        assert_eq!(decoded, tx);
        assert_eq!(decoded.signing_hash(), alloy_primitives::keccak256(&bytes).0);
    }

    #[test]
    fn refuses_other_types_trailing_bytes_and_garbage() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(UnsignedTx::decode(&bytes).is_err());
        let mut legacy = sample().encode();
        legacy[0] = 0x01;
        assert!(UnsignedTx::decode(&legacy).is_err());
        assert!(UnsignedTx::decode(&[]).is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = UnsignedTx::decode(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_mutated_transactions(index in 0usize..200, byte in any::<u8>()) {
            let mut bytes = sample().encode();
            let i = index % bytes.len();
            bytes[i] = byte;
            if let Ok(tx) = UnsignedTx::decode(&bytes) {
                prop_assert_eq!(tx.encode(), bytes);
            }
        }
    }
}
