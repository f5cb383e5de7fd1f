//! The read side: queries for the HTTP API and tests, on a read-only connection of their
//! own so they never wait on, or slow down, the writer (WAL lets both run at once).
//!
//! Time ranges are half-open `[from, to)` in unix ms; results are newest first, at most
//! `limit` rows. Blocking: call from `spawn_blocking` in async code.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::CallLogError;
use super::record::{
    AckKind, AlertAckRecord, AlertSentRecord, AuthFailureRecord, BurstKind, BurstOutcome,
    BurstRecord, PrivateCallRecord, RegroupRecord, SessionEvent, SessionRecord, UnixMs,
};
use super::schema;
use ptt_directory::{GroupId, Priority, TerminalId};

mod admin;
mod alert_id;
mod dispatch;
mod replicas;
mod status;

pub use alert_id::last_alert_id;
pub(crate) mod recordings;

/// A stored record with its row id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<T> {
    /// Row id in its table (what `record_durable` returned).
    pub id: i64,
    /// The record.
    pub record: T,
}

/// A burst as stored.
pub type BurstRow = Row<BurstRecord>;

/// A membership change of zone logic as stored.
pub type RegroupRow = Row<RegroupRecord>;

/// A private call as stored.
pub type PrivateCallRow = Row<PrivateCallRecord>;

/// A status message as stored.
pub type StatusRow = Row<super::StatusRecord>;

/// An alert with every acknowledgement it received (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Row id of the alert.
    pub id: i64,
    /// The alert.
    pub alert: AlertSentRecord,
    /// Its acknowledgements.
    pub acks: Vec<AlertAckRecord>,
}

/// An emergency and, if it has been, when and by whom it was cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyRow {
    /// Row id of the declaration.
    pub id: i64,
    /// The group.
    pub group: GroupId,
    /// Who declared it.
    pub terminal: TerminalId,
    /// When.
    pub declared_at_ms: UnixMs,
    /// The first clear of that group at or after the declaration: (by, at).
    pub cleared: Option<(TerminalId, UnixMs)>,
    /// For a clear through the admin API (by terminal 0): the operator who
    /// asked for it (the `by` of its admin action).
    pub cleared_by_operator: Option<String>,
}

/// Row counts per table, for tests and the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Talk bursts.
    pub bursts: u64,
    /// Alerts sent.
    pub alerts: u64,
    /// Alert acknowledgements.
    pub alert_acks: u64,
    /// Emergencies declared.
    pub emergencies: u64,
    /// Emergencies cleared.
    pub emergency_clears: u64,
    /// Failed logins.
    pub auth_failures: u64,
    /// SessionRecord events.
    pub sessions: u64,
}

/// A read-only view of the call log.
#[derive(Debug)]
pub struct CallLogReader {
    conn: Connection,
}

fn corrupt(what: impl std::fmt::Display) -> CallLogError {
    CallLogError::Corrupt(what.to_string())
}

fn id32(v: i64) -> Result<u32, CallLogError> {
    u32::try_from(v).map_err(|_| corrupt(format!("id {v} out of range")))
}

