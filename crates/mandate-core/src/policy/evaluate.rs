//! Evaluation of a policy on an action. First the action must be *permitted* by a rule
//! of its kind (default deny); then every constraint rule is checked in document order
//! and the first violation stops; finally the tier rules raise the tier.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, U256};

use super::*;
use crate::amount::format_units;

/// A denial under construction.
struct Denial {
    code: ErrorCode,
    rule_id: String,
    reason: String,
    observed: Option<String>,
    limit: Option<String>,
    kind: DenialKind,
}

fn denial(rule_id: &str, reason: impl Into<String>) -> Denial {
    Denial {
        code: ErrorCode::PolicyDenied,
        rule_id: rule_id.into(),
        reason: reason.into(),
        observed: None,
        limit: None,
        kind: DenialKind::Rule,
    }
}

impl Denial {
    fn values(mut self, observed: impl Into<String>, limit: Option<String>) -> Denial {
        self.observed = Some(observed.into());
        self.limit = limit;
        self
    }

    fn code(mut self, code: ErrorCode) -> Denial {
        self.code = code;
        self
    }
}

/// Evaluation of one action: the inputs plus what has been worked out so far.
struct Evaluation<'a> {
    policy: &'a Policy,
    action: &'a Action,
    ctx: &'a Context<'a>,
    /// History up to now, oldest first.
    timeline: Option<Vec<&'a Spend>>,
    /// Running totals along the timeline per basis (`None`: a sum overflowed).
    prefixes: Vec<(Basis, Option<Vec<U256>>)>,
    /// `now` per time zone already converted.
    local_times: Vec<(String, Option<(usize, u16)>)>,
    /// The addresses the action deals with.
    counterparties: Option<Vec<Address>>,
    outflow: Option<(Asset, U256)>,
    /// The outflow's USD value, computed once (`None` when not needed yet).
    outflow_usd: Option<Result<U256, (ErrorCode, String)>>,
    budgets: Vec<Budget>,
}

fn checksum(address: &Address) -> String {
    address.to_checksum(None)
}

impl<'a> Evaluation<'a> {
    fn new(policy: &'a Policy, action: &'a Action, ctx: &'a Context<'a>) -> Self {
        Evaluation {
            policy,
            action,
            ctx,
            timeline: None,
            prefixes: Vec::new(),
            local_times: Vec::new(),
            counterparties: None,
            outflow: action.outflow(),
            outflow_usd: None,
            budgets: Vec::new(),
        }
    }

    fn format(&self, basis: Basis, amount: U256) -> String {
        match basis {
            Basis::Usd => format!("{} USD", format_units(amount, USD_DECIMALS)),
            Basis::Asset(Asset::Native) => format!("{} ETH", format_units(amount, 18)),
            Basis::Asset(asset) => match self.policy.decimals(asset) {
                Some(decimals) => format!("{} {}", format_units(amount, decimals), self.policy.asset_name(asset)),
                None => format!("{amount} base units of {}", self.policy.asset_name(asset)),
            },
        }
    }

    fn quote(&self, asset: Asset) -> Result<PriceQuote, String> {
        self.policy.quote(asset, self.ctx.prices, self.ctx.now)
    }

    /// USD value (micro-dollars) of `amount` of `asset` at the current price.
    /// Errors carry their code: a missing price source or undeclared token is the
    /// policy's (`POLICY_DENIED`, retrying cannot help); a missing, stale or zero
    /// answer is `PRICE_UNAVAILABLE`. Nothing (a zero amount) is worth $0 without a price.
    fn usd(&self, asset: Asset, amount: U256) -> Result<U256, (ErrorCode, String)> {
        if amount.is_zero() {
            return Ok(U256::ZERO);
        }
        let name = || self.policy.asset_name(asset);
        let decimals = self.policy.decimals(asset).ok_or_else(|| {
            (ErrorCode::PolicyDenied, format!("{} is not declared in the policy's tokens (decimals unknown)", name()))
        })?;
        if !self.policy.prices.contains_key(&asset) {
            return Err((ErrorCode::PolicyDenied, format!("the policy has no price source for {}", name())));
        }
        let quote = self.quote(asset).map_err(|reason| (ErrorCode::PriceUnavailable, reason))?;
        usd_micro(amount, decimals, &quote).ok_or_else(|| (ErrorCode::PolicyDenied, "USD value overflows".to_string()))
    }

