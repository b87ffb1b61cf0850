//! The tool table: name, band, static description, input schema, and how the
//! arguments become one REST call. Arguments are checked here for shape (unknown
//! fields, types, `confirm`); addresses, amounts and calldata are checked by the
//! daemon's request parsers, whose error codes come back unchanged.

use mandate_core::ErrorCode;
use serde_json::{json, Map, Value};

use crate::backend::RestCall;
use crate::band::Band;

/// Who may see a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The band and every band above it.
    Band(Band),
    /// Sessions with the `freeze` scope, whatever their band.
    FreezeScope,
}

/// One tool.
#[derive(Debug)]
pub struct ToolSpec {
    /// Its name.
    pub name: &'static str,
    /// Who sees it.
    pub access: Access,
    /// Whether it only reads (an MCP annotation for clients).
    pub read_only: bool,
    /// What it does, for the model (static text).
    pub description: &'static str,
}

const ADDRESS: &str = "^0x[0-9a-fA-F]{40}$";
const AMOUNT: &str = "^[0-9]+(\\.[0-9]+)?$";

/// Every tool, in band order.
pub const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "get_wallet",
        access: Access::Band(Band::Read),
        read_only: true,
        description: "The wallet this session is bound to: id, address, chain id, and whether it is frozen.",
    },
    ToolSpec {
        name: "get_balance",
        access: Access::Band(Band::Read),
        read_only: true,
        description: "The wallet's balance read from the chain: native by default, or an ERC-20 token given by the \
                      symbol the policy declares or its contract address.",
    },
    ToolSpec {
        name: "list_transactions",
        access: Access::Band(Band::Read),
        read_only: true,
        description: "The wallet's transactions, newest first, with their status and policy decision.",
    },
    ToolSpec {
        name: "get_transaction",
        access: Access::Band(Band::Read),
        read_only: true,
        description:
            "One transaction by id (status: pending_approval, delayed, approved, reserved, submitted, confirmed, \
                      failed, denied, expired or cancelled). Poll this after \
                      a send.",
    },
    ToolSpec {
        name: "get_policy_summary",
        access: Access::Band(Band::Read),
        read_only: true,
        description: "What this wallet may do: the policy's rules (default deny) and, for every spending window, \
                      the limit, what is used, what remains and when it frees up.",
    },
    ToolSpec {
        name: "evaluate_action",
        access: Access::Band(Band::Read),
        read_only: true,
        description: "Dry run: the full policy decision for a transfer, contract call or signature, without \
                      signing or reserving anything. `type` is transfer, contract_call or sign; the other fields \
                      are those of the matching prepare or sign tool.",
    },
    ToolSpec {
        name: "prepare_transfer",
        access: Access::Band(Band::Prepare),
        read_only: true,
        description: "Build and simulate a native or ERC-20 transfer: the decoded action, gas and fees, the \
                      simulation and the policy decision. Nothing is signed.",
    },
    ToolSpec {
        name: "prepare_contract_call",
        access: Access::Band(Band::Prepare),
        read_only: true,
        description: "Build and simulate a contract call (calldata, or a function signature and arguments): the \
                      decoded action, gas and fees, the simulation and the policy decision. Nothing is signed.",
    },
    ToolSpec {
        name: "sign_typed_data",
        access: Access::Band(Band::Sign),
        read_only: false,
        description: "Sign EIP-712 typed data (eth_signTypedData_v4 JSON) with the wallet, if the policy allows it.",
    },
    ToolSpec {
        name: "sign_message",
        access: Access::Band(Band::Sign),
        read_only: false,
        description: "Sign an EIP-191 personal message (text) with the wallet, if the policy allows it.",
    },
    ToolSpec {
        name: "send_transfer",
        access: Access::Band(Band::Broadcast),
        read_only: false,
        description: "Send a native or ERC-20 transfer, if the policy allows it. Requires confirm: true. Returns \
                      the transaction id and status; poll get_transaction. Pass an idempotency_key to make a retry \
                      safe.",
    },
    ToolSpec {
        name: "send_contract_call",
        access: Access::Band(Band::Broadcast),
        read_only: false,
        description: "Send a contract call, if the policy allows it. Requires confirm: true. Returns the \
                      transaction id and status; poll get_transaction. Pass an idempotency_key to make a retry safe.",
    },
    ToolSpec {
        name: "pay_x402",
        access: Access::Band(Band::Broadcast),
        read_only: false,
        description: "Fetch an http(s) URL that may answer 402 Payment Required (x402): the daemon pays its x402 \
                      `exact` price in the token it asks for, if the policy's x402 rule names the host and the \
                      payment fits the caps, and returns the resource and the settlement. A free URL is returned \
                      without paying. Requires confirm: true. Pass an idempotency_key to make a retry safe.",
    },
    ToolSpec {
        name: "speed_up_transaction",
        access: Access::Band(Band::Broadcast),
        read_only: false,
        description: "A submitted transaction that is not mined yet: send it again at the same nonce with fees \
                      raised (at least 12.5 %), within the daemon's fee cap and the policy's gas rules. Requires \
                      confirm: true. Whichever version is mined first counts; poll get_transaction.",
    },
    ToolSpec {
        name: "cancel_transaction",
        access: Access::Band(Band::Broadcast),
        read_only: false,
        description: "Stop a transaction: a held one (pending approval or delayed) is cancelled before it runs; a \
                      submitted one is replaced at its nonce by a zero-value transfer to the wallet itself with \
                      higher fees. The original may still be mined first: poll get_transaction (cancelled or \
                      confirmed). Requires confirm: true.",
    },
    ToolSpec {
        name: "freeze_wallet",
        access: Access::FreezeScope,
        read_only: false,
        description: "Emergency stop: freeze this wallet at once, so that nothing more is signed. Use it if you \
                      suspect you are being manipulated. You cannot undo it: unfreezing is for the owner.",
    },
];

