//! The recent past for the dashboard, read from the call log: the last talk
//! bursts (each with its recording), the alerts of the last hour with their
//! acknowledgement tallies, and zone logic's last membership changes.
//!
//! The call log is SQLite, so this runs on a blocking thread, and only when
//! the log has committed something since the last read: a quiet relay costs
//! no query at all, a busy one three indexed queries a second whatever the
//! number of browsers watching (the regroupings are the last rows of their
//! table by row id, so their cost does not grow with the table).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use ptt_calllog::{AckKind, CallLogReader, now_ms};
use ptt_directory::{Directory, GroupId, TerminalId};

/// Bursts listed.
pub(crate) const RECENT_BURSTS: usize = 12;

/// Alerts listed.
pub(crate) const RECENT_ALERTS: usize = 5;

/// Membership changes listed.
pub(crate) const RECENT_REGROUPS: usize = 20;

/// How far back alerts are listed (the relay keeps tallies for an hour).
const ALERTS_SPAN_MS: i64 = 60 * 60 * 1000;

/// Longest alert text shown; longer texts are cut (the API has them whole).
const MAX_TEXT_CHARS: usize = 160;

/// One burst of the list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BurstView {
    /// Call-log row id (what the API's `/api/v1/bursts/{id}` names).
    pub(crate) id: i64,
    /// Group id.
    pub(crate) group: u32,
    /// Group name.
    pub(crate) group_name: String,
    /// Talker id.
    pub(crate) talker: u32,
    /// Talker name.
    pub(crate) talker_name: String,
    /// Unix ms of the grant.
    pub(crate) started_ms: i64,
    /// How long the floor was held.
    pub(crate) duration_ms: i64,
    /// normal, broadcast or emergency.
    pub(crate) kind: &'static str,
    /// How it ended.
    pub(crate) outcome: &'static str,
    /// Voice frames forwarded.
    pub(crate) frames: u32,
    /// Where the recording plays from, if there is one.
    pub(crate) recording: Option<String>,
}

/// One alert of the list with its tally.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertView {
    /// Alert id.
    pub(crate) id: u64,
    /// Sender's name.
    pub(crate) from: String,
    /// The text (cut to a line's worth).
    pub(crate) text: String,
    /// Unix ms when it was sent.
    pub(crate) at_ms: i64,
    /// Terminals it was addressed to, while the relay still keeps its tally.
    pub(crate) targets: Option<u32>,
    /// Terminals that answered at all (every answer says it was shown).
    pub(crate) delivered: u32,
    /// Whose latest answer is "responding".
    pub(crate) responding: u32,
    /// Whose latest answer is "unable".
    pub(crate) unable: u32,
    /// Organisations with targets not reached yet (name, missing, targets),
    /// the most missing first, at most [`MAX_NOT_REACHED`]; while the relay
    /// still keeps the tally.
    pub(crate) not_reached: Vec<(String, u32, u32)>,
    /// The first targets that have not answered at all, by name (at most
    /// [`MAX_SILENT_NAMED`]), while the relay still keeps the tally.
    pub(crate) silent: Vec<String>,
    /// How many targets have not answered at all.
    pub(crate) silent_count: u32,
}

/// Most terminals named as not reached per alert.
pub(crate) const MAX_SILENT_NAMED: usize = 8;

/// Most organisations listed as not reached per alert.
pub(crate) const MAX_NOT_REACHED: usize = 5;

/// One membership change of the list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RegroupView {
    /// Call-log row id.
    pub(crate) id: i64,
    /// Unix ms of the change.
    pub(crate) at_ms: i64,
    /// Group id.
    pub(crate) group: u32,
    /// Group name.
    pub(crate) group_name: String,
    /// Terminal id.
    pub(crate) terminal: u32,
    /// Terminal name.
    pub(crate) terminal_name: String,
    /// Added (true) or removed.
    pub(crate) added: bool,
    /// `zone-entered`, `zone-left`, `backup` or `backup-cleared`.
    pub(crate) reason: &'static str,
    /// The premises zone behind it, by name.
    pub(crate) zone_name: String,
}

/// The call-log part of the dashboard, refreshed on a blocking thread.
#[derive(Debug)]
pub(crate) struct LogView {
    path: PathBuf,
    directory: Arc<Directory>,
    reader: Option<CallLogReader>,
    /// The log's committed-record count at the last read.
    read_at: Option<u64>,
    /// The newest bursts.
    pub(crate) bursts: Vec<BurstView>,
    /// The newest alerts.
    pub(crate) alerts: Vec<AlertView>,
    /// The last membership changes.
    pub(crate) regroups: Vec<RegroupView>,
}

impl LogView {
    /// A view of the call log at `path`; nothing is read until
    /// [`LogView::refresh`].
    pub(crate) fn new(path: &Path, directory: Arc<Directory>) -> Self {
        Self {
            path: path.to_owned(),
            directory,
            reader: None,
            read_at: None,
            bursts: Vec::new(),
            alerts: Vec::new(),
            regroups: Vec::new(),
        }
    }

    /// Whether the log has committed records since the last read.
    pub(crate) fn stale(&self, written: u64) -> bool {
        self.read_at != Some(written)
    }

