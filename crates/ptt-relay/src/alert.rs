//! Alerts with roll call ("one call, a hundred answers"): a dispatcher's
//! alert reaches every joined member of the target groups once, each
//! recipient answers, and the sender and the control room watch the tally.
//!
//! The life of an alert:
//! 1. [`send`] checks the request on the sender's control task and hands the
//!    [`AlertSentRecord`] to the call log without waiting for the disk.
//! 2. Once the record is committed, the alert is registered, the sender gets
//!    the first `AlertTally` as its answer (the control room gets it as an
//!    event), and only then is the `Alert` delivered. What the relay
//!    answered, and what the recipients saw, is on disk.
//! 3. [`acknowledge`] checks an `AlertAck` and logs it durably; once it is
//!    committed the tally takes the answer, every change goes out as an
//!    `AlertTally` event with just the changed entry, and the answer is `Ack`.
//!
//! Alert ids are a hybrid logical clock: `max(unix µs now, last id + 1)`,
//! where the last id starts at the largest id in the call log. So ids rise
//! within a run, roughly say when the alert was sent, and stay unique across
//! restarts even if the wall clock was set back meanwhile (1 µs per alert:
//! a million alerts a second before the ids run ahead of the clock). They
//! stay below 2^53, so JSON consumers read them exactly.
//!
//! Memory stays bounded: an alert is forgotten [`ALERT_TTL`] after it was
//! sent, and at most [`MAX_ALERTS`] are kept (the oldest go first). An answer
//! to a forgotten alert is refused with `UNKNOWN_ALERT`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use ptt_proto::pb::{self, server_message::Body};

use crate::calllog::{AckKind, AlertAckRecord, AlertSentRecord};
use crate::directory::GroupId;
use crate::group::GroupShared;
use crate::link::{self, Link};
use crate::relay::{Shared, terminal_id};
use crate::wire;

/// How long an alert's tally is kept after it was sent.
pub const ALERT_TTL: Duration = Duration::from_secs(60 * 60);

/// Most alerts kept at once; beyond it the oldest are forgotten.
pub const MAX_ALERTS: usize = 1024;

/// Longest alert text accepted, in bytes.
pub const MAX_TEXT: usize = 4096;

/// The alerts of the last hour and their tallies; shared by every session.
#[derive(Debug)]
pub struct Alerts {
    alerts: DashMap<u64, AlertState>,
    /// The last alert id handed out (see the module docs).
    last_id: AtomicU64,
    /// Arrival order of answers, so a slower commit never overwrites a
    /// later answer of the same terminal.
    next_answer: AtomicU64,
    /// The control-room groups whose dispatchers watch every tally.
    control_room: Vec<Arc<GroupShared>>,
}

/// One registered alert.
#[derive(Debug)]
struct AlertState {
    sender: u32,
    sent: Instant,
    /// Every terminal the alert was addressed to, sorted, without the sender.
    targets: Vec<u32>,
    /// The targets by group and by organisation, for the tally's breakdown.
    parts: Vec<Part>,
    tally: Mutex<Tally>,
}

/// One group's or organisation's share of an alert's targets.
#[derive(Debug)]
struct Part {
    /// The group, or 0 for an organisation.
    group_id: u32,
    name: String,
    /// Its targets, sorted.
    targets: Vec<u32>,
}

/// The answers to one alert so far.
#[derive(Debug, Default)]
struct Tally {
    answers: HashMap<u32, Answer>,
    responding: u32,
    unable: u32,
}

/// A recipient's latest answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    kind: pb::AlertAckKind,
    status_code: Option<u16>,
    at_us: u64,
    /// Arrival order (relay-wide).
    order: u64,
}

impl Alerts {
    /// An empty registry; `last_logged` is the largest alert id in the call
    /// log (see [`last_logged_id`]), `control_room` the groups whose
    /// listeners see every tally.
    pub fn new(control_room: Vec<Arc<GroupShared>>, last_logged: u64) -> Self {
        Self {
            alerts: DashMap::new(),
            last_id: AtomicU64::new(last_logged),
            next_answer: AtomicU64::new(0),
            control_room,
        }
    }

