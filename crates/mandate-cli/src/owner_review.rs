//! What an owner sees before signing, and the checks that come first.
//!
//! The daemon's answer is untrusted: a compromised daemon would like an owner's
//! signature on a transaction of its own. So the owner's tool
//! - parses the canonical decision ([`OwnerDecision`]) and rebuilds its text locally,
//!   refusing an answer whose text, action, item, transaction fields or calldata
//!   disagree with it (`DECISION_MISMATCH`);
//! - refuses a decision valid for longer than the owner's bound
//!   (`DECISION_EXPIRY_TOO_FAR`);
//! - renders, from the decision's fields and the calldata whose hash the decision
//!   binds, what signing does: recipient, amount in units, the function, the chain,
//!   the fee bounds, the expiry in UTC and from now. Token symbols and decimals come
//!   only from the owner (`--token`), never from the daemon; an unknown token is shown
//!   in base units with its contract address.
//!
//! Everything printed is built from parsed values (addresses, integers) and from ids
//! that [`OwnerDecision::validate`] limits to printable ASCII, so the daemon cannot
//! put terminal control sequences on the owner's screen.

use std::fmt::Write as _;

use alloy_primitives::{keccak256, Address, U256};
use mandate_chain::approval::{ApprovedTx, DecisionAction, OwnerDecision};
use mandate_core::action::Action;
use mandate_core::amount::format_units;
use mandate_core::ErrorCode;
use serde_json::Value;

use crate::output::{CliError, CliResult};

/// The longest an owner signs for unless `--max-expiry-secs` says otherwise: 24 h.
pub(crate) const DEFAULT_MAX_EXPIRY_SECS: u64 = 24 * 3600;

/// A token the owner vouches for: `SYMBOL=ADDRESS:DECIMALS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownToken {
    symbol: String,
    address: Address,
    decimals: u8,
}

/// Parses `--token SYMBOL=ADDRESS:DECIMALS` (e.g. `USDC=0xA0b8…eB48:6`).
pub(crate) fn parse_token(text: &str) -> Result<KnownToken, String> {
    let shape = || format!("{text:?}: expected SYMBOL=0xADDRESS:DECIMALS, e.g. USDC=0xA0b8…:6");
    let (symbol, rest) = text.trim().split_once('=').ok_or_else(shape)?;
    let (address, decimals) = rest.rsplit_once(':').ok_or_else(shape)?;
    let symbol_ok = !symbol.is_empty()
        && symbol.len() <= 16
        && symbol.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !symbol_ok {
        return Err(format!("{symbol:?}: a token symbol is 1 to 16 letters, digits, '.', '-' or '_'"));
    }
    let address = mandate_core::address::parse_address(address).map_err(|e| format!("{address:?}: {e}"))?;
    let decimals: u8 = decimals.parse().map_err(|_| format!("{decimals:?}: decimals are a number from 0 to 77"))?;
    if decimals > 77 {
        return Err(format!("{decimals}: decimals are a number from 0 to 77"));
    }
    Ok(KnownToken { symbol: symbol.to_string(), address, decimals })
}

fn mismatch(message: impl Into<String>) -> CliError {
    CliError::new(ErrorCode::DecisionMismatch, format!("{}; not signing", message.into()))
}

/// The decision in `view[field]`, parsed and checked for shape and for its text
/// (`view[text_field]` must be the text rebuilt here).
fn parsed_decision(view: &Value, field: &str, text_field: &str) -> CliResult<OwnerDecision> {
    let decision = view.get(field).cloned().ok_or_else(|| {
        let status = view.pointer("/transaction/status").and_then(Value::as_str).unwrap_or("unknown");
        CliError::new(ErrorCode::NotPending, format!("the transaction is {status}; there is nothing to decide"))
    })?;
    let decision: OwnerDecision =
        serde_json::from_value(decision).map_err(|e| mismatch(format!("the daemon's decision does not parse: {e}")))?;
    decision.validate().map_err(|e| mismatch(format!("the daemon's decision is malformed: {e}")))?;
    if view.get(text_field).and_then(Value::as_str) != Some(decision.message().as_str()) {
        return Err(mismatch("the daemon's message differs from the text rebuilt from its decision"));
    }
    Ok(decision)
}

