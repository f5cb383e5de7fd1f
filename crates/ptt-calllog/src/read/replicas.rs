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
        // One range scan of the (tbl, row_id) index for the rows asked about.
        let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(std::collections::HashMap::new());
        };
        let asked: std::collections::HashSet<i64> = ids.iter().copied().collect();
        let mut stmt = self.conn.prepare_cached(
            "SELECT row_id, relay FROM replicas WHERE tbl = ?1 AND row_id BETWEEN ?2 AND ?3",
        )?;
        let mut out = std::collections::HashMap::new();
        for row in stmt.query_map(params![table, low, high], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })? {
            let (id, relay) = row?;
            if asked.contains(&id) {
                out.insert(id, relay);
            }
        }
        Ok(out)
    }
}
