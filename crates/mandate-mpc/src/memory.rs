//! An in-process transport over channels, for tests and for driving all parties
//! of a protocol inside one test process. Production parties use [`crate::net`].

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use mandate_core::Role;

use crate::envelope::Transport;
use crate::error::{Culprit, MpcError, Result};

/// One party's end of an in-memory mesh. The `from` of every received message is
/// the channel it arrived on, as an authenticated network channel would guarantee.
pub struct MemoryTransport {
    me: Role,
    outgoing: BTreeMap<Role, Sender<Vec<u8>>>,
    incoming: BTreeMap<Role, Receiver<Vec<u8>>>,
}

/// Builds a fully connected mesh among `roles`; one transport per role, in order.
pub fn mesh(roles: &[Role]) -> Vec<MemoryTransport> {
    let mut transports: Vec<MemoryTransport> = roles
        .iter()
        .map(|me| MemoryTransport { me: *me, outgoing: BTreeMap::new(), incoming: BTreeMap::new() })
        .collect();
    for from in roles {
        for to in roles {
            if from == to {
                continue;
            }
            let (tx, rx) = channel();
            if let Some(sender) = transports.iter_mut().find(|t| t.me == *from) {
                sender.outgoing.insert(*to, tx);
            }
            if let Some(receiver) = transports.iter_mut().find(|t| t.me == *to) {
                receiver.incoming.insert(*from, rx);
            }
        }
    }
    transports
}

impl MemoryTransport {
    /// The role this end belongs to.
    pub fn role(&self) -> Role {
        self.me
    }
}

impl Transport for MemoryTransport {
    fn send(&mut self, to: Role, bytes: Vec<u8>) -> Result<()> {
        let sender =
            self.outgoing.get(&to).ok_or_else(|| MpcError::InvalidParticipants(format!("no channel to {to}")))?;
        sender
            .send(bytes)
            .map_err(|_| MpcError::PeerUnavailable { peer: Culprit::Party(to), detail: "channel closed".into() })
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u8>> {
        let receiver =
            self.incoming.get(&from).ok_or_else(|| MpcError::InvalidParticipants(format!("no channel from {from}")))?;
        receiver.recv_timeout(Duration::from_secs(60)).map_err(|_| MpcError::PeerUnavailable {
            peer: Culprit::Party(from),
            detail: "no message within 60 s".into(),
        })
    }
}
