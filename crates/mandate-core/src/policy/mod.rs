//! The policy engine: a versioned JSON document of ordered rules, evaluated on a
//! decoded [`Action`]. Default deny; rules are checked in order and the first violation
//! stops. Every kind of action needs a rule that permits it (a per-transaction cap for
//! transfers, a listed contract for calls, a spender list for approvals, a typed-data,
//! message or raw-hash rule for signatures).
//!
//! Pure: the caller passes the wallet's recent spends, prices, fees, the simulation
//! outcome and `now` in a [`Context`]; the same inputs always give the same
//! [`Decision`]. The rule catalogue with examples is `docs/POLICY.md`.

mod document;
mod evaluate;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

pub use crate::action::{Action, Asset};
use crate::ErrorCode;
pub use evaluate::{budgets, evaluate};

/// The policy document format version this build reads.
pub const POLICY_VERSION: u64 = 1;

/// Longest window a rule may look back: ten years.
pub const MAX_WINDOW_SECS: u64 = 10 * 366 * 24 * 3600;

/// Decimals of USD amounts inside the engine (micro-dollars).
pub const USD_DECIMALS: u8 = 6;

/// A policy document that failed validation, naming the JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// JSON path of the offending value, e.g. `$.rules[2].amount`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// A token the policy names, with its decimals (checked against the contract when the
/// daemon accepts the policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenSpec {
    /// The symbol the policy and requests use.
    pub symbol: String,
    /// The contract.
    pub address: Address,
    /// Its `decimals()`.
    pub decimals: u8,
}

/// Where the USD price of an asset comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceSource {
    /// A fixed price (micro-dollars per whole unit).
    Static {
        /// Price of one whole unit in micro-dollars.
        usd_micro: U256,
    },
    /// A Chainlink-style aggregator read with `latestRoundData`.
    Aggregator {
        /// The aggregator contract.
        address: Address,
        /// Older answers are refused.
        max_age_secs: u64,
    },
}

/// A price as read from its source: `answer / 10^decimals` dollars per whole unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceQuote {
    /// The answer.
    pub answer: U256,
    /// The answer's decimals.
    pub decimals: u8,
    /// When the source last updated it (unix seconds).
    pub updated_at: u64,
}

/// The tier an allowed action proceeds in; higher tiers need more from a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// At once.
    Instant,
    /// At once, and a notification is sent.
    Notify,
    /// Queued for a delay during which it can be cancelled.
    Delay,
    /// Waits for the owner's signed approval.
    Approval,
}

impl Tier {
    fn parse(text: &str) -> Option<Tier> {
        Some(match text {
            "instant" => Tier::Instant,
            "notify" => Tier::Notify,
            "delay" => Tier::Delay,
            "approval" => Tier::Approval,
            _ => return None,
        })
    }
}

/// What a threshold or cap is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Base units of one asset.
    Asset(Asset),
    /// Micro-dollars.
    Usd,
}

/// A comparison on one decoded argument of a contract call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgCondition {
    /// Argument position.
    pub index: usize,
    /// The comparison.
    pub op: ConditionOp,
}

/// Comparison operators on decoded arguments. Values are normalised at parse time to
/// the argument's ABI type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionOp {
    /// Equal to.
    Eq(ArgValue),
    /// One of.
    In(Vec<ArgValue>),
    /// At most (integers).
    Lte(ArgValue),
    /// At least (integers).
    Gte(ArgValue),
}

/// A condition operand, typed like the argument it compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArgValue {
    /// `address`.
    Address(Address),
    /// `uintN`.
    Uint(U256),
    /// `intN`.
    Int(alloy_primitives::I256),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `bytes` and `bytesN`.
    Bytes(Vec<u8>),
}

/// One function of an allowed contract.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedFunction {
    /// Parsed signature (also the ABI the decoder uses for this selector).
    pub function: crate::decode::Function,
    /// Conditions that must all hold.
    pub conditions: Vec<ArgCondition>,
}

/// One entry of a `typed_data` rule: every given field must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypedDataDomain {
    /// `domain.chainId`.
    pub chain_id: Option<u64>,
    /// `domain.verifyingContract`.
    pub verifying_contract: Option<Address>,
    /// `domain.name`.
    pub name: Option<String>,
    /// Allowed primary types (empty: any).
    pub primary_types: BTreeSet<String>,
}

