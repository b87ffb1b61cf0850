//! The policy editor: edit the document, **Check** (it is parsed as `PUT …/policy`
//! would parse it, the diff against the current version is shown, and a sample action
//! is explained under the proposed policy and the current one), then **Save** (the
//! same handler as `PUT /v1/wallets/{id}/policy`, refused when the policy changed
//! since the check).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use mandate_core::policy::Policy;
use serde::Deserialize;
use serde_json::Value;

use super::views::why_words;
use super::{checked_post, escape, forbidden, login_page, nav, page, redirect, refused, session_csrf};
use crate::request::EvaluateRequest;
use crate::state::AppState;

/// Lines compared at most by the diff (beyond it the page shows both versions whole).
const DIFF_CELLS: usize = 4_000_000;

/// One line of a diff.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// A line diff (longest common subsequence) of `old` and `new`; `None` when they are
/// too long to compare.
pub(super) fn diff<'a>(old: &'a str, new: &'a str) -> Option<Vec<Line<'a>>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if (a.len() + 1).saturating_mul(b.len() + 1) > DIFF_CELLS {
        return None;
    }
    // lcs[i][j]: the common subsequence's length of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            let value = if a.get(i) == b.get(j) {
                lcs.get((i + 1) * width + j + 1).copied().unwrap_or(0) + 1
            } else {
                let down = lcs.get((i + 1) * width + j).copied().unwrap_or(0);
                let right = lcs.get(i * width + j + 1).copied().unwrap_or(0);
                down.max(right)
            };
            if let Some(cell) = lcs.get_mut(i * width + j) {
                *cell = value;
            }
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    loop {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push(Line::Same(x));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) => {
                let down = lcs.get((i + 1) * width + j).copied().unwrap_or(0);
                let right = lcs.get(i * width + j + 1).copied().unwrap_or(0);
                if down >= right {
                    out.push(Line::Removed(x));
                    i += 1;
                } else {
                    out.push(Line::Added(y));
                    j += 1;
                }
            }
            (Some(x), None) => {
                out.push(Line::Removed(x));
                i += 1;
            }
            (None, Some(y)) => {
                out.push(Line::Added(y));
                j += 1;
            }
            (None, None) => break,
        }
    }
    Some(out)
}

/// A JSON text pretty-printed with sorted keys, so that a diff shows changes only.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_else(|_| text.into())
}

fn diff_html(old: &str, new: &str) -> String {
    let Some(lines) = diff(old, new) else {
        return format!(
            "<p>Too long to compare line by line.</p><h3>Current</h3><pre>{}</pre><h3>Proposed</h3><pre>{}</pre>",
            escape(old),
            escape(new)
        );
    };
    let changed = lines.iter().filter(|line| !matches!(line, Line::Same(_))).count();
    let mut out = format!("<p id=\"diff-summary\">{changed} changed lines.</p><pre id=\"policy-diff\">");
    for line in &lines {
        let _ = match line {
            Line::Same(text) => writeln!(out, "  {}", escape(text)),
            Line::Removed(text) => writeln!(out, "<del>- {}</del>", escape(text)),
            Line::Added(text) => writeln!(out, "<ins>+ {}</ins>", escape(text)),
        };
    }
    out.push_str("</pre>");
    out
}

fn sample_default(state: &AppState, wallet: &str) -> String {
    let to = state
        .store
        .transactions(wallet, 1)
        .ok()
        .and_then(|txs| txs.into_iter().next())
        .map(|tx| tx.recipient.unwrap_or(tx.to))
        .unwrap_or_else(|| "0x000000000000000000000000000000000000dEaD".into());
    serde_json::json!({"type": "transfer", "to": to, "amount": "0.1"}).to_string()
}

