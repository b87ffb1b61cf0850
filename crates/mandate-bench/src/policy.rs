//! `mandate bench policy`: time per policy decision for a 100-rule policy (the pure
//! engine: no database, no chain), against a one-rule policy in the same run.

use std::collections::BTreeMap;
use std::time::Instant;

use alloy_primitives::{Address, U256};
use mandate_core::action::{Action, Asset};
use mandate_core::policy::{evaluate, Context, Fees, Policy, PriceQuote, SimulationOutcome, Spend, Verdict};
use serde_json::{json, Value};

use crate::mpc::{internal, percentile};
use crate::BenchResult as CliResult;

fn address(n: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    Address::from(bytes)
}

const TOKEN: u64 = 0xA11CE;
const ROUTER: u64 = 0xB0B;
const PAYEE: u64 = 7;
const ZONES: [&str; 3] = ["UTC", "Europe/Berlin", "America/New_York"];

/// One hundred rules of every kind that applies to the measured actions, sized so
/// that every rule is evaluated and none denies (the slowest path).
fn hundred_rules() -> Value {
    let token = address(TOKEN).to_checksum(None);
    let router = address(ROUTER).to_checksum(None);
    let payees: Vec<String> = (1..=40).map(|n| address(n).to_checksum(None)).collect();
    let blocked: Vec<String> = (1000..1040).map(|n| address(n).to_checksum(None)).collect();
    let mut rules = vec![
        json!({"id": "cap", "type": "max_per_tx", "amount": "10"}),
        json!({"id": "tst-cap", "type": "max_per_tx", "asset": "TST", "amount": "1000000"}),
        json!({"id": "usd-cap", "type": "max_per_tx_usd", "usd": "100000"}),
        json!({"id": "tokens", "type": "allow_tokens", "tokens": ["TST"]}),
        json!({"id": "router", "type": "allow_contracts", "contracts": [{"address": router, "functions": [
            {"signature": "swap(address tokenIn, uint256 amountIn, uint256 minOut)", "conditions": [
                {"arg": "tokenIn", "op": "eq", "value": token},
                {"arg": "amountIn", "op": "lte", "value": "1000000000000000000000"},
                {"arg": "minOut", "op": "gte", "value": "1"}]}]}]}),
        json!({"id": "new", "type": "new_recipient", "tier": "notify"}),
        json!({"id": "chains", "type": "allow_chains", "chain_ids": [1, 10, 8453, 31337]}),
        json!({"id": "sim", "type": "require_simulation"}),
    ];
    for i in 0..12 {
        rules.push(
            json!({"id": format!("day-{i}"), "type": "rolling_cap", "window_secs": 3600 * (i + 1), "amount": "1000"}),
        );
        rules.push(json!({"id": format!("tst-day-{i}"), "type": "rolling_cap", "asset": "TST", "window_secs": 3600 * (i + 1), "amount": "100000000"}));
        rules.push(json!({"id": format!("usd-day-{i}"), "type": "rolling_cap_usd", "window_secs": 3600 * (i + 1), "usd": "100000000"}));
        rules.push(json!({"id": format!("velocity-{i}"), "type": "velocity", "window_secs": 600 * (i + 1), "max_count": 100000}));
        rules.push(json!({"id": format!("allow-{i}"), "type": "allow_recipients", "addresses": payees}));
        rules.push(json!({"id": format!("deny-{i}"), "type": "deny_recipients", "addresses": blocked}));
        rules.push(json!({"id": format!("hours-{i}"), "type": "time_window", "timezone": ZONES.get(i % 3).copied().unwrap_or("UTC")}));
    }
    for i in 0..8 {
        rules.push(
            json!({"id": format!("gas-{i}"), "type": "gas_cap", "max_gas": 1_000_000, "max_fee_per_gas_gwei": "500"}),
        );
    }
    let rules = rules.into_iter().take(98).chain([
        json!({"id": "tiers", "type": "tiers", "notify_above": "5", "delay_above": "8", "approval_above": "9"}),
        json!({"id": "usd-tiers", "type": "tiers", "basis": "usd", "approval_above": "90000"}),
    ]);
    json!({
        "version": 1,
        "tokens": {"TST": {"address": token, "decimals": 6}},
        "prices": {"native": {"usd": "2000"}, "TST": {"usd": "1"}},
        "rules": rules.collect::<Vec<_>>(),
    })
}

