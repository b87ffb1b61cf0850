//! Parts of the dashboard's pages: amounts in units, why a transaction stopped or is
//! held, the spend chart (server-rendered SVG), recent decisions, sessions and agents
//! with their revoke forms, webhooks with their deliveries. Every value from the
//! database is escaped here.

use std::fmt::Write as _;

use alloy_primitives::U256;
use mandate_core::amount::format_units;
use mandate_core::policy::Budget;
use mandate_store::{TxRecord, TxStatus};
use serde_json::Value;

use super::{escape, when};
use crate::state::AppState;

/// A base-unit amount of `asset` (`native` or a token address) in its unit: "1.5 ETH",
/// "20 USDC", or the base units and the token's address when its decimals are unknown.
pub(super) fn amount_text(state: &AppState, asset: &str, base: &str) -> String {
    let amount = U256::from_str_radix(base, 10).unwrap_or_default();
    if asset == "native" {
        return format!("{} ETH", format_units(amount, 18));
    }
    let known = asset
        .parse::<alloy_primitives::Address>()
        .ok()
        .and_then(|address| state.store.token(state.chain_id(), &address).ok().flatten());
    match known {
        Some((decimals, symbol)) => format!("{} {symbol}", format_units(amount, decimals)),
        None => format!("{base} base units of token {asset}"),
    }
}

/// Rewrites every "<digits> wei" in a message (a cosigner's refusal, a limit) as ETH:
/// "500063000000000000 wei" reads "0.500063 ETH".
pub(super) fn wei_as_eth(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        let unit_rest = iter.peek().and_then(|next| next.strip_prefix("wei"));
        let is_unit = unit_rest.is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric()));
        let number = (!word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()))
            .then(|| U256::from_str_radix(word, 10).ok())
            .flatten();
        match (number, is_unit, unit_rest) {
            (Some(value), true, Some(rest)) => {
                out.push(format!("{} ETH{rest}", format_units(value, 18)));
                iter.next();
            }
            _ => out.push((*word).to_string()),
        }
    }
    out.join(" ")
}

/// A window's length in words: "90 s", "30 min", "24 h", "7 days".
pub(super) fn window_text(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7_199 => format!("{} min", secs / 60),
        7_200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// A budget's amount in its unit ("count" is a number of actions).
fn budget_amount(budget: &Budget, value: U256) -> String {
    let number = format_units(value, budget.decimals);
    match budget.unit.as_str() {
        "count" => format!("{number} actions"),
        "native" => format!("{number} ETH"),
        "usd" => format!("{number} USD"),
        unit => format!("{number} {unit}"),
    }
}

const CHART_WIDTH: u64 = 600;
const ROW: u64 = 58;

/// The share of `limit` that `used` is, in pixels of the chart's width (full when over).
fn bar_width(used: U256, limit: U256) -> u64 {
    if limit.is_zero() {
        return if used.is_zero() { 0 } else { CHART_WIDTH };
    }
    let scaled = used.saturating_mul(U256::from(CHART_WIDTH)) / limit;
    u64::try_from(scaled).unwrap_or(CHART_WIDTH).min(CHART_WIDTH)
}

/// Spend against every rolling cap of the wallet's policy: one bar per window (grey:
/// the limit; filled: used, red past 80 %), then a table with when the oldest counted
/// spend leaves the window. Inline SVG: no script, nothing fetched.
pub(super) fn spend_chart(budgets: Option<&[Budget]>) -> String {
    let Some(budgets) = budgets else {
        return "<h2>Spend against caps</h2><p>No policy: everything is denied.</p>".into();
    };
    if budgets.is_empty() {
        return "<h2>Spend against caps</h2><p id=\"spend-none\">The policy has no rolling cap or velocity rule.</p>"
            .into();
    }
    let height = ROW * budgets.len() as u64;
    let mut svg = format!(
        "<svg id=\"spend-chart\" role=\"img\" aria-label=\"Spend against each rolling cap\" width=\"{w}\" \
         height=\"{height}\" viewBox=\"0 0 {w} {height}\" font-family=\"system-ui,sans-serif\">",
        w = CHART_WIDTH + 20,
    );
    let mut table = String::from(
        "<table id=\"budgets\"><tr><th>Rule</th><th>Window</th><th>Used</th><th>Limit</th><th>Left</th>\
         <th>Frees up</th></tr>",
    );
    for (index, budget) in budgets.iter().enumerate() {
        let top = ROW * index as u64;
        let width = bar_width(budget.used, budget.limit);
        let colour = if width * 10 >= CHART_WIDTH * 8 { "#b00020" } else { "#1b7a35" };
        let (used, limit, left) = (
            budget_amount(budget, budget.used),
            budget_amount(budget, budget.limit),
            budget_amount(budget, budget.remaining()),
        );
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{t}\" font-size=\"13\">{rule} (per {window})</text>\
             <rect x=\"0\" y=\"{b}\" width=\"{CHART_WIDTH}\" height=\"18\" fill=\"#e6e6e6\"></rect>\
             <rect class=\"used\" data-rule=\"{rule}\" x=\"0\" y=\"{b}\" width=\"{width}\" height=\"18\" fill=\"{colour}\"></rect>\
             <text x=\"0\" y=\"{u}\" font-size=\"12\">{used} of {limit} used; {left} left</text>",
            t = top + 14,
            b = top + 20,
            u = top + 52,
            rule = escape(&budget.rule_id),
            window = window_text(budget.window_secs),
            used = escape(&used),
            limit = escape(&limit),
            left = escape(&left),
        );
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&budget.rule_id),
            window_text(budget.window_secs),
            escape(&used),
            escape(&limit),
            escape(&left),
            budget.frees_at.map(when).unwrap_or_else(|| "nothing counted".into()),
        );
    }
    svg.push_str("</svg>");
    table.push_str("</table>");
    format!("<h2>Spend against caps</h2>{svg}{table}")
}

