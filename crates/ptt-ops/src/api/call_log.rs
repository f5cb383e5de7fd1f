//! Reading the call log for the history API: one read-only connection per query, on
//! tokio's blocking pool.

use ptt_calllog::{CallLogError, CallLogReader};

use super::params::ApiError;
use crate::state::OpsState;

/// Runs `query` against the call log on the blocking pool, with a read-only
/// connection of its own.
pub(super) async fn read<T: Send + 'static>(
    shared: &OpsState,
    query: impl FnOnce(&CallLogReader) -> Result<T, CallLogError> + Send + 'static,
) -> Result<T, ApiError> {
    let path = shared.relay.log.calllog().path().to_path_buf();
    tokio::task::spawn_blocking(move || query(&CallLogReader::open(&path)?))
        .await
        .map_err(|e| ApiError::internal("the call log query stopped", e))?
        .map_err(|e| ApiError::internal("reading the call log", e))
}
