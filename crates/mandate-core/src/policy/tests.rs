use std::collections::BTreeMap;

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, B256, U256};
use proptest::prelude::*;

use super::*;
use crate::action::{DecodedCall, TypedDataAction};
use crate::amount::parse_units;

const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const MALLORY: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const ROUTER: &str = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const FEED: &str = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";

fn addr(text: &str) -> Address {
    text.parse().unwrap()
}

fn policy(rules: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"version":1,"tokens":{{"TST":{{"address":"{TOKEN}","decimals":6}}}},
            "prices":{{"native":{{"usd":"2000"}},"TST":{{"aggregator":"{FEED}","max_age_secs":600}}}},
            "rules":{rules}}}"#
    ))
    .unwrap()
}

fn send(to: &str, eth: &str) -> Action {
    Action::NativeTransfer { to: addr(to), value: parse_units(eth, 18).unwrap() }
}

fn token_send(to: &str, amount: &str) -> Action {
    Action::TokenTransfer { token: addr(TOKEN), from: None, to: addr(to), amount: parse_units(amount, 6).unwrap() }
}

struct Ctx {
    now: u64,
    history: Vec<Spend>,
    prices: BTreeMap<Asset, PriceQuote>,
    seen: bool,
    fees: Option<Fees>,
    simulation: Option<SimulationOutcome>,
}

impl Ctx {
    fn new(now: u64) -> Ctx {
        let mut prices = BTreeMap::new();
        // TST at $1.00 with 8 decimals, updated at `now`.
        prices.insert(
            Asset::Token(addr(TOKEN)),
            PriceQuote { answer: U256::from(100_000_000u64), decimals: 8, updated_at: now },
        );
        Ctx {
            now,
            history: Vec::new(),
            prices,
            seen: true,
            fees: Some(Fees { gas: 21_000, max_fee_per_gas: 2_000_000_000 }),
            simulation: Some(SimulationOutcome::Success),
        }
    }

    fn eval(&self, policy: &Policy, action: &Action) -> Decision {
        let ctx = Context {
            now: self.now,
            chain_id: 31337,
            history: &self.history,
            prices: &self.prices,
            recipient_seen: self.seen,
            fees: self.fees,
            simulation: self.simulation.as_ref(),
        };
        evaluate(Some(policy), action, &ctx)
    }
}

fn denied_by(decision: &Decision) -> &str {
    assert_eq!(decision.verdict, Verdict::Deny, "{decision:?}");
    &decision.rule_id
}

fn allowed(decision: &Decision) {
    assert_eq!(decision.verdict, Verdict::Allow, "{decision:?}");
}

const CAP: &str = r#"{"id":"cap","type":"max_per_tx","amount":"1"}"#;

#[test]
fn default_deny_for_every_kind_without_a_permitting_rule() {
    let ctx = Ctx::new(1_000);
    let none = Context {
        now: 0,
        chain_id: 1,
        history: &[],
        prices: &BTreeMap::new(),
        recipient_seen: true,
        fees: None,
        simulation: None,
    };
    assert_eq!(evaluate(None, &send(ALICE, "0.1"), &none).rule_id, "default_deny");
    let p = policy(r#"[{"id":"v","type":"velocity","window_secs":60,"max_count":5}]"#);
    let actions = [
        send(ALICE, "0.1"),
        token_send(ALICE, "1"),
        Action::TokenApprove { token: addr(TOKEN), spender: addr(ROUTER), amount: U256::from(1), increase: false },
        Action::ContractCall { to: addr(ROUTER), value: U256::ZERO, selector: [1, 2, 3, 4], call: None },
        Action::TypedData(permit(31337, TOKEN)),
        Action::PersonalMessage { message: b"hello".to_vec() },
        Action::RawHash { hash: B256::ZERO },
    ];
    for action in &actions {
        let d = ctx.eval(&p, action);
        assert_eq!((d.rule_id.as_str(), d.code), ("default_deny", Some(ErrorCode::PolicyDenied)), "{action:?}");
    }
    // A native cap does not permit token transfers.
    assert_eq!(denied_by(&ctx.eval(&policy(&format!("[{CAP}]")), &token_send(ALICE, "1"))), "default_deny");
}

#[test]
fn native_rules_deny_with_their_ids() {
    let p = policy(&format!(
        r#"[{CAP},
           {{"id":"deny","type":"deny_recipients","addresses":["{MALLORY}"]}},
           {{"id":"day","type":"rolling_cap","window_secs":86400,"amount":"3"}},
           {{"id":"vel","type":"velocity","window_secs":60,"max_count":2}},
           {{"id":"allow","type":"allow_recipients","addresses":["{ALICE}"]}}]"#
    ));
    let mut ctx = Ctx::new(100);
    allowed(&ctx.eval(&p, &send(ALICE, "1")));
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "1.01"))), "cap");
    assert_eq!(denied_by(&ctx.eval(&p, &send(MALLORY, "0.1"))), "deny");
    ctx.history = vec![Spend {
        at: 10,
        asset: Asset::Native,
        amount: parse_units("2.5", 18).unwrap(),
        usd_micro: None,
        chain_id: None,
        x402: false,
    }];
    let d = ctx.eval(&p, &send(ALICE, "0.6"));
    assert_eq!((d.rule_id.as_str(), d.limit.as_deref()), ("day", Some("3 ETH")));
    let budget = d.budgets.iter().find(|b| b.rule_id == "day").unwrap();
    assert_eq!((budget.remaining(), budget.frees_at), (parse_units("0.5", 18).unwrap(), Some(86_410)));
    assert_eq!(serde_json::to_value(budget).unwrap()["remaining"], "0.5 ETH");
    ctx.now = 86_410;
    allowed(&ctx.eval(&p, &send(ALICE, "0.6")));
    ctx.now = 100;
    ctx.history = vec![
        Spend { at: 90, asset: Asset::Native, amount: U256::from(1), usd_micro: None, chain_id: None, x402: false },
        Spend {
            at: 95,
            asset: Asset::Token(addr(TOKEN)),
            amount: U256::from(1),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
    ];
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.1"))), "vel");
    ctx.history.clear();
    assert_eq!(denied_by(&ctx.eval(&p, &send("0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0.1"))), "allow");
}

#[test]
fn token_caps_are_per_token() {
    let p = policy(&format!(
        r#"[{CAP},
           {{"id":"tst","type":"max_per_tx","asset":"TST","amount":"100"}},
           {{"id":"tst-day","type":"rolling_cap","asset":"TST","window_secs":86400,"amount":"150"}},
           {{"id":"tokens","type":"allow_tokens","tokens":["TST"]}}]"#
    ));
    let mut ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &token_send(ALICE, "100")));
    let d = ctx.eval(&p, &token_send(ALICE, "100.000001"));
    assert_eq!((d.rule_id.as_str(), d.limit.as_deref()), ("tst", Some("100 TST")));
    // Native spends do not count against the token window, token spends do.
    ctx.history = vec![
        Spend {
            at: 900,
            asset: Asset::Native,
            amount: parse_units("0.9", 18).unwrap(),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
        Spend {
            at: 900,
            asset: Asset::Token(addr(TOKEN)),
            amount: parse_units("60", 6).unwrap(),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
    ];
    allowed(&ctx.eval(&p, &token_send(ALICE, "90")));
    assert_eq!(denied_by(&ctx.eval(&p, &token_send(ALICE, "90.5"))), "tst-day");
    // The summary of what is left: the same window whatever the next action is.
    let ctx_view = Context {
        now: ctx.now,
        chain_id: 31337,
        history: &ctx.history,
        prices: &ctx.prices,
        recipient_seen: true,
        fees: None,
        simulation: None,
    };
    let left = budgets(&p, &ctx_view);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].rule_id.as_str(), left[0].remaining()), ("tst-day", parse_units("90", 6).unwrap()));
    assert_eq!(left[0].frees_at, Some(900 + 86_400));
    let other = Action::TokenTransfer { token: addr(ROUTER), from: None, to: addr(ALICE), amount: U256::from(1) };
    let with_usd_cap = policy(
        r#"[{"id":"tokens","type":"allow_tokens","tokens":["TST"]},{"id":"usd","type":"max_per_tx_usd","usd":"10"}]"#,
    );
    assert_eq!(denied_by(&ctx.eval(&with_usd_cap, &other)), "tokens");
}

#[test]
fn usd_caps_use_prices_and_refuse_stale_or_missing_ones() {
    let p = policy(
        r#"[{"id":"usd-tx","type":"max_per_tx_usd","usd":"500"},
            {"id":"usd-day","type":"rolling_cap_usd","window_secs":86400,"usd":"800"}]"#,
    );
    let mut ctx = Ctx::new(10_000);
    // 0.25 ETH at the static $2000 = $500: allowed; a wei more is not.
    let d = ctx.eval(&p, &send(ALICE, "0.25"));
    allowed(&d);
    assert_eq!(d.usd_value.as_deref(), Some("500 USD"));
    let d = ctx
        .eval(&p, &Action::NativeTransfer { to: addr(ALICE), value: parse_units("0.25", 18).unwrap() + U256::from(1) });
    assert_eq!((d.rule_id.as_str(), d.code), ("usd-tx", Some(ErrorCode::PolicyDenied)));
    // Rolling: $400 of TST earlier (valued when spent) + $400 now = $800 allowed, $401 not.
    ctx.history = vec![Spend {
        at: 9_000,
        asset: Asset::Token(addr(TOKEN)),
        amount: parse_units("400", 6).unwrap(),
        usd_micro: Some(parse_units("400", 6).unwrap()),
        chain_id: None,
        x402: false,
    }];
    allowed(&ctx.eval(&p, &token_send(ALICE, "400")));
    assert_eq!(denied_by(&ctx.eval(&p, &token_send(ALICE, "400.01"))), "usd-day");
    // The aggregator price is older than its max age: PRICE_UNAVAILABLE, never a guess.
    ctx.prices.get_mut(&Asset::Token(addr(TOKEN))).unwrap().updated_at = 10_000 - 601;
    let d = ctx.eval(&p, &token_send(ALICE, "1"));
    assert_eq!((d.rule_id.as_str(), d.code), ("usd-tx", Some(ErrorCode::PriceUnavailable)));
    ctx.prices.clear();
    assert_eq!(ctx.eval(&p, &token_send(ALICE, "1")).code, Some(ErrorCode::PriceUnavailable));
    // Native still has its static price.
    allowed(&ctx.eval(&p, &send(ALICE, "0.1")));
}

#[test]
fn usd_rules_value_nothing_at_zero_and_refuse_unpriced_assets_for_good() {
    // Only TST has a price: a zero-value native spend (an approval, a call) is worth $0.
    let p = Policy::parse(&format!(
        r#"{{"version":1,"tokens":{{"TST":{{"address":"{TOKEN}","decimals":6}}}},
            "prices":{{"TST":{{"aggregator":"{FEED}","max_age_secs":600}}}},
            "rules":[{{"id":"usd","type":"rolling_cap_usd","window_secs":3600,"usd":"100"}},
                     {{"id":"usd-tx","type":"max_per_tx_usd","usd":"100"}}]}}"#
    ))
    .unwrap();
    let mut ctx = Ctx::new(1_000);
    ctx.history =
        vec![Spend { at: 990, asset: Asset::Native, amount: U256::ZERO, usd_micro: None, chain_id: None, x402: false }];
    allowed(&ctx.eval(&p, &token_send(ALICE, "50")));
    // An asset without a price source is the policy's refusal (not retryable), not a stale price.
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((d.rule_id.as_str(), d.code), ("usd", Some(ErrorCode::PolicyDenied)), "{d:?}");
    assert!(d.reason.contains("no price source"), "{d:?}");
}

#[test]
fn tiers_and_new_recipients_raise_the_tier() {
    let p = policy(
        r#"[{"id":"cap","type":"max_per_tx","amount":"10"},
           {"id":"t","type":"tiers","notify_above":"0.1","delay_above":"1","approval_above":"5","delay_secs":600},
           {"id":"usd","type":"tiers","basis":"usd","approval_above":"8000"},
           {"id":"new","type":"new_recipient"}]"#,
    );
    let mut ctx = Ctx::new(1_000);
    let tier = |ctx: &Ctx, eth: &str| {
        let d = ctx.eval(&p, &send(ALICE, eth));
        allowed(&d);
        (d.tier, d.delay_secs)
    };
    assert_eq!(tier(&ctx, "0.1"), (Tier::Instant, None));
    assert_eq!(tier(&ctx, "0.2"), (Tier::Notify, None));
    assert_eq!(tier(&ctx, "2"), (Tier::Delay, Some(600)));
    assert_eq!(tier(&ctx, "5.01"), (Tier::Approval, None));
    // $2000 × 4.5 = $9000 is above the USD approval threshold.
    assert_eq!(tier(&ctx, "4.5"), (Tier::Approval, None));
    ctx.seen = false;
    let d = ctx.eval(&p, &send(ALICE, "0.01"));
    assert_eq!((d.tier, d.tier_rules.clone()), (Tier::Approval, vec!["new".to_string()]));
    // Only the rules that reached the final tier are named (not "t", which asked for notify).
    let d = ctx.eval(&p, &send(ALICE, "0.2"));
    assert_eq!((d.tier, d.tier_rules.clone()), (Tier::Approval, vec!["new".to_string()]));
}

