//! Runs: the plan every participant agrees to, the coordinator that proposes it,
//! and the server loop of a listening party (the cosigner, the service).
//!
//! A run starts when its coordinator — the recovery party when it takes part,
//! otherwise the service — dials each other participant and proposes a [`RunPlan`]
//! with a fresh session id. Each participant checks the plan with its own
//! [`PartyHandler`] (the cosigner applies its hard limits here) and accepts or
//! refuses before any protocol message flows. When the two other participants must
//! also talk to each other, the lower-index one dials the higher and joins by
//! session id and plan hash.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mandate_core::{ErrorCode, Role, WalletId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::channel::SecureChannel;
use super::identity::{IdentityKey, PeerBook};
use super::mesh::{decode_control, Link, MeshTransport};
use crate::envelope::{SessionId, Transport};
use crate::error::{MpcError, Result};
use crate::protocol::{self, RepairSide};
use crate::share::{EcdsaSig, KeyShare};

/// Version of the [`RunPlan`] format.
pub const PLAN_VERSION: u8 = 4;

/// What a run does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Distributed key generation for a new wallet (all three parties).
    Dkg,
    /// Sign a full payload; every signer decodes it and computes the digest itself.
    Sign {
        /// The unsigned payload (for EVM: the RLP of an EIP-1559 transaction).
        payload: Vec<u8>,
        /// An owner's signed approval of the payload, opaque here: the cosigner
        /// verifies it itself when its limits require one.
        approval: Option<Vec<u8>>,
    },
    /// Complete refresh of all three shares.
    Refresh,
    /// Tells the cosigner the daemon froze the wallet: it refuses to sign for it
    /// from now on. No protocol runs; the notice is authenticated by the channel
    /// (the service party's pinned key) and bound to the run's session id.
    Freeze {
        /// When the daemon froze it (unix seconds); an owner's unfreeze names it.
        frozen_at: u64,
        /// Why, as given.
        reason: String,
    },
    /// Lifts a freeze the cosigner learnt of, with an owner's signed unfreeze
    /// decision (opaque here; the cosigner verifies it and its own cool-down).
    Unfreeze {
        /// The owner's signed decision.
        decision: Vec<u8>,
    },
    /// Rebuild `target`'s lost share, then complete refresh.
    Repair {
        /// The party whose share is rebuilt.
        target: Role,
        /// The wallet address the rebuilt share must belong to.
        expected_address: String,
    },
}

/// The plan of one run: what every participant agrees to before the first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlan {
    /// [`PLAN_VERSION`].
    pub version: u8,
    /// Fresh per run.
    pub session_id: SessionId,
    /// The wallet.
    pub wallet_id: WalletId,
    /// Who proposes the run.
    pub coordinator: Role,
    /// Who takes part, sorted by index.
    pub participants: Vec<Role>,
    /// What the run does.
    pub operation: Operation,
    /// The owner's signed authorization of this exact ceremony, opaque here: every
    /// participant decodes and verifies it against its own list of owners. Required
    /// for every run the recovery party coordinates except a DKG (see
    /// [`RunPlan::is_ceremony`]).
    pub authorization: Option<Vec<u8>>,
    /// The daemon's audit head when the service coordinates: the cosigner keeps the
    /// highest it has seen, an anchor outside the daemon's reach that
    /// `mandate audit verify --anchor` checks the trail against.
    pub audit_head: Option<AuditHead>,
    /// For a signing run the daemon does for an agent key: the owner-signed
    /// registration and the agent's signed request, opaque here; the cosigner
    /// verifies them itself before it signs.
    pub agent: Option<Vec<u8>>,
    /// For a signing run: the child key of the wallet's key that signs (BIP-32
    /// non-hardened derivation of every party's share, no new DKG): a subaccount.
    /// Each party derives its own share's child; a party given another index than its
    /// peers produces nothing that verifies.
    pub derivation: Option<u32>,
}

/// The last audit record's sequence number and hash, as the service shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number.
    pub seq: u64,
    /// The record's SHA-256 hash.
    pub hash: [u8; 32],
}

