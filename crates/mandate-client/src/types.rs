//! The daemon's answers, as typed values (docs/API.md; the schemas of
//! `GET /v1/openapi.json`). Unknown fields are ignored, so a newer daemon that adds a
//! field still reads; an unknown enum value reads as `Other`.

use serde::Deserialize;
use serde_json::Value;

use crate::secret::Secret;

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The node's chain id.
    pub chain_id: u64,
}

/// `POST /v1/admin/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// The operator token (`mnd_admin_…`).
    pub token: Secret,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A wallet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Wallet {
    /// `wal_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// EIP-55 address.
    pub address: String,
    /// Chain id.
    pub chain_id: u64,
    /// Unix seconds.
    pub created_at: u64,
}

/// A wallet with its freeze (`GET /v1/wallets/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WalletDetail {
    /// The wallet.
    #[serde(flatten)]
    pub wallet: Wallet,
    /// The freeze, if the wallet is frozen.
    pub frozen: Option<WalletFreeze>,
}

/// A wallet's freeze.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WalletFreeze {
    /// The wallet.
    pub wallet_id: String,
    /// Unix seconds.
    pub frozen_at: u64,
    /// `operator`, `operator:key:<id>` or `agent:<session id>`.
    pub frozen_by: String,
    /// Why.
    pub reason: String,
}

/// The answer to a freeze.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FreezeResult {
    /// The wallet.
    pub wallet_id: String,
    /// The freeze in force (the first one if it was frozen already).
    pub frozen: WalletFreeze,
    /// False: it was frozen already.
    pub newly_frozen: bool,
    /// `notified`, or why the cosigner could not be told.
    pub cosigner: String,
}

/// A wallet's balance (`GET /v1/wallets/{id}/balance`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "asset", rename_all = "snake_case")]
pub enum Balance {
    /// The native coin.
    Native(NativeBalance),
    /// An ERC-20 token.
    Token(TokenBalance),
}

/// A native balance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NativeBalance {
    /// The wallet.
    pub wallet_id: String,
    /// Its address.
    pub address: String,
    /// Chain id.
    pub chain_id: u64,
    /// Wei, decimal.
    pub balance_wei: String,
    /// Ether, decimal.
    pub balance: String,
}

/// A token balance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenBalance {
    /// The wallet.
    pub wallet_id: String,
    /// Its address.
    pub address: String,
    /// Chain id.
    pub chain_id: u64,
    /// The token contract (checksummed).
    pub token: String,
    /// What the contract calls itself: untrusted.
    pub token_symbol: String,
    /// The contract's decimals.
    pub decimals: u8,
    /// Base units, decimal.
    pub balance_base: String,
    /// Whole tokens, decimal.
    pub balance: String,
}

/// The current policy (`GET /v1/wallets/{id}/policy`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PolicyShown {
    /// The wallet.
    pub wallet_id: String,
    /// Version, counting uploads.
    pub version: u64,
    /// The document's hash.
    pub hash: String,
    /// The document (docs/POLICY.md).
    pub document: Value,
}

/// A stored policy version (`PUT /v1/wallets/{id}/policy`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolicyVersion {
    /// The wallet.
    pub wallet_id: String,
    /// The new version.
    pub version: u64,
    /// Its hash.
    pub hash: String,
}

/// A policy's version and hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolicyRef {
    /// Version.
    pub version: u64,
    /// Hash.
    pub hash: String,
}

/// `GET /v1/wallets/{id}/policy/summary`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PolicySummary {
    /// The wallet.
    pub wallet_id: String,
    /// The policy in force; `None`: everything is denied.
    pub policy: Option<PolicyRef>,
    /// The freeze, if any.
    pub frozen: Option<WalletFreeze>,
    /// The rules as written.
    pub rules: Option<Vec<Value>>,
    /// Every window's budget now.
    pub budgets: Vec<Budget>,
    /// A note for a person.
    pub note: String,
}

/// A rolling window's budget.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Budget {
    /// The rule.
    pub rule_id: String,
    /// `native`, a token symbol, `usd` or `count`.
    pub unit: String,
    /// The window.
    pub window_secs: u64,
    /// The cap.
    pub limit: String,
    /// Used in the window.
    pub used: String,
    /// Left in the window.
    pub remaining: String,
    /// When the oldest spend leaves the window.
    pub frees_at: Option<u64>,
}