#[test]
fn a_windowed_tier_counts_what_was_spent_so_splitting_does_not_dodge_it() {
    let rules = |window: &str| {
        policy(&format!(
            r#"[{{"id":"cap","type":"max_per_tx","amount":"10"}},
               {{"id":"big","type":"tiers","approval_above":"1"{window}}}]"#
        ))
    };
    let (plain, windowed) = (rules(""), rules(r#","window_secs":3600"#));
    assert_eq!(plain.lookback_secs(), 0);
    assert_eq!(windowed.lookback_secs(), 3600);
    let mut ctx = Ctx::new(10_000);
    // 0.8 ETH an hour ago minus a minute, 0.5 ETH two hours ago (outside the window).
    ctx.history = vec![
        Spend {
            at: 10_000 - 3540,
            asset: Asset::Native,
            amount: parse_units("0.8", 18).unwrap(),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
        Spend {
            at: 10_000 - 7200,
            asset: Asset::Native,
            amount: parse_units("0.5", 18).unwrap(),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
    ];
    let tier = |p: &Policy, ctx: &Ctx, eth: &str| {
        let d = ctx.eval(p, &send(ALICE, eth));
        allowed(&d);
        (d.tier, d.tier_rules)
    };
    // 0.5 ETH alone is below the threshold; with the 0.8 in the window it is above.
    assert_eq!(tier(&plain, &ctx, "0.5").0, Tier::Instant);
    assert_eq!(tier(&windowed, &ctx, "0.5"), (Tier::Approval, vec!["big".to_string()]));
    assert_eq!(tier(&windowed, &ctx, "0.2").0, Tier::Instant, "0.8 + 0.2 is not above 1");
    // Once the 0.8 leaves the window, 0.5 is instant again.
    ctx.now = 10_000 + 61;
    assert_eq!(tier(&windowed, &ctx, "0.5").0, Tier::Instant);
    // The window is validated like any other.
    let bad =
        Policy::parse(r#"{"version":1,"rules":[{"id":"t","type":"tiers","approval_above":"1","window_secs":"soon"}]}"#);
    assert!(bad.is_err());
}

#[test]
fn approvals_need_a_listed_spender_and_a_cap() {
    let p = policy(&format!(
        r#"[{{"id":"approve","type":"erc20_approve","token":"TST","spenders":["{ROUTER}"],"amount":"1000"}}]"#
    ));
    let ctx = Ctx::new(1_000);
    let approve = |spender: &str, amount: U256| Action::TokenApprove {
        token: addr(TOKEN),
        spender: addr(spender),
        amount,
        increase: false,
    };
    allowed(&ctx.eval(&p, &approve(ROUTER, parse_units("1000", 6).unwrap())));
    let d = ctx.eval(&p, &approve(ROUTER, U256::MAX));
    assert_eq!((d.rule_id.as_str(), d.reason.as_str()), ("approve", "unlimited approvals are not allowed"));
    assert_eq!(denied_by(&ctx.eval(&p, &approve(ROUTER, parse_units("1000.01", 6).unwrap()))), "approve");
    let d = ctx.eval(&p, &approve(MALLORY, U256::from(1)));
    assert_eq!((d.rule_id.as_str(), d.reason.as_str()), ("approve", "spender is not on the approval allowlist"));
    let unlimited = policy(&format!(
        r#"[{{"id":"approve","type":"erc20_approve","spenders":["{ROUTER}"],"allow_unlimited":true}}]"#
    ));
    allowed(&ctx.eval(&unlimited, &approve(ROUTER, U256::MAX)));
    assert!(Policy::parse(&format!(
        r#"{{"version":1,"rules":[{{"id":"a","type":"erc20_approve","spenders":["{ROUTER}"]}}]}}"#
    ))
    .is_err());
}

fn swap_call(token: &str, amount_in: u64, min_out: u64) -> Action {
    let function = crate::decode::parse_function("swap(address tokenIn, uint256 amountIn, uint256 minOut)").unwrap();
    Action::ContractCall {
        to: addr(ROUTER),
        value: U256::ZERO,
        selector: function.selector().0,
        call: Some(DecodedCall {
            signature: function.signature(),
            names: vec!["tokenIn".into(), "amountIn".into(), "minOut".into()],
            args: vec![
                DynSolValue::Address(addr(token)),
                DynSolValue::Uint(U256::from(amount_in), 256),
                DynSolValue::Uint(U256::from(min_out), 256),
            ],
        }),
    }
}

#[test]
fn contract_calls_need_a_listed_function_and_matching_arguments() {
    let p = policy(&format!(
        r#"[{{"id":"router","type":"allow_contracts","contracts":[{{"address":"{ROUTER}","functions":[
              {{"signature":"swap(address tokenIn, uint256 amountIn, uint256 minOut)","conditions":[
                  {{"arg":"tokenIn","op":"in","values":["{TOKEN}"]}},
                  {{"arg":1,"op":"lte","value":"1000"}},
                  {{"arg":"minOut","op":"gte","value":"1"}}]}}]}}]}}]"#
    ));
    let ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &swap_call(TOKEN, 1000, 1)));
    let d = ctx.eval(&p, &swap_call(TOKEN, 1001, 1));
    assert_eq!((d.rule_id.as_str(), d.observed.as_deref(), d.limit.as_deref()), ("router", Some("1001"), Some("1000")));
    assert_eq!(denied_by(&ctx.eval(&p, &swap_call(MALLORY, 10, 1))), "router");
    assert_eq!(denied_by(&ctx.eval(&p, &swap_call(TOKEN, 10, 0))), "router");
    let other_selector =
        Action::ContractCall { to: addr(ROUTER), value: U256::ZERO, selector: [0xde, 0xad, 0xbe, 0xef], call: None };
    let d = ctx.eval(&p, &other_selector);
    assert_eq!((d.rule_id.as_str(), d.reason.as_str()), ("router", "function is not allowed on this contract"));
    let other_contract =
        Action::ContractCall { to: addr(MALLORY), value: U256::ZERO, selector: [1, 2, 3, 4], call: None };
    assert_eq!(ctx.eval(&p, &other_contract).reason, "contract is not on the allowlist");
    // The registry the decoder uses comes from the same rule.
    assert!(p.registered_function(addr(ROUTER), swap_call(TOKEN, 1, 1).selector().unwrap()).is_some());
    // A call that carries value also needs a native cap.
    let mut paying = swap_call(TOKEN, 10, 1);
    if let Action::ContractCall { value, .. } = &mut paying {
        *value = U256::from(5);
    }
    assert_eq!(denied_by(&ctx.eval(&p, &paying)), "default_deny");
}

impl Action {
    fn selector(&self) -> Option<[u8; 4]> {
        match self {
            Action::ContractCall { selector, .. } => Some(*selector),
            _ => None,
        }
    }
}

fn permit(chain_id: u64, contract: &str) -> TypedDataAction {
    TypedDataAction {
        chain_id: Some(chain_id),
        verifying_contract: Some(addr(contract)),
        name: Some("Test Token".into()),
        primary_type: "Permit".into(),
        signing_hash: B256::ZERO,
    }
}

#[test]
fn signatures_typed_data_messages_and_raw_hashes() {
    let p = policy(&format!(
        r#"[{{"id":"permits","type":"typed_data","domains":[{{"chain_id":31337,"verifying_contract":"{TOKEN}","primary_types":["Permit"]}}]}},
           {{"id":"login","type":"personal_message","mode":"allow","pattern":"^Sign in to example\\.com"}},
           {{"id":"no-transfers","type":"personal_message","mode":"deny","pattern":"(?i)transfer"}},
           {{"id":"chains","type":"allow_chains","chain_ids":[31337]}}]"#
    ));
    let ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &Action::TypedData(permit(31337, TOKEN))));
    let d = ctx.eval(&p, &Action::TypedData(permit(31337, ROUTER)));
    assert_eq!(
        (d.rule_id.as_str(), d.reason.as_str()),
        ("permits", "typed data domain or primary type is not allowed")
    );
    let mut other_type = permit(31337, TOKEN);
    other_type.primary_type = "Order".into();
    assert_eq!(denied_by(&ctx.eval(&p, &Action::TypedData(other_type))), "permits");
    assert_eq!(denied_by(&ctx.eval(&p, &Action::TypedData(permit(1, TOKEN)))), "permits");
    let message = |text: &str| Action::PersonalMessage { message: text.as_bytes().to_vec() };
    allowed(&ctx.eval(&p, &message("Sign in to example.com at 12:00")));
    assert_eq!(denied_by(&ctx.eval(&p, &message("Hello"))), "login");
    assert_eq!(denied_by(&ctx.eval(&p, &message("Sign in to example.com and TRANSFER all"))), "no-transfers");
    assert_eq!(denied_by(&ctx.eval(&p, &Action::RawHash { hash: B256::ZERO })), "default_deny");
    let raw = policy(r#"[{"id":"raw","type":"raw_hash","allow":true}]"#);
    allowed(&ctx.eval(&raw, &Action::RawHash { hash: B256::ZERO }));
}

#[test]
fn time_windows_follow_the_time_zone() {
    // Weekdays 09:00-17:00 in Berlin (UTC+1 in January).
    let p = policy(&format!(
        r#"[{CAP},{{"id":"office","type":"time_window","timezone":"Europe/Berlin","days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"17:00"}}]"#
    ));
    // 2026-01-05 is a Monday. 08:30 UTC = 09:30 Berlin.
    let monday_0830_utc = 1_767_601_800;
    allowed(&Ctx::new(monday_0830_utc).eval(&p, &send(ALICE, "0.1")));
    let d = Ctx::new(monday_0830_utc - 3600).eval(&p, &send(ALICE, "0.1"));
    assert_eq!((d.rule_id.as_str(), d.observed.as_deref()), ("office", Some("mon 08:30")));
    let saturday = monday_0830_utc - 2 * 86_400;
    assert_eq!(denied_by(&Ctx::new(saturday).eval(&p, &send(ALICE, "0.1"))), "office");
    // An overnight window belongs to the day it starts on: Friday 22:00 → Saturday 06:00.
    let night = policy(&format!(
        r#"[{CAP},{{"id":"night","type":"time_window","timezone":"UTC","days":["fri"],"start":"22:00","end":"06:00"}}]"#
    ));
    let saturday_0300_utc = 1_767_601_800 - 2 * 86_400 - 8 * 3600 - 1800 + 3 * 3600;
    allowed(&Ctx::new(saturday_0300_utc).eval(&night, &send(ALICE, "0.1")));
    assert_eq!(denied_by(&Ctx::new(saturday_0300_utc + 86_400).eval(&night, &send(ALICE, "0.1"))), "night");
}

