//! Provisioning as the operator sees it: `init` and `pair` for the daemon and for
//! each party, every key shown with its fingerprint (docs/ARCHITECTURE.md, data
//! directories). Pairing exchanges public keys only; the operator compares the
//! fingerprint a party's `init` printed on its own host with the one `pair` prints
//! on the other: a key swapped in transit shows up there.

use std::path::PathBuf;

use mandate_core::Role;
use serde_json::{json, Value};

use crate::output::{CliResult, Report};
use crate::parties;

const COMPARE: &str = "Compare each fingerprint with the one that party's own `init` printed on its host; \
                       if one differs, the key was swapped: do not use this pairing.";

fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// One line per party: role, fingerprint, address, key.
fn party_line(party: &Value) -> String {
    let addr = party.get("addr").and_then(Value::as_str).map(|addr| format!("  at {addr}")).unwrap_or_default();
    format!(
        "  {:<9} fingerprint {}{addr}\n            key {}",
        field(party, "role"),
        field(party, "fingerprint"),
        field(party, "public_key")
    )
}

fn lines(parties: Option<&Value>) -> Vec<String> {
    parties.and_then(Value::as_array).map(|all| all.iter().map(party_line).collect()).unwrap_or_default()
}

/// `mandate init`.
pub(crate) fn init_daemon(
    data_dir: PathBuf,
    auto_provision: bool,
    dev: bool,
    cosigner_addr: Option<String>,
    service_addr: String,
    database: Option<mandate_server::DatabaseUrl>,
) -> CliResult<Report> {
    let options = mandate_server::InitOptions { data_dir, auto_provision, dev, cosigner_addr, service_addr, database };
    let report = mandate_server::init(&options)?;
    let data_dir = field(&report, "data_dir").to_string();
    let mut text = if dev {
        vec![format!(
            "initialised {data_dir} (--dev: the service, the cosigner and the recovery party in this one directory, \
             paired; for `mandate serve --dev` on one host, never for real funds)"
        )]
    } else {
        vec![format!("initialised {data_dir} (production layout: the service party only)")]
    };
    text.extend(lines(report.get("parties")));
    if let Some(file) = report.get("master_password_file").and_then(Value::as_str) {
        text.push(format!("master password: {file} (0600)"));
    }
    if !dev {
        text.push(
            "next: `mandate cosigner init` on the cosigner's host and `mandate recovery init` on the recovery \
             machine, then `mandate pair --cosigner-pubkey … --cosigner-addr … --recovery-pubkey …` here \
             (README, \"Production layout\")"
                .into(),
        );
    }
    Ok(Report::with_text(report, text.join("\n")))
}

/// `mandate pair`: pins the cosigner and the recovery party in the daemon's service party.
pub(crate) fn pair_daemon(
    data_dir: PathBuf,
    cosigner_pubkey: String,
    cosigner_addr: String,
    recovery_pubkey: String,
    database: Option<mandate_server::DatabaseUrl>,
) -> CliResult<Report> {
    let options = mandate_server::PairOptions { data_dir, cosigner_pubkey, cosigner_addr, recovery_pubkey, database };
    let report = mandate_server::pair(&options)?;
    let mut text = vec![format!("the daemon's service party in {}:", field(&report, "data_dir"))];
    text.extend(report.get("party").map(party_line));
    text.push("now trusts:".into());
    text.extend(lines(report.get("pinned")));
    text.push(COMPARE.into());
    text.push("Restart the daemon to use new pins.".into());
    Ok(Report::with_text(report, text.join("\n")))
}

/// `mandate cosigner|service init --data-dir`, `mandate recovery init --dir`: a
/// party's own home, in its own place.
pub(crate) fn init_party(dir: PathBuf, role: Role) -> CliResult<Report> {
    let key = parties::init(&dir, role)?;
    let mut report = mandate_server::party_json(role, &key, None);
    if let Some(map) = report.as_object_mut() {
        map.insert("data_dir".into(), json!(dir.display().to_string()));
    }
    let text = format!(
        "{role} party initialised in {}\n{}\nGive the key to the other parties' operators; \
         they compare this fingerprint when they pair.",
        dir.display(),
        party_line(&report)
    );
    Ok(Report::with_text(report, text))
}

/// `mandate cosigner|service|recovery pair`: pins the other two parties' public keys.
pub(crate) fn pair_party(dir: PathBuf, role: Role, entries: &[(Role, &String, Option<&String>)]) -> CliResult<Report> {
    let (key, peers) = parties::pair(&dir, role, entries)?;
    let own = mandate_server::party_json(role, &key, None);
    let pinned: Vec<Value> = peers
        .peers
        .iter()
        .map(|(peer, entry)| mandate_server::party_json(*peer, &entry.public_key, entry.addr.as_deref()))
        .collect();
    let report = json!({"role": role, "data_dir": dir.display().to_string(), "party": own, "pinned": pinned.clone()});
    let mut text = vec![format!("the {role} party in {}:", dir.display()), party_line(&own), "now trusts:".into()];
    text.extend(pinned.iter().map(party_line));
    text.push(COMPARE.into());
    Ok(Report::with_text(report, text.join("\n")))
}