/// A policy decision (docs/POLICY.md §1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Decision {
    /// `allow` or `deny`.
    pub verdict: String,
    /// `instant`, `notify`, `delay` or `approval`.
    pub tier: String,
    /// The delay, in the `delay` tier.
    #[serde(default)]
    pub delay_secs: Option<u64>,
    /// The refusal's code.
    #[serde(default)]
    pub code: Option<String>,
    /// The deciding rule.
    pub rule_id: String,
    /// Why.
    pub reason: String,
    /// What was observed.
    #[serde(default)]
    pub observed: Option<String>,
    /// The limit it was held to.
    #[serde(default)]
    pub limit: Option<String>,
    /// The action's USD value, when priced.
    #[serde(default)]
    pub usd_value: Option<String>,
    /// The rules that set the tier.
    #[serde(default)]
    pub tier_rules: Option<Vec<String>>,
    /// The budgets after the action.
    #[serde(default)]
    pub budgets: Option<Vec<Budget>>,
    /// The policy's hash.
    pub policy_hash: String,
}

/// A transaction's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatus {
    /// Being signed.
    Reserved,
    /// Broadcast.
    Submitted,
    /// Mined.
    Confirmed,
    /// Reverted, or refused before broadcast.
    Failed,
    /// Waiting for an owner.
    PendingApproval,
    /// Waiting for its delay.
    Delayed,
    /// Approved, not yet run.
    Approved,
    /// Denied by an owner.
    Denied,
    /// The approval window closed.
    Expired,
    /// Cancelled before it ran.
    Cancelled,
    /// A state this client does not know.
    #[serde(other)]
    Other,
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Transaction {
    /// `tx_…`.
    pub id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The transaction's `to` (the token, for a token transfer).
    pub to: String,
    /// Value, wei.
    pub value_wei: String,
    /// Nonce, once assigned.
    pub nonce: Option<u64>,
    /// State.
    pub status: TransactionStatus,
    /// Hash, once signed.
    pub tx_hash: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The policy's decision.
    pub decision: Decision,
    /// Unix seconds.
    pub created_at: u64,
    /// `native_transfer`, `token_transfer`, `token_approve` or `contract_call`.
    pub kind: String,
    /// Calldata, `0x…`.
    pub data: String,
    /// `native` or the token address.
    pub asset: String,
    /// Base units moved.
    pub amount: String,
    /// Who receives it.
    pub recipient: Option<String>,
    /// Chain id (held items).
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// The approval window's end (held items).
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// When a delayed item runs.
    #[serde(default)]
    pub execute_after: Option<u64>,
    /// Gas limit (held items).
    #[serde(default)]
    pub gas_limit: Option<u64>,
    /// Fee cap (held items).
    #[serde(default)]
    pub max_fee_per_gas: Option<String>,
}

/// A send held for an owner or a delay (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeldTransaction {
    /// `tx_…`.
    pub id: String,
    /// `pending_approval` or `delayed`.
    pub status: TransactionStatus,
    /// Why it is held.
    pub reason: Option<String>,
    /// The approval window's end.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// When a delayed item runs.
    #[serde(default)]
    pub execute_after: Option<u64>,
    /// The rules that set the tier.
    pub tier_rules: Option<Vec<String>>,
    /// The transaction.
    pub transaction: Transaction,
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The transaction record: signed and broadcast; or, for a replay
    /// ([`SendResponse::replayed`]), the first request's record in its current state.
    Sent(Box<Transaction>),
    /// Held for an owner or a delay; poll [`crate::Client::transaction`].
    Held(Box<HeldTransaction>),
}

/// A send's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResponse {
    /// The transaction, or the held item.
    pub result: SendResult,
    /// The `Idempotency-Key` sent: the same key again returns this transaction.
    pub idempotency_key: String,
    /// The daemon answered from an earlier request with the same key.
    pub replayed: bool,
}

impl SendResponse {
    /// The transaction's id.
    pub fn id(&self) -> &str {
        match &self.result {
            SendResult::Sent(tx) => &tx.id,
            SendResult::Held(held) => &held.id,
        }
    }
}

