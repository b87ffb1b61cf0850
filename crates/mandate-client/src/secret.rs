//! Secrets the client holds or receives (tokens, operator keys, the master password,
//! webhook secrets): wrapped so that `Debug` prints `<redacted>` and the memory is
//! wiped when dropped.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A secret string. `Debug` never shows it; [`Secret::expose`] is the one way out.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(text.into()))
    }

    /// Reads a secret from a file that group and others cannot read (on Unix), without
    /// its trailing line break.
    pub fn from_file(path: &Path) -> Result<Secret> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::InsecureFile(format!(
                    "{} is readable by group or others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?);
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(Error::InvalidInput(format!("{} is empty", path.display())));
        }
        Ok(Secret::new(trimmed))
    }

    /// The secret itself: for a header, a file the caller protects, or the screen once.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// Who the client acts as. Tokens are sent as `Authorization: Bearer …`; an agent key
/// signs each request instead (docs/AGENTS.md) and sends no secret at all.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An agent's session token (`mnd_sess_…`).
    Session(Secret),
    /// An operator key (`mnd_op_…`), within its scopes.
    OperatorKey(Secret),
    /// An operator token from [`crate::Client::login`] (`mnd_admin_…`).
    Admin(Secret),
    /// An agent's own key, registered by an owner for `wallet`: every request is signed.
    Agent {
        /// The key (its `Debug` shows only the address).
        key: std::sync::Arc<mandate_core::agent::AgentKey>,
        /// The wallet it acts for.
        wallet: String,
    },
}

impl Credential {
    /// The bearer token, for the credentials that are one.
    pub(crate) fn token(&self) -> Option<&Secret> {
        match self {
            Credential::Session(token) | Credential::OperatorKey(token) | Credential::Admin(token) => Some(token),
            Credential::Agent { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let secret = Secret::new("mnd_sess_topsecret");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        let credential = Credential::OperatorKey(Secret::new("mnd_op_topsecret"));
        assert_eq!(format!("{credential:?}"), "OperatorKey(<redacted>)");
        let parsed: Secret = serde_json::from_str("\"mnd_admin_topsecret\"").unwrap();
        assert!(!format!("{parsed:?}").contains("topsecret"));
        assert_eq!(parsed.expose(), "mnd_admin_topsecret");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mandate-client-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "mnd_sess_abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Secret::from_file(&path), Err(Error::InsecureFile(_))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "mnd_sess_abc");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
