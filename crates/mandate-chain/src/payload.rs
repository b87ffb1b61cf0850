//! What a signing run signs: the full payload, which every signer decodes and hashes
//! itself. No signer is ever handed a digest to trust.
//!
//! Wire format: one tag byte, then the body.
//!
//! | first byte | kind                | body                                              |
//! |------------|---------------------|---------------------------------------------------|
//! | `0x02`     | EIP-1559 transaction| the rest of `0x02 ‖ rlp(fields)`, the signing preimage itself, so transaction payloads from before this format decode unchanged |
//! | `0xa1`     | EIP-712 typed data  | the `eth_signTypedData_v4` JSON text, UTF-8, at most [`MAX_TYPED_DATA_BYTES`] |
//! | `0xa2`     | EIP-191 message     | the message bytes (before the prefix), at most [`MAX_MESSAGE_BYTES`] |
//! | `0xa3`     | raw 32-byte hash    | exactly 32 bytes                                  |
//!
//! The tags of the other kinds lie in `0x80..=0xbf`, which is neither an EIP-2718
//! transaction type (`0x00..=0x7f`) nor the start of a legacy RLP transaction
//! (`0xc0..=0xff`), so no payload can be read both as a transaction and as something
//! else. A new format gets a new tag; an unknown tag is refused.

use alloy_primitives::B256;
use mandate_core::decode::{parse_typed_data_text, personal_message_hash, MAX_TYPED_DATA_BYTES};
use mandate_core::ErrorCode;

use crate::{ChainError, Result, UnsignedTx};

/// Tag of an EIP-712 typed-data payload.
pub const TAG_TYPED_DATA: u8 = 0xa1;
/// Tag of an EIP-191 personal-message payload.
pub const TAG_PERSONAL_MESSAGE: u8 = 0xa2;
/// Tag of a raw-hash payload.
pub const TAG_RAW_HASH: u8 = 0xa3;
/// Largest EIP-191 message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest encoded payload of any kind, in bytes: geth's limit on a whole
/// transaction (128 KiB), which no node would exceed.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// What a signing run signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignPayload {
    /// An unsigned EIP-1559 transaction.
    Transaction(UnsignedTx),
    /// EIP-712 typed data: the `eth_signTypedData_v4` JSON text
    /// (`{types, primaryType, domain, message}`; the daemon writes serde_json's
    /// compact form).
    TypedData(String),
    /// An EIP-191 `personal_sign` message, before the prefix.
    PersonalMessage(Vec<u8>),
    /// A bare 32-byte hash.
    RawHash(B256),
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> ChainError {
    ChainError::InvalidPayload { code, message: message.into() }
}

impl SignPayload {
    /// The tagged bytes (see the module documentation). A value over its kind's size
    /// bound encodes but will not decode.
    pub fn encode(&self) -> Vec<u8> {
        let tagged = |tag: u8, body: &[u8]| {
            let mut bytes = Vec::with_capacity(1 + body.len());
            bytes.push(tag);
            bytes.extend_from_slice(body);
            bytes
        };
        match self {
            SignPayload::Transaction(tx) => tx.encode(),
            SignPayload::TypedData(text) => tagged(TAG_TYPED_DATA, text.as_bytes()),
            SignPayload::PersonalMessage(message) => tagged(TAG_PERSONAL_MESSAGE, message),
            SignPayload::RawHash(hash) => tagged(TAG_RAW_HASH, hash.as_slice()),
        }
    }