impl RunPlan {
    /// A new plan with a fresh session id. The coordinator is the recovery party if
    /// it takes part, otherwise the service.
    pub fn new(wallet_id: WalletId, mut participants: Vec<Role>, operation: Operation) -> Result<Self> {
        participants.sort();
        participants.dedup();
        let coordinator = if participants.contains(&Role::Recovery) { Role::Recovery } else { Role::Service };
        let plan = RunPlan {
            version: PLAN_VERSION,
            session_id: SessionId::random(&mut rand_core::OsRng),
            wallet_id,
            coordinator,
            participants,
            operation,
            authorization: None,
            audit_head: None,
            agent: None,
            derivation: None,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// The same plan carrying the daemon's audit head.
    pub fn with_audit_head(mut self, head: Option<AuditHead>) -> Self {
        self.audit_head = head;
        self
    }

    /// The same plan carrying an agent's proof (see [`RunPlan::agent`]).
    pub fn with_agent(mut self, agent: Option<Vec<u8>>) -> Self {
        self.agent = agent;
        self
    }

    /// The same plan signing with the wallet's child key `derivation` (a subaccount).
    pub fn with_derivation(mut self, derivation: Option<u32>) -> Self {
        self.derivation = derivation;
        self
    }

    /// The same plan carrying the owner's ceremony authorization.
    pub fn authorized(mut self, authorization: Vec<u8>) -> Self {
        self.authorization = Some(authorization);
        self
    }

    /// Whether this run is a share ceremony that needs the owner's authorization:
    /// a refresh, a repair, or a signature with the recovery share. Each of these
    /// either moves shares or signs outside the daemon's policy, so no party takes
    /// part on the coordinator's word alone.
    pub fn is_ceremony(&self) -> bool {
        match self.operation {
            Operation::Refresh | Operation::Repair { .. } => true,
            Operation::Sign { .. } => self.coordinator == Role::Recovery,
            Operation::Dkg | Operation::Freeze { .. } | Operation::Unfreeze { .. } => false,
        }
    }

    /// Checks the plan's shape (participants fit the operation, coordinator rule).
    pub fn validate(&self) -> Result<()> {
        if self.version != PLAN_VERSION {
            return Err(MpcError::InvalidInput(format!("unsupported plan version {}", self.version)));
        }
        let sorted = self.participants.windows(2).all(|pair| matches!(pair, [a, b] if a < b));
        let expected = match self.operation {
            Operation::Sign { .. } | Operation::Freeze { .. } | Operation::Unfreeze { .. } => 2,
            _ => 3,
        };
        if !sorted || self.participants.len() != expected {
            return Err(MpcError::InvalidParticipants(format!(
                "{:?} needs {expected} distinct parties, got {:?}",
                self.operation_name(),
                self.participants
            )));
        }
        let coordinator = if self.participants.contains(&Role::Recovery) { Role::Recovery } else { Role::Service };
        if self.coordinator != coordinator {
            return Err(MpcError::InvalidParticipants(format!("{} may not coordinate this run", self.coordinator)));
        }
        match (self.derivation, &self.operation) {
            (None, _) => {}
            (Some(child), Operation::Sign { .. }) if child < crate::share::HARDENED => {}
            (Some(child), Operation::Sign { .. }) => {
                return Err(MpcError::InvalidInput(format!("child key {child} is hardened: only 0 to 2^31 - 1 derive")))
            }
            (Some(_), _) => {
                return Err(MpcError::InvalidInput(format!("a {} run has no child key", self.operation_name())))
            }
        }
        Ok(())
    }

    /// Short name of the operation, for logs.
    pub fn operation_name(&self) -> &'static str {
        match self.operation {
            Operation::Dkg => "dkg",
            Operation::Sign { .. } => "sign",
            Operation::Refresh => "refresh",
            Operation::Repair { .. } => "repair",
            Operation::Freeze { .. } => "freeze",
            Operation::Unfreeze { .. } => "unfreeze",
        }
    }

    /// Hash of the whole plan; the joining link must present the same.
    pub fn hash(&self) -> Result<[u8; 32]> {
        let bytes = postcard::to_allocvec(self).map_err(|e| MpcError::InvalidInput(format!("plan: {e}")))?;
        Ok(Sha256::digest(bytes).into())
    }

    fn needs_share(&self, me: Role) -> bool {
        match &self.operation {
            Operation::Dkg | Operation::Freeze { .. } | Operation::Unfreeze { .. } => false,
            Operation::Repair { target, .. } => *target != me,
            Operation::Sign { .. } | Operation::Refresh => true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Control {
    Propose(RunPlan),
    Join {
        session_id: SessionId,
        plan_hash: [u8; 32],
    },
    Accept,
    Refuse {
        code: String,
        message: String,
    },
    /// Sent by each participant after it has stored what the run produced; the
    /// coordinator reports success only when every participant has.
    Done {
        stored: bool,
        message: String,
    },
}

/// Why a party refuses a proposed run: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// Human explanation.
    pub message: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into() }
    }
}

impl From<MpcError> for Refusal {
    fn from(error: MpcError) -> Self {
        Refusal { code: error.code(), message: error.to_string() }
    }
}

/// What a run produced for this party.
pub enum RunOutput {
    /// A new or refreshed share to store (replacing the old one).
    Share(Box<KeyShare>),
    /// A notice (freeze, unfreeze) was taken into account; nothing to store.
    Noted,
    /// A verified signature over `digest`.
    Signature {
        /// The signature.
        sig: EcdsaSig,
        /// The digest this party computed from the payload.
        digest: [u8; 32],
    },
}

/// A listening party's decisions and storage.
pub trait PartyHandler: Send + Sync + 'static {
    /// This party's role.
    fn role(&self) -> Role;
    /// Checks a proposal before any protocol message. For a signing run, decodes the
    /// payload and returns the digest this party will sign (and reserves whatever
    /// its limits need).
    fn authorize(&self, plan: &RunPlan) -> std::result::Result<Option<[u8; 32]>, Refusal>;
    /// This party's share of `wallet`.
    fn share(&self, wallet: &WalletId) -> Result<Arc<KeyShare>>;
    /// The run succeeded: store a new share, commit a reservation.
    fn completed(&self, plan: &RunPlan, output: RunOutput) -> Result<()>;
    /// Called just before this party sends the message that lets another party
    /// finish a signature (see [`crate::protocol::sign`]): commit the accounting
    /// here. From this point the signature must be assumed to exist, so nothing
    /// committed here is rolled back by [`PartyHandler::failed`]. An error stops
    /// the run before that message leaves.
    fn commit(&self, plan: &RunPlan) -> std::result::Result<(), Refusal> {
        let _ = plan;
        Ok(())
    }
    /// The run failed: release a reservation that was not committed; record a ban
    /// the protocol demands.
    fn failed(&self, plan: &RunPlan, error: &MpcError);
    /// A proposal was refused before any protocol message (by the run checks or by
    /// [`PartyHandler::authorize`]): a party that keeps a record records it here.
    fn refused(&self, plan: &RunPlan, refusal: &Refusal) {
        let _ = (plan, refusal);
    }
}

