//! The cosigner's hard limits, read from its own file on every request.

use std::collections::BTreeMap;
use std::path::Path;

use alloy_primitives::U256;
use mandate_chain::approval::OwnerKey;
use mandate_core::{ErrorCode, WalletId};
use mandate_mpc::net::Refusal;
use serde::{Deserialize, Deserializer, Serialize};

/// Limits of one wallet (or the default for wallets without their own entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletLimits {
    /// Largest worst-case cost (value + gas × max fee) of one transaction, in wei.
    #[serde(deserialize_with = "wei", serialize_with = "wei_out")]
    pub per_tx_max: U256,
    /// Largest total worst-case cost signed per UTC day, in wei.
    #[serde(deserialize_with = "wei", serialize_with = "wei_out")]
    pub daily_max: U256,
    /// Refuse everything for this wallet.
    #[serde(default)]
    pub frozen: bool,
    /// Allow transactions with calldata (contract calls), whose token movements the
    /// cosigner cannot value yet. Off by default.
    #[serde(default)]
    pub allow_calldata: bool,
    /// Allow EIP-712 typed-data signatures. The cosigner cannot value them (a
    /// `Permit` moves tokens without a transaction), so they cost nothing against the
    /// limits. Off by default.
    #[serde(default)]
    pub allow_typed_data: bool,
    /// Allow EIP-191 `personal_sign` messages (cost nothing against the limits). Off
    /// by default.
    #[serde(default)]
    pub allow_messages: bool,
    /// Allow signing a bare 32-byte hash. The cosigner cannot tell what it is: it may
    /// be the signing hash of a transaction, which would then bypass every limit
    /// here. Off by default; leave it off unless the wallet signs nothing of value.
    #[serde(default)]
    pub allow_raw_hash: bool,
    /// A transaction whose worst-case cost is above this (wei) is signed only with
    /// an approval signed by one of `owners`, verified here. Unset: no such check.
    #[serde(default, deserialize_with = "wei_opt", serialize_with = "wei_opt_out")]
    pub approval_above: Option<U256>,
    /// Like `approval_above`, for the transaction's cost plus what this cosigner
    /// signed for the wallet on the same chain in the last 24 hours: splitting a
    /// payment does not dodge the owner. Unset: no such check.
    #[serde(default, deserialize_with = "wei_opt", serialize_with = "wei_opt_out")]
    pub approval_above_24h: Option<U256>,
    /// The wallet's owners as this host knows them (`ed25519:<hex>`, `evm:0x…`):
    /// who may approve above `approval_above`, lift a freeze the daemon sent, and
    /// authorise a repair, refresh or recovery signing.
    #[serde(default)]
    pub owners: Vec<OwnerKey>,
    /// How many distinct `owners` must sign an approval or an unfreeze (an owner
    /// quorum, M of N), counted here from this list. Default 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub owner_threshold: u64,
    /// The chain ids this wallet may sign transactions for. Unset: any chain. The
    /// daily maximum is counted per chain.
    #[serde(default)]
    pub chains: Option<Vec<u64>>,
    /// Allow x402 payments: EIP-3009 `TransferWithAuthorization` signatures, decoded
    /// here (each authorization once, valid at most an hour, on an allowed chain).
    /// Off by default.
    #[serde(default)]
    pub allow_x402: bool,
    /// The largest x402 payment, in the token's base units. Unset: no such check.
    #[serde(default, deserialize_with = "wei_opt", serialize_with = "wei_opt_out")]
    pub x402_max_base: Option<U256>,
    /// The most the wallet's x402 payments may total in one token on one chain over
    /// any 24 hours, in the token's base units (counted in the ledger, committed at the
    /// signing point of no return like a transaction's cost). Required for x402: unset,
    /// every x402 payment is refused.
    #[serde(default, deserialize_with = "wei_opt", serialize_with = "wei_opt_out")]
    pub x402_daily_max_base: Option<U256>,
}

fn one() -> u64 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(value: &u64) -> bool {
    *value == 1
}

fn wei<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
    let text = String::deserialize(deserializer)?;
    mandate_core::amount::parse_base_units(&text).map_err(serde::de::Error::custom)
}

fn wei_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<U256>, D::Error> {
    wei(deserializer).map(Some)
}