    /// The action's measure in `basis`, if the basis applies to it.
    fn measure(&self, basis: Basis) -> Result<Option<U256>, Denial> {
        let Some((asset, amount)) = self.outflow else { return Ok(None) };
        match basis {
            Basis::Asset(wanted) if wanted == asset => Ok(Some(amount)),
            Basis::Asset(_) => Ok(None),
            Basis::Usd => match &self.outflow_usd {
                Some(Ok(usd)) => Ok(Some(*usd)),
                Some(Err((code, reason))) => Err(denial("price", reason.clone()).code(*code)),
                None => self.usd(asset, amount).map(Some).map_err(|(code, reason)| denial("price", reason).code(code)),
            },
        }
    }

    /// Whether `spend` was made on the evaluated action's chain (unknown: yes).
    fn same_chain(&self, spend: &Spend) -> bool {
        spend.chain_id.is_none_or(|chain| chain == self.ctx.chain_id)
    }

    /// The history up to now, oldest first (built once per evaluation).
    fn timeline(&mut self) -> &[&'a Spend] {
        let (history, now) = (self.ctx.history, self.ctx.now);
        self.timeline.get_or_insert_with(|| {
            let mut sorted: Vec<&Spend> = history.iter().filter(|spend| spend.at <= now).collect();
            sorted.sort_by_key(|spend| spend.at);
            sorted
        })
    }

    /// Running totals of `basis` along the timeline (`prefix[i]` = sum of the first `i`
    /// entries), built once per basis; `None` if a sum overflows (then windows are summed
    /// directly, saturating).
    fn prefix(&mut self, id: &str, basis: Basis) -> Result<Option<&[U256]>, Denial> {
        if !self.prefixes.iter().any(|(b, _)| *b == basis) {
            let timeline = self.timeline().to_vec();
            let mut sums = Vec::with_capacity(timeline.len() + 1);
            let mut total = Some(U256::ZERO);
            sums.push(U256::ZERO);
            for spend in timeline {
                let value = match basis {
                    Basis::Asset(asset) if spend.asset == asset && self.same_chain(spend) => spend.amount,
                    Basis::Asset(_) => U256::ZERO,
                    Basis::Usd => match spend.usd_micro {
                        Some(usd) => usd,
                        None => self.usd(spend.asset, spend.amount).map_err(|(code, reason)| {
                            denial(id, format!("cannot value an earlier spend: {reason}")).code(code)
                        })?,
                    },
                };
                total = total.and_then(|t| t.checked_add(value));
                sums.push(total.unwrap_or(U256::MAX));
            }
            self.prefixes.push((basis, total.map(|_| sums)));
        }
        Ok(self.prefixes.iter().find(|(b, _)| *b == basis).and_then(|(_, sums)| sums.as_deref()))
    }

    /// An `x402` rule on an x402 payment: the host is listed, the payment's USD value
    /// is within the per-payment maximum, and with the x402 payments of the window
    /// within the budget.
    fn x402_check(
        &self,
        id: &str,
        host: &str,
        hosts: &[String],
        max_per_call: Option<U256>,
        budget: Option<(U256, u64)>,
    ) -> Result<(), Denial> {
        if !hosts.iter().any(|allowed| x402_host_matches(allowed, host)) {
            return Err(denial(id, format!("x402 payments to {host} are not allowed")).values(host.to_string(), None));
        }
        if max_per_call.is_none() && budget.is_none() {
            return Ok(());
        }
        let usd = self.measure(Basis::Usd).map_err(|d| Denial { rule_id: id.into(), ..d })?.unwrap_or_default();
        let shown = |micro: U256| format!("{} USD", format_units(micro, USD_DECIMALS));
        if let Some(max) = max_per_call.filter(|max| usd > *max) {
            return Err(denial(id, format!("an x402 payment of {} is above the maximum per payment", shown(usd)))
                .values(shown(usd), Some(shown(max))));
        }
        if let Some((limit, window_secs)) = budget {
            let now = self.ctx.now;
            let mut used = U256::ZERO;
            for spend in self.ctx.history.iter().filter(|s| s.x402 && s.at <= now && s.at + window_secs > now) {
                let value = match spend.usd_micro {
                    Some(usd) => usd,
                    None => self.usd(spend.asset, spend.amount).map_err(|(code, reason)| {
                        denial(id, format!("cannot value an earlier x402 payment: {reason}")).code(code)
                    })?,
                };
                used = used.saturating_add(value);
            }
            let total = used.saturating_add(usd);
            if total > limit {
                return Err(denial(id, format!("x402 payments would reach {} within {window_secs} s", shown(total)))
                    .values(shown(total), Some(shown(limit))));
            }
        }
        Ok(())
    }