fn check_expiry(decision: &OwnerDecision, now: u64, max_expiry_secs: u64) -> CliResult<()> {
    let bound = now.saturating_add(max_expiry_secs);
    if decision.expires_at > bound {
        return Err(CliError::new(
            ErrorCode::DecisionExpiryTooFar,
            format!(
                "the decision would stay valid until {} ({}), beyond your bound of {max_expiry_secs} s \
                 (--max-expiry-secs); not signing",
                utc(decision.expires_at),
                relative(decision.expires_at, now)
            ),
        )
        .with_details(serde_json::json!({"expires_at": decision.expires_at, "max_expires_at": bound})));
    }
    Ok(())
}

fn field_str<'a>(transaction: &'a Value, name: &str) -> CliResult<&'a str> {
    transaction.get(name).and_then(Value::as_str).ok_or_else(|| mismatch(format!("the daemon's view has no {name}")))
}

/// Checks the daemon's owner view of held transaction `id` for the `action`
/// decision; returns the decision and the calldata it binds.
pub(crate) fn check_held(
    view: &Value,
    id: &str,
    action: DecisionAction,
    now: u64,
    max_expiry_secs: u64,
) -> CliResult<(OwnerDecision, Vec<u8>)> {
    let (field, text_field) = match action {
        DecisionAction::Approve => ("approve_decision", "approve_message"),
        _ => ("deny_decision", "deny_message"),
    };
    let decision = parsed_decision(view, field, text_field)?;
    if decision.action != action {
        return Err(mismatch(format!("the daemon offered a {:?} decision when asked for {action:?}", decision.action)));
    }
    if decision.item != id {
        return Err(mismatch(format!("the daemon offered a decision on {} when asked about {id}", decision.item)));
    }
    let tx = decision.tx.as_ref().ok_or_else(|| mismatch("the daemon's decision names no transaction"))?;
    let transaction = view.get("transaction").ok_or_else(|| mismatch("the daemon's view has no transaction"))?;
    let data_hex = field_str(transaction, "data")?;
    let data = hex::decode(data_hex.strip_prefix("0x").unwrap_or(data_hex))
        .map_err(|_| mismatch("the daemon's calldata is not hex"))?;
    if keccak256(&data) != tx.data_hash || data.len() as u64 != tx.data_len {
        return Err(mismatch("the daemon's calldata is not the calldata the decision binds (keccak256 differs)"));
    }
    let same = |name: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(mismatch(format!("the daemon's {name} differs from its decision's")))
        }
    };
    same("transaction id", field_str(transaction, "id")? == decision.item)?;
    same("wallet", field_str(transaction, "wallet_id")? == decision.wallet)?;
    same("recipient (to)", field_str(transaction, "to")?.parse::<Address>().ok() == Some(tx.to))?;
    same("value", U256::from_str_radix(field_str(transaction, "value_wei")?, 10).ok() == Some(tx.value))?;
    same("chain id", transaction.get("chain_id").and_then(Value::as_u64) == Some(tx.chain_id))?;
    same("gas limit", transaction.get("gas_limit").and_then(Value::as_u64) == Some(tx.gas_limit_max))?;
    same(
        "max fee per gas",
        field_str(transaction, "max_fee_per_gas")?.parse::<u128>().ok() == Some(tx.max_fee_per_gas_max),
    )?;
    check_expiry(&decision, now, max_expiry_secs)?;
    Ok((decision, data))
}

/// Checks the daemon's owner view of `wallet`'s freeze; returns the unfreeze decision.
pub(crate) fn check_unfreeze(view: &Value, wallet: &str, now: u64, max_expiry_secs: u64) -> CliResult<OwnerDecision> {
    let decision = parsed_decision(view, "decision", "message")?;
    let frozen_at = view.get("frozen_at").and_then(Value::as_u64).ok_or_else(|| mismatch("no frozen_at"))?;
    if decision.action != DecisionAction::Unfreeze || decision.tx.is_some() {
        return Err(mismatch("the daemon offered something other than an unfreeze"));
    }
    if decision.wallet != wallet {
        return Err(mismatch(format!(
            "the daemon offered an unfreeze of {} when asked about {wallet}",
            decision.wallet
        )));
    }
    if decision.item != format!("freeze:{frozen_at}") {
        return Err(mismatch("the unfreeze names another freeze than the one the daemon reports"));
    }
    check_expiry(&decision, now, max_expiry_secs)?;
    Ok(decision)
}