    /// A new alert id, unique across restarts (see the module docs).
    pub fn next_id(&self, now_us: u64) -> u64 {
        let mut last = self.last_id.load(Ordering::Relaxed);
        loop {
            let id = now_us.max(last + 1);
            match self
                .last_id
                .compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(current) => last = current,
            }
        }
    }

    /// Alerts currently kept.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether no alert is kept.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// How many terminals alert `id` was addressed to, while it is kept (the
    /// dashboard's roll call: "42 / 90 seen").
    pub fn targets(&self, id: u64) -> Option<usize> {
        self.alerts.get(&id).map(|alert| alert.targets.len())
    }

    /// Alert `id`'s roll call by organisation, while it is kept: (name,
    /// targets not reached yet, targets), the most missing first. The
    /// dashboard shows where answers are missing.
    pub fn not_reached(&self, id: u64) -> Option<Vec<(String, u32, u32)>> {
        let alert = self.alerts.get(&id)?;
        let tally = alert.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, u32, u32)> = alert
            .parts
            .iter()
            .filter(|part| part.group_id == 0)
            .map(|part| tally.part(part))
            .filter(|part| part.delivered < part.targets)
            .map(|part| (part.name, part.targets - part.delivered, part.targets))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Some(out)
    }

    /// Registers a committed alert, forgetting expired and surplus ones.
    fn insert(&self, id: u64, state: AlertState) {
        let now = Instant::now();
        self.alerts
            .retain(|_, alert| now.saturating_duration_since(alert.sent) < ALERT_TTL);
        while self.alerts.len() >= MAX_ALERTS {
            // Ids rise with time: the smallest is the oldest.
            let Some(oldest) = self.alerts.iter().map(|a| *a.key()).min() else {
                break;
            };
            self.alerts.remove(&oldest);
        }
        self.alerts.insert(id, state);
    }

    /// Whether `terminal` may answer alert `id`.
    fn check(&self, id: u64, terminal: u32) -> Result<(), pb::ErrorReason> {
        let alert = self.alerts.get(&id).ok_or(pb::ErrorReason::UnknownAlert)?;
        if alert.targets.binary_search(&terminal).is_err() {
            return Err(pb::ErrorReason::Forbidden);
        }
        Ok(())
    }

    /// Takes a committed answer into alert `id`'s tally and, if it changed
    /// anything, tells the sender and the control room.
    fn answer(&self, shared: &Shared, id: u64, terminal: u32, answer: Answer) {
        let Some(alert) = self.alerts.get(&id) else {
            return; // forgotten meanwhile; the answer is logged all the same
        };
        // Sent under the lock, so every watcher sees the tallies in order.
        let mut tally = alert.tally.lock().unwrap_or_else(PoisonError::into_inner);
        if !tally.apply(terminal, answer) {
            return;
        }
        let entry = entry(shared, terminal, &answer);
        let frame = link::frame(
            0,
            Body::AlertTally(tally.to_wire(id, &alert.targets, &alert.parts, vec![entry])),
        );
        if let Some(sender) = shared.sessions.get(&alert.sender) {
            sender.send_frame(frame.clone());
        }
        self.to_control_room(alert.sender, &frame);
    }

    /// Sends `frame` to every terminal joined to a control-room group, once
    /// each, except `sender` (which is told directly).
    fn to_control_room(&self, sender: u32, frame: &Bytes) {
        let mut told = HashSet::from([sender]);
        for group in &self.control_room {
            for link in group.listeners().iter() {
                if told.insert(link.terminal) {
                    link.send_frame(frame.clone());
                }
            }
        }
    }
}

impl Tally {
    /// Takes `answer` as `terminal`'s latest; false if nothing changed.
    ///
    /// A DELIVERED once anything is taken adds nothing (it is the client's
    /// automatic receipt), and the user's own answer always replaces a
    /// DELIVERED, whichever the relay numbered first: the client sends its
    /// receipt from a task of its own, so it may follow the user's answer.
    /// Between two user answers, one that arrived before the one taken is
    /// stale.
    fn apply(&mut self, terminal: u32, answer: Answer) -> bool {
        use pb::AlertAckKind::Delivered;
        if let Some(previous) = self.answers.get(&terminal).copied() {
            let superseded = match (previous.kind, answer.kind) {
                (_, Delivered) => true,
                (Delivered, _) => false,
                _ => previous.order > answer.order,
            };
            let same = (previous.kind, previous.status_code) == (answer.kind, answer.status_code);
            if superseded || same {
                return false;
            }
            self.count(previous.kind, false);
        }
        self.count(answer.kind, true);
        self.answers.insert(terminal, answer);
        true
    }

    fn count(&mut self, kind: pb::AlertAckKind, add: bool) {
        let counter = match kind {
            pb::AlertAckKind::Responding => &mut self.responding,
            pb::AlertAckKind::Unable => &mut self.unable,
            _ => return,
        };
        *counter = if add {
            *counter + 1
        } else {
            counter.saturating_sub(1)
        };
    }

