//! One party's share of a wallet key.

use std::collections::BTreeSet;
use std::fmt;

use dkls23::secp256k1::{compute_eth_address, Party, PublicKeyPackage};
use k256_dkls::elliptic_curve::sec1::ToSec1Point;
use mandate_core::{Role, WalletId};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{MpcError, Result};

/// The first hardened BIP-32 child index: threshold shares derive only below it.
pub const HARDENED: u32 = 1 << 31;

/// The public side of a wallet key: safe to print, store and send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// Uncompressed SEC1 public key (65 bytes, `04 || x || y`), hex.
    pub public_key: String,
    /// EIP-55 checksummed Ethereum address.
    pub address: String,
}

impl PublicKeyInfo {
    pub(crate) fn from_point(point: &k256_dkls::AffinePoint) -> Self {
        let encoded = point.to_sec1_point(false);
        PublicKeyInfo { public_key: hex::encode(encoded.as_bytes()), address: compute_eth_address(point) }
    }

    /// The uncompressed SEC1 bytes.
    pub fn sec1_bytes(&self) -> Result<Vec<u8>> {
        hex::decode(&self.public_key).map_err(|e| MpcError::InvalidInput(format!("public key hex: {e}")))
    }
}

/// A recoverable ECDSA signature, low-S normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaSig {
    /// `r`, big-endian.
    pub r: [u8; 32],
    /// `s`, big-endian, at most n/2.
    pub s: [u8; 32],
    /// Recovery id (0 or 1): the parity of the nonce point's y coordinate.
    pub recovery_id: u8,
}

/// One party's share of one wallet's key.
///
/// It never prints its secret (`Debug` shows `<redacted>`), zeroizes on drop, and
/// leaves this process only inside an encrypted [`crate::blob`].
pub struct KeyShare {
    pub(crate) wallet_id: WalletId,
    pub(crate) role: Role,
    pub(crate) party: Party,
    pub(crate) package: PublicKeyPackage,
    pub(crate) banned: BTreeSet<Role>,
    pub(crate) public: PublicKeyInfo,
}

#[derive(Serialize)]
struct RecordRef<'a> {
    wallet_id: &'a WalletId,
    role: Role,
    party: &'a Party,
    package: &'a PublicKeyPackage,
    banned: &'a BTreeSet<Role>,
}

#[derive(Deserialize)]
struct Record {
    wallet_id: WalletId,
    role: Role,
    party: Party,
    package: PublicKeyPackage,
    banned: BTreeSet<Role>,
}

impl KeyShare {
    pub(crate) fn new(wallet_id: WalletId, role: Role, party: Party, package: PublicKeyPackage) -> Result<Self> {
        if party.party_index.as_u8() != role.index() {
            return Err(MpcError::InvalidInput(format!(
                "share index {} does not belong to {role}",
                party.party_index.as_u8()
            )));
        }
        if *package.verifying_key() != party.pk {
            return Err(MpcError::InvalidInput("share and public key package disagree".into()));
        }
        let public = PublicKeyInfo::from_point(&party.pk);
        Ok(KeyShare { wallet_id, role, party, package, banned: BTreeSet::new(), public })
    }

    /// The wallet this share belongs to.
    pub fn wallet_id(&self) -> &WalletId {
        &self.wallet_id
    }

    /// The party holding this share.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The wallet's public key and address.
    pub fn public(&self) -> &PublicKeyInfo {
        &self.public
    }

    /// Parties the protocol has banned from this wallet's runs.
    pub fn banned(&self) -> &BTreeSet<Role> {
        &self.banned
    }

    /// Records that the protocol banned `party`; it stays excluded from every later
    /// run with this share (the ban is saved with the share).
    pub fn ban(&mut self, party: Role) {
        self.banned.insert(party);
    }

    /// A copy of this share that also bans `party` (to be stored in place of this one).
    pub fn with_ban(&self, party: Role) -> KeyShare {
        let mut banned = self.banned.clone();
        banned.insert(party);
        KeyShare {
            wallet_id: self.wallet_id.clone(),
            role: self.role,
            party: self.party.clone(),
            package: self.package.clone(),
            banned,
            public: self.public.clone(),
        }
    }

