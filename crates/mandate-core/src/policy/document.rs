//! Parsing and validation of policy documents. Every error names the JSON path.

use std::collections::{BTreeMap, BTreeSet};

use alloy_dyn_abi::DynSolType;
use alloy_primitives::{Address, I256, U256};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::*;
use crate::amount::{parse_base_units, parse_units};

fn err(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { path: path.into(), message: message.into() }
}

type Object = Map<String, Value>;

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Object, PolicyError> {
    value.as_object().ok_or_else(|| err(path, "expected an object"))
}

fn only_fields(map: &Object, path: &str, allowed: &[&str]) -> Result<(), PolicyError> {
    match map.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(err(format!("{path}.{key}"), "unknown field")),
        None => Ok(()),
    }
}

fn u64_field(map: &Object, path: &str, key: &str) -> Result<u64, PolicyError> {
    let value = map.get(key).ok_or_else(|| err(format!("{path}.{key}"), "required"))?;
    match value.as_u64() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(err(format!("{path}.{key}"), "expected a positive integer")),
    }
}

fn window_field(map: &Object, path: &str) -> Result<u64, PolicyError> {
    let window = u64_field(map, path, "window_secs")?;
    if window > MAX_WINDOW_SECS {
        return Err(err(format!("{path}.window_secs"), format!("at most {MAX_WINDOW_SECS} seconds (ten years)")));
    }
    Ok(window)
}

fn str_field<'a>(map: &'a Object, path: &str, key: &str) -> Result<Option<&'a str>, PolicyError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(err(format!("{path}.{key}"), "expected a string")),
    }
}

fn bool_field(map: &Object, path: &str, key: &str) -> Result<bool, PolicyError> {
    match map.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(format!("{path}.{key}"), "expected true or false")),
    }
}

fn array<'a>(map: &'a Object, path: &str, key: &str) -> Result<&'a Vec<Value>, PolicyError> {
    map.get(key).and_then(Value::as_array).ok_or_else(|| err(format!("{path}.{key}"), "expected an array"))
}

fn address_at(value: &Value, path: &str) -> Result<Address, PolicyError> {
    let text = value.as_str().ok_or_else(|| err(path, "expected an address string"))?;
    crate::address::parse_address(text).map_err(|e| err(path, e.to_string()))
}

fn addresses(map: &Object, path: &str, key: &str) -> Result<BTreeSet<Address>, PolicyError> {
    array(map, path, key)?.iter().enumerate().map(|(i, item)| address_at(item, &format!("{path}.{key}[{i}]"))).collect()
}

/// Parsing state shared by the rules: the declared tokens.
struct Parser {
    tokens: Vec<TokenSpec>,
}

impl Parser {
    /// Resolves `native`, a declared symbol or a declared token address.
    fn asset(&self, text: &str, path: &str) -> Result<(Asset, u8), PolicyError> {
        if text == "native" {
            return Ok((Asset::Native, 18));
        }
        find_token(&self.tokens, text).map(|t| (Asset::Token(t.address), t.decimals)).ok_or_else(|| {
            err(path, format!("unknown asset {text:?}: use \"native\" or a symbol declared in $.tokens"))
        })
    }

    /// A token reference for allowlists: a declared symbol or any address.
    fn token_ref(&self, value: &Value, path: &str) -> Result<Address, PolicyError> {
        let text = value.as_str().ok_or_else(|| err(path, "expected a token symbol or address"))?;
        if let Some(token) = self.tokens.iter().find(|t| t.symbol == text) {
            return Ok(token.address);
        }
        if text.starts_with("0x") {
            return crate::address::parse_address(text).map_err(|e| err(path, e.to_string()));
        }
        Err(err(path, format!("unknown token {text:?}: declare it in $.tokens or give its address")))
    }