    fn to_wire(
        &self,
        id: u64,
        targets: &[u32],
        parts: &[Part],
        entries: Vec<pb::AlertAckEntry>,
    ) -> pb::AlertTally {
        let (groups, organisations) = parts
            .iter()
            .map(|part| self.part(part))
            .partition(|part| part.group_id != 0);
        pb::AlertTally {
            alert_id: id,
            targets: count(targets.len()),
            // Every answer says the alert was shown.
            delivered: count(self.answers.len()),
            responding: self.responding,
            unable: self.unable,
            entries,
            groups,
            organisations,
        }
    }

    /// The counts of one part of the targets.
    fn part(&self, part: &Part) -> pb::AlertTallyPart {
        let mut out = pb::AlertTallyPart {
            group_id: part.group_id,
            name: part.name.clone(),
            targets: count(part.targets.len()),
            ..Default::default()
        };
        for answer in part.targets.iter().filter_map(|t| self.answers.get(t)) {
            out.delivered += 1;
            match answer.kind {
                pb::AlertAckKind::Responding => out.responding += 1,
                pb::AlertAckKind::Unable => out.unable += 1,
                _ => {}
            }
        }
        out
    }
}

/// A dispatcher's `Alert` request: checked here, then logged durably; the
/// rest happens once the record is committed (see the module docs).
pub fn send(shared: &Arc<Shared>, link: &Arc<Link>, request_id: u64, alert: pb::Alert) {
    let refuse = |reason, detail| link.send(request_id, wire::error(reason, detail));
    if !shared.directory.may_all_call(terminal_id(link.terminal)) {
        return refuse(pb::ErrorReason::Forbidden, "only dispatchers send alerts");
    }
    if alert.text.len() > MAX_TEXT {
        return refuse(
            pb::ErrorReason::Malformed,
            "alert text longer than 4096 bytes",
        );
    }
    let groups: Vec<u32> = if alert.target_group_ids.is_empty() {
        shared.all_call_groups().iter().map(|g| g.id).collect()
    } else {
        let mut seen = HashSet::new();
        alert
            .target_group_ids
            .iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect()
    };
    if groups.is_empty() {
        return refuse(pb::ErrorReason::UnknownGroup, "no all-call groups to alert");
    }
    if groups.iter().any(|id| shared.group(*id).is_none()) {
        return refuse(pb::ErrorReason::UnknownGroup, "no such group");
    }

    let sent_at_us = shared.clock.unix_us_now();
    let alert = pb::Alert {
        alert_id: shared.alerts.next_id(sent_at_us),
        from_terminal_id: link.terminal,
        from_name: link.name.to_string(),
        text: alert.text,
        target_group_ids: groups,
        requires_ack: alert.requires_ack,
        sent_at_us,
    };
    let record = AlertSentRecord {
        alert_id: alert.alert_id,
        from: terminal_id(link.terminal),
        text: alert.text.clone(),
        groups: alert.target_group_ids.iter().map(|g| GroupId(*g)).collect(),
        at_ms: unix_ms(sent_at_us),
    };
    let (owned, link) = (shared.clone(), link.clone());
    shared.log_durable(record.into(), move |committed| match committed {
        Ok(_) => open(&owned, &link, request_id, alert),
        Err(error) => {
            tracing::error!(%error, alert = alert.alert_id, "alert not logged; not sent");
            link.send(
                request_id,
                wire::error(pb::ErrorReason::Internal, "the alert could not be logged"),
            );
        }
    });
}

/// Registers a committed alert, answers the sender and delivers it to every
/// joined member of its groups, once each, except the sender.
fn open(shared: &Shared, link: &Link, request_id: u64, alert: pb::Alert) {
    shared.metrics.alerts_sent.inc();
    let sender = link.terminal;
    let mut reached = HashSet::from([sender]);
    let mut recipients = Vec::new();
    for group in alert
        .target_group_ids
        .iter()
        .filter_map(|id| shared.group(*id))
    {
        for listener in group.listeners().iter() {
            if reached.insert(listener.terminal) {
                recipients.push(listener.clone());
            }
        }
    }
    // Every member now (the directory as changed by the admin API), online
    // or not, plus anyone hearing a group without a membership.
    let mut targets: Vec<u32> = alert
        .target_group_ids
        .iter()
        .flat_map(|id| shared.roster.members(GroupId(*id)))
        .map(|member| member.terminal.0)
        .chain(recipients.iter().map(|r| r.terminal))
        .filter(|terminal| *terminal != sender)
        .collect();
    targets.sort_unstable();
    targets.dedup();

    let parts = parts(shared, &alert.target_group_ids, &targets);
    let first = Tally::default().to_wire(alert.alert_id, &targets, &parts, Vec::new());
    tracing::info!(
        alert = alert.alert_id,
        targets = targets.len(),
        online = recipients.len(),
        "alert sent"
    );
    shared.alerts.insert(
        alert.alert_id,
        AlertState {
            sender,
            sent: Instant::now(),
            targets,
            parts,
            tally: Mutex::new(Tally::default()),
        },
    );
    link.send(request_id, Body::AlertTally(first.clone()));
    shared
        .alerts
        .to_control_room(sender, &link::frame(0, Body::AlertTally(first)));
    let frame = link::frame(0, Body::Alert(alert));
    for recipient in recipients {
        recipient.send_frame(frame.clone());
    }
}

