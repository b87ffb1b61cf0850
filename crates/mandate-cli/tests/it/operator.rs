//! The operator commands' checks that need no daemon: an unreachable daemon, a
//! missing master password, clap's own usage errors.

use std::process::Command;

use mandate_test_support::free_port;

use crate::{bin, error_code, mandate, SERVICE_ENV};

fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

#[test]
fn operator_commands_name_an_unreachable_daemon() {
    let url = closed_url();
    for args in [&["wallet", "list"][..], &["session", "list"], &["audit", "verify"]] {
        let (success, out) = mandate(args, &[("MANDATE_URL", &url), SERVICE_ENV]);
        assert!(!success, "{args:?}: {out}");
        assert_eq!(error_code(&out), "PEER_UNAVAILABLE", "{out}");
        assert_eq!(out["error"]["category"], "unavailable");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(message.contains(&url) && message.contains("mandate serve"), "{message}");
        assert!(!out.to_string().contains(SERVICE_ENV.1), "the password leaked: {out}");
    }
    // --url overrides MANDATE_URL, after the subcommand too.
    let other = closed_url();
    let (success, out) = mandate(&["wallet", "list", "--url", &other], &[("MANDATE_URL", &url), SERVICE_ENV]);
    assert!(!success);
    assert!(out["error"]["message"].as_str().unwrap().contains(&other), "{out}");
}

#[test]
fn operator_commands_need_the_master_password() {
    let (success, out) = mandate(&["wallet", "list"], &[("MANDATE_URL", &closed_url())]);
    assert!(!success, "{out}");
    assert_eq!(error_code(&out), "INVALID_INPUT", "{out}");
    assert!(out["error"]["message"].as_str().unwrap().contains("MANDATE_MASTER_PASSWORD"), "{out}");
}

#[test]
fn bad_input_is_refused_before_any_request() {
    let url = closed_url();
    let env = [("MANDATE_URL", url.as_str()), SERVICE_ENV];
    let (success, out) = mandate(&["wallet", "show", "../admin"], &env);
    assert!(!success);
    assert_eq!(error_code(&out), "INVALID_INPUT", "{out}");
    let (success, out) = mandate(&["session", "revoke", "ses_1/../x"], &env);
    assert!(!success);
    assert_eq!(error_code(&out), "INVALID_INPUT", "{out}");
    // Plain HTTP to another host would send the master password in clear.
    let (success, out) = mandate(&["wallet", "list", "--url", "http://192.0.2.1:3100"], &[SERVICE_ENV]);
    assert!(!success);
    assert_eq!(error_code(&out), "INSECURE_URL", "{out}");
    let (success, out) = mandate(&["policy", "set", "--wallet", "wal_abc", "--file", "/nonexistent/policy.json"], &env);
    assert!(!success);
    assert_eq!(error_code(&out), "INVALID_INPUT", "{out}");
}

#[test]
fn wallet_create_refuses_an_existing_share_file_and_a_missing_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("taken.share");
    std::fs::write(&existing, b"keep me").unwrap();
    let url = closed_url();
    let base = [("MANDATE_URL", url.as_str()), SERVICE_ENV, crate::RECOVERY_ENV];
    let (success, out) =
        mandate(&["wallet", "create", "--name", "ops", "--recovery-out", existing.to_str().unwrap()], &base);
    assert!(!success);
    assert_eq!(error_code(&out), "INVALID_INPUT", "{out}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let fresh = dir.path().join("fresh.share");
    let (success, out) = mandate(
        &["wallet", "create", "--name", "ops", "--recovery-out", fresh.to_str().unwrap()],
        &[("MANDATE_URL", url.as_str()), SERVICE_ENV],
    );
    assert!(!success);
    assert!(out["error"]["message"].as_str().unwrap().contains("MANDATE_RECOVERY_PASSPHRASE"), "{out}");
    assert!(!fresh.exists());
}

#[test]
fn session_create_without_ttl_is_a_usage_error() {
    let output = Command::new(bin())
        .args(["--json", "session", "create", "--wallet", "wal_abc"])
        .env_clear()
        .env("MANDATE_URL", closed_url())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(output.status.code(), Some(2), "clap's usage exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--ttl"), "{stderr}");
}

#[test]
fn a_weak_recovery_passphrase_is_refused_before_the_dkg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.share");
    let url = closed_url();
    let (success, value) = mandate(
        &["wallet", "create", "--name", "ops", "--recovery-out", out.to_str().unwrap()],
        &[("MANDATE_URL", url.as_str()), SERVICE_ENV, ("MANDATE_RECOVERY_PASSPHRASE", "a")],
    );
    assert!(!success);
    assert_eq!(error_code(&value), "INVALID_INPUT", "{value}");
    assert!(value["error"]["message"].as_str().unwrap().contains("too weak"), "{value}");
    assert!(!out.exists());
}

#[test]
fn a_missing_secret_file_is_named_as_bad_input() {
    let missing = "/nonexistent/mandate/agent.token";
    // `mandate mcp` keeps stdout for MCP: its error is a line on stderr.
    let output = Command::new(bin())
        .args(["mcp", "--band", "read"])
        .env_clear()
        .env("MANDATE_SESSION_TOKEN_FILE", missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error[INVALID_INPUT]"), "{stderr}");
    assert!(stderr.contains("MANDATE_SESSION_TOKEN_FILE") && stderr.contains(missing), "{stderr}");
    let (success, value) =
        mandate(&["wallet", "list"], &[("MANDATE_URL", &closed_url()), ("MANDATE_MASTER_PASSWORD_FILE", missing)]);
    assert!(!success);
    assert_eq!(error_code(&value), "INVALID_INPUT", "{value}");
}
