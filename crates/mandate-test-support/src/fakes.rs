//! Fakes of the daemon's ports (`mandate_server::Chain`, `mandate_server::Signer`) for
//! tests that drive `mandate_server::app` in process: no node, no cosigner.
//! Enabled by this crate's `fakes` feature.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use alloy_primitives::{keccak256, Address, B256, U256};
use mandate_chain::contracts::{RoundData, Simulation};
use mandate_chain::rpc::{Fees, Receipt};
use mandate_chain::ChainError;
use mandate_core::{ErrorCode, WalletId};
use mandate_mpc::net::Operation;
use mandate_mpc::EcdsaSig;
use mandate_server::{ApiError, ApiResult, AppConfig, Chain, ChainFuture, SignFailure, Signer};

/// The chain id the fake node serves.
pub const CHAIN_ID: u64 = 31337;

/// The daemon's settings for an app under test: 10-minute approvals and freeze
/// cool-down, answering on 127.0.0.1 only.
pub fn loopback_config() -> AppConfig {
    AppConfig {
        approval_ttl_secs: 600,
        freeze_cooldown_secs: 600,
        listen_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        allowed_hosts: Vec::new(),
    }
}

/// What the fake node does when a transaction is broadcast.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    Accept,
    /// The node times out: the outcome is unknown.
    TimeOut,
}

/// A node that answers from memory: a funded balance, nonce 0, fixed fees, every
/// call simulated as a success; it records what is broadcast.
pub struct FakeChain {
    /// What a broadcast does.
    pub broadcast: Mutex<Broadcast>,
    /// Every raw transaction broadcast, in order.
    pub sent: Mutex<Vec<Vec<u8>>>,
    /// The genesis hash it reports (change it to play a restarted chain).
    pub genesis: Mutex<B256>,
}

impl FakeChain {
    /// A node that accepts every broadcast.
    pub fn new() -> FakeChain {
        FakeChain {
            broadcast: Mutex::new(Broadcast::Accept),
            sent: Mutex::new(Vec::new()),
            genesis: Mutex::new(B256::repeat_byte(0x01)),
        }
    }
}

impl Default for FakeChain {
    fn default() -> Self {
        FakeChain::new()
    }
}

pub fn ready<'a, T: Send + 'a>(value: mandate_chain::Result<T>) -> ChainFuture<'a, T> {
    Box::pin(async move { value })
}

impl Chain for FakeChain {
    fn chain_id(&self) -> ChainFuture<'_, u64> {
        ready(Ok(CHAIN_ID))
    }
    fn genesis_hash(&self) -> ChainFuture<'_, B256> {
        ready(Ok(*self.genesis.lock().unwrap()))
    }
    fn balance(&self, _: Address) -> ChainFuture<'_, U256> {
        ready(Ok(U256::from(10u64).pow(U256::from(20u64))))
    }
    fn pending_nonce(&self, _: Address) -> ChainFuture<'_, u64> {
        ready(Ok(0))
    }
    fn estimate_gas<'a>(&'a self, _: Address, _: Address, _: U256, _: &'a [u8]) -> ChainFuture<'a, u64> {
        ready(Ok(21_000))
    }
    fn fees(&self) -> ChainFuture<'_, Fees> {
        ready(Ok(Fees {
            base_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 3_000_000_000,
        }))
    }
    fn send_raw_transaction<'a>(&'a self, raw: &'a [u8]) -> ChainFuture<'a, B256> {
        self.sent.lock().unwrap().push(raw.to_vec());
        match *self.broadcast.lock().unwrap() {
            Broadcast::Accept => ready(Ok(keccak256(raw))),
            Broadcast::TimeOut => ready(Err(ChainError::Unavailable("timed out".into()))),
        }
    }
    fn receipt(&self, _: B256) -> ChainFuture<'_, Option<Receipt>> {
        ready(Ok(None))
    }
    fn knows_transaction(&self, _: B256) -> ChainFuture<'_, bool> {
        ready(Ok(false))
    }
    fn erc20_decimals(&self, token: Address) -> ChainFuture<'_, u8> {
        ready(Err(ChainError::NotAToken(token.to_string())))
    }
    fn erc20_symbol(&self, token: Address) -> ChainFuture<'_, String> {
        ready(Err(ChainError::NotAToken(token.to_string())))
    }
    fn erc20_balance(&self, token: Address, _: Address) -> ChainFuture<'_, U256> {
        ready(Err(ChainError::NotAToken(token.to_string())))
    }
    fn latest_round(&self, aggregator: Address) -> ChainFuture<'_, RoundData> {
        ready(Err(ChainError::BadPriceFeed(aggregator.to_string())))
    }
    fn simulate<'a>(&'a self, _: Address, _: Address, _: U256, _: &'a [u8]) -> ChainFuture<'a, Simulation> {
        ready(Ok(Simulation::Success(Vec::new())))
    }
}

