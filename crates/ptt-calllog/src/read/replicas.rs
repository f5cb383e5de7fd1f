//! The read side of `replicas`: which rows another relay of the cluster
//! wrote (their recordings, for one, are on that relay's disk).

use rusqlite::params;

use super::{CallLogError, CallLogReader};

impl CallLogReader {
    /// The relay that wrote each of rows `ids` of `table` (as
    /// [`crate::Record::table`] names it), for those another relay wrote;
    /// this relay's own rows are not in the answer.
    pub fn written_by_other_relays(
        &self,
        table: &str,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, String>, CallLogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT relay FROM replicas WHERE tbl = ?1 AND row_id = ?2")?;
        let mut out = std::collections::HashMap::new();
        for &id in ids {
            let relay: Option<String> = stmt
                .query_row(params![table, id], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            if let Some(relay) = relay {
                out.insert(id, relay);
            }
        }
        Ok(out)
    }
}