impl ToolSpec {
    /// Whether a caller with `band` (none: a session with only the `freeze` scope)
    /// and the `freeze` scope or not sees this tool.
    pub fn visible(&self, band: Option<Band>, freeze: bool) -> bool {
        match self.access {
            Access::Band(needed) => band.is_some_and(|band| band.includes(needed)),
            Access::FreezeScope => freeze,
        }
    }

    /// The JSON Schema of the arguments.
    pub fn input_schema(&self) -> Value {
        let transfer = json!({
            "to": {"type": "string", "pattern": ADDRESS, "description": "recipient address (EIP-55 checksum or lower case)"},
            "amount": {"type": "string", "pattern": AMOUNT, "description": "whole units, e.g. \"0.25\" (ether or token)"},
            "token": {"type": "string", "maxLength": 64, "description": "ERC-20: the symbol the policy declares, or the contract address; omit for native"},
            "chain": {"type": "string", "maxLength": 64, "description": "the chain's name or id, when the daemon serves several"},
        });
        let call = json!({
            "to": {"type": "string", "pattern": ADDRESS, "description": "contract address"},
            "data": {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})+$", "description": "calldata (or give function and args)"},
            "function": {"type": "string", "description": "function signature, e.g. swap(address,uint256,uint256)"},
            "args": {"type": "array", "description": "the function's arguments, as strings or JSON values"},
            "value": {"type": "string", "pattern": AMOUNT, "description": "ether sent with the call (default 0)"},
            "chain": {"type": "string", "maxLength": 64, "description": "the chain's name or id, when the daemon serves several"},
        });
        let send_extra = json!({
            "confirm": {"type": "boolean", "const": true, "description": "must be true: you intend to send this"},
            "idempotency_key": {"type": "string", "maxLength": 128, "description": "the same key never sends twice"},
        });
        let (properties, required): (Value, &[&str]) = match self.name {
            "get_wallet" | "get_policy_summary" => (json!({}), &[]),
            "get_balance" => (
                json!({"token": {"type": "string", "maxLength": 64,
                       "description": "a symbol the policy declares, or a contract address; omit for native"},
                       "chain": {"type": "string", "maxLength": 64,
                       "description": "the chain's name or id, when the daemon serves several"}}),
                &[],
            ),
            "list_transactions" => {
                (json!({"limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}), &[])
            }
            "get_transaction" => (json!({"id": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}}), &["id"]),
            "evaluate_action" => {
                let mut properties = merge(&transfer, &call);
                properties.insert("type".into(), json!({"enum": ["transfer", "contract_call", "sign"]}));
                properties.insert("typed_data".into(), json!({"type": "object"}));
                properties.insert("message".into(), json!({"type": "string"}));
                (Value::Object(properties), &["type"])
            }
            "prepare_transfer" => (transfer, &["to", "amount"]),
            "prepare_contract_call" => (call, &["to"]),
            "sign_typed_data" => (
                json!({"typed_data": {"type": "object", "description": "EIP-712: types, primaryType, domain, message"}}),
                &["typed_data"],
            ),
            "sign_message" => {
                (json!({"message": {"type": "string", "description": "text, at most 16 KiB"}}), &["message"])
            }
            "send_transfer" => (Value::Object(merge(&transfer, &send_extra)), &["to", "amount", "confirm"]),
            "send_contract_call" => (Value::Object(merge(&call, &send_extra)), &["to", "confirm"]),
            "pay_x402" => (
                Value::Object(merge(
                    &json!({"url": {"type": "string", "maxLength": 2048, "description": "the resource, https:// (http:// on localhost)"},
                            "chain": {"type": "string", "maxLength": 64, "description": "the chain's name or id, when the daemon serves several"}}),
                    &send_extra,
                )),
                &["url", "confirm"],
            ),
            "speed_up_transaction" | "cancel_transaction" => (
                json!({"id": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$", "description": "the transaction id, tx_…"},
                       "confirm": {"type": "boolean", "const": true, "description": "must be true: you intend this"}}),
                &["id", "confirm"],
            ),
            "freeze_wallet" => {
                (json!({"reason": {"type": "string", "description": "why (kept to 400 printable characters)"}}), &[])
            }
            _ => (json!({}), &[]),
        };
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
    }
}

fn merge(a: &Value, b: &Value) -> Map<String, Value> {
    let mut map = a.as_object().cloned().unwrap_or_default();
    map.extend(b.as_object().cloned().unwrap_or_default());
    map
}

/// The names of the tools a caller sees.
pub fn tool_names(band: Option<Band>, freeze: bool) -> Vec<&'static str> {
    TOOLS.iter().filter(|tool| tool.visible(band, freeze)).map(|tool| tool.name).collect()
}