fn editor_form(wallet: &str, csrf: &str, document: &str, sample: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/dashboard/wallets/{id}/policy/check\" id=\"policy-editor\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Policy document<textarea name=\"document\" rows=\"24\">{document}</textarea></label>\
         <label>Sample action (as for <code>POST /v1/wallets/{id}/policy/evaluate</code>)\
         <textarea name=\"sample\" rows=\"3\">{sample}</textarea></label>\
         <button type=\"submit\">Check</button></form>",
        id = escape(wallet),
        csrf = escape(csrf),
        document = escape(document),
        sample = escape(sample),
    )
}

/// `GET /dashboard/wallets/{id}/policy`.
pub(super) async fn editor_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(csrf) = session_csrf(&headers) else { return login_page(StatusCode::OK, None) };
    if !matches!(state.store.wallet(&id), Ok(Some(_))) {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>No such wallet.</p>");
    }
    let (version, document) = match state.store.policy(&id) {
        Ok(Some(stored)) => (stored.version.to_string(), pretty(&stored.document)),
        _ => ("none".into(), "{\n  \"version\": 1,\n  \"rules\": []\n}".into()),
    };
    let body = format!(
        "{}<h1>Edit the policy of <a href=\"/dashboard/wallets/{id}\">{id}</a></h1><p>Current version: {}. \
         <strong>Check</strong> validates the document, shows what changes and explains the sample action; \
         saving is offered after it.</p>{}",
        nav(&csrf),
        escape(&version),
        editor_form(&id, &csrf, &document, &sample_default(&state, &id)),
        id = escape(&id),
    );
    page(StatusCode::OK, "Policy editor", &body)
}

#[derive(Deserialize)]
pub(super) struct CheckForm {
    csrf: String,
    document: String,
    #[serde(default)]
    sample: String,
}

/// The decision for the sample under `policy`, in a table row.
async fn explained(
    state: &AppState,
    wallet: &mandate_store::WalletRecord,
    policy: Option<&Policy>,
    sample: &str,
) -> String {
    let result = match EvaluateRequest::parse(sample.as_bytes()) {
        Ok(request) => crate::actions::explain_under(state, wallet, policy, request, false).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(answer) => {
            let decision = answer.get("decision").cloned().unwrap_or(Value::Null);
            let text = |name: &str| decision.get(name).and_then(Value::as_str).unwrap_or("").to_string();
            let verdict = text("verdict");
            let tier_rules: Vec<&str> = decision
                .get("tier_rules")
                .and_then(Value::as_array)
                .map(|rules| rules.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let rule =
                if verdict == "allow" && !tier_rules.is_empty() { tier_rules.join(", ") } else { text("rule_id") };
            format!(
                "<td class=\"verdict\">{}</td><td>{}</td><td>{}</td><td>{}</td>",
                escape(&verdict),
                escape(&text("tier")),
                escape(&rule),
                escape(&why_words(&decision))
            )
        }
        Err(error) => format!(
            "<td class=\"verdict\">error</td><td colspan=\"3\">{}: {}</td>",
            escape(error.code.as_str()),
            escape(&error.to_string())
        ),
    }
}

/// `POST /dashboard/wallets/{id}/policy/check`.
pub(super) async fn check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CheckForm>,
) -> Response {
    let Some(csrf) = checked_post(&headers, &form.csrf) else { return forbidden() };
    let Ok(Some(wallet)) = state.store.wallet(&id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>No such wallet.</p>");
    };
    let current = state.store.policy(&id).ok().flatten();
    let mut body = format!(
        "{}<h1>Check the policy of <a href=\"/dashboard/wallets/{id}\">{id}</a></h1>",
        nav(&csrf),
        id = escape(&id)
    );
    let proposed = match Policy::parse(&form.document) {
        Ok(policy) => policy,
        Err(error) => {
            let _ = write!(
                body,
                "<p class=\"error\" id=\"policy-invalid\">INVALID_POLICY: {}</p>{}",
                escape(&error.to_string()),
                editor_form(&id, &csrf, &form.document, &form.sample)
            );
            return page(StatusCode::BAD_REQUEST, "Policy refused", &body);
        }
    };
    let old = current.as_ref().map(|stored| pretty(&stored.document)).unwrap_or_default();
    let new = pretty(&form.document);
    let base = current.as_ref().map(|stored| stored.version.to_string()).unwrap_or_else(|| "0".into());
    let now_policy = crate::context::policy_of(&state, &id).ok().flatten();
    let _ = write!(
        body,
        "<p class=\"notice\" id=\"policy-valid\">The document is a valid policy ({} rules).</p>\
         <h2>Changes against version {}</h2>{}\
         <h2>The sample action</h2><pre>{}</pre><table id=\"explain\"><tr><th>Policy</th><th>Verdict</th><th>Tier</th>\
         <th>Rule</th><th>Why</th></tr><tr id=\"explain-proposed\"><td>proposed</td>{}</tr>\
         <tr id=\"explain-current\"><td>current</td>{}</tr></table>",
        proposed.rules.len(),
        escape(&base),
        diff_html(&old, &new),
        escape(&form.sample),
        explained(&state, &wallet, Some(&proposed), &form.sample).await,
        explained(&state, &wallet, now_policy.as_deref(), &form.sample).await,
    );
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/dashboard/wallets/{id}/policy/save\" id=\"policy-save\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"base\" value=\"{base}\">\
         <input type=\"hidden\" name=\"document\" value=\"{document}\">\
         <button type=\"submit\">Save as the new version</button></form><h2>Edit again</h2>{}",
        editor_form(&id, &csrf, &form.document, &form.sample),
        id = escape(&id),
        csrf = escape(&csrf),
        base = escape(&base),
        document = escape(&form.document),
    );
    page(StatusCode::OK, "Policy check", &body)
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    csrf: String,
    /// The version the check compared against.
    base: String,
    document: String,
}

