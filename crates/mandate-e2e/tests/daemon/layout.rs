//! Where each party's secrets live (issue 13, item 3). In production the daemon, the
//! cosigner and the recovery party are provisioned in three places and share no file
//! and no secret: a copy of the daemon's directory holds one share per wallet and
//! cannot sign. `--dev` keeps one directory for one host, says so, and keeps the
//! daemon's secrets out of its cosigner's environment.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mandate_core::Role;
use mandate_mpc::net::PeerBook;
use mandate_test_support::{free_port, run_json, spawn_server, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{bin, code, eth, recipient, CosignerMode, Daemon, RECOVERY_PASSPHRASE};

/// Every file under `root`, as paths relative to it.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// The fingerprint operators compare, computed here from its definition: SHA-256 of
/// the key, first 16 bytes, four hex digits per group.
fn expected_fingerprint(key_hex: &str) -> String {
    let digest = Sha256::digest(hex::decode(key_hex).unwrap());
    digest[..16].chunks(2).map(hex::encode).collect::<Vec<_>>().join(" ")
}

fn ok(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let (success, out) = run_json(bin(), args, envs);
    assert!(success, "mandate {args:?}: {out}");
    out
}

fn unsigned_transfer(nonce: u64, wei: &str) -> String {
    let to = recipient().to_checksum(None);
    let built = ok(
        &["tx", "build", "--chain-id", "31337", "--nonce", &nonce.to_string(), "--to", &to, "--value-wei", wei],
        &[],
    );
    built["unsigned_tx"].as_str().unwrap().to_string()
}

fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}

/// A cosigner the attacker runs from `home`, opened with the password in `password_file`.
fn attacker_cosigner(home: &Path, password_file: &Path) -> (Server, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = spawn_server(
        bin(),
        &["cosigner", "serve", "--data-dir", home.to_str().unwrap(), "--listen", &addr],
        &[("MANDATE_COSIGNER_PASSWORD_FILE", password_file.to_str().unwrap())],
    );
    (server, addr)
}

/// `mandate service sign` from a copied service party, as the attacker would run it.
fn sign_from_copy(service_home: &Path, master_file: &Path, wallet: &str, tx: &str) -> (bool, Value) {
    run_json(
        bin(),
        &["service", "sign", "--data-dir", service_home.to_str().unwrap(), "--wallet", wallet, "--tx", tx],
        &[("MANDATE_MASTER_PASSWORD_FILE", master_file.to_str().unwrap())],
    )
}

