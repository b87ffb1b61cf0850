//! Attacks by someone who holds one party's files, run against a real daemon and a
//! real cosigner (separate processes). The test process is the attacker: it loads
//! the stolen files and speaks the party protocol itself, exactly as a real one
//! would, through the same library the parties use.
//!
//! 1. With the recovery identity key and `peers.json` alone (both in the `--dev`
//!    data directory), an attacker coordinates a repair of the recovery share and
//!    a recovery-coordinated signature: both are refused for want of an owner's
//!    authorization (also a forged one), and every refusal is in the daemon's audit
//!    trail. The owner's own authorization still works.
//! 2. A compromised daemon (service identity, service share, master password)
//!    withholds its own round-3 message, computes the signature from the
//!    cosigner's, and hangs up: the cosigner has committed the amount before
//!    sending its message, so its daily maximum holds.
//! 3. The same daemon signs x402 payments (EIP-3009 authorizations) with the
//!    cosigner, one after another, each within the per-payment maximum: the
//!    cosigner's daily total per token (`x402_daily_max_base`) stops them.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{keccak256, Address, U256};
use mandate_chain::approval::{CeremonyKind, OwnerCeremony, OwnerSecret, SignedCeremony};
use mandate_chain::UnsignedTx;
use mandate_core::{ErrorCode, Role, WalletId};
use mandate_cosigner::PartyHome;
use mandate_mpc::net::{coordinate, no_commit, propose, read_secret_file, Operation, RunPlan};
use mandate_mpc::{protocol, EcdsaSig, MpcError, Result as MpcResult, Transport};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::approvals::{add_owner, owner_key};
use crate::{eth, recipient, CosignerMode, Daemon};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The refusal code of a run the attacker coordinated.
fn refusal_code(outcome: MpcResult<mandate_mpc::net::RunOutput>) -> (Role, ErrorCode) {
    match outcome {
        Err(MpcError::Refused { party, code, .. }) => (party, code),
        Err(other) => panic!("expected a refusal, got {other} ({})", other.code()),
        Ok(_) => panic!("the run succeeded: the attack got through"),
    }
}

fn transfer(chain_id: u64, nonce: u64, to: Address, value: U256) -> UnsignedTx {
    UnsignedTx::new(chain_id, nonce, to, value, 21_000, 2_000_000_000, 1_000_000_000, vec![])
}

