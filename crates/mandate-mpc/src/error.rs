//! The crate's one error type.

use mandate_core::{ErrorCode, Role};

/// Result alias for this crate.
pub type Result<T, E = MpcError> = std::result::Result<T, E>;

/// Everything that can go wrong in a protocol run, on a channel or with a share.
///
/// Protocol errors name the culprit party where one can be identified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MpcError {
    /// A message belongs to another protocol session.
    #[error("message from {culprit} belongs to another session")]
    WrongSession {
        /// The party whose channel delivered it.
        culprit: Role,
    },
    /// A message for a round that was already received.
    #[error("message from {culprit} for round {round} was already received (replay)")]
    Replay {
        /// The party whose channel delivered it.
        culprit: Role,
        /// The protocol round.
        round: u8,
    },
    /// A message whose claimed sender is not the authenticated peer.
    #[error("message on {culprit}'s channel claims to come from {claimed}")]
    WrongSender {
        /// The authenticated peer that delivered it.
        culprit: Role,
        /// The sender it claimed.
        claimed: Role,
    },
    /// Out-of-order, misaddressed or undecodable message.
    #[error("unexpected message from {culprit}: {detail}")]
    Unexpected {
        /// The party whose channel delivered it.
        culprit: Role,
        /// What was wrong.
        detail: String,
    },
    /// The DKLs23 protocol aborted.
    #[error("protocol aborted ({culprit}): {reason}")]
    Aborted {
        /// The party the protocol blames, or `unknown`.
        culprit: Culprit,
        /// The protocol's reason.
        reason: String,
        /// Whether the protocol requires banning the culprit for good.
        ban: bool,
    },
    /// A party banned by an earlier run is part of this one.
    #[error("{party} is banned from this wallet's protocol runs")]
    Banned {
        /// The banned party.
        party: Role,
    },
    /// The set of participants does not fit the operation.
    #[error("invalid participants: {0}")]
    InvalidParticipants(String),
    /// A peer's identity key is not the pinned one.
    #[error("{culprit} presented identity key {presented}, which is not the pinned key")]
    PeerIdentity {
        /// The role the peer was expected to have (or `unknown`).
        culprit: Culprit,
        /// Hex of the presented public key.
        presented: String,
    },
    /// A channel frame failed authentication.
    #[error("message from {culprit} failed authentication: altered in transit")]
    Tampered {
        /// The peer the frame came from.
        culprit: Role,
    },
    /// A channel frame was delivered twice.
    #[error("message from {culprit} replayed on the channel (counter {counter}, expected {expected})")]
    ChannelReplay {
        /// The peer the frame came from.
        culprit: Role,
        /// Counter carried by the frame.
        counter: u64,
        /// Counter expected next.
        expected: u64,
    },
    /// A party refused the run.
    #[error("{party} refused: {code}: {message}")]
    Refused {
        /// The refusing party.
        party: Role,
        /// Its stable code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// A peer could not be reached, timed out or closed the connection.
    #[error("{peer} unavailable: {detail}")]
    PeerUnavailable {
        /// The peer.
        peer: Culprit,
        /// What happened.
        detail: String,
    },
    /// No share is stored for this wallet.
    #[error("no {role} share stored for {wallet}")]
    ShareNotFound {
        /// The wallet.
        wallet: String,
        /// The party looking.
        role: Role,
    },
    /// The passphrase does not open the share blob.
    #[error("wrong passphrase for this key share")]
    WrongPassphrase,
    /// The share blob was altered.
    #[error("key share blob is corrupted or was tampered with")]
    ShareTampered,
    /// The share blob belongs to another wallet or role.
    #[error("key share belongs to wallet {found_wallet} / {found_role}, expected {expected_wallet} / {expected_role}")]
    ShareWrongContext {
        /// Wallet named in the blob.
        found_wallet: String,
        /// Role named in the blob.
        found_role: String,
        /// Wallet the caller asked for.
        expected_wallet: String,
        /// Role the caller asked for.
        expected_role: Role,
    },
    /// The blob's version is not one this build reads.
    #[error("key share format version {0} is not supported")]
    UnsupportedVersion(u8),
    /// A produced signature did not verify; nothing is released.
    #[error("threshold signature failed verification")]
    SignatureInvalid,
    /// Invalid input from the local caller.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A secret file is readable by group or others.
    #[error("{0} is readable by group or others; run chmod 600 on it")]
    InsecurePermissions(String),
    /// Local IO failure (files).
    #[error("io: {0}")]
    Io(String),
}

/// A party that may or may not be identifiable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    /// A known party.
    Party(Role),
    /// Not attributable to a party.
    Unknown,
}

impl std::fmt::Display for Culprit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Culprit::Party(role) => write!(f, "{role}"),
            Culprit::Unknown => f.write_str("unknown party"),
        }
    }
}

impl MpcError {
    /// The stable error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MpcError::WrongSession { .. } => ErrorCode::WrongSession,
            MpcError::Replay { .. } | MpcError::ChannelReplay { .. } => ErrorCode::MessageReplayed,
            MpcError::WrongSender { .. } => ErrorCode::WrongSender,
            MpcError::Unexpected { .. } => ErrorCode::UnexpectedMessage,
            MpcError::Aborted { .. } => ErrorCode::ProtocolAborted,
            MpcError::Banned { .. } => ErrorCode::PartyBanned,
            MpcError::InvalidParticipants(_) | MpcError::InvalidInput(_) => ErrorCode::InvalidInput,
            MpcError::PeerIdentity { .. } => ErrorCode::PeerIdentityMismatch,
            MpcError::Tampered { .. } => ErrorCode::MessageTampered,
            MpcError::Refused { code, .. } => *code,
            MpcError::PeerUnavailable { .. } => ErrorCode::PeerUnavailable,
            MpcError::ShareNotFound { .. } => ErrorCode::ShareNotFound,
            MpcError::WrongPassphrase => ErrorCode::ShareWrongPassphrase,
            MpcError::ShareTampered => ErrorCode::ShareTampered,
            MpcError::ShareWrongContext { .. } => ErrorCode::ShareWrongContext,
            MpcError::UnsupportedVersion(_) => ErrorCode::ShareUnsupportedVersion,
            MpcError::SignatureInvalid => ErrorCode::SignatureInvalid,
            MpcError::InsecurePermissions(_) => ErrorCode::InsecureFilePermissions,
            MpcError::Io(_) => ErrorCode::Internal,
        }
    }

    /// The party to blame, where the error names one.
    pub fn culprit(&self) -> Option<Role> {
        match self {
            MpcError::WrongSession { culprit }
            | MpcError::Replay { culprit, .. }
            | MpcError::WrongSender { culprit, .. }
            | MpcError::Unexpected { culprit, .. }
            | MpcError::Tampered { culprit }
            | MpcError::ChannelReplay { culprit, .. } => Some(*culprit),
            MpcError::Aborted { culprit: Culprit::Party(role), .. }
            | MpcError::PeerIdentity { culprit: Culprit::Party(role), .. }
            | MpcError::PeerUnavailable { peer: Culprit::Party(role), .. } => Some(*role),
            MpcError::Banned { party } | MpcError::Refused { party, .. } => Some(*party),
            _ => None,
        }
    }
}