fn text<T>(s: &str, parse: fn(&str) -> Option<T>) -> Result<T, CallLogError> {
    parse(s).ok_or_else(|| corrupt(format!("unknown value {s:?}")))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl CallLogReader {
    /// Opens an existing call log read-only; fails if it does not exist or has a schema
    /// this build does not know.
    pub fn open(path: &Path) -> Result<CallLogReader, CallLogError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| CallLogError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let found = schema::user_version(&conn)?;
        if found > schema::VERSION {
            return Err(CallLogError::TooNew {
                found,
                known: schema::VERSION,
            });
        }
        if found < schema::VERSION {
            return Err(corrupt(format!(
                "schema version {found}, expected {}: open it with CallLog::open first",
                schema::VERSION
            )));
        }
        Ok(CallLogReader { conn })
    }

    /// Bursts started in `[from, to)`, of one group or all, newest first.
    pub fn bursts(
        &self,
        group: Option<GroupId>,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<BurstRow>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, group_id, talker, burst_id, started_at_ms, ended_at_ms, priority, kind,
                    outcome, frames, recording
             FROM bursts
             WHERE (?1 IS NULL OR group_id = ?1) AND started_at_ms >= ?2 AND started_at_ms < ?3
             ORDER BY started_at_ms DESC, id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![group.map(|g| g.0), from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, g, t, b, s, e, p, k, o, f, recording) = row?;
            out.push(Row {
                id,
                record: BurstRecord {
                    group: GroupId(id32(g)?),
                    talker: TerminalId(id32(t)?),
                    burst_id: id32(b)?,
                    started_at_ms: s,
                    ended_at_ms: e,
                    priority: text(&p, Priority::from_name)?,
                    kind: text(&k, BurstKind::from_name)?,
                    outcome: text(&o, BurstOutcome::from_name)?,
                    frames: id32(f)?,
                    recording,
                },
            });
        }
        Ok(out)
    }

    /// Alerts sent in `[from, to)` with their acknowledgements, newest first.
    pub fn alerts(
        &self,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<AlertRow>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, alert_id, from_terminal, text, groups, at_ms FROM alerts
             WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, alert_id, from_t, text_, groups, at) = row?;
            let groups = groups
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map(GroupId)
                        .map_err(|_| corrupt(format!("group {s:?}")))
                })
                .collect::<Result<_, _>>()?;
            let alert_id = alert_id as u64;
            out.push(AlertRow {
                id,
                acks: self.acks(alert_id)?,
                alert: AlertSentRecord {
                    alert_id,
                    from: TerminalId(id32(from_t)?),
                    text: text_,
                    groups,
                    at_ms: at,
                },
            });
        }
        Ok(out)
    }

    /// The acknowledgements of one alert, oldest first.
    pub fn acks(&self, alert_id: u64) -> Result<Vec<AlertAckRecord>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT terminal, kind, status_code, at_ms FROM alert_acks
             WHERE alert_id = ?1 ORDER BY at_ms, id",
        )?;
        let rows = stmt.query_map(params![alert_id as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (t, k, code, at) = row?;
            let status_code = code
                .map(|c| u16::try_from(c).map_err(|_| corrupt(format!("status code {c}"))))
                .transpose()?;
            out.push(AlertAckRecord {
                alert_id,
                terminal: TerminalId(id32(t)?),
                kind: text(&k, AckKind::from_name)?,
                status_code,
                at_ms: at,
            });
        }
        Ok(out)
    }

    /// Emergencies declared in `[from, to)`, of one group or all, newest first.
    pub fn emergencies(
        &self,
        group: Option<GroupId>,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<EmergencyRow>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id, e.group_id, e.terminal, e.declared_at_ms, c.by_terminal, c.at_ms,
                    a.by_whom
             FROM emergencies e
             LEFT JOIN emergency_clears c ON c.id = (
                 SELECT id FROM emergency_clears
                 WHERE group_id = e.group_id AND at_ms >= e.declared_at_ms ORDER BY at_ms, id LIMIT 1)
             -- An admin clear is committed as an admin action just before it happens.
             LEFT JOIN admin_actions a ON c.by_terminal = 0 AND a.id = (
                 SELECT id FROM admin_actions
                 WHERE action = 'clear-emergency' AND group_id = e.group_id AND at_ms <= c.at_ms
                 ORDER BY at_ms DESC, id DESC LIMIT 1)
             WHERE (?1 IS NULL OR e.group_id = ?1) AND e.declared_at_ms >= ?2 AND e.declared_at_ms < ?3
             ORDER BY e.declared_at_ms DESC, e.id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![group.map(|g| g.0), from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, g, t, declared_at_ms, by, at, operator) = row?;
            let cleared = match (by, at) {
                (Some(by), Some(at)) => Some((TerminalId(id32(by)?), at)),
                _ => None,
            };
            out.push(EmergencyRow {
                id,
                group: GroupId(id32(g)?),
                terminal: TerminalId(id32(t)?),
                declared_at_ms,
                cleared,
                cleared_by_operator: operator,
            });
        }
        Ok(out)
    }

    /// Failed logins in `[from, to)`, newest first.
    pub fn auth_failures(
        &self,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<Row<AuthFailureRecord>>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, terminal, source, at_ms FROM auth_failures
             WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, t, source, at) = row?;
            out.push(Row {
                id,
                record: AuthFailureRecord {
                    terminal: t.map(id32).transpose()?.map(TerminalId),
                    source: source
                        .parse()
                        .map_err(|_| corrupt(format!("address {source:?}")))?,
                    at_ms: at,
                },
            });
        }
        Ok(out)
    }

    /// SessionRecord events in `[from, to)`, of one terminal or all, newest first.
    pub fn sessions(
        &self,
        terminal: Option<TerminalId>,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<Row<SessionRecord>>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, terminal, event, at_ms FROM sessions
             WHERE (?1 IS NULL OR terminal = ?1) AND at_ms >= ?2 AND at_ms < ?3
             ORDER BY at_ms DESC, id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![terminal.map(|t| t.0), from, to, limit(max)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, t, event, at) = row?;
            out.push(Row {
                id,
                record: SessionRecord {
                    terminal: TerminalId(id32(t)?),
                    event: text(&event, SessionEvent::from_name)?,
                    at_ms: at,
                },
            });
        }
        Ok(out)
    }

    /// Row counts of every table.
    pub fn counts(&self) -> Result<Counts, CallLogError> {
        let count = |table: &str| -> Result<u64, CallLogError> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n as u64)
        };
        Ok(Counts {
            bursts: count("bursts")?,
            alerts: count("alerts")?,
            alert_acks: count("alert_acks")?,
            emergencies: count("emergencies")?,
            emergency_clears: count("emergency_clears")?,
            auth_failures: count("auth_failures")?,
            sessions: count("sessions")?,
        })
    }
}

impl CallLogReader {
    /// The burst with row id `id`, `None` if there is none (for the history
    /// API's recording download). Decoded by [`Self::bursts`], so a burst
    /// reads the same whichever way it is found.
    pub fn burst(&self, id: i64) -> Result<Option<BurstRow>, CallLogError> {
        let found = self
            .conn
            .prepare_cached("SELECT group_id, started_at_ms FROM bursts WHERE id = ?1")?
            .query_row(params![id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            });
        let (group, started) = match found {
            Ok(found) => found,
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let same_start = self.bursts(
            Some(GroupId(id32(group)?)),
            started,
            started.saturating_add(1),
            usize::MAX,
        )?;
        Ok(same_start.into_iter().find(|row| row.id == id))
    }
}
