//! Request bodies (docs/API.md; the request schemas of `GET /v1/openapi.json`).

use serde::Serialize;
use serde_json::Value;

/// A native or ERC-20 transfer (`POST /v1/wallets/{id}/transactions`, dry runs,
/// evaluations). Exactly one amount field is set by the constructors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// Recipient, `0x…`.
    pub to: String,
    /// ERC-20: a symbol the policy declares, or the contract address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whole units (ether, or tokens), decimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Wei (native only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_wei: Option<String>,
    /// Token base units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_base: Option<String>,
    /// The chain (its name on the daemon, or its id); `None`: the daemon's only chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

impl Transfer {
    /// `amount` ether to `to`.
    pub fn native(to: impl Into<String>, amount: impl Into<String>) -> Transfer {
        Transfer {
            to: to.into(),
            token: None,
            amount: Some(amount.into()),
            amount_wei: None,
            amount_base: None,
            chain: None,
        }
    }

    /// `wei` to `to`.
    pub fn native_wei(to: impl Into<String>, wei: impl Into<String>) -> Transfer {
        Transfer {
            to: to.into(),
            token: None,
            amount: None,
            amount_wei: Some(wei.into()),
            amount_base: None,
            chain: None,
        }
    }

    /// `amount` whole tokens of `token` (symbol or address) to `to`.
    pub fn token(to: impl Into<String>, token: impl Into<String>, amount: impl Into<String>) -> Transfer {
        Transfer {
            to: to.into(),
            token: Some(token.into()),
            amount: Some(amount.into()),
            amount_wei: None,
            amount_base: None,
            chain: None,
        }
    }

    /// `base` base units of `token` to `to`.
    pub fn token_base(to: impl Into<String>, token: impl Into<String>, base: impl Into<String>) -> Transfer {
        Transfer {
            to: to.into(),
            token: Some(token.into()),
            amount: None,
            amount_wei: None,
            amount_base: Some(base.into()),
            chain: None,
        }
    }

    /// The same transfer on `chain` (a name the daemon gives it, or its id).
    pub fn on_chain(mut self, chain: impl Into<String>) -> Transfer {
        self.chain = Some(chain.into());
        self
    }
}

/// A contract call (`POST /v1/wallets/{id}/contract-calls`): calldata, or a function
/// signature and arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractCall {
    /// The contract.
    pub to: String,
    /// Value in ether.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value in wei.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_wei: Option<String>,
    /// Calldata, `0x…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// e.g. `swap(address,uint256,uint256)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Arguments: strings, numbers, booleans, arrays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Value>>,
}

impl ContractCall {
    /// A call with raw calldata.
    pub fn data(to: impl Into<String>, data: impl Into<String>) -> ContractCall {
        ContractCall {
            to: to.into(),
            value: None,
            value_wei: None,
            data: Some(data.into()),
            function: None,
            args: None,
        }
    }

    /// A call of `function` with `args`.
    pub fn function(to: impl Into<String>, function: impl Into<String>, args: Vec<Value>) -> ContractCall {
        ContractCall {
            to: to.into(),
            value: None,
            value_wei: None,
            data: None,
            function: Some(function.into()),
            args: Some(args),
        }
    }

    /// With `wei` attached.
    pub fn with_value_wei(mut self, wei: impl Into<String>) -> ContractCall {
        self.value_wei = Some(wei.into());
        self
    }
}

/// What to sign, for an evaluation of `"type": "sign"`.
#[derive(Debug, Clone, PartialEq)]
pub enum SignPayload {
    /// `eth_signTypedData_v4` JSON.
    TypedData(Value),
    /// An EIP-191 text message.
    Message(String),
    /// An EIP-191 message as `0x` hex.
    MessageHex(String),
    /// A 32-byte hash, `0x…`.
    Hash(String),
}

impl SignPayload {
    pub(crate) fn body(&self) -> Value {
        match self {
            SignPayload::TypedData(typed_data) => serde_json::json!({"typed_data": typed_data}),
            SignPayload::Message(message) => serde_json::json!({"message": message}),
            SignPayload::MessageHex(message_hex) => serde_json::json!({"message_hex": message_hex}),
            SignPayload::Hash(hash) => serde_json::json!({"hash": hash}),
        }
    }
}

/// An action to evaluate (`POST /v1/wallets/{id}/policy/evaluate`).
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluate {
    /// A transfer.
    Transfer(Transfer),
    /// A contract call.
    ContractCall(ContractCall),
    /// A signature.
    Sign(SignPayload),
}

impl Evaluate {
    pub(crate) fn body(&self) -> Value {
        let (kind, mut body) = match self {
            Evaluate::Transfer(transfer) => ("transfer", serde_json::to_value(transfer).unwrap_or(Value::Null)),
            Evaluate::ContractCall(call) => ("contract_call", serde_json::to_value(call).unwrap_or(Value::Null)),
            Evaluate::Sign(payload) => ("sign", payload.body()),
        };
        if let Some(map) = body.as_object_mut() {
            map.insert("type".into(), Value::String(kind.into()));
        }
        body
    }
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateSession {
    /// The wallet.
    pub wallet_id: String,
    /// Lifetime per renewal.
    pub ttl_secs: u64,
    /// Renewals allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_renewals: Option<u64>,
    /// Never renewed past this many seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absolute_lifetime_secs: Option<u64>,
    /// `read`, `prepare`, `sign`, `broadcast`, `freeze` (default `read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

impl CreateSession {
    /// A session on `wallet_id` for `ttl_secs` with `scopes`.
    pub fn new(wallet_id: impl Into<String>, ttl_secs: u64, scopes: &[&str]) -> CreateSession {
        CreateSession {
            wallet_id: wallet_id.into(),
            ttl_secs,
            max_renewals: None,
            absolute_lifetime_secs: None,
            scopes: Some(scopes.iter().map(|scope| scope.to_string()).collect()),
        }
    }
}

/// `POST /v1/operator-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateOperatorKey {
    /// A name (≤ 64 bytes).
    pub name: String,
    /// `admin`, `read`, `freeze` (default `admin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// 1 to 3650 (default 90).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_days: Option<u32>,
}

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateWebhook {
    /// `https://` (`http://` only to localhost).
    pub url: String,
    /// Event names (docs/WEBHOOKS.md).
    pub events: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_carry_only_the_fields_set() {
        let to = "0x4242424242424242424242424242424242424242";
        assert_eq!(serde_json::to_value(Transfer::native(to, "0.5")).ok(), Some(json!({"to": to, "amount": "0.5"})));
        assert_eq!(
            serde_json::to_value(Transfer::token_base(to, "USDC", "12500000")).ok(),
            Some(json!({"to": to, "token": "USDC", "amount_base": "12500000"}))
        );
        assert_eq!(
            Evaluate::Transfer(Transfer::native_wei(to, "1")).body(),
            json!({"type": "transfer", "to": to, "amount_wei": "1"})
        );
        assert_eq!(Evaluate::Sign(SignPayload::Message("hi".into())).body(), json!({"type": "sign", "message": "hi"}));
        assert_eq!(
            Evaluate::ContractCall(ContractCall::data(to, "0x01").with_value_wei("5")).body(),
            json!({"type": "contract_call", "to": to, "data": "0x01", "value_wei": "5"})
        );
    }
}
