//! The largest alert id logged, read once at start so alert ids never repeat across
//! restarts.

use std::path::Path;

/// The largest alert id in the call log at `path` (0 for none, or if the log
/// cannot be read, which is logged). Blocking: call at start-up.
pub fn last_alert_id(path: &Path) -> u64 {
    let read = || -> rusqlite::Result<i64> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.query_row("SELECT COALESCE(MAX(alert_id), 0) FROM alerts", [], |row| {
            row.get(0)
        })
    };
    match read() {
        Ok(id) => u64::try_from(id).unwrap_or(0),
        Err(error) => {
            tracing::warn!(%error, "cannot read the last alert id; ids follow the clock alone");
            0
        }
    }
}
