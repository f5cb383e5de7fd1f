//! The call log's side of recordings' crash recovery ([`ptt_recording::BurstLog`]):
//! which burst row a recording left by a crash belongs to, the last rows with the
//! recordings they name, and marking the rows whose audio a crash lost
//! (`bursts.recording_lost_at_ms`).
//!
//! Recovery runs once at start, before the relay serves, on a read-write connection of
//! its own beside the writer's (WAL lets both be open; the writer is idle then).

use std::path::Path;

use rusqlite::{Connection, params};

use super::CallLogError;
use super::schema;
use ptt_recording::{BurstKey, BurstLog, BurstLogError, LoggedBurst};

/// Longest a burst is assumed to last, in ms: bounds the index range a lookup scans
/// (a burst lasts seconds, a talk limit at most minutes).
const LONGEST_BURST_MS: i64 = 86_400_000;

/// The columns every query here selects, in [`logged`]'s order.
const COLUMNS: &str = "id, group_id, burst_id, talker, started_at_ms, ended_at_ms, recording";

/// The burst rows as crash recovery reads and marks them.
#[derive(Debug)]
pub struct RecordingRows {
    conn: Connection,
}

impl RecordingRows {
    /// Opens the call log at `path` for recovery; it must exist with this build's schema
    /// ([`CallLog::open`](crate::CallLog::open) creates and migrates it). Blocking.
    pub fn open(path: &Path) -> Result<RecordingRows, CallLogError> {
        let conn = Connection::open(path).map_err(|source| CallLogError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // A mark survives a power cut once recovery goes on.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let found = schema::user_version(&conn)?;
        if found != schema::VERSION {
            return Err(CallLogError::Corrupt(format!(
                "schema version {found}, expected {}: open it with CallLog::open first",
                schema::VERSION
            )));
        }
        Ok(RecordingRows { conn })
    }

    fn query(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<LoggedBurst>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                [
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ],
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(logged(row?)?);
        }
        Ok(out)
    }
}

/// One row of [`COLUMNS`] as recovery sees it.
fn logged(
    (id, [group, burst, talker], started_at_ms, ended_at_ms, recording): (
        i64,
        [i64; 3],
        i64,
        i64,
        Option<String>,
    ),
) -> Result<LoggedBurst, CallLogError> {
    let id32 =
        |v: i64| u32::try_from(v).map_err(|_| CallLogError::Corrupt(format!("burst {id}: id {v}")));
    Ok(LoggedBurst {
        id,
        key: BurstKey {
            group: id32(group)?,
            burst: id32(burst)?,
            talker: id32(talker)?,
        },
        started_at_ms,
        ended_at_ms,
        recording,
    })
}

/// Bursts this relay decided: another relay's (a cluster's replicas) name
/// recordings on that relay's disk, which crash recovery here must not touch.
const OWN: &str = "id NOT IN (SELECT row_id FROM replicas WHERE tbl = 'bursts')";

impl BurstLog for RecordingRows {
    fn bursts_around(
        &mut self,
        key: BurstKey,
        at_ms: i64,
        slack_ms: i64,
    ) -> Result<Vec<LoggedBurst>, BurstLogError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM bursts
             WHERE group_id = ?1 AND burst_id = ?2 AND talker = ?3
               AND started_at_ms <= ?4 + ?5 AND started_at_ms >= ?4 - ?6
               AND ended_at_ms >= ?4 - ?5 AND {OWN}
             ORDER BY started_at_ms DESC, id DESC"
        );
        let found = self.query(
            &sql,
            params![
                key.group,
                key.burst,
                key.talker,
                at_ms,
                slack_ms,
                LONGEST_BURST_MS
            ],
        )?;
        Ok(found)
    }

    fn recorded_since(&mut self, ended_from_ms: i64) -> Result<Vec<LoggedBurst>, BurstLogError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM bursts
             WHERE started_at_ms >= ?1 - ?2 AND ended_at_ms >= ?1
               AND recording IS NOT NULL AND recording_lost_at_ms IS NULL AND {OWN}
             ORDER BY started_at_ms, id"
        );
        Ok(self.query(&sql, params![ended_from_ms, LONGEST_BURST_MS])?)
    }

    fn newest_end(&mut self) -> Result<Option<i64>, BurstLogError> {
        // The newest start is read from its index; the longest burst bounds the rest.
        let end = self.conn.query_row(
            &format!(
                "SELECT MAX(ended_at_ms) FROM bursts
                 WHERE started_at_ms >= (SELECT MAX(started_at_ms) FROM bursts WHERE {OWN}) - ?1
                   AND {OWN}"
            ),
            [LONGEST_BURST_MS],
            |r| r.get::<_, Option<i64>>(0),
        )?;
        Ok(end)
    }

    fn mark_lost(&mut self, ids: &[i64], at_ms: i64) -> Result<(), BurstLogError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE bursts SET recording_lost_at_ms = ?2
                 WHERE id = ?1 AND recording_lost_at_ms IS NULL",
            )?;
            for id in ids {
                stmt.execute(params![id, at_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