/// A commit hook that commits nothing (runs whose party keeps no accounting).
pub fn no_commit() -> Result<()> {
    Ok(())
}

/// Runs `me`'s side of `plan` over an established transport. `commit` runs at a
/// signing run's point of no return (see [`crate::protocol::sign`]).
pub fn execute<T: Transport>(
    plan: &RunPlan,
    me: Role,
    transport: &mut T,
    share: Option<&KeyShare>,
    digest: Option<[u8; 32]>,
    commit: &mut dyn FnMut() -> Result<()>,
) -> Result<RunOutput> {
    let need_share =
        || share.ok_or_else(|| MpcError::InvalidInput(format!("{me} has no share for {}", plan.wallet_id)));
    if let Some(share) = share {
        share.check_not_banned(&plan.participants)?;
        if share.wallet_id() != &plan.wallet_id || share.role() != me {
            return Err(MpcError::InvalidInput("share does not belong to this run".into()));
        }
    }
    match &plan.operation {
        Operation::Dkg => protocol::dkg(transport, me, plan.session_id, &plan.wallet_id)
            .map(|share| RunOutput::Share(Box::new(share))),
        Operation::Sign { .. } => {
            let digest = digest.ok_or_else(|| MpcError::InvalidInput("no digest computed for signing".into()))?;
            let share = need_share()?;
            let child = plan.derivation.map(|index| share.derive_child(index)).transpose()?;
            let share = child.as_ref().unwrap_or(share);
            let sig = protocol::sign(transport, share, plan.session_id, &plan.participants, &digest, commit)?;
            Ok(RunOutput::Signature { sig, digest })
        }
        Operation::Refresh => {
            protocol::refresh(transport, need_share()?, plan.session_id).map(|share| RunOutput::Share(Box::new(share)))
        }
        Operation::Repair { target, expected_address } => {
            let side = if *target == me {
                RepairSide::Target { wallet_id: plan.wallet_id.clone(), expected_address: expected_address.clone() }
            } else {
                RepairSide::Helper(need_share()?)
            };
            protocol::repair_and_refresh(transport, side, me, *target, plan.session_id)
                .map(|share| RunOutput::Share(Box::new(share)))
        }
        Operation::Freeze { .. } | Operation::Unfreeze { .. } => Ok(RunOutput::Noted),
    }
}

fn others_of(plan: &RunPlan, me: Role) -> Vec<Role> {
    plan.participants.iter().copied().filter(|role| *role != me).collect()
}

/// Coordinates `plan` as its coordinator: proposes it to every other participant
/// (the higher index first, so the lower one can join it), then runs the protocol.
/// `commit` runs at a signing run's point of no return, before this party's last
/// protocol message leaves (see [`crate::protocol::sign`]). Dials fresh connections
/// and closes them after the run; a party that coordinates many runs keeps them
/// open with a [`Coordinator`].
pub fn coordinate(
    identity: &IdentityKey,
    peers: &PeerBook,
    plan: &RunPlan,
    share: Option<&KeyShare>,
    digest: Option<[u8; 32]>,
    commit: &mut dyn FnMut() -> Result<()>,
) -> Result<RunOutput> {
    let mut transport = propose(identity, peers, plan)?;
    finish(plan, &mut transport, share, digest, commit)
}