    fn rolling_cap(&mut self, id: &str, basis: Basis, window_secs: u64, limit: U256) -> Result<(), Denial> {
        let Some(amount) = self.measure(basis).map_err(|d| Denial { rule_id: id.into(), ..d })? else {
            return Ok(());
        };
        let budget = self.window_budget(id, basis, window_secs, limit)?;
        let used = budget.used;
        self.budgets.push(budget);
        let total = used.saturating_add(amount);
        if total > limit {
            return Err(denial(id, format!("would use {} within {window_secs} s", self.format(basis, total)))
                .values(self.format(basis, total), Some(self.format(basis, limit))));
        }
        Ok(())
    }

    /// What a rolling cap has used within its window before this action.
    fn window_budget(&mut self, id: &str, basis: Basis, window_secs: u64, limit: U256) -> Result<Budget, Denial> {
        // The window is a suffix of the timeline: its sum is a difference of running
        // totals, and its oldest counted entry is the first that matches the basis.
        let now = self.ctx.now;
        let start = self.timeline().partition_point(|spend| spend.at.saturating_add(window_secs) <= now);
        let chain_id = self.ctx.chain_id;
        let matches = |spend: &Spend| {
            !spend.amount.is_zero()
                && match basis {
                    Basis::Asset(asset) => spend.asset == asset && spend.chain_id.is_none_or(|c| c == chain_id),
                    Basis::Usd => true,
                }
        };
        let used = match self.prefix(id, basis)? {
            Some(sums) => {
                let end = sums.last().copied().unwrap_or_default();
                end - sums.get(start).copied().unwrap_or(end)
            }
            None => {
                let mut used = U256::ZERO;
                for spend in self.timeline().to_vec().into_iter().skip(start).filter(|s| matches(s)) {
                    let value = match (basis, spend.usd_micro) {
                        (Basis::Usd, Some(usd)) => usd,
                        (Basis::Usd, None) => self.usd(spend.asset, spend.amount).unwrap_or(U256::MAX),

                        _ => spend.amount,
                    };
                    used = used.saturating_add(value);
                }
                used
            }
        };
        let frees_at = self
            .timeline()
            .get(start..)
            .and_then(|window| window.iter().find(|s| matches(s)))
            .map(|spend| spend.at.saturating_add(window_secs));
        let (unit, decimals) = match basis {
            Basis::Usd => ("usd".into(), USD_DECIMALS),
            Basis::Asset(asset) => (self.policy.asset_name(asset), self.policy.decimals(asset).unwrap_or(0)),
        };
        Ok(Budget { rule_id: id.into(), unit, decimals, window_secs, limit, used, frees_at })
    }

    fn velocity(&mut self, id: &str, window_secs: u64, max_count: u64) -> Result<(), Denial> {
        if !self.action.is_transaction() {
            return Ok(());
        }
        let budget = self.velocity_budget(id, window_secs, max_count);
        let used = budget.used;
        self.budgets.push(budget);
        if used >= U256::from(max_count) {
            return Err(denial(id, format!("more than {max_count} transactions within {window_secs} s"))
                .values((used + U256::from(1)).to_string(), Some(max_count.to_string())));
        }
        Ok(())
    }

    /// How many transactions a velocity rule has counted within its window.
    fn velocity_budget(&mut self, id: &str, window_secs: u64, max_count: u64) -> Budget {
        let now = self.ctx.now;
        let timeline = self.timeline();
        let start = timeline.partition_point(|spend| spend.at.saturating_add(window_secs) <= now);
        let used = (timeline.len() - start.min(timeline.len())) as u64;
        let frees_at = timeline.get(start).map(|spend| spend.at.saturating_add(window_secs));
        Budget {
            rule_id: id.into(),
            unit: "count".into(),
            decimals: 0,
            window_secs,
            limit: U256::from(max_count),
            used: U256::from(used),
            frees_at,
        }
    }