#[test]
fn production_layout_keeps_the_parties_apart_and_a_copy_of_the_daemon_directory_cannot_sign() {
    let mut daemon = Daemon::start(CosignerMode::External);
    let data = daemon.data();
    let provisioned = daemon.provisioned.as_ref().unwrap();
    let service_key = provisioned.inits[0]["parties"][0]["public_key"].as_str().unwrap().to_string();

    // Pairing exchanged public keys only; every pin shows the fingerprint that the
    // pinned party's own `init` printed, and that fingerprint is SHA-256(key)[..16].
    let mut own: Vec<(String, String, String)> = Vec::new();
    for init in &provisioned.inits {
        let parties = init.get("parties").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![init.clone()]);
        for party in parties {
            let key = party["public_key"].as_str().unwrap().to_string();
            assert_eq!(party["fingerprint"], expected_fingerprint(&key), "{party}");
            own.push((party["role"].as_str().unwrap().to_string(), key, party["fingerprint"].to_string()));
        }
    }
    assert_eq!(provisioned.inits[0]["layout"], "production");
    assert_eq!(provisioned.inits[0]["parties"].as_array().unwrap().len(), 1, "init made the service party only");
    for pair in &provisioned.pairs {
        let pinned = pair["pinned"].as_array().unwrap();
        assert_eq!(pinned.len(), 2, "{pair}");
        for party in pinned.iter().chain([&pair["party"]]) {
            let role = party["role"].as_str().unwrap();
            let (_, key, fingerprint) = own.iter().find(|(r, _, _)| r == role).unwrap();
            assert_eq!(
                (party["public_key"].as_str().unwrap(), party["fingerprint"].to_string()),
                (key.as_str(), fingerprint.clone())
            );
        }
    }

    // The daemon runs with the external cosigner; `wallet create` runs the DKG with the
    // recovery party's own directory; an agent's payment goes through.
    let (wallet, address) = daemon.wallet("apart", "2");
    daemon.set_policy(&wallet, json!([{"id": "per-tx", "type": "max_per_tx", "amount": "1"}]));
    let agent = daemon.session(&wallet, &["broadcast"]);
    let to = recipient();
    let (status, sent) = daemon.send(&agent, &wallet, to, "0.25");
    assert_eq!(status, 200, "{sent}");
    assert_eq!(daemon.wait_final(&agent, sent["id"].as_str().unwrap())["status"], "confirmed");
    assert_eq!(daemon.anvil.balance(to), eth("0.25"));
    assert!(daemon.cosigner_home().join("shares").join(format!("{wallet}.share")).exists());

    // Without --recovery-dir, `wallet create` looks in the data directory, finds no
    // recovery party there, and says where to point it (before any DKG or login).
    let out = daemon.dir.path().join("nowhere.recovery");
    let (created, reply) = run_json(
        bin(),
        &[
            "wallet",
            "create",
            "--name",
            "x",
            "--recovery-out",
            out.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("MANDATE_URL", &daemon.url), ("MANDATE_RECOVERY_PASSPHRASE", RECOVERY_PASSPHRASE)],
    );
    assert!(!created, "{reply}");
    assert_eq!(code(&reply), "INVALID_INPUT");
    assert!(reply["error"]["message"].as_str().unwrap().contains("--recovery-dir"), "{reply}");

    // The daemon's directory: no cosigner or recovery material, one share per wallet,
    // and that share is the service's.
    let inventory = files(&data);
    let names: Vec<String> = inventory.iter().map(|path| path.display().to_string()).collect();
    for name in &names {
        assert!(!name.contains("cosigner") && !name.starts_with("recovery"), "{name} in the daemon's directory");
    }
    let keys: Vec<&String> = names.iter().filter(|name| name.ends_with("identity.key")).collect();
    assert_eq!(keys, ["service/identity.key"]);
    let shares: Vec<&String> = names.iter().filter(|name| name.contains("shares/")).collect();
    assert_eq!(shares, [&format!("service/shares/{wallet}.share")]);
    let share_bytes = std::fs::read(data.join(shares[0])).unwrap();
    let header = mandate_mpc::blob::peek_header(&share_bytes).unwrap();
    assert_eq!((header.role_index, header.wallet_id.as_str()), (Role::Service.index(), wallet.as_str()));
    let peers = PeerBook::load(&data.join("service").join("peers.json")).unwrap();
    assert_eq!(peers.peers.keys().copied().collect::<Vec<_>>(), [Role::Cosigner, Role::Recovery]);
    // Nor any other party's secret, in any file.
    let cosigner_password = std::fs::read(daemon.dir.path().join("cosigner-password")).unwrap();
    for path in &inventory {
        let bytes = std::fs::read(data.join(path)).unwrap();
        for secret in [&cosigner_password[..], RECOVERY_PASSPHRASE.as_bytes()] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{} holds a secret", path.display());
        }
    }

    // The attacker holds a copy of the daemon's directory, master password included,
    // and nothing else: the real cosigner is out of reach.
    daemon.stop_cosigner();
    let attacker = tempfile::tempdir().unwrap();
    let stolen = attacker.path().join("data");
    cp_a(&data, &stolen);
    let master = stolen.join("master-password");
    assert!(!stolen.join("cosigner").exists() && !stolen.join("cosigner-password").exists());
    assert!(!stolen.join("recovery").exists());

    // Its strongest move: a cosigner of its own that holds the only share there is (the
    // service's, sealed with the master password it has), limits wide open, the copied
    // service party re-pinned to it, and a signature asked for.
    let rogue = attacker.path().join("rogue");
    let rogue_key = ok(&["cosigner", "init", "--data-dir", rogue.to_str().unwrap()], &[])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        rogue.join("limits.toml"),
        "frozen = false\n[default]\nper_tx_max = \"100000000000000000000\"\ndaily_max = \"100000000000000000000\"\n",
    )
    .unwrap();
    std::fs::create_dir(rogue.join("shares")).unwrap();
    cp_a(&stolen.join(shares[0]), &rogue.join("shares").join(format!("{wallet}.share")));
    let recovery_key = peers.get(Role::Recovery).unwrap().public_key.to_hex();
    ok(
        &[
            "cosigner",
            "pair",
            "--data-dir",
            rogue.to_str().unwrap(),
            "--service-pubkey",
            &service_key,
            "--recovery-pubkey",
            &recovery_key,
        ],
        &[],
    );
    let (_rogue_server, rogue_addr) = attacker_cosigner(&rogue, &master);
    ok(
        &[
            "pair",
            "--data-dir",
            stolen.to_str().unwrap(),
            "--cosigner-pubkey",
            &rogue_key,
            "--cosigner-addr",
            &rogue_addr,
            "--recovery-pubkey",
            &recovery_key,
        ],
        &[],
    );
    let tx = unsigned_transfer(1, "1000000000000000000");
    let (signed, reply) = sign_from_copy(&stolen.join("service"), &master, &wallet, &tx);
    assert!(!signed, "a copy of the daemon's directory signed: {reply}");
    assert_eq!(code(&reply), "SHARE_WRONG_CONTEXT", "{reply}");
    assert_eq!(daemon.anvil.nonce(address), 1, "only the agent's payment left the wallet");

    // The production directory is refused by `serve --dev`, and the --dev layout by a
    // production `serve`: neither mode runs on the other's directory.
    let serve = |data: &Path, dev: bool| {
        let mut args = vec!["serve", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0", "--rpc-url"];
        let rpc = daemon.anvil.url();
        args.push(&rpc);
        if dev {
            args.push("--dev");
        }
        let (started, reply) = run_json(bin(), &args, &[("MANDATE_MASTER_PASSWORD_FILE", master.to_str().unwrap())]);
        assert!(!started, "{reply}");
        (code(&reply).to_string(), reply["error"]["message"].as_str().unwrap().to_string())
    };
    let (refused, message) = serve(&stolen, true);
    assert_eq!(refused, "INVALID_INPUT");
    assert!(message.contains("init --dev"), "{message}");
    let unpaired = attacker.path().join("unpaired");
    ok(&["init", "--auto-provision", "--data-dir", unpaired.to_str().unwrap()], &[]);
    let (refused, message) = serve(&unpaired, false);
    assert_eq!(refused, "INVALID_INPUT");
    assert!(message.contains("not paired") && message.contains("mandate pair"), "{message}");
    let dev_dir = attacker.path().join("dev");
    ok(&["init", "--dev", "--auto-provision", "--data-dir", dev_dir.to_str().unwrap()], &[]);
    let (refused, message) = serve(&dev_dir, false);
    assert_eq!(refused, "INVALID_INPUT");
    assert!(message.contains("cosigner-password"), "{message}");
}