    /// `asset` (default native) plus `amount` (whole units) or `amount_base`
    /// (`amount_wei` is accepted for native), or `usd` for USD rules.
    fn measured(&self, map: &Object, path: &str, usd: bool) -> Result<(Basis, U256), PolicyError> {
        if usd {
            let text = str_field(map, path, "usd")?.ok_or_else(|| err(format!("{path}.usd"), "required"))?;
            let limit = parse_units(text, USD_DECIMALS).map_err(|e| err(format!("{path}.usd"), e.to_string()))?;
            return Ok((Basis::Usd, limit));
        }
        let (asset, decimals) = match str_field(map, path, "asset")? {
            Some(text) => self.asset(text, &format!("{path}.asset"))?,
            None => (Asset::Native, 18),
        };
        let base_key = if map.contains_key("amount_wei") { "amount_wei" } else { "amount_base" };
        if base_key == "amount_wei" && asset != Asset::Native {
            return Err(err(format!("{path}.amount_wei"), "amount_wei is for the native asset; use amount_base"));
        }
        let limit = match (map.get("amount"), map.get(base_key)) {
            (Some(_), Some(_)) => return Err(err(path, format!("give amount or {base_key}, not both"))),
            (Some(Value::String(text)), None) => {
                parse_units(text, decimals).map_err(|e| err(format!("{path}.amount"), e.to_string()))?
            }
            (None, Some(Value::String(text))) => {
                parse_base_units(text).map_err(|e| err(format!("{path}.{base_key}"), e.to_string()))?
            }
            (Some(_), None) => return Err(err(format!("{path}.amount"), "expected a decimal string such as \"0.5\"")),
            (None, Some(_)) => return Err(err(format!("{path}.{base_key}"), "expected a decimal string")),
            (None, None) => return Err(err(format!("{path}.amount"), format!("required (or {base_key})"))),
        };
        Ok((Basis::Asset(asset), limit))
    }

    fn tiers(&self, map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
        let (basis, decimals) = match str_field(map, path, "basis")? {
            Some("usd") => (Basis::Usd, USD_DECIMALS),
            Some(text) => {
                let (asset, decimals) = self.asset(text, &format!("{path}.basis"))?;
                (Basis::Asset(asset), decimals)
            }
            None => (Basis::Asset(Asset::Native), 18),
        };
        let mut thresholds = Vec::new();
        for (key, tier) in
            [("notify_above", Tier::Notify), ("delay_above", Tier::Delay), ("approval_above", Tier::Approval)]
        {
            if let Some(text) = str_field(map, path, key)? {
                let amount = parse_units(text, decimals).map_err(|e| err(format!("{path}.{key}"), e.to_string()))?;
                thresholds.push((amount, tier));
            }
        }
        if thresholds.is_empty() {
            return Err(err(path, "give at least one of notify_above, delay_above, approval_above"));
        }
        if thresholds.windows(2).any(|pair| matches!(pair, [a, b] if a.0 > b.0)) {
            return Err(err(path, "thresholds must not decrease: notify_above ≤ delay_above ≤ approval_above"));
        }
        let delay_secs = match map.get("delay_secs") {
            Some(_) => window_field_named(map, path, "delay_secs")?,
            None => 3600,
        };
        let window_secs = match map.get("window_secs") {
            Some(_) => Some(window_field_named(map, path, "window_secs")?),
            None => None,
        };
        Ok(RuleKind::Tiers { basis, thresholds, delay_secs, window_secs })
    }

    fn allow_contracts(&self, map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
        let mut contracts: BTreeMap<Address, BTreeMap<[u8; 4], AllowedFunction>> = BTreeMap::new();
        for (i, entry) in array(map, path, "contracts")?.iter().enumerate() {
            let at = format!("{path}.contracts[{i}]");
            let entry = object(entry, &at)?;
            only_fields(entry, &at, &["address", "functions"])?;
            let address = address_at(entry.get("address").unwrap_or(&Value::Null), &format!("{at}.address"))?;
            let functions = contracts.entry(address).or_default();
            for (j, function) in array(entry, &at, "functions")?.iter().enumerate() {
                let at = format!("{at}.functions[{j}]");
                let function = object(function, &at)?;
                only_fields(function, &at, &["signature", "conditions"])?;
                let signature = str_field(function, &at, "signature")?
                    .ok_or_else(|| err(format!("{at}.signature"), "required, e.g. \"swap(address,uint256)\""))?;
                let parsed =
                    crate::decode::parse_function(signature).map_err(|e| err(format!("{at}.signature"), e.message))?;
                let conditions = match function.get("conditions") {
                    None => Vec::new(),
                    Some(_) => array(function, &at, "conditions")?
                        .iter()
                        .enumerate()
                        .map(|(k, c)| condition(&parsed, c, &format!("{at}.conditions[{k}]")))
                        .collect::<Result<_, _>>()?,
                };
                if functions.insert(parsed.selector().0, AllowedFunction { function: parsed, conditions }).is_some() {
                    return Err(err(format!("{at}.signature"), "this function is listed twice for the contract"));
                }
            }
        }
        Ok(RuleKind::AllowContracts { contracts })
    }