/// An action as the policy judged it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A native transfer.
    NativeTransfer {
        /// Recipient.
        to: String,
        /// Ether.
        amount: String,
        /// Wei.
        amount_wei: String,
    },
    /// An ERC-20 transfer.
    TokenTransfer {
        /// The token.
        token: String,
        /// Symbol or address.
        asset: String,
        /// `transferFrom`'s owner.
        from: Option<String>,
        /// Recipient.
        to: String,
        /// Whole tokens.
        amount: String,
        /// Base units.
        amount_base: String,
    },
    /// An ERC-20 approval.
    TokenApprove {
        /// The token.
        token: String,
        /// Symbol or address.
        asset: String,
        /// The spender.
        spender: String,
        /// An unlimited allowance.
        unlimited: bool,
        /// Base units.
        amount_base: String,
        /// `increaseAllowance`.
        increase: bool,
    },
    /// Any other call.
    ContractCall {
        /// The contract.
        to: String,
        /// Value, wei.
        value_wei: String,
        /// 4-byte selector.
        selector: String,
        /// The registered function, if known.
        function: Option<String>,
        /// Its decoded arguments.
        args: Option<Vec<String>>,
    },
    /// EIP-712 typed data.
    TypedData {
        /// The primary type.
        primary_type: String,
        /// The domain's chain id.
        chain_id: Option<u64>,
        /// The domain's verifying contract.
        verifying_contract: Option<String>,
        /// The domain's name.
        domain_name: Option<String>,
        /// The digest signed.
        digest: String,
    },
    /// An EIP-191 message.
    PersonalMessage {
        /// Its length.
        bytes: u64,
        /// The text, if UTF-8.
        text: Option<String>,
    },
    /// A bare hash.
    RawHash {
        /// The hash.
        hash: String,
    },
    /// A kind this client does not know.
    #[serde(other)]
    Other,
}

/// An `eth_call` simulation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Simulation {
    /// It did not revert.
    pub success: bool,
    /// The revert reason.
    #[serde(default)]
    pub revert_reason: Option<String>,
}

/// A policy evaluation or dry run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Evaluation {
    /// The action.
    pub action: Action,
    /// The decision the real request would get.
    pub decision: Decision,
    /// Estimated gas (transactions).
    #[serde(default)]
    pub gas: Option<u64>,
    /// Fee cap (transactions).
    #[serde(default)]
    pub max_fee_per_gas: Option<String>,
    /// The simulation, when run.
    #[serde(default)]
    pub simulation: Option<Simulation>,
}

/// A signature (`sign-typed-data`, `sign-message`, `sign-hash`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SignatureResult {
    /// 65 bytes r‖s‖v, `0x…`.
    pub signature: String,
    /// The digest signed.
    pub digest: String,
    /// The signing address.
    pub address: String,
    /// The action.
    pub action: Action,
    /// The decision.
    pub decision: Decision,
}

/// An agent session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    /// `ses_…`.
    pub id: String,
    /// Its wallet.
    pub wallet_id: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Lifetime per renewal.
    pub ttl_secs: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// Never renewed past this.
    pub absolute_expires_at: u64,
    /// Renewals used.
    pub renewals: u64,
    /// Renewals allowed.
    pub max_renewals: u64,
    /// When it was revoked.
    pub revoked_at: Option<u64>,
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionCreated {
    /// The token (`mnd_sess_…`), shown once.
    pub token: Secret,
    /// The session.
    pub session: Session,
}

/// `GET /v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CurrentSession {
    /// The calling session.
    pub session: Session,
    /// The highest band its scopes grant; `None`: `freeze` only.
    pub band: Option<String>,
}

/// `POST /v1/sessions/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionRevoked {
    /// True.
    pub revoked: bool,
    /// The session.
    pub session_id: String,
    /// Held transactions cancelled with it.
    pub cancelled: Vec<String>,
}

/// The transaction fields an owner's decision binds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApprovedTx {
    /// Chain id.
    pub chain_id: u64,
    /// `to`.
    pub to: String,
    /// Value, `0x` hex.
    pub value: String,
    /// The calldata's hash.
    pub data_hash: String,
    /// The calldata's length.
    pub data_len: u64,
    /// Highest gas limit.
    pub gas_limit_max: u64,
    /// Highest fee cap.
    pub max_fee_per_gas_max: u64,
}

/// A decision an owner signs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OwnerDecisionText {
    /// `approve`, `deny` or `unfreeze`.
    pub action: String,
    /// The held item, or `freeze:<frozen_at>`.
    pub item: String,
    /// The wallet.
    pub wallet: String,
    /// The transaction, for approvals.
    #[serde(default)]
    pub tx: Option<ApprovedTx>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A held transaction and the texts its owners sign.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApprovalItem {
    /// The transaction.
    pub transaction: Transaction,
    /// The approve text.
    #[serde(default)]
    pub approve_message: Option<String>,
    /// The approve decision.
    #[serde(default)]
    pub approve_decision: Option<OwnerDecisionText>,
    /// The deny text.
    #[serde(default)]
    pub deny_message: Option<String>,
    /// The deny decision.
    #[serde(default)]
    pub deny_decision: Option<OwnerDecisionText>,
}

