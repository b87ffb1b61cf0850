//! `mandate init`: the data directory, the master password's Argon2id hash, and the
//! three parties' identity keys pinned to each other.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use mandate_core::{ErrorCode, Role};
use mandate_cosigner::PartyHome;
use mandate_mpc::net::{read_secret_env, write_secret_file, PeerBook, PeerEntry, PublicIdentity};
use mandate_store::{AuditEntry, Store};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};
use crate::now;

/// Options of `mandate init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The data directory to create.
    pub data_dir: PathBuf,
    /// Generate the master password into `<data_dir>/master-password` (0600) instead
    /// of reading `MANDATE_MASTER_PASSWORD` / `_FILE`.
    pub auto_provision: bool,
    /// Where the local cosigner listens (pinned in the other parties' books).
    pub cosigner_addr: String,
    /// Where the daemon's embedded service party listens.
    pub service_addr: String,
}

/// The meta key holding the master password's PHC string.
pub(crate) const MASTER_HASH: &str = "master_password_hash";
/// The meta key holding the embedded service party's listen address.
pub(crate) const SERVICE_ADDR: &str = "service_party_addr";
/// The meta key holding the local cosigner's address.
pub(crate) const COSIGNER_ADDR: &str = "cosigner_addr";
/// The environment variable of the master password.
pub(crate) const MASTER_PASSWORD_VAR: &str = "MANDATE_MASTER_PASSWORD";

/// Minimum length of an operator-chosen master password.
const MIN_PASSWORD_LEN: usize = 12;

/// Paths inside a data directory.
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Self {
        Layout { root: root.to_path_buf() }
    }
    pub(crate) fn master_password(&self) -> PathBuf {
        self.root.join("master-password")
    }
    pub(crate) fn cosigner_password(&self) -> PathBuf {
        self.root.join("cosigner-password")
    }
    pub(crate) fn home(&self, role: Role) -> PartyHome {
        let name = match role {
            Role::Service => "service",
            Role::Cosigner => "cosigner",
            Role::Recovery => "recovery",
        };
        PartyHome::new(self.root.join(name), role)
    }
}

fn random_secret() -> Zeroizing<Vec<u8>> {
    let bytes: [u8; 32] = rand::random();
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes).into_bytes())
}

/// Argon2id (64 MiB, 3 passes, 4 lanes) PHC string of `password`.
pub(crate) fn hash_password(password: &[u8]) -> ApiResult<String> {
    let params = Params::new(64 * 1024, 3, 4, None).map_err(|e| ApiError::internal(e.to_string()))?;
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::internal(format!("hashing the master password: {e}")))
}

/// Whether `password` matches the stored PHC string (constant-time inside argon2).
pub(crate) fn verify_password(phc: &str, password: &[u8]) -> ApiResult<bool> {
    let hash = PasswordHash::new(phc).map_err(|e| ApiError::internal(format!("stored password hash: {e}")))?;
    Ok(Argon2::default().verify_password(password, &hash).is_ok())
}

fn entry(public_key: PublicIdentity, addr: Option<&str>) -> PeerEntry {
    PeerEntry { public_key, addr: addr.map(str::to_string) }
}

fn book(entries: [(Role, PeerEntry); 2]) -> PeerBook {
    let mut book = PeerBook::default();
    book.peers.extend(entries);
    book
}

/// Creates the data directory. Refuses an initialised one.
pub fn init(options: &InitOptions) -> ApiResult<Value> {
    let layout = Layout::new(&options.data_dir);
    let root = &layout.root;
    if root.join("data.db").exists() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is initialised already; refusing to overwrite it", root.display()),
        ));
    }
    for addr in [&options.cosigner_addr, &options.service_addr] {
        addr.parse::<std::net::SocketAddr>()
            .map_err(|_| ApiError::new(ErrorCode::InvalidInput, format!("{addr:?} is not an ip:port address")))?;
    }
    let password = if options.auto_provision {
        None
    } else {
        let password = read_secret_env(MASTER_PASSWORD_VAR)?;
        if password.len() < MIN_PASSWORD_LEN {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("the master password must have at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        Some(password)
    };
    std::fs::create_dir_all(root)
        .and_then(|_| std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("{}: {e}", root.display())))?;
    let password = match password {
        Some(password) => password,
        None => {
            let password = random_secret();
            write_secret_file(&layout.master_password(), &password, false)?;
            password
        }
    };
    write_secret_file(&layout.cosigner_password(), &random_secret(), false)?;

    let service = layout.home(Role::Service).init()?;
    let cosigner = layout.home(Role::Cosigner).init()?;
    let recovery = layout.home(Role::Recovery).init()?;
    let (cosigner_addr, service_addr) = (options.cosigner_addr.as_str(), options.service_addr.as_str());
    layout.home(Role::Service).pair(&book([
        (Role::Cosigner, entry(cosigner, Some(cosigner_addr))),
        (Role::Recovery, entry(recovery, None)),
    ]))?;
    layout
        .home(Role::Cosigner)
        .pair(&book([(Role::Service, entry(service, None)), (Role::Recovery, entry(recovery, None))]))?;
    layout.home(Role::Recovery).pair(&book([
        (Role::Service, entry(service, Some(service_addr))),
        (Role::Cosigner, entry(cosigner, Some(cosigner_addr))),
    ]))?;

    let store = Store::open(root)?;
    store.set_meta(MASTER_HASH, &hash_password(&password)?)?;
    store.set_meta(SERVICE_ADDR, service_addr)?;
    store.set_meta(COSIGNER_ADDR, cosigner_addr)?;
    let details = json!({
        "service_public_key": service.to_hex(),
        "cosigner_public_key": cosigner.to_hex(),
        "recovery_public_key": recovery.to_hex(),
        "service_addr": service_addr,
        "cosigner_addr": cosigner_addr,
    });
    store.audit(
        AuditEntry {
            actor: "operator".into(),
            event: "daemon.initialised".into(),
            wallet: None,
            decision: None,
            policy_hash: None,
            details: details.clone(),
        },
        now(),
    )?;
    let mut report = json!({"data_dir": root.display().to_string(), "parties": details});
    if let (true, Some(map)) = (options.auto_provision, report.as_object_mut()) {
        map.insert("master_password_file".into(), json!(layout.master_password().display().to_string()));
    }
    Ok(report)
}
