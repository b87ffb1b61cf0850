//! `mandate init` and `mandate pair`: the daemon's data directory, the master
//! password's Argon2id hash, and the service party's identity pinned to its peers.
//!
//! Two layouts. The production layout (`mandate init`) holds the service party only:
//! the cosigner and the recovery party are provisioned in their own directories
//! (`mandate cosigner init`, `mandate recovery init`, on other hosts or users), and
//! the parties learn each other's *public* keys only (`mandate pair`), compared by
//! fingerprint. The development layout (`mandate init --dev`) puts all three parties
//! in one directory, already paired, for `mandate serve --dev` on one host: that
//! directory holds two shares per wallet and must never guard real funds.

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
use sha2::{Digest, Sha256};
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
    /// The single-host development layout: the cosigner and the recovery party live
    /// in this directory too, already paired (for `mandate serve --dev`).
    pub dev: bool,
    /// Where the local cosigner of `--dev` listens (development layout only; in
    /// production the cosigner's address is pinned with `mandate pair`).
    pub cosigner_addr: Option<String>,
    /// Where the daemon's embedded service party listens.
    pub service_addr: String,
    /// The PostgreSQL database (several daemons); `None`: SQLite in the data directory.
    pub database: Option<mandate_store::DatabaseUrl>,
}

/// Whether `root` holds an initialised daemon: its SQLite database, or (with
/// PostgreSQL, where only the party homes and secrets stay local) its service party.
pub(crate) fn initialised(root: &Path) -> bool {
    root.join("data.db").exists() || root.join("service").exists()
}

/// The `--database` / `MANDATE_DATABASE_URL` setting, checked (a refusal never shows it).
pub fn database_url(text: Option<&str>) -> ApiResult<Option<mandate_store::DatabaseUrl>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            mandate_store::DatabaseUrl::parse(t).map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))
        })
        .transpose()
}

/// Options of `mandate pair`: the other two parties' public keys, as their own
/// `init` printed them, and where the cosigner listens.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// The daemon's data directory.
    pub data_dir: PathBuf,
    /// The cosigner's identity key (hex).
    pub cosigner_pubkey: String,
    /// Where the cosigner listens (`host:port`).
    pub cosigner_addr: String,
    /// The recovery party's identity key (hex).
    pub recovery_pubkey: String,
    /// The PostgreSQL database (several daemons); `None`: SQLite in the data directory.
    pub database: Option<mandate_store::DatabaseUrl>,
}

/// The meta key holding the master password's PHC string.
pub(crate) const MASTER_HASH: &str = "master_password_hash";
/// The meta key holding the embedded service party's listen address.
pub(crate) const SERVICE_ADDR: &str = "service_party_addr";
/// The environment variable of the master password.
pub(crate) const MASTER_PASSWORD_VAR: &str = "MANDATE_MASTER_PASSWORD";
/// The development layout's cosigner's maximum per transaction (value + gas × max
/// fee), in wei: 2 ETH, above the 1 ETH per-transaction cap of the README's example
/// policy plus its gas, so a send that policy allows is not refused by the cosigner.
/// `cosigner init` (production) keeps 1 ETH; either is changed in `limits.toml`.
pub(crate) const DEV_COSIGNER_PER_TX_MAX_WEI: &str = "2000000000000000000";

/// Raises the dev cosigner's per-transaction maximum in the `limits.toml` its `init`
/// wrote (the daily maximum stays).
fn dev_limits(path: &Path) -> ApiResult<()> {
    let io = |e: std::io::Error| ApiError::internal(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(io)?;
    let default_line = format!("per_tx_max = \"{}\"", "1000000000000000000");
    if !text.contains(&default_line) {
        return Err(ApiError::internal("the cosigner's default limits.toml has no per_tx_max line to raise"));
    }
    let dev_line = format!(
        "# --dev: 2 ETH per transaction (1 ETH in production), so the README's 1 ETH policy cap plus gas fits\n\
         per_tx_max = \"{DEV_COSIGNER_PER_TX_MAX_WEI}\""
    );
    std::fs::write(path, text.replacen(&default_line, &dev_line, 1)).map_err(io)
}

/// The development layout's cosigner listens here unless `--cosigner-addr` says otherwise.
const DEFAULT_DEV_COSIGNER_ADDR: &str = "127.0.0.1:3200";

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
    /// What of the cosigner's or the recovery party's material lies in this
    /// directory (the development layout has all of it; production none).
    pub(crate) fn foreign_material(&self) -> Vec<PathBuf> {
        [
            self.cosigner_password(),
            self.home(Role::Cosigner).dir().to_path_buf(),
            self.home(Role::Recovery).dir().to_path_buf(),
        ]
        .into_iter()
        .filter(|path| path.exists())
        .collect()
    }
}

/// A public identity key's fingerprint, for operators to compare across hosts: the
/// first 16 bytes of SHA-256 of the 32-byte key, in eight groups of four hex digits.
pub fn fingerprint(key: &PublicIdentity) -> String {
    let digest = Sha256::digest(key.0);
    let hex = hex::encode(digest.get(..16).unwrap_or_default());
    let groups: Vec<&str> = (0..hex.len()).step_by(4).filter_map(|at| hex.get(at..at + 4)).collect();
    groups.join(" ")
}

