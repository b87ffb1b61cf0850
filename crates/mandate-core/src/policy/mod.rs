//! The policy engine, first rules: a versioned JSON document of ordered rules,
//! evaluated on a decoded action. Default deny; the first violation stops.
//!
//! Pure: the caller passes the wallet's recent spends (committed and reserved) and
//! `now`; the same inputs always give the same [`Decision`].

use std::collections::BTreeSet;

use alloy_primitives::{Address, U256};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::amount::{format_units, parse_base_units, parse_units};

/// The policy document format version this build reads.
pub const POLICY_VERSION: u64 = 1;

/// A policy document that failed validation, naming the JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// JSON path of the offending value, e.g. `$.rules[2].amount`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { path: path.into(), message: message.into() }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleKind {
    /// Largest value of one transaction.
    MaxPerTx {
        /// Limit in wei.
        limit: U256,
    },
    /// Largest total value within a sliding window.
    RollingCap {
        /// Window length in seconds.
        window_secs: u64,
        /// Limit in wei.
        limit: U256,
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
    /// At most `max_count` transactions within a sliding window.
    Velocity {
        /// Window length in seconds.
        window_secs: u64,
        /// Count limit.
        max_count: u64,
    },
}

/// A rule with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique id, reported in decisions.
    pub id: String,
    /// What it checks.
    pub kind: RuleKind,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Ordered rules.
    pub rules: Vec<Rule>,
    /// SHA-256 of the canonical document, recorded with every decision.
    pub hash: String,
}

/// What the agent asks to do, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Native-asset transfer.
    NativeTransfer {
        /// Recipient.
        to: Address,
        /// Value in wei.
        value: U256,
    },
}

/// A past or reserved spend of the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    /// Unix seconds.
    pub at: u64,
    /// Value in wei.
    pub value: U256,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refused.
    Deny,
}

/// How an allowed action proceeds (this issue produces only `instant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// At once.
    Instant,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// Tier for an allowed action.
    pub tier: Tier,
    /// The rule that decided (`default_deny` when none allowed it).
    pub rule_id: String,
    /// Why.
    pub reason: String,
    /// The observed value the rule compared, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// The rule's limit, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Hash of the policy version that decided (`none` without a policy).
    pub policy_hash: String,
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a serde_json::Map<String, Value>, PolicyError> {
    value.as_object().ok_or_else(|| err(path, "expected an object"))
}

fn only_fields(map: &serde_json::Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), PolicyError> {
    match map.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(err(format!("{path}.{key}"), "unknown field")),
        None => Ok(()),
    }
}

/// Longest window a rule may look back: ten years.
pub const MAX_WINDOW_SECS: u64 = 10 * 366 * 24 * 3600;

fn window_field(map: &serde_json::Map<String, Value>, path: &str) -> Result<u64, PolicyError> {
    let window = u64_field(map, path, "window_secs")?;
    if window > MAX_WINDOW_SECS {
        return Err(err(format!("{path}.window_secs"), format!("at most {MAX_WINDOW_SECS} seconds (ten years)")));
    }
    Ok(window)
}

fn u64_field(map: &serde_json::Map<String, Value>, path: &str, key: &str) -> Result<u64, PolicyError> {
    let value = map.get(key).ok_or_else(|| err(format!("{path}.{key}"), "required"))?;
    match value.as_u64() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(err(format!("{path}.{key}"), "expected a positive integer")),
    }
}

fn amount_field(map: &serde_json::Map<String, Value>, path: &str) -> Result<U256, PolicyError> {
    match (map.get("amount"), map.get("amount_wei")) {
        (Some(_), Some(_)) => Err(err(path, "give amount or amount_wei, not both")),
        (Some(Value::String(text)), None) => {
            parse_units(text, 18).map_err(|e| err(format!("{path}.amount"), e.to_string()))
        }
        (None, Some(Value::String(text))) => {
            parse_base_units(text).map_err(|e| err(format!("{path}.amount_wei"), e.to_string()))
        }
        (Some(_), None) => Err(err(format!("{path}.amount"), "expected a decimal string such as \"0.5\"")),
        (None, Some(_)) => Err(err(format!("{path}.amount_wei"), "expected a decimal string of wei")),
        (None, None) => Err(err(format!("{path}.amount"), "required (or amount_wei)")),
    }
}

