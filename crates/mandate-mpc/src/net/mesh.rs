//! A [`Transport`] over secure channels, one per peer, each read by its own thread
//! so that simultaneous large sends can never deadlock on full socket buffers.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use mandate_core::Role;

use super::channel::{ChannelWriter, SecureChannel};
use crate::envelope::Transport;
use crate::error::{Culprit, MpcError, Result};

/// One party's links to the other participants of a run.
pub struct MeshTransport {
    writers: BTreeMap<Role, ChannelWriter>,
    inboxes: BTreeMap<Role, Receiver<Result<Vec<u8>>>>,
}

impl MeshTransport {
    /// Builds the mesh from one established channel per peer.
    pub fn new(channels: Vec<SecureChannel>) -> Self {
        let mut writers = BTreeMap::new();
        let mut inboxes = BTreeMap::new();
        for link in channels {
            let peer = link.peer();
            let (writer, mut reader) = link.split();
            let (tx, rx) = channel();
            std::thread::spawn(move || loop {
                let message = reader.recv();
                let failed = message.is_err();
                if tx.send(message).is_err() || failed {
                    return;
                }
            });
            writers.insert(peer, writer);
            inboxes.insert(peer, rx);
        }
        MeshTransport { writers, inboxes }
    }
}

impl Transport for MeshTransport {
    fn send(&mut self, to: Role, bytes: Vec<u8>) -> Result<()> {
        self.writers.get_mut(&to).ok_or_else(|| MpcError::InvalidParticipants(format!("no link to {to}")))?.send(&bytes)
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u8>> {
        let inbox =
            self.inboxes.get(&from).ok_or_else(|| MpcError::InvalidParticipants(format!("no link from {from}")))?;
        inbox.recv_timeout(Duration::from_secs(120)).map_err(|_| MpcError::PeerUnavailable {
            peer: Culprit::Party(from),
            detail: "no message within 120 s".into(),
        })?
    }
}

impl Drop for MeshTransport {
    fn drop(&mut self) {
        for writer in self.writers.values() {
            writer.shutdown();
        }
    }
}