/// A daily time window in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    /// IANA zone name, as written.
    pub zone_name: String,
    /// The zone.
    pub zone: jiff::tz::TimeZone,
    /// Allowed weekdays, Monday = 0.
    pub days: [bool; 7],
    /// Start minute of the day (inclusive).
    pub start_minute: u16,
    /// End minute of the day (exclusive); below `start_minute` wraps past midnight.
    pub end_minute: u16,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RuleKind {
    /// Largest amount of one action, in an asset's base units or in USD.
    MaxPerTx {
        /// What is measured.
        basis: Basis,
        /// The limit.
        limit: U256,
    },
    /// Largest total within a sliding window.
    RollingCap {
        /// What is measured.
        basis: Basis,
        /// Window length in seconds.
        window_secs: u64,
        /// The limit.
        limit: U256,
    },
    /// Tier thresholds: above each amount the action needs at least that tier.
    Tiers {
        /// What is measured.
        basis: Basis,
        /// `(threshold, tier)`, ascending.
        thresholds: Vec<(U256, Tier)>,
        /// Delay of the `delay` tier.
        delay_secs: u64,
        /// When set, the measure is this action plus what the wallet spent in the last
        /// `window_secs` (same basis), so splitting a payment does not dodge a tier.
        window_secs: Option<u64>,
    },
    /// Only these recipients.
    AllowRecipients {
        /// Allowed recipients.
        addresses: BTreeSet<Address>,
    },
    /// Never these recipients.
    DenyRecipients {
        /// Denied recipients.
        addresses: BTreeSet<Address>,
    },
    /// Token transfers and approvals only on these tokens.
    AllowTokens {
        /// Allowed token contracts.
        tokens: BTreeSet<Address>,
    },
    /// Contract calls only to these contracts and functions, with argument conditions.
    AllowContracts {
        /// Contract → selector → function.
        contracts: BTreeMap<Address, BTreeMap<[u8; 4], AllowedFunction>>,
    },
    /// ERC-20 approvals: spender list and amount cap.
    Erc20Approve {
        /// Only for this token (`None`: every token).
        token: Option<Address>,
        /// Allowed spenders.
        spenders: BTreeSet<Address>,
        /// Largest approval in base units (`None` only with `allow_unlimited`).
        max_amount: Option<U256>,
        /// Whether `U256::MAX` (unlimited) approvals pass.
        allow_unlimited: bool,
    },
    /// At most `max_count` transactions within a sliding window.
    Velocity {
        /// Window length in seconds.
        window_secs: u64,
        /// Count limit.
        max_count: u64,
    },
    /// Only within this time-of-day / weekday window.
    TimeWindow(Box<TimeWindow>),
    /// Only on these chains.
    AllowChains {
        /// Allowed chain ids.
        chain_ids: BTreeSet<u64>,
    },
    /// The first payment to an address never paid before needs at least `tier`.
    NewRecipient {
        /// The minimum tier.
        tier: Tier,
    },
    /// Gas and fee caps for transactions.
    GasCap {
        /// Largest gas limit.
        max_gas: Option<u64>,
        /// Largest `max_fee_per_gas` in wei.
        max_fee_per_gas: Option<u128>,
    },
    /// x402 payments: the hosts that may ask for one, a USD maximum per payment and a
    /// USD budget over x402 payments in a sliding window. The only rule that permits
    /// them; caps in the token and in USD count them as well.
    X402 {
        /// Allowed hosts (lower case; `*.example.com` also allows subdomains).
        hosts: Vec<String>,
        /// Largest USD value of one payment (micro-dollars).
        max_per_call_usd: Option<U256>,
        /// Largest USD total of x402 payments within `window_secs` (micro-dollars).
        budget_usd: Option<U256>,
        /// The budget's window, in seconds.
        window_secs: u64,
    },
    /// EIP-712 typed data: allowed domains and primary types.
    TypedData {
        /// Allowed entries; one must match.
        domains: Vec<TypedDataDomain>,
    },
    /// EIP-191 personal messages.
    PersonalMessage {
        /// `true`: messages matching `pattern` (or all, without one) are allowed;
        /// `false`: messages matching `pattern` are denied.
        allow: bool,
        /// Regular expression on the UTF-8 text.
        pattern: Option<Pattern>,
    },
    /// Allows signing bare hashes (off unless present).
    RawHash,
    /// Transactions must simulate (`eth_call`) without reverting.
    RequireSimulation,
}

