//! Integration tests of the threshold protocols over the in-memory transport.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

mod adversarial;
mod blob;
mod protocols;

use std::thread;

use mandate_core::{Role, WalletId};
use mandate_mpc::memory::{mesh, MemoryTransport};
use mandate_mpc::{protocol, KeyShare, SessionId};

pub(crate) fn wallet() -> WalletId {
    WalletId::from_random(rand::random())
}

pub(crate) fn sid() -> SessionId {
    SessionId::random(&mut rand::rngs::OsRng)
}

/// Runs one closure per party on its own thread, each with its mesh end.
pub(crate) fn run_all<T: Send + 'static>(
    roles: &[Role],
    f: impl Fn(Role, MemoryTransport) -> T + Send + Sync + Clone + 'static,
) -> Vec<T> {
    let handles: Vec<_> = mesh(roles)
        .into_iter()
        .map(|transport| {
            let f = f.clone();
            thread::spawn(move || f(transport.role(), transport))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// A fresh wallet: the three shares in role order.
pub(crate) fn dkg_all() -> (WalletId, Vec<KeyShare>) {
    let wallet = wallet();
    let session = sid();
    let w = wallet.clone();
    let shares = run_all(&Role::ALL, move |role, mut t| protocol::dkg(&mut t, role, session, &w).unwrap());
    (wallet, shares)
}