/// The wallet's last policy decisions (allowed, held and denied, newest first) from
/// the audit trail's `policy.decision` records.
pub(super) fn recent_decisions(state: &AppState, wallet: &str, records: &[Value]) -> String {
    let mut body = String::from(
        "<h2>Recent decisions</h2><table id=\"decisions\"><tr><th>Time</th><th>Action</th><th>Verdict</th>\
         <th>Tier</th><th>Rule</th><th>Why</th></tr>",
    );
    let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_string();
    let mut shown = 0;
    for record in records.iter().rev() {
        if shown == 20 {
            break;
        }
        if record.get("event").and_then(Value::as_str) != Some("policy.decision")
            || record.get("wallet").and_then(Value::as_str) != Some(wallet)
        {
            continue;
        }
        let Some(decision) = record.get("decision") else { continue };
        let details = record.get("details");
        let field = |name: &str| text(details.and_then(|d| d.get(name)));
        let action = match field("kind").as_str() {
            "" => "a signature".to_string(),
            kind => format!(
                "{} {} to {}",
                kind.replace('_', " "),
                amount_text(state, &field("asset"), &field("amount")),
                field("to")
            ),
        };
        let verdict = text(decision.get("verdict"));
        let tier_rules: Vec<&str> = decision
            .get("tier_rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let rule = if verdict != "deny" && !tier_rules.is_empty() {
            tier_rules.join(", ")
        } else {
            text(decision.get("rule_id"))
        };
        let _ = write!(
            body,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if verdict == "deny" { "denied" } else { "allowed" },
            record.get("ts").and_then(Value::as_u64).map(when).unwrap_or_default(),
            escape(&action),
            escape(&verdict),
            escape(&text(decision.get("tier"))),
            escape(&rule),
            escape(&why_words(decision)),
        );
        shown += 1;
    }
    if shown == 0 {
        body.push_str("<tr><td colspan=\"6\">No decision in the recent audit trail.</td></tr>");
    }
    body.push_str("</table>");
    body
}

/// A decision's reason in words: an allowed action in a held tier says what the tier
/// asks rather than "no rule was violated"; amounts in ETH.
pub(super) fn why_words(decision: &Value) -> String {
    let text = |name: &str| decision.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let tier = text("tier");
    if text("verdict") == "allow" && !tier.is_empty() && tier != "instant" {
        return tier_words(&tier).to_string();
    }
    wei_as_eth(&text("reason"))
}

/// What a tier asks of a human, in words.
pub(super) fn tier_words(tier: &str) -> &'static str {
    match tier {
        "approval" => "it waits for the owners' signed approval",
        "delay" => "it waits out a delay during which it can be cancelled",
        "notify" => "it is sent and the owners are notified",
        _ => "it is sent at once",
    }
}