    /// The share of the wallet key's non-hardened child `index` (BIP-32 over the chain
    /// code the DKG agreed on): what this party signs a subaccount's transactions
    /// with. Its public key and address are the child's; the wallet id and bans stay.
    pub fn derive_child(&self, index: u32) -> Result<KeyShare> {
        if index >= HARDENED {
            return Err(MpcError::InvalidInput(format!("child key {index} is hardened: only 0 to 2^31 - 1 derive")));
        }
        let failed = |e: dkls23::protocols::derivation::ErrorDeriv| {
            MpcError::InvalidInput(format!("deriving child {index}: {}", e.description))
        };
        let party = self.party.derive_child(index, compute_eth_address).map_err(failed)?;
        let package = self.package.derive_child(self.party.chain_code(), index).map_err(failed)?;
        let mut child = KeyShare::new(self.wallet_id.clone(), self.role, party, package)?;
        child.banned = self.banned.clone();
        Ok(child)
    }

    /// Refuses a run that includes a banned party.
    pub fn check_not_banned(&self, participants: &[Role]) -> Result<()> {
        match participants.iter().find(|role| self.banned.contains(role)) {
            Some(party) => Err(MpcError::Banned { party: *party }),
            None => Ok(()),
        }
    }

    /// Serialises the secret share for sealing. The buffer zeroizes on drop.
    pub(crate) fn to_plaintext(&self) -> Result<Zeroizing<Vec<u8>>> {
        let record = RecordRef {
            wallet_id: &self.wallet_id,
            role: self.role,
            party: &self.party,
            package: &self.package,
            banned: &self.banned,
        };
        postcard::to_allocvec(&record)
            .map(Zeroizing::new)
            .map_err(|e| MpcError::InvalidInput(format!("encode share: {e}")))
    }

    /// Parses a decrypted share and checks it against the context it was sealed for.
    pub(crate) fn from_plaintext(bytes: &[u8], wallet_id: &WalletId, role: Role) -> Result<Self> {
        let (record, rest) = postcard::take_from_bytes::<Record>(bytes).map_err(|_| MpcError::ShareTampered)?;
        if !rest.is_empty() || record.wallet_id != *wallet_id || record.role != role {
            return Err(MpcError::ShareTampered);
        }
        let mut share = KeyShare::new(record.wallet_id.clone(), record.role, record.party, record.package)
            .map_err(|_| MpcError::ShareTampered)?;
        share.banned = record.banned;
        Ok(share)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("wallet_id", &self.wallet_id)
            .field("role", &self.role)
            .field("address", &self.public.address)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Zeroize for KeyShare {
    fn zeroize(&mut self) {
        self.party.zeroize();
    }
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for KeyShare {}

#[cfg(test)]
mod tests {
    use k256_dkls::elliptic_curve::PrimeField;
    use mandate_core::Role;

    use crate::memory::mesh;
    use crate::{protocol, SessionId};

    #[test]
    fn debug_is_redacted_and_never_shows_the_secret_scalar() {
        let wallet = mandate_core::WalletId::from_random([3; 12]);
        let session = SessionId([5; 32]);
        let handles: Vec<_> = mesh(&Role::ALL)
            .into_iter()
            .map(|mut t| {
                let wallet = wallet.clone();
                std::thread::spawn(move || {
                    let role = t.role();
                    protocol::dkg(&mut t, role, session, &wallet).unwrap()
                })
            })
            .collect();
        for handle in handles {
            let share = handle.join().unwrap();
            let debug = format!("{share:?} {share:#?}");
            assert!(debug.contains("<redacted>"));
            let secret = hex::encode(share.party.poly_point.to_repr());
            assert!(!debug.to_lowercase().contains(&secret));
            let plaintext = share.to_plaintext().unwrap();
            assert!(!debug.contains(&hex::encode(&plaintext[..16])));
        }
    }
}
