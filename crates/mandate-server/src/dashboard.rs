//! The owner dashboard at `/dashboard`: server-rendered HTML, one script of its own
//! (`/dashboard/owner.js`), nothing from another origin. The operator signs in with
//! the master password (a session cookie: HttpOnly, Secure, SameSite=Strict, 30 min);
//! every form carries a CSRF token; cross-origin posts are refused. Approving from
//! the page takes an owner's signature: pasted from `mandate approve
//! --print-signature`, or made in the browser with a passkey (WebAuthn) or a browser
//! wallet (EIP-191) by the script. The server never holds an owner key, verifies
//! every signature itself, and the master password alone approves nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path, Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mandate_chain::approval::{DecisionAction, OwnerKey, OwnerSignature};
use mandate_chain::webauthn::PasskeyKey;
use mandate_core::amount::format_units;
use mandate_store::{TxRecord, TxStatus};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::approvals::{owner_decision, resolve};
use crate::freeze::freeze_wallet;
use crate::guard::ClientIp;
use crate::now;
use crate::provision::verify_password;
use crate::request::MAX_BODY_BYTES;
use crate::state::AppState;
use crate::task::blocking;

mod editor;
mod views;

const SESSION_COOKIE: &str = "mandate_dashboard";
const LOGIN_COOKIE: &str = "mandate_login_csrf";
const SESSION_SECS: u64 = 1800;
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1b1b1b}\
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #ddd;padding:.4rem;\
text-align:left;vertical-align:top}pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap;word-break:break-all}\
.frozen{color:#b00020;font-weight:bold}.error{background:#fde7e9;padding:.6rem;border-left:4px solid #b00020}\
.notice{background:#e7f5ea;padding:.6rem;border-left:4px solid #1b7a35}textarea{width:100%;font-family:monospace}code{word-break:break-all}nav a{margin-right:1rem}nav form,form.revoke{display:inline}\
#spend-chart{display:block;margin:1rem 0}ins{background:#e7f5ea;text-decoration:none}del{background:#fde7e9;text-decoration:none}label{display:block;margin:.5rem 0}tr.denied td{color:#b00020}";

struct DashSession {
    expires_at: u64,
    csrf: String,
}

fn sessions() -> &'static Mutex<HashMap<String, DashSession>> {
    static SESSIONS: OnceLock<Mutex<HashMap<String, DashSession>>> = OnceLock::new();
    SESSIONS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

/// The signed-in session's CSRF token, if the cookie names a live session.
fn session_csrf(headers: &HeaderMap) -> Option<String> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let mut table = sessions().lock().ok()?;
    let at = now();
    table.retain(|_, session| session.expires_at > at);
    table.get(&digest(&token)).map(|session| session.csrf.clone())
}

fn with_headers(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with no-referrer browsers send `Origin: null` on
    // form posts, which the cross-origin check must refuse.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Mandate</title>\
         <link rel=\"stylesheet\" href=\"/dashboard/style.css\">\
         <script src=\"/dashboard/owner.js\" defer></script></head><body>{body}</body></html>",
        escape(title)
    );
    with_headers(status, html)
}

fn nav(csrf: &str) -> String {
    format!(
        "<nav><a href=\"/dashboard\">Overview</a><a href=\"/dashboard/audit\">Audit trail</a><a href=\"/dashboard/webhooks\">Webhooks</a>\
         <form method=\"post\" action=\"/dashboard/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form></nav>",
        escape(csrf)
    )
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn set_cookie(response: &mut Response, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random_token();
    let error = error.map(|e| format!("<p class=\"error\">{}</p>", escape(e))).unwrap_or_default();
    let body = format!(
        "<h1>Mandate</h1><p>Sign in with the master password (operator view).</p>{error}\
         <form method=\"post\" action=\"/dashboard/login\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Master password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus></label>\
         <button type=\"submit\">Sign in</button></form>"
    );
    let mut response = page(status, "Sign in", &body);
    set_cookie(
        &mut response,
        format!("{LOGIN_COOKIE}={csrf}; HttpOnly; Secure; SameSite=Strict; Path=/dashboard; Max-Age=600"),
    );
    response
}

/// A POST from another origin is refused whatever it carries.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    origin == "null" || origin_host != host
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Refused",
        "<h1>Refused</h1><p>The form was stale or came from another site. <a href=\"/dashboard\">Back</a></p>",
    )
}