fn time_decisions(policy: &Policy, action: &Action, ctx: &Context<'_>, iterations: usize) -> CliResult<Vec<f64>> {
    let decision = evaluate(Some(policy), action, ctx);
    if decision.verdict != Verdict::Allow {
        return Err(internal(format!("the benchmark action must pass every rule, got {decision:?}")));
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let decision = evaluate(Some(policy), action, ctx);
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(decision);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

/// Runs the benchmark: `mandate bench policy`.
pub fn policy(iterations: usize, history_len: usize) -> CliResult {
    if iterations < 1000 {
        return Err(crate::BenchError::invalid("--iterations must be at least 1000 for a meaningful p99"));
    }
    let big = Policy::parse(&hundred_rules().to_string()).map_err(internal)?;
    let small =
        Policy::parse(r#"{"version":1,"rules":[{"id":"cap","type":"max_per_tx","amount":"10"}]}"#).map_err(internal)?;
    let now = 1_800_000_000;
    let history: Vec<Spend> = (0..history_len as u64)
        .map(|i| Spend {
            at: now - 86_400 + i * 86_400 / history_len.max(1) as u64,
            asset: if i % 2 == 0 { Asset::Native } else { Asset::Token(address(TOKEN)) },
            amount: U256::from(1_000u64),
            usd_micro: Some(U256::from(1u64)),
            chain_id: None,
            x402: false,
        })
        .collect();
    let prices: BTreeMap<Asset, PriceQuote> = BTreeMap::new();
    let simulation = SimulationOutcome::Success;
    let ctx = Context {
        now,
        chain_id: 31337,
        history: &history,
        prices: &prices,
        recipient_seen: true,
        fees: Some(Fees { gas: 60_000, max_fee_per_gas: 2_000_000_000 }),
        simulation: Some(&simulation),
    };
    let native = Action::NativeTransfer { to: address(PAYEE), value: U256::from(10u64).pow(U256::from(18u64)) };
    let token = Action::TokenTransfer {
        token: address(TOKEN),
        from: None,
        to: address(PAYEE),
        amount: U256::from(5_000_000u64),
    };
    let swap = mandate_core::decode::encode_call(
        "swap(address,uint256,uint256)",
        &[json!(address(TOKEN).to_checksum(None)), json!("1000"), json!("1")],
    )
    .map_err(internal)?;
    let registered = |to: Address, selector: [u8; 4]| big.registered_function(to, selector);
    let call = mandate_core::decode::decode_call(address(ROUTER), U256::ZERO, &swap, &registered).map_err(internal)?;

    let baseline = time_decisions(&small, &native, &ctx, iterations)?;
    let mut cases = vec![json!({"case": "baseline: 1 rule, native transfer",
        "p50_us": percentile(&baseline, 0.5), "p99_us": percentile(&baseline, 0.99)})];
    let mut worst: f64 = 0.0;
    let measured = [
        ("100 rules, native transfer", &native),
        ("100 rules, ERC-20 transfer", &token),
        ("100 rules, contract call with 3 argument conditions", &call),
    ];
    for (name, action) in measured {
        let samples = time_decisions(&big, action, &ctx, iterations)?;
        worst = worst.max(percentile(&samples, 0.99));
        cases.push(json!({"case": name, "p50_us": percentile(&samples, 0.5), "p99_us": percentile(&samples, 0.99)}));
    }
    Ok(json!({
        "iterations": iterations,
        "history_spends": history_len,
        "rules": big.rules.len(),
        "cases": cases,
        "target_p99_us": 50.0,
        "worst_p99_us": worst,
        "meets_target": worst < 50.0,
        "notes": "pure engine: evaluate() on an in-memory policy, history, prices and fees; no database, no chain. \
                  Every rule applies and none denies (the slowest path).",
    }))
}