/// A compiled regular expression (linear-time `regex-lite`), compared by its source.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex_lite::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// A rule with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique id, reported in decisions.
    pub id: String,
    /// What it checks.
    pub kind: RuleKind,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Tokens the policy names.
    pub tokens: Vec<TokenSpec>,
    /// USD price sources per asset.
    pub prices: BTreeMap<Asset, PriceSource>,
    /// Ordered rules.
    pub rules: Vec<Rule>,
    /// SHA-256 of the canonical document, recorded with every decision.
    pub hash: String,
}

/// A past or reserved transaction of the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    /// Unix seconds.
    pub at: u64,
    /// What it moved (a call without value moves native zero).
    pub asset: Asset,
    /// Amount in the asset's base units.
    pub amount: U256,
    /// Its USD value in micro-dollars when it was decided, if a price was known.
    pub usd_micro: Option<U256>,
    /// Whether it was an x402 payment (an `x402` rule's budget counts only those).
    pub x402: bool,
    /// The chain it was made on; `None`: the evaluated action's chain. A cap in an
    /// asset counts only that chain's spends (ETH on one chain is not ETH on another);
    /// a cap in USD and velocity count every chain's.
    pub chain_id: Option<u64>,
}

/// Fees of a transaction, as the daemon would sign it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// Gas limit.
    pub gas: u64,
    /// `max_fee_per_gas` in wei.
    pub max_fee_per_gas: u128,
}

/// The outcome of simulating a transaction with `eth_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimulationOutcome {
    /// It would succeed.
    Success,
    /// It would revert, with the decoded reason (untrusted text).
    Reverted(String),
}

/// Everything besides the policy and the action that a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Unix seconds.
    pub now: u64,
    /// The chain the transaction would go to.
    pub chain_id: u64,
    /// The wallet's transactions (committed and reserved) within the policy's lookback.
    pub history: &'a [Spend],
    /// Current price quotes per asset (only needed when USD rules apply).
    pub prices: &'a BTreeMap<Asset, PriceQuote>,
    /// Whether the wallet has paid the action's recipient before.
    pub recipient_seen: bool,
    /// Fees the transaction would be signed with (`None`: unknown).
    pub fees: Option<Fees>,
    /// The simulation outcome (`None`: not run).
    pub simulation: Option<&'a SimulationOutcome>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refused.
    Deny,
}

/// What kind of denial a [`Decision`] is: code that acts on a denial branches on this,
/// never on the reason's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenialKind {
    /// A rule (or the default deny) refused the action on what it and its context show.
    Rule,
    /// Only the transaction's fees were missing (its gas could not be estimated), so a
    /// `gas_cap` rule could not be checked: the caller reports why the fees are unknown.
    FeesUnknown,
}

/// What is left of one rolling window. Amounts are kept raw and formatted only when
/// the decision is serialized (formatting 256-bit numbers dominates evaluation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The rule.
    pub rule_id: String,
    /// `native`, a token symbol, `usd` or `count` (velocity).
    pub unit: String,
    /// Decimals of the amounts (0 for counts).
    pub decimals: u8,
    /// Window length.
    pub window_secs: u64,
    /// The limit.
    pub limit: U256,
    /// Used within the window before this action.
    pub used: U256,
    /// When the oldest counted entry leaves the window (unix seconds), if any.
    pub frees_at: Option<u64>,
}

impl Budget {
    /// Left before this action.
    pub fn remaining(&self) -> U256 {
        self.limit.saturating_sub(self.used)
    }

    fn show(&self, value: U256) -> String {
        let number = crate::amount::format_units(value, self.decimals);
        match self.unit.as_str() {
            "count" => number,
            "native" => format!("{number} ETH"),
            "usd" => format!("{number} USD"),
            unit => format!("{number} {unit}"),
        }
    }
}