/// Checks a signed-in POST: same origin, live session, its CSRF token.
fn checked_post(headers: &HeaderMap, form_csrf: &str) -> Option<String> {
    if cross_origin(headers) {
        return None;
    }
    let csrf = session_csrf(headers)?;
    same(&csrf, form_csrf).then_some(csrf)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    password: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    client: ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if cross_origin(&headers) || expected.is_empty() || !same(&expected, &form.csrf) {
        return forbidden();
    }
    let hash = state.master_hash.clone();
    let password = zeroize::Zeroizing::new(form.password.into_bytes());
    let ok = match state.login_limiter.check_password(client, now, move || verify_password(&hash, &password)).await {
        Ok(ok) => ok,
        Err(error) if error.code == mandate_core::ErrorCode::RateLimited => {
            let wait = error.retry_after.unwrap_or(1);
            let mut response =
                login_page(StatusCode::TOO_MANY_REQUESTS, Some(&format!("Too many attempts; retry in {wait} s.")));
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        Err(_) => false,
    };
    let actor = if ok { "operator:dashboard" } else { "unknown" };
    let event = if ok { "admin.login" } else { "admin.login_failed" };
    let entry = crate::audit::audit_entry(actor, event, None, serde_json::json!({"via": "dashboard"}));
    if state.store.audit(entry, now()).is_err() {
        return page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "<p>The audit trail cannot be written.</p>");
    }
    if !ok {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return login_page(StatusCode::UNAUTHORIZED, Some("Sign-in failed."));
    }
    let token = random_token();
    if let Ok(mut table) = sessions().lock() {
        table.insert(digest(&token), DashSession { expires_at: now() + SESSION_SECS, csrf: random_token() });
    }
    let mut response = redirect("/dashboard");
    set_cookie(
        &mut response,
        format!("{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/dashboard; Max-Age={SESSION_SECS}"),
    );
    set_cookie(
        &mut response,
        format!("{LOGIN_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/dashboard; Max-Age=0"),
    );
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    if let (Some(token), Ok(mut table)) = (cookie(&headers, SESSION_COOKIE), sessions().lock()) {
        table.remove(&digest(&token));
    }
    let mut response = redirect("/dashboard");
    set_cookie(
        &mut response,
        format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/dashboard; Max-Age=0"),
    );
    response
}

/// The held transaction's action in plain words.
fn plain_words(state: &AppState, tx: &TxRecord) -> String {
    let recipient = tx.recipient.clone().unwrap_or_else(|| tx.to.clone());
    let amount = alloy_primitives::U256::from_str_radix(&tx.amount, 10).unwrap_or_default();
    match tx.kind.as_str() {
        "native_transfer" => format!("Send {} ETH to {recipient}", format_units(amount, 18)),
        "token_transfer" | "token_approve" => {
            let token = tx.asset.parse::<alloy_primitives::Address>().ok();
            let known = token.and_then(|address| state.store.token(state.chain_id(), &address).ok().flatten());
            let (value, unit) = match known {
                Some((decimals, symbol)) => (format_units(amount, decimals), symbol),
                None => (tx.amount.clone(), format!("base units of token {}", tx.asset)),
            };
            if tx.kind == "token_approve" {
                format!("Allow {recipient} to spend {value} {unit}")
            } else {
                format!("Send {value} {unit} to {recipient}")
            }
        }
        _ => {
            let selector = tx.data.get(..10).unwrap_or("0x");
            let value = alloy_primitives::U256::from_str_radix(&tx.value_wei, 10).unwrap_or_default();
            format!("Call contract {} (method selector {selector}) with {} ETH", tx.to, format_units(value, 18))
        }
    }
}