fn audit_events(daemon: &Daemon) -> Vec<Value> {
    let (status, tail) = daemon.call("GET", "/v1/audit/tail?n=200", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{tail}");
    tail["records"].as_array().unwrap().clone()
}

fn signed_ceremony(owner: &OwnerSecret, ceremony: OwnerCeremony) -> Vec<u8> {
    SignedCeremony { signature: owner.sign_ceremony(&ceremony).unwrap(), ceremony }.encode()
}

#[test]
fn the_recovery_identity_alone_neither_repairs_nor_signs() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("victim", "10");
    daemon.set_policy(&wallet, json!([{"id": "small", "type": "max_per_tx", "amount": "0.1"}]));
    let (_, owner_public, owner) = owner_key(&daemon, "owner");
    add_owner(&daemon, &wallet, &owner_public);
    let wallet_id: WalletId = wallet.parse().unwrap();
    let address_text = address.to_checksum(None);

    // What the attacker stole: the recovery party's identity key and pinned peers.
    let stolen = PartyHome::new(daemon.recovery_dir(), Role::Recovery);
    let (identity, peers) = (stolen.identity().unwrap(), stolen.peers().unwrap());

    // Step 1 of the attack: mint a fresh recovery share through a repair.
    let repair = || Operation::Repair { target: Role::Recovery, expected_address: address_text.clone() };
    let plan = RunPlan::new(wallet_id.clone(), Role::ALL.to_vec(), repair()).unwrap();
    let (party, code) = refusal_code(coordinate(&identity, &peers, &plan, None, None, &mut no_commit));
    assert_eq!((party, code), (Role::Cosigner, ErrorCode::CeremonyUnauthorized));

    // Step 2: a recovery-coordinated signature of 9 ETH with the service alone
    // (proposed to the service directly, as an attacker would).
    let chain_id = daemon.anvil.chain_id();
    let thief = recipient();
    let payload = transfer(chain_id, 0, thief, eth("9")).encode();
    let sign = || Operation::Sign { payload: payload.clone(), approval: None };
    let plan = RunPlan::new(wallet_id.clone(), vec![Role::Service, Role::Recovery], sign()).unwrap();
    let (party, code) = refusal_code(propose(&identity, &peers, &plan).map(|_| unreachable!()));
    assert_eq!((party, code), (Role::Service, ErrorCode::CeremonyUnauthorized));

    // With an authorization signed by a key of the attacker's own: refused.
    let forger = OwnerSecret::generate_ed25519();
    let ceremony = |kind, participants: Vec<Role>, target, payload| OwnerCeremony {
        kind,
        id: format!("cer_{}", hex::encode(rand::random::<[u8; 8]>())),
        wallet: wallet.clone(),
        address,
        participants,
        target,
        payload,
        expires_at: now() + 300,
    };
    let forged = ceremony(CeremonyKind::RecoverySign, plan.participants.clone(), None, Some(keccak256(&payload)));
    let forged_plan = RunPlan::new(wallet_id.clone(), vec![Role::Service, Role::Recovery], sign())
        .unwrap()
        .authorized(signed_ceremony(&forger, forged));
    let (party, code) = refusal_code(propose(&identity, &peers, &forged_plan).map(|_| unreachable!()));
    assert_eq!((party, code), (Role::Service, ErrorCode::CeremonyAuthorizationInvalid));

    // The owner's genuine authorization of a *small* payment does not cover the 9 ETH one.
    let small = transfer(chain_id, 0, thief, eth("0.01")).encode();
    let genuine = ceremony(CeremonyKind::RecoverySign, plan.participants.clone(), None, Some(keccak256(&small)));
    let swapped = RunPlan::new(wallet_id.clone(), vec![Role::Service, Role::Recovery], sign())
        .unwrap()
        .authorized(signed_ceremony(&owner, genuine));
    let (party, code) = refusal_code(propose(&identity, &peers, &swapped).map(|_| unreachable!()));
    assert_eq!((party, code), (Role::Service, ErrorCode::CeremonyAuthorizationInvalid));

    // An owner-authorised repair of *another* target does not cover the recovery share.
    let other = ceremony(CeremonyKind::Repair, Role::ALL.to_vec(), Some(Role::Service), None);
    let plan = RunPlan::new(wallet_id.clone(), Role::ALL.to_vec(), repair())
        .unwrap()
        .authorized(signed_ceremony(&owner, other));
    let (party, code) = refusal_code(coordinate(&identity, &peers, &plan, None, None, &mut no_commit));
    assert_eq!(code, ErrorCode::CeremonyAuthorizationInvalid, "refused by {party}");

    // Nothing moved, and every run the service party was asked to join is on record.
    assert_eq!(daemon.anvil.balance(thief), U256::ZERO);
    let refused: Vec<Value> =
        audit_events(&daemon).into_iter().filter(|record| record["event"] == "party.run_refused").collect();
    let codes: Vec<&str> = refused.iter().map(|r| r["details"]["code"].as_str().unwrap()).collect();
    assert!(
        codes.contains(&"CEREMONY_UNAUTHORIZED")
            && codes.iter().filter(|c| **c == "CEREMONY_AUTHORIZATION_INVALID").count() >= 2,
        "{refused:?}"
    );
    assert!(refused.iter().all(|r| r["actor"] == "party:recovery" && r["wallet"] == wallet.as_str()), "{refused:?}");
    let (ok, verified) = daemon.cli(&["audit", "verify"]);
    assert!(ok, "{verified}");

    // The owner's real recovery share still signs, with the owner's authorization
    // (the service checks the owners in the daemon's database).
    let owner_file = daemon.dir.path().join("owner.owner");
    let share = daemon.dir.path().join("victim.recovery");
    let tx = format!("0x{}", hex::encode(transfer(chain_id, 0, recipient(), eth("0.05")).encode()));
    let dir = daemon.recovery_dir();
    let (ok, signed) = daemon.cli(&[
        "recovery",
        "sign",
        "--dir",
        dir.to_str().unwrap(),
        "--share",
        share.to_str().unwrap(),
        "--owner-key",
        owner_file.to_str().unwrap(),
        "--with",
        "service",
        "--tx",
        &tx,
    ]);
    assert!(ok, "{signed}");
    assert_eq!(signed["address"], address_text.as_str());
    let accepted = audit_events(&daemon)
        .into_iter()
        .filter(|record| record["event"] == "party.run_completed" && record["details"]["operation"] == "sign")
        .count();
    assert_eq!(accepted, 1, "the recovery signing is on record");
}