    /// Reads the lists again (blocking); `written` is the log's committed
    /// count now. A failed read keeps the previous lists and is retried on
    /// the next call.
    pub(crate) fn refresh(&mut self, written: u64) {
        match self.read() {
            Ok(()) => self.read_at = Some(written),
            Err(error) => {
                tracing::warn!(%error, "dashboard: reading the call log");
                // Reopen next time: the file may have been replaced.
                self.reader = None;
            }
        }
    }

    fn read(&mut self) -> Result<(), ptt_calllog::CallLogError> {
        if self.reader.is_none() {
            self.reader = Some(CallLogReader::open(&self.path)?);
        }
        let Some(reader) = &self.reader else {
            return Ok(());
        };
        let name = |id: TerminalId| {
            self.directory
                .terminal(id)
                .map_or_else(String::new, |t| t.name.clone())
        };
        let now = now_ms();
        self.bursts = reader
            .bursts(None, 0, i64::MAX, RECENT_BURSTS)?
            .into_iter()
            .map(|row| {
                let b = row.record;
                BurstView {
                    id: row.id,
                    group: b.group.0,
                    group_name: group_name(&self.directory, b.group),
                    talker: b.talker.0,
                    talker_name: name(b.talker),
                    started_ms: b.started_at_ms,
                    duration_ms: (b.ended_at_ms - b.started_at_ms).max(0),
                    kind: b.kind.as_str(),
                    outcome: b.outcome.as_str(),
                    frames: b.frames,
                    // Served by the history API (`ops/api.rs`).
                    recording: b
                        .recording
                        .as_ref()
                        .map(|_| format!("/api/v1/bursts/{}/recording", row.id)),
                }
            })
            .collect();
        self.alerts = reader
            .alerts(now - ALERTS_SPAN_MS, i64::MAX, RECENT_ALERTS)?
            .into_iter()
            .map(|row| {
                let (delivered, responding, unable) = tally(&row.acks);
                AlertView {
                    id: row.alert.alert_id,
                    from: name(row.alert.from),
                    text: row.alert.text.chars().take(MAX_TEXT_CHARS).collect(),
                    at_ms: row.alert.at_ms,
                    targets: None,
                    delivered,
                    responding,
                    unable,
                    not_reached: Vec::new(),
                    silent: Vec::new(),
                    silent_count: 0,
                }
            })
            .collect();
        self.regroups = reader
            .last_regroups(RECENT_REGROUPS)?
            .into_iter()
            .map(|row| {
                let r = row.record;
                RegroupView {
                    id: row.id,
                    at_ms: r.at_ms,
                    group: r.group.0,
                    group_name: self
                        .directory
                        .group(r.group)
                        .map_or_else(String::new, |g| g.name.clone()),
                    terminal: r.terminal.0,
                    terminal_name: name(r.terminal),
                    added: r.added,
                    reason: r.reason.as_str(),
                    zone_name: self
                        .directory
                        .zone(r.zone)
                        .map_or_else(String::new, |z| z.name.clone()),
                }
            })
            .collect();
        Ok(())
    }
}

/// The tally of an alert's logged answers (oldest first): every terminal
/// that answered counts as delivered; its latest answer counts as responding
/// or unable, and a later bare "delivered" receipt does not undo either.
fn tally(acks: &[ptt_calllog::AlertAckRecord]) -> (u32, u32, u32) {
    let mut latest: HashMap<u32, AckKind> = HashMap::new();
    for ack in acks {
        let entry = latest.entry(ack.terminal.0).or_insert(ack.kind);
        if ack.kind != AckKind::Delivered {
            *entry = ack.kind;
        }
    }
    let count = |kind| latest.values().filter(|k| **k == kind).count() as u32;
    (
        latest.len() as u32,
        count(AckKind::Responding),
        count(AckKind::Unable),
    )
}

/// A group's name for the dashboard; a private call's group (a reserved id
/// the directory does not hold) is "private call".
fn group_name(directory: &Directory, group: GroupId) -> String {
    match directory.group(group) {
        Some(g) => g.name.clone(),
        None if group.0 >= ptt_directory::FIRST_RESERVED_GROUP_ID => "private call".to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptt_calllog::AlertAckRecord;

    fn ack(terminal: u32, kind: AckKind) -> AlertAckRecord {
        AlertAckRecord {
            alert_id: 1,
            terminal: TerminalId(terminal),
            kind,
            status_code: None,
            at_ms: 0,
        }
    }

    #[test]
    fn the_latest_answer_counts_and_a_receipt_never_undoes_it() {
        let acks = [
            ack(1, AckKind::Delivered),
            ack(1, AckKind::Responding),
            ack(1, AckKind::Delivered), // a late automatic receipt
            ack(2, AckKind::Responding),
            ack(2, AckKind::Unable), // changed its mind
            ack(3, AckKind::Delivered),
        ];
        assert_eq!(tally(&acks), (3, 1, 1));
        assert_eq!(tally(&[]), (0, 0, 0));
    }

    #[test]
    fn a_private_calls_group_is_named_so() {
        let directory = Directory::demo().expect("the demo directory");
        let call_group = GroupId(ptt_directory::FIRST_RESERVED_GROUP_ID + 3);
        assert_eq!(group_name(&directory, call_group), "private call");
        assert_eq!(group_name(&directory, GroupId(999_999)), "");
    }
}