/// How the fake signer behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Sign,
    /// The cosigner refuses before any message.
    RefuseBeforeCommit,
    /// The run breaks after the point of no return.
    BreakAfterCommit,
}

/// One k256 key standing in for the two threshold parties.
pub struct FakeSigner {
    /// The key (the wallet's address is its address).
    pub key: k256::ecdsa::SigningKey,
    /// How the next runs behave.
    pub mode: Mutex<Signing>,
    /// Signing runs so far.
    pub runs: AtomicUsize,
}

impl FakeSigner {
    /// A signer with a fresh random key that signs.
    pub fn new() -> FakeSigner {
        FakeSigner {
            key: k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
            mode: Mutex::new(Signing::Sign),
            runs: AtomicUsize::new(0),
        }
    }
}

impl Default for FakeSigner {
    fn default() -> Self {
        FakeSigner::new()
    }
}

impl Signer for FakeSigner {
    fn sign(
        &self,
        _: &mandate_server::KeyRef,
        _: Vec<u8>,
        digest: [u8; 32],
        _: Option<Vec<u8>>,
        _: Option<Vec<u8>>,
        commit: &mut dyn FnMut() -> ApiResult<()>,
    ) -> Result<EcdsaSig, SignFailure> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match *self.mode.lock().unwrap() {
            Signing::RefuseBeforeCommit => {
                return Err(SignFailure {
                    error: ApiError::new(ErrorCode::CosignerPerTxLimit, "above the cosigner's per-transaction maximum"),
                    committed: false,
                })
            }
            Signing::BreakAfterCommit => {
                commit().map_err(|error| SignFailure { error, committed: false })?;
                return Err(SignFailure {
                    error: ApiError::new(ErrorCode::PeerUnavailable, "the cosigner hung up after round 3"),
                    committed: true,
                });
            }
            Signing::Sign => {}
        }
        commit().map_err(|error| SignFailure { error, committed: false })?;
        let (sig, recovery) = self.key.sign_prehash_recoverable(&digest).unwrap();
        let sig = sig.normalize_s().unwrap_or(sig);
        let recovery = k256::ecdsa::RecoveryId::trial_recovery_from_prehash(self.key.verifying_key(), &digest, &sig)
            .unwrap_or(recovery);
        Ok(EcdsaSig { r: sig.r().to_bytes().into(), s: sig.s().to_bytes().into(), recovery_id: recovery.to_byte() })
    }

    fn notify(&self, _: &WalletId, _: Operation) -> ApiResult<()> {
        Ok(())
    }

    fn address(&self, _: &WalletId) -> ApiResult<String> {
        Ok(Address::from_public_key(self.key.verifying_key()).to_checksum(None))
    }

    /// The fake has one key: a child's address is derived by hashing, for listing
    /// only (it cannot sign for it).
    fn child_address(&self, wallet: &WalletId, child: u32) -> ApiResult<String> {
        let seed = format!("{}/{child}", self.address(wallet)?);
        Ok(Address::from_slice(&keccak256(seed.as_bytes())[12..]).to_checksum(None))
    }
}
