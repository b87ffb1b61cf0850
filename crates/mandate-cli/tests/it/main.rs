//! End-to-end tests of the parties as separate OS processes over loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

mod adversarial;
mod operator;
mod parties;

use std::path::{Path, PathBuf};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use mandate_test_support::{free_port, run_json, spawn_server, Server};
use serde_json::Value;
use tempfile::TempDir;

pub(crate) const COSIGNER_ENV: (&str, &str) = ("MANDATE_COSIGNER_PASSWORD", "cosigner secret for tests");
pub(crate) const SERVICE_ENV: (&str, &str) = ("MANDATE_MASTER_PASSWORD", "master password for tests");
pub(crate) const RECOVERY_ENV: (&str, &str) = ("MANDATE_RECOVERY_PASSPHRASE", "recovery passphrase for tests");

pub(crate) fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mandate"))
}

/// Runs `mandate --json args` and returns (success, output).
pub(crate) fn mandate(args: &[&str], envs: &[(&str, &str)]) -> (bool, Value) {
    run_json(bin(), args, envs)
}

pub(crate) fn ok(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let (success, value) = mandate(args, envs);
    assert!(success, "mandate {args:?} failed: {value}");
    value
}

pub(crate) fn error_code(value: &Value) -> &str {
    value["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {value}"))
}

/// Three parties in three data directories; cosigner and service listen in their own
/// processes, the recovery party runs as one-shot CLI processes.
pub(crate) struct Cluster {
    pub(crate) dir: TempDir,
    pub(crate) cosigner_addr: String,
    pub(crate) service_addr: String,
    pub(crate) keys: [String; 3],
    pub(crate) cosigner: Option<Server>,
    pub(crate) service: Option<Server>,
}

impl Cluster {
    pub(crate) fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster {
            cosigner_addr: format!("127.0.0.1:{}", free_port()),
            service_addr: format!("127.0.0.1:{}", free_port()),
            keys: Default::default(),
            cosigner: None,
            service: None,
            dir,
        };
        let service = ok(&["service", "init", "--data-dir", &cluster.path("service")], &[]);
        let cosigner = ok(&["cosigner", "init", "--data-dir", &cluster.path("cosigner")], &[]);
        let recovery = ok(&["recovery", "init", "--dir", &cluster.path("recovery")], &[]);
        cluster.keys = [service, cosigner, recovery].map(|v| v["public_key"].as_str().unwrap().to_string());
        let [s, c, r] = cluster.keys.clone();
        ok(
            &[
                "cosigner",
                "pair",
                "--data-dir",
                &cluster.path("cosigner"),
                "--service-pubkey",
                &s,
                "--recovery-pubkey",
                &r,
            ],
            &[],
        );
        cluster.pair_service(&c, &cluster.cosigner_addr.clone());
        ok(
            &[
                "recovery",
                "pair",
                "--dir",
                &cluster.path("recovery"),
                "--service-pubkey",
                &s,
                "--service-addr",
                &cluster.service_addr,
                "--cosigner-pubkey",
                &c,
                "--cosigner-addr",
                &cluster.cosigner_addr,
            ],
            &[],
        );
        // The wallet owner, known to the service and the cosigner on their own hosts:
        // every ceremony the recovery party coordinates needs its signature.
        let owner = ok(&["owner", "keygen", "--out", &cluster.owner_key()], &[]);
        let owner = owner["owner_key"].as_str().unwrap().to_string();
        std::fs::write(cluster.path("service/owners.toml"), format!("owners = [\"{owner}\"]\n")).unwrap();
        let limits_path = cluster.path("cosigner/limits.toml");
        let limits = std::fs::read_to_string(&limits_path).unwrap();
        let limits =
            limits.replace("allow_calldata = false\n", &format!("allow_calldata = false\nowners = [\"{owner}\"]\n"));
        std::fs::write(&limits_path, limits).unwrap();
        cluster.start_cosigner();
        cluster.service = Some(spawn_server(
            bin(),
            &["service", "serve", "--data-dir", &cluster.path("service"), "--listen", &cluster.service_addr],
            &[SERVICE_ENV],
        ));
        cluster
    }

    pub(crate) fn pair_service(&self, cosigner_key: &str, cosigner_addr: &str) {
        let r = self.keys[2].clone();
        ok(
            &[
                "service",
                "pair",
                "--data-dir",
                &self.path("service"),
                "--cosigner-pubkey",
                cosigner_key,
                "--cosigner-addr",
                cosigner_addr,
                "--recovery-pubkey",
                &r,
            ],
            &[],
        );
    }

    pub(crate) fn start_cosigner(&mut self) {
        self.cosigner = None;
        self.cosigner = Some(spawn_server(
            bin(),
            &["cosigner", "serve", "--data-dir", &self.path("cosigner"), "--listen", &self.cosigner_addr],
            &[COSIGNER_ENV],
        ));
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The wallet owner's key file (authorises ceremonies).
    pub(crate) fn owner_key(&self) -> String {
        self.path("owner.key")
    }

    pub(crate) fn recovery_share(&self) -> String {
        self.path("recovery.share")
    }

    /// Creates a wallet; returns (wallet id, address).
    pub(crate) fn create_wallet(&self) -> (String, String) {
        let out =
            ok(&["recovery", "dkg", "--dir", &self.path("recovery"), "--out", &self.recovery_share()], &[RECOVERY_ENV]);
        (out["wallet_id"].as_str().unwrap().to_string(), out["address"].as_str().unwrap().to_string())
    }

    pub(crate) fn service_sign(&self, wallet: &str, tx: &str) -> (bool, Value) {
        mandate(
            &["service", "sign", "--data-dir", &self.path("service"), "--wallet", wallet, "--tx", tx],
            &[SERVICE_ENV],
        )
    }

    pub(crate) fn recovery_sign(&self, share: &str, with: &str, tx: &str) -> (bool, Value) {
        mandate(
            &[
                "recovery",
                "sign",
                "--dir",
                &self.path("recovery"),
                "--share",
                share,
                "--owner-key",
                &self.owner_key(),
                "--with",
                with,
                "--tx",
                tx,
            ],
            &[RECOVERY_ENV],
        )
    }

    pub(crate) fn share_file(&self, party: &str, wallet: &str) -> PathBuf {
        self.dir.path().join(party).join("shares").join(format!("{wallet}.share"))
    }
}

/// An unsigned transfer of `value_wei` to a fixed recipient.
pub(crate) fn transfer(value_wei: &str, nonce: u64) -> String {
    let out = ok(
        &[
            "tx",
            "build",
            "--chain-id",
            "31337",
            "--nonce",
            &nonce.to_string(),
            "--to",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "--value-wei",
            value_wei,
        ],
        &[],
    );
    out["unsigned_tx"].as_str().unwrap().to_string()
}

/// Decodes a signed raw transaction and returns the address it recovers to.
pub(crate) fn signer_of(signed: &Value) -> String {
    let raw = hex::decode(signed["raw_tx"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
    envelope.recover_signer().unwrap().to_checksum(None)
}
