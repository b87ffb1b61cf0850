//! The encrypted at-rest format of a key share.
//!
//! ```text
//! magic "MNDSHARE" | version u8 | role u8 | wallet id (u8 length + bytes)
//! | argon2 m_kib u32 | t u32 | p u32 | salt [32] | key check [32] | nonce [24]
//! | ciphertext length u32 | ciphertext | sha256 of everything before [32]
//! ```
//!
//! The key is Argon2id(passphrase, salt) with the stored cost parameters; the
//! plaintext is sealed with XChaCha20-Poly1305 and the whole header (version, role,
//! wallet id, cost, salt, key check, nonce) as associated data. The trailing
//! checksum and the key check only sort failures into distinct errors — a blob that
//! was damaged (`ShareTampered`), moved to another wallet or role
//! (`ShareWrongContext`), or opened with the wrong passphrase (`WrongPassphrase`);
//! the AEAD tag is what protects the content.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mandate_core::{Role, WalletId};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{MpcError, Result};
use crate::share::KeyShare;

const MAGIC: &[u8; 8] = b"MNDSHARE";
/// The blob format version this build writes and reads.
pub const BLOB_VERSION: u8 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const CHECK_LEN: usize = 32;

/// Argon2id cost parameters stored in each blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The production cost: 64 MiB, 3 iterations, 4 lanes.
    pub const PRODUCTION: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 4 };
    /// The cheapest cost a blob may carry (tests use it to keep property tests fast).
    pub const MINIMUM: KdfParams = KdfParams { m_kib: 8 * 1024, t: 1, p: 1 };

    fn check(self) -> Result<Self> {
        let in_range = (Self::MINIMUM.m_kib..=1024 * 1024).contains(&self.m_kib)
            && (1..=16).contains(&self.t)
            && (1..=16).contains(&self.p);
        if in_range {
            Ok(self)
        } else {
            Err(MpcError::ShareTampered)
        }
    }
}

fn derive_key(passphrase: &[u8], salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let argon_params = Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| MpcError::InvalidInput(format!("argon2 parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| MpcError::InvalidInput(format!("argon2: {e}")))?;
    Ok(key)
}

fn key_check(key: &[u8; 32]) -> [u8; CHECK_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(b"mandate/share-key-check/v1");
    hasher.update(key);
    hasher.finalize().into()
}

/// Seals `share` under `passphrase` with the production cost.
pub fn seal<R: RngCore + CryptoRng>(share: &KeyShare, passphrase: &[u8], rng: &mut R) -> Result<Vec<u8>> {
    seal_with(share, passphrase, KdfParams::PRODUCTION, rng)
}

/// Seals `share` with explicit Argon2id cost (never below [`KdfParams::MINIMUM`]).
pub fn seal_with<R: RngCore + CryptoRng>(
    share: &KeyShare,
    passphrase: &[u8],
    params: KdfParams,
    rng: &mut R,
) -> Result<Vec<u8>> {
    let params = params.check().map_err(|_| MpcError::InvalidInput("argon2 cost out of range".into()))?;
    if passphrase.is_empty() {
        return Err(MpcError::InvalidInput("empty passphrase".into()));
    }
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let key = derive_key(passphrase, &salt, params)?;

    let wallet = share.wallet_id().as_str().as_bytes();
    let wallet_len = u8::try_from(wallet.len()).map_err(|_| MpcError::InvalidInput("wallet id too long".into()))?;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.push(BLOB_VERSION);
    out.push(share.role().index());
    out.push(wallet_len);
    out.extend_from_slice(wallet);
    out.extend_from_slice(&params.m_kib.to_be_bytes());
    out.extend_from_slice(&params.t.to_be_bytes());
    out.extend_from_slice(&params.p.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&key_check(&key));
    out.extend_from_slice(&nonce);

    let plaintext = share.to_plaintext()?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &out })
        .map_err(|_| MpcError::InvalidInput("encryption failed".into()))?;
    let ct_len = u32::try_from(ciphertext.len()).map_err(|_| MpcError::InvalidInput("share too large".into()))?;
    out.extend_from_slice(&ct_len.to_be_bytes());
    out.extend_from_slice(&ciphertext);
    let checksum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&checksum);
    Ok(out)
}

/// A cursor over untrusted bytes that never panics.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(MpcError::ShareTampered);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        self.take(1)?.first().copied().ok_or(MpcError::ShareTampered)
    }
    fn u32(&mut self) -> Result<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| MpcError::ShareTampered)?;
        Ok(u32::from_be_bytes(bytes))
    }
}

/// The context a blob names in its header, readable without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    /// Format version.
    pub version: u8,
    /// Wallet named in the blob.
    pub wallet_id: String,
    /// Role index named in the blob.
    pub role_index: u8,
}

/// Opens a blob for `wallet_id` / `role`. Every failure is a distinct error; never panics.
pub fn open(blob: &[u8], passphrase: &[u8], wallet_id: &WalletId, role: Role) -> Result<KeyShare> {
    let mut reader = Reader { bytes: blob };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(MpcError::ShareTampered);
    }
    let version = reader.u8()?;
    if version != BLOB_VERSION {
        return Err(MpcError::UnsupportedVersion(version));
    }
    // The checksum covers everything before it: a damaged blob is reported as such
    // before any context or passphrase check could mislabel it.
    let body_len = blob.len().checked_sub(32).ok_or(MpcError::ShareTampered)?;
    let (body, checksum) = blob.split_at(body_len);
    if Sha256::digest(body).as_slice() != checksum {
        return Err(MpcError::ShareTampered);
    }

    let role_index = reader.u8()?;
    let wallet_len = usize::from(reader.u8()?);
    let found_wallet = String::from_utf8_lossy(reader.take(wallet_len)?).into_owned();
    if found_wallet != wallet_id.as_str() || role_index != role.index() {
        return Err(MpcError::ShareWrongContext {
            found_wallet,
            found_role: Role::from_index(role_index)
                .map(|r| r.to_string())
                .unwrap_or_else(|_| format!("#{role_index}")),
            expected_wallet: wallet_id.to_string(),
            expected_role: role,
        });
    }
    let params = KdfParams { m_kib: reader.u32()?, t: reader.u32()?, p: reader.u32()? }.check()?;
    let salt = reader.take(SALT_LEN)?;
    let check = reader.take(CHECK_LEN)?;
    let nonce = reader.take(NONCE_LEN)?;
    let header_len = blob.len() - reader.bytes.len();
    let header = blob.get(..header_len).ok_or(MpcError::ShareTampered)?;
    let ct_len = usize::try_from(reader.u32()?).map_err(|_| MpcError::ShareTampered)?;
    let ciphertext = reader.take(ct_len)?;
    if reader.bytes.len() != 32 {
        return Err(MpcError::ShareTampered);
    }

    let key = derive_key(passphrase, salt, params)?;
    if key_check(&key).as_slice() != check {
        return Err(MpcError::WrongPassphrase);
    }
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: header })
            .map_err(|_| MpcError::ShareTampered)?,
    );
    KeyShare::from_plaintext(&plaintext, wallet_id, role)
}

/// Reads the header of a blob without the passphrase (for listing and diagnostics).
pub fn peek_header(blob: &[u8]) -> Result<BlobHeader> {
    let mut reader = Reader { bytes: blob };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(MpcError::ShareTampered);
    }
    let version = reader.u8()?;
    let role_index = reader.u8()?;
    let wallet_len = usize::from(reader.u8()?);
    let wallet_id = String::from_utf8_lossy(reader.take(wallet_len)?).into_owned();
    Ok(BlobHeader { version, wallet_id, role_index })
}