fn wei_opt_out<S: serde::Serializer>(value: &Option<U256>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_str(&value.to_string()),
        None => serializer.serialize_none(),
    }
}

fn wei_out<S: serde::Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// The whole limits file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Refuse to sign anything at all.
    #[serde(default)]
    pub frozen: bool,
    /// Limits for wallets without their own entry. Without it such wallets are refused.
    #[serde(default)]
    pub default: Option<WalletLimits>,
    /// Per-wallet limits.
    #[serde(default)]
    pub wallets: BTreeMap<String, WalletLimits>,
    /// How long a freeze the daemon sent lasts at least before an owner's signed
    /// unfreeze may lift it, in seconds (default 600).
    #[serde(default = "default_cooldown")]
    pub freeze_cooldown_secs: u64,
}

fn default_cooldown() -> u64 {
    600
}

/// The file `cosigner init` writes: 1 ETH per transaction, 5 ETH per day.
pub const DEFAULT_LIMITS: &str = r#"# Mandate cosigner hard limits. Only this file sets them; no API call can.
# Amounts are decimal wei strings and count value + gas_limit * max_fee_per_gas.
frozen = false
# A freeze the daemon sends lasts at least this long before an owner's signed
# unfreeze may lift it here.
freeze_cooldown_secs = 600

[default]
per_tx_max = "1000000000000000000"
daily_max = "5000000000000000000"
frozen = false
allow_calldata = false
# Off-chain signatures, refused unless switched on. They move nothing by themselves,
# so they count 0 against the amounts above; but the cosigner cannot value them.
# allow_typed_data = false   # EIP-712 (a token Permit is an approval!)
# allow_messages = false     # EIP-191 personal_sign
# allow_raw_hash = false     # a bare hash: it could be a transaction's, bypassing these limits

# Owner approval, verified here: above approval_above (wei, worst-case cost) a
# transaction is signed only with an approval signed by one of the owners.
# approval_above = "500000000000000000"
# The same for the cost plus the wallet's last 24 hours on the chain (splitting does not dodge it):
# approval_above_24h = "2000000000000000000"
# owners = ["ed25519:<hex public key from mandate owner keygen>", "evm:0x..."]
# How many distinct owners above must sign the same approval or unfreeze (M of N):
# owner_threshold = 1

# x402 payments (EIP-3009 TransferWithAuthorization), off unless switched on; at most
# x402_max_base token base units each when set, and at most x402_daily_max_base in one
# token over any 24 hours (required: without it every x402 payment is refused).
# allow_x402 = false
# x402_max_base = "1000000"
# x402_daily_max_base = "10000000"

# Chains transactions may be signed for (the daily maximum counts per chain).
# Unset: any chain. Example: mainnet and Base only.
# chains = [1, 8453]

# [wallets.wal_example]
# per_tx_max = "500000000000000000"
# daily_max = "2000000000000000000"
"#;