/// Runs the protocol of an accepted plan as its coordinator and waits for every
/// other participant's completion notice.
fn finish(
    plan: &RunPlan,
    transport: &mut MeshTransport,
    share: Option<&KeyShare>,
    digest: Option<[u8; 32]>,
    commit: &mut dyn FnMut() -> Result<()>,
) -> Result<RunOutput> {
    let output = execute(plan, plan.coordinator, transport, share, digest, commit)?;
    for peer in others_of(plan, plan.coordinator) {
        let bytes = transport.recv(peer)?;
        match postcard::from_bytes::<Control>(&bytes) {
            Ok(Control::Done { stored: true, .. }) => {}
            Ok(Control::Done { stored: false, message }) => {
                return Err(MpcError::Refused { party: peer, code: ErrorCode::Internal, message })
            }
            _ => return Err(MpcError::Unexpected { culprit: peer, detail: "expected the completion notice".into() }),
        }
    }
    Ok(output)
}

/// The other participants in the order a coordinator proposes to them: the higher
/// index first, so the lower one can join it.
fn proposal_order(plan: &RunPlan) -> Vec<Role> {
    let mut others = others_of(plan, plan.coordinator);
    others.sort_by_key(|role| std::cmp::Reverse(role.index()));
    others
}

/// Dials `peer` at its pinned address and completes the authenticated handshake.
fn dial(identity: &IdentityKey, peers: &PeerBook, peer: Role) -> Result<Link> {
    let entry = peers.get(peer)?;
    let addr = entry.addr.as_deref().ok_or_else(|| MpcError::InvalidInput(format!("no address pinned for {peer}")))?;
    Ok(Link::new(SecureChannel::connect(addr, identity, peer, &entry.public_key)?))
}

/// What became of a proposal.
enum Offer {
    Accepted(Link),
    /// The peer refused; the link is still in step and can carry another run.
    Refused(Link, MpcError),
    /// The link failed (closed, timed out or out of step).
    Failed(MpcError),
}

/// Proposes `plan` over `link` and reads the answer.
fn offer(mut link: Link, plan: &RunPlan) -> Offer {
    let peer = link.peer();
    if let Err(error) = link.send_postcard(&Control::Propose(plan.clone())) {
        return Offer::Failed(error);
    }
    match link.recv_postcard::<Control>() {
        Ok(Control::Accept) => Offer::Accepted(link),
        Ok(Control::Refuse { code, message }) => {
            let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::RunRefused);
            Offer::Refused(link, MpcError::Refused { party: peer, code, message })
        }
        Ok(_) => Offer::Failed(MpcError::Unexpected { culprit: peer, detail: "expected accept or refuse".into() }),
        Err(error) => Offer::Failed(error),
    }
}

/// Proposes `plan` as its coordinator to every other participant (the higher index
/// first, so the lower one can join it) and returns the transport over the links
/// of those that accepted; the first refusal ends the run. [`coordinate`] runs the
/// protocol over it; on its own it is what any holder of the coordinator's identity
/// key can do, which is why every participant checks the plan itself.
pub fn propose(identity: &IdentityKey, peers: &PeerBook, plan: &RunPlan) -> Result<MeshTransport> {
    plan.validate()?;
    let mut links = Vec::new();
    for peer in proposal_order(plan) {
        match offer(dial(identity, peers, peer)?, plan) {
            Offer::Accepted(link) => links.push(link),
            Offer::Refused(_, error) | Offer::Failed(error) => return Err(error),
        }
    }
    Ok(MeshTransport::from_links(links))
}

/// Most idle links a [`Coordinator`] keeps open (each holds one of the listening
/// party's [`MAX_OPEN_CONNECTIONS`]).
const MAX_IDLE_LINKS: usize = 8;

/// A link idle for this long is closed rather than reused: the listening party
/// closes a connection that stays silent for 60 s (the channel's read timeout).
const MAX_LINK_IDLE: Duration = Duration::from_secs(30);

/// A coordinator that keeps its authenticated connections open between runs.
///
/// Each run still has a fresh session id, is proposed and checked like any other,
/// and carries at most one run at a time per connection; only the TCP connection and
/// the Noise handshake are reused. A connection that failed, carried a failed run or
/// was closed by the peer is dropped, and the next run dials a new one.
pub struct Coordinator {
    identity: IdentityKey,
    peers: PeerBook,
    idle: Mutex<Vec<Link>>,
}

impl Coordinator {
    /// A coordinator with `identity`, dialing the peers pinned in `peers`.
    pub fn new(identity: IdentityKey, peers: PeerBook) -> Self {
        Coordinator { identity, peers, idle: Mutex::new(Vec::new()) }
    }

    /// [`coordinate`] over this coordinator's open links.
    pub fn coordinate(
        &self,
        plan: &RunPlan,
        share: Option<&KeyShare>,
        digest: Option<[u8; 32]>,
        commit: &mut dyn FnMut() -> Result<()>,
    ) -> Result<RunOutput> {
        plan.validate()?;
        let mut links = Vec::new();
        for peer in proposal_order(plan) {
            links.push(self.proposed(plan, peer)?);
        }
        let mut transport = MeshTransport::from_links(links);
        let output = finish(plan, &mut transport, share, digest, commit)?;
        self.keep(transport.into_links());
        Ok(output)
    }

