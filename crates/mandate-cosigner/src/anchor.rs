//! The audit anchor: the highest audit head (sequence number and hash) the daemon
//! showed this cosigner with a run, kept in `audit-anchor.json` on the cosigner's
//! host, out of the daemon's reach. Whoever cuts the daemon's audit trail (the JSONL
//! file and the table alike) cannot cut this; `mandate cosigner anchor` prints it and
//! `mandate audit verify --anchor FILE` checks the trail against it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mandate_core::ErrorCode;
use mandate_mpc::net::{AuditHead, Refusal};
use serde::{Deserialize, Serialize};

use crate::durable::write_durably;

/// What the anchor file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorRecord {
    /// The audit record's sequence number.
    pub seq: u64,
    /// Its hash (hex).
    pub hash: String,
    /// When this cosigner received it (unix seconds).
    pub received_at: u64,
}

/// The anchor file of a cosigner home.
pub struct AuditAnchorFile {
    path: PathBuf,
    lock: Mutex<()>,
}

fn internal(message: String) -> Refusal {
    Refusal::new(ErrorCode::Internal, message)
}

impl AuditAnchorFile {
    /// The anchor in `dir` (the cosigner's home).
    pub fn new(dir: &Path) -> Self {
        AuditAnchorFile { path: dir.join("audit-anchor.json"), lock: Mutex::new(()) }
    }

    /// The recorded anchor, if any.
    pub fn read(&self) -> Result<Option<AnchorRecord>, Refusal> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| internal(format!("{} is corrupt: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(internal(format!("{}: {e}", self.path.display()))),
        }
    }

    /// Records `head` if it is past the recorded one (durably). A head behind the
    /// recorded one (the trail went back) or a different hash for the same record is
    /// logged and not recorded: the anchor keeps what was seen first.
    pub fn observe(&self, head: &AuditHead, now: u64) -> Result<(), Refusal> {
        let _guard = self.lock.lock().map_err(|_| internal("anchor lock poisoned".into()))?;
        let hash = hex::encode(head.hash);
        match self.read()? {
            Some(known) if known.seq > head.seq => {
                tracing::warn!("cosigner: the daemon's audit head went back from {} to {}", known.seq, head.seq);
                Ok(())
            }
            Some(known) if known.seq == head.seq => {
                if known.hash != hash {
                    tracing::warn!("cosigner: the daemon shows another hash for audit record {}", head.seq);
                }
                Ok(())
            }
            _ => {
                let record = AnchorRecord { seq: head.seq, hash, received_at: now };
                let text = serde_json::to_vec_pretty(&record).map_err(|e| internal(e.to_string()))?;
                write_durably(&self.path, &text).map_err(|e| internal(format!("{}: {e}", self.path.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_only_moves_forward_and_keeps_the_first_hash() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = AuditAnchorFile::new(dir.path());
        assert_eq!(anchor.read().unwrap(), None);
        anchor.observe(&AuditHead { seq: 7, hash: [1; 32] }, 100).unwrap();
        anchor.observe(&AuditHead { seq: 5, hash: [2; 32] }, 101).unwrap();
        anchor.observe(&AuditHead { seq: 7, hash: [3; 32] }, 102).unwrap();
        let kept = AuditAnchorFile::new(dir.path()).read().unwrap().unwrap();
        assert_eq!(kept, AnchorRecord { seq: 7, hash: hex::encode([1; 32]), received_at: 100 });
        anchor.observe(&AuditHead { seq: 9, hash: [4; 32] }, 103).unwrap();
        assert_eq!(anchor.read().unwrap().unwrap().seq, 9);
    }
}