/// The "why" rows of a transaction's page: the recorded error of a transaction that
/// failed (a cosigner's refusal, a revert, a broadcast error), the tier and the rules
/// that raised it for a held one, and the policy's reason otherwise.
pub(super) fn why_rows(state: &AppState, tx: &TxRecord) -> String {
    let text = |name: &str| tx.decision.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let mut rows = String::new();
    if let Some(error) = tx.error.as_deref().filter(|e| !e.trim().is_empty()) {
        let label = match tx.status {
            TxStatus::Failed => "Why it failed",
            TxStatus::Denied | TxStatus::Cancelled | TxStatus::Expired => "Why it stopped",
            _ => "Last error",
        };
        let _ = write!(
            rows,
            "<tr><th>{label}</th><td id=\"why\" class=\"error\" title=\"{}\">{}</td></tr>",
            escape(error),
            escape(&wei_as_eth(error))
        );
    }
    let held = matches!(tx.status, TxStatus::PendingApproval | TxStatus::Delayed | TxStatus::Approved);
    let tier = text("tier");
    let rules: Vec<String> = tx
        .decision
        .get("tier_rules")
        .and_then(Value::as_array)
        .map(|rules| rules.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if held || (!rules.is_empty() && tier != "instant") {
        let document: Value = state
            .store
            .policy(&tx.wallet_id)
            .ok()
            .flatten()
            .and_then(|stored| serde_json::from_str(&stored.document).ok())
            .unwrap_or(Value::Null);
        let described: Vec<String> = rules
            .iter()
            .map(|id| {
                let rule = document
                    .get("rules")
                    .and_then(Value::as_array)
                    .and_then(|all| all.iter().find(|r| r.get("id").and_then(Value::as_str) == Some(id)));
                match rule {
                    Some(rule) => format!("<code>{}</code>: <code>{}</code>", escape(id), escape(&rule.to_string())),
                    None => format!("<code>{}</code> (no longer in the current policy)", escape(id)),
                }
            })
            .collect();
        let raised = if described.is_empty() { String::new() } else { format!("; set by {}", described.join(", ")) };
        let id = if rows.is_empty() { " id=\"why\"" } else { "" };
        let _ = write!(
            rows,
            "<tr><th>Why it is held</th><td{id}>Tier <strong id=\"tier\">{}</strong>: {}{raised}</td></tr>",
            escape(&tier),
            tier_words(&tier),
        );
    } else if rows.is_empty() {
        let id = " id=\"why\"";
        let _ = write!(
            rows,
            "<tr><th>Policy decision</th><td{id}>{} (rule <code>{}</code>)</td></tr>",
            escape(&text("reason")),
            escape(&text("rule_id")),
        );
    }
    rows
}

/// The wallet's agent sessions and registered agents, each active one with a revoke
/// form (the dashboard session's CSRF token).
pub(super) fn sessions_and_agents(state: &AppState, wallet: &str, csrf: &str, now: u64) -> String {
    let mut body = String::from(
        "<h2>Agent sessions</h2><table id=\"sessions\"><tr><th>Session</th><th>Scopes</th><th>Created</th>\
         <th>Expires</th><th></th></tr>",
    );
    let sessions = state.store.sessions(Some(wallet)).unwrap_or_default();
    if sessions.is_empty() {
        body.push_str("<tr><td colspan=\"5\">None.</td></tr>");
    }
    for session in &sessions {
        let state_cell = match session.revoked_at {
            Some(at) => format!("revoked {}", when(at)),
            None if session.expires_at <= now => "expired".into(),
            None => revoke_form(&format!("/dashboard/sessions/{}/revoke", session.id), csrf, "Revoke session"),
        };
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{state_cell}</td></tr>",
            escape(&session.id),
            escape(&session.scopes.join(", ")),
            when(session.created_at),
            when(session.expires_at),
        );
    }
    body.push_str(
        "</table><h2>Agents</h2><table id=\"agents\"><tr><th>Name</th><th>Address</th><th>Scopes</th>\
         <th>Valid until</th><th>Last used</th><th></th></tr>",
    );
    let agents = state.store.agents(wallet).unwrap_or_default();
    if agents.is_empty() {
        body.push_str("<tr><td colspan=\"6\">None.</td></tr>");
    }
    for agent in &agents {
        let state_cell = match agent.revoked_at {
            Some(at) => format!("revoked {}", when(at)),
            None if agent.valid_until <= now => "expired".into(),
            None => revoke_form(&format!("/dashboard/agents/{}/revoke", agent.address), csrf, "Revoke agent"),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{state_cell}</td></tr>",
            escape(&agent.name),
            escape(&agent.address),
            escape(&agent.scopes.join(", ")),
            when(agent.valid_until),
            agent.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        );
    }
    body.push_str("</table>");
    body
}