    /// Whether some rule of the action's kind permits it (default deny otherwise).
    fn permitted(&self) -> Result<(), Denial> {
        let rules = &self.policy.rules;
        let mut first_refusal: Option<Denial> = None;
        let mut seen_kind = false;
        let mut consider = |outcome: Result<(), Denial>| match outcome {
            Ok(()) => true,
            Err(d) => {
                first_refusal.get_or_insert(d);
                false
            }
        };
        let permitted = match self.action {
            Action::TokenApprove { token, spender, amount, .. } => rules.iter().any(|rule| match &rule.kind {
                RuleKind::Erc20Approve { token: only, spenders, max_amount, allow_unlimited }
                    if only.is_none_or(|t| t == *token) =>
                {
                    seen_kind = true;
                    consider(approve_check(&rule.id, *spender, *amount, spenders, *max_amount, *allow_unlimited))
                }
                _ => false,
            }),
            Action::ContractCall { to, selector, call, .. } => rules.iter().any(|rule| match &rule.kind {
                RuleKind::AllowContracts { contracts } => {
                    seen_kind = true;
                    consider(contract_check(&rule.id, contracts, *to, *selector, call.as_ref()))
                }
                _ => false,
            }),
            // An EIP-3009 authorization moves tokens once settled: only the x402
            // endpoint signs one, as an x402 payment the caps count.
            Action::TypedData(data) if EIP3009_TYPES.contains(&data.primary_type.as_str()) => {
                return Err(denial(
                    "eip3009",
                    format!(
                        "{} moves tokens outside the caps as a bare signature; pay through POST /v1/wallets/{{id}}/x402/pay",
                        data.primary_type
                    ),
                ));
            }
            Action::TypedData(data) => rules.iter().any(|rule| match &rule.kind {
                RuleKind::TypedData { domains } => {
                    seen_kind = true;
                    consider(typed_data_check(&rule.id, domains, data))
                }
                _ => false,
            }),
            Action::PersonalMessage { message } => rules.iter().any(|rule| match &rule.kind {
                RuleKind::PersonalMessage { allow: true, pattern } => {
                    seen_kind = true;
                    consider(match (pattern, std::str::from_utf8(message)) {
                        (None, _) => Ok(()),
                        (Some(pattern), Ok(text)) if pattern.0.is_match(text) => Ok(()),
                        (Some(pattern), Ok(_)) => Err(denial(
                            &rule.id,
                            format!("the message does not match the allowed pattern {:?}", pattern.0.as_str()),
                        )),
                        (Some(_), Err(_)) => Err(denial(&rule.id, "the message is not UTF-8 text")),
                    })
                }
                _ => false,
            }),
            Action::RawHash { .. } => {
                seen_kind = rules.iter().any(|rule| matches!(rule.kind, RuleKind::RawHash));
                seen_kind
            }
            Action::X402Payment { host, .. } => rules.iter().any(|rule| match &rule.kind {
                RuleKind::X402 { hosts, max_per_call_usd, budget_usd, window_secs } => {
                    seen_kind = true;
                    consider(self.x402_check(
                        &rule.id,
                        host,
                        hosts,
                        *max_per_call_usd,
                        budget_usd.map(|b| (b, *window_secs)),
                    ))
                }
                _ => false,
            }),
            _ => true,
        };
        if !permitted {
            return Err(match first_refusal {
                Some(refusal) if seen_kind => refusal,
                _ => denial("default_deny", format!("no rule permits {} actions", self.action.kind())),
            });
        }
        if let Some((asset, _)) = self.outflow {
            let capped = rules.iter().any(|rule| match rule.kind {
                RuleKind::MaxPerTx { basis: Basis::Usd, .. } => true,
                RuleKind::MaxPerTx { basis: Basis::Asset(a), .. } => a == asset,
                _ => false,
            });
            if !capped {
                return Err(denial(
                    "default_deny",
                    format!("transfers of {} need a max_per_tx rule for it", self.policy.asset_name(asset)),
                ));
            }
        }
        Ok(())
    }