fn addresses_field(map: &serde_json::Map<String, Value>, path: &str) -> Result<BTreeSet<Address>, PolicyError> {
    let list = map
        .get("addresses")
        .and_then(Value::as_array)
        .ok_or_else(|| err(format!("{path}.addresses"), "expected an array of addresses"))?;
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{path}.addresses[{i}]");
            let text = item.as_str().ok_or_else(|| err(&at, "expected an address string"))?;
            crate::address::parse_address(text).map_err(|e| err(&at, e.to_string()))
        })
        .collect()
}

impl Policy {
    /// Parses and validates a policy document. Errors name the JSON path.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let document: Value = serde_json::from_str(text).map_err(|e| err("$", format!("invalid JSON: {e}")))?;
        let root = object(&document, "$")?;
        only_fields(root, "$", &["version", "rules"])?;
        match root.get("version").and_then(Value::as_u64) {
            Some(POLICY_VERSION) => {}
            _ => return Err(err("$.version", format!("expected {POLICY_VERSION}"))),
        }
        let rules = root.get("rules").and_then(Value::as_array).ok_or_else(|| err("$.rules", "expected an array"))?;
        let mut parsed = Vec::with_capacity(rules.len());
        let mut ids = BTreeSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let path = format!("$.rules[{i}]");
            let map = object(rule, &path)?;
            let id = map
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty() && id.len() <= 64)
                .ok_or_else(|| err(format!("{path}.id"), "expected a non-empty string of at most 64 characters"))?;
            if !ids.insert(id.to_string()) {
                return Err(err(format!("{path}.id"), format!("duplicate rule id {id:?}")));
            }
            let kind = match map.get("type").and_then(Value::as_str) {
                Some("max_per_tx") => {
                    only_fields(map, &path, &["id", "type", "amount", "amount_wei"])?;
                    RuleKind::MaxPerTx { limit: amount_field(map, &path)? }
                }
                Some("rolling_cap") => {
                    only_fields(map, &path, &["id", "type", "window_secs", "amount", "amount_wei"])?;
                    RuleKind::RollingCap { window_secs: window_field(map, &path)?, limit: amount_field(map, &path)? }
                }
                Some("allow_recipients") => {
                    only_fields(map, &path, &["id", "type", "addresses"])?;
                    RuleKind::AllowRecipients { addresses: addresses_field(map, &path)? }
                }
                Some("deny_recipients") => {
                    only_fields(map, &path, &["id", "type", "addresses"])?;
                    RuleKind::DenyRecipients { addresses: addresses_field(map, &path)? }
                }
                Some("velocity") => {
                    only_fields(map, &path, &["id", "type", "window_secs", "max_count"])?;
                    RuleKind::Velocity {
                        window_secs: window_field(map, &path)?,
                        max_count: u64_field(map, &path, "max_count")?,
                    }
                }
                Some(other) => return Err(err(format!("{path}.type"), format!("unknown rule type {other:?}"))),
                None => return Err(err(format!("{path}.type"), "required")),
            };
            parsed.push(Rule { id: id.to_string(), kind });
        }
        let canonical = serde_json::to_vec(&document).map_err(|e| err("$", e.to_string()))?;
        Ok(Policy { rules: parsed, hash: hex::encode(Sha256::digest(canonical)) })
    }

    /// Longest window any rule looks back, in seconds (what history the caller must supply).
    pub fn lookback_secs(&self) -> u64 {
        self.rules
            .iter()
            .map(|rule| match rule.kind {
                RuleKind::RollingCap { window_secs, .. } | RuleKind::Velocity { window_secs, .. } => window_secs,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

fn deny(rule_id: &str, reason: String, observed: Option<String>, limit: Option<String>, hash: &str) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        tier: Tier::Instant,
        rule_id: rule_id.to_string(),
        reason,
        observed,
        limit,
        policy_hash: hash.to_string(),
    }
}

fn eth(value: U256) -> String {
    format!("{} ETH", format_units(value, 18))
}

/// Evaluates `action` under `policy` given the wallet's spends (committed and
/// reserved) and `now` (unix seconds). Default deny: no policy, or no `max_per_tx`
/// rule for native transfers, denies.
pub fn evaluate(policy: Option<&Policy>, action: &Action, history: &[Spend], now: u64) -> Decision {
    let Some(policy) = policy else {
        return deny("default_deny", "no policy is set for this wallet".into(), None, None, "none");
    };
    let hash = policy.hash.as_str();
    let Action::NativeTransfer { to, value } = action;
    if !policy.rules.iter().any(|rule| matches!(rule.kind, RuleKind::MaxPerTx { .. })) {
        return deny("default_deny", "native transfers need a max_per_tx rule".into(), None, None, hash);
    }
    let in_window =
        |window: u64| history.iter().filter(move |spend| spend.at.saturating_add(window) > now && spend.at <= now);
    for rule in &policy.rules {
        let id = rule.id.as_str();
        match &rule.kind {
            RuleKind::MaxPerTx { limit } if value > limit => {
                return deny(
                    id,
                    "amount above the per-transaction maximum".into(),
                    Some(eth(*value)),
                    Some(eth(*limit)),
                    hash,
                )
            }
            RuleKind::RollingCap { window_secs, limit } => {
                let spent = in_window(*window_secs).fold(U256::ZERO, |sum, spend| sum.saturating_add(spend.value));
                let total = spent.saturating_add(*value);
                if total > *limit {
                    return deny(
                        id,
                        format!("would spend {} within {window_secs} s", eth(total)),
                        Some(eth(total)),
                        Some(eth(*limit)),
                        hash,
                    );
                }
            }
            RuleKind::AllowRecipients { addresses } if !addresses.contains(to) => {
                return deny(id, "recipient is not on the allowlist".into(), Some(to.to_checksum(None)), None, hash)
            }
            RuleKind::DenyRecipients { addresses } if addresses.contains(to) => {
                return deny(id, "recipient is on the denylist".into(), Some(to.to_checksum(None)), None, hash)
            }
            RuleKind::Velocity { window_secs, max_count } => {
                let count = in_window(*window_secs).count() as u64 + 1;
                if count > *max_count {
                    return deny(
                        id,
                        format!("more than {max_count} transactions within {window_secs} s"),
                        Some(count.to_string()),
                        Some(max_count.to_string()),
                        hash,
                    );
                }
            }
            _ => {}
        }
    }
    Decision {
        verdict: Verdict::Allow,
        tier: Tier::Instant,
        rule_id: "allowed".into(),
        reason: "no rule was violated".into(),
        observed: Some(eth(*value)),
        limit: None,
        policy_hash: hash.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const MALLORY: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

    fn policy(rules: &str) -> Policy {
        Policy::parse(&format!(r#"{{"version":1,"rules":{rules}}}"#)).unwrap()
    }

    fn send(to: &str, eth: &str) -> Action {
        Action::NativeTransfer { to: to.parse().unwrap(), value: parse_units(eth, 18).unwrap() }
    }

    #[test]
    fn default_deny_without_policy_or_cap() {
        let d = evaluate(None, &send(ALICE, "0.1"), &[], 0);
        assert_eq!((d.verdict, d.rule_id.as_str()), (Verdict::Deny, "default_deny"));
        let p = policy(r#"[{"id":"v","type":"velocity","window_secs":60,"max_count":5}]"#);
        assert_eq!(evaluate(Some(&p), &send(ALICE, "0.1"), &[], 0).rule_id, "default_deny");
    }

    #[test]
    fn each_rule_denies_with_its_id() {
        let p = policy(&format!(
            r#"[{{"id":"cap","type":"max_per_tx","amount":"1"}},
               {{"id":"deny","type":"deny_recipients","addresses":["{MALLORY}"]}},
               {{"id":"day","type":"rolling_cap","window_secs":86400,"amount":"3"}},
               {{"id":"vel","type":"velocity","window_secs":60,"max_count":2}},
               {{"id":"allow","type":"allow_recipients","addresses":["{ALICE}"]}}]"#
        ));
        assert_eq!(evaluate(Some(&p), &send(ALICE, "1"), &[], 100).verdict, Verdict::Allow);
        assert_eq!(evaluate(Some(&p), &send(ALICE, "1.01"), &[], 100).rule_id, "cap");
        assert_eq!(evaluate(Some(&p), &send(MALLORY, "0.1"), &[], 100).rule_id, "deny");
        let spent = vec![Spend { at: 10, value: parse_units("2.5", 18).unwrap() }];
        let d = evaluate(Some(&p), &send(ALICE, "0.6"), &spent, 100);
        assert_eq!((d.rule_id.as_str(), d.limit.as_deref()), ("day", Some("3 ETH")));
        assert_eq!(evaluate(Some(&p), &send(ALICE, "0.6"), &spent, 86_410).verdict, Verdict::Allow);
        let recent = vec![Spend { at: 90, value: U256::from(1) }, Spend { at: 95, value: U256::from(1) }];
        assert_eq!(evaluate(Some(&p), &send(ALICE, "0.1"), &recent, 100).rule_id, "vel");
        let other = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
        assert_eq!(evaluate(Some(&p), &send(other, "0.1"), &[], 100).rule_id, "allow");
    }

    #[test]
    fn validation_names_the_json_path() {
        let cases = [
            (r#"{"version":1,"rules":[{"id":"a","type":"nope"}]}"#, "$.rules[0].type"),
            (r#"{"version":1,"rules":[{"id":"a","type":"max_per_tx","amount":"1","extra":1}]}"#, "$.rules[0].extra"),
            (r#"{"version":1,"rules":[{"id":"a","type":"max_per_tx","amount":"1e18"}]}"#, "$.rules[0].amount"),
            (
                r#"{"version":1,"rules":[{"id":"a","type":"allow_recipients","addresses":["0x12"]}]}"#,
                "$.rules[0].addresses[0]",
            ),
            (r#"{"version":2,"rules":[]}"#, "$.version"),
            (
                r#"{"version":1,"rules":[{"id":"a","type":"velocity","window_secs":18446744073709551615,"max_count":1}]}"#,
                "$.rules[0].window_secs",
            ),
            (
                r#"{"version":1,"rules":[{"id":"a","type":"max_per_tx","amount":"1"},{"id":"a","type":"max_per_tx","amount":"1"}]}"#,
                "$.rules[1].id",
            ),
        ];
        for (text, path) in cases {
            assert_eq!(Policy::parse(text).unwrap_err().path, path, "{text}");
        }
    }

    proptest! {
        #[test]
        fn rolling_cap_holds_for_any_sequence(steps in proptest::collection::vec((1u64..2_000, 0u64..5_000), 1..60)) {
            let p = policy(r#"[{"id":"cap","type":"max_per_tx","amount_wei":"1000"},{"id":"w","type":"rolling_cap","window_secs":3600,"amount_wei":"2500"}]"#);
            let mut history: Vec<Spend> = Vec::new();
            let mut now = 0;
            for (value, advance) in steps {
                now += advance;
                let action = Action::NativeTransfer { to: ALICE.parse().unwrap(), value: U256::from(value) };
                let first = evaluate(Some(&p), &action, &history, now);
                prop_assert_eq!(&first, &evaluate(Some(&p), &action, &history, now));
                if first.verdict == Verdict::Allow {
                    history.push(Spend { at: now, value: U256::from(value) });
                }
                for end in history.iter().map(|s| s.at) {
                    let sum: u64 = history.iter().filter(|s| s.at + 3600 > end && s.at <= end).map(|s| s.value.to::<u64>()).sum();
                    prop_assert!(sum <= 2500);
                }
            }
        }

        #[test]
        fn parser_never_panics(text in ".{0,200}") {
            let _ = Policy::parse(&text);
        }
    }
}