fn revoke_form(action: &str, csrf: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"revoke\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">{label}</button></form>",
        escape(action),
        escape(csrf),
    )
}

/// Where a webhook posts, without its path or query (which often hold a token).
fn webhook_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

/// Every webhook with its last deliveries.
pub(super) fn webhooks(state: &AppState) -> String {
    let hooks = state.store.webhooks().unwrap_or_default();
    if hooks.is_empty() {
        return "<p id=\"no-webhooks\">No webhook is registered (<code>mandate webhook add</code>).</p>".into();
    }
    let mut body = String::new();
    for hook in &hooks {
        let _ = write!(
            body,
            "<section class=\"webhook\"><h2><code>{}</code></h2><p>Posts to <code>{}</code> (path hidden) on: {}; \
             registered {}.</p><table class=\"deliveries\"><tr><th>Event</th><th>Created</th><th>Status</th>\
             <th>Attempts</th><th>Last answer</th><th>Delivered</th></tr>",
            escape(&hook.id),
            escape(&webhook_origin(&hook.url)),
            escape(&hook.events.join(", ")),
            when(hook.created_at),
        );
        let deliveries = state.store.deliveries(&hook.id, 20).unwrap_or_default();
        if deliveries.is_empty() {
            body.push_str("<tr><td colspan=\"6\">No delivery yet.</td></tr>");
        }
        for delivery in &deliveries {
            // The recorded error carries no URL (the sender strips it); a status alone reads "HTTP 200".
            let answer = match (&delivery.last_error, &delivery.last_status) {
                (Some(error), _) => error.clone(),
                (None, Some(status)) => format!("HTTP {status}"),
                (None, None) => String::new(),
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"delivery-status\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&delivery.event),
                when(delivery.created_at),
                escape(&delivery.status),
                delivery.attempts,
                escape(&answer),
                delivery.delivered_at.map(when).unwrap_or_default(),
            );
        }
        body.push_str("</table></section>");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_and_saturate() {
        assert_eq!(bar_width(U256::ZERO, U256::from(10)), 0);
        assert_eq!(bar_width(U256::from(5), U256::from(10)), CHART_WIDTH / 2);
        assert_eq!(bar_width(U256::from(50), U256::from(10)), CHART_WIDTH);
        assert_eq!(bar_width(U256::MAX, U256::from(3)), CHART_WIDTH);
        assert_eq!(bar_width(U256::from(1), U256::ZERO), CHART_WIDTH);
    }

    #[test]
    fn wei_in_messages_reads_as_eth() {
        assert_eq!(
            wei_as_eth("cost 500063000000000000 wei is above 200000000000000000 wei (LIMIT)"),
            "cost 0.500063 ETH is above 0.2 ETH (LIMIT)"
        );
        assert_eq!(wei_as_eth("max 1000000000000000000 wei, then"), "max 1 ETH, then");
        assert_eq!(wei_as_eth("5 weird things, 12 wei"), "5 weird things, 0.000000000000000012 ETH");
        assert_eq!(wei_as_eth("no amounts"), "no amounts");
    }

    #[test]
    fn windows_read_as_words() {
        assert_eq!(window_text(60), "60 s");
        assert_eq!(window_text(3600), "60 min");
        assert_eq!(window_text(86_400), "24 h");
        assert_eq!(window_text(7 * 86_400), "7 days");
    }

    #[test]
    fn webhook_urls_lose_their_path_and_credentials() {
        assert_eq!(webhook_origin("https://hooks.example/T000/B000/secret?x=1"), "https://hooks.example/…");
        assert_eq!(webhook_origin("https://user:pw@hooks.example:8443/x"), "https://hooks.example:8443/…");
    }

    #[test]
    fn a_budget_chart_escapes_rule_ids() {
        let budget = Budget {
            rule_id: "<b>daily</b>".into(),
            unit: "native".into(),
            decimals: 18,
            window_secs: 86_400,
            limit: U256::from(10u64).pow(U256::from(19u64)),
            used: U256::from(15u64) * U256::from(10u64).pow(U256::from(17u64)),
            frees_at: None,
        };
        let html = spend_chart(Some(&[budget]));
        assert!(html.contains("&lt;b&gt;daily&lt;/b&gt;") && !html.contains("<b>"), "{html}");
        assert!(html.contains("1.5 ETH of 10 ETH used; 8.5 ETH left"), "{html}");
        assert!(html.contains("width=\"90\""), "{html}");
    }
}