    fn constraint(&mut self, rule: &Rule) -> Result<(), Denial> {
        let id = rule.id.as_str();
        let action = self.action;
        match &rule.kind {
            RuleKind::MaxPerTx { basis, limit } => {
                if let Some(amount) = self.measure(*basis).map_err(|d| Denial { rule_id: id.into(), ..d })? {
                    if amount > *limit {
                        return Err(denial(id, "amount above the per-transaction maximum")
                            .values(self.format(*basis, amount), Some(self.format(*basis, *limit))));
                    }
                }
            }
            RuleKind::RollingCap { basis, window_secs, limit } => self.rolling_cap(id, *basis, *window_secs, *limit)?,
            RuleKind::AllowRecipients { addresses } => {
                if let Some(to) = action.recipient().filter(|to| !addresses.contains(to)) {
                    return Err(denial(id, "recipient is not on the allowlist").values(checksum(&to), None));
                }
            }
            RuleKind::DenyRecipients { addresses } => {
                let parties = self.counterparties.get_or_insert_with(|| counterparties(action));
                if let Some(hit) = parties.iter().find(|a| addresses.contains(*a)).copied() {
                    return Err(
                        denial(id, "the action involves an address on the denylist").values(checksum(&hit), None)
                    );
                }
            }
            RuleKind::AllowTokens { tokens } => match action {
                Action::TokenTransfer { token, .. } | Action::TokenApprove { token, .. } if !tokens.contains(token) => {
                    return Err(denial(id, "token is not on the allowlist").values(checksum(token), None))
                }
                _ => {}
            },
            RuleKind::Velocity { window_secs, max_count } => self.velocity(id, *window_secs, *max_count)?,
            RuleKind::TimeWindow(window) => {
                // Several windows often share a zone: convert `now` once per zone.
                let local = match self.local_times.iter().find(|(name, _)| *name == window.zone_name) {
                    Some((_, local)) => *local,
                    None => {
                        let local = local_time(&window.zone, self.ctx.now);
                        self.local_times.push((window.zone_name.clone(), local));
                        local
                    }
                };
                time_window_check(id, window, local)?
            }
            RuleKind::AllowChains { chain_ids } => {
                let chain = match action {
                    Action::TypedData(data) => data.chain_id,
                    _ if action.is_transaction() => Some(self.ctx.chain_id),
                    _ => None,
                };
                if let Some(chain) = chain.filter(|c| !chain_ids.contains(c)) {
                    return Err(denial(id, "chain is not on the allowlist").values(chain.to_string(), None));
                }
            }
            RuleKind::GasCap { max_gas, max_fee_per_gas } if action.is_transaction() => {
                if self.ctx.fees.is_none() && matches!(self.ctx.simulation, Some(SimulationOutcome::Reverted(_))) {
                    // A reverting call has no fees; `require_simulation` denies it with the reason.
                    return Ok(());
                }
                let Some(fees) = self.ctx.fees else {
                    let mut unknown =
                        denial(id, "the transaction's fees are unknown, so the gas cap cannot be checked");
                    unknown.kind = DenialKind::FeesUnknown;
                    return Err(unknown);
                };
                if let Some(max) = max_gas.filter(|max| fees.gas > *max) {
                    return Err(
                        denial(id, "gas limit above the cap").values(fees.gas.to_string(), Some(max.to_string()))
                    );
                }
                if let Some(max) = max_fee_per_gas.filter(|max| fees.max_fee_per_gas > *max) {
                    return Err(denial(id, "max fee per gas above the cap").values(
                        format!("{} gwei", format_units(U256::from(fees.max_fee_per_gas), 9)),
                        Some(format!("{} gwei", format_units(U256::from(max), 9))),
                    ));
                }
            }
            RuleKind::PersonalMessage { allow: false, pattern: Some(pattern) } => {
                if let Action::PersonalMessage { message } = action {
                    let text = String::from_utf8_lossy(message);
                    if pattern.0.is_match(&text) {
                        return Err(denial(
                            id,
                            format!("the message matches the denied pattern {:?}", pattern.0.as_str()),
                        ));
                    }
                }
            }
            RuleKind::RequireSimulation if action.is_transaction() => match self.ctx.simulation {
                Some(SimulationOutcome::Success) => {}
                Some(SimulationOutcome::Reverted(reason)) => {
                    return Err(denial(id, "the transaction reverts in simulation")
                        .values(reason.clone(), None)
                        .code(ErrorCode::SimulationReverted))
                }
                None => return Err(denial(id, "the transaction was not simulated")),
            },
            _ => {}
        }
        Ok(())
    }