/// Bad arguments: the envelope's code and message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> InputError {
    InputError { code: ErrorCode::InvalidInput, message: message.into(), field: Some(field.into()) }
}

/// The arguments, checked for unknown fields.
fn fields<'a>(args: &'a Map<String, Value>, allowed: &[&str]) -> Result<&'a Map<String, Value>, InputError> {
    match args.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(invalid(key, format!("unknown argument {key:?}; this tool takes {allowed:?}"))),
        None => Ok(args),
    }
}

fn text<'a>(args: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, InputError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(field, format!("{field}: expected a string"))),
    }
}

fn required<'a>(args: &'a Map<String, Value>, field: &str) -> Result<&'a str, InputError> {
    text(args, field)?.ok_or_else(|| invalid(field, format!("{field} is required")))
}

/// A token symbol or address, safe to put in a query string as is.
/// A chain's name or id: letters, digits, `-` and `_`, at most 64.
fn chain_text(text: &str) -> Result<&str, InputError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    if text.is_empty() || text.len() > 64 || !text.chars().all(safe) {
        return Err(invalid("chain", "chain: expected a chain name or id (letters, digits, - _)"));
    }
    Ok(text)
}

fn token_text(text: &str) -> Result<&str, InputError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if text.is_empty() || text.len() > 64 || !text.chars().all(safe) {
        return Err(InputError {
            code: ErrorCode::UnknownToken,
            message: "token: expected a symbol (letters, digits, . - _) or a contract address".into(),
            field: Some("token".into()),
        });
    }
    Ok(text)
}