/// The targets of an alert by target group (members now, as `targets` was
/// built) and by organisation (from the directory), for the tally's breakdown.
fn parts(shared: &Shared, groups: &[u32], targets: &[u32]) -> Vec<Part> {
    let mut out: Vec<Part> = groups
        .iter()
        .map(|&group_id| {
            let mut members: Vec<u32> = shared
                .roster
                .members(GroupId(group_id))
                .iter()
                .map(|member| member.terminal.0)
                .filter(|terminal| targets.binary_search(terminal).is_ok())
                .collect();
            members.sort_unstable();
            members.dedup();
            Part {
                group_id,
                name: shared
                    .group(group_id)
                    .map(|group| group.name.to_string())
                    .unwrap_or_default(),
                targets: members,
            }
        })
        .collect();
    let mut organisations: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for &terminal in targets {
        let organisation = shared
            .directory
            .terminal(terminal_id(terminal))
            .map_or("", |t| t.organisation.as_str());
        organisations
            .entry(organisation)
            .or_default()
            .push(terminal);
    }
    out.extend(organisations.into_iter().map(|(name, targets)| Part {
        group_id: 0,
        name: name.to_owned(),
        targets,
    }));
    out
}

/// A recipient's `AlertAck`: checked here, logged durably, then taken into
/// the tally and answered with `Ack`.
pub fn acknowledge(shared: &Arc<Shared>, link: &Arc<Link>, request_id: u64, ack: pb::AlertAck) {
    let refuse = |reason, detail| link.send(request_id, wire::error(reason, detail));
    let kind = match pb::AlertAckKind::try_from(ack.kind) {
        Ok(
            kind @ (pb::AlertAckKind::Delivered
            | pb::AlertAckKind::Responding
            | pb::AlertAckKind::Unable),
        ) => kind,
        _ => return refuse(pb::ErrorReason::Malformed, "unknown acknowledgement kind"),
    };
    let Ok(status_code) = ack.status_code.map(u16::try_from).transpose() else {
        return refuse(pb::ErrorReason::Malformed, "status code above 65535");
    };
    match shared.alerts.check(ack.alert_id, link.terminal) {
        Ok(()) => {}
        Err(pb::ErrorReason::UnknownAlert) => {
            return refuse(pb::ErrorReason::UnknownAlert, "no such alert (or expired)");
        }
        Err(reason) => return refuse(reason, "the alert was not addressed to you"),
    }
    let at_us = shared.clock.unix_us_now();
    let answer = Answer {
        kind,
        status_code,
        at_us,
        order: shared.alerts.next_answer.fetch_add(1, Ordering::Relaxed),
    };
    let record = AlertAckRecord {
        alert_id: ack.alert_id,
        terminal: terminal_id(link.terminal),
        kind: ack_kind(kind),
        status_code,
        at_ms: unix_ms(at_us),
    };
    let (owned, link) = (shared.clone(), link.clone());
    shared.log_durable(record.into(), move |committed| match committed {
        Ok(_) => {
            owned
                .alerts
                .answer(&owned, ack.alert_id, link.terminal, answer);
            link.send(request_id, Body::Ack(pb::Ack {}));
        }
        Err(error) => {
            tracing::error!(%error, alert = ack.alert_id, "alert answer not logged");
            link.send(
                request_id,
                wire::error(pb::ErrorReason::Internal, "the answer could not be logged"),
            );
        }
    });
}

