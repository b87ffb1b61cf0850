//! A mutually authenticated, encrypted channel between two pinned parties.
//!
//! Noise XX over TCP. Both static keys are checked against the pinned keys before
//! anything else is read. After the handshake the responder sends one `Welcome`
//! (or a refusal naming the reason), so the dialer learns clearly why it was refused.
//!
//! Transport frames: `u32 length | u64 counter | ciphertext`. The counter is the
//! AEAD nonce, so changing it breaks authentication; a counter below the expected
//! one is a replay and is reported as such.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use mandate_core::{ErrorCode, Role};
use serde::{Deserialize, Serialize};
use snow::StatelessTransportState;

use super::identity::{IdentityKey, PublicIdentity, NOISE_PARAMS};
use crate::error::{Culprit, MpcError, Result};

const MAX_NOISE_MSG: usize = 65535;
const CHUNK: usize = 60 * 1024;
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
enum Greeting {
    Welcome,
    Refused { code: String, message: String },
}

fn unavailable(peer: Culprit, e: impl std::fmt::Display) -> MpcError {
    MpcError::PeerUnavailable { peer, detail: e.to_string() }
}

fn write_raw(stream: &mut TcpStream, peer: Culprit, prefix: &[u8], body: &[u8]) -> Result<()> {
    let len = u32::try_from(prefix.len() + body.len()).map_err(|_| MpcError::InvalidInput("frame too large".into()))?;
    let mut frame = Vec::with_capacity(4 + prefix.len() + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(prefix);
    frame.extend_from_slice(body);
    stream.write_all(&frame).map_err(|e| unavailable(peer, e))
}

fn read_raw(stream: &mut TcpStream, peer: Culprit) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(|e| unavailable(peer, format!("connection closed: {e}")))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_NOISE_MSG + 8 {
        return Err(MpcError::Unexpected {
            culprit: match peer {
                Culprit::Party(role) => role,
                Culprit::Unknown => Role::Service,
            },
            detail: format!("oversized frame of {len} bytes"),
        });
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame).map_err(|e| unavailable(peer, e))?;
    Ok(frame)
}

/// An established channel to one authenticated peer.
pub struct SecureChannel {
    writer: ChannelWriter,
    reader: ChannelReader,
}

/// The sending half of a channel.
pub struct ChannelWriter {
    stream: TcpStream,
    state: Arc<StatelessTransportState>,
    peer: Role,
    counter: u64,
}

/// The receiving half of a channel.
pub struct ChannelReader {
    stream: TcpStream,
    state: Arc<StatelessTransportState>,
    peer: Role,
    expected: u64,
}

impl SecureChannel {
    /// Dials `addr`, expecting the peer `role` with the pinned key `expected`.
    /// Aborts before sending our own static key if the responder's key differs.
    pub fn connect(addr: &str, me: &IdentityKey, role: Role, expected: &PublicIdentity) -> Result<Self> {
        let peer = Culprit::Party(role);
        let socket = addr
            .to_socket_addrs()
            .map_err(|e| unavailable(peer, format!("{addr}: {e}")))?
            .next()
            .ok_or_else(|| unavailable(peer, format!("{addr}: no address")))?;
        let mut stream = TcpStream::connect_timeout(&socket, Duration::from_secs(10))
            .map_err(|e| unavailable(peer, format!("{addr}: {e}")))?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| unavailable(peer, e))?;
        stream.set_nodelay(true).map_err(|e| unavailable(peer, e))?;