/// `confirm` must be the boolean `true`.
fn confirmed(args: &Map<String, Value>) -> Result<(), InputError> {
    match args.get("confirm") {
        Some(Value::Bool(true)) => Ok(()),
        _ => Err(InputError {
            code: ErrorCode::ConfirmationRequired,
            message: "confirm: must be true to send; nothing was signed".into(),
            field: Some("confirm".into()),
        }),
    }
}

fn idempotency(args: &Map<String, Value>) -> Result<Option<String>, InputError> {
    let key = text(args, "idempotency_key")?;
    if let Some(key) = key {
        if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid("idempotency_key", "idempotency_key: 1 to 128 printable ASCII characters"));
        }
    }
    Ok(key.map(str::to_string))
}

/// The transfer body of the REST API (`to`, `amount`, `token`).
fn transfer_body(args: &Map<String, Value>) -> Result<Map<String, Value>, InputError> {
    let mut body = Map::new();
    body.insert("to".into(), json!(required(args, "to")?));
    body.insert("amount".into(), json!(required(args, "amount")?));
    if let Some(token) = text(args, "token")? {
        body.insert("token".into(), json!(token_text(token)?));
    }
    if let Some(chain) = text(args, "chain")? {
        body.insert("chain".into(), json!(chain_text(chain)?));
    }
    Ok(body)
}

/// The contract-call body (`to`, `data` or `function` + `args`, `value`).
fn call_body(args: &Map<String, Value>) -> Result<Map<String, Value>, InputError> {
    let mut body = Map::new();
    body.insert("to".into(), json!(required(args, "to")?));
    for field in ["data", "function", "value"] {
        if let Some(value) = text(args, field)? {
            body.insert(field.into(), json!(value));
        }
    }
    if let Some(chain) = text(args, "chain")? {
        body.insert("chain".into(), json!(chain_text(chain)?));
    }
    match args.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            body.insert("args".into(), Value::Array(values.clone()));
        }
        Some(_) => return Err(invalid("args", "args: expected an array")),
    }
    Ok(body)
}