/// `1.5 ETH (1500000000000000000 wei)`.
fn eth(value: U256) -> String {
    format!("{} ETH ({value} wei)", format_units(value, 18))
}

fn token_amount(token: Address, amount: U256, tokens: &[KnownToken]) -> String {
    if amount == U256::MAX {
        return "UNLIMITED (2^256 - 1)".to_string();
    }
    match tokens.iter().find(|known| known.address == token) {
        Some(known) => format!("{} {} ({amount} base units)", format_units(amount, known.decimals), known.symbol),
        None => format!("{amount} base units of an unknown token (decimals unknown)"),
    }
}

fn token_line(token: Address, tokens: &[KnownToken]) -> String {
    match tokens.iter().find(|known| known.address == token) {
        Some(known) => {
            format!("{} at {} ({} decimals, from your --token)", known.symbol, token.to_checksum(None), known.decimals)
        }
        None => format!(
            "{} — NOT one of your --token entries: symbol and decimals unknown, amount shown in base units",
            token.to_checksum(None)
        ),
    }
}

fn chain_name(chain_id: u64) -> &'static str {
    match chain_id {
        1 => "Ethereum mainnet",
        10 => "OP Mainnet",
        137 => "Polygon PoS",
        8453 => "Base",
        42161 => "Arbitrum One",
        11155111 => "Sepolia testnet",
        31337 => "local development chain (anvil)",
        _ => "chain not in this tool's list",
    }
}

fn what_it_does(tx: &ApprovedTx, data: &[u8], tokens: &[KnownToken]) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let mut push = |key: &str, value: String| lines.push((key.to_string(), value));
    match mandate_core::decode::decode_call(tx.to, tx.value, data, &|_, _| None) {
        Ok(Action::NativeTransfer { to, value }) => {
            push("sends", eth(value));
            push("to", to.to_checksum(None));
        }
        Ok(Action::TokenTransfer { token, from, to, amount }) => {
            let function =
                if from.is_some() { "transferFrom(address,address,uint256)" } else { "transfer(address,uint256)" };
            push("function", format!("ERC-20 {function}"));
            push("token", token_line(token, tokens));
            push("sends", token_amount(token, amount, tokens));
            if let Some(from) = from {
                push("from", from.to_checksum(None));
            }
            push("to", to.to_checksum(None));
        }
        Ok(Action::TokenApprove { token, spender, amount, increase }) => {
            let function = if increase { "increaseAllowance(address,uint256)" } else { "approve(address,uint256)" };
            push("function", format!("ERC-20 {function}"));
            push("token", token_line(token, tokens));
            push("spender", spender.to_checksum(None));
            push(if increase { "raises allowance by" } else { "allowance" }, token_amount(token, amount, tokens));
        }
        Ok(Action::ContractCall { to, value, selector, .. }) => {
            push("calls contract", to.to_checksum(None));
            push("function", format!("selector 0x{} (not decoded: check it yourself)", hex::encode(selector)));
            push("sends", eth(value));
        }
        Ok(_) => push("calls", tx.to.to_checksum(None)),
        Err(error) => {
            push("calls", tx.to.to_checksum(None));
            push("WARNING", format!("the calldata does not decode: {}", error.message));
            push("sends", eth(tx.value));
        }
    }
    if !data.is_empty() {
        push("calldata", format!("{} bytes, keccak256 {:#x}", tx.data_len, tx.data_hash));
    }
    lines
}

fn table(title: &str, lines: &[(String, String)], message: &str) -> String {
    let width = lines.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    let mut out = format!("{title}\n");
    for (key, value) in lines {
        let _ = writeln!(out, "  {key:>width$}: {value}");
    }
    let _ = writeln!(out, "\nThe exact text you sign:");
    for line in message.lines() {
        let _ = writeln!(out, "  | {line}");
    }
    out
}