impl Serialize for Budget {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Budget", 7)?;
        out.serialize_field("rule_id", &self.rule_id)?;
        out.serialize_field("unit", &self.unit)?;
        out.serialize_field("window_secs", &self.window_secs)?;
        out.serialize_field("limit", &self.show(self.limit))?;
        out.serialize_field("used", &self.show(self.used))?;
        out.serialize_field("remaining", &self.show(self.remaining()))?;
        out.serialize_field("frees_at", &self.frees_at)?;
        out.end()
    }
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// Tier for an allowed action.
    pub tier: Tier,
    /// The delay in seconds when the tier is `delay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_secs: Option<u64>,
    /// The error code of a denial (`POLICY_DENIED`, `PRICE_UNAVAILABLE`, `SIMULATION_REVERTED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// The rule that decided (`default_deny` when none permits the action, `allowed` when all passed).
    pub rule_id: String,
    /// Why.
    pub reason: String,
    /// The observed value the rule compared, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// The rule's limit, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The action's USD value, when a price was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd_value: Option<String>,
    /// Which rules raised the tier above `instant`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tier_rules: Vec<String>,
    /// Rolling windows that apply to the action and what is left of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
    /// Hash of the policy version that decided (`none` without a policy).
    pub policy_hash: String,
    /// The kind of a denial (`None` when allowed). Not serialized: the stored and shown
    /// decision keeps its shape.
    #[serde(skip)]
    pub denial: Option<DenialKind>,
}