    /// The tier from `tiers` and `new_recipient` rules, with the rules that raised it.
    fn tier(&mut self) -> Result<(Tier, Option<u64>, Vec<String>), Denial> {
        let mut tier = Tier::Instant;
        let mut delay: Option<u64> = None;
        let mut raised = Vec::new();
        for rule in &self.policy.rules {
            match &rule.kind {
                RuleKind::Tiers { basis, thresholds, delay_secs, window_secs } => {
                    let Some(mut amount) =
                        self.measure(*basis).map_err(|d| Denial { rule_id: rule.id.clone(), ..d })?
                    else {
                        continue;
                    };
                    if let Some(window_secs) = window_secs {
                        let spent = self.window_budget(&rule.id, *basis, *window_secs, U256::MAX)?.used;
                        amount = amount.saturating_add(spent);
                    }
                    if let Some((_, reached)) = thresholds.iter().rev().find(|(threshold, _)| amount > *threshold) {
                        if *reached == Tier::Delay {
                            delay = Some(delay.map_or(*delay_secs, |d| d.max(*delay_secs)));
                        }
                        tier = tier.max(*reached);
                        raised.push((rule.id.clone(), *reached));
                    }
                }
                RuleKind::NewRecipient { tier: minimum }
                    if self.action.recipient().is_some() && !self.ctx.recipient_seen =>
                {
                    tier = tier.max(*minimum);
                    raised.push((rule.id.clone(), *minimum));
                }
                _ => {}
            }
        }
        if tier == Tier::Delay && delay.is_none() {
            delay = Some(3600);
        }
        // The rules that put the action in its final tier (not those that asked for less).
        let decided = raised.into_iter().filter(|(_, reached)| *reached == tier).map(|(id, _)| id).collect();
        Ok((tier, if tier == Tier::Delay { delay } else { None }, decided))
    }
}

/// Addresses the action deals with besides the wallet: recipient, spender, target, source.
fn counterparties(action: &Action) -> Vec<Address> {
    match action {
        Action::NativeTransfer { to, .. } => vec![*to],
        Action::TokenTransfer { token, from, to, .. } => {
            [Some(*token), *from, Some(*to)].into_iter().flatten().collect()
        }
        Action::TokenApprove { token, spender, .. } => vec![*token, *spender],
        Action::ContractCall { to, .. } => vec![*to],
        Action::TypedData(data) => data.verifying_contract.into_iter().collect(),
        _ => Vec::new(),
    }
}

fn approve_check(
    id: &str,
    spender: Address,
    amount: U256,
    spenders: &BTreeSet<Address>,
    max_amount: Option<U256>,
    allow_unlimited: bool,
) -> Result<(), Denial> {
    if !spenders.contains(&spender) {
        return Err(denial(id, "spender is not on the approval allowlist").values(checksum(&spender), None));
    }
    if amount == U256::MAX {
        return if allow_unlimited {
            Ok(())
        } else {
            Err(denial(id, "unlimited approvals are not allowed")
                .values("unlimited", max_amount.map(|m| m.to_string())))
        };
    }
    match max_amount {
        Some(max) if amount > max => Err(denial(id, "approval above the cap")
            .values(format!("{amount} base units"), Some(format!("{max} base units")))),
        _ => Ok(()),
    }
}