/// The largest alert id in the call log at `path` (0 for none, or if the log
/// cannot be read, which is logged). Blocking: call at start-up.
pub fn last_logged_id(path: &Path) -> u64 {
    let read = || -> rusqlite::Result<i64> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.query_row("SELECT COALESCE(MAX(alert_id), 0) FROM alerts", [], |row| {
            row.get(0)
        })
    };
    match read() {
        Ok(id) => u64::try_from(id).unwrap_or(0),
        Err(error) => {
            tracing::warn!(%error, "cannot read the last alert id; ids follow the clock alone");
            0
        }
    }
}

/// The call log's kind of an answer.
fn ack_kind(kind: pb::AlertAckKind) -> AckKind {
    match kind {
        pb::AlertAckKind::Responding => AckKind::Responding,
        pb::AlertAckKind::Unable => AckKind::Unable,
        _ => AckKind::Delivered,
    }
}

fn entry(shared: &Shared, terminal: u32, answer: &Answer) -> pb::AlertAckEntry {
    pb::AlertAckEntry {
        terminal_id: terminal,
        name: shared.terminal_name(terminal),
        kind: answer.kind.into(),
        status_code: answer.status_code.map(u32::from),
        at_us: answer.at_us,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn unix_ms(us: u64) -> i64 {
    i64::try_from(us / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(kind: pb::AlertAckKind, status_code: Option<u16>, order: u64) -> Answer {
        Answer {
            kind,
            status_code,
            at_us: order,
            order,
        }
    }

    #[test]
    fn ids_rise_and_never_repeat_even_when_the_clock_goes_back() {
        let alerts = Alerts::new(Vec::new(), 5_000);
        let first = alerts.next_id(1_000);
        assert_eq!(
            first, 5_001,
            "seeded from the log: no reuse after a clock step back"
        );
        assert_eq!(alerts.next_id(1_000), 5_002);
        assert_eq!(alerts.next_id(9_000), 9_000, "follows the clock when ahead");
        assert_eq!(alerts.next_id(9_000), 9_001);
    }

    #[test]
    fn latest_answer_wins_and_delivered_never_downgrades() {
        use pb::AlertAckKind::{Delivered, Responding, Unable};
        let mut tally = Tally::default();
        assert!(tally.apply(7, answer(Delivered, None, 1)));
        assert!(!tally.apply(7, answer(Delivered, None, 2)), "duplicate");
        assert!(tally.apply(7, answer(Responding, Some(8), 3)));
        assert!(!tally.apply(7, answer(Delivered, None, 4)), "no downgrade");
        assert!(tally.apply(7, answer(Unable, None, 5)));
        assert!(!tally.apply(7, answer(Responding, None, 4)), "stale");
        assert!(
            tally.apply(8, answer(Responding, Some(1), 6)),
            "first answer"
        );
        // The automatic receipt numbered after the user's answer but taken
        // first (its log write finished first) does not hide the answer.
        assert!(tally.apply(9, answer(Delivered, None, 11)));
        assert!(tally.apply(9, answer(Responding, None, 10)), "answer wins");
        assert!(!tally.apply(9, answer(Delivered, None, 12)));
        let parts = [
            Part {
                group_id: 10,
                name: "Compound".into(),
                targets: vec![7, 9],
            },
            Part {
                group_id: 0,
                name: "Station".into(),
                targets: vec![8],
            },
        ];
        let wire = tally.to_wire(1, &[7, 8, 9], &parts, Vec::new());
        assert_eq!(
            (wire.targets, wire.delivered, wire.responding, wire.unable),
            (3, 3, 2, 1)
        );
        let compound = &wire.groups[0];
        assert_eq!(
            (
                compound.targets,
                compound.delivered,
                compound.responding,
                compound.unable
            ),
            (2, 2, 1, 1)
        );
        let station = &wire.organisations[0];
        assert_eq!((station.name.as_str(), station.responding), ("Station", 1));
    }

    #[test]
    fn registry_stays_bounded() {
        let alerts = Alerts::new(Vec::new(), 0);
        for id in 1..=(MAX_ALERTS as u64 + 10) {
            alerts.insert(
                id,
                AlertState {
                    sender: 1,
                    sent: Instant::now(),
                    targets: vec![2],
                    parts: Vec::new(),
                    tally: Mutex::default(),
                },
            );
        }
        assert_eq!(alerts.len(), MAX_ALERTS);
        assert_eq!(
            alerts.check(1, 2),
            Err(pb::ErrorReason::UnknownAlert),
            "oldest gone"
        );
        assert_eq!(alerts.check(MAX_ALERTS as u64 + 10, 2), Ok(()));
        assert_eq!(
            alerts.check(MAX_ALERTS as u64 + 10, 3),
            Err(pb::ErrorReason::Forbidden)
        );
    }
}