/// A transport that never delivers this party's round-3 message to the cosigner.
struct Withholding<T> {
    inner: T,
    sent_to_cosigner: u32,
}

impl<T: Transport> Transport for Withholding<T> {
    fn send(&mut self, to: Role, bytes: Vec<u8>) -> MpcResult<()> {
        if to == Role::Cosigner {
            self.sent_to_cosigner += 1;
            if self.sent_to_cosigner == 3 {
                return Ok(());
            }
        }
        self.inner.send(to, bytes)
    }

    fn recv(&mut self, from: Role) -> MpcResult<Vec<u8>> {
        self.inner.recv(from)
    }
}

/// What the owner of the daemon host has: the service party's share of a wallet
/// (unsealed with the master password), its identity key and its pinned peers.
struct Stolen {
    share: std::sync::Arc<mandate_mpc::KeyShare>,
    identity: mandate_mpc::net::IdentityKey,
    peers: mandate_mpc::net::PeerBook,
}

impl Stolen {
    fn take(daemon: &Daemon, wallet: &WalletId) -> Stolen {
        let home = PartyHome::new(daemon.data().join("service"), Role::Service);
        let password = Zeroizing::new(read_secret_file(std::path::Path::new(&daemon.master_file())).unwrap());
        let password = Zeroizing::new(String::from_utf8(password.to_vec()).unwrap().trim().as_bytes().to_vec());
        let share = home.shares(password).unwrap().load(wallet).unwrap();
        Stolen { share, identity: home.identity().unwrap(), peers: home.peers().unwrap() }
    }

    /// Signs `payload` (whose digest is `digest`) with the cosigner as the daemon's
    /// service party, withholding its own round-3 message and hanging up after the
    /// signature: the cosigner's refusal of the proposal, if it refuses.
    fn sign_withholding(&self, wallet: &WalletId, payload: Vec<u8>, digest: [u8; 32]) -> MpcResult<EcdsaSig> {
        let operation = Operation::Sign { payload, approval: None };
        let plan = RunPlan::new(wallet.clone(), vec![Role::Service, Role::Cosigner], operation).unwrap();
        let transport = propose(&self.identity, &self.peers, &plan)?;
        let mut withholding = Withholding { inner: transport, sent_to_cosigner: 0 };
        let sig =
            protocol::sign(&mut withholding, &self.share, plan.session_id, &plan.participants, &digest, &mut no_commit)
                .expect("the signature is computed from the cosigner's round-3 message alone");
        assert_eq!(withholding.sent_to_cosigner, 3, "round 3 was withheld");
        Ok(sig) // dropping the transport hangs up: the cosigner sees a failed run
    }
}

#[test]
fn a_daemon_that_withholds_its_last_message_gets_no_more_than_the_cosigner_daily_maximum() {
    // The cosigner runs on its own (default limits: 1 ETH per transaction, 5 ETH per
    // 24 hours); the attacker owns the daemon host: its data directory and password.
    let daemon = Daemon::start(CosignerMode::External);
    let (wallet, address) = daemon.wallet("drained", "20");
    let wallet_id: WalletId = wallet.parse().unwrap();
    let stolen = Stolen::take(&daemon, &wallet_id);
    let chain_id = daemon.anvil.chain_id();
    let thief = recipient();

    let mut signatures = Vec::new();
    let mut refusal = None;
    for nonce in 0..12u64 {
        let tx = transfer(chain_id, nonce, thief, eth("0.9"));
        match stolen.sign_withholding(&wallet_id, tx.encode(), tx.signing_hash()) {
            Ok(sig) => signatures.push(tx.into_raw_signed(sig.r, sig.s, sig.recovery_id, address).unwrap()),
            Err(error) => {
                refusal = Some(error);
                break;
            }
        }
    }
    // 5 × (0.9 ETH + 21000 gas × 2 gwei) fits in 5 ETH; the sixth does not.
    assert_eq!(signatures.len(), 5, "the cosigner's daily maximum held against withheld messages");
    match refusal {
        Some(MpcError::Refused { party: Role::Cosigner, code: ErrorCode::CosignerDailyLimit, .. }) => {}
        other => panic!("expected COSIGNER_DAILY_LIMIT, got {other:?}"),
    }

    // The five signatures are real: they pay on chain; the cosigner's ledger holds
    // all five although every run "failed" from its side.
    for raw in &signatures {
        let hash = daemon.anvil.rpc("eth_sendRawTransaction", json!([format!("0x{}", hex::encode(raw))]));
        daemon.anvil.wait_for_receipt(hash.as_str().unwrap().parse().unwrap());
    }
    assert_eq!(daemon.anvil.balance(thief), eth("4.5"));
    // The commits are lines of its journal (a compaction would move them to ledger.json).
    let home = daemon.cosigner_home();
    let journal = std::fs::read_to_string(home.join("ledger.journal")).unwrap();
    let snapshot: usize = std::fs::read_to_string(home.join("ledger.json"))
        .ok()
        .map(|text| serde_json::from_str::<Value>(&text).unwrap())
        .and_then(|ledger| ledger["wallets"][&wallet][chain_id.to_string()].as_array().map(Vec::len))
        .unwrap_or(0);
    let journaled = journal
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["wallet"] == json!(wallet) && line["chain_id"] == json!(chain_id))
        .count();
    assert_eq!(snapshot + journaled, 5, "{journal}");
}