    fn erc20_approve(&self, map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
        let spenders = addresses(map, path, "spenders")?;
        let allow_unlimited = bool_field(map, path, "allow_unlimited")?;
        let (token, decimals) = match str_field(map, path, "token")? {
            Some(text) => {
                let (asset, decimals) = self.asset(text, &format!("{path}.token"))?;
                match asset {
                    Asset::Token(address) => (Some(address), Some(decimals)),
                    Asset::Native => return Err(err(format!("{path}.token"), "approvals are for tokens")),
                }
            }
            None => (None, None),
        };
        let max_amount = match (map.get("amount"), map.get("amount_base"), decimals) {
            (Some(_), Some(_), _) => return Err(err(path, "give amount or amount_base, not both")),
            (Some(_), None, None) => {
                return Err(err(format!("{path}.amount"), "needs \"token\" (for its decimals); or use amount_base"))
            }
            (Some(Value::String(text)), None, Some(decimals)) => {
                Some(parse_units(text, decimals).map_err(|e| err(format!("{path}.amount"), e.to_string()))?)
            }
            (None, Some(Value::String(text)), _) => {
                Some(parse_base_units(text).map_err(|e| err(format!("{path}.amount_base"), e.to_string()))?)
            }
            (Some(_), None, Some(_)) => return Err(err(format!("{path}.amount"), "expected a decimal string")),
            (None, Some(_), _) => return Err(err(format!("{path}.amount_base"), "expected a decimal string")),
            (None, None, _) if allow_unlimited => None,
            (None, None, _) => {
                return Err(err(
                    format!("{path}.amount"),
                    "required unless allow_unlimited is true (a cap on approvals)",
                ))
            }
        };
        Ok(RuleKind::Erc20Approve { token, spenders, max_amount, allow_unlimited })
    }
}

fn window_field_named(map: &Object, path: &str, key: &str) -> Result<u64, PolicyError> {
    let value = u64_field(map, path, key)?;
    if value > MAX_WINDOW_SECS {
        return Err(err(format!("{path}.{key}"), format!("at most {MAX_WINDOW_SECS} seconds (ten years)")));
    }
    Ok(value)
}

/// Parses one operand for an argument of ABI type `ty`.
fn arg_value(ty: &DynSolType, value: &Value, path: &str) -> Result<ArgValue, PolicyError> {
    let text = match value {
        Value::String(text) => text.as_str(),
        Value::Bool(b) if matches!(ty, DynSolType::Bool) => return Ok(ArgValue::Bool(*b)),
        _ => return Err(err(path, format!("expected a string for a {ty} argument"))),
    };
    let bad = |e: String| err(path, format!("not a valid {ty}: {e}"));
    Ok(match ty {
        DynSolType::Address => ArgValue::Address(crate::address::parse_address(text).map_err(|e| bad(e.to_string()))?),
        DynSolType::Uint(_) => ArgValue::Uint(parse_base_units(text).map_err(|e| bad(e.to_string()))?),
        DynSolType::Int(_) => ArgValue::Int(text.parse::<I256>().map_err(|e| bad(e.to_string()))?),
        DynSolType::Bool => match text {
            "true" => ArgValue::Bool(true),
            "false" => ArgValue::Bool(false),
            _ => return Err(bad("expected true or false".into())),
        },
        DynSolType::String => ArgValue::String(text.to_string()),
        DynSolType::Bytes | DynSolType::FixedBytes(_) => {
            let bytes = text
                .strip_prefix("0x")
                .and_then(|hex_text| hex::decode(hex_text).ok())
                .ok_or_else(|| bad("expected 0x-prefixed hex".into()))?;
            if let DynSolType::FixedBytes(n) = ty {
                if bytes.len() != *n {
                    return Err(bad(format!("expected {n} bytes")));
                }
            }
            ArgValue::Bytes(bytes)
        }
        _ => return Err(err(path, format!("conditions on {ty} arguments are not supported"))),
    })
}

