//! The operator's login token, kept between commands so that each command does not
//! log in again (and the audit trail is not half `admin.login`): one 0600 file per
//! daemon URL in `MANDATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mandate`, else
//! `~/.config/mandate` (the directory 0700). It is reused until it expires (15
//! minutes after the login) and only while the master password variable is set; a
//! token the daemon refuses is forgotten and the CLI logs in again. The token is
//! never printed. With no such directory (no `HOME`), nothing is cached.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use mandate_client::{Secret, Url};
use mandate_mpc::net::{read_secret_file, write_secret_file};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A cached token is not used in its last minute: a command may take that long.
const SPARE_SECS: u64 = 60;
/// The login token's prefix (the daemon's `mnd_admin_…`).
const TOKEN_PREFIX: &str = "mnd_admin_";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The directory of the cache, if there is one.
fn dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    var("MANDATE_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|dir| dir.join("mandate")))
        .or_else(|| var("HOME").map(|home| home.join(".config").join("mandate")))
}

/// The cache file of the daemon at `base`.
pub(crate) fn path(base: &Url) -> Option<PathBuf> {
    let digest = hex::encode(Sha256::digest(base.as_str().as_bytes()));
    dir().map(|dir| dir.join(format!("login-{}.json", digest.get(..16).unwrap_or(&digest))))
}

/// The cached token for `base`, if one is there, readable by this user only, for
/// this URL and not about to expire.
pub(crate) fn load(base: &Url) -> Option<Secret> {
    let bytes = read_secret_file(&path(base)?).ok()?;
    let cached: Value = serde_json::from_slice(&bytes).ok()?;
    let token = cached.get("token")?.as_str()?;
    let fresh = cached.get("expires_at")?.as_u64()? > now().saturating_add(SPARE_SECS);
    let valid = token.starts_with(TOKEN_PREFIX) && token.bytes().all(|b| b.is_ascii_graphic());
    (cached.get("url")?.as_str()? == base.as_str() && fresh && valid).then(|| Secret::new(token))
}

/// Keeps `token` for `base` until `expires_at`. A failure only costs the next
/// command a login: it is reported on stderr, without the token.
pub(crate) fn store(base: &Url, token: &Secret, expires_at: u64) {
    let Some(path) = path(base) else { return };
    let body = json!({"url": base.as_str(), "token": token.expose(), "expires_at": expires_at}).to_string();
    let written = path
        .parent()
        .map_or(Ok(()), |dir| {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| e.to_string())
        })
        .and_then(|()| write_secret_file(&path, body.as_bytes(), true).map_err(|e| e.to_string()));
    if let Err(error) = written {
        eprintln!("note: the login could not be kept for the next command ({error})");
    }
}

/// Forgets the token for `base` (the daemon refused it).
pub(crate) fn forget(base: &Url) {
    if let Some(path) = path(base) {
        let _ = std::fs::remove_file(path);
    }
}