impl LimitsFile {
    /// Reads and parses the file. Any failure refuses (fail closed).
    pub fn load(path: &Path) -> Result<Self, Refusal> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Refusal::new(ErrorCode::Internal, format!("cannot read limits file {}: {e}", path.display()))
        })?;
        toml::from_str(&text)
            .map_err(|e| Refusal::new(ErrorCode::Internal, format!("limits file {} is invalid: {e}", path.display())))
    }

    /// The limits entry of `wallet` (its own or the default), frozen or not.
    pub fn entry(&self, wallet: &WalletId) -> Option<&WalletLimits> {
        self.wallets.get(wallet.as_str()).or(self.default.as_ref())
    }

    /// The limits that apply to `wallet`, refusing when frozen or unconfigured.
    pub fn for_wallet(&self, wallet: &WalletId) -> Result<&WalletLimits, Refusal> {
        if self.frozen {
            return Err(Refusal::new(ErrorCode::CosignerFrozen, "the cosigner is frozen"));
        }
        let limits = self
            .wallets
            .get(wallet.as_str())
            .or(self.default.as_ref())
            .ok_or_else(|| Refusal::new(ErrorCode::CosignerNoLimits, format!("no cosigner limits for {wallet}")))?;
        if limits.frozen {
            return Err(Refusal::new(ErrorCode::CosignerFrozen, format!("{wallet} is frozen at the cosigner")));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_signs_unless_a_threshold_is_set_and_only_a_set_threshold_is_written() {
        let wallet = WalletId::from_random([1; 12]);
        let limits: LimitsFile = toml::from_str(DEFAULT_LIMITS).unwrap();
        let default = limits.for_wallet(&wallet).unwrap();
        assert_eq!(default.owner_threshold, 1);
        assert!(!toml::to_string(&default).unwrap().contains("owner_threshold"), "the default is not written");
        let two = WalletLimits { owner_threshold: 2, ..default.clone() };
        let text = toml::to_string(&two).unwrap();
        assert!(text.contains("owner_threshold = 2"), "{text}");
        assert_eq!(toml::from_str::<WalletLimits>(&text).unwrap(), two);
    }

    #[test]
    fn default_file_parses_and_bad_amounts_are_refused() {
        let limits: LimitsFile = toml::from_str(DEFAULT_LIMITS).unwrap();
        let wallet = WalletId::from_random([1; 12]);
        assert_eq!(limits.for_wallet(&wallet).unwrap().per_tx_max, U256::from(10u64).pow(U256::from(18u64)));
        for bad in ["\"1e18\"", "\"-1\"", "\"0x10\"", "\"\"", "1000"] {
            let text = format!("[default]\nper_tx_max = {bad}\ndaily_max = \"1\"\n");
            assert!(toml::from_str::<LimitsFile>(&text).is_err(), "{bad} accepted");
        }
        assert!(toml::from_str::<LimitsFile>("unknown = 1\n").is_err());
    }

    #[test]
    fn off_chain_switches_default_off_and_the_documented_lines_parse() {
        let wallet = WalletId::from_random([1; 12]);
        let limits: LimitsFile = toml::from_str(DEFAULT_LIMITS).unwrap();
        let default = limits.for_wallet(&wallet).unwrap();
        assert!(!default.allow_typed_data && !default.allow_messages && !default.allow_raw_hash);
        let switched = DEFAULT_LIMITS
            .replace("# allow_typed_data = false", "allow_typed_data = true")
            .replace("# allow_messages = false", "allow_messages = true")
            .replace("# allow_raw_hash = false", "allow_raw_hash = true");
        assert_ne!(switched, DEFAULT_LIMITS);
        let limits: LimitsFile = toml::from_str(&switched).unwrap();
        let on = limits.for_wallet(&wallet).unwrap();
        assert!(on.allow_typed_data && on.allow_messages && on.allow_raw_hash);
    }

    #[test]
    fn the_documented_chains_line_parses() {
        let wallet = WalletId::from_random([1; 12]);
        let limits: LimitsFile = toml::from_str(DEFAULT_LIMITS).unwrap();
        assert_eq!(limits.for_wallet(&wallet).unwrap().chains, None);
        let text = DEFAULT_LIMITS.replace("# chains = [1, 8453]", "chains = [1, 8453]");
        let limits: LimitsFile = toml::from_str(&text).unwrap();
        assert_eq!(limits.for_wallet(&wallet).unwrap().chains, Some(vec![1, 8453]));
    }

    #[test]
    fn a_daemon_freeze_lasts_ten_minutes_unless_the_file_says_otherwise() {
        let empty: LimitsFile = toml::from_str("").unwrap();
        assert_eq!(empty.freeze_cooldown_secs, 600);
        let limits: LimitsFile = toml::from_str(DEFAULT_LIMITS).unwrap();
        assert_eq!(limits.freeze_cooldown_secs, 600);
        let custom: LimitsFile = toml::from_str("freeze_cooldown_secs = 30\n").unwrap();
        assert_eq!(custom.freeze_cooldown_secs, 30);
    }

    #[test]
    fn frozen_and_missing_limits_refuse() {
        let wallet = WalletId::from_random([1; 12]);
        let mut limits: LimitsFile = toml::from_str(DEFAULT_LIMITS).unwrap();
        limits.frozen = true;
        assert_eq!(limits.for_wallet(&wallet).unwrap_err().code, ErrorCode::CosignerFrozen);
        let empty: LimitsFile = toml::from_str("").unwrap();
        assert_eq!(empty.for_wallet(&wallet).unwrap_err().code, ErrorCode::CosignerNoLimits);
    }
}
