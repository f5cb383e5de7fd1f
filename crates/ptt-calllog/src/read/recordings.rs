//! The read side of burst recordings: each burst row with the recording it names and
//! whether crash recovery found that recording's audio lost, so the ops API can tell a
//! recording lost in a crash from one retention deleted.

use rusqlite::{OptionalExtension, params};

use super::{CallLogError, CallLogReader, id32, limit};
use crate::record::UnixMs;
use ptt_directory::{GroupId, TerminalId};

/// A burst row and what became of its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstRecording {
    /// Row id (what `/bursts/{id}/recording` takes).
    pub id: i64,
    /// The group.
    pub group: GroupId,
    /// The talker.
    pub talker: TerminalId,
    /// The burst id (unique within the group for one run of the relay).
    pub burst_id: u32,
    /// When the burst started (unix ms).
    pub started_at_ms: UnixMs,
    /// When it ended (unix ms).
    pub ended_at_ms: UnixMs,
    /// The recording's path relative to the recordings directory; `None` when the burst
    /// was not recorded.
    pub recording: Option<String>,
    /// When crash recovery found the recording's audio lost (it never reached the disk
    /// before a crash); `None` when it was not.
    pub lost_at_ms: Option<UnixMs>,
}

impl CallLogReader {
    /// When crash recovery found the audio of burst row `id` lost; `None` if it was not
    /// (or there is no such row).
    pub fn recording_lost_at(&self, id: i64) -> Result<Option<UnixMs>, CallLogError> {
        let at = self
            .conn
            .prepare_cached("SELECT recording_lost_at_ms FROM bursts WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<i64>>(0))
            .optional()?;
        Ok(at.flatten())
    }

    /// Bursts started in `[from, to)` with their recordings, newest first.
    pub fn burst_recordings(
        &self,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<BurstRecording>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, group_id, talker, burst_id, started_at_ms, ended_at_ms, recording,
                    recording_lost_at_ms
             FROM bursts WHERE started_at_ms >= ?1 AND started_at_ms < ?2
             ORDER BY started_at_ms DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                [
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ],
                [r.get::<_, i64>(4)?, r.get::<_, i64>(5)?],
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, [group, talker, burst], [started_at_ms, ended_at_ms], recording, lost) = row?;
            out.push(BurstRecording {
                id,
                group: GroupId(id32(group)?),
                talker: TerminalId(id32(talker)?),
                burst_id: id32(burst)?,
                started_at_ms,
                ended_at_ms,
                recording,
                lost_at_ms: lost,
            });
        }
        Ok(out)
    }
}