#[test]
fn chain_allowlist_applies_to_transactions_and_typed_data() {
    let p = policy(&format!(r#"[{CAP},{{"id":"mainnet","type":"allow_chains","chain_ids":[1]}}]"#));
    let ctx = Ctx::new(1_000);
    // The context's chain is 31337.
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((d.rule_id.as_str(), d.observed.as_deref()), ("mainnet", Some("31337")));
    let both = policy(&format!(
        r#"[{CAP},{{"id":"chains","type":"allow_chains","chain_ids":[31337]}},
           {{"id":"permits","type":"typed_data","domains":[{{"verifying_contract":"{TOKEN}"}}]}}]"#
    ));
    allowed(&ctx.eval(&both, &send(ALICE, "0.1")));
    allowed(&ctx.eval(&both, &Action::TypedData(permit(31337, TOKEN))));
    assert_eq!(denied_by(&ctx.eval(&both, &Action::TypedData(permit(1, TOKEN)))), "chains");
}

#[test]
fn gas_caps_and_simulation() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"gas","type":"gas_cap","max_gas":50000,"max_fee_per_gas_gwei":"50"}},{{"id":"sim","type":"require_simulation"}}]"#
    ));
    let mut ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &send(ALICE, "0.1")));
    ctx.fees = Some(Fees { gas: 50_001, max_fee_per_gas: 1 });
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.1"))), "gas");
    ctx.fees = Some(Fees { gas: 21_000, max_fee_per_gas: 50_000_000_001 });
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((d.rule_id.as_str(), d.observed.as_deref()), ("gas", Some("50.000000001 gwei")));
    // Over the cap is a rule's denial; unknown fees are a denial of their own kind
    // (the daemon reports the failed gas estimate instead), whatever the reason's words.
    assert_eq!(d.denial, Some(DenialKind::Rule));
    ctx.fees = None;
    let unknown = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&unknown), unknown.denial), ("gas", Some(DenialKind::FeesUnknown)));
    assert_eq!(ctx.eval(&policy(&format!("[{CAP}]")), &send(ALICE, "0.1")).denial, None, "no gas cap, no denial");
    ctx.fees = Some(Fees { gas: 21_000, max_fee_per_gas: 1 });
    assert_eq!(ctx.eval(&p, &send(ALICE, "0.1")).denial, None);
    ctx.simulation = Some(SimulationOutcome::Reverted("Target: minOut above amountIn".into()));
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!(
        (d.rule_id.as_str(), d.code, d.observed.as_deref()),
        ("sim", Some(ErrorCode::SimulationReverted), Some("Target: minOut above amountIn"))
    );
    // A reverting call has no fees: the gas cap before the simulation rule does not mask the reason.
    ctx.fees = None;
    ctx.simulation = Some(SimulationOutcome::Reverted("nope".into()));
    assert_eq!(ctx.eval(&p, &send(ALICE, "0.1")).code, Some(ErrorCode::SimulationReverted));
    ctx.simulation = None;
    ctx.fees = Some(Fees { gas: 21_000, max_fee_per_gas: 1 });
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.1"))), "sim");
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
        (r#"{"version":1,"rules":[],"extra":true}"#, "$.extra"),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"velocity","window_secs":18446744073709551615,"max_count":1}]}"#,
            "$.rules[0].window_secs",
        ),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"max_per_tx","amount":"1"},{"id":"a","type":"max_per_tx","amount":"1"}]}"#,
            "$.rules[1].id",
        ),
        (r#"{"version":1,"rules":[{"id":"a","type":"max_per_tx","asset":"DOGE","amount":"1"}]}"#, "$.rules[0].asset"),
        (
            r#"{"version":1,"tokens":{"T":{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","decimals":2}},"rules":[{"id":"a","type":"max_per_tx","asset":"T","amount":"1.001"}]}"#,
            "$.rules[0].amount",
        ),
        (r#"{"version":1,"tokens":{"T":{"address":"0x12","decimals":2}},"rules":[]}"#, "$.tokens.T.address"),
        (r#"{"version":1,"prices":{"native":{"usd":"-1"}},"rules":[]}"#, "$.prices.native.usd"),
        (
            r#"{"version":1,"prices":{"native":{"aggregator":"0x5FbDB2315678afecb367f032d93F642f64180aa3"}},"rules":[]}"#,
            "$.prices.native.max_age_secs",
        ),
        (r#"{"version":1,"rules":[{"id":"a","type":"time_window","timezone":"Mars/Olympus"}]}"#, "$.rules[0].timezone"),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"time_window","timezone":"UTC","start":"25:00"}]}"#,
            "$.rules[0].start",
        ),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"time_window","timezone":"UTC","days":["someday"]}]}"#,
            "$.rules[0].days[0]",
        ),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"personal_message","mode":"allow","pattern":"("}]}"#,
            "$.rules[0].pattern",
        ),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"allow_contracts","contracts":[{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","functions":[{"signature":"swap(addr"}]}]}]}"#,
            "$.rules[0].contracts[0].functions[0].signature",
        ),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"allow_contracts","contracts":[{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","functions":[{"signature":"swap(address,uint256)","conditions":[{"arg":0,"op":"lte","value":"1"}]}]}]}]}"#,
            "$.rules[0].contracts[0].functions[0].conditions[0].op",
        ),
        (
            r#"{"version":1,"rules":[{"id":"a","type":"allow_contracts","contracts":[{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","functions":[{"signature":"swap(address,uint256)","conditions":[{"arg":5,"op":"eq","value":"1"}]}]}]}]}"#,
            "$.rules[0].contracts[0].functions[0].conditions[0].arg",
        ),
        (r#"{"version":1,"rules":[{"id":"a","type":"tiers","notify_above":"5","approval_above":"1"}]}"#, "$.rules[0]"),
        (r#"{"version":1,"rules":[{"id":"a","type":"raw_hash","allow":false}]}"#, "$.rules[0].allow"),
    ];
    for (text, path) in cases {
        assert_eq!(Policy::parse(text).unwrap_err().path, path, "{text}");
    }
}

fn windowed_sums_hold(history: &[Spend], window: u64, cap: U256, value: impl Fn(&Spend) -> U256) -> bool {
    history.iter().all(|end| {
        let sum = history
            .iter()
            .filter(|s| s.at + window > end.at && s.at <= end.at)
            .fold(U256::ZERO, |sum, s| sum + value(s));
        sum <= cap
    })
}

proptest! {
    #[test]
    fn rolling_caps_hold_for_any_sequence_of_actions_and_times(
        steps in proptest::collection::vec((0u8..3, 1u64..2_000, 0u64..5_000), 1..60)
    ) {
        let p = policy(
            r#"[{"id":"cap","type":"max_per_tx","amount_wei":"1000"},
                {"id":"w","type":"rolling_cap","window_secs":3600,"amount_wei":"2500"},
                {"id":"t","type":"max_per_tx","asset":"TST","amount_base":"1000"},
                {"id":"tw","type":"rolling_cap","asset":"TST","window_secs":600,"amount_base":"1500"},
                {"id":"usd","type":"rolling_cap_usd","window_secs":7200,"usd":"0.004"}]"#,
        );
        let mut ctx = Ctx::new(0);
        for (kind, value, advance) in steps {
            ctx.now += advance;
            ctx.prices.get_mut(&Asset::Token(addr(TOKEN))).unwrap().updated_at = ctx.now;
            let (asset, action) = match kind {
                0 => (Asset::Native, Action::NativeTransfer { to: addr(ALICE), value: U256::from(value) }),
                _ => (Asset::Token(addr(TOKEN)), Action::TokenTransfer { token: addr(TOKEN), from: None, to: addr(ALICE), amount: U256::from(value) }),
            };
            let first = ctx.eval(&p, &action);
            prop_assert_eq!(&first, &ctx.eval(&p, &action), "not deterministic");
            if first.verdict == Verdict::Allow {
                let decimals = if asset == Asset::Native { 18 } else { 6 };
                let quote = match asset {
                    Asset::Native => PriceQuote { answer: U256::from(2_000_000_000u64), decimals: 6, updated_at: ctx.now },
                    Asset::Token(_) => ctx.prices[&asset],
                };
                let usd = usd_micro(U256::from(value), decimals, &quote);
                ctx.history.push(Spend { at: ctx.now, asset, amount: U256::from(value), usd_micro: usd, chain_id: None, x402: false });
            }
            let native = |s: &Spend| if s.asset == Asset::Native { s.amount } else { U256::ZERO };
            let token = |s: &Spend| if s.asset == Asset::Native { U256::ZERO } else { s.amount };
            prop_assert!(windowed_sums_hold(&ctx.history, 3600, U256::from(2500), native));
            prop_assert!(windowed_sums_hold(&ctx.history, 600, U256::from(1500), token));
            prop_assert!(windowed_sums_hold(&ctx.history, 7200, U256::from(4000), |s| s.usd_micro.unwrap()));
        }
    }

    #[test]
    fn usd_value_rounds_up_and_never_panics(amount in any::<u128>(), answer in any::<u64>(), decimals in 0u8..40, price_decimals in 0u8..40) {
        let quote = PriceQuote { answer: U256::from(answer), decimals: price_decimals, updated_at: 0 };
        if let Some(usd) = usd_micro(U256::from(amount), decimals, &quote) {
            // usd × 10^(d+pd) ≥ amount × answer × 10^6 (rounded up).
            let exact = U256::from(amount) * U256::from(answer) * U256::from(1_000_000u64);
            let scale = U256::from(10u64).pow(U256::from(u64::from(decimals) + u64::from(price_decimals)));
            prop_assert!(usd.checked_mul(scale).is_none_or(|scaled| scaled >= exact));
            prop_assert!(usd.is_zero() || (usd - U256::from(1)).checked_mul(scale).is_none_or(|scaled| scaled < exact));
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = Policy::parse(&text);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Policy::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parser_never_panics_on_rule_shaped_json(
        kind in prop::sample::select(vec!["max_per_tx","rolling_cap","max_per_tx_usd","rolling_cap_usd","tiers","allow_recipients",
            "deny_recipients","allow_tokens","allow_contracts","erc20_approve","velocity","time_window","allow_chains",
            "new_recipient","gas_cap","typed_data","personal_message","raw_hash","require_simulation"]),
        key in prop::sample::select(vec!["amount","amount_base","amount_wei","asset","window_secs","usd","basis","notify_above",
            "addresses","tokens","contracts","spenders","max_count","timezone","days","start","end","chain_ids","tier",
            "max_gas","max_fee_per_gas_gwei","domains","mode","pattern","allow","token","allow_unlimited","delay_secs"]),
        value in prop_oneof![
            Just(serde_json::json!("1")), Just(serde_json::json!(-1)), Just(serde_json::json!(1e300)),
            Just(serde_json::json!([])), Just(serde_json::json!([{"address": ROUTER, "functions": [{"signature": "f(uint8)", "conditions": [{"arg": 0, "op": "lte", "value": "300"}]}]}])),
            Just(serde_json::json!({})), Just(serde_json::json!(null)), Just(serde_json::json!(true)), ".{0,20}".prop_map(serde_json::Value::String)],
    ) {
        let mut rule = serde_json::json!({"id": "r", "type": kind});
        rule[key] = value;
        let _ = Policy::parse(&serde_json::json!({"version": 1, "rules": [rule]}).to_string());
    }
}

// ---- Rules the engine must keep, one boundary or arm at a time ----

/// A policy with the TST token declared and `rules`, without price sources.
fn parse_rules(rules: &str) -> Result<Policy, PolicyError> {
    Policy::parse(&format!(
        r#"{{"version":1,"tokens":{{"TST":{{"address":"{TOKEN}","decimals":6}}}},"rules":{rules}}}"#
    ))
}

fn only_rule(rules: &str) -> Result<RuleKind, PolicyError> {
    Ok(parse_rules(rules)?.rules.remove(0).kind)
}

fn window_of(fields: &str) -> Result<TimeWindow, PolicyError> {
    match only_rule(&format!(r#"[{{"id":"w","type":"time_window","timezone":"UTC"{fields}}}]"#))? {
        RuleKind::TimeWindow(window) => Ok(*window),
        other => panic!("{other:?}"),
    }
}

#[test]
fn time_window_fields_default_to_every_day_all_day() {
    let window = window_of("").unwrap();
    assert_eq!((window.days, window.start_minute, window.end_minute), ([true; 7], 0, 24 * 60));
    let window = window_of(r#","days":["tue","sun"],"start":"01:30","end":"23:59""#).unwrap();
    assert_eq!(window.days, [false, true, false, false, false, false, true]);
    assert_eq!((window.start_minute, window.end_minute), (90, 23 * 60 + 59));
}

#[test]
fn clock_times_are_hh_mm_from_00_00_to_24_00() {
    let minute = |text: &str| window_of(&format!(r#","start":"{text}","end":"00:01""#)).map(|w| w.start_minute);
    assert_eq!(minute("00:00"), Ok(0));
    assert_eq!(minute("09:59"), Ok(599));
    assert_eq!(minute("10:30"), Ok(630));
    assert_eq!(minute("23:59"), Ok(1439));
    assert_eq!(minute("24:00"), Ok(1440));
    for bad in ["24:01", "25:00", "09:60", "9:00", "09:5", "009:00", "09:000", "0900", "ab:cd", "", "-1:00"] {
        let error = minute(bad).unwrap_err();
        assert_eq!(
            (error.path.as_str(), error.message.as_str()),
            ("$.rules[0].start", "expected HH:MM (00:00 to 24:00)")
        );
    }
    let end = window_of(r#","start":"00:01","end":"24:01""#).unwrap_err();
    assert_eq!(end.path, "$.rules[0].end");
    let empty = window_of(r#","start":"10:00","end":"10:00""#).unwrap_err();
    assert_eq!(empty.path, "$.rules[0].end");
    assert!(empty.message.contains("empty"), "{empty:?}");
}

/// 2026-01-05 00:00 UTC, a Monday.
const MONDAY_UTC: u64 = 1_767_571_200;

fn at(day: u64, hour: u64, minute: u64) -> u64 {
    MONDAY_UTC + day * 86_400 + hour * 3600 + minute * 60
}

#[test]
fn a_day_window_includes_its_start_and_excludes_its_end() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"office","type":"time_window","timezone":"UTC","days":["mon"],"start":"09:00","end":"17:00"}}]"#
    ));
    let eval = |now: u64| Ctx::new(now).eval(&p, &send(ALICE, "0.1"));
    allowed(&eval(at(0, 9, 0)));
    allowed(&eval(at(0, 16, 59)));
    for (now, observed) in [(at(0, 8, 59), "mon 08:59"), (at(0, 17, 0), "mon 17:00"), (at(1, 10, 0), "tue 10:00")] {
        let d = eval(now);
        assert_eq!((denied_by(&d), d.observed.as_deref()), ("office", Some(observed)));
    }
}

#[test]
fn an_overnight_window_belongs_to_the_day_it_starts_on() {
    let night = |day: &str| {
        policy(&format!(
            r#"[{CAP},{{"id":"night","type":"time_window","timezone":"UTC","days":["{day}"],"start":"22:00","end":"06:00"}}]"#
        ))
    };
    let friday = night("fri");
    let eval = |p: &Policy, now: u64| Ctx::new(now).eval(p, &send(ALICE, "0.1"));
    allowed(&eval(&friday, at(4, 22, 0)));
    allowed(&eval(&friday, at(4, 23, 59)));
    allowed(&eval(&friday, at(5, 0, 0)));
    allowed(&eval(&friday, at(5, 5, 59)));
    for now in [at(4, 21, 59), at(5, 6, 0), at(5, 22, 0), at(4, 5, 0), at(3, 23, 0)] {
        assert_eq!(denied_by(&eval(&friday, now)), "night", "{now}");
    }
    // Monday early morning is Sunday night's.
    let sunday = night("sun");
    allowed(&eval(&sunday, at(0, 5, 0)));
    allowed(&eval(&sunday, at(6, 23, 0)));
    assert_eq!(denied_by(&eval(&sunday, at(6, 5, 0))), "night", "Sunday early morning is Saturday night's");
}

#[test]
fn several_windows_in_one_zone_each_apply() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"morning","type":"time_window","timezone":"Europe/Berlin","start":"06:00","end":"23:00"}},
           {{"id":"weekdays","type":"time_window","timezone":"Europe/Berlin","days":["mon","tue","wed","thu","fri"]}}]"#
    ));
    // Monday 04:30 UTC is 05:30 in Berlin: the first window denies.
    let d = Ctx::new(at(0, 4, 30)).eval(&p, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("morning", Some("mon 05:30")));
    allowed(&Ctx::new(at(0, 5, 0)).eval(&p, &send(ALICE, "0.1")));
    // Saturday noon: the second window (same zone, converted once) denies.
    let d = Ctx::new(at(5, 12, 0)).eval(&p, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("weekdays", Some("sat 13:00")));
}

