//! The read side of zone logic's and private calls' tables (`regroups`, `private_calls`):
//! what the ops API and the dashboard show of who was regrouped, why, and which calls
//! were made.

use rusqlite::params;

use super::{
    CallLogError, CallLogReader, PrivateCallRow, RegroupRow, Row, corrupt, id32, limit, text,
};
use crate::record::{PrivateCallOutcome, PrivateCallRecord, RegroupReason, RegroupRecord, UnixMs};
use ptt_directory::{GroupId, TerminalId, ZoneId};

/// The columns of `regroups` every regroup query selects, in [`regroup_row`]'s order.
const REGROUP_COLUMNS: &str = "id, group_id, terminal, change, reason, zone, at_ms";

/// The raw columns of one `regroups` row, decoded by [`regroup_row`].
type RawRegroup = (i64, i64, i64, String, String, i64, i64);

fn raw_regroup(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRegroup> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn regroup_row(raw: RawRegroup) -> Result<RegroupRow, CallLogError> {
    let (id, g, t, change, reason, zone, at_ms) = raw;
    let added = match change.as_str() {
        "added" => true,
        "removed" => false,
        other => return Err(corrupt(format!("regroup {id}: change {other:?}"))),
    };
    Ok(Row {
        id,
        record: RegroupRecord {
            group: GroupId(id32(g)?),
            terminal: TerminalId(id32(t)?),
            added,
            reason: text(&reason, RegroupReason::from_name)?,
            zone: ZoneId(id32(zone)?),
            at_ms,
        },
    })
}

impl CallLogReader {
    /// Zone logic's membership changes made in `[from, to)`, of one group or all, newest
    /// first (same time: last logged first). With a group the `(group_id, at_ms)` index
    /// answers; across all groups the table is scanned, so the dashboard uses
    /// [`Self::last_regroups`] instead.
    pub fn regroups(
        &self,
        group: Option<GroupId>,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<RegroupRow>, CallLogError> {
        // Two statements rather than `(?1 IS NULL OR group_id = ?1)`, which keeps SQLite
        // from using the index for the one-group case.
        let rows = match group {
            Some(group) => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {REGROUP_COLUMNS} FROM regroups
                     WHERE group_id = ?1 AND at_ms >= ?2 AND at_ms < ?3
                     ORDER BY at_ms DESC, id DESC LIMIT ?4"
                ))?;
                stmt.query_map(params![group.0, from, to, limit(max)], raw_regroup)?
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {REGROUP_COLUMNS} FROM regroups
                     WHERE at_ms >= ?1 AND at_ms < ?2
                     ORDER BY at_ms DESC, id DESC LIMIT ?3"
                ))?;
                stmt.query_map(params![from, to, limit(max)], raw_regroup)?
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        rows.into_iter().map(regroup_row).collect()
    }

    /// The last `max` membership changes in the order they were logged, last first: a
    /// walk back from the end of the table's row ids, so its cost does not grow with the
    /// table (the dashboard asks every time the log changes).
    pub fn last_regroups(&self, max: usize) -> Result<Vec<RegroupRow>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REGROUP_COLUMNS} FROM regroups ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map(params![limit(max)], raw_regroup)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(regroup_row).collect()
    }

    /// Private calls set up in `[from, to)` (logged when they ended), newest first.
    pub fn private_calls(
        &self,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<PrivateCallRow>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, call_id, caller, callee, group_id, emergency, outcome, started_at_ms,
                    answered_at_ms, ended_at_ms
             FROM private_calls WHERE started_at_ms >= ?1 AND started_at_ms < ?2
             ORDER BY started_at_ms DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, call_id, caller, callee, g, emergency, outcome, started, answered, ended) =
                row?;
            out.push(Row {
                id,
                record: PrivateCallRecord {
                    call_id: call_id as u64,
                    caller: TerminalId(id32(caller)?),
                    callee: TerminalId(id32(callee)?),
                    group: GroupId(id32(g)?),
                    emergency,
                    outcome: text(&outcome, PrivateCallOutcome::from_name)?,
                    started_at_ms: started,
                    answered_at_ms: answered,
                    ended_at_ms: ended,
                },
            });
        }
        Ok(out)
    }
}
