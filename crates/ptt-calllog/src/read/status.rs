//! The read side of `status_messages`: what the history API lists.

use rusqlite::params;

use super::{CallLogError, CallLogReader, Row, StatusRow, corrupt, id32, limit};
use crate::record::{StatusRecord, StatusTarget, UnixMs};
use ptt_directory::{GroupId, TerminalId};

impl CallLogReader {
    /// Status messages sent in `[from, to)`, newest first (same time: last logged
    /// first).
    pub fn status_messages(
        &self,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<StatusRow>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, from_terminal, code, text, target_kind, target, at_ms
             FROM status_messages WHERE at_ms >= ?1 AND at_ms < ?2
             ORDER BY at_ms DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![from, to, limit(max)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, from, code, text, kind, target, at_ms)| {
                let target = match kind.as_str() {
                    "terminal" => StatusTarget::Terminal(TerminalId(id32(target)?)),
                    "group" => StatusTarget::Group(GroupId(id32(target)?)),
                    "dispatchers" => StatusTarget::Dispatchers,
                    other => return Err(corrupt(format!("status {id}: target {other:?}"))),
                };
                Ok(Row {
                    id,
                    record: StatusRecord {
                        from: TerminalId(id32(from)?),
                        code: u32::try_from(code)
                            .map_err(|_| corrupt(format!("status {id}: code {code}")))?,
                        text,
                        target,
                        at_ms,
                    },
                })
            })
            .collect()
    }
}
