//! Database schema, versioned with `PRAGMA user_version`, and the statements that write it.

use rusqlite::{Connection, Transaction, params};

use super::CallLogError;
use super::record::{AdminAction, Origin, Record, StatusTarget};

/// Migration `i` takes the database from `user_version` i to i + 1. Append only: never edit
/// a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE bursts (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL,
        talker INTEGER NOT NULL,
        burst_id INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER NOT NULL,
        priority TEXT NOT NULL,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        frames INTEGER NOT NULL
    );
    CREATE INDEX bursts_started ON bursts (started_at_ms);
    CREATE INDEX bursts_group_started ON bursts (group_id, started_at_ms);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL,
        from_terminal INTEGER NOT NULL,
        text TEXT NOT NULL,
        groups TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX alerts_at ON alerts (at_ms);
    CREATE TABLE alert_acks (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL,
        terminal INTEGER NOT NULL,
        kind TEXT NOT NULL,
        status_code INTEGER,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX alert_acks_alert ON alert_acks (alert_id);
    CREATE TABLE emergencies (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL,
        terminal INTEGER NOT NULL,
        declared_at_ms INTEGER NOT NULL
    );
    CREATE INDEX emergencies_declared ON emergencies (declared_at_ms);
    CREATE TABLE emergency_clears (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL,
        by_terminal INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX emergency_clears_group ON emergency_clears (group_id, at_ms);
    CREATE TABLE auth_failures (
        id INTEGER PRIMARY KEY,
        terminal INTEGER,
        source TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX auth_failures_at ON auth_failures (at_ms);
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        terminal INTEGER NOT NULL,
        event TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX sessions_at ON sessions (at_ms);",
    // 2: the admin API's actions; the directory changes among them are replayed at start.
    // Columns that do not apply to an action are NULL.
    "CREATE TABLE admin_actions (
        id INTEGER PRIMARY KEY,
        action TEXT NOT NULL,
        terminal INTEGER,
        group_id INTEGER,
        listen INTEGER,
        talk INTEGER,
        max_priority TEXT,
        by_whom TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX admin_actions_at ON admin_actions (at_ms);",
    // 3: where each burst's recording is (relative path), NULL when none.
    "ALTER TABLE bursts ADD COLUMN recording TEXT;",
    // 4: zone logic's membership changes (relay patrol, backup calls) and private calls.
    "CREATE TABLE regroups (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL,
        terminal INTEGER NOT NULL,
        change TEXT NOT NULL,
        reason TEXT NOT NULL,
        zone INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX regroups_group_at ON regroups (group_id, at_ms);
    CREATE INDEX regroups_at ON regroups (at_ms);
    CREATE TABLE private_calls (
        id INTEGER PRIMARY KEY,
        call_id INTEGER NOT NULL,
        caller INTEGER NOT NULL,
        callee INTEGER NOT NULL,
        group_id INTEGER NOT NULL,
        emergency INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        answered_at_ms INTEGER,
        ended_at_ms INTEGER NOT NULL
    );
    CREATE INDEX private_calls_started ON private_calls (started_at_ms);",
    // 5: when crash recovery found a burst's recording lost (its audio never reached the
    // disk before a crash), NULL when it was not.
    "ALTER TABLE bursts ADD COLUMN recording_lost_at_ms INTEGER;",
    // 6: status messages ("on scene", "need backup"), for the history. `target_kind` is
    // `terminal`, `group` or `dispatchers`; `target` the terminal or group id, 0 for
    // the dispatchers.
    "CREATE TABLE status_messages (
        id INTEGER PRIMARY KEY,
        from_terminal INTEGER NOT NULL,
        code INTEGER NOT NULL,
        text TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX status_messages_at ON status_messages (at_ms);",
    // 7: records other relays of a cluster wrote, kept once each: which relay, and which
    // row of which table here holds it.
    "CREATE TABLE replicas (
        origin TEXT PRIMARY KEY,
        relay TEXT NOT NULL,
        tbl TEXT NOT NULL,
        row_id INTEGER NOT NULL
    );
    CREATE INDEX replicas_row ON replicas (tbl, row_id);",
];

/// The schema version this build writes and reads.
pub(crate) const VERSION: usize = MIGRATIONS.len();

pub(crate) fn user_version(conn: &Connection) -> Result<usize, CallLogError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

/// Brings the schema up to [`VERSION`], one transaction per step; a no-op when current.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), CallLogError> {
    let found = user_version(conn)?;
    if found > VERSION {
        return Err(CallLogError::TooNew {
            found,
            known: VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated between our read and the lock.
        if user_version(&tx)? > i {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Inserts another relay's record unless it is stored already; returns whether it was new.
pub(crate) fn insert_replica(
    tx: &Transaction<'_>,
    record: &Record,
    origin: &Origin,
) -> rusqlite::Result<bool> {
    let known = tx
        .prepare_cached("SELECT 1 FROM replicas WHERE origin = ?1")?
        .exists(params![origin.id])?;
    if known {
        return Ok(false);
    }
    let row_id = insert(tx, record)?;
    tx.prepare_cached("INSERT INTO replicas (origin, relay, tbl, row_id) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![origin.id, origin.relay, record.table(), row_id])?;
    Ok(true)
}

/// Inserts one record; returns its row id in its table.
pub(crate) fn insert(tx: &Transaction<'_>, record: &Record) -> rusqlite::Result<i64> {
    match record {
        Record::Burst(b) => {
            tx.prepare_cached(
                "INSERT INTO bursts (group_id, talker, burst_id, started_at_ms, ended_at_ms, priority,
                 kind, outcome, frames, recording) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                b.group.0,
                b.talker.0,
                b.burst_id,
                b.started_at_ms,
                b.ended_at_ms,
                b.priority.as_str(),
                b.kind.as_str(),
                b.outcome.as_str(),
                b.frames,
                b.recording
            ])?;
        }
        Record::AlertSent(a) => {
            let groups: Vec<String> = a.groups.iter().map(|g| g.0.to_string()).collect();
            tx.prepare_cached(
                "INSERT INTO alerts (alert_id, from_terminal, text, groups, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                a.alert_id as i64,
                a.from.0,
                a.text,
                groups.join(","),
                a.at_ms
            ])?;
        }
        Record::AlertAck(a) => {
            tx.prepare_cached(
                "INSERT INTO alert_acks (alert_id, terminal, kind, status_code, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                a.alert_id as i64,
                a.terminal.0,
                a.kind.as_str(),
                a.status_code,
                a.at_ms
            ])?;
        }
        Record::Emergency(e) => {
            tx.prepare_cached(
                "INSERT INTO emergencies (group_id, terminal, declared_at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![e.group.0, e.terminal.0, e.declared_at_ms])?;
        }
        Record::EmergencyCleared(e) => {
            tx.prepare_cached(
                "INSERT INTO emergency_clears (group_id, by_terminal, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![e.group.0, e.by.0, e.at_ms])?;
        }
        Record::AuthFailure(a) => {
            tx.prepare_cached(
                "INSERT INTO auth_failures (terminal, source, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                a.terminal.map(|t| t.0),
                a.source.to_string(),
                a.at_ms
            ])?;
        }
        Record::Session(s) => {
            tx.prepare_cached("INSERT INTO sessions (terminal, event, at_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![s.terminal.0, s.event.as_str(), s.at_ms])?;
        }
        Record::Admin(a) => {
            let (listen, talk, max_priority) = match &a.action {
                AdminAction::SetMember {
                    listen,
                    talk,
                    max_priority,
                    ..
                } => (Some(*listen), Some(*talk), max_priority.map(|p| p.as_str())),
                _ => (None, None, None),
            };
            tx.prepare_cached(
                "INSERT INTO admin_actions (action, terminal, group_id, listen, talk, max_priority,
                 by_whom, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                a.action.as_str(),
                a.action.terminal().map(|t| t.0),
                a.action.group().map(|g| g.0),
                listen,
                talk,
                max_priority,
                a.by,
                a.at_ms
            ])?;
        }
        Record::Regroup(r) => {
            tx.prepare_cached(
                "INSERT INTO regroups (group_id, terminal, change, reason, zone, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                r.group.0,
                r.terminal.0,
                if r.added { "added" } else { "removed" },
                r.reason.as_str(),
                r.zone.0,
                r.at_ms
            ])?;
        }
        Record::PrivateCall(c) => {
            tx.prepare_cached(
                "INSERT INTO private_calls (call_id, caller, callee, group_id, emergency, outcome,
                 started_at_ms, answered_at_ms, ended_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                c.call_id as i64,
                c.caller.0,
                c.callee.0,
                c.group.0,
                c.emergency,
                c.outcome.as_str(),
                c.started_at_ms,
                c.answered_at_ms,
                c.ended_at_ms
            ])?;
        }
        Record::Status(s) => {
            let (kind, target) = match s.target {
                StatusTarget::Terminal(t) => ("terminal", t.0),
                StatusTarget::Group(g) => ("group", g.0),
                StatusTarget::Dispatchers => ("dispatchers", 0),
            };
            tx.prepare_cached(
                "INSERT INTO status_messages (from_terminal, code, text, target_kind, target, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![s.from.0, s.code, s.text, kind, target, s.at_ms])?;
        }
    }
    Ok(tx.last_insert_rowid())
}
