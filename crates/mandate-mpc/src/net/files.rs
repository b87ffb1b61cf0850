//! Secret files: created 0600, refused when group/world-readable; share blobs on disk.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mandate_core::{Role, WalletId};
use zeroize::Zeroizing;

use crate::blob;
use crate::error::{MpcError, Result};
use crate::share::KeyShare;

fn io(path: &Path, e: std::io::Error) -> MpcError {
    MpcError::Io(format!("{}: {e}", path.display()))
}

/// Writes a secret file with mode 0600. With `replace`, atomically replaces an
/// existing file (write to a temporary file, fsync, rename); without, refuses to
/// overwrite.
pub fn write_secret_file(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let target = if replace { path.with_extension("tmp") } else { path.to_path_buf() };
    if replace {
        let _ = std::fs::remove_file(&target);
    }
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&target).map_err(|e| io(&target, e))?;
    file.write_all(bytes).map_err(|e| io(&target, e))?;
    file.sync_all().map_err(|e| io(&target, e))?;
    if replace {
        std::fs::rename(&target, path).map_err(|e| io(path, e))?;
    }
    Ok(())
}

/// Reads a secret file, refusing it if group or others may read it.
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(MpcError::InsecurePermissions(path.display().to_string()));
    }
    std::fs::read(path).map(Zeroizing::new).map_err(|e| io(path, e))
}

/// Reads a secret from `NAME` or, failing that, from the file named by `NAME_FILE`.
/// The file variant is checked for permissions; a trailing newline is dropped.
pub fn read_secret_env(name: &str) -> Result<Zeroizing<Vec<u8>>> {
    if let Ok(value) = std::env::var(name) {
        if !value.is_empty() {
            return Ok(Zeroizing::new(value.into_bytes()));
        }
    }
    let file_var = format!("{name}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => {
            // The file is the user's to name: a wrong name is their input to fix.
            match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(MpcError::InvalidInput(format!("{file_var} names {path}, which does not exist")))
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(MpcError::InvalidInput(format!("{file_var} names {path}, which this user cannot read")))
                }
                _ => {}
            }
            let mut bytes = read_secret_file(Path::new(&path))?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            if bytes.is_empty() {
                return Err(MpcError::InvalidInput(format!("{file_var} names an empty file")));
            }
            Ok(bytes)
        }
        Err(_) => Err(MpcError::InvalidInput(format!("set {name} or {file_var}"))),
    }
}

/// A directory of one party's encrypted shares, one file per wallet, with the
/// opened shares cached in memory (Argon2id is deliberately slow; it runs once per
/// wallet per process).
pub struct ShareDir {
    dir: PathBuf,
    role: Role,
    passphrase: Zeroizing<Vec<u8>>,
    kdf: blob::KdfParams,
    cache: Mutex<HashMap<WalletId, Arc<KeyShare>>>,
}

impl ShareDir {
    /// Opens (creating if needed) the share directory of `role`.
    pub fn new(dir: PathBuf, role: Role, passphrase: Zeroizing<Vec<u8>>) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io(&dir, e))?;
        Ok(ShareDir { dir, role, passphrase, kdf: blob::KdfParams::PRODUCTION, cache: Mutex::new(HashMap::new()) })
    }

    /// Uses a different Argon2id cost for new blobs (never below the minimum).
    pub fn with_kdf(mut self, kdf: blob::KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// The file holding `wallet`'s share.
    pub fn path(&self, wallet: &WalletId) -> PathBuf {
        self.dir.join(format!("{wallet}.share"))
    }

    /// Whether a share for `wallet` is stored.
    pub fn contains(&self, wallet: &WalletId) -> bool {
        self.path(wallet).exists()
    }

    /// Loads `wallet`'s share (cached after the first load).
    pub fn load(&self, wallet: &WalletId) -> Result<Arc<KeyShare>> {
        if let Some(share) = self.cache.lock().map_err(|_| MpcError::Io("share cache poisoned".into()))?.get(wallet) {
            return Ok(share.clone());
        }
        let path = self.path(wallet);
        if !path.exists() {
            return Err(MpcError::ShareNotFound { wallet: wallet.to_string(), role: self.role });
        }
        let bytes = read_secret_file(&path)?;
        let share = Arc::new(blob::open(&bytes, &self.passphrase, wallet, self.role)?);
        self.cache
            .lock()
            .map_err(|_| MpcError::Io("share cache poisoned".into()))?
            .insert(wallet.clone(), share.clone());
        Ok(share)
    }

    /// Seals and stores `share`, replacing any previous share of the wallet.
    pub fn store(&self, share: KeyShare) -> Result<Arc<KeyShare>> {
        if share.role() != self.role {
            return Err(MpcError::InvalidInput(format!("{} share offered to the {} store", share.role(), self.role)));
        }
        let sealed = blob::seal_with(&share, &self.passphrase, self.kdf, &mut rand_core::OsRng)?;
        let path = self.path(share.wallet_id());
        write_secret_file(&path, &sealed, true)?;
        let share = Arc::new(share);
        self.cache
            .lock()
            .map_err(|_| MpcError::Io("share cache poisoned".into()))?
            .insert(share.wallet_id().clone(), share.clone());
        Ok(share)
    }
}
