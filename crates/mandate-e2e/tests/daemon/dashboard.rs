//! The owner dashboard: sign-in, cookies, CSRF and escaping checked over plain
//! HTTP; then Debian's Chromium (headless, driven by playwright-core) signs in, sees
//! a pending item decoded, pastes the owner's signature and watches it confirm.

use std::path::PathBuf;
use std::process::Command;

use mandate_client::{Method, RawReply, RawRequest};
use serde_json::{json, Value};

use crate::approvals::{add_owner, cosigner_limits, owner_key};
use crate::{eth, recipient, CosignerMode, Daemon};

fn set_cookie(response: &RawReply, name: &str) -> String {
    response
        .headers
        .iter()
        .filter(|(header, _)| header == "set-cookie")
        .map(|(_, value)| value.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// An `application/x-www-form-urlencoded` body, as a browser posts a form.
fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let pairs: Vec<String> = fields.iter().map(|(key, value)| format!("{}={}", encode(key), encode(value))).collect();
    pairs.join("&").into_bytes()
}

fn text(response: &RawReply) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

/// The first CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn dashboard_sign_in_csrf_escaping_and_an_approval_in_chromium() {
    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("dashboard", "5");
    let (other, _) = daemon.wallet("other", "0");
    let (owner_file, owner_public, _) = owner_key(&daemon, "owner");
    add_owner(&daemon, &wallet, &owner_public);
    cosigner_limits(&daemon, Some("1"), &[&owner_public]);
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "day", "type": "rolling_cap", "window_secs": 86400, "amount": "10"},
               {"id": "big", "type": "tiers", "approval_above": "1"}]),
    );
    // A webhook nobody answers (port 9): its deliveries fail and are retried. Its path
    // stands for a token the page must not show.
    let (ok, hook) = daemon.cli(&[
        "webhook",
        "add",
        "--url",
        "http://127.0.0.1:9/hook/tok-secret-path",
        "--events",
        "approval.requested,transaction.failed",
    ]);
    assert!(ok, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_string();
    let agent = daemon.session(&wallet, &["broadcast"]);
    let payee = recipient();
    // The policy allows 0.5 ETH at once; the cosigner (its own limit 0.2 ETH) refuses.
    std::fs::write(
        daemon.cosigner_home().join("limits.toml"),
        format!(
            "frozen = false\n[default]\nper_tx_max = \"{}\"\ndaily_max = \"{}\"\nowners = [\"ed25519:{owner_public}\"]\n",
            eth("0.2"),
            eth("50")
        ),
    )
    .unwrap();
    let (status, refused) = daemon.send(&agent, &wallet, recipient(), "0.5");
    assert_ne!(status, 202, "{refused}");
    let (_, listed) = daemon.call("GET", &format!("/v1/wallets/{wallet}/transactions"), Some(&daemon.admin), None);
    let failed = listed["transactions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .find(|tx| tx["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed transaction: {refused} / {listed}"))
        .clone();
    let failed_error = failed["error"].as_str().unwrap_or_else(|| panic!("{failed}")).to_string();
    let failed = failed["id"].as_str().unwrap().to_string();
    cosigner_limits(&daemon, Some("1"), &[&owner_public]);
    let (status, held) = daemon.send(&agent, &wallet, payee, "1.5");
    assert_eq!((status, held["status"].as_str()), (202, Some("pending_approval")), "{held}");
    let id = held["id"].as_str().unwrap().to_string();
    let (ok, printed) =
        daemon.cli(&["approve", &id, "--owner-key", owner_file.to_str().unwrap(), "--print-signature", "--yes"]);
    assert!(ok, "{printed}");

    // Plain HTTP: the sign-in form, its cookie and the page headers.
    // (The client follows no redirect: a 303 is seen as such.)
    let send = |request: RawRequest| daemon.api.raw(None, request);
    let post_form = |path: &str, fields: &[(&str, &str)]| {
        RawRequest::new(Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
    };
    let response = send(RawRequest::new(Method::GET, "/dashboard"));
    assert_eq!(response.status, 200);
    let csp = response.header("content-security-policy").unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let login_cookie = set_cookie(&response, "mandate_login_csrf");
    let login_page = text(&response);
    let login_csrf = csrf_of(&login_page);
    assert_eq!(cookie_value(&login_cookie), login_csrf);
    let password = std::fs::read_to_string(daemon.master_file()).unwrap().trim().to_string();
    let login = |csrf: &str, cookie: Option<&str>, password: &str| {
        let mut request = post_form("/dashboard/login", &[("csrf", csrf), ("password", password)]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("mandate_login_csrf={cookie}"));
        }
        send(request)
    };
    assert_eq!(login(&login_csrf, Some(&login_csrf), "not the password").status, 401);
    assert_eq!(login(&login_csrf, None, &password).status, 403, "no CSRF cookie");
    assert_eq!(login("forged", Some(&login_csrf), &password).status, 403, "CSRF mismatch");
    let signed_in = login(&login_csrf, Some(&login_csrf), &password);
    assert_eq!(signed_in.status, 303);
    let session = set_cookie(&signed_in, "mandate_dashboard");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/dashboard"] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    let session = format!("mandate_dashboard={}", cookie_value(&session));
    let get = |path: &str| {
        let response = send(RawRequest::new(Method::GET, path).header("cookie", session.as_str()));
        assert_eq!(response.status, 200, "{path}");
        text(&response)
    };
    // The audit trail can leave sign-ins out; moments are dates with their distance from now.
    let audit = get("/dashboard/audit");
    assert!(audit.contains("admin.login") && audit.contains("<time datetime=\""), "{audit}");
    let filtered = get("/dashboard/audit?logins=hide");
    assert!(!filtered.contains("admin.login") && filtered.contains("owner.added"), "{filtered}");
    let pending = get(&format!("/dashboard/approvals/{id}"));
    assert!(pending.contains("approval expires <time datetime=\"") && pending.contains(" (in "), "{pending}");
    // The held item says why: its tier and the rule that raised it, not "no rule was violated".
    assert!(pending.contains("Tier <strong id=\"tier\">approval</strong>"), "{pending}");
    assert!(pending.contains("<code>big</code>: <code>") && pending.contains("approval_above"), "{pending}");
    assert!(!pending.contains("no rule was violated"), "{pending}");
    // The cosigner's refusal is shown as what stopped the failed send.
    let failed_page = get(&format!("/dashboard/approvals/{failed}"));
    let why = failed_page.split("id=\"why\"").nth(1).unwrap_or_else(|| panic!("{failed_page}"));
    let why = why.split("</td>").next().unwrap();
    let raw = failed_error.replace('&', "&amp;").replace('\'', "&#39;").replace('"', "&quot;");
    assert!(failed_error.starts_with("cosigner refused") && why.contains(&format!("title=\"{raw}\"")), "{why}");
    // In units: the cosigner's limit reads in ETH, not wei.
    assert!(why.contains("cosigner per-transaction maximum 0.2 ETH"), "{why} / {failed_error}");
    assert!(!failed_page.contains("no rule was violated"), "{failed_page}");
    assert!(failed_page.contains("Send 0.5 ETH to "), "{failed_page}");
    // The wallet page: spend against the rolling cap as the policy summary counts it, in
    // ETH; recent decisions in units; sessions with a revoke button each.
    let (_, summary) = daemon.call("GET", &format!("/v1/wallets/{wallet}/policy/summary"), Some(&daemon.admin), None);
    let day = summary["budgets"].as_array().unwrap().iter().find(|b| b["rule_id"] == "day").unwrap().clone();
    let wallet_view = get(&format!("/dashboard/wallets/{wallet}"));
    assert!(
        wallet_view.contains("<svg id=\"spend-chart\"") && wallet_view.contains("data-rule=\"day\""),
        "{wallet_view}"
    );
    let used_line = format!(
        "{} of {} used; {} left",
        day["used"].as_str().unwrap(),
        day["limit"].as_str().unwrap(),
        day["remaining"].as_str().unwrap()
    );
    assert!(
        used_line.contains(" ETH of 10 ETH used") && wallet_view.contains(&used_line),
        "{used_line}: {wallet_view}"
    );
    let decisions = wallet_view.split("id=\"decisions\"").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(
        decisions.contains("native transfer 1.5 ETH to ") && decisions.contains("<td>approval</td>"),
        "{decisions}"
    );
    assert!(
        decisions.contains("native transfer 0.5 ETH to ") && !decisions.contains("500000000000000000"),
        "{decisions}"
    );
    // Revoking a session from the page: refused without the token or cross-origin; then
    // the session stops working.
    let victim = daemon.session(&wallet, &["broadcast"]);
    let (_, me) = daemon.call("GET", "/v1/session", Some(&victim), None);
    let victim_id = me["id"].as_str().or(me["session"]["id"].as_str()).unwrap_or_else(|| panic!("{me}")).to_string();
    let sessions_table = get(&format!("/dashboard/wallets/{wallet}"));
    assert!(sessions_table.contains(&format!("action=\"/dashboard/sessions/{victim_id}/revoke\"")), "{sessions_table}");
    let revoke = |csrf: &str, origin: Option<&str>| {
        let mut request = post_form(&format!("/dashboard/sessions/{victim_id}/revoke"), &[("csrf", csrf)])
            .header("cookie", session.as_str());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        send(request).status
    };
    let page_csrf = csrf_of(&sessions_table);
    assert_eq!(revoke("forged", None), 403);
    assert_eq!(revoke(&page_csrf, Some("http://evil.example")), 403);
    let (status, live) = daemon.send(&victim, &wallet, recipient(), "0.01");
    assert!((200..300).contains(&status), "still live before the revoke: {live}");
    assert_eq!(revoke(&page_csrf, None), 303);
    let (status, dead) = daemon.send(&victim, &wallet, recipient(), "0.01");
    assert_eq!((status, dead["error"]["code"].as_str()), (401, Some("SESSION_REVOKED")), "{dead}");
    let after = get(&format!("/dashboard/wallets/{wallet}"));
    assert!(
        !after.contains(&format!("/dashboard/sessions/{victim_id}/revoke")) && after.contains("revoked <time"),
        "{after}"
    );
    // A registered agent is listed with its own revoke button; pressing it revokes it.
    let key_file = daemon.dir.path().join("dash.agent");
    let (ok, made) = daemon.cli(&["agent", "keygen", "--out", key_file.to_str().unwrap()]);
    assert!(ok, "{made}");
    let (ok, registered) = daemon.cli(&[
        "agent",
        "register",
        "--wallet",
        &wallet,
        "--key",
        key_file.to_str().unwrap(),
        "--name",
        "dash-bot",
        "--valid-for-secs",
        "3600",
        "--owner-key",
        owner_file.to_str().unwrap(),
    ]);
    assert!(ok, "{registered}");
    let address = registered["agent"]["address"].as_str().unwrap_or_else(|| panic!("{registered}")).to_string();
    let agents_view = get(&format!("/dashboard/wallets/{wallet}"));
    let agent_revoke = format!("/dashboard/agents/{address}/revoke");
    assert!(agents_view.contains(&format!("action=\"{agent_revoke}\"")), "{agents_view}");
    assert!(agents_view.contains("<td>dash-bot</td>"), "{agents_view}");
    let revoke_agent =
        |csrf: &str| send(post_form(&agent_revoke, &[("csrf", csrf)]).header("cookie", session.as_str())).status;
    assert_eq!(revoke_agent("forged"), 403);
    let agent_state = || {
        let (_, listed) = daemon.call("GET", &format!("/v1/wallets/{wallet}/agents"), Some(&daemon.admin), None);
        listed["agents"].as_array().unwrap().iter().find(|a| a["address"] == json!(address)).unwrap()["revoked_at"]
            .clone()
    };
    assert_eq!(agent_state(), Value::Null, "a forged form revokes nothing");
    assert_eq!(revoke_agent(&page_csrf), 303);
    assert!(agent_state().is_u64(), "revoked from the dashboard");
    // Webhooks with their deliveries; the URL's path (often a token) is not shown.
    let hooks = get("/dashboard/webhooks");
    assert!(hooks.contains(&hook) && hooks.contains("http://127.0.0.1:9/…"), "{hooks}");
    assert!(!hooks.contains("tok-secret-path"), "{hooks}");
    assert!(hooks.contains("<td>approval.requested</td>") && hooks.contains("class=\"delivery-status\""), "{hooks}");
    let overview = get("/dashboard");
    assert!(overview.contains("Pending approvals") && overview.contains(&id), "{overview}");
    let csrf = csrf_of(&overview);

    // Freeze from the page: refused without the token or from another origin; the
    // reason comes back escaped.
    let freeze = |csrf: &str, origin: Option<&str>| {
        let mut request = post_form(
            &format!("/dashboard/wallets/{other}/freeze"),
            &[("csrf", csrf), ("reason", "<script>alert(1)</script>")],
        )
        .header("cookie", session.as_str());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        send(request).status
    };
    assert_eq!(freeze("", None), 403);
    assert_eq!(freeze(&csrf, Some("http://evil.example")), 403);
    assert_eq!(daemon.call("GET", &format!("/v1/wallets/{other}"), Some(&daemon.admin), None).0, 200);
    assert_eq!(freeze(&csrf, None), 303);
    let wallet_page = get(&format!("/dashboard/wallets/{other}"));
    assert!(wallet_page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{wallet_page}");
    assert!(!wallet_page.contains("<script>"), "unescaped reason");
    // Nothing refers to another origin; the one script is the daemon's own file, and the
    // CSP allows scripts from the daemon only (no inline script).
    let own_script = "<script src=\"/dashboard/owner.js\" defer></script>";
    for page in [
        &overview,
        &wallet_page,
        &get("/dashboard/audit"),
        &get(&format!("/dashboard/approvals/{id}")),
        &get(&format!("/dashboard/wallets/{wallet}")),
        &get(&format!("/dashboard/approvals/{failed}")),
        &get("/dashboard/webhooks"),
    ] {
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "{page}");
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert_eq!(page.matches(own_script).count(), 1, "{page}");
        assert!(!page.contains("onclick=") && !page.contains("javascript:"), "no inline script: {page}");
    }
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let script = send(RawRequest::new(Method::GET, "/dashboard/owner.js"));
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(script.header("x-content-type-options"), Some("nosniff"));

    // Headless Chromium approves with the pasted signature.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shots = artifacts();
    let output = Command::new("node")
        .arg(root.join("crates/mandate-e2e/tests/dashboard/drive.mjs"))
        .current_dir(&root)
        .env("DASH_URL", &daemon.url)
        .env("DASH_PASSWORD", &password)
        .env("ITEM", &id)
        .env("RECIPIENT", payee.to_checksum(None))
        .env("AMOUNT", "1.5 ETH")
        .env("MESSAGE", printed["message"].as_str().unwrap())
        .env("SIGNATURE", printed["signature"].as_str().unwrap())
        .env("SHOTS", &shots)
        .env("WALLET", &wallet)
        .env("FAILED", &failed)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| panic!("driver: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success() && result["ok"] == true, "{result}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(result["status"], "confirmed", "{result}");
    assert_eq!(result["external"], json!([]), "the page loaded something from another origin");
    assert_eq!(daemon.anvil.balance(payee), eth("1.5"));
    // The policy editor showed the change, explained the sample (0.5 ETH) under both
    // versions, and saved version 2.
    let diff = result["diff"].as_str().unwrap();
    let changed = |sign: &str, line: &str| diff.lines().any(|l| l.starts_with(sign) && l.trim_end().ends_with(line));
    assert!(changed("- ", "\"approval_above\": \"1\",") && changed("+ ", "\"approval_above\": \"0.25\","), "{diff}");
    assert_eq!(diff.lines().filter(|l| l.starts_with("- ") || l.starts_with("+ ")).count(), 2, "{diff}");
    assert!(result["proposed"].as_str().unwrap().contains("allowapprovalbig"), "{result}");
    assert!(result["current"].as_str().unwrap().contains("allowinstantallowed"), "{result}");
    assert_eq!(result["saved"], true, "{result}");
    let (_, policy) = daemon.call("GET", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), None);
    assert_eq!(policy["version"], 2, "{policy}");
    assert!(policy["document"].to_string().contains("\"approval_above\":\"0.25\""), "{policy}");
    // Over HTTP: an invalid document is refused with its reason; a save without the
    // token, or against a version that is no longer current, changes nothing.
    let editor = get(&format!("/dashboard/wallets/{wallet}/policy"));
    let editor_csrf = csrf_of(&editor);
    let invalid = send(
        post_form(
            &format!("/dashboard/wallets/{wallet}/policy/check"),
            &[
                ("csrf", &editor_csrf),
                ("document", "{\"version\": 1, \"rules\": [{\"id\": \"x\", \"type\": \"nope\"}]}"),
                ("sample", "{}"),
            ],
        )
        .header("cookie", session.as_str()),
    );
    assert_eq!(invalid.status, 400);
    assert!(text(&invalid).contains("id=\"policy-invalid\">INVALID_POLICY: "), "{}", text(&invalid));
    let save = |csrf: &str, base: &str| {
        send(
            post_form(
                &format!("/dashboard/wallets/{wallet}/policy/save"),
                &[("csrf", csrf), ("base", base), ("document", "{\"version\": 1, \"rules\": []}")],
            )
            .header("cookie", session.as_str()),
        )
        .status
    };
    assert_eq!(save("forged", "2"), 403);
    assert_eq!(save(&editor_csrf, "1"), 409, "checked against version 1, but 2 is current");
    let (_, policy) = daemon.call("GET", &format!("/v1/wallets/{wallet}/policy"), Some(&daemon.admin), None);
    assert_eq!(policy["version"], 2, "nothing saved: {policy}");
    for shot in [
        "dashboard-policy-editor.png",
        "dashboard-policy-check.png",
        "dashboard-overview.png",
        "dashboard-pending.png",
        "dashboard-approved.png",
        "dashboard-wallet.png",
        "dashboard-failed.png",
        "dashboard-webhooks.png",
        "dashboard-audit.png",
    ] {
        let meta = std::fs::metadata(shots.join(shot)).unwrap();
        assert!(meta.len() > 1000, "{shot} is empty");
    }
}

#[test]
fn a_passkey_registered_in_the_dashboard_and_a_browser_wallet_approve_in_chromium() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let daemon = Daemon::start(CosignerMode::Dev);
    let (wallet, _) = daemon.wallet("browser-owners", "10");
    // The browser-wallet owner: a known secp256k1 key, registered by its address.
    let evm = mandate_chain::approval::OwnerSecret::evm_from_bytes(&[0x42; 32]).unwrap();
    let mandate_chain::approval::OwnerKey::Evm(evm_address) = evm.public() else { unreachable!() };
    let (ok, added) =
        daemon.cli(&["owner", "add", "--wallet", &wallet, "--evm-address", &evm_address.to_checksum(None)]);
    assert!(ok, "{added}");
    daemon.set_policy(
        &wallet,
        json!([{"id": "cap", "type": "max_per_tx", "amount": "5"},
               {"id": "big", "type": "tiers", "approval_above": "1"}]),
    );
    let agent = daemon.session(&wallet, &["broadcast"]);
    let (passkey_payee, wallet_payee) = (recipient(), recipient());
    let held = |to, amount| {
        let (status, body) = daemon.send(&agent, &wallet, to, amount);
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_string()
    };
    let passkey_item = held(passkey_payee, "1.5");
    let wallet_item = held(wallet_payee, "1.2");
    let (_, offer) = daemon.call("GET", &format!("/v1/owner/approvals/{wallet_item}"), None, None);
    let decision: mandate_chain::approval::OwnerDecision =
        serde_json::from_value(offer["approve_decision"].clone()).unwrap();
    let signature = evm.sign(&decision).unwrap().to_string();
    let signature = signature.rsplit_once(':').unwrap().1.to_string();

    // WebAuthn needs a secure context and a DNS RP id: localhost, not 127.0.0.1.
    let url = daemon.url.replace("127.0.0.1", "localhost");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shots = artifacts();
    let password = std::fs::read_to_string(daemon.master_file()).unwrap().trim().to_string();
    let mut driver = Command::new("node")
        .arg(root.join("crates/mandate-e2e/tests/dashboard/owners.mjs"))
        .current_dir(&root)
        .env("DASH_URL", &url)
        .env("DASH_PASSWORD", &password)
        .env("WALLET", &wallet)
        .env("SHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = driver.stdin.take().unwrap();
    let mut stdout = BufReader::new(driver.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&stdout.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["step"], "registered", "{first}");
    let key = first["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("webauthn:04") && key.contains(&format!("@{url}#")), "{key}");
    // The daemon lists it; the cosigner (approval above 1 ETH) learns it from its own file.
    let (_, owners) = daemon.call("GET", &format!("/v1/wallets/{wallet}/owners"), Some(&daemon.admin), None);
    assert!(owners["owners"].as_array().unwrap().iter().any(|o| o["owner_key"] == json!(key)), "{owners}");
    let limits = format!(
        "frozen = false\n[default]\nper_tx_max = \"5000000000000000000\"\ndaily_max = \"50000000000000000000\"\n\
         approval_above = \"{}\"\nowners = [\"{key}\", \"evm:{}\"]\n",
        eth("1"),
        evm_address.to_checksum(None)
    );
    std::fs::write(daemon.cosigner_home().join("limits.toml"), limits).unwrap();
    let next = json!({"passkey_item": passkey_item, "wallet_item": wallet_item,
                      "address": evm_address.to_checksum(None).to_lowercase(), "signature": signature,
                      "message": decision.message()});
    writeln!(stdin, "{next}").unwrap();
    drop(stdin);
    let last = stdout.map(Result::unwrap).last().unwrap_or_default();
    let status = driver.wait().unwrap();
    let result: Value = serde_json::from_str(&last).unwrap_or_else(|_| panic!("driver: {last}"));
    assert!(status.success() && result["ok"] == true, "{result}");
    assert_eq!(result["quorum"], "Owner approvals: 0 of 1", "{result}");
    assert!(result["confirmation"].as_str().unwrap().starts_with("Approved: it is signed and sent now"), "{result}");
    assert_eq!(
        (result["passkey_status"].as_str(), result["wallet_status"].as_str()),
        (Some("confirmed"), Some("confirmed"))
    );
    assert_eq!(result["external"], json!([]), "the page loaded something from another origin");
    assert_eq!(daemon.anvil.balance(passkey_payee), eth("1.5"));
    assert_eq!(daemon.anvil.balance(wallet_payee), eth("1.2"));
    // The audit trail names the passkey owner and the browser wallet.
    let (_, audit) = daemon.call("GET", "/v1/audit/tail?n=200", Some(&daemon.admin), None);
    let text = audit.to_string();
    assert!(text.contains(&format!("owner:{key}")), "{text}");
    assert!(text.contains(&format!("owner:evm:{}", evm_address.to_checksum(None))), "{text}");
    for shot in ["dashboard-passkey-registered.png", "dashboard-passkey-approved.png", "dashboard-wallet-approved.png"]
    {
        assert!(std::fs::metadata(shots.join(shot)).unwrap().len() > 1000, "{shot} is empty");
    }
}
