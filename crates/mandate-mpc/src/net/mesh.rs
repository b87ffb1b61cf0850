//! A [`Transport`] over secure channels, one per peer, each read by its own thread
//! so that simultaneous large sends can never deadlock on full socket buffers.
//!
//! A [`Link`] is one such channel with its reader thread. It outlives a run: the
//! coordinator's connection to a listening party carries one run after another
//! (each with its own session id, checked on every message by the protocol's
//! router; the channel's frame counters keep running, so a frame of an earlier run
//! re-sent later is a replay).

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mandate_core::Role;
use serde::Serialize;

use super::channel::{ChannelWriter, SecureChannel};
use crate::envelope::Transport;
use crate::error::{Culprit, MpcError, Result};

/// How long a party waits for a peer's next message within a run.
const RECV_TIMEOUT: Duration = Duration::from_secs(120);

/// One established, authenticated connection to a peer: the sending half, and the
/// messages its reader thread has received, in order.
pub struct Link {
    peer: Role,
    writer: ChannelWriter,
    inbox: Receiver<Result<Vec<u8>>>,
    idle_since: Instant,
}

impl Link {
    /// Starts reading `channel` in a thread of its own.
    pub fn new(secure: SecureChannel) -> Self {
        let peer = secure.peer();
        let (writer, mut reader) = secure.split();
        let (tx, inbox) = channel();
        std::thread::spawn(move || loop {
            let message = reader.recv();
            let failed = message.is_err();
            if tx.send(message).is_err() || failed {
                return;
            }
        });
        Link { peer, writer, inbox, idle_since: Instant::now() }
    }

    /// The authenticated peer.
    pub fn peer(&self) -> Role {
        self.peer
    }

    /// Sends one message.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.send(bytes)
    }

    /// The peer's next message, waiting at most `timeout`.
    pub fn recv_within(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        let peer = self.peer;
        self.inbox.recv_timeout(timeout).map_err(|_| MpcError::PeerUnavailable {
            peer: Culprit::Party(peer),
            detail: format!("no message within {} s", timeout.as_secs()),
        })?
    }

    /// The peer's next message.
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        self.recv_within(RECV_TIMEOUT)
    }

    /// Sends a postcard-encoded value.
    pub fn send_postcard<T: Serialize>(&mut self, value: &T) -> Result<()> {
        let bytes = postcard::to_allocvec(value).map_err(|e| MpcError::InvalidInput(format!("encode: {e}")))?;
        self.send(&bytes)
    }

    /// Receives and decodes a postcard value (untrusted input; never panics).
    pub fn recv_postcard<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let bytes = self.recv()?;
        decode_control(self.peer, &bytes)
    }

    /// Whether the link can carry another run: nothing arrived since the last one
    /// ended (an idle peer says nothing; a closed connection or a stray message
    /// makes the link unusable) and it has been idle for less than `max_idle`.
    pub(crate) fn reusable(&self, max_idle: Duration) -> bool {
        self.idle_since.elapsed() < max_idle && matches!(self.inbox.try_recv(), Err(TryRecvError::Empty))
    }

    /// Marks the end of a run on this link.
    pub(crate) fn rested(mut self) -> Self {
        self.idle_since = Instant::now();
        self
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Ends the reader thread too.
        self.writer.shutdown();
    }
}

/// Decodes a postcard control message from `peer`, refusing trailing bytes.
pub(crate) fn decode_control<T: serde::de::DeserializeOwned>(peer: Role, bytes: &[u8]) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| MpcError::Unexpected { culprit: peer, detail: format!("undecodable control message: {e}") })?;
    if !rest.is_empty() {
        return Err(MpcError::Unexpected { culprit: peer, detail: "trailing bytes".into() });
    }
    Ok(value)
}

/// One party's links to the other participants of a run.
pub struct MeshTransport {
    links: BTreeMap<Role, Link>,
}

impl MeshTransport {
    /// Builds the mesh from one established channel per peer.
    pub fn new(channels: Vec<SecureChannel>) -> Self {
        Self::from_links(channels.into_iter().map(Link::new).collect())
    }

    /// Builds the mesh from one link per peer.
    pub fn from_links(links: Vec<Link>) -> Self {
        MeshTransport { links: links.into_iter().map(|link| (link.peer(), link)).collect() }
    }

    /// The links, for another run (dropping the transport instead closes them).
    pub fn into_links(self) -> Vec<Link> {
        self.links.into_values().collect()
    }
}

impl Transport for MeshTransport {
    fn send(&mut self, to: Role, bytes: Vec<u8>) -> Result<()> {
        self.links.get_mut(&to).ok_or_else(|| MpcError::InvalidParticipants(format!("no link to {to}")))?.send(&bytes)
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u8>> {
        self.links.get_mut(&from).ok_or_else(|| MpcError::InvalidParticipants(format!("no link from {from}")))?.recv()
    }
}