    /// A link to `peer` that accepted `plan`: an idle one if one still works,
    /// otherwise a new connection.
    fn proposed(&self, plan: &RunPlan, peer: Role) -> Result<Link> {
        while let Some(link) = self.idle_link(peer) {
            match offer(link, plan) {
                Offer::Accepted(link) => return Ok(link),
                Offer::Refused(link, error) => {
                    self.keep(vec![link]);
                    return Err(error);
                }
                // The peer closed it in the meantime. Had the proposal reached it,
                // its session id is spent there, and the next attempt is refused
                // as `SESSION_REUSED`: the run fails, it never happens twice.
                Offer::Failed(_) => continue,
            }
        }
        match offer(dial(&self.identity, &self.peers, peer)?, plan) {
            Offer::Accepted(link) => Ok(link),
            Offer::Refused(link, error) => {
                self.keep(vec![link]);
                Err(error)
            }
            Offer::Failed(error) => Err(error),
        }
    }

    fn idle_link(&self, peer: Role) -> Option<Link> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(index) = idle.iter().rposition(|link| link.peer() == peer) {
            let link = idle.swap_remove(index);
            if link.reusable(MAX_LINK_IDLE) {
                return Some(link);
            }
        }
        None
    }

    fn keep(&self, links: Vec<Link>) {
        let Ok(mut idle) = self.idle.lock() else { return };
        for link in links {
            if idle.len() < MAX_IDLE_LINKS {
                idle.push(link.rested());
            }
        }
    }
}

struct Pending {
    joiner: Role,
    plan_hash: [u8; 32],
    deliver: Sender<Link>,
}

struct Server<H: PartyHandler> {
    identity: IdentityKey,
    peers: PeerBook,
    handler: H,
    pending: Mutex<HashMap<SessionId, Pending>>,
    seen: Mutex<HashSet<SessionId>>,
}

/// Serves runs on `listener` forever, one thread per connection.
pub fn serve<H: PartyHandler>(listener: TcpListener, identity: IdentityKey, peers: PeerBook, handler: H) -> Result<()> {
    let server = Arc::new(Server {
        identity,
        peers,
        handler,
        pending: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashSet::new()),
    });
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // Bounded: a peer (or anyone who can reach the port: the handshake comes
        // first) cannot make this party hold an unbounded number of threads.
        if open.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= MAX_OPEN_CONNECTIONS {
            open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!("{}: refusing a connection: {MAX_OPEN_CONNECTIONS} are open", server.handler.role());
            drop(stream);
            continue;
        }
        let (worker, still_open) = (server.clone(), open.clone());
        let spawned = std::thread::Builder::new().spawn(move || {
            if let Err(error) = worker.handle(stream) {
                tracing::warn!("{}: connection ended: {} ({})", worker.handler.role(), error, error.code());
            }
            still_open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
        if spawned.is_err() {
            open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!("{}: could not start a connection thread", server.handler.role());
        }
    }
    Ok(())
}

/// Most connections a listening party serves at once; more are closed unanswered.
pub const MAX_OPEN_CONNECTIONS: usize = 64;

fn refuse(link: &mut Link, refusal: &Refusal) -> Result<()> {
    link.send_postcard(&Control::Refuse { code: refusal.code.as_str().into(), message: refusal.message.clone() })
}

impl<H: PartyHandler> Server<H> {
    /// Serves one connection: a join, or one proposal after another (a coordinator
    /// keeps its connection open between runs; each run is checked on its own).
    fn handle(&self, stream: std::net::TcpStream) -> Result<()> {
        let mut link = Link::new(SecureChannel::accept(stream, &self.identity, |key| self.peers.role_of(key))?);
        let mut runs = 0u64;
        loop {
            let bytes = match link.recv() {
                Ok(bytes) => bytes,
                // The coordinator closed (or let idle) a connection between runs.
                Err(MpcError::PeerUnavailable { .. }) if runs > 0 => return Ok(()),
                Err(error) => return Err(error),
            };
            runs += 1;
            match decode_control::<Control>(link.peer(), &bytes)? {
                Control::Propose(plan) => match self.run_proposal(link, plan)? {
                    Some(next) => link = next,
                    None => return Ok(()),
                },
                Control::Join { session_id, plan_hash } if runs == 1 => return self.join(link, session_id, plan_hash),
                _ => {
                    return Err(MpcError::Unexpected {
                        culprit: link.peer(),
                        detail: "expected a proposal or a join".into(),
                    })
                }
            }
        }
    }

