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
    /// The caller is known but may not do this (scope, wallet, admin-only).
    Forbidden,
    /// A rule (policy, cosigner limit, freeze) refused the request.
    Policy,
    /// The named thing does not exist.
    NotFound,
    /// The request conflicts with existing state (a name taken, a key reused).
    Conflict,
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
    /// The wallet is frozen (emergency freeze): the daemon signs nothing for it.
    WalletFrozen => ("WALLET_FROZEN", Policy, false),
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
    /// The request body is not valid JSON or has unknown or missing fields.
    InvalidJson => ("INVALID_JSON", Validation, false),
    /// The request body is larger than the daemon accepts.
    BodyTooLarge => ("BODY_TOO_LARGE", Validation, false),
    /// An address is not 20 bytes of hex with a 0x prefix.
    InvalidAddress => ("INVALID_ADDRESS", Validation, false),
    /// A mixed-case address whose EIP-55 checksum is wrong (probably mistyped).
    InvalidAddressChecksum => ("INVALID_ADDRESS_CHECKSUM", Validation, false),
    /// An amount is not a plain non-negative decimal within range and precision.
    InvalidAmount => ("INVALID_AMOUNT", Validation, false),
    /// Both `amount` and `amount_wei` were given (or neither).
    AmountConflict => ("AMOUNT_CONFLICT", Validation, false),
    /// A policy document is invalid; the details name the JSON path.
    InvalidPolicy => ("INVALID_POLICY", Validation, false),
    /// The HTTP method is not supported on this path.
    MethodNotAllowed => ("METHOD_NOT_ALLOWED", Validation, false),
    /// No credentials, or a token the daemon does not know.
    Unauthenticated => ("UNAUTHENTICATED", Authentication, false),
    /// The master password is wrong.
    InvalidCredentials => ("INVALID_CREDENTIALS", Authentication, false),
    /// The session token expired (TTL or absolute lifetime).
    SessionExpired => ("SESSION_EXPIRED", Authentication, false),
    /// The session token was revoked.
    SessionRevoked => ("SESSION_REVOKED", Authentication, false),
    /// The session may not be renewed again.
    SessionRenewalExhausted => ("SESSION_RENEWAL_EXHAUSTED", Authentication, false),
    /// The session lacks the scope this call needs.
    ScopeMissing => ("SCOPE_MISSING", Forbidden, false),
    /// Only the operator may call this endpoint.
    AdminRequired => ("ADMIN_REQUIRED", Forbidden, false),
    /// The session is bound to another wallet.
    WalletNotPermitted => ("WALLET_NOT_PERMITTED", Forbidden, false),
    /// The policy refused the action; the details carry the decision.
    PolicyDenied => ("POLICY_DENIED", Policy, false),
    /// The fees the network asks for are above the daemon's fee cap.
    FeeCapExceeded => ("FEE_CAP_EXCEEDED", Policy, true),
    /// No such path.
    NotFound => ("NOT_FOUND", NotFound, false),
    /// No such wallet.
    WalletNotFound => ("WALLET_NOT_FOUND", NotFound, false),
    /// No such transaction.
    TransactionNotFound => ("TRANSACTION_NOT_FOUND", NotFound, false),
    /// No such session.
    SessionNotFound => ("SESSION_NOT_FOUND", NotFound, false),
    /// The wallet has no policy (so everything is denied).
    PolicyNotFound => ("POLICY_NOT_FOUND", NotFound, false),
    /// The name is taken.
    NameTaken => ("NAME_TAKEN", Conflict, false),
    /// The wallet is registered already.
    WalletExists => ("WALLET_EXISTS", Conflict, false),
    /// The idempotency key was used before with a different request.
    IdempotencyKeyReused => ("IDEMPOTENCY_KEY_REUSED", Conflict, false),
    /// The audit trail cannot be written, so nothing is signed (fail closed).
    AuditUnavailable => ("AUDIT_UNAVAILABLE", Unavailable, true),
    /// The EVM node could not be reached or answered nonsense.
    ChainUnavailable => ("CHAIN_UNAVAILABLE", Unavailable, true),
    /// The EVM node refused the transaction; it was not broadcast.
    ChainRejected => ("CHAIN_REJECTED", Validation, false),
    /// `eth_estimateGas` failed: the transaction would revert.
    GasEstimationFailed => ("GAS_ESTIMATION_FAILED", Validation, false),
    /// The node serves another chain than the wallet's.
    ChainMismatch => ("CHAIN_MISMATCH", Validation, false),
    /// A request names a chain the daemon does not serve (`--chain`).
    UnknownChain => ("UNKNOWN_CHAIN", Validation, false),
    /// An x402 resource's payment request is unusable: not x402 version 2, no `exact`
    /// scheme on a chain the daemon serves, a malformed header, a URL refused.
    X402Invalid => ("X402_INVALID", Validation, false),
    /// The x402 resource server refused the signed payment or did not settle it.
    X402PaymentFailed => ("X402_PAYMENT_FAILED", Conflict, false),
    /// The daemon serves several chains and the request names none.
    ChainRequired => ("CHAIN_REQUIRED", Validation, false),
    /// `dev fund` on a node that is not a local development chain (chain id 31337 or
    /// 1337 answering anvil's or hardhat's dev methods).
    NotADevChain => ("NOT_A_DEV_CHAIN", Forbidden, false),
    /// An outbound URL is plain HTTP to a non-local host.
    InsecureUrl => ("INSECURE_URL", Validation, false),
    /// `audit verify` found an edited, deleted or reordered record (the details name it).
    AuditChainBroken => ("AUDIT_CHAIN_BROKEN", Storage, false),
    /// Too many requests; retry after a pause.
    RateLimited => ("RATE_LIMITED", Unavailable, true),
    /// A USD rule needs a price that is missing or older than its maximum age.
    PriceUnavailable => ("PRICE_UNAVAILABLE", Policy, true),
    /// The policy requires a successful simulation and `eth_call` reverted.
    SimulationReverted => ("SIMULATION_REVERTED", Policy, false),
    /// The policy puts the action in the approval tier: an owner must approve it.
    ApprovalRequired => ("APPROVAL_REQUIRED", Policy, false),
    /// The policy puts the action in the delay tier: it runs only after its delay.
    DelayRequired => ("DELAY_REQUIRED", Policy, false),
    /// Calldata that does not decode (bad selector arguments, truncated words).
    InvalidCalldata => ("INVALID_CALLDATA", Validation, false),
    /// EIP-712 typed data that does not parse or hash.
    InvalidTypedData => ("INVALID_TYPED_DATA", Validation, false),
    /// A send was not confirmed (`confirm: true` is required by the MCP send tools).
    ConfirmationRequired => ("CONFIRMATION_REQUIRED", Validation, false),
    /// A token contract that does not answer as ERC-20 (`decimals`), or an unknown symbol.
    UnknownToken => ("UNKNOWN_TOKEN", Validation, false),
    /// The cosigner refuses this kind of payload (typed data, message, raw hash) for the wallet.
    CosignerPayloadRefused => ("COSIGNER_PAYLOAD_REFUSED", Policy, false),
    /// The cosigner needs an owner's signed approval for this transaction (above its `approval_above`).
    CosignerApprovalRequired => ("COSIGNER_APPROVAL_REQUIRED", Policy, false),
    /// The cosigner refused the attached owner approval (not an owner, bad signature, expired, used, other payload).
    CosignerApprovalInvalid => ("COSIGNER_APPROVAL_INVALID", Policy, false),
    /// The cosigner counted fewer distinct owners from its own list among the signatures
    /// than its `owner_threshold` for the wallet.
    CosignerQuorumNotMet => ("COSIGNER_QUORUM_NOT_MET", Policy, false),
    /// An agent registration signed by fewer distinct owners than the wallet's quorum.
    OwnerQuorumNotMet => ("OWNER_QUORUM_NOT_MET", Forbidden, false),
    /// The cosigner could not verify the agent key a transaction is signed for (its
    /// owner-signed registration, its signed request, or the request's match to the transaction).
    CosignerAgentRefused => ("COSIGNER_AGENT_REFUSED", Policy, false),
    /// An owner signature does not verify, is not by an owner of the wallet, or binds something else.
    OwnerSignatureInvalid => ("OWNER_SIGNATURE_INVALID", Authentication, false),
    /// The wallet has no owner registered, so nothing can be approved or unfrozen yet.
    NoOwner => ("NO_OWNER", Policy, false),
    /// The transaction is not waiting for this decision (already approved, denied, expired, sent or cancelled).
    NotPending => ("NOT_PENDING", Conflict, false),
    /// The approval window closed before the owner decided: the transaction expired, nothing was sent.
    ApprovalExpired => ("APPROVAL_EXPIRED", Conflict, false),
    /// The wallet is not frozen.
    NotFrozen => ("NOT_FROZEN", Conflict, false),
    /// The freeze cool-down has not passed yet.
    FreezeCooldown => ("FREEZE_COOLDOWN", Policy, true),
    /// A repair, refresh or recovery signing was proposed without an owner's signed authorization of the exact plan.
    CeremonyUnauthorized => ("CEREMONY_UNAUTHORIZED", Authentication, false),
    /// The owner's ceremony authorization does not verify, is not by an owner, expired, was used, or names another plan.
    CeremonyAuthorizationInvalid => ("CEREMONY_AUTHORIZATION_INVALID", Authentication, false),
    /// The cosigner's limits do not allow the transaction's chain.
    CosignerChainRefused => ("COSIGNER_CHAIN_REFUSED", Policy, false),
    /// The owner's tool refused to sign: the daemon's decision text, fields and data disagree.
    DecisionMismatch => ("DECISION_MISMATCH", Authentication, false),
    /// The owner's tool refused to sign: the decision's expiry is beyond the owner's bound.
    DecisionExpiryTooFar => ("DECISION_EXPIRY_TOO_FAR", Policy, false),
    /// A wallet never signs a message that is or begins with the owner-decision header.
    ReservedMessage => ("RESERVED_MESSAGE", Policy, false),
    /// An owner key that is the address of one of the daemon's own wallets.
    OwnerKeyIsWallet => ("OWNER_KEY_IS_WALLET", Validation, false),
    /// The request's `Host` is not a name the daemon answers to (DNS-rebinding protection).
    HostNotAllowed => ("HOST_NOT_ALLOWED", Forbidden, false),
    /// A signed agent request whose signature does not recover the agent it names
    /// (wrong key, or the method, path, body, wallet or nonce changed after signing).
    AgentSignatureInvalid => ("AGENT_SIGNATURE_INVALID", Authentication, false),
    /// No active agent with this address (never registered, revoked, or replaced).
    AgentUnknown => ("AGENT_UNKNOWN", Authentication, false),
    /// The agent's registration is past its `valid_until`.
    AgentExpired => ("AGENT_EXPIRED", Authentication, false),
    /// This agent used this nonce already: a replay.
    AgentNonceReplayed => ("AGENT_NONCE_REPLAYED", Authentication, false),
    /// The nonce is not above the smallest of the agent's 100 highest: too old to tell from a replay.
    AgentNonceTooOld => ("AGENT_NONCE_TOO_OLD", Authentication, false),
    /// The nonce (milliseconds) is more than two days before or one day after the daemon's clock.
    AgentNonceOutOfRange => ("AGENT_NONCE_OUT_OF_RANGE", Authentication, false),
    /// The wallet has as many named agents as it may (3).
    AgentLimitReached => ("AGENT_LIMIT_REACHED", Conflict, false),
    /// The database cannot be reached (PostgreSQL down or restarting): nothing was changed.
    DatabaseUnavailable => ("DATABASE_UNAVAILABLE", Unavailable, true),
}