fn contract_check(
    id: &str,
    contracts: &BTreeMap<Address, BTreeMap<[u8; 4], AllowedFunction>>,
    to: Address,
    selector: [u8; 4],
    call: Option<&crate::action::DecodedCall>,
) -> Result<(), Denial> {
    let functions =
        contracts.get(&to).ok_or_else(|| denial(id, "contract is not on the allowlist").values(checksum(&to), None))?;
    let allowed = functions.get(&selector).ok_or_else(|| {
        denial(id, "function is not allowed on this contract").values(format!("0x{}", hex::encode(selector)), None)
    })?;
    let Some(call) = call else {
        return Err(denial(id, "the call's arguments were not decoded"));
    };
    for condition in &allowed.conditions {
        let name = allowed.function.inputs.get(condition.index).map(|p| p.name.as_str()).unwrap_or_default();
        let label = if name.is_empty() { format!("argument {}", condition.index) } else { format!("argument {name}") };
        let value = call.args.get(condition.index).and_then(arg_value_of);
        let Some(value) = value else {
            return Err(denial(id, format!("{label} cannot be compared")));
        };
        let holds = match &condition.op {
            ConditionOp::Eq(expected) => value == *expected,
            ConditionOp::In(options) => options.contains(&value),
            ConditionOp::Lte(bound) => same_kind(&value, bound) && value <= *bound,
            ConditionOp::Gte(bound) => same_kind(&value, bound) && value >= *bound,
        };
        if !holds {
            let (op, limit) = match &condition.op {
                ConditionOp::Eq(v) => ("equal", show(v)),
                ConditionOp::In(vs) => ("be one of", vs.iter().map(show).collect::<Vec<_>>().join(", ")),
                ConditionOp::Lte(v) => ("be at most", show(v)),
                ConditionOp::Gte(v) => ("be at least", show(v)),
            };
            return Err(denial(id, format!("{label} of {} must {op} {limit}", allowed.function.signature()))
                .values(show(&value), Some(limit)));
        }
    }
    Ok(())
}

fn same_kind(a: &ArgValue, b: &ArgValue) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn arg_value_of(value: &DynSolValue) -> Option<ArgValue> {
    Some(match value {
        DynSolValue::Address(a) => ArgValue::Address(*a),
        DynSolValue::Uint(u, _) => ArgValue::Uint(*u),
        DynSolValue::Int(i, _) => ArgValue::Int(*i),
        DynSolValue::Bool(b) => ArgValue::Bool(*b),
        DynSolValue::String(s) => ArgValue::String(s.clone()),
        DynSolValue::Bytes(b) => ArgValue::Bytes(b.clone()),
        DynSolValue::FixedBytes(word, size) => ArgValue::Bytes(word.get(..*size)?.to_vec()),
        _ => return None,
    })
}

fn show(value: &ArgValue) -> String {
    match value {
        ArgValue::Address(a) => checksum(a),
        ArgValue::Uint(u) => u.to_string(),
        ArgValue::Int(i) => i.to_string(),
        ArgValue::Bool(b) => b.to_string(),
        ArgValue::String(s) => format!("{s:?}"),
        ArgValue::Bytes(b) => format!("0x{}", hex::encode(b)),
    }
}

/// EIP-3009 authorizations (token transfers signed off-chain).
const EIP3009_TYPES: [&str; 2] = ["TransferWithAuthorization", "ReceiveWithAuthorization"];

fn typed_data_check(
    id: &str,
    domains: &[TypedDataDomain],
    data: &crate::action::TypedDataAction,
) -> Result<(), Denial> {
    let matches = |d: &TypedDataDomain| {
        d.chain_id.is_none_or(|c| data.chain_id == Some(c))
            && d.verifying_contract.is_none_or(|v| data.verifying_contract == Some(v))
            && d.name.as_ref().is_none_or(|n| data.name.as_ref() == Some(n))
            && (d.primary_types.is_empty() || d.primary_types.contains(&data.primary_type))
    };
    if domains.iter().any(matches) {
        return Ok(());
    }
    let observed = format!(
        "{} on {} (chain {})",
        data.primary_type,
        data.verifying_contract.as_ref().map(checksum).unwrap_or_else(|| "no verifying contract".into()),
        data.chain_id.map(|c| c.to_string()).unwrap_or_else(|| "none".into())
    );
    Err(denial(id, "typed data domain or primary type is not allowed").values(observed, None))
}

/// `now` in a zone: weekday (Monday = 0) and minute of the day.
fn local_time(zone: &jiff::tz::TimeZone, now: u64) -> Option<(usize, u16)> {
    let timestamp = jiff::Timestamp::from_second(i64::try_from(now).ok()?).ok()?;
    let local = timestamp.to_zoned(zone.clone());
    let weekday = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
    let minute = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).ok()?;
    Some((weekday, minute))
}