/// How far `secs` is from `now`, in words: "in 5 min", "3 h ago".
fn relative(secs: u64, now: u64) -> String {
    let (span, future) = if secs >= now { (secs - now, true) } else { (now - secs, false) };
    let amount = match span {
        0..=59 => format!("{span} s"),
        60..=5_999 => format!("{} min", span / 60),
        6_000..=172_799 => format!("{} h", span / 3600),
        _ => format!("{} days", span / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A moment as the page shows it: a `<time>` in UTC (the script shows it in the
/// browser's time zone) with how far it is from now.
fn when(secs: u64) -> String {
    let Some(stamp) = i64::try_from(secs).ok().and_then(|s| jiff::Timestamp::from_second(s).ok()) else {
        return escape(&secs.to_string());
    };
    format!(
        "<time datetime=\"{}\">{}</time> ({})",
        stamp,
        stamp.strftime("%Y-%m-%d %H:%M:%S UTC"),
        relative(secs, now())
    )
}

fn status_line(tx: &TxRecord) -> String {
    let mut line = format!("<span id=\"status\">{}</span>", escape(tx.status.name()));
    if let Some(at) = tx.expires_at.filter(|_| tx.status == TxStatus::PendingApproval) {
        let _ = write!(line, " (approval expires {})", when(at));
    }
    if let Some(at) = tx.execute_after.filter(|_| tx.status == TxStatus::Delayed) {
        let _ = write!(line, " (sent after {})", when(at));
    }
    line
}

async fn overview(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(csrf) = session_csrf(&headers) else { return login_page(StatusCode::OK, None) };
    let mut body = format!("{}<h1>Wallets</h1><table><tr><th>Wallet</th><th>Address</th><th>Balance</th><th>Policy</th><th>State</th></tr>", nav(&csrf));
    let wallets = state.store.wallets().unwrap_or_default();
    for wallet in &wallets {
        let balance = match (wallet.address.parse(), state.node(state.chain_id())) {
            (Ok(address), Ok(node)) => match node.balance(address).await {
                Ok(wei) => format!("{} ETH", format_units(wei, 18)),
                Err(_) => "unavailable".into(),
            },
            _ => "unavailable".into(),
        };
        let policy = match state.store.policy(&wallet.id) {
            Ok(Some(stored)) => {
                let hash = &stored.hash;
                format!("version {} <code>{}</code>", stored.version, escape(hash.get(..16).unwrap_or(hash)))
            }
            _ => "none (everything denied)".into(),
        };
        let frozen = match state.store.freeze_of(&wallet.id) {
            Ok(Some(freeze)) => {
                format!(
                    "<span class=\"frozen\">frozen</span> since {}: {}",
                    when(freeze.frozen_at),
                    escape(&freeze.reason)
                )
            }
            _ => "active".into(),
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/dashboard/wallets/{id}\">{name}</a><br><code>{id}</code></td><td><code>{address}</code></td>\
             <td>{balance}</td><td>{policy}</td><td>{frozen}</td></tr>",
            id = escape(&wallet.id),
            name = escape(&wallet.name),
            address = escape(&wallet.address),
            balance = escape(&balance),
        );
    }
    body.push_str("</table><h1>Pending approvals</h1>");
    let held = state.store.held(None).unwrap_or_default();
    if held.is_empty() {
        body.push_str("<p>Nothing is waiting.</p>");
    } else {
        body.push_str("<table><tr><th>Item</th><th>Action</th><th>Status</th></tr>");
        for tx in &held {
            let _ = write!(
                body,
                "<tr><td><a href=\"/dashboard/approvals/{id}\">{id}</a></td><td>{action}</td><td>{status}</td></tr>",
                id = escape(&tx.id),
                action = escape(&plain_words(&state, tx)),
                status = status_line(tx),
            );
        }
        body.push_str("</table>");
    }
    page(StatusCode::OK, "Overview", &body)
}

/// The wallet's passkey owners as the script needs them: `[{"credential", "key"}]`.
fn passkeys_of(state: &AppState, wallet: &str) -> String {
    let owners = state.store.owners(wallet).unwrap_or_default();
    let passkeys: Vec<serde_json::Value> = owners
        .iter()
        .filter_map(|owner| match owner.owner_key.parse::<OwnerKey>() {
            Ok(OwnerKey::Passkey(key)) => {
                Some(serde_json::json!({"credential": hex::encode(key.credential()), "key": key.to_string()}))
            }
            _ => None,
        })
        .collect();
    serde_json::Value::from(passkeys).to_string()
}

/// A form that signs the text in element `message` in the browser (passkey or
/// browser wallet, by the script) and posts it to `action` with `fields`.
fn sign_form(action: &str, csrf: &str, message: &str, passkeys: &str, fields: &[(&str, &str)], verb: &str) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value)))
        .collect();
    format!(
        "<form method=\"post\" action=\"{}\" class=\"owner-sign\" data-message=\"{}\" data-passkeys=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">{hidden}<input type=\"hidden\" name=\"signature\" value=\"\">\
         <button type=\"button\" data-sign=\"passkey\">{verb} with a passkey</button> \
         <button type=\"button\" data-sign=\"ethereum\">{verb} with a browser wallet</button></form>",
        escape(action),
        escape(message),
        escape(passkeys),
        escape(csrf),
    )
}