/// A party as reports show it: role, key, fingerprint and, if it listens, address.
pub fn party_json(role: Role, key: &PublicIdentity, addr: Option<&str>) -> Value {
    let mut party = json!({"role": role, "public_key": key.to_hex(), "fingerprint": fingerprint(key)});
    if let (Some(addr), Some(map)) = (addr, party.as_object_mut()) {
        map.insert("addr".into(), json!(addr));
    }
    party
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

fn socket_addr(addr: &str) -> ApiResult<()> {
    addr.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| ApiError::new(ErrorCode::InvalidInput, format!("{addr:?} is not an ip:port address")))
}

fn audit(store: &Store, event: &str, details: Value) -> ApiResult<()> {
    let entry = AuditEntry {
        actor: "operator".into(),
        event: event.into(),
        wallet: None,
        decision: None,
        policy_hash: None,
        details,
        events: Vec::new(),
    };
    store.audit(entry, now())?;
    Ok(())
}

/// Creates the data directory. Refuses an initialised one.
pub fn init(options: &InitOptions) -> ApiResult<Value> {
    let layout = Layout::new(&options.data_dir);
    let root = &layout.root;
    if initialised(root) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is initialised already; refusing to overwrite it", root.display()),
        ));
    }
    let cosigner_addr = match (&options.cosigner_addr, options.dev) {
        (Some(addr), true) => Some(addr.as_str()),
        (None, true) => Some(DEFAULT_DEV_COSIGNER_ADDR),
        (None, false) => None,
        (Some(_), false) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "--cosigner-addr belongs to the --dev layout; in production pin the cosigner with `mandate pair`",
            ))
        }
    };
    socket_addr(&options.service_addr)?;
    if let Some(addr) = cosigner_addr {
        socket_addr(addr)?;
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

    let service_addr = options.service_addr.as_str();
    let service = layout.home(Role::Service).init()?;
    let mut parties = vec![party_json(Role::Service, &service, Some(service_addr))];
    if let Some(cosigner_addr) = cosigner_addr {
        // The development layout: the other two parties here, paired with each other.
        write_secret_file(&layout.cosigner_password(), &random_secret(), false)?;
        let cosigner = layout.home(Role::Cosigner).init()?;
        dev_limits(&layout.home(Role::Cosigner).limits_path())?;
        let recovery = layout.home(Role::Recovery).init()?;
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
        parties.push(party_json(Role::Cosigner, &cosigner, Some(cosigner_addr)));
        parties.push(party_json(Role::Recovery, &recovery, None));
    }

    let store = Store::open_with(root, options.database.as_ref())?;
    if store.is_shared() && store.meta(MASTER_HASH)?.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the database is initialised already (another daemon's); give each deployment its own database, \
             and copy the data directory of the first daemon to run more replicas",
        ));
    }
    store.set_meta(MASTER_HASH, &hash_password(&password)?)?;
    store.set_meta(SERVICE_ADDR, service_addr)?;
    let layout_name = if options.dev { "dev" } else { "production" };
    audit(&store, "daemon.initialised", json!({"layout": layout_name, "parties": parties}))?;
    let mut report = json!({"data_dir": root.display().to_string(), "layout": layout_name, "parties": parties});
    if let (true, Some(map)) = (options.auto_provision, report.as_object_mut()) {
        map.insert("master_password_file".into(), json!(layout.master_password().display().to_string()));
    }
    Ok(report)
}

/// Pins the cosigner (key and address) and the recovery party (key) in the daemon's
/// service party, replacing earlier pins; audited. Only public keys travel: each
/// party's `init` printed its key and fingerprint on its own host, and the report
/// here shows the fingerprints to compare. A running daemon reads its pins at start.
pub fn pair(options: &PairOptions) -> ApiResult<Value> {
    let layout = Layout::new(&options.data_dir);
    if !initialised(&layout.root) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is not initialised; run `mandate init` first", layout.root.display()),
        ));
    }
    if layout.home(Role::Cosigner).dir().exists() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "this is a --dev data directory (its local cosigner was paired by `mandate init --dev`); \
             provision a production data directory to pair with an external cosigner",
        ));
    }
    socket_addr(&options.cosigner_addr)?;
    let parse = |name: &str, text: &str| {
        text.parse::<PublicIdentity>()
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("--{name}-pubkey: {e}")))
    };
    let cosigner = parse("cosigner", &options.cosigner_pubkey)?;
    let recovery = parse("recovery", &options.recovery_pubkey)?;
    let home = layout.home(Role::Service);
    let service = home.identity()?.public();
    home.pair(&book([
        (Role::Cosigner, entry(cosigner, Some(&options.cosigner_addr))),
        (Role::Recovery, entry(recovery, None)),
    ]))?;
    let store = Store::open_with(&layout.root, options.database.as_ref())?;
    let service_addr = store.meta(SERVICE_ADDR)?;
    let service = party_json(Role::Service, &service, service_addr.as_deref());
    let pinned = vec![
        party_json(Role::Cosigner, &cosigner, Some(&options.cosigner_addr)),
        party_json(Role::Recovery, &recovery, None),
    ];
    audit(&store, "daemon.paired", json!({"pinned": pinned}))?;
    Ok(json!({"data_dir": layout.root.display().to_string(), "party": service, "pinned": pinned}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_the_first_half_of_the_keys_sha256() {
        // SHA-256 of 32 zero bytes is 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925.
        assert_eq!(fingerprint(&PublicIdentity([0; 32])), "6668 7aad f862 bd77 6c8f c18b 8e9f 8e20");
    }
}
