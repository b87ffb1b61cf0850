//! Decoding of untrusted payloads into [`crate::action::Action`]s (calldata, EIP-712
//! typed data, EIP-191 messages). Being written.