async fn wallet_page(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(csrf) = session_csrf(&headers) else { return login_page(StatusCode::OK, None) };
    let Ok(Some(wallet)) = state.store.wallet(&id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>No such wallet. <a href=\"/dashboard\">Back</a></p>");
    };
    let mut body = format!(
        "{}<h1>{}</h1><p><code>{}</code> · <code>{}</code></p>",
        nav(&csrf),
        escape(&wallet.name),
        escape(&wallet.id),
        escape(&wallet.address)
    );
    match state.store.freeze_of(&wallet.id) {
        Ok(Some(freeze)) => {
            let _ = write!(
                body,
                "<p class=\"frozen\">Frozen since {} by {}: {}</p><p>An owner lifts it after the cool-down: \
                 <code>mandate unfreeze --wallet {} --owner-key FILE</code>, or here.</p>",
                when(freeze.frozen_at),
                escape(&freeze.frozen_by),
                escape(&freeze.reason),
                escape(&wallet.id)
            );
            if let Ok((decision, quorum)) = crate::freeze::offered_unfreeze(&state, &freeze) {
                let action = format!("/dashboard/wallets/{}/unfreeze", wallet.id);
                let expires = decision.expires_at.to_string();
                let _ = write!(
                    body,
                    "<h2>Unfreeze</h2><p id=\"unfreeze-quorum\">Owner signatures: <strong>{} of {}</strong></p>\
                     <p>The exact text an owner signs:</p><pre id=\"unfreeze-message\">{}</pre>{}\
                     <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <input type=\"hidden\" name=\"expires_at\" value=\"{}\">\
                     <textarea name=\"signature\" rows=\"3\" placeholder=\"or paste a signature\"></textarea>\
                     <button type=\"submit\">Unfreeze with the pasted signature</button></form>",
                    quorum.get("signed").and_then(serde_json::Value::as_u64).unwrap_or(0),
                    quorum.get("required").and_then(serde_json::Value::as_u64).unwrap_or(1),
                    escape(&decision.message()),
                    sign_form(
                        &action,
                        &csrf,
                        "unfreeze-message",
                        &passkeys_of(&state, &wallet.id),
                        &[("expires_at", &expires)],
                        "Unfreeze"
                    ),
                    escape(&action),
                    escape(&csrf),
                    escape(&expires),
                );
            }
        }
        _ => {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/dashboard/wallets/{}/freeze\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <label>Reason <input name=\"reason\" maxlength=\"500\"></label> <button type=\"submit\">Freeze</button></form>",
                escape(&wallet.id),
                escape(&csrf)
            );
        }
    }
    let owners = state.store.owners(&wallet.id).unwrap_or_default();
    let _ = write!(
    body,
    "<h2>Owners</h2><p id=\"owner-quorum\">Approvals and unfreezes need <strong>{}</strong> of {} owners.</p><table>\
     <tr><th>Owner key</th><th>Label</th></tr>",
    state.store.owner_threshold(&wallet.id).unwrap_or(1),
    owners.len()
);
    for owner in &owners {
        let _ = write!(
            body,
            "<tr><td><code class=\"owner-key\">{}</code></td><td>{}</td></tr>",
            escape(&owner.owner_key),
            escape(&owner.label)
        );
    }
    let _ = write!(
        body,
        "</table><form method=\"post\" action=\"/dashboard/wallets/{id}/passkeys\" data-wallet=\"{id}\">\
     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"spki\" value=\"\">\
     <input type=\"hidden\" name=\"credential\" value=\"\"><input type=\"hidden\" name=\"signature\" value=\"\">\
     <label>Label <input name=\"label\" maxlength=\"100\"></label> \
     <button type=\"button\" data-register-passkey=\"\">Register a passkey owner on this device</button></form>",
        id = escape(&wallet.id),
        csrf = escape(&csrf),
    );
    let policy = match state.store.policy(&wallet.id) {
        Ok(Some(stored)) => {
            let pretty = serde_json::from_str::<serde_json::Value>(&stored.document)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or(stored.document);
            format!(
                "<h2>Policy (version {})</h2><p><a id=\"edit-policy\" href=\"/dashboard/wallets/{}/policy\">Edit the policy</a></p>\
                 <pre>{}</pre>",
                stored.version,
                escape(&wallet.id),
                escape(&pretty)
            )
        }
        _ => format!(
            "<h2>Policy</h2><p>None: everything is denied. <a id=\"edit-policy\" href=\"/dashboard/wallets/{}/policy\">Write one</a></p>",
            escape(&wallet.id)
        ),
    };
    body.push_str(&policy);
    let budgets = crate::context::budgets_now(&state, &wallet.id).ok().flatten();
    body.push_str(&views::spend_chart(budgets.as_deref()));
    let records = blocking({
        let store = state.store.clone();
        move || Ok(store.audit_tail(1000)?)
    })
    .await
    .unwrap_or_default();
    body.push_str(&views::recent_decisions(&state, &wallet.id, &records));
    body.push_str(&views::sessions_and_agents(&state, &wallet.id, &csrf, now()));
    body.push_str(
        "<h2>Transactions</h2><table><tr><th>Id</th><th>Action</th><th>Status</th><th>Hash or error</th></tr>",
    );
    for tx in state.store.transactions(&wallet.id, 50).unwrap_or_default() {
        let _ = write!(
            body,
            "<tr><td><a href=\"/dashboard/approvals/{id}\">{id}</a></td><td>{action}</td><td>{status}</td><td>{hash}</td></tr>",
            id = escape(&tx.id),
            action = escape(&plain_words(&state, &tx)),
            status = escape(tx.status.name()),
            hash = match (&tx.tx_hash, &tx.error) {
                (Some(hash), _) => format!("<code>{}</code>", escape(hash)),
                (None, Some(error)) => escape(&views::wei_as_eth(error)),
                (None, None) => String::new(),
            },
        );
    }
    body.push_str("</table>");
    page(StatusCode::OK, &wallet.name, &body)
}

