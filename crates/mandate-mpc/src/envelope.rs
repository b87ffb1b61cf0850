//! Protocol messages on the wire and the transport they travel over.

use std::collections::BTreeSet;
use std::fmt;

use mandate_core::Role;
use serde::{Deserialize, Serialize};

use crate::error::{MpcError, Result};

/// Version of the [`Envelope`] format.
pub const ENVELOPE_VERSION: u8 = 1;

/// Largest envelope this crate will decode, in bytes.
pub(crate) const MAX_ENVELOPE_LEN: usize = 8 * 1024 * 1024;

/// A fresh random identifier for one protocol run. Every run has its own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 32]);

impl SessionId {
    /// A new session id from the caller's randomness.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        SessionId(bytes)
    }

    /// Hex form, for logs and errors.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_hex())
    }
}

/// One protocol message: bound to a session, a sender, a receiver and a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub version: u8,
    /// The run this message belongs to.
    pub session_id: SessionId,
    /// Claimed sender; must equal the authenticated peer.
    pub sender: Role,
    /// Intended receiver.
    pub receiver: Role,
    /// Protocol round, starting at 1.
    pub round: u8,
    /// Round payload (postcard-encoded protocol structures).
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Encodes the envelope.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| MpcError::InvalidInput(format!("encode envelope: {e}")))
    }

    /// Decodes untrusted bytes received from `from`. Never panics.
    pub fn decode(from: Role, bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(MpcError::Unexpected { culprit: from, detail: "message too large".into() });
        }
        let (envelope, rest) = postcard::take_from_bytes::<Envelope>(bytes)
            .map_err(|e| MpcError::Unexpected { culprit: from, detail: format!("undecodable message: {e}") })?;
        if !rest.is_empty() {
            return Err(MpcError::Unexpected { culprit: from, detail: "trailing bytes after message".into() });
        }
        if envelope.version != ENVELOPE_VERSION {
            return Err(MpcError::Unexpected {
                culprit: from,
                detail: format!("unsupported message version {}", envelope.version),
            });
        }
        Ok(envelope)
    }
}

/// Carries serialized messages between the parties of one run.
///
/// Implementations authenticate the peer: bytes returned by `recv(from)` came from
/// the party `from` (the network implementation is a Noise channel with the peer's
/// identity key pinned). The protocol layer does not trust their content.
pub trait Transport {
    /// Sends one message to `to`.
    fn send(&mut self, to: Role, bytes: Vec<u8>) -> Result<()>;
    /// Receives the next message from `from`, blocking until one arrives.
    fn recv(&mut self, from: Role) -> Result<Vec<u8>>;
}

/// Sends and checks envelopes for one run: the single place where session, sender,
/// receiver, round and replay are enforced.
pub(crate) struct Router<'t, T: Transport> {
    transport: &'t mut T,
    me: Role,
    session_id: SessionId,
    peers: Vec<Role>,
    seen: BTreeSet<(Role, u8)>,
}

impl<'t, T: Transport> Router<'t, T> {
    pub(crate) fn new(transport: &'t mut T, me: Role, session_id: SessionId, participants: &[Role]) -> Self {
        let peers = participants.iter().copied().filter(|role| *role != me).collect();
        Router { transport, me, session_id, peers, seen: BTreeSet::new() }
    }

    pub(crate) fn peers(&self) -> &[Role] {
        &self.peers
    }

    pub(crate) fn me(&self) -> Role {
        self.me
    }

    pub(crate) fn send<M: Serialize>(&mut self, to: Role, round: u8, message: &M) -> Result<()> {
        let payload =
            postcard::to_allocvec(message).map_err(|e| MpcError::InvalidInput(format!("encode round {round}: {e}")))?;
        let envelope = Envelope {
            version: ENVELOPE_VERSION,
            session_id: self.session_id,
            sender: self.me,
            receiver: to,
            round,
            payload,
        };
        self.transport.send(to, envelope.encode()?)
    }

    /// Receives the round-`round` message from `from` and decodes its payload.
    pub(crate) fn recv<M: serde::de::DeserializeOwned>(&mut self, from: Role, round: u8) -> Result<M> {
        let bytes = self.transport.recv(from)?;
        let envelope = Envelope::decode(from, &bytes)?;
        if envelope.session_id != self.session_id {
            return Err(MpcError::WrongSession { culprit: from });
        }
        if envelope.sender != from {
            return Err(MpcError::WrongSender { culprit: from, claimed: envelope.sender });
        }
        if envelope.receiver != self.me {
            return Err(MpcError::Unexpected {
                culprit: from,
                detail: format!("message addressed to {}", envelope.receiver),
            });
        }
        if !self.seen.insert((from, envelope.round)) {
            return Err(MpcError::Replay { culprit: from, round: envelope.round });
        }
        if envelope.round != round {
            return Err(MpcError::Unexpected {
                culprit: from,
                detail: format!("expected round {round}, got round {}", envelope.round),
            });
        }
        let (message, rest) = postcard::take_from_bytes::<M>(&envelope.payload).map_err(|e| MpcError::Unexpected {
            culprit: from,
            detail: format!("undecodable round {round} payload: {e}"),
        })?;
        if !rest.is_empty() {
            return Err(MpcError::Unexpected { culprit: from, detail: "trailing bytes in payload".into() });
        }
        Ok(message)
    }

    /// Sends `outgoing(peer)` to every peer, then receives one round message from each.
    pub(crate) fn exchange<Out: Serialize, In: serde::de::DeserializeOwned>(
        &mut self,
        round: u8,
        mut outgoing: impl FnMut(Role) -> Result<Out>,
    ) -> Result<Vec<(Role, In)>> {
        let peers = self.peers.clone();
        for peer in &peers {
            let message = outgoing(*peer)?;
            self.send(*peer, round, &message)?;
        }
        let mut received = Vec::with_capacity(peers.len());
        for peer in peers {
            received.push((peer, self.recv(peer, round)?));
        }
        Ok(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn envelope_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Envelope::decode(Role::Cosigner, &bytes);
        }

        #[test]
        fn envelope_round_trips(sid in any::<[u8; 32]>(), round in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let envelope = Envelope { version: ENVELOPE_VERSION, session_id: SessionId(sid), sender: Role::Service, receiver: Role::Recovery, round, payload };
            let bytes = envelope.encode().unwrap();
            prop_assert_eq!(Envelope::decode(Role::Service, &bytes).unwrap(), envelope);
        }
    }
}