    fn check_proposal(&self, from: Role, plan: &RunPlan) -> std::result::Result<Option<Arc<KeyShare>>, Refusal> {
        let me = self.handler.role();
        plan.validate()?;
        if plan.coordinator != from {
            return Err(MpcError::WrongSender { culprit: from, claimed: plan.coordinator }.into());
        }
        if !plan.participants.contains(&me) {
            return Err(Refusal::new(ErrorCode::InvalidInput, format!("{me} is not a participant")));
        }
        if plan.is_ceremony() && plan.authorization.is_none() {
            return Err(Refusal::new(
                ErrorCode::CeremonyUnauthorized,
                format!(
                    "a {} run coordinated by {} needs an owner's signed authorization of the exact plan",
                    plan.operation_name(),
                    plan.coordinator
                ),
            ));
        }
        let fresh = self.seen.lock().map_err(|_| Refusal::new(ErrorCode::Internal, "lock"))?.insert(plan.session_id);
        if !fresh {
            return Err(Refusal::new(
                ErrorCode::SessionReused,
                format!("session {} was already used", plan.session_id.to_hex()),
            ));
        }
        let share = if plan.needs_share(me) {
            let share = self.handler.share(&plan.wallet_id)?;
            share.check_not_banned(&plan.participants)?;
            Some(share)
        } else {
            None
        };
        Ok(share)
    }

    /// Runs one proposal; returns the coordinator's link when it is still in step
    /// for another run (after a refusal or a completed run).
    fn run_proposal(&self, mut link: Link, plan: RunPlan) -> Result<Option<Link>> {
        let me = self.handler.role();
        let from = link.peer();
        let checked = self.check_proposal(from, &plan).and_then(|share| Ok((share, self.handler.authorize(&plan)?)));
        let (share, digest) = match checked {
            Ok(accepted) => accepted,
            Err(refusal) => {
                self.handler.refused(&plan, &refusal);
                refuse(&mut link, &refusal)?;
                return Ok(Some(link));
            }
        };
        let result = self.connect_and_execute(link, &plan, share.as_deref(), digest);
        match result {
            Ok((mut transport, output)) => {
                let stored = self.handler.completed(&plan, output);
                let notice = Control::Done {
                    stored: stored.is_ok(),
                    message: stored.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                };
                let bytes = postcard::to_allocvec(&notice).map_err(|e| MpcError::InvalidInput(e.to_string()))?;
                transport.send(plan.coordinator, bytes)?;
                stored?;
                Ok(transport.into_links().into_iter().find(|link| link.peer() == plan.coordinator))
            }
            Err(error) => {
                self.handler.failed(&plan, &error);
                tracing::warn!(
                    "{me}: {} run {} failed: {error} ({})",
                    plan.operation_name(),
                    plan.session_id.to_hex(),
                    error.code()
                );
                Err(error)
            }
        }
    }