#[derive(Deserialize)]
struct FreezeForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn freeze(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<FreezeForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    if !matches!(state.store.wallet(&id), Ok(Some(_))) {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>No such wallet.</p>");
    }
    match freeze_wallet(&state, &id, "operator:dashboard", form.reason).await {
        Ok(_) => redirect(&format!("/dashboard/wallets/{id}")),
        Err(error) => page(
            StatusCode::BAD_REQUEST,
            "Freeze refused",
            &format!(
                "<p class=\"error\">{}</p><p><a href=\"/dashboard/wallets/{}\">Back</a></p>",
                escape(&error.to_string()),
                escape(&id)
            ),
        ),
    }
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The confirmation shown after an owner's decision was recorded.
fn confirmation(done: Option<&str>, tx: &TxRecord, quorum: Option<&crate::approvals::Quorum>) -> String {
    let text = match (done, tx.status) {
        (Some("approve"), TxStatus::PendingApproval) => match quorum {
            Some(q) => format!(
                "Your approval is recorded: {} of {} owners have signed; it is sent when enough have.",
                q.signers.len(),
                q.required
            ),
            None => "Your approval is recorded.".into(),
        },
        (Some("approve"), _) => format!("Approved: it is signed and sent now (status: {}).", tx.status.name()),
        (Some("deny"), _) => format!("Denied: the transaction is {} and will not be sent.", tx.status.name()),
        _ => return String::new(),
    };
    format!("<p class=\"notice\" id=\"confirmation\">{}</p>", escape(&text))
}

async fn approval_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let Some(csrf) = session_csrf(&headers) else { return login_page(StatusCode::OK, None) };
    let Ok(Some(tx)) = state.store.transaction(&id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>No such transaction. <a href=\"/dashboard\">Back</a></p>");
    };
    let quorum = crate::approvals::quorum(&state, &tx).ok();
    let mut body = format!(
        "{}{}<h1>Transaction <code>{}</code></h1><p id=\"action\">{}</p><table>\
         <tr><th>Status</th><td>{}</td></tr><tr><th>Recipient</th><td><code id=\"recipient\">{}</code></td></tr>\
         <tr><th>Wallet</th><td><a href=\"/dashboard/wallets/{wallet}\">{wallet}</a></td></tr>\
         {}<tr><th>Transaction hash</th><td><code>{}</code></td></tr></table>",
        nav(&csrf),
        confirmation(query.done.as_deref(), &tx, quorum.as_ref()),
        escape(&tx.id),
        escape(&plain_words(&state, &tx)),
        status_line(&tx),
        escape(tx.recipient.as_deref().unwrap_or(&tx.to)),
        views::why_rows(&state, &tx),
        escape(tx.tx_hash.as_deref().unwrap_or("not sent")),
        wallet = escape(&tx.wallet_id),
    );
    if matches!(tx.status, TxStatus::PendingApproval | TxStatus::Approved) {
        if let Some(quorum) = &quorum {
            let signers: Vec<String> = quorum.signers.iter().map(|key| escape(key)).collect();
            let signed = if signers.is_empty() {
                String::new()
            } else {
                format!(" (signed: <code>{}</code>)", signers.join("</code>, <code>"))
            };
            let _ = write!(
                body,
                "<p id=\"quorum\">Owner approvals: <strong>{} of {}</strong>{signed}</p>",
                quorum.signers.len(),
                quorum.required,
            );
        }
    }
    if tx.status == TxStatus::PendingApproval {
        if let Ok(decision) = owner_decision(&state, &tx, DecisionAction::Approve) {
            let _ = write!(
                body,
                "<h2>Approve with an owner key</h2><p>The exact message to sign:</p><pre id=\"approval-message\">{}</pre>\
                 <p>Sign it on the owner's machine: <code>mandate approve {id} --owner-key FILE --print-signature</code>, \
                 then paste the signature. (To deny, sign with <code>mandate deny {id} --owner-key FILE --print-signature</code>.)</p>\
                 <form method=\"post\" action=\"/dashboard/approvals/{id}/decide\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <textarea name=\"signature\" rows=\"3\" placeholder=\"ed25519:…:… or eip191:0x…:0x…\"></textarea>\
                 <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
                 <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
                escape(&decision.message()),
                id = escape(&tx.id),
                csrf = escape(&csrf),
            );
            let action = format!("/dashboard/approvals/{}/decide", tx.id);
            let passkeys = passkeys_of(&state, &tx.wallet_id);
            let _ = write!(
                body,
                "<h2>Sign here</h2>{}",
                sign_form(&action, &csrf, "approval-message", &passkeys, &[("decision", "approve")], "Approve")
            );
            if let Ok(deny) = owner_decision(&state, &tx, DecisionAction::Deny) {
                let _ = write!(
                    body,
                    "<details><summary>Deny instead</summary><pre id=\"deny-message\">{}</pre>{}</details>",
                    escape(&deny.message()),
                    sign_form(&action, &csrf, "deny-message", &passkeys, &[("decision", "deny")], "Deny")
                );
            }
        }
    }
    page(StatusCode::OK, &tx.id, &body)
}

