//! A new user's first run, as README "Using it" walks it on a dev chain: the same CLI
//! calls in the same order (wallet create with a real passphrase file, `dev fund`,
//! the README's policy, a session, a 1 ETH send the policy allows, balance, audit
//! tail), then what used to trip people: a login per command, JSON in text mode,
//! `policy test` exiting 0 on a denial, and a restarted anvil under an old data
//! directory.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use mandate_test_support::{run_json, Anvil};
use serde_json::{json, Value};

use crate::{bin, code, recipient, CosignerMode, Daemon};

/// The README's example policy, as in its walk-through.
const README_POLICY: &str = r#"{"version": 1, "rules": [
  {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
  {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "2"}
]}"#;

struct Shell {
    env: Vec<(String, String)>,
}

impl Shell {
    fn json(&self, args: &[&str]) -> Value {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (ok, out) = run_json(bin(), args, &env);
        assert!(ok, "mandate {args:?}: {out}");
        out
    }

    /// `mandate args` in text mode: (exit code, stdout).
    fn text(&self, args: &[&str]) -> (i32, String) {
        let mut command = Command::new(bin());
        command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

fn logins(daemon: &Daemon) -> usize {
    let (status, tail) = daemon.call("GET", "/v1/audit/tail?n=500", Some(&daemon.admin), None);
    assert_eq!(status, 200, "{tail}");
    tail["records"].as_array().unwrap().iter().filter(|r| r["event"] == "admin.login").count()
}

#[test]
fn the_readme_walk_through_runs_end_to_end_on_a_dev_chain() {
    let mut daemon = Daemon::start(CosignerMode::Dev);
    let home = daemon.dir.path();
    // README: a passphrase file for the recovery share (two kinds of characters, 0600).
    let passphrase = home.join("ops.passphrase");
    std::fs::write(&passphrase, format!("{}\n", hex::encode(rand::random::<[u8; 18]>()))).unwrap();
    std::fs::set_permissions(&passphrase, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = home.join("config");
    let shell = Shell {
        env: vec![
            ("MANDATE_URL".into(), daemon.url.clone()),
            ("MANDATE_MASTER_PASSWORD_FILE".into(), daemon.master_file()),
            ("MANDATE_RECOVERY_DIR".into(), daemon.recovery_dir().display().to_string()),
            ("MANDATE_RECOVERY_PASSPHRASE_FILE".into(), passphrase.display().to_string()),
            ("MANDATE_CONFIG_DIR".into(), config.display().to_string()),
        ],
    };
    let logins_before = logins(&daemon);

    let share = home.join("ops.recovery");
    let wallet = shell.json(&["wallet", "create", "--name", "ops", "--recovery-out", share.to_str().unwrap()]);
    let id = wallet["id"].as_str().unwrap().to_string();
    let funded = shell.json(&["dev", "fund", "--wallet", &id, "--amount", "5"]);
    assert_eq!((funded["balance"].as_str(), funded["method"].as_str()), (Some("5"), Some("anvil_setBalance")));
    let policy = home.join("policy.json");
    std::fs::write(&policy, README_POLICY).unwrap();
    shell.json(&["policy", "set", "--wallet", &id, "--file", policy.to_str().unwrap()]);
    let session = shell.json(&["session", "create", "--wallet", &id, "--ttl", "3600", "--scope", "broadcast"]);
    let token = session["token"].as_str().unwrap().to_string();

    // The agent sends the policy's whole per-transaction cap: the dev cosigner agrees.
    let to = recipient().to_checksum(None);
    let (status, sent) = daemon.call_with(
        "POST",
        &format!("/v1/wallets/{id}/transactions"),
        Some(&token),
        Some(json!({"to": to, "amount": "1"}).to_string().into_bytes()),
        &[("idempotency-key", "order-42")],
    );
    assert_eq!(status, 200, "{sent}");
    assert_eq!((sent["value"].as_str(), sent["value_wei"].as_str()), (Some("1"), Some("1000000000000000000")));
    assert_eq!((sent["symbol"].as_str(), sent["decimals"].as_u64()), (Some("ETH"), Some(18)));
    daemon.wait_final(&token, sent["id"].as_str().unwrap());
    let balance = shell.json(&["wallet", "balance", &id]);
    assert!(balance["balance"].as_str().unwrap().starts_with("3.99"), "5 − 1 − gas: {balance}");

    // `policy test` exits 3 on a denial, 0 when allowed.
    let action = home.join("action.json");
    std::fs::write(&action, json!({"type": "transfer", "to": to, "amount": "1.5"}).to_string()).unwrap();
    let (exit, text) = shell.text(&["policy", "test", "--wallet", &id, "--file", action.to_str().unwrap()]);
    assert_eq!(exit, 3, "a denial exits 3: {text}");
    assert!(text.contains("verdict: deny"), "{text}");
    std::fs::write(&action, json!({"type": "transfer", "to": to, "amount": "0.5"}).to_string()).unwrap();
    assert_eq!(shell.text(&["policy", "test", "--wallet", &id, "--file", action.to_str().unwrap()]).0, 0);

    // Text mode prints lines, not raw JSON.
    let (exit, tail) = shell.text(&["audit", "tail", "-n", "5"]);
    assert_eq!(exit, 0);
    assert!(tail.lines().all(|line| line.starts_with('#') && !line.contains("\"prev_hash\"")), "{tail}");
    let (exit, pending) = shell.text(&["pending"]);
    assert_eq!((exit, pending.trim()), (0, "nothing is held"));

    // Nine commands, one login: the token is kept in a 0600 file and never printed.
    assert_eq!(logins(&daemon) - logins_before, 1, "the CLI logged in once");
    let cached: Vec<_> = std::fs::read_dir(&config).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(std::fs::metadata(&cached[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let cached_token: Value = serde_json::from_slice(&std::fs::read(&cached[0]).unwrap()).unwrap();
    let cached_token = cached_token["token"].as_str().unwrap();
    assert!(!tail.contains(cached_token) && !text.contains(cached_token) && !pending.contains(cached_token));
    // A daemon that no longer knows the token (restarted: tokens live in memory) is
    // logged in to again, once.
    daemon.restart();
    let before = logins(&daemon);
    shell.json(&["wallet", "list"]);
    shell.json(&["wallet", "list"]);
    assert_eq!(logins(&daemon) - before, 1, "a refused cached token is replaced once");

    // A replay of the first send answers what it got.
    let (status, again) = daemon.call_with(
        "POST",
        &format!("/v1/wallets/{id}/transactions"),
        Some(&token),
        Some(json!({"to": to, "amount": "1"}).to_string().into_bytes()),
        &[("idempotency-key", "order-42")],
    );
    assert_eq!((status, again["id"].clone()), (200, sent["id"].clone()), "{again}");
    let (status, over) = daemon.call_with(
        "POST",
        &format!("/v1/wallets/{id}/transactions"),
        Some(&token),
        Some(json!({"to": to, "amount": "1.5"}).to_string().into_bytes()),
        &[("idempotency-key", "order-43")],
    );
    assert_eq!((status, code(&over)), (403, "POLICY_DENIED"), "{over}");

    // anvil restarted under the old data directory: serve names the wallet and the fix.
    daemon.server = None;
    daemon.anvil = Anvil::start();
    daemon.rpc_url = daemon.anvil.url();
    let data = daemon.data();
    let mut serve = Command::new(bin())
        .args(["serve", "--dev", "--data-dir", data.to_str().unwrap(), "--listen", &daemon.listen])
        .args(["--rpc-url", &daemon.rpc_url])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MANDATE_MASTER_PASSWORD_FILE", daemon.master_file())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(serve.stdout.take().unwrap()).read_line(&mut banner).unwrap();
    assert!(banner.contains("listening"), "{banner}");
    let _ = serve.kill();
    let _ = serve.wait();
    let mut stderr = String::new();
    serve.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains(&id) && stderr.contains("restarted dev chain"), "{stderr}");
    assert!(stderr.contains(&format!("mv {}", data.display())), "the fix is named: {stderr}");
}

#[test]
fn dev_sh_names_a_port_in_use() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dev.sh");
    let output = Command::new("bash").arg(script).env("MANDATE_LISTEN", &listen).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{listen} is already in use")) && stderr.contains("MANDATE_LISTEN"), "{stderr}");
}
