//! Blocking work (SQLite, audit fsync, threshold signing) off the async workers.

use crate::error::{ApiError, ApiResult};

/// Runs blocking work (SQLite, audit fsync, threshold signing) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}