#[test]
fn new_recipient_takes_notify_delay_or_approval() {
    let tier = |text: &str| {
        only_rule(&format!(r#"[{{"id":"n","type":"new_recipient"{text}}}]"#)).map(|kind| match kind {
            RuleKind::NewRecipient { tier } => tier,
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(tier(""), Ok(Tier::Approval));
    assert_eq!(tier(r#","tier":"notify""#), Ok(Tier::Notify));
    assert_eq!(tier(r#","tier":"delay""#), Ok(Tier::Delay));
    assert_eq!(tier(r#","tier":"approval""#), Ok(Tier::Approval));
    for bad in ["instant", "Notify", "later", ""] {
        assert_eq!(tier(&format!(r#","tier":"{bad}""#)).unwrap_err().path, "$.rules[0].tier", "{bad}");
    }
}

#[test]
fn message_patterns_are_compared_by_their_source() {
    let rules = |pattern: &str| {
        parse_rules(&format!(r#"[{{"id":"m","type":"personal_message","mode":"deny","pattern":"{pattern}"}}]"#))
            .unwrap()
            .rules
    };
    assert_eq!(rules("^a+$"), rules("^a+$"));
    assert_ne!(rules("^a+$"), rules("^b+$"));
}

#[test]
fn lookback_is_the_longest_window_of_any_rule() {
    let lookback = |rules: &str| parse_rules(rules).unwrap().lookback_secs();
    assert_eq!(lookback(r#"[{"id":"c","type":"max_per_tx","amount":"1"}]"#), 0);
    assert_eq!(lookback(r#"[{"id":"r","type":"rolling_cap","window_secs":700,"amount":"1"}]"#), 700);
    assert_eq!(lookback(r#"[{"id":"v","type":"velocity","window_secs":900,"max_count":3}]"#), 900);
    assert_eq!(lookback(r#"[{"id":"t","type":"tiers","approval_above":"1","window_secs":800}]"#), 800);
    assert_eq!(
        lookback(
            r#"[{"id":"r","type":"rolling_cap","window_secs":700,"amount":"1"},
                {"id":"v","type":"velocity","window_secs":900,"max_count":3},
                {"id":"t","type":"tiers","approval_above":"1","window_secs":800}]"#
        ),
        900
    );
}

#[test]
fn windows_may_be_at_most_ten_years() {
    let ten_years = 10 * 366 * 24 * 3600;
    assert_eq!(MAX_WINDOW_SECS, 316_224_000);
    let velocity = |secs: u64| {
        parse_rules(&format!(r#"[{{"id":"v","type":"velocity","window_secs":{secs},"max_count":1}}]"#)).map(|_| ())
    };
    assert_eq!(velocity(ten_years), Ok(()));
    assert_eq!(velocity(ten_years + 1).unwrap_err().path, "$.rules[0].window_secs");
    assert_eq!(velocity(0).unwrap_err().path, "$.rules[0].window_secs");
}

#[test]
fn usd_values_need_a_power_of_ten_that_fits_256_bits() {
    // 10^77 fits in 256 bits, 10^78 does not.
    let quote = |decimals: u8| PriceQuote { answer: U256::from(1u8), decimals, updated_at: 0 };
    let exact = U256::from(10u64).pow(U256::from(71u64));
    assert_eq!(usd_micro(exact, 36, &quote(41)), Some(U256::from(1u8)));
    assert_eq!(usd_micro(exact, 36, &quote(42)), None);
    assert_eq!(usd_micro(U256::from(1u8), 18, &quote(6)), Some(U256::from(1u8)), "rounded up");
    // One ETH at $0.000001 is exactly one micro-dollar; a wei more rounds up to two.
    let one_eth = U256::from(10u64).pow(U256::from(18u64));
    assert_eq!(usd_micro(one_eth, 18, &quote(6)), Some(U256::from(1u8)));
    assert_eq!(usd_micro(one_eth + U256::from(1u8), 18, &quote(6)), Some(U256::from(2u8)));
}

#[test]
fn gas_caps_need_a_positive_gas_limit_or_a_fee_that_fits() {
    let cap = |fields: &str| match only_rule(&format!(r#"[{{"id":"g","type":"gas_cap"{fields}}}]"#)) {
        Ok(RuleKind::GasCap { max_gas, max_fee_per_gas }) => Ok((max_gas, max_fee_per_gas)),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.path),
    };
    assert_eq!(cap(r#","max_gas":60000"#), Ok((Some(60_000), None)));
    assert_eq!(cap(r#","max_fee_per_gas_gwei":"1.5""#), Ok((None, Some(1_500_000_000))));
    assert_eq!(cap(r#","max_gas":1,"max_fee_per_gas_gwei":"0.000000001""#), Ok((Some(1), Some(1))));
    assert_eq!(cap(""), Err("$.rules[0]".to_string()));
    assert_eq!(cap(r#","max_gas":0"#), Err("$.rules[0].max_gas".to_string()));
    assert_eq!(cap(r#","max_gas":"60000""#), Err("$.rules[0].max_gas".to_string()));
    assert_eq!(cap(r#","max_fee_per_gas_gwei":"1.0000000001""#), Err("$.rules[0].max_fee_per_gas_gwei".to_string()));
    // u128::MAX wei is about 3.4e29 gwei; one wei more does not fit.
    assert_eq!(
        cap(r#","max_fee_per_gas_gwei":"340282366920938463463374607431.768211455""#),
        Ok((None, Some(u128::MAX)))
    );
    let too_large =
        only_rule(r#"[{"id":"g","type":"gas_cap","max_fee_per_gas_gwei":"340282366920938463463374607431.768211456"}]"#)
            .unwrap_err();
    assert_eq!((too_large.path.as_str(), too_large.message.as_str()), ("$.rules[0].max_fee_per_gas_gwei", "too large"));
}

#[test]
fn token_symbols_decimals_and_addresses_are_checked() {
    let declare = |symbol: &str, spec: &str| {
        Policy::parse(&format!(r#"{{"version":1,"tokens":{{"{symbol}":{spec}}},"rules":[]}}"#)).map(|p| p.tokens)
    };
    let spec = |decimals: &str| format!(r#"{{"address":"{TOKEN}","decimals":{decimals}}}"#);
    let tokens = declare("T.S_T-1", &spec("36")).unwrap();
    assert_eq!(tokens, vec![TokenSpec { symbol: "T.S_T-1".into(), address: addr(TOKEN), decimals: 36 }]);
    assert!(declare("ABCDEFGHIJKLMNOP", &spec("0")).is_ok(), "16 characters");
    for bad in ["", "ABCDEFGHIJKLMNOPQ", "native", "usd", "0xT", "T T", "T/T", "T$"] {
        assert_eq!(declare(bad, &spec("6")).unwrap_err().path, format!("$.tokens.{bad}"), "{bad:?}");
    }
    for bad in ["37", "-1", "256", "\"6\"", "6.5"] {
        assert_eq!(declare("T", &spec(bad)).unwrap_err().path, "$.tokens.T.decimals", "{bad}");
    }
    assert_eq!(declare("T", &format!(r#"{{"address":"{TOKEN}"}}"#)).unwrap_err().path, "$.tokens.T.decimals");
    assert_eq!(
        declare("T", &format!(r#"{{"address":"{TOKEN}","decimals":6,"x":1}}"#)).unwrap_err().path,
        "$.tokens.T.x"
    );
    let twice = Policy::parse(&format!(
        r#"{{"version":1,"tokens":{{"A":{{"address":"{TOKEN}","decimals":6}},"B":{{"address":"{TOKEN}","decimals":6}}}},"rules":[]}}"#
    ));
    assert_eq!(twice.unwrap_err().path, "$.tokens.B.address");
    let many = |n: usize| {
        let tokens: Vec<String> =
            (0..n).map(|i| format!(r#""T{i}":{{"address":"0x{:040x}","decimals":6}}"#, i + 1)).collect();
        Policy::parse(&format!(r#"{{"version":1,"tokens":{{{}}},"rules":[]}}"#, tokens.join(",")))
    };
    assert_eq!(many(100).unwrap().tokens.len(), 100);
    assert_eq!(many(101).unwrap_err().path, "$.tokens");
    assert_eq!(Policy::parse(r#"{"version":1,"tokens":[],"rules":[]}"#).unwrap_err().path, "$.tokens");
}

/// The conditions of the one function `signature` allowed on ROUTER with `conditions`.
fn conditions_of(signature: &str, conditions: &str) -> Result<Vec<ArgCondition>, PolicyError> {
    let kind = only_rule(&format!(
        r#"[{{"id":"c","type":"allow_contracts","contracts":[{{"address":"{ROUTER}","functions":[
              {{"signature":"{signature}","conditions":{conditions}}}]}}]}}]"#
    ))?;
    let RuleKind::AllowContracts { contracts } = kind else { panic!("{kind:?}") };
    Ok(contracts[&addr(ROUTER)].values().next().unwrap().conditions.clone())
}

fn operand_of(ty: &str, value: &str) -> Result<ArgValue, String> {
    conditions_of(&format!("f({ty} x)"), &format!(r#"[{{"arg":0,"op":"eq","value":{value}}}]"#))
        .map(|mut conditions| match conditions.remove(0).op {
            ConditionOp::Eq(value) => value,
            other => panic!("{other:?}"),
        })
        .map_err(|e| format!("{}: {}", e.path, e.message))
}

#[test]
fn condition_operands_are_typed_like_their_argument() {
    assert_eq!(operand_of("address", &format!(r#""{TOKEN}""#)), Ok(ArgValue::Address(addr(TOKEN))));
    assert_eq!(operand_of("uint8", r#""255""#), Ok(ArgValue::Uint(U256::from(255u64))));
    assert_eq!(operand_of("int256", r#""-5""#), Ok(ArgValue::Int(alloy_primitives::I256::try_from(-5i64).unwrap())));
    assert_eq!(operand_of("bool", "true"), Ok(ArgValue::Bool(true)));
    assert_eq!(operand_of("bool", "false"), Ok(ArgValue::Bool(false)));
    assert_eq!(operand_of("bool", r#""true""#), Ok(ArgValue::Bool(true)));
    assert_eq!(operand_of("bool", r#""false""#), Ok(ArgValue::Bool(false)));
    assert_eq!(operand_of("string", r#""hi""#), Ok(ArgValue::String("hi".into())));
    assert_eq!(operand_of("bytes", r#""0x0102""#), Ok(ArgValue::Bytes(vec![1, 2])));
    assert_eq!(operand_of("bytes2", r#""0x0102""#), Ok(ArgValue::Bytes(vec![1, 2])));
    let path = "$.rules[0].contracts[0].functions[0].conditions[0].value";
    for (ty, value) in [
        ("address", r#""0x12""#),
        ("uint256", r#""1.5""#),
        ("uint256", "1"),
        ("int256", r#""x""#),
        ("bool", r#""yes""#),
        ("bool", "1"),
        ("string", "true"),
        ("bytes", r#""0102""#),
        ("bytes", r#""0xzz""#),
        ("bytes2", r#""0x01""#),
        ("bytes2", r#""0x010203""#),
        ("uint256[]", r#""1""#),
    ] {
        let error = operand_of(ty, value).unwrap_err();
        assert!(error.starts_with(&format!("{path}: ")), "{ty} {value}: {error}");
    }
    assert!(operand_of("uint256[]", r#""1""#).unwrap_err().contains("not supported"));
}

#[test]
fn condition_operators_and_argument_references() {
    let sig = "swap(address tokenIn, uint256 amountIn, int8 delta)";
    let one = |condition: &str| conditions_of(sig, &format!("[{condition}]")).map(|mut c| c.remove(0));
    assert_eq!(
        one(r#"{"arg":"amountIn","op":"lte","value":"7"}"#),
        Ok(ArgCondition { index: 1, op: ConditionOp::Lte(ArgValue::Uint(U256::from(7u8))) })
    );
    assert_eq!(
        one(r#"{"arg":2,"op":"gte","value":"-1"}"#),
        Ok(ArgCondition { index: 2, op: ConditionOp::Gte(ArgValue::Int(alloy_primitives::I256::MINUS_ONE)) })
    );
    assert_eq!(
        one(&format!(r#"{{"arg":0,"op":"in","values":["{TOKEN}","{ROUTER}"]}}"#)),
        Ok(ArgCondition {
            index: 0,
            op: ConditionOp::In(vec![ArgValue::Address(addr(TOKEN)), ArgValue::Address(addr(ROUTER))])
        })
    );
    let at = "$.rules[0].contracts[0].functions[0].conditions[0]";
    for (condition, path) in [
        (r#"{"arg":0,"op":"gte","value":"1"}"#, format!("{at}.op")),
        (r#"{"arg":3,"op":"eq","value":"1"}"#, format!("{at}.arg")),
        (r#"{"arg":"nobody","op":"eq","value":"1"}"#, format!("{at}.arg")),
        (r#"{"arg":-1,"op":"eq","value":"1"}"#, format!("{at}.arg")),
        (r#"{"arg":true,"op":"eq","value":"1"}"#, format!("{at}.arg")),
        (r#"{"arg":1,"op":"ne","value":"1"}"#, format!("{at}.op")),
        (r#"{"arg":1,"value":"1"}"#, format!("{at}.op")),
        (r#"{"arg":1,"op":"eq"}"#, format!("{at}.value")),
        (r#"{"arg":1,"op":"in","value":"1"}"#, format!("{at}.value")),
        (r#"{"arg":1,"op":"eq","values":["1"]}"#, format!("{at}.values")),
        (r#"{"arg":1,"op":"in","values":["1","x"]}"#, format!("{at}.values[1]")),
    ] {
        assert_eq!(one(condition).unwrap_err().path, path, "{condition}");
    }
    // Unnamed arguments are referred to by position only.
    assert_eq!(
        conditions_of("f(uint256)", r#"[{"arg":"","op":"eq","value":"1"}]"#).unwrap_err().path,
        format!("{at}.arg")
    );
}

#[test]
fn a_window_whose_running_total_overflows_is_summed_directly() {
    // An old spend recorded at U256::MAX makes the running totals overflow; the window
    // (the last hour) is then summed spend by spend, with the same result.
    let p = policy(&format!(
        r#"[{CAP},{{"id":"usd","type":"rolling_cap_usd","window_secs":3600,"usd":"1000"}},
           {{"id":"eth","type":"rolling_cap","window_secs":3600,"amount":"1"}}]"#
    ));
    let mut ctx = Ctx::new(10_000);
    let wei = |eth: &str| parse_units(eth, 18).unwrap();
    ctx.history = vec![
        Spend {
            at: 1_000,
            asset: Asset::Native,
            amount: U256::MAX,
            usd_micro: Some(U256::MAX),
            chain_id: None,
            x402: false,
        },
        // $50 when it was spent (0.1 ETH is $200 now): the recorded value counts.
        Spend {
            at: 9_000,
            asset: Asset::Native,
            amount: wei("0.1"),
            usd_micro: Some(parse_units("50", 6).unwrap()),
            chain_id: None,
            x402: false,
        },
        // No recorded value: 0.05 ETH at today's $2000 is $100.
        Spend { at: 9_500, asset: Asset::Native, amount: wei("0.05"), usd_micro: None, chain_id: None, x402: false },
        // A token spend counts in USD ($3 at $1) but not against the native window.
        Spend {
            at: 9_600,
            asset: Asset::Token(addr(TOKEN)),
            amount: U256::from(3_000_000u64),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
    ];
    let view = Context {
        now: ctx.now,
        chain_id: 31337,
        history: &ctx.history,
        prices: &ctx.prices,
        recipient_seen: true,
        fees: None,
        simulation: None,
    };
    let left = budgets(&p, &view);
    let used: Vec<_> = left.iter().map(|b| (b.rule_id.as_str(), b.used, b.frees_at)).collect();
    assert_eq!(used, vec![("usd", parse_units("153", 6).unwrap(), Some(12_600)), ("eth", wei("0.15"), Some(12_600))]);
    // $153 + 0.4235 ETH ($847) is exactly $1000.
    allowed(&ctx.eval(&p, &send(ALICE, "0.4235")));
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.4236"))), "usd");
}

#[test]
fn a_window_frees_up_when_its_oldest_counted_spend_leaves() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"eth","type":"rolling_cap","window_secs":3600,"amount":"1"}},
           {{"id":"tst","type":"rolling_cap","asset":"TST","window_secs":3600,"amount":"1"}}]"#
    ));
    let mut ctx = Ctx::new(10_000);
    ctx.history = vec![
        // Outside the window.
        Spend {
            at: 6_400,
            asset: Asset::Native,
            amount: U256::from(5u8),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
        // Moves nothing: not counted, frees nothing.
        Spend { at: 8_000, asset: Asset::Native, amount: U256::ZERO, usd_micro: None, chain_id: None, x402: false },
        Spend {
            at: 8_500,
            asset: Asset::Token(addr(TOKEN)),
            amount: U256::from(2u8),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
        Spend {
            at: 9_000,
            asset: Asset::Native,
            amount: U256::from(1u8),
            usd_micro: None,
            chain_id: None,
            x402: false,
        },
    ];
    let view = Context {
        now: ctx.now,
        chain_id: 31337,
        history: &ctx.history,
        prices: &ctx.prices,
        recipient_seen: true,
        fees: None,
        simulation: None,
    };
    let left: Vec<_> = budgets(&p, &view).into_iter().map(|b| (b.rule_id, b.used, b.frees_at)).collect();
    assert_eq!(
        left,
        vec![("eth".to_string(), U256::from(1u8), Some(12_600)), ("tst".to_string(), U256::from(2u8), Some(12_100))]
    );
}

#[test]
fn tier_names_parse_to_their_tier() {
    assert_eq!(Tier::parse("instant"), Some(Tier::Instant));
    assert_eq!(Tier::parse("notify"), Some(Tier::Notify));
    assert_eq!(Tier::parse("delay"), Some(Tier::Delay));
    assert_eq!(Tier::parse("approval"), Some(Tier::Approval));
    assert_eq!(Tier::parse("APPROVAL"), None);
}

const OTHER_TOKEN: &str = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9";

#[test]
fn assets_are_named_found_and_priced_from_the_policy() {
    let p = policy("[]");
    let tst = Asset::Token(addr(TOKEN));
    let unknown = Asset::Token(addr(OTHER_TOKEN));
    assert_eq!(p.token("TST").map(|t| t.address), Some(addr(TOKEN)));
    assert_eq!(p.token(&TOKEN.to_lowercase()).map(|t| t.symbol.as_str()), Some("TST"));
    assert_eq!(p.token("tst"), None, "symbols are case-sensitive");
    assert_eq!(p.token(OTHER_TOKEN), None);
    assert_eq!((p.decimals(Asset::Native), p.decimals(tst), p.decimals(unknown)), (Some(18), Some(6), None));
    assert_eq!((p.asset_name(Asset::Native), p.asset_name(tst)), ("native".to_string(), "TST".to_string()));
    assert_eq!(p.asset_name(unknown), OTHER_TOKEN);
    assert_eq!(p.aggregators().collect::<Vec<_>>(), vec![(tst, addr(FEED))]);
    let mut prices = BTreeMap::new();
    let fresh = PriceQuote { answer: U256::from(250_000_000u64), decimals: 8, updated_at: 400 };
    prices.insert(tst, fresh);
    // The static native price is quoted in micro-dollars, as of now.
    let native = p.quote(Asset::Native, &prices, 1_000).unwrap();
    assert_eq!(native, PriceQuote { answer: parse_units("2000", 6).unwrap(), decimals: 6, updated_at: 1_000 });
    // The aggregator answer may be exactly max_age_secs (600) old, not more.
    assert_eq!(p.quote(tst, &prices, 1_000), Ok(fresh));
    assert!(p.quote(tst, &prices, 1_001).unwrap_err().contains("601 s old"));
    assert!(p.quote(tst, &BTreeMap::new(), 1_000).unwrap_err().contains("no price was read"));
    assert!(p.quote(unknown, &prices, 1_000).unwrap_err().contains("no price source"));
    prices.insert(tst, PriceQuote { answer: U256::ZERO, ..fresh });
    assert!(p.quote(tst, &prices, 1_000).unwrap_err().contains("zero"));
    prices.insert(tst, fresh);
    // 4 TST at $2.50 is $10; an unpriced or stale asset has no value.
    assert_eq!(p.usd_value(tst, U256::from(4_000_000u64), &prices, 1_000), Some(parse_units("10", 6).unwrap()));
    assert_eq!(p.usd_value(tst, U256::from(4_000_000u64), &prices, 1_001), None);
    assert_eq!(p.usd_value(unknown, U256::from(1u8), &prices, 1_000), None);
}

#[test]
fn usd_and_simulation_needs_are_read_from_the_rules() {
    let uses = |rule: &str| parse_rules(&format!("[{rule}]")).unwrap().uses_usd();
    assert!(uses(r#"{"id":"a","type":"max_per_tx_usd","usd":"1"}"#));
    assert!(uses(r#"{"id":"a","type":"rolling_cap_usd","usd":"1","window_secs":60}"#));
    assert!(uses(r#"{"id":"a","type":"tiers","basis":"usd","approval_above":"1"}"#));
    assert!(!uses(r#"{"id":"a","type":"tiers","approval_above":"1"}"#));
    assert!(!uses(r#"{"id":"a","type":"max_per_tx","amount":"1"}"#));
    assert!(!uses(r#"{"id":"a","type":"rolling_cap","amount":"1","window_secs":60}"#));
    assert!(parse_rules(r#"[{"id":"s","type":"require_simulation"}]"#).unwrap().requires_simulation());
    assert!(!parse_rules(r#"[{"id":"s","type":"raw_hash","allow":true}]"#).unwrap().requires_simulation());
}

fn view(ctx: &Ctx) -> Context<'_> {
    Context {
        now: ctx.now,
        chain_id: 31337,
        history: &ctx.history,
        prices: &ctx.prices,
        recipient_seen: true,
        fees: None,
        simulation: None,
    }
}

#[test]
fn budgets_are_shown_in_their_unit() {
    let p = policy(
        r#"[{"id":"eth","type":"rolling_cap","window_secs":60,"amount":"1"},
            {"id":"tst","type":"rolling_cap","asset":"TST","window_secs":60,"amount":"2"},
            {"id":"usd","type":"rolling_cap_usd","window_secs":60,"usd":"3"},
            {"id":"count","type":"velocity","window_secs":60,"max_count":4}]"#,
    );
    let mut ctx = Ctx::new(1_000);
    ctx.history = vec![Spend {
        at: 990,
        asset: Asset::Token(addr(TOKEN)),
        amount: U256::from(500_000u64),
        usd_micro: None,
        chain_id: None,
        x402: false,
    }];
    let shown: Vec<_> = budgets(&p, &view(&ctx))
        .iter()
        .map(|b| {
            let v = serde_json::to_value(b).unwrap();
            (
                v["rule_id"].clone(),
                v["limit"].clone(),
                v["used"].clone(),
                v["remaining"].clone(),
                v["window_secs"].clone(),
            )
        })
        .collect();
    let row = |id: &str, limit: &str, used: &str, remaining: &str| {
        (id.into(), limit.into(), used.into(), remaining.into(), serde_json::json!(60))
    };
    assert_eq!(
        shown,
        vec![
            row("eth", "1 ETH", "0 ETH", "1 ETH"),
            row("tst", "2 TST", "0.5 TST", "1.5 TST"),
            row("usd", "3 USD", "0.5 USD", "2.5 USD"),
            row("count", "4", "1", "3"),
        ]
    );
    let velocity = budgets(&p, &view(&ctx)).pop().unwrap();
    assert_eq!((velocity.unit.as_str(), velocity.decimals, velocity.frees_at), ("count", 0, Some(1_050)));
    // A full budget has nothing left rather than a negative amount.
    let spent = Budget { used: U256::from(9u8), ..velocity };
    assert_eq!(spent.remaining(), U256::ZERO);
}

#[test]
fn future_spends_do_not_count_yet() {
    let p = policy(&format!(r#"[{CAP},{{"id":"day","type":"rolling_cap","window_secs":3600,"amount":"1"}}]"#));
    let mut ctx = Ctx::new(1_000);
    ctx.history = vec![Spend {
        at: 1_001,
        asset: Asset::Native,
        amount: parse_units("1", 18).unwrap(),
        usd_micro: None,
        chain_id: None,
        x402: false,
    }];
    allowed(&ctx.eval(&p, &send(ALICE, "1")));
    ctx.now = 1_001;
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.000001"))), "day");
}

#[test]
fn velocity_counts_transactions_only_and_denies_at_the_count() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"v","type":"velocity","window_secs":60,"max_count":2}},
           {{"id":"m","type":"personal_message","mode":"allow"}}]"#
    ));
    let mut ctx = Ctx::new(1_000);
    let spend =
        |at: u64| Spend { at, asset: Asset::Native, amount: U256::ZERO, usd_micro: None, chain_id: None, x402: false };
    ctx.history = vec![spend(940), spend(950)];
    allowed(&ctx.eval(&p, &send(ALICE, "0.1")));
    ctx.history.push(spend(990));
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&d), d.observed.as_deref(), d.limit.as_deref()), ("v", Some("3"), Some("2")));
    assert_eq!(d.budgets[0].frees_at, Some(1_010));
    // A message is not a transaction.
    allowed(&ctx.eval(&p, &Action::PersonalMessage { message: b"hi".to_vec() }));
}

#[test]
fn amounts_are_shown_in_the_rules_unit() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"usd","type":"max_per_tx_usd","usd":"1"}},
           {{"id":"tst","type":"max_per_tx","asset":"TST","amount":"1"}}]"#
    ));
    let ctx = Ctx::new(1_000);
    let d = ctx.eval(&p, &send(ALICE, "0.001"));
    assert_eq!((denied_by(&d), d.observed.as_deref(), d.limit.as_deref()), ("usd", Some("2 USD"), Some("1 USD")));
    assert_eq!(d.usd_value.as_deref(), Some("2 USD"));
    let d = ctx.eval(&p, &send(ALICE, "1.5"));
    assert_eq!((denied_by(&d), d.observed.as_deref(), d.limit.as_deref()), ("cap", Some("1.5 ETH"), Some("1 ETH")));
    let only_tst = policy(r#"[{"id":"tst","type":"max_per_tx","asset":"TST","amount":"1"}]"#);
    let d = ctx.eval(&only_tst, &token_send(ALICE, "1.5"));
    assert_eq!((denied_by(&d), d.observed.as_deref(), d.limit.as_deref()), ("tst", Some("1.5 TST"), Some("1 TST")));
    let undeclared = Policy::parse(&format!(
        r#"{{"version":1,"rules":[{{"id":"other","type":"max_per_tx","asset":"{OTHER_TOKEN}","amount_base":"5"}}]}}"#
    ));
    assert!(undeclared.is_err(), "an asset must be declared to be capped");
    let transfer =
        Action::TokenTransfer { token: addr(OTHER_TOKEN), from: None, to: addr(ALICE), amount: U256::from(6u8) };
    let base = Policy::parse(&format!(
        r#"{{"version":1,"tokens":{{"O":{{"address":"{OTHER_TOKEN}","decimals":0}}}},"rules":[{{"id":"o","type":"max_per_tx","asset":"O","amount_base":"5"}}]}}"#
    ))
    .unwrap();
    let d = ctx.eval(&base, &transfer);
    assert_eq!((denied_by(&d), d.observed.as_deref(), d.limit.as_deref()), ("o", Some("6 O"), Some("5 O")));
}

#[test]
fn usd_rules_refuse_undeclared_tokens_and_overflowing_values() {
    // A USD cap on a token the policy does not declare: its decimals are unknown.
    let p = policy(r#"[{"id":"usd","type":"max_per_tx_usd","usd":"1"}]"#);
    let ctx = Ctx::new(1_000);
    let other =
        Action::TokenTransfer { token: addr(OTHER_TOKEN), from: None, to: addr(ALICE), amount: U256::from(1u8) };
    let d = ctx.eval(&p, &other);
    assert_eq!((denied_by(&d), d.code), ("usd", Some(ErrorCode::PolicyDenied)));
    assert!(d.reason.contains("not declared"), "{d:?}");
    let huge = Action::NativeTransfer { to: addr(ALICE), value: U256::MAX };
    let d = ctx.eval(&p, &huge);
    assert_eq!(
        (denied_by(&d), d.code, d.reason.as_str()),
        ("usd", Some(ErrorCode::PolicyDenied), "USD value overflows")
    );
    assert_eq!(d.usd_value, None);
    // A zero-value transfer is worth $0 even without a readable price.
    let mut unpriced = Ctx::new(1_000);
    unpriced.prices.clear();
    allowed(
        &unpriced
            .eval(&p, &Action::TokenTransfer { token: addr(TOKEN), from: None, to: addr(ALICE), amount: U256::ZERO }),
    );
    // A rolling USD window with an earlier spend that cannot be valued is refused.
    let window = policy(
        r#"[{"id":"usd","type":"max_per_tx_usd","usd":"100"},{"id":"w","type":"rolling_cap_usd","window_secs":60,"usd":"100"}]"#,
    );
    unpriced.history = vec![Spend {
        at: 990,
        asset: Asset::Token(addr(TOKEN)),
        amount: U256::from(1u8),
        usd_micro: None,
        chain_id: None,
        x402: false,
    }];
    let d = unpriced.eval(&window, &send(ALICE, "0.001"));
    assert_eq!((denied_by(&d), d.code), ("w", Some(ErrorCode::PriceUnavailable)));
    assert!(d.reason.starts_with("cannot value an earlier spend"), "{d:?}");
    assert!(budgets(&window, &view(&unpriced)).is_empty(), "a window that cannot be valued is left out");
}

#[test]
fn delays_take_the_longest_and_default_to_an_hour() {
    let p = policy(
        r#"[{"id":"cap","type":"max_per_tx","amount":"10"},
            {"id":"a","type":"tiers","delay_above":"1","delay_secs":600},
            {"id":"b","type":"tiers","delay_above":"2","delay_secs":900}]"#,
    );
    let ctx = Ctx::new(1_000);
    let d = ctx.eval(&p, &send(ALICE, "1.5"));
    assert_eq!((d.tier, d.delay_secs, d.tier_rules.clone()), (Tier::Delay, Some(600), vec!["a".to_string()]));
    let d = ctx.eval(&p, &send(ALICE, "3"));
    assert_eq!((d.tier, d.delay_secs, d.tier_rules.clone()), (Tier::Delay, Some(900), vec!["a".into(), "b".into()]));
    let reversed = policy(
        r#"[{"id":"cap","type":"max_per_tx","amount":"10"},
            {"id":"b","type":"tiers","delay_above":"2","delay_secs":900},
            {"id":"a","type":"tiers","delay_above":"1","delay_secs":600}]"#,
    );
    assert_eq!(ctx.eval(&reversed, &send(ALICE, "3")).delay_secs, Some(900));
    let new =
        policy(r#"[{"id":"cap","type":"max_per_tx","amount":"10"},{"id":"n","type":"new_recipient","tier":"delay"}]"#);
    let mut unseen = Ctx::new(1_000);
    unseen.seen = false;
    let d = unseen.eval(&new, &send(ALICE, "0.1"));
    assert_eq!((d.tier, d.delay_secs), (Tier::Delay, Some(3600)));
    // A message has no recipient: new_recipient does not apply.
    let messages = policy(r#"[{"id":"m","type":"personal_message","mode":"allow"},{"id":"n","type":"new_recipient"}]"#);
    assert_eq!(unseen.eval(&messages, &Action::PersonalMessage { message: b"x".to_vec() }).tier, Tier::Instant);
    // A token tier is not raised by a native transfer.
    let token_tier = policy(
        r#"[{"id":"cap","type":"max_per_tx","amount":"10"},{"id":"t","type":"tiers","basis":"TST","notify_above":"0"}]"#,
    );
    assert_eq!(ctx.eval(&token_tier, &send(ALICE, "5")).tier, Tier::Instant);
}

#[test]
fn the_first_refusal_of_a_permitting_rule_is_reported() {
    // Two approval rules: the token-specific one refuses, the other permits.
    let p = policy(&format!(
        r#"[{{"id":"tst","type":"erc20_approve","token":"TST","spenders":["{ROUTER}"],"amount_base":"10"}},
           {{"id":"any","type":"erc20_approve","spenders":["{ALICE}"],"amount_base":"10"}}]"#
    ));
    let ctx = Ctx::new(1_000);
    let approve = |token: &str, spender: &str, amount: u64| Action::TokenApprove {
        token: addr(token),
        spender: addr(spender),
        amount: U256::from(amount),
        increase: false,
    };
    allowed(&ctx.eval(&p, &approve(TOKEN, ROUTER, 10)));
    allowed(&ctx.eval(&p, &approve(TOKEN, ALICE, 10)));
    let d = ctx.eval(&p, &approve(TOKEN, MALLORY, 1));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("tst", Some(MALLORY)));
    let d = ctx.eval(&p, &approve(TOKEN, ROUTER, 11));
    assert_eq!(
        (denied_by(&d), d.observed.as_deref(), d.limit.as_deref()),
        ("tst", Some("11 base units"), Some("10 base units"))
    );
    // The token-specific rule does not apply to another token.
    let d = ctx.eval(&p, &approve(OTHER_TOKEN, ROUTER, 1));
    assert_eq!((denied_by(&d), d.reason.as_str()), ("any", "spender is not on the approval allowlist"));
    allowed(&ctx.eval(&p, &approve(OTHER_TOKEN, ALICE, 1)));
    // Unlimited without allow_unlimited: the cap is shown.
    let d = ctx.eval(&p, &approve(TOKEN, ROUTER, 0).clone());
    allowed(&d);
    let unlimited =
        Action::TokenApprove { token: addr(TOKEN), spender: addr(ROUTER), amount: U256::MAX, increase: false };
    let d = ctx.eval(&p, &unlimited);
    assert_eq!((d.observed.as_deref(), d.limit.as_deref()), (Some("unlimited"), Some("10")));
    // allow_unlimited without a cap lets any finite amount through too.
    let open =
        policy(&format!(r#"[{{"id":"o","type":"erc20_approve","spenders":["{ROUTER}"],"allow_unlimited":true}}]"#));
    allowed(&ctx.eval(&open, &approve(TOKEN, ROUTER, u64::MAX)));
}

#[test]
fn messages_need_utf8_when_a_pattern_applies() {
    let p = policy(r#"[{"id":"login","type":"personal_message","mode":"allow","pattern":"^hi"}]"#);
    let ctx = Ctx::new(1_000);
    let d = ctx.eval(&p, &Action::PersonalMessage { message: vec![0x68, 0x69, 0xff] });
    assert_eq!((denied_by(&d), d.reason.as_str()), ("login", "the message is not UTF-8 text"));
    let d = ctx.eval(&p, &Action::PersonalMessage { message: b"ho".to_vec() });
    assert_eq!((denied_by(&d), d.reason.as_str()), ("login", "the message does not match the allowed pattern \"^hi\""));
    let any = policy(r#"[{"id":"any","type":"personal_message","mode":"allow"}]"#);
    allowed(&ctx.eval(&any, &Action::PersonalMessage { message: vec![0xff] }));
    // A deny rule alone permits nothing.
    let deny = policy(r#"[{"id":"d","type":"personal_message","mode":"deny","pattern":"x"}]"#);
    assert_eq!(denied_by(&ctx.eval(&deny, &Action::PersonalMessage { message: b"y".to_vec() })), "default_deny");
    // A deny rule applies to non-UTF-8 messages too (read lossily).
    let both = policy(
        r#"[{"id":"any","type":"personal_message","mode":"allow"},{"id":"d","type":"personal_message","mode":"deny","pattern":"^x"}]"#,
    );
    assert_eq!(denied_by(&ctx.eval(&both, &Action::PersonalMessage { message: vec![b'x', 0xff] })), "d");
    allowed(&ctx.eval(&both, &Action::PersonalMessage { message: vec![b'y', 0xff] }));
}

#[test]
fn a_usd_cap_permits_any_asset_and_an_asset_cap_only_its_own() {
    let ctx = Ctx::new(1_000);
    let usd = policy(r#"[{"id":"usd","type":"max_per_tx_usd","usd":"1000"}]"#);
    allowed(&ctx.eval(&usd, &send(ALICE, "0.1")));
    allowed(&ctx.eval(&usd, &token_send(ALICE, "1")));
    let tst = policy(r#"[{"id":"tst","type":"max_per_tx","asset":"TST","amount":"10"}]"#);
    allowed(&ctx.eval(&tst, &token_send(ALICE, "1")));
    let d = ctx.eval(&tst, &send(ALICE, "0.1"));
    assert_eq!(
        (denied_by(&d), d.reason.as_str()),
        ("default_deny", "transfers of native need a max_per_tx rule for it")
    );
    // An approval moves nothing yet: no cap needed, but it must be permitted.
    let d = ctx.eval(
        &tst,
        &Action::TokenApprove { token: addr(TOKEN), spender: addr(ROUTER), amount: U256::from(1u8), increase: false },
    );
    assert_eq!((denied_by(&d), d.reason.as_str()), ("default_deny", "no rule permits token_approve actions"));
}

#[test]
fn deny_lists_cover_every_counterparty() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"tst","type":"max_per_tx","asset":"TST","amount":"10"}},
           {{"id":"approve","type":"erc20_approve","spenders":["{MALLORY}","{ROUTER}"],"allow_unlimited":true}},
           {{"id":"contracts","type":"allow_contracts","contracts":[{{"address":"{MALLORY}","functions":[{{"signature":"f()"}}]}}]}},
           {{"id":"typed","type":"typed_data","domains":[{{}}]}},
           {{"id":"deny","type":"deny_recipients","addresses":["{MALLORY}"]}}]"#
    ));
    let ctx = Ctx::new(1_000);
    let denied = |action: Action| {
        let d = ctx.eval(&p, &action);
        (denied_by(&d).to_string(), d.observed)
    };
    let hit = ("deny".to_string(), Some(MALLORY.to_string()));
    assert_eq!(denied(send(MALLORY, "0.1")), hit);
    assert_eq!(denied(token_send(MALLORY, "1")), hit);
    assert_eq!(
        denied(Action::TokenTransfer {
            token: addr(TOKEN),
            from: Some(addr(MALLORY)),
            to: addr(ALICE),
            amount: U256::from(1u8)
        }),
        hit
    );
    assert_eq!(
        denied(Action::TokenApprove {
            token: addr(TOKEN),
            spender: addr(MALLORY),
            amount: U256::from(1u8),
            increase: true
        }),
        hit
    );
    let f = crate::decode::parse_function("f()").unwrap().selector().0;
    assert_eq!(
        denied(Action::ContractCall {
            to: addr(MALLORY),
            value: U256::ZERO,
            selector: f,
            call: Some(DecodedCall { signature: "f()".into(), names: vec![], args: vec![] })
        }),
        hit
    );
    assert_eq!(denied(Action::TypedData(permit(31337, MALLORY))), hit);
    allowed(&ctx.eval(&p, &Action::TypedData(permit(31337, ROUTER))));
    allowed(&ctx.eval(
        &p,
        &Action::TokenApprove { token: addr(TOKEN), spender: addr(ROUTER), amount: U256::MAX, increase: false },
    ));
    // A token that is itself denied.
    let deny_token = policy(&format!(
        r#"[{{"id":"tst","type":"max_per_tx","asset":"TST","amount":"10"}},{{"id":"deny","type":"deny_recipients","addresses":["{TOKEN}"]}}]"#
    ));
    assert_eq!(denied_by(&ctx.eval(&deny_token, &token_send(ALICE, "1"))), "deny");
}

#[test]
fn allow_lists_of_recipients_and_tokens() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"tst","type":"max_per_tx","asset":"TST","amount":"10"}},
           {{"id":"approve","type":"erc20_approve","spenders":["{ROUTER}"],"allow_unlimited":true}},
           {{"id":"recipients","type":"allow_recipients","addresses":["{ALICE}"]}},
           {{"id":"tokens","type":"allow_tokens","tokens":["{OTHER_TOKEN}"]}}]"#
    ));
    let ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &send(ALICE, "0.1")));
    let d = ctx.eval(&p, &send(MALLORY, "0.1"));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("recipients", Some(MALLORY)));
    let d = ctx.eval(&p, &token_send(ALICE, "1"));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("tokens", Some(TOKEN)));
    let approve = |token: &str| Action::TokenApprove {
        token: addr(token),
        spender: addr(ROUTER),
        amount: U256::MAX,
        increase: false,
    };
    assert_eq!(denied_by(&ctx.eval(&p, &approve(TOKEN))), "tokens");
    // An approval has no recipient; the token allowlist is what applies.
    allowed(&ctx.eval(&p, &approve(OTHER_TOKEN)));
}

#[test]
fn chain_and_gas_rules_apply_to_transactions_only() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"chains","type":"allow_chains","chain_ids":[1]}},
           {{"id":"gas","type":"gas_cap","max_gas":21000,"max_fee_per_gas_gwei":"2"}},
           {{"id":"sim","type":"require_simulation"}},
           {{"id":"m","type":"personal_message","mode":"allow"}},
           {{"id":"t","type":"typed_data","domains":[{{}}]}}]"#
    ));
    let mut ctx = Ctx::new(1_000);
    ctx.fees = None;
    ctx.simulation = None;
    allowed(&ctx.eval(&p, &Action::PersonalMessage { message: b"x".to_vec() }));
    let mut no_chain = permit(1, TOKEN);
    no_chain.chain_id = None;
    allowed(&ctx.eval(&p, &Action::TypedData(no_chain)));
    let d = ctx.eval(&p, &Action::TypedData(permit(5, TOKEN)));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("chains", Some("5")));
    allowed(&ctx.eval(&p, &Action::TypedData(permit(1, TOKEN))));
    // Gas exactly at the caps passes.
    let on_chain_one =
        policy(&format!(r#"[{CAP},{{"id":"gas","type":"gas_cap","max_gas":21000,"max_fee_per_gas_gwei":"2"}}]"#));
    ctx.fees = Some(Fees { gas: 21_000, max_fee_per_gas: 2_000_000_000 });
    allowed(&ctx.eval(&on_chain_one, &send(ALICE, "0.1")));
    ctx.fees = Some(Fees { gas: 21_001, max_fee_per_gas: 2_000_000_000 });
    let d = ctx.eval(&on_chain_one, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&d), d.observed.as_deref(), d.limit.as_deref()), ("gas", Some("21001"), Some("21000")));
    ctx.fees = Some(Fees { gas: 21_000, max_fee_per_gas: 2_000_000_001 });
    let d = ctx.eval(&on_chain_one, &send(ALICE, "0.1"));
    assert_eq!(d.limit.as_deref(), Some("2 gwei"));
    // Without fees and without a reverting simulation, the cap cannot be checked.
    ctx.fees = None;
    ctx.simulation = Some(SimulationOutcome::Success);
    assert_eq!(
        ctx.eval(&on_chain_one, &send(ALICE, "0.1")).reason,
        "the transaction's fees are unknown, so the gas cap cannot be checked"
    );
}

#[test]
fn contract_conditions_compare_like_kinds_and_name_the_argument() {
    let sig = "f(uint256 amount, int256 delta, bytes4 tag, bool flag, string note, address who)";
    let p = policy(&format!(
        r#"[{{"id":"c","type":"allow_contracts","contracts":[{{"address":"{ROUTER}","functions":[
              {{"signature":"{sig}","conditions":[
                  {{"arg":"amount","op":"lte","value":"10"}},
                  {{"arg":1,"op":"gte","value":"-2"}},
                  {{"arg":2,"op":"eq","value":"0x01020304"}},
                  {{"arg":3,"op":"eq","value":true}},
                  {{"arg":4,"op":"in","values":["a","b"]}},
                  {{"arg":5,"op":"eq","value":"{ALICE}"}}]}},
              {{"signature":"g(uint256)","conditions":[{{"arg":0,"op":"lte","value":"5"}}]}}]}}]}}]"#
    ));
    let function = crate::decode::parse_function(sig).unwrap();
    let call = |args: Vec<DynSolValue>| Action::ContractCall {
        to: addr(ROUTER),
        value: U256::ZERO,
        selector: function.selector().0,
        call: Some(DecodedCall { signature: function.signature(), names: vec![], args }),
    };
    let int = |n: i64| DynSolValue::Int(alloy_primitives::I256::try_from(n).unwrap(), 256);
    let mut word = B256::ZERO;
    word.0[..4].copy_from_slice(&[1, 2, 3, 4]);
    let args = |amount: u64, delta: DynSolValue, tag: B256, flag: bool, note: &str| {
        vec![
            DynSolValue::Uint(U256::from(amount), 256),
            delta,
            DynSolValue::FixedBytes(tag, 4),
            DynSolValue::Bool(flag),
            DynSolValue::String(note.into()),
            DynSolValue::Address(addr(ALICE)),
        ]
    };
    let ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &call(args(10, int(-2), word, true, "b"))));
    let reason = |action: Action| {
        let d = ctx.eval(&p, &action);
        (d.reason, d.observed, d.limit)
    };
    let text = |reason: &str, observed: &str, limit: &str| {
        (reason.to_string(), Some(observed.to_string()), Some(limit.to_string()))
    };
    let full = function.signature();
    assert_eq!(
        reason(call(args(11, int(-2), word, true, "b"))),
        text(&format!("argument amount of {full} must be at most 10"), "11", "10")
    );
    assert_eq!(
        reason(call(args(1, int(-3), word, true, "b"))),
        text(&format!("argument delta of {full} must be at least -2"), "-3", "-2")
    );
    // A uint where an int bound is expected does not compare.
    assert_eq!(
        reason(call(args(1, DynSolValue::Uint(U256::from(5u8), 256), word, true, "b"))).0,
        format!("argument delta of {full} must be at least -2")
    );
    // Nor does a bool, which sorts after every integer.
    assert_eq!(
        reason(call(args(1, DynSolValue::Bool(true), word, true, "b"))).0,
        format!("argument delta of {full} must be at least -2")
    );
    let mut other = word;
    other.0[3] = 5;
    assert_eq!(
        reason(call(args(1, int(0), other, true, "b"))),
        text(&format!("argument tag of {full} must equal 0x01020304"), "0x01020305", "0x01020304")
    );
    assert_eq!(
        reason(call(args(1, int(0), word, false, "b"))),
        text(&format!("argument flag of {full} must equal true"), "false", "true")
    );
    assert_eq!(
        reason(call(args(1, int(0), word, true, "c"))),
        text(&format!("argument note of {full} must be one of \"a\", \"b\""), "\"c\"", "\"a\", \"b\"")
    );
    let mut wrong_who = args(1, int(0), word, true, "a");
    wrong_who[5] = DynSolValue::Address(addr(MALLORY));
    assert_eq!(reason(call(wrong_who)), text(&format!("argument who of {full} must equal {ALICE}"), MALLORY, ALICE));
    // A missing or uncomparable argument is refused.
    assert_eq!(reason(call(vec![])).0, "argument amount cannot be compared");
    let g = crate::decode::parse_function("g(uint256)").unwrap();
    let g_call = |args: Vec<DynSolValue>| Action::ContractCall {
        to: addr(ROUTER),
        value: U256::ZERO,
        selector: g.selector().0,
        call: Some(DecodedCall { signature: g.signature(), names: vec![], args }),
    };
    assert_eq!(
        reason(g_call(vec![DynSolValue::Uint(U256::from(6u8), 256)])).0,
        "argument 0 of g(uint256) must be at most 5"
    );
    assert_eq!(reason(g_call(vec![DynSolValue::Array(vec![])])).0, "argument 0 cannot be compared");
    allowed(&ctx.eval(&p, &g_call(vec![DynSolValue::Uint(U256::from(5u8), 256)])));
    let undecoded = Action::ContractCall { to: addr(ROUTER), value: U256::ZERO, selector: g.selector().0, call: None };
    assert_eq!(reason(undecoded).0, "the call's arguments were not decoded");
    // Dynamic bytes compare as bytes.
    let h = policy(&format!(
        r#"[{{"id":"c","type":"allow_contracts","contracts":[{{"address":"{ROUTER}","functions":[
              {{"signature":"h(bytes data)","conditions":[{{"arg":0,"op":"eq","value":"0xabcd"}}]}}]}}]}}]"#
    ));
    let h_fn = crate::decode::parse_function("h(bytes data)").unwrap();
    let h_call = |bytes: Vec<u8>| Action::ContractCall {
        to: addr(ROUTER),
        value: U256::ZERO,
        selector: h_fn.selector().0,
        call: Some(DecodedCall { signature: h_fn.signature(), names: vec![], args: vec![DynSolValue::Bytes(bytes)] }),
    };
    allowed(&ctx.eval(&h, &h_call(vec![0xab, 0xcd])));
    assert_eq!(ctx.eval(&h, &h_call(vec![0xab])).observed.as_deref(), Some("0xab"));
}

#[test]
fn typed_data_domains_match_every_given_field() {
    let p = policy(&format!(
        r#"[{{"id":"t","type":"typed_data","domains":[{{"chain_id":31337,"verifying_contract":"{TOKEN}","name":"Test Token","primary_types":["Permit"]}}]}}]"#
    ));
    let ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &Action::TypedData(permit(31337, TOKEN))));
    let mut renamed = permit(31337, TOKEN);
    renamed.name = Some("Other".into());
    assert_eq!(denied_by(&ctx.eval(&p, &Action::TypedData(renamed))), "t");
    let mut nameless = permit(31337, TOKEN);
    nameless.name = None;
    assert_eq!(denied_by(&ctx.eval(&p, &Action::TypedData(nameless))), "t");
    let mut bare = permit(31337, TOKEN);
    bare.verifying_contract = None;
    bare.chain_id = None;
    let d = ctx.eval(&p, &Action::TypedData(bare));
    assert_eq!(d.observed.as_deref(), Some("Permit on no verifying contract (chain none)"));
    let d = ctx.eval(&p, &Action::TypedData(permit(1, ROUTER)));
    assert_eq!(d.observed.as_deref(), Some(format!("Permit on {ROUTER} (chain 1)").as_str()));
}

#[test]
fn no_policy_denies_with_no_hash() {
    let ctx = Ctx::new(1_000);
    let view = view(&ctx);
    let d = evaluate(None, &send(ALICE, "0.1"), &view);
    assert_eq!(
        (d.verdict, d.code, d.reason.as_str(), d.policy_hash.as_str()),
        (Verdict::Deny, Some(ErrorCode::PolicyDenied), "no policy is set for this wallet", "none")
    );
    let p = policy(&format!("[{CAP}]"));
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((d.rule_id.as_str(), d.reason.as_str(), d.policy_hash.len()), ("allowed", "no rule was violated", 64));
    assert_eq!(d.policy_hash, p.hash);
}

#[test]
fn amounts_are_given_in_whole_units_or_base_units() {
    let measured = |fields: &str| match only_rule(&format!(r#"[{{"id":"a","type":"max_per_tx"{fields}}}]"#)) {
        Ok(RuleKind::MaxPerTx { basis, limit }) => Ok((basis, limit)),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.path),
    };
    let native = Basis::Asset(Asset::Native);
    let tst = Basis::Asset(Asset::Token(addr(TOKEN)));
    assert_eq!(measured(r#","amount":"1.5""#), Ok((native, parse_units("1.5", 18).unwrap())));
    assert_eq!(measured(r#","amount_wei":"7""#), Ok((native, U256::from(7u8))));
    assert_eq!(measured(r#","amount_base":"7""#), Ok((native, U256::from(7u8))));
    assert_eq!(measured(r#","asset":"native","amount":"2""#), Ok((native, parse_units("2", 18).unwrap())));
    assert_eq!(measured(r#","asset":"TST","amount":"1.5""#), Ok((tst, U256::from(1_500_000u64))));
    assert_eq!(
        measured(&format!(r#","asset":"{}","amount_base":"9""#, TOKEN.to_lowercase())),
        Ok((tst, U256::from(9u8)))
    );
    let at = |key: &str| Err(format!("$.rules[0]{key}"));
    assert_eq!(measured(r#","asset":"TST","amount_wei":"7""#), at(".amount_wei"));
    assert_eq!(measured(r#","amount":"1","amount_base":"1""#), at(""));
    assert_eq!(measured(r#","amount":"1","amount_wei":"1""#), at(""));
    assert_eq!(measured(r#","amount":1"#), at(".amount"));
    assert_eq!(measured(r#","amount_base":1"#), at(".amount_base"));
    assert_eq!(measured(r#","amount_wei":"1.5""#), at(".amount_wei"));
    assert_eq!(measured(""), at(".amount"));
    assert_eq!(measured(r#","asset":7,"amount":"1""#), at(".asset"));
    let usd = |fields: &str| only_rule(&format!(r#"[{{"id":"a","type":"max_per_tx_usd"{fields}}}]"#));
    assert_eq!(usd(r#","usd":"2.5""#), Ok(RuleKind::MaxPerTx { basis: Basis::Usd, limit: U256::from(2_500_000u64) }));
    assert_eq!(usd("").unwrap_err().path, "$.rules[0].usd");
    assert_eq!(usd(r#","usd":"0.0000001""#).unwrap_err().path, "$.rules[0].usd");
    assert_eq!(usd(r#","usd":1"#).unwrap_err().path, "$.rules[0].usd");
    let rolling = only_rule(r#"[{"id":"a","type":"rolling_cap_usd","usd":"3","window_secs":60}]"#);
    assert_eq!(
        rolling,
        Ok(RuleKind::RollingCap { basis: Basis::Usd, window_secs: 60, limit: U256::from(3_000_000u64) })
    );
    let rolling = only_rule(r#"[{"id":"a","type":"rolling_cap","asset":"TST","amount":"3","window_secs":60}]"#);
    assert_eq!(rolling, Ok(RuleKind::RollingCap { basis: tst, window_secs: 60, limit: U256::from(3_000_000u64) }));
}

#[test]
fn tier_thresholds_are_in_the_basis_units_and_ascending() {
    let tiers = |fields: &str| only_rule(&format!(r#"[{{"id":"t","type":"tiers"{fields}}}]"#));
    assert_eq!(
        tiers(
            r#","basis":"TST","notify_above":"1","delay_above":"1","approval_above":"2.5","delay_secs":60,"window_secs":120"#
        ),
        Ok(RuleKind::Tiers {
            basis: Basis::Asset(Asset::Token(addr(TOKEN))),
            thresholds: vec![
                (U256::from(1_000_000u64), Tier::Notify),
                (U256::from(1_000_000u64), Tier::Delay),
                (U256::from(2_500_000u64), Tier::Approval)
            ],
            delay_secs: 60,
            window_secs: Some(120),
        })
    );
    assert_eq!(
        tiers(r#","basis":"usd","delay_above":"1""#),
        Ok(RuleKind::Tiers {
            basis: Basis::Usd,
            thresholds: vec![(U256::from(1_000_000u64), Tier::Delay)],
            delay_secs: 3600,
            window_secs: None,
        })
    );
    assert_eq!(
        tiers(r#","basis":"native","notify_above":"1""#),
        Ok(RuleKind::Tiers {
            basis: Basis::Asset(Asset::Native),
            thresholds: vec![(parse_units("1", 18).unwrap(), Tier::Notify)],
            delay_secs: 3600,
            window_secs: None,
        })
    );
    assert_eq!(tiers("").unwrap_err().path, "$.rules[0]");
    assert_eq!(tiers(r#","delay_above":"2","approval_above":"1""#).unwrap_err().path, "$.rules[0]");
    assert_eq!(tiers(r#","notify_above":"2","delay_above":"1""#).unwrap_err().path, "$.rules[0]");
    assert_eq!(tiers(r#","notify_above":"x""#).unwrap_err().path, "$.rules[0].notify_above");
    assert_eq!(tiers(r#","basis":"DOGE","notify_above":"1""#).unwrap_err().path, "$.rules[0].basis");
    assert_eq!(tiers(r#","notify_above":"1","delay_secs":0"#).unwrap_err().path, "$.rules[0].delay_secs");
    assert_eq!(tiers(r#","notify_above":"1","delay_secs":316224001"#).unwrap_err().path, "$.rules[0].delay_secs");
    assert!(tiers(r#","notify_above":"1","delay_secs":316224000"#).is_ok());
    assert_eq!(tiers(r#","notify_above":"1","window_secs":316224001"#).unwrap_err().path, "$.rules[0].window_secs");
}

#[test]
fn approval_rules_parse_their_token_cap_and_spenders() {
    let approve = |fields: &str| match only_rule(&format!(
        r#"[{{"id":"a","type":"erc20_approve","spenders":["{ROUTER}"]{fields}}}]"#
    )) {
        Ok(RuleKind::Erc20Approve { token, spenders, max_amount, allow_unlimited }) => {
            assert_eq!(spenders.into_iter().collect::<Vec<_>>(), vec![addr(ROUTER)]);
            Ok((token, max_amount, allow_unlimited))
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.path),
    };
    let tst = Some(addr(TOKEN));
    assert_eq!(approve(r#","token":"TST","amount":"2""#), Ok((tst, Some(U256::from(2_000_000u64)), false)));
    assert_eq!(approve(r#","amount_base":"2""#), Ok((None, Some(U256::from(2u8)), false)));
    assert_eq!(
        approve(r#","token":"TST","amount_base":"2","allow_unlimited":true"#),
        Ok((tst, Some(U256::from(2u8)), true))
    );
    assert_eq!(approve(r#","allow_unlimited":true"#), Ok((None, None, true)));
    let at = |key: &str| Err(format!("$.rules[0]{key}"));
    assert_eq!(approve(r#","token":"native","amount":"1""#), at(".token"));
    assert_eq!(approve(r#","token":"DOGE","amount":"1""#), at(".token"));
    assert_eq!(approve(r#","amount":"1""#), at(".amount"));
    assert_eq!(approve(r#","token":"TST","amount":"1","amount_base":"1""#), at(""));
    assert_eq!(approve(r#","token":"TST","amount":1"#), at(".amount"));
    assert_eq!(approve(r#","token":"TST","amount":"0.0000001""#), at(".amount"));
    assert_eq!(approve(r#","amount_base":1"#), at(".amount_base"));
    assert_eq!(approve(r#","amount_base":"1.5""#), at(".amount_base"));
    assert_eq!(approve(""), at(".amount"));
    assert_eq!(approve(r#","allow_unlimited":"yes""#), at(".allow_unlimited"));
    assert_eq!(approve(r#","allow_unlimited":false"#), at(".amount"));
    let no_spenders = only_rule(r#"[{"id":"a","type":"erc20_approve","allow_unlimited":true}]"#);
    assert_eq!(no_spenders.unwrap_err().path, "$.rules[0].spenders");
}

#[test]
fn contract_lists_parse_functions_once_each() {
    let contracts = |functions: &str| {
        only_rule(&format!(
            r#"[{{"id":"c","type":"allow_contracts","contracts":[{{"address":"{ROUTER}","functions":{functions}}}]}}]"#
        ))
    };
    let RuleKind::AllowContracts { contracts: parsed } =
        contracts(r#"[{"signature":"f(uint256)"},{"signature":"g()","conditions":[]}]"#).unwrap()
    else {
        panic!()
    };
    let functions = &parsed[&addr(ROUTER)];
    assert_eq!(functions.len(), 2);
    assert!(functions.values().all(|f| f.conditions.is_empty()));
    let at = "$.rules[0].contracts[0]";
    for (functions, path) in [
        (r#"[{"signature":"f(uint256)"},{"signature":"f(uint256 x)"}]"#, format!("{at}.functions[1].signature")),
        (r#"[{}]"#, format!("{at}.functions[0].signature")),
        (r#"[{"signature":"f()","extra":1}]"#, format!("{at}.functions[0].extra")),
        (r#"["f()"]"#, format!("{at}.functions[0]")),
        (r#"[{"signature":"f()","conditions":{}}]"#, format!("{at}.functions[0].conditions")),
        (r#""f()""#, format!("{at}.functions")),
    ] {
        assert_eq!(contracts(functions).unwrap_err().path, path, "{functions}");
    }
    let bad_entry =
        |entry: &str| only_rule(&format!(r#"[{{"id":"c","type":"allow_contracts","contracts":[{entry}]}}]"#));
    assert_eq!(bad_entry(r#"{"functions":[]}"#).unwrap_err().path, format!("{at}.address"));
    assert_eq!(
        bad_entry(&format!(r#"{{"address":"{ROUTER}","functions":[],"x":1}}"#)).unwrap_err().path,
        format!("{at}.x")
    );
    assert_eq!(bad_entry("7").unwrap_err().path, at);
}

#[test]
fn typed_data_messages_and_small_rules_parse() {
    let kind = |rule: &str| only_rule(&format!(r#"[{{"id":"r",{rule}}}]"#));
    assert_eq!(
        kind(&format!(
            r#""type":"typed_data","domains":[{{"chain_id":5,"verifying_contract":"{TOKEN}","name":"N","primary_types":["Permit","Order"]}},{{}}]"#
        )),
        Ok(RuleKind::TypedData {
            domains: vec![
                TypedDataDomain {
                    chain_id: Some(5),
                    verifying_contract: Some(addr(TOKEN)),
                    name: Some("N".into()),
                    primary_types: ["Order".to_string(), "Permit".to_string()].into_iter().collect(),
                },
                TypedDataDomain::default(),
            ]
        })
    );
    let path = |rule: &str| kind(rule).unwrap_err().path;
    assert_eq!(path(r#""type":"typed_data","domains":[{"chain_id":0}]"#), "$.rules[0].domains[0].chain_id");
    assert_eq!(
        path(r#""type":"typed_data","domains":[{"verifying_contract":"0x1"}]"#),
        "$.rules[0].domains[0].verifying_contract"
    );
    assert_eq!(
        path(r#""type":"typed_data","domains":[{"primary_types":[""]}]"#),
        "$.rules[0].domains[0].primary_types[0]"
    );
    assert_eq!(
        path(r#""type":"typed_data","domains":[{"primary_types":[7]}]"#),
        "$.rules[0].domains[0].primary_types[0]"
    );
    assert_eq!(path(r#""type":"typed_data","domains":[{"name":7}]"#), "$.rules[0].domains[0].name");
    assert_eq!(path(r#""type":"typed_data","domains":[{"other":1}]"#), "$.rules[0].domains[0].other");
    assert_eq!(path(r#""type":"typed_data","domains":[1]"#), "$.rules[0].domains[0]");
    assert_eq!(
        kind(r#""type":"personal_message","mode":"allow""#),
        Ok(RuleKind::PersonalMessage { allow: true, pattern: None })
    );
    let RuleKind::PersonalMessage { allow: false, pattern: Some(pattern) } =
        kind(r#""type":"personal_message","mode":"deny","pattern":"^a""#).unwrap()
    else {
        panic!()
    };
    assert_eq!(pattern.0.as_str(), "^a");
    assert_eq!(path(r#""type":"personal_message","mode":"deny""#), "$.rules[0].pattern");
    assert_eq!(path(r#""type":"personal_message""#), "$.rules[0].mode");
    assert_eq!(path(r#""type":"personal_message","mode":"maybe""#), "$.rules[0].mode");
    let long = "a".repeat(1024);
    assert!(kind(&format!(r#""type":"personal_message","mode":"allow","pattern":"{long}""#)).is_ok());
    assert_eq!(path(&format!(r#""type":"personal_message","mode":"allow","pattern":"{long}a""#)), "$.rules[0].pattern");
    assert_eq!(kind(r#""type":"raw_hash","allow":true"#), Ok(RuleKind::RawHash));
    assert_eq!(path(r#""type":"raw_hash""#), "$.rules[0].allow");
    assert_eq!(kind(r#""type":"require_simulation""#), Ok(RuleKind::RequireSimulation));
    assert_eq!(path(r#""type":"require_simulation","x":1"#), "$.rules[0].x");
    assert_eq!(
        kind(r#""type":"allow_chains","chain_ids":[1,10]"#),
        Ok(RuleKind::AllowChains { chain_ids: [1, 10].into_iter().collect() })
    );
    assert_eq!(path(r#""type":"allow_chains","chain_ids":[0]"#), "$.rules[0].chain_ids[0]");
    assert_eq!(path(r#""type":"allow_chains","chain_ids":["1"]"#), "$.rules[0].chain_ids[0]");
    assert_eq!(
        kind(&format!(r#""type":"allow_tokens","tokens":["TST","{OTHER_TOKEN}"]"#)),
        Ok(RuleKind::AllowTokens { tokens: [addr(TOKEN), addr(OTHER_TOKEN)].into_iter().collect() })
    );
    assert_eq!(path(r#""type":"allow_tokens","tokens":["DOGE"]"#), "$.rules[0].tokens[0]");
    assert_eq!(path(r#""type":"allow_tokens","tokens":["0x12"]"#), "$.rules[0].tokens[0]");
    assert_eq!(path(r#""type":"allow_tokens","tokens":[1]"#), "$.rules[0].tokens[0]");
    assert_eq!(
        kind(&format!(r#""type":"deny_recipients","addresses":["{ALICE}"]"#)),
        Ok(RuleKind::DenyRecipients { addresses: [addr(ALICE)].into_iter().collect() })
    );
    assert_eq!(path(r#""type":"deny_recipients","addresses":[1]"#), "$.rules[0].addresses[0]");
    assert_eq!(
        kind(r#""type":"velocity","window_secs":60,"max_count":3"#),
        Ok(RuleKind::Velocity { window_secs: 60, max_count: 3 })
    );
    assert_eq!(path(r#""type":"velocity","window_secs":60,"max_count":0"#), "$.rules[0].max_count");
    assert_eq!(path(r#""type":"velocity","max_count":1"#), "$.rules[0].window_secs");
    assert_eq!(path(r#""type":"time_window""#), "$.rules[0].timezone");
    assert_eq!(path(r#""type":"time_window","timezone":"UTC","days":"mon""#), "$.rules[0].days");
}

#[test]
fn documents_are_versioned_objects_with_unique_short_rule_ids() {
    let parse = |text: &str| Policy::parse(text).map(|p| p.rules.len()).map_err(|e| e.path);
    assert_eq!(parse(r#"{"version":1,"rules":[]}"#), Ok(0));
    assert_eq!(parse("[]"), Err("$".into()));
    assert_eq!(parse("{"), Err("$".into()));
    assert_eq!(parse(r#"{"rules":[]}"#), Err("$.version".into()));
    assert_eq!(parse(r#"{"version":"1","rules":[]}"#), Err("$.version".into()));
    assert_eq!(parse(r#"{"version":1}"#), Err("$.rules".into()));
    assert_eq!(parse(r#"{"version":1,"rules":[1]}"#), Err("$.rules[0]".into()));
    assert_eq!(parse(r#"{"version":1,"rules":[{"type":"raw_hash","allow":true}]}"#), Err("$.rules[0].id".into()));
    assert_eq!(
        parse(r#"{"version":1,"rules":[{"id":"","type":"raw_hash","allow":true}]}"#),
        Err("$.rules[0].id".into())
    );
    assert_eq!(parse(r#"{"version":1,"rules":[{"id":"r"}]}"#), Err("$.rules[0].type".into()));
    let id =
        |n: usize| format!(r#"{{"version":1,"rules":[{{"id":"{}","type":"raw_hash","allow":true}}]}}"#, "x".repeat(n));
    assert_eq!(parse(&id(64)), Ok(1));
    assert_eq!(parse(&id(65)), Err("$.rules[0].id".into()));
    let rules = |n: usize| {
        let rules: Vec<String> = (0..n).map(|i| format!(r#"{{"id":"r{i}","type":"require_simulation"}}"#)).collect();
        format!(r#"{{"version":1,"rules":[{}]}}"#, rules.join(","))
    };
    assert_eq!(parse(&rules(1000)), Ok(1000));
    assert_eq!(parse(&rules(1001)), Err("$.rules".into()));
    // The hash is of the canonical document: key order and spacing do not change it.
    let a = Policy::parse(r#"{"version":1,"rules":[{"id":"r","type":"require_simulation"}]}"#).unwrap();
    let b = Policy::parse(r#"{ "rules" : [ {"type":"require_simulation","id":"r"} ], "version" : 1 }"#).unwrap();
    let c = Policy::parse(r#"{"version":1,"rules":[{"id":"s","type":"require_simulation"}]}"#).unwrap();
    assert_eq!(a.hash, b.hash);
    assert_ne!(a.hash, c.hash);
}

#[test]
fn price_sources_are_static_or_aggregators() {
    let prices = |spec: &str| {
        Policy::parse(&format!(
            r#"{{"version":1,"tokens":{{"TST":{{"address":"{TOKEN}","decimals":6}}}},"prices":{spec},"rules":[]}}"#
        ))
        .map(|p| p.prices)
        .map_err(|e| e.path)
    };
    assert_eq!(
        prices(&format!(r#"{{"native":{{"usd":"2000.5"}},"TST":{{"aggregator":"{FEED}","max_age_secs":60}}}}"#)),
        Ok([
            (Asset::Native, PriceSource::Static { usd_micro: U256::from(2_000_500_000u64) }),
            (Asset::Token(addr(TOKEN)), PriceSource::Aggregator { address: addr(FEED), max_age_secs: 60 }),
        ]
        .into_iter()
        .collect())
    );
    assert_eq!(prices(r#"{"native":{"usd":"0"}}"#), Err("$.prices.native.usd".into()));
    assert_eq!(prices(r#"{"native":{"usd":2}}"#), Err("$.prices.native.usd".into()));
    assert_eq!(prices(r#"{"native":{"usd":"1","x":1}}"#), Err("$.prices.native.x".into()));
    assert_eq!(prices(&format!(r#"{{"native":{{"usd":"1","aggregator":"{FEED}"}}}}"#)), Err("$.prices.native".into()));
    assert_eq!(prices(r#"{"native":{}}"#), Err("$.prices.native".into()));
    assert_eq!(prices(r#"{"native":1}"#), Err("$.prices.native".into()));
    assert_eq!(prices(r#"{"DOGE":{"usd":"1"}}"#), Err("$.prices.DOGE".into()));
    assert_eq!(prices(r#"[]"#), Err("$.prices".into()));
    assert_eq!(
        prices(r#"{"native":{"aggregator":"0x1","max_age_secs":60}}"#),
        Err("$.prices.native.aggregator".into())
    );
    assert_eq!(
        prices(&format!(r#"{{"native":{{"aggregator":"{FEED}","max_age_secs":60,"x":1}}}}"#)),
        Err("$.prices.native.x".into())
    );
    let many = |n: usize| {
        let tokens: Vec<String> =
            (0..n).map(|i| format!(r#""T{i}":{{"address":"0x{:040x}","decimals":6}}"#, i + 1)).collect();
        let prices: Vec<String> = (0..n).map(|i| format!(r#""T{i}":{{"usd":"1"}}"#)).collect();
        Policy::parse(&format!(
            r#"{{"version":1,"tokens":{{{}}},"prices":{{{}}},"rules":[]}}"#,
            tokens.join(","),
            prices.join(",")
        ))
        .map(|p| p.prices.len())
        .map_err(|e| e.path)
    };
    assert_eq!(many(100), Ok(100));
    // 101 tokens are refused first; a 101st price needs "native".
    let tokens: Vec<String> =
        (0..100).map(|i| format!(r#""T{i}":{{"address":"0x{:040x}","decimals":6}}"#, i + 1)).collect();
    let mut entries: Vec<String> = (0..100).map(|i| format!(r#""T{i}":{{"usd":"1"}}"#)).collect();
    entries.push(r#""native":{"usd":"1"}"#.into());
    let text =
        format!(r#"{{"version":1,"tokens":{{{}}},"prices":{{{}}},"rules":[]}}"#, tokens.join(","), entries.join(","));
    assert_eq!(Policy::parse(&text).unwrap_err().path, "$.prices");
}

#[test]
fn each_basis_keeps_its_own_running_totals() {
    // A native window first, then a USD window whose earlier token spend cannot be
    // valued: the USD totals are built for USD, and their failure is reported.
    let p = policy(&format!(
        r#"[{CAP},{{"id":"eth","type":"rolling_cap","window_secs":60,"amount":"1"}},
           {{"id":"usd","type":"rolling_cap_usd","window_secs":60,"usd":"100000"}}]"#
    ));
    let mut ctx = Ctx::new(1_000);
    ctx.prices.clear();
    ctx.history = vec![Spend {
        at: 990,
        asset: Asset::Token(addr(TOKEN)),
        amount: U256::from(1u8),
        usd_micro: None,
        chain_id: None,
        x402: false,
    }];
    let d = ctx.eval(&p, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&d), d.code), ("usd", Some(ErrorCode::PriceUnavailable)));
    assert!(d.reason.starts_with("cannot value an earlier spend"), "{d:?}");
}

#[test]
fn windows_in_different_zones_use_their_own_clock() {
    let p = policy(&format!(
        r#"[{CAP},{{"id":"utc","type":"time_window","timezone":"UTC","start":"05:00"}},
           {{"id":"berlin","type":"time_window","timezone":"Europe/Berlin","start":"06:00"}}]"#
    ));
    // Monday 05:30 UTC is 06:30 in Berlin: both windows are open.
    allowed(&Ctx::new(at(0, 5, 30)).eval(&p, &send(ALICE, "0.1")));
    let d = Ctx::new(at(0, 4, 30)).eval(&p, &send(ALICE, "0.1"));
    assert_eq!((denied_by(&d), d.observed.as_deref()), ("utc", Some("mon 04:30")));
}

#[test]
fn a_tier_rule_that_cannot_price_the_action_is_named() {
    let p = Policy::parse(&format!(
        r#"{{"version":1,"tokens":{{"TST":{{"address":"{TOKEN}","decimals":6}}}},
            "prices":{{"TST":{{"aggregator":"{FEED}","max_age_secs":60}}}},
            "rules":[{{"id":"tst","type":"max_per_tx","asset":"TST","amount":"10"}},
                     {{"id":"usd-tier","type":"tiers","basis":"usd","approval_above":"5"}}]}}"#
    ))
    .unwrap();
    let mut ctx = Ctx::new(1_000);
    allowed(&ctx.eval(&p, &token_send(ALICE, "1")));
    assert_eq!(ctx.eval(&p, &token_send(ALICE, "6")).tier, Tier::Approval);
    ctx.prices.clear();
    let d = ctx.eval(&p, &token_send(ALICE, "1"));
    assert_eq!((denied_by(&d), d.code), ("usd-tier", Some(ErrorCode::PriceUnavailable)));
}

#[test]
fn a_condition_names_an_existing_argument() {
    let error = conditions_of("f(uint256 a, uint256 b)", r#"[{"arg":2,"op":"eq","value":"1"}]"#).unwrap_err();
    assert_eq!(error.message, "the function has 2 arguments");
    assert_eq!(conditions_of("f(uint256 a, uint256 b)", r#"[{"arg":"b","op":"eq","value":"1"}]"#).unwrap()[0].index, 1);
}

#[test]
fn a_cap_in_an_asset_counts_its_own_chain_and_a_usd_cap_every_chain() {
    let p = policy(
        r#"[{"id":"cap","type":"max_per_tx","amount":"5"},
            {"id":"eth-day","type":"rolling_cap","window_secs":86400,"amount":"1"},
            {"id":"usd-day","type":"rolling_cap_usd","window_secs":86400,"usd":"3000"}]"#,
    );
    let mut ctx = Ctx::new(1_000);
    // 0.9 ETH spent on another chain (8453) and 0.6 on this one (31337), each $2000 per ETH.
    let spend = |eth: &str, chain| Spend {
        at: 900,
        asset: Asset::Native,
        amount: parse_units(eth, 18).unwrap(),
        usd_micro: Some(parse_units(eth, 18).unwrap() * U256::from(2000u64) / U256::from(1_000_000_000_000u64)),
        chain_id: Some(chain),
        x402: false,
    };
    ctx.history = vec![spend("0.9", 8453), spend("0.4", 31337)];
    // This chain's ETH cap sees 0.4 of this chain only: 0.6 more fits, 0.61 does not.
    allowed(&ctx.eval(&p, &send(ALICE, "0.2")));
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.61"))), "eth-day");
    // The USD cap counts both chains: $2600 spent, $400 (0.2 ETH) left.
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.3"))), "usd-day");
    // Spends of unknown chain (older records) count as this chain's.
    ctx.history = vec![Spend { chain_id: None, ..spend("0.9", 1) }];
    assert_eq!(denied_by(&ctx.eval(&p, &send(ALICE, "0.2"))), "eth-day");
}

fn x402(host: &str, tst: &str) -> Action {
    Action::X402Payment { host: host.into(), token: addr(TOKEN), to: addr(ALICE), amount: parse_units(tst, 6).unwrap() }
}

#[test]
fn x402_payments_need_an_x402_rule_for_the_host_and_count_in_the_caps() {
    // TST is $1 (the aggregator quote in Ctx::new).
    let tst_cap = r#"{"id":"tst","type":"max_per_tx","asset":"TST","amount":"50"}"#;
    let mut ctx = Ctx::new(1_000);
    ctx.prices.insert(
        Asset::Token(addr(TOKEN)),
        PriceQuote { answer: U256::from(100_000_000u64), decimals: 8, updated_at: 1_000 },
    );
    // No x402 rule: denied by default, though the token's cap would allow it.
    assert_eq!(denied_by(&ctx.eval(&policy(&format!("[{tst_cap}]")), &x402("api.example.com", "1"))), "default_deny");
    let p = policy(&format!(
        r#"[{tst_cap},
            {{"id":"pay","type":"x402","hosts":["api.example.com","*.data.example"],
              "max_per_call_usd":"5","budget_usd":"12","window_secs":3600}}]"#
    ));
    allowed(&ctx.eval(&p, &x402("api.example.com", "5")));
    allowed(&ctx.eval(&p, &x402("eu.data.example", "1")));
    allowed(&ctx.eval(&p, &x402("data.example", "1")));
    let foreign = ctx.eval(&p, &x402("evil.example.com", "1"));
    assert_eq!((denied_by(&foreign), foreign.observed.as_deref()), ("pay", Some("evil.example.com")));
    assert_eq!(denied_by(&ctx.eval(&p, &x402("notdata.example", "1"))), "pay", "a suffix is not a subdomain");
    let big = ctx.eval(&p, &x402("api.example.com", "5.01"));
    assert_eq!((denied_by(&big), big.limit.as_deref()), ("pay", Some("5 USD")));
    // The budget counts earlier x402 payments only: $9 of them, so $3 more fit.
    let spend = |usd: u64, x402: bool| Spend {
        at: 900,
        asset: Asset::Token(addr(TOKEN)),
        amount: U256::from(usd * 1_000_000),
        usd_micro: Some(U256::from(usd * 1_000_000)),
        chain_id: None,
        x402,
    };
    ctx.history = vec![spend(4, true), spend(5, true), spend(20, false)];
    allowed(&ctx.eval(&p, &x402("api.example.com", "3")));
    assert_eq!(denied_by(&ctx.eval(&p, &x402("api.example.com", "3.5"))), "pay");
    // The token's own cap applies as to a transfer.
    let tight = policy(
        r#"[{"id":"tst","type":"max_per_tx","asset":"TST","amount":"2"},
            {"id":"pay","type":"x402","hosts":["api.example.com"]}]"#,
    );
    ctx.history.clear();
    allowed(&ctx.eval(&tight, &x402("api.example.com", "2")));
    assert_eq!(denied_by(&ctx.eval(&tight, &x402("api.example.com", "2.5"))), "tst");
}

#[test]
fn x402_rules_are_checked_when_parsed() {
    for bad in [
        r#"[{"id":"p","type":"x402","hosts":[]}]"#,
        r#"[{"id":"p","type":"x402","hosts":["https://api.example.com"]}]"#,
        r#"[{"id":"p","type":"x402","hosts":["api.example.com:443"]}]"#,
        r#"[{"id":"p","type":"x402","hosts":["a.example"],"budget_usd":"5"}]"#,
        r#"[{"id":"p","type":"x402","hosts":["a.example"],"window_secs":60}]"#,
        r#"[{"id":"p","type":"x402","hosts":["a.example"],"max_per_call_usd":"x"}]"#,
    ] {
        let document = format!(r#"{{"version":1,"rules":{bad}}}"#);
        assert!(Policy::parse(&document).is_err(), "{bad}");
    }
    let ok = r#"{"version":1,"rules":[{"id":"p","type":"x402","hosts":["API.Example.com"],"budget_usd":"5","window_secs":60}]}"#;
    assert!(Policy::parse(ok).is_ok());
}
