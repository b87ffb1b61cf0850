//! Session tokens: expiry, renewal limits, absolute lifetime, revocation, wallet
//! binding, scopes, and the wall between agents and admin endpoints.

use std::time::Duration;

use serde_json::json;

use mandate_test_support::run_json;

use crate::{bin, code, recipient, CosignerMode, Daemon};

#[test]
fn session_tokens_are_refused_when_expired_revoked_over_renewed_or_for_another_wallet() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("alpha", "0");
    let (other, _) = daemon.wallet("beta", "0");
    let get = |token: &str, path: &str| daemon.call("GET", path, Some(token), None);
    let wallet_path = format!("/v1/wallets/{wallet}");

    // No token, junk token.
    let (status, reply) = daemon.call("GET", &wallet_path, None, None);
    assert_eq!((status, code(&reply)), (401, "UNAUTHENTICATED"));
    let (status, reply) = get("mnd_sess_not-a-real-token", &wallet_path);
    assert_eq!((status, code(&reply)), (401, "UNAUTHENTICATED"));

    // Bound to one wallet.
    let agent = daemon.session(&wallet, &["read"]);
    assert_eq!(get(&agent, &wallet_path).0, 200);
    let (status, reply) = get(&agent, &format!("/v1/wallets/{other}"));
    assert_eq!((status, code(&reply)), (403, "WALLET_NOT_PERMITTED"));
    let (status, listed) = get(&agent, "/v1/wallets");
    assert_eq!(status, 200);
    assert_eq!(listed["wallets"].as_array().unwrap().len(), 1, "an agent sees only its wallet");

    // A read session cannot send.
    let (status, reply) = daemon.send(&agent, &wallet, recipient(), "0.1");
    assert_eq!((status, code(&reply)), (403, "SCOPE_MISSING"));

    // An agent token reaches no admin endpoint.
    let admin_calls = [
        ("GET", "/v1/sessions".to_string(), None),
        (
            "POST",
            "/v1/sessions".to_string(),
            Some(json!({"wallet_id": wallet, "ttl_secs": 60, "scopes": ["broadcast"]})),
        ),
        ("PUT", format!("/v1/wallets/{wallet}/policy"), Some(json!({"version": 1, "rules": []}))),
        ("POST", "/v1/wallets".to_string(), Some(json!({"name": "x", "wallet_id": wallet}))),
        ("GET", "/v1/audit/verify".to_string(), None),
        ("GET", "/v1/audit/tail".to_string(), None),
        ("POST", "/v1/sessions/ses_x/revoke".to_string(), None),
    ];
    for (method, path, body) in &admin_calls {
        let (status, reply) = daemon.call(method, path, Some(&agent), body.as_ref());
        assert_eq!((status, code(&reply)), (403, "ADMIN_REQUIRED"), "{method} {path}");
    }

    // Expiry.
    let short = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 1}))["token"].as_str().unwrap().to_string();
    assert_eq!(get(&short, &wallet_path).0, 200);
    std::thread::sleep(Duration::from_millis(2100));
    let (status, reply) = get(&short, &wallet_path);
    assert_eq!((status, code(&reply)), (401, "SESSION_EXPIRED"));

    // Renewal up to max_renewals, never past the absolute lifetime.
    let created = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 60, "max_renewals": 1,
                                             "absolute_lifetime_secs": 90}));
    let renewable = created["token"].as_str().unwrap().to_string();
    let absolute = created["session"]["absolute_expires_at"].as_u64().unwrap();
    let (status, renewed) = daemon.call("POST", "/v1/sessions/renew", Some(&renewable), None);
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["renewals"], 1);
    assert!(renewed["expires_at"].as_u64().unwrap() <= absolute);
    let (status, reply) = daemon.call("POST", "/v1/sessions/renew", Some(&renewable), None);
    assert_eq!((status, code(&reply)), (401, "SESSION_RENEWAL_EXHAUSTED"));
    let capped = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 60, "max_renewals": 5,
                                            "absolute_lifetime_secs": 61}));
    std::thread::sleep(Duration::from_millis(1100));
    let (status, renewed) = daemon.call("POST", "/v1/sessions/renew", Some(capped["token"].as_str().unwrap()), None);
    assert_eq!(status, 200);
    assert_eq!(
        renewed["expires_at"], capped["session"]["absolute_expires_at"],
        "renewal stops at the absolute lifetime"
    );

    // Revocation takes effect on the very next request (through the CLI).
    let doomed = daemon.session_with(json!({"wallet_id": wallet, "ttl_secs": 600}));
    let token = doomed["token"].as_str().unwrap();
    assert_eq!(get(token, &wallet_path).0, 200);
    let (ok, out) = daemon.cli(&["session", "revoke", doomed["session"]["id"].as_str().unwrap()]);
    assert!(ok, "{out}");
    let (status, reply) = get(token, &wallet_path);
    assert_eq!((status, code(&reply)), (401, "SESSION_REVOKED"));

    // Tokens are stored only as hashes.
    let db = std::fs::read(daemon.data().join("data.db")).unwrap();
    let wal = std::fs::read(daemon.data().join("data.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "a session token is stored in clear");
    }
    let (ok, sessions) = daemon.cli(&["session", "list", "--wallet", &wallet]);
    assert!(ok, "{sessions}");
    assert!(!sessions.to_string().contains("mnd_sess_"), "listing shows no tokens");
}

#[test]
fn the_master_password_guards_login_and_start_up() {
    use std::os::unix::fs::PermissionsExt;

    let daemon = Daemon::start(CosignerMode::Dev);
    let data = daemon.data();
    let data = data.to_str().unwrap();

    // A wrong password at login: refused and audited.
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "operator:not the password");
    let (status, reply) =
        daemon.call_with("POST", "/v1/admin/login", None, None, &[("Authorization", &format!("Basic {basic}"))]);
    assert_eq!((status, code(&reply)), (401, "INVALID_CREDENTIALS"));
    let (_, tail) = daemon.call("GET", "/v1/audit/tail?n=5", Some(&daemon.admin), None);
    assert!(tail.to_string().contains("admin.login_failed"), "{tail}");

    // The daemon refuses to start with a wrong password, a loose password file, or
    // plain HTTP to a remote node; `init` refuses to overwrite a data directory.
    let serve = |envs: &[(&str, &str)], rpc: &str| {
        let (ok, reply) =
            run_json(bin(), &["serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--rpc-url", rpc, "--dev"], envs);
        assert!(!ok, "serve started: {reply}");
        code(&reply).to_string()
    };
    let rpc = daemon.anvil.url();
    assert_eq!(serve(&[("MANDATE_MASTER_PASSWORD", "a wrong master password")], &rpc), "INVALID_CREDENTIALS");
    let master = daemon.master_file();
    assert_eq!(serve(&[("MANDATE_MASTER_PASSWORD_FILE", &master)], "http://node.example.com:8545"), "INSECURE_URL");
    let loose = daemon.dir.path().join("loose-password");
    std::fs::copy(&master, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(serve(&[("MANDATE_MASTER_PASSWORD_FILE", loose.to_str().unwrap())], &rpc), "INSECURE_FILE_PERMISSIONS");
    let (ok, reply) = run_json(bin(), &["init", "--auto-provision", "--data-dir", data], &[]);
    assert!(!ok, "init overwrote a data directory: {reply}");
}