#[test]
fn a_daemon_that_signs_x402_payments_itself_gets_no_more_than_the_cosigner_daily_total() {
    // The cosigner signs x402 payments for this wallet: at most 1000 base units each
    // and 5000 over 24 hours. The attacker owns the daemon host and signs EIP-3009
    // authorizations directly with the cosigner, each within the per-payment maximum,
    // each with a fresh nonce, withholding its last message as above.
    let daemon = Daemon::start(CosignerMode::External);
    std::fs::write(
        daemon.cosigner_home().join("limits.toml"),
        "frozen = false\n[default]\nper_tx_max = \"1000000000000000000\"\ndaily_max = \"5000000000000000000\"\n\
         allow_x402 = true\nx402_max_base = \"1000\"\nx402_daily_max_base = \"5000\"\n",
    )
    .unwrap();
    let (wallet, address) = daemon.wallet("x402-drained", "1");
    let wallet_id: WalletId = wallet.parse().unwrap();
    let stolen = Stolen::take(&daemon, &wallet_id);
    let (chain_id, thief, token) = (daemon.anvil.chain_id(), recipient(), Address::repeat_byte(0x7a));

    // An EIP-3009 authorization of `value` base units with nonce `n`.
    let payment = |value: u64, n: u8| {
        let authorization = mandate_chain::x402::Authorization {
            from: address,
            to: thief,
            value: U256::from(value),
            valid_after: 0,
            valid_before: now() + 300,
            nonce: alloy_primitives::B256::repeat_byte(n),
        };
        let requirement = mandate_chain::x402::Requirement {
            chain_id,
            amount: authorization.value,
            asset: token,
            pay_to: thief,
            max_timeout_seconds: 300,
            token_name: "Test USD".into(),
            token_version: "1".into(),
            raw: Value::Null,
        };
        mandate_chain::SignPayload::TypedData(authorization.typed_data(&requirement).to_string())
    };
    let mut signed = 0;
    let mut refusal = None;
    for n in 1..=8u8 {
        let payload = payment(1000, n);
        match stolen.sign_withholding(&wallet_id, payload.encode(), payload.digest().unwrap()) {
            Ok(_) => signed += 1,
            Err(error) => {
                refusal = Some(error);
                break;
            }
        }
    }
    assert_eq!(signed, 5, "the cosigner's x402 daily total held against withheld messages");
    match refusal {
        Some(MpcError::Refused { party: Role::Cosigner, code: ErrorCode::CosignerDailyLimit, message, .. }) => {
            assert!(message.contains("x402"), "{message}");
        }
        other => panic!("expected COSIGNER_DAILY_LIMIT, got {other:?}"),
    }
    // The cosigner restarted from its files still counts the five: a sixth payment,
    // however small, is refused.
    let journal = std::fs::read_to_string(daemon.cosigner_home().join("ledger.journal")).unwrap();
    let lines = journal.lines().map(|line| serde_json::from_str::<Value>(line).unwrap());
    let paid = lines.filter(|line| line["wallet"] == json!(wallet) && line["token"].is_string()).count();
    assert_eq!(paid, 5, "{journal}");
    let mut daemon = daemon;
    daemon.stop_cosigner();
    daemon.start_cosigner();
    let one_more = payment(1, 99);
    match stolen.sign_withholding(&wallet_id, one_more.encode(), one_more.digest().unwrap()) {
        Err(MpcError::Refused { party: Role::Cosigner, code: ErrorCode::CosignerDailyLimit, .. }) => {}
        other => panic!("after a restart the cosigner signed again: {:?}", other.map(|_| "a signature")),
    }
}
