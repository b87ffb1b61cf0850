//! Threshold ECDSA for Mandate wallets: 2-of-3 DKLs23 over secp256k1 among the
//! service, the cosigner and the recovery party.
//!
//! Layout:
//! - [`protocol`]: DKG, signing, refresh and repair as plain functions driven over a
//!   [`Transport`]. No sockets, no files, no clocks: the caller moves the bytes.
//!   Every message travels in an [`Envelope`] bound to the run's [`SessionId`], its
//!   sender and its receiver; a message from another session, a replay or a wrong
//!   sender is refused with an error that names the culprit party.
//! - [`KeyShare`] and [`blob`]: one party's share and its encrypted at-rest format
//!   (Argon2id → XChaCha20-Poly1305, wallet id + role + version as associated data).
//! - [`net`]: the authenticated, encrypted party channel (Noise XX with pinned
//!   identity keys over TCP) and the run coordinator. This is the only IO in the crate
//!   and it uses blocking std sockets: no async runtime, no HTTP client.
//!
//! The full private key is never assembled anywhere, and no function here ever holds
//! two shares of one wallet.

mod envelope;
mod error;
mod share;

pub mod blob;
pub mod memory;
pub mod net;
pub mod protocol;

pub use envelope::{Envelope, SessionId, Transport, ENVELOPE_VERSION};
pub use error::{Culprit, MpcError, Result};
pub use share::{EcdsaSig, KeyShare, PublicKeyInfo, HARDENED};