/// The review of an approve or deny decision on a held transaction.
pub(crate) fn render_held(decision: &OwnerDecision, data: &[u8], tokens: &[KnownToken], now: u64) -> String {
    let mut lines = Vec::new();
    let title = match decision.action {
        DecisionAction::Approve => "APPROVE: this transaction will be signed and sent",
        _ => "DENY: this transaction will never be sent",
    };
    lines.push(("item".to_string(), decision.item.clone()));
    lines.push(("wallet".to_string(), decision.wallet.clone()));
    if let Some(tx) = &decision.tx {
        lines.push(("chain".to_string(), format!("{} ({})", tx.chain_id, chain_name(tx.chain_id))));
        lines.extend(what_it_does(tx, data, tokens));
        let fees = U256::from(tx.gas_limit_max).saturating_mul(U256::from(tx.max_fee_per_gas_max));
        lines.push((
            "fees at most".to_string(),
            format!(
                "{} (gas limit {} x max fee {} gwei)",
                eth(fees),
                tx.gas_limit_max,
                format_units(U256::from(tx.max_fee_per_gas_max), 9)
            ),
        ));
        lines.push(("payload".to_string(), format!("{:#x}", tx.payload_hash())));
    }
    lines.push((
        "expires".to_string(),
        format!("{} ({})", utc(decision.expires_at), relative(decision.expires_at, now)),
    ));
    table(title, &lines, &decision.message())
}

