//! The embedded service party: it listens for runs the recovery party coordinates
//! (wallet creation, refresh, repair) and coordinates signing runs with the cosigner
//! for sends the policy engine allowed.

use std::net::TcpListener;
use std::sync::Arc;

use mandate_core::{ErrorCode, Role, WalletId};
use mandate_cosigner::{CosignerHandler, PartyHome};
use mandate_mpc::net::{coordinate, serve, IdentityKey, Operation, PeerBook, RunOutput, RunPlan, ShareDir};
use mandate_mpc::{Culprit, EcdsaSig, KeyShare, MpcError};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

/// The service party of the daemon.
pub(crate) struct ServiceParty {
    identity: IdentityKey,
    peers: PeerBook,
    shares: Arc<ShareDir>,
}

impl ServiceParty {
    /// Opens the service home with the master password (which seals its shares).
    pub(crate) fn open(home: &PartyHome, password: Zeroizing<Vec<u8>>) -> ApiResult<Self> {
        Ok(ServiceParty { identity: home.identity()?, peers: home.peers()?, shares: Arc::new(home.shares(password)?) })
    }

    /// Serves runs on `listener` in a thread of its own (the serving loop owns its own
    /// copy of the identity key, which is deliberately not `Clone`).
    pub(crate) fn listen(&self, home: PartyHome, listener: TcpListener) -> ApiResult<()> {
        let identity = home.identity()?;
        let peers = self.peers.clone();
        let handler = CosignerHandler::service(home, self.shares.clone());
        std::thread::Builder::new()
            .name("service-party".into())
            .spawn(move || {
                if let Err(error) = serve(listener, identity, peers, handler) {
                    eprintln!("service party stopped: {error}");
                }
            })
            .map_err(|e| ApiError::internal(format!("starting the service party: {e}")))?;
        Ok(())
    }

    /// This party's share of `wallet`.
    pub(crate) fn share(&self, wallet: &WalletId) -> ApiResult<Arc<KeyShare>> {
        Ok(self.shares.load(wallet)?)
    }

    /// Signs `payload` (whose digest is `digest`) with the cosigner, passing along
    /// the owner's signed approval when there is one. Blocking.
    pub(crate) fn sign(
        &self,
        wallet: &WalletId,
        payload: Vec<u8>,
        digest: [u8; 32],
        approval: Option<Vec<u8>>,
    ) -> ApiResult<EcdsaSig> {
        let share = self.share(wallet)?;
        let plan =
            RunPlan::new(wallet.clone(), vec![Role::Service, Role::Cosigner], Operation::Sign { payload, approval })?;
        match coordinate(&self.identity, &self.peers, &plan, Some(&share), Some(digest)) {
            Ok(RunOutput::Signature { sig, digest: signed }) if signed == digest => Ok(sig),
            Ok(_) => Err(ApiError::new(ErrorCode::SignatureInvalid, "the signing run returned no matching signature")),
            Err(error) => {
                if let MpcError::Aborted { ban: true, culprit: Culprit::Party(culprit), .. } = &error {
                    if let Err(e) = self.shares.store(share.with_ban(*culprit)) {
                        eprintln!("could not record the ban of {culprit}: {e}");
                    }
                }
                Err(error.into())
            }
        }
    }

    /// Sends the cosigner a notice run (a freeze, or an owner's unfreeze). Blocking.
    pub(crate) fn notify(&self, wallet: &WalletId, operation: Operation) -> ApiResult<()> {
        let plan = RunPlan::new(wallet.clone(), vec![Role::Service, Role::Cosigner], operation)?;
        match coordinate(&self.identity, &self.peers, &plan, None, None)? {
            RunOutput::Noted => Ok(()),
            _ => Err(ApiError::internal("the cosigner answered a notice with something else")),
        }
    }
}