impl ErrorCode {
    /// What the caller should do about it, in a few words.
    pub const fn required_action(self) -> &'static str {
        use ErrorCode::*;
        match self {
            CosignerFrozen => "unfreeze the wallet on the cosigner host",
            WalletFrozen => "do not retry: the wallet is frozen until an owner unfreezes it",
            CosignerPerTxLimit | CosignerDailyLimit => "send a smaller amount or wait for the daily window",
            PeerIdentityMismatch => "check the pinned keys (pair again with the right key)",
            ShareWrongPassphrase => "supply the right passphrase",
            PeerUnavailable => "check that the peer (daemon or cosigner) is running and reachable, then retry",
            InvalidInput | InvalidTransaction | InvalidJson | InvalidAddress | InvalidAmount | AmountConflict
            | InvalidPolicy | MethodNotAllowed => "fix the request",
            InvalidAddressChecksum => "check the recipient address: its EIP-55 checksum is wrong, maybe mistyped",
            BodyTooLarge => "send a smaller request body",
            Unauthenticated => {
                "send a valid token: an agent its session token (ask the operator for one), an operator an operator \
                 key or login token"
            }
            InvalidCredentials => "the operator must log in with the right credentials",
            SessionExpired | SessionRevoked | SessionRenewalExhausted => "ask the operator for a new session",
            ScopeMissing | AdminRequired | WalletNotPermitted => "use a token with the needed rights",
            PolicyDenied => "do not retry unchanged; change the action or ask the operator to change the policy",
            FeeCapExceeded => "retry when network fees fall",
            NotFound | WalletNotFound | TransactionNotFound | SessionNotFound | PolicyNotFound => {
                "check the id or path"
            }
            NameTaken | WalletExists => "choose another name",
            IdempotencyKeyReused => "use a new idempotency key for a different request",
            AuditUnavailable => "the operator must restore the audit trail's storage",
            ChainUnavailable => "check the EVM node, then retry",
            ChainRejected | GasEstimationFailed => "check the transaction (balance, recipient, amount)",
            ChainMismatch | InsecureUrl => "fix the daemon's --rpc-url",
            UnknownChain | ChainRequired => "name one of the chains the daemon serves (GET /v1/health lists them)",
            X402Invalid => "check the URL: the resource must ask for an x402 v2 `exact` payment on a served chain",
            X402PaymentFailed => {
                "see the message; the authorization may still settle until it expires (the spend counts)"
            }
            NotADevChain => {
                "fund the wallet with a real transfer: dev fund works only on a local anvil or hardhat chain"
            }
            RateLimited => "wait and retry",
            PriceUnavailable => "retry when the price source is fresh, or ask the operator to fix the price source",
            SimulationReverted => "do not retry unchanged: the call would revert (see the reason)",
            ApprovalRequired => "an owner must approve this action; nothing was signed",
            DelayRequired => "this action needs a delay; nothing was signed",
            CosignerApprovalRequired => "send it through the daemon so an owner approves it",
            OwnerQuorumNotMet => "have as many distinct owners as the wallet's quorum sign the same registration",
            CosignerQuorumNotMet => {
                "have more of the owners the cosigner's limits.toml lists sign the same decision (owner_threshold)"
            }
            CosignerAgentRefused => {
                "have an owner listed in the cosigner's limits.toml register the agent, and sign a new request"
            }
            CosignerApprovalInvalid | OwnerSignatureInvalid => {
                "sign the exact approval message with a registered owner key (mandate approve)"
            }
            NoOwner => "register an owner first (mandate owner add)",
            NotPending | ApprovalExpired => "look the transaction up; send it again if it is still wanted",
            NotFrozen => "none: the wallet is not frozen",
            CeremonyUnauthorized | CeremonyAuthorizationInvalid => {
                "have a registered owner sign the exact ceremony (mandate recovery … --owner-key FILE)"
            }
            CosignerChainRefused => {
                "ask the cosigner operator to allow this chain for the wallet (chains in limits.toml)"
            }
            FreezeCooldown => "wait until the cool-down has passed, then sign the unfreeze again",
            InvalidCalldata | InvalidTypedData | UnknownToken => "fix the request",
            ConfirmationRequired => "check the action, then confirm it (confirm: true in MCP, --yes or y in the CLI)",
            DecisionMismatch => "do not sign: the daemon's answer is inconsistent; investigate the daemon host",
            DecisionExpiryTooFar => "ask for a shorter approval window, or raise --max-expiry-secs if intended",
            ReservedMessage => "sign another message: owner-decision texts are never signed by a wallet",
            OwnerKeyIsWallet => "register a key the owner holds, not one of the daemon's wallets",
            CosignerPayloadRefused => "ask the cosigner operator to allow this payload kind for the wallet",
            AuditChainBroken => "investigate: compare the named record with backups; the trail was altered",
            HostNotAllowed => {
                "address the daemon by its listen address or localhost, or start it with --allowed-host NAME"
            }
            AgentSignatureInvalid => "sign the exact request (method, path with query, body, wallet, nonce)",
            AgentUnknown | AgentExpired => "have an owner register this agent key again (mandate agent register)",
            AgentNonceReplayed | AgentNonceTooOld | AgentNonceOutOfRange => {
                "sign again with a fresh nonce: the current time in milliseconds"
            }
            AgentLimitReached => "revoke an agent first, or register under an existing name to replace it",
            DatabaseUnavailable => "retry shortly (the same idempotency key for a send)",
            Internal | SignatureInvalid => "look the request up by id before retrying",
            _ => "none",
        }
    }
}

/// The error envelope every surface uses (REST, CLI `--json`, MCP):
/// `{"error": {"category", "code", "message", "required_action", "retryable", "retry_after", "details"}}`.
pub fn envelope(code: ErrorCode, message: &str, details: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"error": {
        "category": code.category(),
        "code": code.as_str(),
        "message": message,
        "required_action": code.required_action(),
        "retryable": code.retryable(),
        "retry_after": serde_json::Value::Null,
        "details": details,
    }})
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
            assert!(text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'), "{text}");
            assert!(text.starts_with(|c: char| c.is_ascii_uppercase()), "{text}");
            assert_eq!(ErrorCode::parse(text), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        assert_eq!(ErrorCode::parse("NOT_A_CODE"), None);
    }

    #[test]
    fn no_required_action_sends_an_agent_to_the_master_password() {
        // Agents read these through MCP; an agent never holds the master password.
        for code in ErrorCode::ALL {
            let action = code.required_action().to_lowercase();
            assert!(!action.contains("master password"), "{code}: {action}");
        }
        assert!(ErrorCode::Unauthenticated.required_action().contains("session token"));
    }
}