        let params = NOISE_PARAMS.parse().map_err(|e| MpcError::InvalidInput(format!("noise params: {e:?}")))?;
        let mut handshake = snow::Builder::new(params)
            .local_private_key(me.private_bytes())
            .build_initiator()
            .map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        let n = handshake.write_message(&[], &mut buf).map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        write_raw(&mut stream, peer, &[], buf.get(..n).unwrap_or_default())?;
        let msg = read_raw(&mut stream, peer)?;
        handshake.read_message(&msg, &mut buf).map_err(|_| MpcError::Tampered { culprit: role })?;
        let presented = handshake
            .get_remote_static()
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .map(PublicIdentity)
            .ok_or_else(|| MpcError::Unexpected { culprit: role, detail: "no static key in handshake".into() })?;
        if presented != *expected {
            // Close without revealing our static key to the impostor.
            return Err(MpcError::PeerIdentity { culprit: peer, presented: presented.to_hex() });
        }
        let n = handshake.write_message(&[], &mut buf).map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        write_raw(&mut stream, peer, &[], buf.get(..n).unwrap_or_default())?;
        let state =
            handshake.into_stateless_transport_mode().map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        let mut channel = SecureChannel::from_parts(stream, state, role)?;
        let greeting: Greeting = channel.recv_postcard()?;
        match greeting {
            Greeting::Welcome => Ok(channel),
            Greeting::Refused { code, message } => Err(MpcError::Refused {
                party: role,
                code: ErrorCode::parse(&code).unwrap_or(ErrorCode::RunRefused),
                message,
            }),
        }
    }

    /// Completes the responder side of a handshake on an accepted stream. `resolve`
    /// maps the initiator's static key to its pinned role; an unknown key is refused
    /// (with a `PEER_IDENTITY_MISMATCH` greeting) before any protocol message is read.
    pub fn accept(
        mut stream: TcpStream,
        me: &IdentityKey,
        resolve: impl Fn(&PublicIdentity) -> Option<Role>,
    ) -> Result<Self> {
        let unknown = Culprit::Unknown;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| unavailable(unknown, e))?;
        stream.set_nodelay(true).map_err(|e| unavailable(unknown, e))?;
        let params = NOISE_PARAMS.parse().map_err(|e| MpcError::InvalidInput(format!("noise params: {e:?}")))?;
        let mut handshake = snow::Builder::new(params)
            .local_private_key(me.private_bytes())
            .build_responder()
            .map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        let msg = read_raw(&mut stream, unknown)?;
        handshake
            .read_message(&msg, &mut buf)
            .map_err(|_| MpcError::Unexpected { culprit: Role::Service, detail: "bad handshake".into() })?;
        let n = handshake.write_message(&[], &mut buf).map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        write_raw(&mut stream, unknown, &[], buf.get(..n).unwrap_or_default())?;
        let msg = read_raw(&mut stream, unknown)?;
        handshake
            .read_message(&msg, &mut buf)
            .map_err(|_| MpcError::PeerIdentity { culprit: unknown, presented: "(handshake failed)".into() })?;
        let presented = handshake
            .get_remote_static()
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .map(PublicIdentity)
            .ok_or_else(|| MpcError::PeerIdentity { culprit: unknown, presented: "(none)".into() })?;
        let state =
            handshake.into_stateless_transport_mode().map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
        match resolve(&presented) {
            Some(role) => {
                let mut channel = SecureChannel::from_parts(stream, state, role)?;
                channel.send_postcard(&Greeting::Welcome)?;
                Ok(channel)
            }
            None => {
                // The channel is encrypted but the peer is not one of ours: tell it why
                // and read nothing from it.
                let mut channel = SecureChannel::from_parts(stream, state, Role::Service)?;
                let _ = channel.send_postcard(&Greeting::Refused {
                    code: ErrorCode::PeerIdentityMismatch.as_str().into(),
                    message: "your identity key is not pinned here".into(),
                });
                Err(MpcError::PeerIdentity { culprit: unknown, presented: presented.to_hex() })
            }
        }
    }

    fn from_parts(stream: TcpStream, state: StatelessTransportState, peer: Role) -> Result<Self> {
        let state = Arc::new(state);
        let read_stream = stream.try_clone().map_err(|e| unavailable(Culprit::Party(peer), e))?;
        Ok(SecureChannel {
            writer: ChannelWriter { stream, state: state.clone(), peer, counter: 0 },
            reader: ChannelReader { stream: read_stream, state, peer, expected: 0 },
        })
    }

    /// The authenticated peer.
    pub fn peer(&self) -> Role {
        self.writer.peer
    }

    /// Sends one message.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.writer.send(message)
    }

    /// Receives one message.
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        self.reader.recv()
    }

    /// Sends a postcard-encoded value.
    pub fn send_postcard<T: Serialize>(&mut self, value: &T) -> Result<()> {
        let bytes = postcard::to_allocvec(value).map_err(|e| MpcError::InvalidInput(format!("encode: {e}")))?;
        self.send(&bytes)
    }

    /// Receives and decodes a postcard value (untrusted input; never panics).
    pub fn recv_postcard<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let peer = self.peer();
        let bytes = self.recv()?;
        let (value, rest) = postcard::take_from_bytes::<T>(&bytes)
            .map_err(|e| MpcError::Unexpected { culprit: peer, detail: format!("undecodable control message: {e}") })?;
        if !rest.is_empty() {
            return Err(MpcError::Unexpected { culprit: peer, detail: "trailing bytes".into() });
        }
        Ok(value)
    }

    /// Splits into halves that can be used from different threads.
    pub fn split(self) -> (ChannelWriter, ChannelReader) {
        (self.writer, self.reader)
    }
}