#[derive(Deserialize)]
struct DecideForm {
    csrf: String,
    decision: String,
    signature: String,
}

async fn decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    let action = match form.decision.as_str() {
        "approve" => DecisionAction::Approve,
        "deny" => DecisionAction::Deny,
        _ => return page(StatusCode::BAD_REQUEST, "Refused", "<p>Unknown decision.</p>"),
    };
    let owner = form.signature.trim().parse::<mandate_chain::approval::OwnerSignature>().map(|s| s.key.to_string());
    let actor = format!("owner:{}", owner.as_deref().unwrap_or("unknown"));
    match resolve(&state, &id, action, form.signature.trim(), &actor).await {
        Ok(_) => redirect(&format!("/dashboard/approvals/{id}?done={}", form.decision)),
        Err(error) => page(
            StatusCode::BAD_REQUEST,
            "Refused",
            &format!(
                "<p class=\"error\">{}: {}</p><p><a href=\"/dashboard/approvals/{}\">Back</a></p>",
                escape(error.code.as_str()),
                escape(&error.to_string()),
                escape(&id)
            ),
        ),
    }
}

#[derive(Deserialize)]
struct UnfreezeForm {
    csrf: String,
    expires_at: u64,
    signature: String,
}

async fn unfreeze(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<UnfreezeForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    match crate::freeze::unfreeze_signed(&state, &id, form.signature.trim(), form.expires_at).await {
        Ok(_) => redirect(&format!("/dashboard/wallets/{id}")),
        Err(error) => refused(&error, &format!("/dashboard/wallets/{id}")),
    }
}

