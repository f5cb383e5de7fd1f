//! The read side of `admin_actions`: every action in order (what the relay
//! replays at start), and the membership changes among them (what the ops
//! API lists beside zone logic's regroupings).

use rusqlite::params;

use super::{CallLogError, CallLogReader, Row, corrupt, id32, limit, text};
use crate::record::{AdminAction, AdminActionRecord, UnixMs};
use ptt_directory::{GroupId, Priority, TerminalId};

/// The columns every admin query selects, in [`admin_row`]'s order.
const ADMIN_COLUMNS: &str =
    "id, action, terminal, group_id, listen, talk, max_priority, by_whom, at_ms";

/// The raw columns of one `admin_actions` row, decoded by [`admin_row`].
type RawAdmin = (
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<bool>,
    Option<bool>,
    Option<String>,
    String,
    i64,
);

fn raw_admin(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawAdmin> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn admin_row(raw: RawAdmin) -> Result<Row<AdminActionRecord>, CallLogError> {
    let (id, action, t, g, listen, talk, p, by, at_ms) = raw;
    let missing = |what: &str| corrupt(format!("admin action {id}: no {what}"));
    let terminal = || -> Result<TerminalId, CallLogError> {
        Ok(TerminalId(id32(t.ok_or_else(|| missing("terminal"))?)?))
    };
    let group = || -> Result<GroupId, CallLogError> {
        Ok(GroupId(id32(g.ok_or_else(|| missing("group"))?)?))
    };
    let action = match action.as_str() {
        "disable" => AdminAction::Disable {
            terminal: terminal()?,
        },
        "enable" => AdminAction::Enable {
            terminal: terminal()?,
        },
        "set-member" => AdminAction::SetMember {
            group: group()?,
            terminal: terminal()?,
            listen: listen.ok_or_else(|| missing("listen"))?,
            talk: talk.ok_or_else(|| missing("talk"))?,
            max_priority: p.map(|p| text(&p, Priority::from_name)).transpose()?,
        },
        "remove-member" => AdminAction::RemoveMember {
            group: group()?,
            terminal: terminal()?,
        },
        "clear-emergency" => AdminAction::ClearEmergency { group: group()? },
        other => return Err(corrupt(format!("unknown admin action {other:?}"))),
    };
    Ok(Row {
        id,
        record: AdminActionRecord { action, by, at_ms },
    })
}

impl CallLogReader {
    /// Every admin action, oldest first: the order in which the relay replays the directory
    /// changes among them at start.
    pub fn admin_actions(&self) -> Result<Vec<Row<AdminActionRecord>>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ADMIN_COLUMNS} FROM admin_actions ORDER BY id"
        ))?;
        let rows = stmt
            .query_map([], raw_admin)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(admin_row).collect()
    }

    /// The membership changes made through the admin API in `[from, to)`, of one group
    /// or all, newest first (same time: last logged first). Admin actions are few, so
    /// the table is scanned.
    pub fn admin_memberships(
        &self,
        group: Option<GroupId>,
        from: UnixMs,
        to: UnixMs,
        max: usize,
    ) -> Result<Vec<Row<AdminActionRecord>>, CallLogError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ADMIN_COLUMNS} FROM admin_actions
             WHERE action IN ('set-member', 'remove-member')
               AND (?1 IS NULL OR group_id = ?1) AND at_ms >= ?2 AND at_ms < ?3
             ORDER BY at_ms DESC, id DESC LIMIT ?4"
        ))?;
        let rows = stmt
            .query_map(params![group.map(|g| g.0), from, to, limit(max)], raw_admin)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(admin_row).collect()
    }
}
