//! Durable file replacement: the new content reaches the disk (fsync) before it
//! replaces the old file, and the rename reaches the disk (directory fsync) before
//! the caller goes on. The cosigner's ledger and notices are written this way, so
//! a power cut after a commit cannot bring back a smaller total.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file, fsyncing the file and its directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