fn refused(error: &crate::error::ApiError, back: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Refused",
        &format!(
            "<p class=\"error\" id=\"refusal\">{}: {}</p><p><a href=\"{}\">Back</a></p>",
            escape(error.code.as_str()),
            escape(&error.to_string()),
            escape(back)
        ),
    )
}

#[derive(Deserialize)]
struct PasskeyForm {
    csrf: String,
    spki: String,
    credential: String,
    signature: String,
    #[serde(default)]
    label: String,
}

/// The text a new passkey signs to prove the key is its own (the script signs it
/// right after `navigator.credentials.create`).
fn passkey_registration_text(wallet: &str, key: &OwnerKey) -> String {
    format!("Mandate passkey registration v1\nwallet: {wallet}\nkey: {key}")
}

/// Registers a passkey made in this browser as an owner of the wallet: its key
/// (from `getPublicKey()`), bound to the page's origin, after a first assertion by
/// it over the registration text verifies.
async fn register_passkey(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PasskeyForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    let back = format!("/dashboard/wallets/{id}");
    let invalid =
        |why: String| refused(&crate::error::ApiError::new(mandate_core::ErrorCode::OwnerSignatureInvalid, why), &back);
    if !matches!(state.store.wallet(&id), Ok(Some(_))) {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>No such wallet.</p>");
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return invalid("the browser sent no Origin: the passkey's origin is unknown".into());
    };
    let (Ok(spki), Ok(credential)) = (hex::decode(form.spki.trim()), hex::decode(form.credential.trim())) else {
        return invalid("the passkey's key or credential id is not hex".into());
    };
    let key = match PasskeyKey::from_spki(&spki, origin, &credential) {
        Ok(key) => OwnerKey::Passkey(Box::new(key)),
        Err(error) => return invalid(error.to_string()),
    };
    let text = passkey_registration_text(&id, &key);
    match form.signature.trim().parse::<OwnerSignature>() {
        Ok(signature) if signature.key == key => match signature.verify_message(&text) {
            Ok(()) => {
                if let Err(error) = crate::approvals::check_passkey_counter(&state, &signature, &text) {
                    return refused(&error, &back);
                }
            }
            Err(error) => return invalid(format!("the passkey's first assertion is refused: {error}")),
        },
        Ok(_) => return invalid("the assertion is by another key".into()),
        Err(error) => return invalid(error.to_string()),
    }
    match crate::approvals::register_owner(&state, &id, key, form.label, "operator:dashboard").await {
        Ok(_) => redirect(&back),
        Err(error) => refused(&error, &back),
    }
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    /// `hide`: leave sign-ins out.
    #[serde(default)]
    logins: Option<String>,
}

/// Sign-in records, which every CLI command and page visit adds.
fn is_login(event: &str) -> bool {
    matches!(event, "admin.login" | "admin.login_failed")
}