fn condition(function: &crate::decode::Function, value: &Value, path: &str) -> Result<ArgCondition, PolicyError> {
    let map = object(value, path)?;
    let op = str_field(map, path, "op")?.ok_or_else(|| err(format!("{path}.op"), "required: eq, in, lte or gte"))?;
    only_fields(map, path, &["arg", "op", if op == "in" { "values" } else { "value" }])?;
    let index = match map.get("arg") {
        Some(Value::Number(n)) => {
            n.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|n| *n < function.inputs.len()).ok_or_else(
                || err(format!("{path}.arg"), format!("the function has {} arguments", function.inputs.len())),
            )?
        }
        Some(Value::String(name)) => function
            .inputs
            .iter()
            .position(|param| !param.name.is_empty() && param.name == *name)
            .ok_or_else(|| err(format!("{path}.arg"), format!("no argument named {name:?}")))?,
        _ => return Err(err(format!("{path}.arg"), "expected an argument index or name")),
    };
    let param = function.inputs.get(index).ok_or_else(|| err(format!("{path}.arg"), "no such argument"))?;
    let ty: DynSolType =
        param.ty.parse().map_err(|e| err(format!("{path}.arg"), format!("unsupported type {}: {e}", param.ty)))?;
    let operand = |key: &str| {
        let value = map.get(key).ok_or_else(|| err(format!("{path}.{key}"), "required"))?;
        arg_value(&ty, value, &format!("{path}.{key}"))
    };
    let op = match op {
        "eq" => ConditionOp::Eq(operand("value")?),
        "lte" | "gte" => {
            if !matches!(ty, DynSolType::Uint(_) | DynSolType::Int(_)) {
                return Err(err(format!("{path}.op"), format!("{op} compares integers; the argument is {ty}")));
            }
            let value = operand("value")?;
            if op == "lte" {
                ConditionOp::Lte(value)
            } else {
                ConditionOp::Gte(value)
            }
        }
        "in" => {
            let values = array(map, path, "values")?;
            ConditionOp::In(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| arg_value(&ty, v, &format!("{path}.values[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        other => return Err(err(format!("{path}.op"), format!("unknown operator {other:?}: eq, in, lte or gte"))),
    };
    Ok(ArgCondition { index, op })
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn minute_of_day(text: &str, path: &str) -> Result<u16, PolicyError> {
    let bad = || err(path, "expected HH:MM (00:00 to 24:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn time_window(map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
    let zone_name =
        str_field(map, path, "timezone")?.ok_or_else(|| err(format!("{path}.timezone"), "required, e.g. \"UTC\""))?;
    let zone = jiff::tz::TimeZone::get(zone_name)
        .map_err(|_| err(format!("{path}.timezone"), format!("unknown IANA time zone {zone_name:?}")))?;
    let mut days = [true; 7];
    if map.contains_key("days") {
        days = [false; 7];
        for (i, day) in array(map, path, "days")?.iter().enumerate() {
            let at = format!("{path}.days[{i}]");
            let position = day
                .as_str()
                .and_then(|d| WEEKDAYS.iter().position(|w| *w == d))
                .ok_or_else(|| err(&at, "expected one of mon, tue, wed, thu, fri, sat, sun"))?;
            if let Some(slot) = days.get_mut(position) {
                *slot = true;
            }
        }
    }
    let start_minute = match str_field(map, path, "start")? {
        Some(text) => minute_of_day(text, &format!("{path}.start"))?,
        None => 0,
    };
    let end_minute = match str_field(map, path, "end")? {
        Some(text) => minute_of_day(text, &format!("{path}.end"))?,
        None => 24 * 60,
    };
    if start_minute == end_minute {
        return Err(err(format!("{path}.end"), "start and end are equal: the window would be empty"));
    }
    Ok(RuleKind::TimeWindow(Box::new(TimeWindow {
        zone_name: zone_name.to_string(),
        zone,
        days,
        start_minute,
        end_minute,
    })))
}

fn typed_data(map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
    let mut domains = Vec::new();
    for (i, entry) in array(map, path, "domains")?.iter().enumerate() {
        let at = format!("{path}.domains[{i}]");
        let entry = object(entry, &at)?;
        only_fields(entry, &at, &["chain_id", "verifying_contract", "name", "primary_types"])?;
        let chain_id = match entry.get("chain_id") {
            None => None,
            Some(_) => Some(u64_field(entry, &at, "chain_id")?),
        };
        let verifying_contract = match entry.get("verifying_contract") {
            None => None,
            Some(value) => Some(address_at(value, &format!("{at}.verifying_contract"))?),
        };
        let name = str_field(entry, &at, "name")?.map(str::to_string);
        let mut primary_types = BTreeSet::new();
        if entry.contains_key("primary_types") {
            for (j, ty) in array(entry, &at, "primary_types")?.iter().enumerate() {
                let ty = ty.as_str().filter(|t| !t.is_empty()).ok_or_else(|| {
                    err(format!("{at}.primary_types[{j}]"), "expected a type name such as \"Permit\"")
                })?;
                primary_types.insert(ty.to_string());
            }
        }
        domains.push(TypedDataDomain { chain_id, verifying_contract, name, primary_types });
    }
    Ok(RuleKind::TypedData { domains })
}

fn x402(map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
    let mut hosts = Vec::new();
    for (i, host) in array(map, path, "hosts")?.iter().enumerate() {
        let at = format!("{path}.hosts[{i}]");
        let host = host.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        let plain = !bare.is_empty()
            && bare.len() <= 253
            && bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !plain {
            return Err(err(
                at,
                "expected a host name such as \"api.example.com\" or \"*.example.com\" (no scheme or port)",
            ));
        }
        hosts.push(host);
    }
    if hosts.is_empty() {
        return Err(err(format!("{path}.hosts"), "name at least one host"));
    }
    let usd = |field: &str| -> Result<Option<U256>, PolicyError> {
        match str_field(map, path, field)? {
            None => Ok(None),
            Some(text) => {
                parse_units(text, USD_DECIMALS).map(Some).map_err(|e| err(format!("{path}.{field}"), e.to_string()))
            }
        }
    };
    let (max_per_call_usd, budget_usd) = (usd("max_per_call_usd")?, usd("budget_usd")?);
    let window_secs = match (budget_usd, map.contains_key("window_secs")) {
        (Some(_), _) => window_field(map, path)?,
        (None, false) => 0,
        (None, true) => return Err(err(format!("{path}.window_secs"), "only with budget_usd")),
    };
    Ok(RuleKind::X402 { hosts, max_per_call_usd, budget_usd, window_secs })
}

fn personal_message(map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
    let allow = match str_field(map, path, "mode")? {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(err(format!("{path}.mode"), "expected \"allow\" or \"deny\"")),
    };
    let pattern = match str_field(map, path, "pattern")? {
        Some(text) if text.len() <= 1024 => Some(Pattern(
            regex_lite::RegexBuilder::new(text)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| err(format!("{path}.pattern"), format!("invalid regular expression: {e}")))?,
        )),
        Some(_) => return Err(err(format!("{path}.pattern"), "at most 1024 characters")),
        None if allow => None,
        None => return Err(err(format!("{path}.pattern"), "required in deny mode")),
    };
    Ok(RuleKind::PersonalMessage { allow, pattern })
}

fn gas_cap(map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
    let max_gas = match map.get("max_gas") {
        None => None,
        Some(_) => Some(u64_field(map, path, "max_gas")?),
    };
    let max_fee_per_gas = match str_field(map, path, "max_fee_per_gas_gwei")? {
        None => None,
        Some(text) => {
            let at = format!("{path}.max_fee_per_gas_gwei");
            let wei = parse_units(text, 9).map_err(|e| err(&at, e.to_string()))?;
            Some(u128::try_from(wei).map_err(|_| err(&at, "too large"))?)
        }
    };
    if max_gas.is_none() && max_fee_per_gas.is_none() {
        return Err(err(path, "give max_gas, max_fee_per_gas_gwei or both"));
    }
    Ok(RuleKind::GasCap { max_gas, max_fee_per_gas })
}

fn tokens(root: &Object) -> Result<Vec<TokenSpec>, PolicyError> {
    let Some(value) = root.get("tokens") else { return Ok(Vec::new()) };
    let map = object(value, "$.tokens")?;
    if map.len() > 100 {
        return Err(err("$.tokens", "at most 100 tokens"));
    }
    let mut tokens: Vec<TokenSpec> = Vec::with_capacity(map.len());
    for (symbol, spec) in map {
        let path = format!("$.tokens.{symbol}");
        let valid = !symbol.is_empty()
            && symbol.len() <= 16
            && symbol != "native"
            && symbol != "usd"
            && !symbol.starts_with("0x")
            && symbol.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
        if !valid {
            return Err(err(&path, "a symbol is 1-16 letters, digits, '.', '_' or '-' (not native, usd or 0x…)"));
        }
        let spec = object(spec, &path)?;
        only_fields(spec, &path, &["address", "decimals"])?;
        let address = address_at(spec.get("address").unwrap_or(&Value::Null), &format!("{path}.address"))?;
        let decimals = spec
            .get("decimals")
            .and_then(Value::as_u64)
            .filter(|d| *d <= 36)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| err(format!("{path}.decimals"), "expected an integer from 0 to 36"))?;
        if tokens.iter().any(|t| t.address == address) {
            return Err(err(format!("{path}.address"), "declared twice"));
        }
        tokens.push(TokenSpec { symbol: symbol.clone(), address, decimals });
    }
    Ok(tokens)
}

fn prices(root: &Object, parser: &Parser) -> Result<BTreeMap<Asset, PriceSource>, PolicyError> {
    let Some(value) = root.get("prices") else { return Ok(BTreeMap::new()) };
    let map = object(value, "$.prices")?;
    if map.len() > 100 {
        return Err(err("$.prices", "at most 100 price sources"));
    }
    let mut prices = BTreeMap::new();
    for (name, spec) in map {
        let path = format!("$.prices.{name}");
        let (asset, _) = parser.asset(name, &path)?;
        let spec = object(spec, &path)?;
        let source = match (spec.get("usd"), spec.get("aggregator")) {
            (Some(_), None) => {
                only_fields(spec, &path, &["usd"])?;
                let text = str_field(spec, &path, "usd")?.unwrap_or_default();
                let usd_micro =
                    parse_units(text, USD_DECIMALS).map_err(|e| err(format!("{path}.usd"), e.to_string()))?;
                if usd_micro.is_zero() {
                    return Err(err(format!("{path}.usd"), "a price must be above zero"));
                }
                PriceSource::Static { usd_micro }
            }
            (None, Some(aggregator)) => {
                only_fields(spec, &path, &["aggregator", "max_age_secs"])?;
                PriceSource::Aggregator {
                    address: address_at(aggregator, &format!("{path}.aggregator"))?,
                    max_age_secs: window_field_named(spec, &path, "max_age_secs")?,
                }
            }
            _ => return Err(err(&path, "give either usd (a static price) or aggregator with max_age_secs")),
        };
        prices.insert(asset, source);
    }
    Ok(prices)
}

impl Policy {
    /// Parses and validates a policy document. Errors name the JSON path.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let document: Value = serde_json::from_str(text).map_err(|e| err("$", format!("invalid JSON: {e}")))?;
        let root = object(&document, "$")?;
        only_fields(root, "$", &["version", "tokens", "prices", "rules"])?;
        match root.get("version").and_then(Value::as_u64) {
            Some(POLICY_VERSION) => {}
            _ => return Err(err("$.version", format!("expected {POLICY_VERSION}"))),
        }
        let parser = Parser { tokens: tokens(root)? };
        let prices = prices(root, &parser)?;
        let rules = root.get("rules").and_then(Value::as_array).ok_or_else(|| err("$.rules", "expected an array"))?;
        if rules.len() > 1000 {
            return Err(err("$.rules", "at most 1000 rules"));
        }
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
            let kind = rule_kind(&parser, map, &path)?;
            parsed.push(Rule { id: id.to_string(), kind });
        }
        let canonical = serde_json::to_vec(&document).map_err(|e| err("$", e.to_string()))?;
        Ok(Policy { tokens: parser.tokens, prices, rules: parsed, hash: hex::encode(Sha256::digest(canonical)) })
    }
}

fn rule_kind(parser: &Parser, map: &Object, path: &str) -> Result<RuleKind, PolicyError> {
    let fields = |extra: &[&str]| {
        let mut allowed = vec!["id", "type"];
        allowed.extend_from_slice(extra);
        only_fields(map, path, &allowed)
    };
    let amount_fields = ["asset", "amount", "amount_base", "amount_wei"];
    Ok(match map.get("type").and_then(Value::as_str) {
        Some("max_per_tx") => {
            fields(&amount_fields)?;
            let (basis, limit) = parser.measured(map, path, false)?;
            RuleKind::MaxPerTx { basis, limit }
        }
        Some("rolling_cap") => {
            fields(&[&amount_fields[..], &["window_secs"]].concat())?;
            let (basis, limit) = parser.measured(map, path, false)?;
            RuleKind::RollingCap { basis, window_secs: window_field(map, path)?, limit }
        }
        Some("max_per_tx_usd") => {
            fields(&["usd"])?;
            let (basis, limit) = parser.measured(map, path, true)?;
            RuleKind::MaxPerTx { basis, limit }
        }
        Some("rolling_cap_usd") => {
            fields(&["usd", "window_secs"])?;
            let (basis, limit) = parser.measured(map, path, true)?;
            RuleKind::RollingCap { basis, window_secs: window_field(map, path)?, limit }
        }
        Some("tiers") => {
            fields(&["basis", "notify_above", "delay_above", "approval_above", "delay_secs", "window_secs"])?;
            parser.tiers(map, path)?
        }
        Some("allow_recipients") => {
            fields(&["addresses"])?;
            RuleKind::AllowRecipients { addresses: addresses(map, path, "addresses")? }
        }
        Some("deny_recipients") => {
            fields(&["addresses"])?;
            RuleKind::DenyRecipients { addresses: addresses(map, path, "addresses")? }
        }
        Some("allow_tokens") => {
            fields(&["tokens"])?;
            let tokens = array(map, path, "tokens")?
                .iter()
                .enumerate()
                .map(|(i, t)| parser.token_ref(t, &format!("{path}.tokens[{i}]")))
                .collect::<Result<_, _>>()?;
            RuleKind::AllowTokens { tokens }
        }
        Some("allow_contracts") => {
            fields(&["contracts"])?;
            parser.allow_contracts(map, path)?
        }
        Some("erc20_approve") => {
            fields(&["token", "spenders", "amount", "amount_base", "allow_unlimited"])?;
            parser.erc20_approve(map, path)?
        }
        Some("velocity") => {
            fields(&["window_secs", "max_count"])?;
            RuleKind::Velocity { window_secs: window_field(map, path)?, max_count: u64_field(map, path, "max_count")? }
        }
        Some("time_window") => {
            fields(&["timezone", "days", "start", "end"])?;
            time_window(map, path)?
        }
        Some("allow_chains") => {
            fields(&["chain_ids"])?;
            let chain_ids = array(map, path, "chain_ids")?
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.as_u64()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| err(format!("{path}.chain_ids[{i}]"), "expected a positive integer chain id"))
                })
                .collect::<Result<_, _>>()?;
            RuleKind::AllowChains { chain_ids }
        }
        Some("new_recipient") => {
            fields(&["tier"])?;
            let tier = match str_field(map, path, "tier")? {
                None => Tier::Approval,
                Some(text) => Tier::parse(text)
                    .filter(|t| *t != Tier::Instant)
                    .ok_or_else(|| err(format!("{path}.tier"), "expected notify, delay or approval"))?,
            };
            RuleKind::NewRecipient { tier }
        }
        Some("gas_cap") => {
            fields(&["max_gas", "max_fee_per_gas_gwei"])?;
            gas_cap(map, path)?
        }
        Some("typed_data") => {
            fields(&["domains"])?;
            typed_data(map, path)?
        }
        Some("x402") => {
            fields(&["hosts", "max_per_call_usd", "budget_usd", "window_secs"])?;
            x402(map, path)?
        }
        Some("personal_message") => {
            fields(&["mode", "pattern"])?;
            personal_message(map, path)?
        }
        Some("raw_hash") => {
            fields(&["allow"])?;
            match map.get("allow") {
                Some(Value::Bool(true)) => RuleKind::RawHash,
                _ => return Err(err(format!("{path}.allow"), "must be true (omit the rule to deny raw hashes)")),
            }
        }
        Some("require_simulation") => {
            fields(&[])?;
            RuleKind::RequireSimulation
        }
        Some(other) => return Err(err(format!("{path}.type"), format!("unknown rule type {other:?}"))),
        None => return Err(err(format!("{path}.type"), "required")),
    })
}

/// Short weekday name, Monday = 0.
pub(super) fn weekday_name(monday_zero: usize) -> &'static str {
    WEEKDAYS.get(monday_zero).copied().unwrap_or("?")
}