/// The REST call a tool call becomes, for the session's `wallet`.
pub(crate) fn rest_call(tool: &str, args: &Map<String, Value>, wallet: &str) -> Result<RestCall, InputError> {
    let base = format!("/v1/wallets/{wallet}");
    const TRANSFER: &[&str] = &["to", "amount", "token", "chain"];
    const CALL: &[&str] = &["to", "data", "function", "args", "value", "chain"];
    Ok(match tool {
        "get_wallet" => {
            fields(args, &[])?;
            RestCall::get(base)
        }
        "get_balance" => {
            let args = fields(args, &["token", "chain"])?;
            let mut query = Vec::new();
            if let Some(token) = text(args, "token")? {
                query.push(format!("token={}", token_text(token)?));
            }
            if let Some(chain) = text(args, "chain")? {
                query.push(format!("chain={}", chain_text(chain)?));
            }
            match query.is_empty() {
                true => RestCall::get(format!("{base}/balance")),
                false => RestCall::get(format!("{base}/balance?{}", query.join("&"))),
            }
        }
        "list_transactions" => {
            let limit = match fields(args, &["limit"])?.get("limit") {
                None | Some(Value::Null) => 20,
                Some(value) => value
                    .as_u64()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| invalid("limit", "limit: an integer from 1 to 100"))?,
            };
            RestCall::get(format!("{base}/transactions?limit={limit}"))
        }
        "get_transaction" => RestCall::get(format!("/v1/transactions/{}", transaction_id(fields(args, &["id"])?)?)),
        "pay_x402" => {
            let args = fields(args, &["url", "chain", "confirm", "idempotency_key"])?;
            confirmed(args)?;
            let mut body = Map::new();
            let url = required(args, "url")?;
            if url.len() > 2048 {
                return Err(invalid("url", "url: at most 2048 characters"));
            }
            body.insert("url".into(), json!(url));
            if let Some(chain) = text(args, "chain")? {
                body.insert("chain".into(), json!(chain_text(chain)?));
            }
            let mut call = RestCall::post(format!("{base}/x402/pay"), Value::Object(body));
            call.idempotency_key = idempotency(args)?;
            call
        }
        "speed_up_transaction" | "cancel_transaction" => {
            let args = fields(args, &["id", "confirm"])?;
            let id = transaction_id(args)?;
            confirmed(args)?;
            let action = if tool == "cancel_transaction" { "cancel" } else { "speed-up" };
            RestCall::post(format!("/v1/transactions/{id}/{action}"), json!({}))
        }
        "get_policy_summary" => {
            fields(args, &[])?;
            RestCall::get(format!("{base}/policy/summary"))
        }
        "evaluate_action" => {
            let allowed = [
                "type",
                "to",
                "amount",
                "token",
                "data",
                "function",
                "args",
                "value",
                "typed_data",
                "message",
                "chain",
            ];
            let args = fields(args, &allowed)?;
            let body = match required(args, "type")? {
                "transfer" => tagged("transfer", transfer_body(fields(args, &with_type(TRANSFER))?)?),
                "contract_call" => tagged("contract_call", call_body(fields(args, &with_type(CALL))?)?),
                "sign" => {
                    let mut body = fields(args, &["type", "typed_data", "message"])?.clone();
                    body.insert("type".into(), json!("sign"));
                    body
                }
                other => {
                    return Err(invalid("type", format!("type: {other:?} is not transfer, contract_call or sign")))
                }
            };
            RestCall::post(format!("{base}/policy/evaluate"), Value::Object(body))
        }
        "prepare_transfer" => RestCall::post(
            format!("{base}/policy/evaluate?simulate=true"),
            Value::Object(tagged("transfer", transfer_body(fields(args, TRANSFER)?)?)),
        ),
        "prepare_contract_call" => RestCall::post(
            format!("{base}/policy/evaluate?simulate=true"),
            Value::Object(tagged("contract_call", call_body(fields(args, CALL)?)?)),
        ),
        "sign_typed_data" => {
            let args = fields(args, &["typed_data"])?;
            match args.get("typed_data") {
                Some(Value::Object(data)) => {
                    RestCall::post(format!("{base}/sign-typed-data"), json!({"typed_data": data}))
                }
                _ => {
                    return Err(InputError {
                        code: ErrorCode::InvalidTypedData,
                        message: "typed_data: expected an EIP-712 object".into(),
                        field: Some("typed_data".into()),
                    })
                }
            }
        }
        "sign_message" => {
            let message = required(fields(args, &["message"])?, "message")?;
            RestCall::post(format!("{base}/sign-message"), json!({"message": message}))
        }
        "send_transfer" => {
            let args = fields(args, &[TRANSFER, &["confirm", "idempotency_key"]].concat())?;
            let body = transfer_body(args)?;
            confirmed(args)?;
            let mut call = RestCall::post(format!("{base}/transactions"), Value::Object(body));
            call.idempotency_key = idempotency(args)?;
            call
        }
        "send_contract_call" => {
            let args = fields(args, &[CALL, &["confirm", "idempotency_key"]].concat())?;
            let body = call_body(args)?;
            confirmed(args)?;
            let mut call = RestCall::post(format!("{base}/contract-calls"), Value::Object(body));
            call.idempotency_key = idempotency(args)?;
            call
        }
        "freeze_wallet" => {
            // Never let the wording of the reason stand between the agent and the freeze:
            // control characters become spaces and the text is cut to fit the daemon's limit.
            let reason = text(fields(args, &["reason"])?, "reason").ok().flatten().unwrap_or("frozen by the agent");
            let mut reason: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).take(400).collect();
            while reason.len() > 500 {
                reason.pop();
            }
            RestCall::post(format!("{base}/freeze"), json!({"reason": reason}))
        }
        other => return Err(invalid("name", format!("unknown tool {other:?}"))),
    })
}