/// The daemon, started by hand so that its stderr is read and its environment chosen.
struct DevDaemon {
    child: std::process::Child,
    stderr: mpsc::Receiver<String>,
}

impl Drop for DevDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose parent is `parent`, with their command lines.
fn children_of(parent: u32) -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name (which is in parentheses): state, ppid, …
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == parent {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            found.push((pid, args));
        }
    }
    found
}

fn environ(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
}

#[test]
fn dev_layout_warns_scrubs_its_cosigners_environment_and_is_what_a_copy_signs_with() {
    let mut daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, address) = daemon.wallet("one-host", "1");
    assert!(daemon.terminate(), "the daemon stopped cleanly");
    std::thread::sleep(Duration::from_millis(300));

    // `serve --dev` by hand, with every secret of the daemon in its environment.
    let data = daemon.data();
    let master_file = daemon.master_file();
    let master = std::fs::read_to_string(&master_file).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let rpc = daemon.anvil.url();
    let mut child = Command::new(bin())
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", &listen, "--rpc-url", &rpc, "--dev"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MANDATE_MASTER_PASSWORD", master.trim())
        .env("MANDATE_MASTER_PASSWORD_FILE", &master_file)
        .env("MANDATE_RECOVERY_PASSPHRASE", RECOVERY_PASSPHRASE)
        .env("MANDATE_SESSION_TOKEN", "mnd_sess_not_for_the_cosigner")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = out_tx.send(line);
        }
        for _ in lines {}
    });
    let dev = DevDaemon { child, stderr: err_rx };
    let banner: Value = serde_json::from_str(&out_rx.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(banner["dev"], true, "{banner}");

    // It said, on stderr, before it listened, that this is the single-host layout.
    let warning: Vec<String> = dev.stderr.try_iter().collect();
    let warning = warning.join("\n");
    assert!(warning.contains("SINGLE-HOST DEVELOPMENT LAYOUT"), "{warning}");
    assert!(warning.contains("two shares"), "{warning}");

    // Its cosigner child: none of the daemon's secrets in its environment.
    let daemon_env = environ(dev.child.id());
    assert!(
        daemon_env.iter().any(|v| v.starts_with("MANDATE_MASTER_PASSWORD=")),
        "the test gave the daemon its secret"
    );
    let cosigners: Vec<(u32, Vec<String>)> =
        children_of(dev.child.id()).into_iter().filter(|(_, args)| args.iter().any(|a| a == "cosigner")).collect();
    assert_eq!(cosigners.len(), 1, "{cosigners:?}");
    let (cosigner_pid, args) = &cosigners[0];
    assert!(args.contains(&daemon.cosigner_addr().to_string()), "{args:?}");
    let child_env = environ(*cosigner_pid);
    assert!(child_env.iter().any(|v| v.starts_with("MANDATE_COSIGNER_PASSWORD_FILE=")), "{child_env:?}");
    for leaked in ["MANDATE_MASTER_PASSWORD", "MANDATE_RECOVERY_PASSPHRASE", "MANDATE_SESSION_TOKEN"] {
        assert!(!child_env.iter().any(|v| v.starts_with(leaked)), "{leaked} reached the cosigner: {child_env:?}");
    }
    assert!(!child_env.iter().any(|v| v.contains(master.trim())), "the master password reached the cosigner");
    drop(dev);

    // Why it is for one host only: the same attack that fails on a copy of a production
    // directory works on a copy of this one, which holds two shares.
    let attacker = tempfile::tempdir().unwrap();
    let stolen = attacker.path().join("data");
    cp_a(&data, &stolen);
    let (_cosigner, addr) = attacker_cosigner(&stolen.join("cosigner"), &stolen.join("cosigner-password"));
    let peers = PeerBook::load(&stolen.join("service").join("peers.json")).unwrap();
    ok(
        &[
            "service",
            "pair",
            "--data-dir",
            stolen.join("service").to_str().unwrap(),
            "--cosigner-pubkey",
            &peers.get(Role::Cosigner).unwrap().public_key.to_hex(),
            "--cosigner-addr",
            &addr,
            "--recovery-pubkey",
            &peers.get(Role::Recovery).unwrap().public_key.to_hex(),
        ],
        &[],
    );
    let (signed, reply) = sign_from_copy(
        &stolen.join("service"),
        &stolen.join("master-password"),
        &wallet,
        &unsigned_transfer(0, "1000"),
    );
    assert!(signed, "{reply}");
    assert_eq!(signer_of(&reply), address.to_checksum(None));
}

/// The address a signed raw transaction recovers to.
fn signer_of(signed: &Value) -> String {
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_eips::eip2718::Decodable2718;
    let raw = hex::decode(signed["raw_tx"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let envelope = alloy_consensus::TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
    envelope.recover_signer().unwrap().to_checksum(None)
}