async fn audit(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(query): Query<AuditQuery>) -> Response {
    let Some(csrf) = session_csrf(&headers) else { return login_page(StatusCode::OK, None) };
    let hide = query.logins.as_deref() == Some("hide");
    let filter = if hide {
        "<p>Sign-ins hidden. <a href=\"/dashboard/audit\">Show all</a></p>"
    } else {
        "<p><a id=\"hide-logins\" href=\"/dashboard/audit?logins=hide\">Hide sign-ins</a></p>"
    };
    let mut body = format!(
        "{}<h1>Audit trail (last 200 records)</h1>{filter}<table><tr><th>#</th><th>Time</th><th>Actor</th>\
         <th>Event</th><th>Wallet</th></tr>",
        nav(&csrf)
    );
    let records = blocking({
        let store = state.store.clone();
        move || Ok(store.audit_tail(200)?)
    })
    .await
    .unwrap_or_default();
    let shown = records
        .iter()
        .rev()
        .filter(|record| !(hide && record.get("event").and_then(serde_json::Value::as_str).is_some_and(is_login)));
    for record in shown {
        let field = |name: &str| {
            record
                .get(name)
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .unwrap_or_default()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&field("seq")),
            field("ts").parse::<u64>().map(when).unwrap_or_else(|_| escape(&field("ts"))),
            escape(&field("actor")),
            escape(&field("event")),
            escape(&field("wallet"))
        );
    }
    body.push_str("</table>");
    page(StatusCode::OK, "Audit trail", &body)
}

async fn webhooks_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(csrf) = session_csrf(&headers) else { return login_page(StatusCode::OK, None) };
    let list = blocking({
        let state = state.clone();
        move || Ok(views::webhooks(&state))
    })
    .await
    .unwrap_or_default();
    let body = format!("{}<h1>Webhooks and their deliveries</h1>{list}", nav(&csrf));
    page(StatusCode::OK, "Webhooks", &body)
}

/// The operator as the revoke handlers see it: the dashboard's session is the
/// master password's.
fn dashboard_operator() -> crate::auth::Principal {
    crate::auth::Principal::Operator(crate::auth::OperatorVia::Login)
}

/// Revokes an agent session (what it left held is cancelled with it), as
/// `POST /v1/sessions/{id}/revoke` does.
async fn revoke_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    let back = match state.store.session(&id) {
        Ok(Some(session)) => format!("/dashboard/wallets/{}", session.wallet_id),
        _ => "/dashboard".to_string(),
    };
    match crate::routes::sessions::revoke_session(State(state.clone()), dashboard_operator(), Path(id)).await {
        Ok(_) => redirect(&back),
        Err(error) => refused(&error, &back),
    }
}

/// Revokes a registered agent at once, as `POST /v1/agents/{address}/revoke` does.
async fn revoke_agent(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(address): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    let back = match state.store.active_agent(&address) {
        Ok(Some(agent)) => format!("/dashboard/wallets/{}", agent.wallet_id),
        _ => "/dashboard".to_string(),
    };
    match crate::routes::agents::revoke(State(state.clone()), dashboard_operator(), Path(address)).await {
        Ok(_) => redirect(&back),
        Err(error) => refused(&error, &back),
    }
}

/// The dashboard's script (passkey and browser-wallet signing).
const OWNER_JS: &str = include_str!("dashboard_owner.js");

async fn owner_js() -> Response {
    let mut response = OWNER_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

async fn style() -> Response {
    let mut response = STYLE.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/css"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The dashboard's routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/style.css", get(style))
        .route("/dashboard/owner.js", get(owner_js))
        .route("/dashboard/login", post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/audit", get(audit))
        .route("/dashboard/wallets/{id}", get(wallet_page))
        .route("/dashboard/wallets/{id}/freeze", post(freeze))
        .route("/dashboard/wallets/{id}/unfreeze", post(unfreeze))
        .route("/dashboard/wallets/{id}/passkeys", post(register_passkey))
        .route("/dashboard/webhooks", get(webhooks_page))
        .route("/dashboard/wallets/{id}/policy", get(editor::editor_page))
        .route("/dashboard/wallets/{id}/policy/check", post(editor::check))
        .route("/dashboard/wallets/{id}/policy/save", post(editor::save))
        .route("/dashboard/sessions/{id}/revoke", post(revoke_session))
        .route("/dashboard/agents/{address}/revoke", post(revoke_agent))
        .route("/dashboard/approvals/{id}", get(approval_page))
        .route("/dashboard/approvals/{id}/decide", post(decide))
        // The same limit as REST's (axum's default would be 2 MB).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("a \"b\" & c"), "a &quot;b&quot; &amp; c");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn cross_origin_posts_are_detected() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:3100"));
        assert!(!cross_origin(&headers), "no Origin: a same-origin form in older browsers");
        headers.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:3100"));
        assert!(!cross_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(cross_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_origin(&headers));
    }
}