/// The `id` argument: a transaction id (letters, digits, `_`), never a path.
fn transaction_id(args: &Map<String, Value>) -> Result<&str, InputError> {
    let id = required(args, "id")?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("id", "id: a transaction id such as tx_…"));
    }
    Ok(id)
}

fn with_type(fields: &[&'static str]) -> Vec<&'static str> {
    let mut all = vec!["type"];
    all.extend_from_slice(fields);
    all
}

fn tagged(kind: &str, mut body: Map<String, Value>) -> Map<String, Value> {
    body.insert("type".into(), json!(kind));
    body
}

/// The value at `path` inside `value` (`null` when absent).
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter().try_fold(value, |value, key| value.get(key)).unwrap_or(&NULL)
}

/// A one-line summary of a successful result, written only from fields Mandate
/// itself sets (ids, statuses, verdicts), never from text that came from outside.
pub(crate) fn summary(tool: &str, result: &Value) -> String {
    let field = |path: &[&str]| match at(result, path) {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    match tool {
        "get_wallet" => format!(
            "Wallet {} at {} on chain {}{}.",
            field(&["id"]),
            field(&["address"]),
            field(&["chain_id"]),
            if at(result, &["frozen"]).is_null() { "" } else { "; FROZEN: nothing will be signed" }
        ),
        "get_balance" => match at(result, &["asset"]).as_str() {
            Some("native") => format!("Balance: {} ETH ({} wei).", field(&["balance"]), field(&["balance_wei"])),
            _ => format!(
                "Balance: {} of token {} ({} base units, {} decimals).",
                field(&["balance"]),
                field(&["token"]),
                field(&["balance_base"]),
                field(&["decimals"])
            ),
        },
        "list_transactions" => {
            format!("{} transactions.", at(result, &["transactions"]).as_array().map_or(0, Vec::len))
        }
        "get_transaction" => format!("Transaction {}: {}, {}.", field(&["id"]), field(&["status"]), moves(result)),
        "get_policy_summary" => format!(
            "{} rules, {} spending windows (default deny).",
            at(result, &["rules"]).as_array().map_or(0, Vec::len),
            at(result, &["budgets"]).as_array().map_or(0, Vec::len)
        ),
        "evaluate_action" | "prepare_transfer" | "prepare_contract_call" => format!(
            "Policy decision: {} (rule {}), tier {}{}. Nothing was signed.",
            field(&["decision", "verdict"]),
            field(&["decision", "rule_id"]),
            field(&["decision", "tier"]),
            action_amount(at(result, &["action"]))
        ),
        "sign_typed_data" | "sign_message" => format!("Signed by {}.", field(&["address"])),
        "speed_up_transaction" => format!(
            "Transaction {} sent again with higher fees as {}. Poll get_transaction for the final status.",
            field(&["id"]),
            field(&["tx_hash"])
        ),
        "cancel_transaction" => format!(
            "Transaction {}: {}. A submitted one may still be mined before its cancel; poll get_transaction.",
            field(&["id"]),
            field(&["status"])
        ),
        "send_transfer" | "send_contract_call" => format!(
            "Transaction {}: {}, {}. Poll get_transaction for the final status.",
            field(&["id"]),
            field(&["status"]),
            // A held send (202) carries the record under `transaction`.
            moves(if at(result, &["transaction"]).is_object() { at(result, &["transaction"]) } else { result })
        ),
        "freeze_wallet" => format!("Wallet {} is frozen; nothing more will be signed.", field(&["wallet_id"])),
        "pay_x402" if at(result, &["paid"]) == &json!(true) => format!(
            "Paid {} {} to {} (settlement {}); the resource answered {}.",
            field(&["settlement", "amount"]),
            field(&["settlement", "token_symbol"]),
            field(&["settlement", "pay_to"]),
            field(&["settlement", "transaction"]),
            field(&["status"])
        ),
        "pay_x402" => format!("Nothing was paid; the resource answered {}.", field(&["status"])),
        _ => "Done.".into(),
    }
}

/// What a transaction record moves, in units and base units: `0.5 ETH
/// (500000000000000000 wei)`, or a token's amount by its address (its symbol is the
/// contract's own text, so it is not repeated here).
fn moves(tx: &Value) -> String {
    let text = |key: &str| at(tx, &[key]).as_str().unwrap_or("-").to_string();
    let ether = format!("{} ETH ({} wei)", text("value"), text("value_wei"));
    match at(tx, &["asset"]).as_str() {
        Some("native") | None => format!("value {ether}"),
        Some(token) => match at(tx, &["amount_units"]).as_str() {
            Some(units) => format!("{units} of token {token} ({} base units), value {ether}", text("amount")),
            None => format!("{} base units of token {token}, value {ether}", text("amount")),
        },
    }
}

/// The amount of an evaluated action, as `, amount 0.5 ETH (… wei)`, when it moves one.
fn action_amount(action: &Value) -> String {
    let text = |key: &str| at(action, &[key]).as_str().unwrap_or("-").to_string();
    match at(action, &["kind"]).as_str() {
        Some("native_transfer") => format!(", amount {} ETH ({} wei)", text("amount"), text("amount_wei")),
        Some("token_transfer") => {
            format!(", amount {} of token {} ({} base units)", text("amount"), text("token"), text("amount_base"))
        }
        Some("contract_call") => format!(", value {} ETH ({} wei)", text("value"), text("value_wei")),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_give_units_beside_base_units() {
        let tx = json!({"id": "tx_1", "status": "submitted", "asset": "native", "value": "0.5",
                        "value_wei": "500000000000000000", "amount": "500000000000000000"});
        assert_eq!(
            summary("get_transaction", &tx),
            "Transaction tx_1: submitted, value 0.5 ETH (500000000000000000 wei)."
        );
        let held = json!({"id": "tx_2", "status": "pending_approval", "transaction": tx});
        assert!(summary("send_transfer", &held).contains("0.5 ETH (500000000000000000 wei)"));
        let token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        let usdc = json!({"id": "tx_3", "status": "confirmed", "asset": token, "amount": "12500000",
                          "amount_units": "12.5", "symbol": "FAKE", "value": "0", "value_wei": "0"});
        let line = summary("get_transaction", &usdc);
        assert!(line.contains(&format!("12.5 of token {token} (12500000 base units)")), "{line}");
        assert!(!line.contains("FAKE"), "the contract's own symbol is not echoed: {line}");
        let balance = json!({"asset": "native", "balance": "1.5", "balance_wei": "1500000000000000000"});
        assert_eq!(summary("get_balance", &balance), "Balance: 1.5 ETH (1500000000000000000 wei).");
        let evaluated = json!({"decision": {"verdict": "allow", "rule_id": "allowed", "tier": "instant"},
                               "action": {"kind": "native_transfer", "amount": "2", "amount_wei": "2000000000000000000"}});
        assert!(summary("evaluate_action", &evaluated).contains("amount 2 ETH (2000000000000000000 wei)"));
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn bands_reveal_exactly_their_tools() {
        assert_eq!(
            tool_names(Some(Band::Read), false),
            [
                "get_wallet",
                "get_balance",
                "list_transactions",
                "get_transaction",
                "get_policy_summary",
                "evaluate_action"
            ]
        );
        assert_eq!(tool_names(Some(Band::Prepare), false).len(), 8);
        assert_eq!(tool_names(Some(Band::Sign), false).len(), 10);
        assert_eq!(tool_names(Some(Band::Broadcast), false).len(), 15);
        assert!(tool_names(Some(Band::Read), true).contains(&"freeze_wallet"));
        assert!(!tool_names(Some(Band::Broadcast), false).contains(&"freeze_wallet"));
        assert_eq!(tool_names(None, true), ["freeze_wallet"]);
        assert!(tool_names(None, false).is_empty());
        for tool in TOOLS {
            let schema = tool.input_schema();
            assert_eq!(schema["type"], "object", "{}", tool.name);
            for field in schema["required"].as_array().into_iter().flatten() {
                assert!(schema["properties"].get(field.as_str().unwrap_or("")).is_some(), "{}: {field}", tool.name);
            }
        }
    }

    #[test]
    fn sends_need_confirm_true_and_unknown_arguments_are_refused() {
        let transfer = json!({"to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "amount": "1"});
        let error = rest_call("send_transfer", &args(transfer.clone()), "w").unwrap_err();
        assert_eq!(error.code, ErrorCode::ConfirmationRequired);
        let mut with_string = args(transfer.clone());
        with_string.insert("confirm".into(), json!("true"));
        assert_eq!(rest_call("send_transfer", &with_string, "w").unwrap_err().code, ErrorCode::ConfirmationRequired);
        let mut confirmed = args(transfer);
        confirmed.insert("confirm".into(), json!(true));
        confirmed.insert("idempotency_key".into(), json!("k-1"));
        let call = rest_call("send_transfer", &confirmed, "w_1").unwrap();
        assert_eq!((call.method, call.path.as_str()), ("POST", "/v1/wallets/w_1/transactions"));
        assert_eq!(call.body.unwrap().as_object().unwrap().len(), 2, "confirm and the key are not sent as fields");
        assert_eq!(call.idempotency_key.as_deref(), Some("k-1"));
        confirmed.insert("wallet".into(), json!("w_other"));
        assert_eq!(rest_call("send_transfer", &confirmed, "w_1").unwrap_err().field.as_deref(), Some("wallet"));
    }

    #[test]
    fn path_and_query_fields_cannot_smuggle_paths() {
        for token in ["../../admin", "TST&x=1", "T ST", "", "TST/x"] {
            let error = rest_call("get_balance", &args(json!({"token": token})), "w").unwrap_err();
            assert_eq!(error.code, ErrorCode::UnknownToken, "{token}");
        }
        for id in ["../wallets", "tx_1?x", "tx 1"] {
            assert!(rest_call("get_transaction", &args(json!({"id": id})), "w").is_err(), "{id}");
        }
        let call = rest_call("get_balance", &args(json!({"token": "0xAbC0000000000000000000000000000000000001"})), "w");
        assert_eq!(call.unwrap().path, "/v1/wallets/w/balance?token=0xAbC0000000000000000000000000000000000001");
    }

    #[test]
    fn a_freeze_is_never_refused_for_its_reason() {
        let long = "é\n".repeat(700);
        for reason in [json!(long), json!(7), json!("ok")] {
            let call = rest_call("freeze_wallet", &args(json!({"reason": reason})), "w").unwrap();
            let sent = call.body.unwrap()["reason"].as_str().unwrap().to_string();
            assert!(sent.len() <= 500 && !sent.chars().any(char::is_control), "{sent:?}");
        }
    }

    #[test]
    fn evaluate_forwards_the_typed_request() {
        let call = rest_call(
            "evaluate_action",
            &args(json!({"type": "transfer", "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "amount": "2"})),
            "w",
        )
        .unwrap();
        assert_eq!(call.body.unwrap()["type"], "transfer");
        let wrong = rest_call("evaluate_action", &args(json!({"type": "transfer", "message": "hi"})), "w");
        assert_eq!(wrong.unwrap_err().field.as_deref(), Some("message"));
        let prepared = rest_call("prepare_contract_call", &args(json!({"to": "0x1", "data": "0x12345678"})), "w");
        assert_eq!(prepared.unwrap().path, "/v1/wallets/w/policy/evaluate?simulate=true");
    }
}
