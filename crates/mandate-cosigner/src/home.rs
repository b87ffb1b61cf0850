//! A party's data directory.
//!
//! ```text
//! <dir>/identity.key   Noise static key (0600)
//! <dir>/peers.json     pinned peer keys and addresses (written by `pair`)
//! <dir>/shares/        encrypted key shares, one per wallet (0600, dir 0700)
//! <dir>/wallets.json   wallet id → address, the party's own record
//! <dir>/limits.toml    cosigner only: hard limits
//! <dir>/ledger.json    cosigner only: the last 24 hours' signed amounts (as of the last compaction)
//! <dir>/ledger.journal cosigner only: the amounts committed since (one fsynced line each)
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mandate_core::{Role, WalletId};
use mandate_mpc::net::{IdentityKey, PeerBook, PublicIdentity, ShareDir};
use mandate_mpc::{MpcError, Result};
use zeroize::Zeroizing;

use crate::limits::DEFAULT_LIMITS;

/// A party's data directory.
#[derive(Debug, Clone)]
pub struct PartyHome {
    dir: PathBuf,
    role: Role,
}

/// The cosigner's data directory (a [`PartyHome`] with limits and a ledger).
pub type CosignerHome = PartyHome;

fn io(path: &Path, e: std::io::Error) -> MpcError {
    MpcError::Io(format!("{}: {e}", path.display()))
}

impl PartyHome {
    /// The home of `role` at `dir`.
    pub fn new(dir: impl Into<PathBuf>, role: Role) -> Self {
        PartyHome { dir: dir.into(), role }
    }

    /// The party.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (0700) and a new identity key; the cosigner also gets
    /// the default limits file. Refuses to overwrite an existing identity.
    pub fn init(&self) -> Result<PublicIdentity> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io(&self.dir, e))?;
        let key = IdentityKey::generate()?;
        key.save(&self.identity_path())?;
        if self.role == Role::Cosigner && !self.limits_path().exists() {
            std::fs::write(self.limits_path(), DEFAULT_LIMITS).map_err(|e| io(&self.limits_path(), e))?;
        }
        Ok(key.public())
    }

    fn identity_path(&self) -> PathBuf {
        self.dir.join("identity.key")
    }

    /// The limits file (cosigner).
    pub fn limits_path(&self) -> PathBuf {
        self.dir.join("limits.toml")
    }

    /// The owners file of a standalone service party (`mandate service serve`):
    /// `owners = [...]` for every wallet and `[wallets] wal_… = [...]` per wallet,
    /// each an `ed25519:<hex>` or `evm:0x…` key. Who may authorise a ceremony there.
    /// (The daemon's service party uses the owners in its database instead; the
    /// cosigner those in its `limits.toml`.)
    pub fn owners_path(&self) -> PathBuf {
        self.dir.join("owners.toml")
    }

    /// The owners `owners.toml` names for `wallet` (none when the file is absent).
    pub fn owners_of(&self, wallet: &WalletId) -> Result<Vec<mandate_chain::approval::OwnerKey>> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct OwnersFile {
            #[serde(default)]
            owners: Vec<mandate_chain::approval::OwnerKey>,
            #[serde(default)]
            wallets: BTreeMap<String, Vec<mandate_chain::approval::OwnerKey>>,
        }
        let path = self.owners_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path, e)),
        };
        let file: OwnersFile =
            toml::from_str(&text).map_err(|e| MpcError::InvalidInput(format!("{}: {e}", path.display())))?;
        Ok(file.wallets.get(wallet.as_str()).cloned().unwrap_or(file.owners))
    }

    /// The ledger file (cosigner).
    pub fn ledger_path(&self) -> PathBuf {
        self.dir.join("ledger.json")
    }

    /// Loads the identity key (refusing loose permissions).
    pub fn identity(&self) -> Result<IdentityKey> {
        IdentityKey::load(&self.identity_path())
    }

    /// Loads the pinned peers.
    pub fn peers(&self) -> Result<PeerBook> {
        PeerBook::load(&self.dir.join("peers.json"))
    }

    /// Pins peers (replacing earlier pins). Refuses the party itself as a peer and any
    /// key used twice: the service, cosigner and recovery keys must be three different keys.
    pub fn pair(&self, book: &PeerBook) -> Result<()> {
        if book.peers.contains_key(&self.role) {
            return Err(MpcError::InvalidInput(format!("a {} cannot pin itself as a peer", self.role)));
        }
        let own = self.identity()?.public();
        let mut keys = vec![own];
        for entry in book.peers.values() {
            if keys.contains(&entry.public_key) {
                return Err(MpcError::InvalidInput(
                    "the service, cosigner and recovery keys must be three different keys".into(),
                ));
            }
            keys.push(entry.public_key);
        }
        book.save(&self.dir.join("peers.json"))
    }

    /// The share directory, opened with `passphrase`.
    pub fn shares(&self, passphrase: Zeroizing<Vec<u8>>) -> Result<ShareDir> {
        ShareDir::new(self.dir.join("shares"), self.role, passphrase)
    }

    /// This party's own record of wallet addresses.
    pub fn wallets(&self) -> Result<BTreeMap<WalletId, String>> {
        let path = self.dir.join("wallets.json");
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| MpcError::InvalidInput(format!("{}: {e}", path.display())))
    }

    /// Records a wallet's address.
    pub fn record_wallet(&self, wallet: &WalletId, address: &str) -> Result<()> {
        let mut wallets = self.wallets()?;
        wallets.insert(wallet.clone(), address.to_string());
        let path = self.dir.join("wallets.json");
        let text = serde_json::to_string_pretty(&wallets).map_err(|e| MpcError::InvalidInput(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use mandate_mpc::net::PeerEntry;

    use super::*;

    fn book(entries: &[(Role, PublicIdentity)]) -> PeerBook {
        PeerBook {
            peers: entries.iter().map(|(role, key)| (*role, PeerEntry { public_key: *key, addr: None })).collect(),
        }
    }

    #[test]
    fn pairing_needs_three_different_keys() {
        let dir = tempfile::tempdir().unwrap();
        let homes = Role::ALL.map(|role| PartyHome::new(dir.path().join(role.as_str()), role));
        let [service, cosigner, recovery] = homes.each_ref().map(|home| home.init().unwrap());
        let [service_home, _, _] = &homes;
        let peers = service_home.dir().join("peers.json");

        let same = service_home.pair(&book(&[(Role::Cosigner, cosigner), (Role::Recovery, cosigner)])).unwrap_err();
        assert!(matches!(&same, MpcError::InvalidInput(text) if text.contains("three different keys")), "{same}");
        let own = service_home.pair(&book(&[(Role::Cosigner, cosigner), (Role::Recovery, service)])).unwrap_err();
        assert!(matches!(&own, MpcError::InvalidInput(text) if text.contains("three different keys")), "{own}");
        let itself = service_home.pair(&book(&[(Role::Service, service), (Role::Recovery, recovery)])).unwrap_err();
        assert!(matches!(&itself, MpcError::InvalidInput(text) if text.contains("pin itself")), "{itself}");
        assert!(!peers.exists(), "nothing pinned by a refused pairing");

        service_home.pair(&book(&[(Role::Cosigner, cosigner), (Role::Recovery, recovery)])).unwrap();
        assert_eq!(service_home.peers().unwrap().get(Role::Recovery).unwrap().public_key, recovery);
    }
}
