//! The party network: identity keys, the Noise channel, the mesh transport and the
//! run coordinator. Blocking std sockets only.
//!
//! Every connection is a Noise XX handshake in which both sides check the other's
//! static key against the keys pinned at pairing; a peer with any other key is
//! refused before a single protocol message is read. Frames carry an explicit
//! counter bound into the AEAD nonce, so an altered frame fails as `MESSAGE_TAMPERED`
//! and a re-sent one as `MESSAGE_REPLAYED`, each naming the peer.

mod channel;
mod files;
mod identity;
mod mesh;
mod runtime;

pub use channel::{ChannelReader, ChannelWriter, SecureChannel};
pub use files::{read_secret_env, read_secret_file, write_secret_file, ShareDir};
pub use identity::{IdentityKey, PeerBook, PeerEntry, PublicIdentity};
pub use mesh::{Link, MeshTransport};
pub use runtime::{
    coordinate, execute, no_commit, propose, serve, AuditHead, Coordinator, Operation, PartyHandler, Refusal,
    RunOutput, RunPlan, MAX_OPEN_CONNECTIONS, PLAN_VERSION,
};