    /// Decodes untrusted bytes. Transactions are decoded as by [`UnsignedTx::decode`]
    /// (canonical, no trailing bytes), and bytes that look like any transaction type
    /// get its error; typed data must be UTF-8; every kind is size-bounded. Typed data
    /// is parsed only by [`SignPayload::digest`]. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(invalid(
                ErrorCode::InvalidInput,
                format!("payload is {} bytes, more than {MAX_PAYLOAD_BYTES}", bytes.len()),
            ));
        }
        let Some((tag, body)) = bytes.split_first() else {
            return Err(invalid(ErrorCode::InvalidInput, "empty payload"));
        };
        match *tag {
            TAG_TYPED_DATA => {
                if body.len() > MAX_TYPED_DATA_BYTES {
                    return Err(invalid(
                        ErrorCode::InvalidTypedData,
                        format!("typed data is {} bytes, more than {MAX_TYPED_DATA_BYTES}", body.len()),
                    ));
                }
                let text = std::str::from_utf8(body)
                    .map_err(|e| invalid(ErrorCode::InvalidTypedData, format!("typed data is not UTF-8: {e}")))?;
                Ok(SignPayload::TypedData(text.to_owned()))
            }
            TAG_PERSONAL_MESSAGE => {
                if body.len() > MAX_MESSAGE_BYTES {
                    return Err(invalid(
                        ErrorCode::InvalidInput,
                        format!("message is {} bytes, more than {MAX_MESSAGE_BYTES}", body.len()),
                    ));
                }
                Ok(SignPayload::PersonalMessage(body.to_vec()))
            }
            TAG_RAW_HASH => {
                let hash: [u8; 32] = body.try_into().map_err(|_| {
                    invalid(ErrorCode::InvalidInput, format!("raw hash is {} bytes, not 32", body.len()))
                })?;
                Ok(SignPayload::RawHash(B256::from(hash)))
            }
            0x80..=0xbf => Err(invalid(ErrorCode::InvalidInput, format!("unknown payload tag 0x{tag:02x}"))),
            // Transaction types and legacy RLP: what a transaction payload was before tags.
            _ => UnsignedTx::decode(bytes).map(SignPayload::Transaction),
        }
    }

    /// The digest a signer signs, computed from the full payload: the transaction's
    /// signing hash, the EIP-712 signing hash, the EIP-191 hash, or the raw hash itself.
    pub fn digest(&self) -> Result<[u8; 32]> {
        match self {
            SignPayload::Transaction(tx) => Ok(tx.signing_hash()),
            SignPayload::TypedData(text) => {
                parse_typed_data_text(text).map(|action| action.signing_hash.0).map_err(|e| invalid(e.code, e.message))
            }
            SignPayload::PersonalMessage(message) => Ok(personal_message_hash(message).0),
            SignPayload::RawHash(hash) => Ok(hash.0),
        }
    }

    /// Short machine name of the kind: `transaction`, `typed_data`,
    /// `personal_message` or `raw_hash`.
    pub fn kind(&self) -> &'static str {
        match self {
            SignPayload::Transaction(_) => "transaction",
            SignPayload::TypedData(_) => "typed_data",
            SignPayload::PersonalMessage(_) => "personal_message",
            SignPayload::RawHash(_) => "raw_hash",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{b256, hex, keccak256, Address, U256};
    use proptest::prelude::*;

    const MAIL: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}"#;

    fn tx() -> UnsignedTx {
        UnsignedTx::new(1, 3, Address::repeat_byte(0x11), U256::from(5u64), 21000, 2_000_000_000, 1_000_000_000, vec![])
    }

    #[test]
    fn digests_of_each_kind() {
        let tx = tx();
        let payload = SignPayload::Transaction(tx.clone());
        assert_eq!(payload.encode(), tx.encode(), "a transaction payload is the bare preimage");
        assert_eq!(payload.digest().unwrap(), tx.signing_hash());
        assert_eq!(payload.kind(), "transaction");

        let typed = SignPayload::TypedData(MAIL.into());
        assert_eq!(
            B256::from(typed.digest().unwrap()),
            b256!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
        );
        assert_eq!(typed.kind(), "typed_data");

        let message = SignPayload::PersonalMessage(b"hello world".to_vec());
        assert_eq!(
            B256::from(message.digest().unwrap()),
            b256!("0xd9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68")
        );
        assert_eq!(message.kind(), "personal_message");

        let hash = keccak256(b"anything");
        let raw = SignPayload::RawHash(hash);
        assert_eq!(raw.digest().unwrap(), hash.0);
        assert_eq!(raw.kind(), "raw_hash");
        assert_eq!(raw.encode(), [&[TAG_RAW_HASH][..], hash.as_slice()].concat());
    }

    #[test]
    fn payloads_from_before_tags_still_decode() {
        let bytes = tx().encode();
        assert_eq!(bytes[0], 0x02);
        assert_eq!(SignPayload::decode(&bytes).unwrap(), SignPayload::Transaction(tx()));
    }

    #[test]
    fn refusals() {
        let code = |bytes: &[u8]| SignPayload::decode(bytes).unwrap_err().code();
        assert_eq!(code(&[]), ErrorCode::InvalidInput);
        // Transaction-like bytes keep the transaction decoder's error.
        let mut legacy = tx().encode();
        legacy[0] = 0x01;
        assert_eq!(code(&legacy), ErrorCode::InvalidTransaction);
        assert_eq!(code(&[0xc0]), ErrorCode::InvalidTransaction);
        let mut trailing = tx().encode();
        trailing.push(0);
        assert_eq!(code(&trailing), ErrorCode::InvalidTransaction);
        // Unknown tags in the payload range.
        assert_eq!(code(&[0xa4, 1, 2]), ErrorCode::InvalidInput);
        assert_eq!(code(&[0x80]), ErrorCode::InvalidInput);
        // Raw hash of the wrong length.
        assert_eq!(code(&[TAG_RAW_HASH; 32]), ErrorCode::InvalidInput);
        assert_eq!(code(&[TAG_RAW_HASH; 34]), ErrorCode::InvalidInput);
        // Typed data that is not UTF-8 or too long; a message too long; anything too long.
        assert_eq!(code(&[TAG_TYPED_DATA, 0xff]), ErrorCode::InvalidTypedData);
        let long = [&[TAG_TYPED_DATA][..], &vec![b' '; MAX_TYPED_DATA_BYTES + 1]].concat();
        assert_eq!(code(&long), ErrorCode::InvalidTypedData);
        let long = [&[TAG_PERSONAL_MESSAGE][..], &vec![0; MAX_MESSAGE_BYTES + 1]].concat();
        assert_eq!(code(&long), ErrorCode::InvalidInput);
        assert_eq!(code(&vec![0x02; MAX_PAYLOAD_BYTES + 1]), ErrorCode::InvalidInput);
        // Typed data that decodes (UTF-8) but does not hash.
        let bad = SignPayload::decode(&[TAG_TYPED_DATA, b'{', b'}']).unwrap();
        assert_eq!(bad.digest().unwrap_err().code(), ErrorCode::InvalidTypedData);
        let empty = SignPayload::decode(&[TAG_PERSONAL_MESSAGE]).unwrap();
        assert_eq!(empty.digest().unwrap(), personal_message_hash(b"").0);
        assert_eq!(hex::encode(empty.encode()), "a2");
    }

    fn payload() -> impl Strategy<Value = SignPayload> {
        prop_oneof![
            (
                any::<u64>(),
                any::<u64>(),
                any::<[u8; 20]>(),
                any::<[u8; 32]>(),
                any::<u64>(),
                any::<u128>(),
                any::<u128>(),
                prop::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(chain, nonce, to, value, gas, max_fee, tip, input)| SignPayload::Transaction(
                    UnsignedTx::new(
                        chain,
                        nonce,
                        Address::from(to),
                        U256::from_be_bytes(value),
                        gas,
                        max_fee,
                        tip,
                        input
                    )
                )),
            ".{0,64}".prop_map(SignPayload::TypedData),
            prop::collection::vec(any::<u8>(), 0..128).prop_map(SignPayload::PersonalMessage),
            any::<[u8; 32]>().prop_map(|hash| SignPayload::RawHash(B256::from(hash))),
        ]
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(payload) = SignPayload::decode(&bytes) {
                prop_assert_eq!(payload.encode(), bytes);
                let _ = payload.digest();
            }
        }

        #[test]
        fn decode_never_panics_behind_each_tag(
            tag in prop::sample::select(vec![0x02u8, TAG_TYPED_DATA, TAG_PERSONAL_MESSAGE, TAG_RAW_HASH]),
            body in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            let bytes = [&[tag][..], &body].concat();
            if let Ok(payload) = SignPayload::decode(&bytes) {
                prop_assert_eq!(payload.encode(), bytes);
                let _ = payload.digest();
            }
        }

        #[test]
        fn encode_decode_round_trips(payload in payload()) {
            let bytes = payload.encode();
            prop_assert_eq!(SignPayload::decode(&bytes).unwrap(), payload);
        }
    }
}