impl Policy {
    /// Longest window any rule looks back, in seconds (what history the caller must supply).
    pub fn lookback_secs(&self) -> u64 {
        self.rules
            .iter()
            .map(|rule| match rule.kind {
                RuleKind::RollingCap { window_secs, .. }
                | RuleKind::Velocity { window_secs, .. }
                | RuleKind::X402 { window_secs, .. } => window_secs,
                RuleKind::Tiers { window_secs, .. } => window_secs.unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// The id of the `x402` rule that names `host` (`None`: no x402 payment to it can be
    /// allowed, so the daemon need not even fetch the resource).
    pub fn x402_rule_for(&self, host: &str) -> Option<&str> {
        self.rules.iter().find_map(|rule| match &rule.kind {
            RuleKind::X402 { hosts, .. } if hosts.iter().any(|allowed| x402_host_matches(allowed, host)) => {
                Some(rule.id.as_str())
            }
            _ => None,
        })
    }

    /// The ids of the policy's `x402` rules.
    pub fn x402_rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter(|rule| matches!(rule.kind, RuleKind::X402 { .. })).map(|rule| rule.id.as_str())
    }

    /// The token the policy calls `symbol` (case-sensitive) or whose address is `text`.
    pub fn token(&self, text: &str) -> Option<&TokenSpec> {
        find_token(&self.tokens, text)
    }

    /// Decimals of an asset, when known to the policy (native: 18).
    pub fn decimals(&self, asset: Asset) -> Option<u8> {
        match asset {
            Asset::Native => Some(18),
            Asset::Token(address) => self.tokens.iter().find(|t| t.address == address).map(|t| t.decimals),
        }
    }

    /// The display name of an asset: `native`, the token's symbol, or its address.
    pub fn asset_name(&self, asset: Asset) -> String {
        match asset {
            Asset::Native => "native".into(),
            Asset::Token(address) => match self.tokens.iter().find(|t| t.address == address) {
                Some(token) => token.symbol.clone(),
                None => address.to_checksum(None),
            },
        }
    }

    /// Whether any rule is measured in USD (so the caller must supply price quotes).
    pub fn uses_usd(&self) -> bool {
        self.rules.iter().any(|rule| {
            matches!(
                rule.kind,
                RuleKind::MaxPerTx { basis: Basis::Usd, .. }
                    | RuleKind::RollingCap { basis: Basis::Usd, .. }
                    | RuleKind::Tiers { basis: Basis::Usd, .. }
                    | RuleKind::X402 { max_per_call_usd: Some(_), .. }
                    | RuleKind::X402 { budget_usd: Some(_), .. }
            )
        })
    }

    /// The current quote of `asset`: the static price from the policy, or the
    /// aggregator answer in `prices` if it is fresh (at most `max_age_secs` old).
    pub fn quote(&self, asset: Asset, prices: &BTreeMap<Asset, PriceQuote>, now: u64) -> Result<PriceQuote, String> {
        let name = || self.asset_name(asset);
        match self.prices.get(&asset) {
            None => Err(format!("no price source for {}", name())),
            Some(PriceSource::Static { usd_micro }) => {
                Ok(PriceQuote { answer: *usd_micro, decimals: USD_DECIMALS, updated_at: now })
            }
            Some(PriceSource::Aggregator { max_age_secs, .. }) => {
                let quote = prices.get(&asset).ok_or_else(|| format!("no price was read for {}", name()))?;
                let age = now.saturating_sub(quote.updated_at);
                if age > *max_age_secs {
                    return Err(format!("the price of {} is {age} s old (max {max_age_secs} s)", name()));
                }
                if quote.answer.is_zero() {
                    return Err(format!("the price of {} is zero", name()));
                }
                Ok(*quote)
            }
        }
    }

    /// USD value in micro-dollars of `amount` of `asset` now, if its price is known
    /// and fresh (what a spend records for later USD windows).
    pub fn usd_value(
        &self,
        asset: Asset,
        amount: U256,
        prices: &BTreeMap<Asset, PriceQuote>,
        now: u64,
    ) -> Option<U256> {
        let decimals = self.decimals(asset)?;
        usd_micro(amount, decimals, &self.quote(asset, prices, now).ok()?)
    }

    /// Assets whose price comes from an aggregator, with its address (what the caller reads).
    pub fn aggregators(&self) -> impl Iterator<Item = (Asset, Address)> + '_ {
        self.prices.iter().filter_map(|(asset, source)| match source {
            PriceSource::Aggregator { address, .. } => Some((*asset, *address)),
            PriceSource::Static { .. } => None,
        })
    }

    /// Whether a `require_simulation` rule is present.
    pub fn requires_simulation(&self) -> bool {
        self.rules.iter().any(|rule| matches!(rule.kind, RuleKind::RequireSimulation))
    }

    /// The registered function for `selector` on `to`, from `allow_contracts` rules
    /// (what the calldata decoder uses to decode arguments).
    pub fn registered_function(&self, to: Address, selector: [u8; 4]) -> Option<crate::decode::Function> {
        self.rules.iter().find_map(|rule| match &rule.kind {
            RuleKind::AllowContracts { contracts } => {
                contracts.get(&to).and_then(|functions| functions.get(&selector)).map(|f| f.function.clone())
            }
            _ => None,
        })
    }
}

/// The token called `text` (its symbol, case-sensitive) or at `text` (its address, any case).
fn find_token<'a>(tokens: &'a [TokenSpec], text: &str) -> Option<&'a TokenSpec> {
    tokens.iter().find(|t| t.symbol == text || t.address.to_checksum(None).eq_ignore_ascii_case(text))
}

/// USD value in micro-dollars of `amount` base units of an asset with `decimals`, at
/// `quote`, rounded up (a cap never under-counts).
pub fn usd_micro(amount: U256, decimals: u8, quote: &PriceQuote) -> Option<U256> {
    let numerator = amount.checked_mul(quote.answer)?.checked_mul(U256::from(10u64).pow(U256::from(USD_DECIMALS)))?;
    let exponent = u64::from(decimals) + u64::from(quote.decimals);
    if exponent > 77 {
        return None;
    }
    let denominator = U256::from(10u64).pow(U256::from(exponent));
    let (quotient, remainder) = numerator.div_rem(denominator);
    Some(if remainder.is_zero() { quotient } else { quotient + U256::from(1u8) })
}

/// Whether an `x402` rule's host entry `allowed` names `host` (both lower case):
/// `*.example.com` names `example.com` and every subdomain of it.
pub fn x402_host_matches(allowed: &str, host: &str) -> bool {
    match allowed.strip_prefix("*.") {
        Some(parent) => host == parent || host.strip_suffix(parent).is_some_and(|sub| sub.ends_with('.')),
        None => host == allowed,
    }
}