/// The review of an unfreeze.
pub(crate) fn render_unfreeze(decision: &OwnerDecision, view: &Value, now: u64) -> String {
    let mut lines = vec![("wallet".to_string(), decision.wallet.clone())];
    if let Some(frozen_at) = view.get("frozen_at").and_then(Value::as_u64) {
        lines.push(("frozen since".to_string(), format!("{} ({})", utc(frozen_at), relative(frozen_at, now))));
    }
    if let Some(ends) = view.get("cooldown_ends_at").and_then(Value::as_u64) {
        lines.push(("cool-down ends".to_string(), format!("{} ({})", utc(ends), relative(ends, now))));
    }
    lines.push((
        "expires".to_string(),
        format!("{} ({})", utc(decision.expires_at), relative(decision.expires_at, now)),
    ));
    table("UNFREEZE: the wallet may sign again (within its policy)", &lines, &decision.message())
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub(crate) fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm, in unsigned form:
    // shifted to 0000-03-01 so that every quantity stays non-negative).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} days {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `in 59 min 40 s` or `3 min 0 s ago`.
pub(crate) fn relative(at: u64, now: u64) -> String {
    if at >= now {
        format!("in {}", span(at - now))
    } else {
        format!("{} ago", span(now - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

    fn decision(data: &[u8], expires_at: u64) -> OwnerDecision {
        OwnerDecision {
            action: DecisionAction::Approve,
            item: "tx_00112233445566778899".into(),
            wallet: "wal_0123456789abcdef01234567".into(),
            tx: Some(ApprovedTx::new(31337, TOKEN.parse().unwrap(), U256::ZERO, data, 60_000, 4_000_000_000)),
            expires_at,
        }
    }

    fn transfer_calldata(to: Address, amount: u64) -> Vec<u8> {
        let mut data = mandate_core::decode::ERC20_TRANSFER.to_vec();
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(to.as_slice());
        data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
        data
    }

    fn view(decision: &OwnerDecision, data: &[u8]) -> Value {
        let tx = decision.tx.clone().unwrap();
        json!({
            "transaction": {"id": decision.item, "wallet_id": decision.wallet, "status": "pending_approval",
                            "chain_id": tx.chain_id, "to": tx.to.to_checksum(None), "value_wei": tx.value.to_string(),
                            "data": format!("0x{}", hex::encode(data)), "gas_limit": tx.gas_limit_max,
                            "max_fee_per_gas": tx.max_fee_per_gas_max.to_string()},
            "approve_decision": decision, "approve_message": decision.message(),
        })
    }

    #[test]
    fn utc_dates_match_known_instants() {
        // Fixed instants from the POSIX definition of seconds since the epoch.
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(relative(1_000 + 3_580, 1_000), "in 59 min 40 s");
        assert_eq!(relative(1_000, 1_180), "3 min 0 s ago");
    }

    #[test]
    fn tokens_parse_and_render_only_from_the_owner() {
        let usdc = parse_token(&format!("USDC={TOKEN}:6")).unwrap();
        assert_eq!((usdc.symbol.as_str(), usdc.decimals), ("USDC", 6));
        for bad in
            ["USDC", "USDC=0x12:6", &format!("USDC={TOKEN}:78"), &format!("U SD={TOKEN}:6"), &format!("={TOKEN}:6")]
        {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
        let payee: Address = "0x8ba1f109551bD432803012645Ac136ddd64DBA72".parse().unwrap();
        let data = transfer_calldata(payee, 12_500_000);
        let d = decision(&data, 2_000);
        let known = render_held(&d, &data, &[usdc], 1_000);
        assert!(known.contains("12.5 USDC (12500000 base units)"), "{known}");
        assert!(known.contains(&payee.to_checksum(None)) && known.contains("ERC-20 transfer(address,uint256)"));
        let unknown = render_held(&d, &data, &[], 1_000);
        assert!(unknown.contains("12500000 base units of an unknown token") && unknown.contains(TOKEN), "{unknown}");
        assert!(unknown.contains("31337 (local development chain (anvil))") && unknown.contains("in 16 min 40 s"));
    }

    #[test]
    fn an_honest_view_passes_and_every_lie_is_refused() {
        let payee: Address = "0x8ba1f109551bD432803012645Ac136ddd64DBA72".parse().unwrap();
        let data = transfer_calldata(payee, 7);
        let d = decision(&data, 2_000);
        let honest = view(&d, &data);
        let id = d.item.as_str();
        assert_eq!(check_held(&honest, id, DecisionAction::Approve, 1_000, 3_600).unwrap(), (d.clone(), data.clone()));

        let mut lies: Vec<(&str, Value)> = Vec::new();
        let mut v = honest.clone();
        v["approve_message"] = json!(d.message().replace("value_wei: 0", "value_wei: 1"));
        lies.push(("message", v));
        let mut v = honest.clone();
        v["transaction"]["to"] = json!(payee.to_checksum(None));
        lies.push(("recipient", v));
        let mut v = honest.clone();
        v["transaction"]["data"] = json!(format!("0x{}", hex::encode(transfer_calldata(Address::repeat_byte(9), 7))));
        lies.push(("calldata", v));
        let mut v = honest.clone();
        v["transaction"]["value_wei"] = json!("1");
        lies.push(("value", v));
        let mut v = honest.clone();
        v["transaction"]["chain_id"] = json!(1);
        lies.push(("chain", v));
        let other = OwnerDecision { item: "tx_other".into(), ..d.clone() };
        lies.push(("item", view(&other, &data)));
        for (what, lie) in lies {
            let error = check_held(&lie, id, DecisionAction::Approve, 1_000, 3_600).unwrap_err();
            assert_eq!(error.code, ErrorCode::DecisionMismatch, "{what}: {}", error.message);
        }
        // Asked to deny, offered an approval: refused.
        let mut v = honest.clone();
        v["deny_decision"] = v["approve_decision"].clone();
        v["deny_message"] = v["approve_message"].clone();
        let error = check_held(&v, id, DecisionAction::Deny, 1_000, 3_600).unwrap_err();
        assert_eq!(error.code, ErrorCode::DecisionMismatch, "{}", error.message);
        // An expiry beyond the owner's bound.
        let error = check_held(&honest, id, DecisionAction::Approve, 1_000, 999).unwrap_err();
        assert_eq!(error.code, ErrorCode::DecisionExpiryTooFar, "{}", error.message);
        // Nothing to decide.
        let error = check_held(&json!({"transaction": {"status": "confirmed"}}), id, DecisionAction::Approve, 0, 1)
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::NotPending);
    }
}