/// `POST /dashboard/wallets/{id}/policy/save`: `PUT /v1/wallets/{id}/policy` as the
/// operator, unless another version was saved since the check.
pub(super) async fn save(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<SaveForm>,
) -> Response {
    if checked_post(&headers, &form.csrf).is_none() {
        return forbidden();
    }
    let back = format!("/dashboard/wallets/{id}/policy");
    let current = match state.store.policy(&id) {
        Ok(stored) => stored.map(|stored| stored.version.to_string()).unwrap_or_else(|| "0".into()),
        Err(error) => return refused(&error.into(), &back),
    };
    if current != form.base {
        let text = format!(
            "<p class=\"error\" id=\"refusal\">Version {} was saved after the check against version {}: nothing was \
             saved. <a href=\"{}\">Check again</a></p>",
            escape(&current),
            escape(&form.base),
            escape(&back)
        );
        return page(StatusCode::CONFLICT, "Policy changed", &text);
    }
    let principal = super::dashboard_operator();
    let body = Ok(Bytes::from(form.document.into_bytes()));
    match crate::routes::wallets::set_policy(State(state.clone()), principal, Path(id.clone()), body).await {
        Ok(_) => redirect(&format!("/dashboard/wallets/{id}")),
        Err(error) => refused(&error, &back),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_keeps_common_lines_and_marks_changes() {
        let old = "a\nb\nc\nd";
        let new = "a\nc\nd\ne";
        assert_eq!(
            diff(old, new).unwrap(),
            vec![Line::Same("a"), Line::Removed("b"), Line::Same("c"), Line::Same("d"), Line::Added("e")]
        );
        assert_eq!(diff("", "x").unwrap(), vec![Line::Added("x")]);
        assert_eq!(diff("x", "x").unwrap(), vec![Line::Same("x")]);
    }

    #[test]
    fn the_diff_escapes_both_sides() {
        let html = diff_html("{\"id\": \"<a>\"}", "{\"id\": \"<b>\"}");
        assert!(html.contains("<del>- {&quot;id&quot;: &quot;&lt;a&gt;&quot;}</del>"), "{html}");
        assert!(html.contains("<ins>+ {&quot;id&quot;: &quot;&lt;b&gt;&quot;}</ins>"), "{html}");
    }
}