    fn connect_and_execute(
        &self,
        mut link: Link,
        plan: &RunPlan,
        share: Option<&KeyShare>,
        digest: Option<[u8; 32]>,
    ) -> Result<(MeshTransport, RunOutput)> {
        let me = self.handler.role();
        let plan_hash = plan.hash()?;
        let mut links = Vec::new();
        let mut waiting = None;
        for other in others_of(plan, me).into_iter().filter(|role| *role != plan.coordinator) {
            if me.index() < other.index() {
                let entry = self.peers.get(other)?;
                let addr = entry
                    .addr
                    .as_deref()
                    .ok_or_else(|| MpcError::InvalidInput(format!("no address pinned for {other}")))?;
                let mut joined = Link::new(SecureChannel::connect(addr, &self.identity, other, &entry.public_key)?);
                joined.send_postcard(&Control::Join { session_id: plan.session_id, plan_hash })?;
                match joined.recv_postcard::<Control>()? {
                    Control::Accept => links.push(joined),
                    Control::Refuse { code, message } => {
                        let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::RunRefused);
                        let _ = refuse(&mut link, &Refusal::new(code, message.clone()));
                        return Err(MpcError::Refused { party: other, code, message });
                    }
                    _ => return Err(MpcError::Unexpected { culprit: other, detail: "expected accept".into() }),
                }
            } else {
                let (deliver, receive) = channel();
                self.pending
                    .lock()
                    .map_err(|_| MpcError::Io("lock".into()))?
                    .insert(plan.session_id, Pending { joiner: other, plan_hash, deliver });
                waiting = Some((other, receive));
            }
        }
        link.send_postcard(&Control::Accept)?;
        links.push(link);
        if let Some((other, receive)) = waiting {
            let joined = receive.recv_timeout(Duration::from_secs(30)).map_err(|_| {
                if let Ok(mut pending) = self.pending.lock() {
                    pending.remove(&plan.session_id);
                }
                MpcError::PeerUnavailable {
                    peer: crate::error::Culprit::Party(other),
                    detail: "did not join within 30 s".into(),
                }
            })?;
            links.push(joined);
        }
        let mut transport = MeshTransport::from_links(links);
        let mut commit = || {
            self.handler.commit(plan).map_err(|refusal| MpcError::Refused {
                party: me,
                code: refusal.code,
                message: refusal.message,
            })
        };
        let output = execute(plan, me, &mut transport, share, digest, &mut commit)?;
        Ok((transport, output))
    }

    fn join(&self, mut link: Link, session_id: SessionId, plan_hash: [u8; 32]) -> Result<()> {
        let from = link.peer();
        let pending = self.pending.lock().map_err(|_| MpcError::Io("lock".into()))?.remove(&session_id);
        let Some(pending) = pending else {
            return refuse(&mut link, &Refusal::new(ErrorCode::WrongSession, "no run is waiting for this session"));
        };
        if pending.joiner != from || pending.plan_hash != plan_hash {
            return refuse(
                &mut link,
                &Refusal::new(ErrorCode::WrongSession, "the plan or the joining party does not match"),
            );
        }
        link.send_postcard(&Control::Accept)?;
        pending.deliver.send(link).map_err(|_| MpcError::Io("run thread gone".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan(operation: Operation, participants: Vec<Role>) -> RunPlan {
        RunPlan::new(WalletId::from_random([3; 12]), participants, operation).unwrap()
    }

    fn any_role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Service), Just(Role::Cosigner), Just(Role::Recovery)]
    }

    fn any_operation() -> impl Strategy<Value = Operation> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            Just(Operation::Dkg),
            (bytes(), proptest::option::of(bytes()))
                .prop_map(|(payload, approval)| Operation::Sign { payload, approval }),
            Just(Operation::Refresh),
            (any::<u64>(), "[a-z ]{0,20}").prop_map(|(frozen_at, reason)| Operation::Freeze { frozen_at, reason }),
            bytes().prop_map(|decision| Operation::Unfreeze { decision }),
            (any_role(), "0x[0-9a-f]{40}")
                .prop_map(|(target, expected_address)| Operation::Repair { target, expected_address }),
        ]
    }

    fn any_control() -> impl Strategy<Value = Control> {
        let plan = (
            any::<[u8; 32]>(),
            proptest::collection::vec(any_role(), 0..4),
            any_operation(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            any_role(),
        )
            .prop_map(|(sid, participants, operation, authorization, coordinator)| RunPlan {
                version: PLAN_VERSION,
                session_id: SessionId(sid),
                wallet_id: WalletId::from_random([9; 12]),
                coordinator,
                participants,
                operation,
                authorization,
                audit_head: Some(AuditHead { seq: sid[0].into(), hash: sid }),
                agent: None,
                derivation: (sid[1] % 3 == 0).then(|| u32::from_be_bytes([sid[2], sid[3], sid[4], sid[5]])),
            });
        prop_oneof![
            plan.prop_map(Control::Propose),
            (any::<[u8; 32]>(), any::<[u8; 32]>())
                .prop_map(|(sid, plan_hash)| Control::Join { session_id: SessionId(sid), plan_hash }),
            Just(Control::Accept),
            ("[A-Z_]{0,20}", ".{0,40}").prop_map(|(code, message)| Control::Refuse { code, message }),
            (any::<bool>(), ".{0,40}").prop_map(|(stored, message)| Control::Done { stored, message }),
        ]
    }

    proptest! {
        /// Run-control messages come from authenticated but untrusted peers: any
        /// bytes decode to an error or a value, never a panic, and a plan that
        /// decodes is only trusted after `validate`.
        #[test]
        fn control_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(Control::Propose(plan)) = postcard::from_bytes::<Control>(&bytes) {
                let _ = plan.validate();
                let _ = plan.hash();
            }
        }

        #[test]
        fn control_messages_round_trip_and_truncation_is_an_error(control in any_control()) {
            let bytes = postcard::to_allocvec(&control).unwrap();
            let back: Control = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(postcard::to_allocvec(&back).unwrap(), bytes.clone());
            for cut in 0..bytes.len() {
                prop_assert!(postcard::from_bytes::<Control>(&bytes[..cut]).is_err());
            }
        }

        /// Any change to a plan changes its hash (a joiner presents the hash).
        #[test]
        fn a_flipped_byte_changes_the_plan_hash(control in any_control(), flip in any::<usize>()) {
            if let Control::Propose(plan) = control {
                let mut bytes = postcard::to_allocvec(&plan).unwrap();
                let index = flip % bytes.len();
                bytes[index] ^= 0x01;
                if let Ok(other) = postcard::from_bytes::<RunPlan>(&bytes) {
                    prop_assert_ne!(other.hash().unwrap(), plan.hash().unwrap());
                }
            }
        }
    }

    /// A cosigner that notes freeze notices and nothing else.
    struct Noting;

    impl PartyHandler for Noting {
        fn role(&self) -> Role {
            Role::Cosigner
        }
        fn authorize(&self, _: &RunPlan) -> std::result::Result<Option<[u8; 32]>, Refusal> {
            Ok(None)
        }
        fn share(&self, _: &WalletId) -> Result<Arc<KeyShare>> {
            Err(MpcError::InvalidInput("no shares here".into()))
        }
        fn completed(&self, _: &RunPlan, _: RunOutput) -> Result<()> {
            Ok(())
        }
        fn failed(&self, _: &RunPlan, _: &MpcError) {}
    }

    /// A TCP relay in front of `target` that counts the connections it carries and
    /// can cut them all (as a peer restart or a network failure would).
    struct Relay {
        addr: String,
        accepted: Arc<std::sync::atomic::AtomicUsize>,
        open: Arc<Mutex<Vec<std::net::TcpStream>>>,
    }

    impl Relay {
        fn start(target: String) -> Relay {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let open = Arc::new(Mutex::new(Vec::new()));
            let (count, streams) = (accepted.clone(), open.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let client = client.unwrap();
                    let server = std::net::TcpStream::connect(&target).unwrap();
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    streams.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                    for (mut from, mut to) in
                        [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                    {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            });
            Relay { addr, accepted, open }
        }

        fn connections(&self) -> usize {
            self.accepted.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn cut(&self) {
            for stream in self.open.lock().unwrap().drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn freeze_plan(wallet: &WalletId) -> RunPlan {
        let notice = Operation::Freeze { frozen_at: 1, reason: "test".into() };
        RunPlan::new(wallet.clone(), vec![Role::Service, Role::Cosigner], notice).unwrap()
    }

    /// A coordinator carries run after run over one authenticated connection, each
    /// with its own session id (a reused one is refused, and the connection stays
    /// usable), and dials again when the connection is cut.
    #[test]
    fn a_coordinator_reuses_its_connection_and_redials_after_a_cut() {
        let (service_key, cosigner_key) = (IdentityKey::generate().unwrap(), IdentityKey::generate().unwrap());
        let (service_public, cosigner_public) = (service_key.public(), cosigner_key.public());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = Relay::start(listener.local_addr().unwrap().to_string());
        let cosigner_peers = PeerBook {
            peers: [(Role::Service, crate::net::PeerEntry { public_key: service_public, addr: None })].into(),
        };
        std::thread::spawn(move || serve(listener, cosigner_key, cosigner_peers, Noting));
        let service_peers = PeerBook {
            peers: [(
                Role::Cosigner,
                crate::net::PeerEntry { public_key: cosigner_public, addr: Some(relay.addr.clone()) },
            )]
            .into(),
        };
        let coordinator = Coordinator::new(service_key, service_peers);
        let wallet = WalletId::from_random([5; 12]);
        let run = |plan: &RunPlan| coordinator.coordinate(plan, None, None, &mut no_commit);

        for _ in 0..3 {
            assert!(matches!(run(&freeze_plan(&wallet)), Ok(RunOutput::Noted)));
        }
        assert_eq!(relay.connections(), 1, "three runs, one connection");

        let plan = freeze_plan(&wallet);
        assert!(matches!(run(&plan), Ok(RunOutput::Noted)));
        match run(&plan) {
            Err(MpcError::Refused { party: Role::Cosigner, code: ErrorCode::SessionReused, .. }) => {}
            other => panic!("a reused session id was answered with {:?}", other.map(|_| ())),
        }
        assert!(matches!(run(&freeze_plan(&wallet)), Ok(RunOutput::Noted)));
        assert_eq!(relay.connections(), 1, "a refusal keeps the connection in step");

        relay.cut();
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(run(&freeze_plan(&wallet)), Ok(RunOutput::Noted)));
        assert_eq!(relay.connections(), 2, "a cut connection is replaced");
    }

    #[test]
    fn only_a_signing_plan_names_a_child_key_and_never_a_hardened_one() {
        use Role::*;
        let sign = || Operation::Sign { payload: vec![1], approval: None };
        let signing = plan(sign(), vec![Service, Cosigner]);
        assert!(signing.clone().with_derivation(Some(5)).validate().is_ok());
        assert!(signing.clone().with_derivation(Some(crate::HARDENED - 1)).validate().is_ok());
        assert!(signing.with_derivation(Some(crate::HARDENED)).validate().is_err());
        let refresh = plan(Operation::Refresh, vec![Service, Cosigner, Recovery]);
        assert!(refresh.with_derivation(Some(0)).validate().is_err(), "a refresh moves the whole key tree");
    }

    #[test]
    fn ceremonies_are_the_recovery_coordinated_runs_that_move_shares_or_sign() {
        use Role::*;
        let repair = Operation::Repair { target: Recovery, expected_address: "0x00".into() };
        assert!(plan(repair, vec![Service, Cosigner, Recovery]).is_ceremony());
        assert!(plan(Operation::Refresh, vec![Service, Cosigner, Recovery]).is_ceremony());
        let sign = || Operation::Sign { payload: vec![1], approval: None };
        assert!(plan(sign(), vec![Service, Recovery]).is_ceremony());
        assert!(plan(sign(), vec![Cosigner, Recovery]).is_ceremony());
        assert!(!plan(sign(), vec![Service, Cosigner]).is_ceremony());
        assert!(!plan(Operation::Dkg, vec![Service, Cosigner, Recovery]).is_ceremony());
        // The coordinator is fixed by the participants: a recovery-coordinated plan
        // cannot pass as a service-coordinated one.
        let mut forged = plan(sign(), vec![Service, Recovery]);
        forged.coordinator = Service;
        assert!(forged.validate().is_err());
    }
}
