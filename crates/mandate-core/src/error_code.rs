//! Stable machine-readable error codes.
//!
//! A code, once published, never changes meaning. The REST envelope, the MCP tool
//! errors and the CLI's `--json` output all carry the same code and category, so an
//! agent can recover programmatically whatever surface it uses.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Broad class of an error: tells a caller what kind of reaction fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The request or input is malformed; fix it and try again.
    Validation,
    /// The caller or a peer could not prove who it is.
    Authentication,
    /// A rule (policy, cosigner limit, freeze) refused the request.
    Policy,
    /// A threshold-protocol run failed; the detail names the culprit party.
    Protocol,
    /// Stored secret material could not be opened.
    Storage,
    /// A party or resource could not be reached; the outcome may be retried.
    Unavailable,
    /// Something broke inside; the outcome is unknown.
    Internal,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($text:literal, $category:ident, $retryable:literal), )*) => {
        /// A stable error code. The text form (`as_str`) is what clients match on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable text of the code, e.g. `COSIGNER_FROZEN`.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// The category the code belongs to.
            pub const fn category(self) -> ErrorCategory {
                match self { $(ErrorCode::$variant => ErrorCategory::$category,)* }
            }

            /// Whether the same request may succeed if simply retried later.
            pub const fn retryable(self) -> bool {
                match self { $(ErrorCode::$variant => $retryable,)* }
            }

            /// The code for a stable text, if it is one of ours.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// Input could not be parsed or is out of range.
    InvalidInput => ("INVALID_INPUT", Validation, false),
    /// An unsigned transaction could not be decoded or is not an EIP-1559 transaction.
    InvalidTransaction => ("INVALID_TRANSACTION", Validation, false),
    /// A peer presented an identity key that is not the pinned one.
    PeerIdentityMismatch => ("PEER_IDENTITY_MISMATCH", Authentication, false),
    /// A secret file (key, share) is readable by group or others.
    InsecureFilePermissions => ("INSECURE_FILE_PERMISSIONS", Validation, false),
    /// A channel message failed authentication: it was altered in transit.
    MessageTampered => ("MESSAGE_TAMPERED", Protocol, false),
    /// A message was delivered a second time.
    MessageReplayed => ("MESSAGE_REPLAYED", Protocol, false),
    /// A message belongs to another protocol session.
    WrongSession => ("WRONG_SESSION", Protocol, false),
    /// A message claims a sender other than the authenticated peer.
    WrongSender => ("WRONG_SENDER", Protocol, false),
    /// A message arrived out of protocol order or is malformed.
    UnexpectedMessage => ("UNEXPECTED_MESSAGE", Protocol, false),
    /// The threshold protocol aborted; the detail names the culprit.
    ProtocolAborted => ("PROTOCOL_ABORTED", Protocol, true),
    /// A party was banned by the protocol and is excluded from every later run.
    PartyBanned => ("PARTY_BANNED", Protocol, false),
    /// A protocol session id was seen before.
    SessionReused => ("SESSION_REUSED", Protocol, false),
    /// The cosigner is frozen and signs nothing.
    CosignerFrozen => ("COSIGNER_FROZEN", Policy, false),
    /// The transaction exceeds the cosigner's per-transaction maximum.
    CosignerPerTxLimit => ("COSIGNER_PER_TX_LIMIT", Policy, false),
    /// The transaction would exceed the cosigner's daily maximum.
    CosignerDailyLimit => ("COSIGNER_DAILY_LIMIT", Policy, true),
    /// The cosigner has no limits configured for this wallet.
    CosignerNoLimits => ("COSIGNER_NO_LIMITS", Policy, false),
    /// The cosigner refuses calldata it cannot value (contract calls).
    CosignerCalldataRefused => ("COSIGNER_CALLDATA_REFUSED", Policy, false),
    /// A party refused the proposed run for a reason of its own.
    RunRefused => ("RUN_REFUSED", Policy, false),
    /// No key share is stored for this wallet and party.
    ShareNotFound => ("SHARE_NOT_FOUND", Storage, false),
    /// The passphrase does not open this share.
    ShareWrongPassphrase => ("SHARE_WRONG_PASSPHRASE", Storage, false),
    /// The share blob was altered.
    ShareTampered => ("SHARE_TAMPERED", Storage, false),
    /// The share blob belongs to another wallet or party.
    ShareWrongContext => ("SHARE_WRONG_CONTEXT", Storage, false),
    /// The share blob has a format version this build does not read.
    ShareUnsupportedVersion => ("SHARE_UNSUPPORTED_VERSION", Storage, false),
    /// A peer could not be reached or closed the connection.
    PeerUnavailable => ("PEER_UNAVAILABLE", Unavailable, true),
    /// A produced signature did not verify. Nothing is released.
    SignatureInvalid => ("SIGNATURE_INVALID", Internal, false),
    /// Unexpected internal failure; the outcome is unknown.
    Internal => ("INTERNAL", Internal, false),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ErrorCode::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown error code {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_upper_snake_and_parse_back() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(text.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{text}");
            assert_eq!(ErrorCode::parse(text), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        assert_eq!(ErrorCode::parse("NOT_A_CODE"), None);
    }
}