fn time_window_check(id: &str, window: &TimeWindow, local: Option<(usize, u16)>) -> Result<(), Denial> {
    let (weekday, minute) = local.ok_or_else(|| denial(id, "the clock is out of range"))?;
    let (start, end) = (window.start_minute, window.end_minute);
    // An overnight window (end < start) belongs to the day it starts on.
    let (day, inside) = if start < end {
        (weekday, minute >= start && minute < end)
    } else if minute >= start {
        (weekday, true)
    } else {
        ((weekday + 6) % 7, minute < end)
    };
    if inside && window.days.get(day).copied().unwrap_or(false) {
        return Ok(());
    }
    let observed = format!("{} {:02}:{:02}", super::document::weekday_name(weekday), minute / 60, minute % 60);
    Err(denial(id, format!("outside the allowed time window ({})", window.zone_name)).values(observed, None))
}

/// Evaluates `action` under `policy` in `ctx`. Default deny: without a policy, or
/// without a rule that permits the action's kind, the action is denied.
pub fn evaluate(policy: Option<&Policy>, action: &Action, ctx: &Context<'_>) -> Decision {
    let Some(policy) = policy else {
        return Decision {
            verdict: Verdict::Deny,
            tier: Tier::Instant,
            delay_secs: None,
            code: Some(ErrorCode::PolicyDenied),
            rule_id: "default_deny".into(),
            reason: "no policy is set for this wallet".into(),
            observed: None,
            limit: None,
            usd_value: None,
            tier_rules: Vec::new(),
            budgets: Vec::new(),
            policy_hash: "none".into(),
            denial: Some(DenialKind::Rule),
        };
    };
    let mut evaluation = Evaluation::new(policy, action, ctx);
    if let Some((asset, amount)) = evaluation.outflow.filter(|(asset, _)| policy.prices.contains_key(asset)) {
        evaluation.outflow_usd = Some(evaluation.usd(asset, amount));
    }
    let usd_value = match &evaluation.outflow_usd {
        Some(Ok(usd)) => Some(format!("{} USD", format_units(*usd, USD_DECIMALS))),
        _ => None,
    };
    let outcome = evaluation.permitted().and_then(|()| {
        for rule in &policy.rules {
            evaluation.constraint(rule)?;
        }
        evaluation.tier()
    });
    let Evaluation { budgets, .. } = evaluation;
    match outcome {
        Ok((tier, delay_secs, tier_rules)) => Decision {
            verdict: Verdict::Allow,
            tier,
            delay_secs,
            code: None,
            rule_id: "allowed".into(),
            reason: "no rule was violated".into(),
            observed: None,
            limit: None,
            usd_value,
            tier_rules,
            budgets,
            policy_hash: policy.hash.clone(),
            denial: None,
        },
        Err(d) => Decision {
            verdict: Verdict::Deny,
            tier: Tier::Instant,
            delay_secs: None,
            code: Some(d.code),
            rule_id: d.rule_id,
            reason: d.reason,
            observed: d.observed,
            limit: d.limit,
            usd_value,
            tier_rules: Vec::new(),
            budgets,
            policy_hash: policy.hash.clone(),
            denial: Some(d.kind),
        },
    }
}

/// Every rolling cap's and velocity rule's budget at `ctx.now`, whatever the next action
/// is (what an agent has left). A USD window whose earlier spends cannot be valued now
/// is left out.
pub fn budgets(policy: &Policy, ctx: &Context<'_>) -> Vec<Budget> {
    // Budgets depend on the history only; this action measures nothing.
    let idle = Action::RawHash { hash: alloy_primitives::B256::ZERO };
    let mut evaluation = Evaluation::new(policy, &idle, ctx);
    let mut budgets = Vec::new();
    for rule in &policy.rules {
        match &rule.kind {
            RuleKind::RollingCap { basis, window_secs, limit } => {
                if let Ok(budget) = evaluation.window_budget(&rule.id, *basis, *window_secs, *limit) {
                    budgets.push(budget);
                }
            }
            RuleKind::Velocity { window_secs, max_count } => {
                budgets.push(evaluation.velocity_budget(&rule.id, *window_secs, *max_count));
            }
            _ => {}
        }
    }
    budgets
}
