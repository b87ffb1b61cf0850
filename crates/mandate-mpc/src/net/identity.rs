//! Static Noise identity keys and the book of pinned peer keys.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use mandate_core::Role;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::files::{read_secret_file, write_secret_file};
use crate::error::{MpcError, Result};

pub(crate) const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// A party's public identity key (X25519), pinned by its peers at pairing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicIdentity(pub [u8; 32]);

impl PublicIdentity {
    /// Hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for PublicIdentity {
    type Err = MpcError;
    fn from_str(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim()).map_err(|_| MpcError::InvalidInput("identity key is not hex".into()))?;
        let array: [u8; 32] =
            bytes.try_into().map_err(|_| MpcError::InvalidInput("identity key must be 32 bytes".into()))?;
        Ok(PublicIdentity(array))
    }
}

impl TryFrom<String> for PublicIdentity {
    type Error = MpcError;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<PublicIdentity> for String {
    fn from(id: PublicIdentity) -> Self {
        id.to_hex()
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({})", self.to_hex())
    }
}

impl fmt::Display for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A party's static private identity key. Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct IdentityKey {
    private: [u8; 32],
    #[zeroize(skip)]
    public: PublicIdentity,
}

impl IdentityKey {
    /// A fresh key pair.
    pub fn generate() -> Result<Self> {
        let params = NOISE_PARAMS.parse().map_err(|e| MpcError::InvalidInput(format!("noise params: {e:?}")))?;
        let pair = snow::Builder::new(params)
            .generate_keypair()
            .map_err(|e| MpcError::InvalidInput(format!("keypair: {e}")))?;
        let private: [u8; 32] =
            pair.private.as_slice().try_into().map_err(|_| MpcError::InvalidInput("private key length".into()))?;
        let public: [u8; 32] =
            pair.public.as_slice().try_into().map_err(|_| MpcError::InvalidInput("public key length".into()))?;
        Ok(IdentityKey { private, public: PublicIdentity(public) })
    }

    /// The public half.
    pub fn public(&self) -> PublicIdentity {
        self.public
    }

    pub(crate) fn private_bytes(&self) -> &[u8; 32] {
        &self.private
    }

    /// Writes the key to a new 0600 file (refuses to overwrite).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = Zeroizing::new(format!("{}\n{}\n", hex::encode(self.private), self.public.to_hex()));
        write_secret_file(path, text.as_bytes(), false)
    }

    /// Loads a key file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_secret_file(path)?;
        let text =
            std::str::from_utf8(&text).map_err(|_| MpcError::InvalidInput("identity key file is not text".into()))?;
        let mut lines = text.lines();
        let private = Zeroizing::new(
            hex::decode(lines.next().unwrap_or_default().trim())
                .map_err(|_| MpcError::InvalidInput("identity key file is malformed".into()))?,
        );
        let public: PublicIdentity = lines.next().unwrap_or_default().parse()?;
        let private: [u8; 32] = private
            .as_slice()
            .try_into()
            .map_err(|_| MpcError::InvalidInput("identity key file is malformed".into()))?;
        Ok(IdentityKey { private, public })
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKey").field("public", &self.public).field("private", &"<redacted>").finish()
    }
}

/// A pinned peer: its identity key and, for parties that listen, its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// The peer's pinned identity key.
    pub public_key: PublicIdentity,
    /// Where to dial it (`host:port`), if it listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
}

/// The peers a party trusts, by role. Written at pairing; no protocol message changes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerBook {
    /// Pinned peers.
    pub peers: BTreeMap<Role, PeerEntry>,
}

impl PeerBook {
    /// The role whose pinned key is `key`, if any.
    pub fn role_of(&self, key: &PublicIdentity) -> Option<Role> {
        self.peers.iter().find(|(_, entry)| entry.public_key == *key).map(|(role, _)| *role)
    }

    /// The pinned entry for `role`.
    pub fn get(&self, role: Role) -> Result<&PeerEntry> {
        self.peers.get(&role).ok_or_else(|| MpcError::InvalidInput(format!("no pinned key for {role}: pair it first")))
    }

    /// Loads a peer book (JSON).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| MpcError::Io(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| MpcError::InvalidInput(format!("{}: {e}", path.display())))
    }

    /// Saves the peer book (JSON).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| MpcError::InvalidInput(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| MpcError::Io(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = IdentityKey::generate().unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains(&hex::encode(key.private_bytes())));
    }

    #[test]
    fn key_file_is_0600_and_loose_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let key = IdentityKey::generate().unwrap();
        key.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(IdentityKey::load(&path).unwrap().public(), key.public());
        assert!(key.save(&path).is_err(), "must not overwrite an existing key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = IdentityKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("readable by group or others"), "{err}");
    }
}