/// An audit record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditRecord {
    /// Sequence number from 1.
    pub seq: u64,
    /// Unix seconds.
    pub ts: u64,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub event: String,
    /// The wallet.
    #[serde(default)]
    pub wallet: Option<String>,
    /// The decision.
    #[serde(default)]
    pub decision: Option<Value>,
    /// The policy's hash.
    #[serde(default)]
    pub policy_hash: Option<String>,
    /// Anything else.
    #[serde(default)]
    pub details: Value,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// What is wrong with the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditProblem {
    /// `edited`, `cut`, `anchor_mismatch`, …
    pub kind: String,
    /// The record.
    pub seq: u64,
    /// For a person.
    pub message: String,
}

/// `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditVerify {
    /// The trail is whole.
    pub ok: bool,
    /// Records checked (when whole).
    #[serde(default)]
    pub records: Option<u64>,
    /// The problem (when not).
    #[serde(default)]
    pub problem: Option<AuditProblem>,
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Webhook {
    /// `whk_…`.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// Which events.
    pub events: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
}

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookCreated {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The HMAC secret, shown once.
    pub secret: Secret,
}

/// `DELETE /v1/webhooks/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookRemoved {
    /// The webhook.
    pub id: String,
    /// It existed.
    pub removed: bool,
}

/// One delivery of an event to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Delivery {
    /// Its number.
    pub id: u64,
    /// The webhook.
    pub webhook_id: String,
    /// The event's id.
    pub event_id: String,
    /// The event.
    pub event: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Next try.
    pub next_attempt_at: u64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// The last HTTP status.
    pub last_status: Option<u16>,
    /// The last error.
    pub last_error: Option<String>,
    /// When delivered.
    pub delivered_at: Option<u64>,
}

/// `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeliveryList {
    /// The webhook.
    pub webhook: Webhook,
    /// Newest first.
    pub deliveries: Vec<Delivery>,
}

/// An operator key's record (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OperatorKey {
    /// `opk_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `admin`, `read`, `freeze`.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Who created it.
    pub created_by: String,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Unix seconds (updated at most once a minute).
    pub last_used_at: Option<u64>,
    /// Unix seconds.
    pub revoked_at: Option<u64>,
}

/// `POST /v1/operator-keys`.
#[derive(Debug, Clone, Deserialize)]
pub struct OperatorKeyCreated {
    /// The key (`mnd_op_…`), shown once.
    pub key: Secret,
    /// Its record.
    pub operator_key: OperatorKey,
}

/// `POST /v1/operator-keys/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OperatorKeyRevoked {
    /// True when this call revoked it (false: it was revoked before).
    pub revoked: bool,
    /// The key.
    pub key_id: String,
    /// The keys revoked with it: those it created, and theirs.
    #[serde(default)]
    pub also_revoked: Vec<String>,
    /// The sessions any of those keys created, revoked with them.
    #[serde(default)]
    pub sessions_revoked: Vec<String>,
    /// The transactions those sessions left held, cancelled.
    #[serde(default)]
    pub cancelled: Vec<String>,
}

/// Lists: `{"<key>": [...]}`.
#[derive(Deserialize)]
pub(crate) struct Wallets {
    pub(crate) wallets: Vec<Wallet>,
}

#[derive(Deserialize)]
pub(crate) struct Transactions {
    pub(crate) transactions: Vec<Transaction>,
}

#[derive(Deserialize)]
pub(crate) struct Sessions {
    pub(crate) sessions: Vec<Session>,
}

#[derive(Deserialize)]
pub(crate) struct Held {
    pub(crate) held: Vec<ApprovalItem>,
}

#[derive(Deserialize)]
pub(crate) struct FreezeAll {
    pub(crate) wallets: Vec<FreezeResult>,
}

#[derive(Deserialize)]
pub(crate) struct Records {
    pub(crate) records: Vec<AuditRecord>,
}

#[derive(Deserialize)]
pub(crate) struct Webhooks {
    pub(crate) webhooks: Vec<Webhook>,
}

#[derive(Deserialize)]
pub(crate) struct OperatorKeys {
    pub(crate) operator_keys: Vec<OperatorKey>,
}