impl ChannelWriter {
    /// Sends one message, chunked into Noise frames.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        if message.len() > MAX_MESSAGE {
            return Err(MpcError::InvalidInput("message too large".into()));
        }
        let peer = Culprit::Party(self.peer);
        let mut chunks = message.chunks(CHUNK).peekable();
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        loop {
            let chunk = chunks.next().unwrap_or_default();
            let more = chunks.peek().is_some();
            let mut plain = Vec::with_capacity(chunk.len() + 1);
            plain.push(u8::from(more));
            plain.extend_from_slice(chunk);
            let counter = self.counter;
            self.counter =
                self.counter.checked_add(1).ok_or_else(|| MpcError::InvalidInput("counter exhausted".into()))?;
            let n = self
                .state
                .write_message(counter, &plain, &mut buf)
                .map_err(|e| MpcError::InvalidInput(format!("noise: {e}")))?;
            write_raw(&mut self.stream, peer, &counter.to_be_bytes(), buf.get(..n).unwrap_or_default())?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Closes the connection in both directions.
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

impl ChannelReader {
    /// Receives one message: frames are checked for replay (counter) and
    /// authenticity (AEAD) before anything is decoded.
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        let peer = self.peer;
        let mut message = Vec::new();
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        loop {
            let frame = read_raw(&mut self.stream, Culprit::Party(peer))?;
            let (counter, ciphertext) = frame.split_at_checked(8).ok_or(MpcError::Tampered { culprit: peer })?;
            let counter = u64::from_be_bytes(counter.try_into().map_err(|_| MpcError::Tampered { culprit: peer })?);
            if counter < self.expected {
                return Err(MpcError::ChannelReplay { culprit: peer, counter, expected: self.expected });
            }
            if counter != self.expected {
                return Err(MpcError::Tampered { culprit: peer });
            }
            let n = self
                .state
                .read_message(counter, ciphertext, &mut buf)
                .map_err(|_| MpcError::Tampered { culprit: peer })?;
            self.expected += 1;
            let plain = buf.get(..n).ok_or(MpcError::Tampered { culprit: peer })?;
            let (more, chunk) = plain.split_first().ok_or(MpcError::Tampered { culprit: peer })?;
            if message.len() + chunk.len() > MAX_MESSAGE {
                return Err(MpcError::Unexpected { culprit: peer, detail: "message too large".into() });
            }
            message.extend_from_slice(chunk);
            if *more == 0 {
                return Ok(message);
            }
        }
    }
}

#[cfg(test)]
mod frame_tests {
    use std::net::TcpListener;

    use proptest::prelude::*;

    use super::*;

    /// A channel pair over loopback after a real handshake: (the dialer, which
    /// pinned the acceptor as the cosigner; the acceptor, which pinned the dialer as
    /// the service).
    fn pair() -> (SecureChannel, SecureChannel) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (acceptor_key, dialer_key) = (IdentityKey::generate().unwrap(), IdentityKey::generate().unwrap());
        let (acceptor_public, dialer_public) = (acceptor_key.public(), dialer_key.public());
        let accepting = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            SecureChannel::accept(stream, &acceptor_key, |key| (*key == dialer_public).then_some(Role::Service))
                .unwrap()
        });
        let dialer = SecureChannel::connect(&addr, &dialer_key, Role::Cosigner, &acceptor_public).unwrap();
        (dialer, accepting.join().unwrap())
    }

    /// A genuine frame for `message` at the writer's next counter, without sending it.
    fn genuine_frame(writer: &mut ChannelWriter, message: &[u8]) -> (u64, Vec<u8>) {
        let mut plain = vec![0u8];
        plain.extend_from_slice(message);
        let mut buf = vec![0u8; MAX_NOISE_MSG];
        let counter = writer.counter;
        writer.counter += 1;
        let n = writer.state.write_message(counter, &plain, &mut buf).unwrap();
        (counter, buf[..n].to_vec())
    }

    fn send_raw(writer: &mut ChannelWriter, counter: u64, body: &[u8]) {
        write_raw(&mut writer.stream, Culprit::Party(Role::Cosigner), &counter.to_be_bytes(), body).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Bytes an attacker on the path writes as a frame (any counter, any body)
        /// never decode: the reader answers with an error naming the peer, and
        /// never panics.
        #[test]
        fn forged_frames_never_decode(counter in any::<u64>(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (dialer, acceptor) = pair();
            let (mut writer, _) = dialer.split();
            let (_, mut reader) = acceptor.split();
            send_raw(&mut writer, counter, &body);
            match reader.recv() {
                Err(MpcError::Tampered { culprit: Role::Service })
                | Err(MpcError::ChannelReplay { culprit: Role::Service, .. }) => {}
                other => prop_assert!(false, "a forged frame was answered with {:?}", other.map(|m| m.len())),
            }
        }

        /// Any single flipped bit of a genuine frame is caught as tampering; the
        /// genuine frame itself is accepted once and refused as a replay after.
        #[test]
        fn flipped_bits_are_tampering_and_a_resent_frame_a_replay(
            message in proptest::collection::vec(any::<u8>(), 0..100),
            flip in any::<usize>(),
            bit in 0u8..8,
        ) {
            let (dialer, acceptor) = pair();
            let (mut writer, _) = dialer.split();
            let (_, mut reader) = acceptor.split();
            let (counter, frame) = genuine_frame(&mut writer, &message);
            let mut altered = frame.clone();
            let index = flip % altered.len();
            altered[index] ^= 1 << bit;
            send_raw(&mut writer, counter, &altered);
            let tampered = matches!(reader.recv(), Err(MpcError::Tampered { culprit: Role::Service }));
            prop_assert!(tampered);

            let (dialer, acceptor) = pair();
            let (mut writer, _) = dialer.split();
            let (_, mut reader) = acceptor.split();
            let (counter, frame) = genuine_frame(&mut writer, &message);
            send_raw(&mut writer, counter, &frame);
            prop_assert_eq!(reader.recv().unwrap(), message);
            send_raw(&mut writer, counter, &frame);
            let replayed = matches!(reader.recv(), Err(MpcError::ChannelReplay { culprit: Role::Service, counter: 0, expected: 1 }));
            prop_assert!(replayed);
        }
    }
}
