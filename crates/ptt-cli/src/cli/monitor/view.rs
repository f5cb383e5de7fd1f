//! What `ptt monitor` knows and shows: per group who holds the floor, the
//! queue and the emergency state, the latest positions and events, rendered
//! as text.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ptt_client::Event;
use ptt_proto::pb;

use crate::cli::lines;

/// Events kept in the view.
const RECENT: usize = 12;
/// Terminals whose position is shown (the most recently reported).
const POSITIONS: usize = 8;

/// Who holds a floor.
#[derive(Debug, Clone)]
struct Holder {
    id: u32,
    name: String,
    priority: pb::Priority,
    kind: pb::FloorKind,
    since: Instant,
}

/// What is known of one group.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupView {
    pub(super) name: String,
    pub(super) joined: bool,
    holder: Option<Holder>,
    /// This terminal's queued request: (position, length).
    queue: Option<(u32, u32)>,
    emergency: Option<pb::EmergencyState>,
}

/// The monitor's whole state; [`View::render`] turns it into text.
#[derive(Debug, Default)]
pub struct View {
    /// This terminal: its own regroupings change the group table.
    me: u32,
    /// The relay's status code table, to show codes by name.
    codes: Vec<pb::StatusCodeInfo>,
    groups: BTreeMap<u32, GroupView>,
    /// Private calls seen: call id to group, so their end drops the group.
    calls: HashMap<u64, u32>,
    /// Latest position per terminal, with when it came.
    positions: BTreeMap<u32, (Instant, pb::LocationReport)>,
    recent: VecDeque<String>,
    /// Event lines noted since the start (`recent` keeps the last ones).
    noted: u64,
    pub(super) rtt: Option<Duration>,
    pub(super) connected: bool,
    started: Option<Instant>,
}

impl View {
    /// The view of terminal `me`, which shows status codes by their label
    /// in `codes`, from `now` on.
    pub(super) fn new(
        me: u32,
        codes: Vec<pb::StatusCodeInfo>,
        connected: bool,
        now: Instant,
    ) -> Self {
        Self {
            me,
            codes,
            connected,
            started: Some(now),
            ..Self::default()
        }
    }

    pub(super) fn group(&mut self, id: u32) -> &mut GroupView {
        self.groups.entry(id).or_default()
    }

    fn note(&mut self, now: Instant, text: String) {
        let at = self
            .started
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(format!("{at:7.1} s  {text}"));
        self.noted += 1;
    }

    pub(super) fn on_join(&mut self, now: Instant, ok: pb::JoinOk) {
        let Some(info) = ok.group else { return };
        let view = self.group(info.group_id);
        view.name = info.name;
        view.joined = true;
        view.holder = ok.floor.map(|f| Holder {
            id: f.holder_terminal_id,
            name: f.holder_name,
            priority: pb::Priority::try_from(f.priority).unwrap_or_default(),
            kind: pb::FloorKind::try_from(f.kind).unwrap_or_default(),
            since: now,
        });
        view.emergency = ok.emergency.filter(|e| e.active);
    }

    /// Applies one event.
    pub fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::FloorTaken {
                group,
                holder,
                holder_name,
                priority,
                kind,
                ..
            } => {
                self.note(
                    now,
                    format!("group {group}: {holder} {holder_name} talks ({priority:?}, {kind:?})"),
                );
                self.group(group).holder = Some(Holder {
                    id: holder,
                    name: holder_name,
                    priority,
                    kind,
                    since: now,
                });
            }
            Event::FloorIdle { group, reason, .. } => {
                let view = self.group(group);
                let was = view.holder.take();
                let text = match was {
                    Some(h) => format!(
                        "group {group}: {} {} done after {:.1} s ({reason:?})",
                        h.id,
                        h.name,
                        now.duration_since(h.since).as_secs_f64()
                    ),
                    None => format!("group {group}: idle ({reason:?})"),
                };
                self.note(now, text);
            }
            Event::FloorQueued {
                group,
                position,
                queue_length,
            } => self.group(group).queue = Some((position, queue_length)),
            Event::FloorGranted { group, .. } | Event::FloorDenied { group, .. } => {
                self.group(group).queue = None;
            }
            Event::Emergency(state) => {
                let text = if state.active {
                    format!(
                        "group {}: EMERGENCY declared by {} {} {}",
                        state.group_id, state.declared_by, state.declared_by_name, state.text
                    )
                } else {
                    format!(
                        "group {}: emergency cleared by {}",
                        state.group_id, state.cleared_by
                    )
                };
                self.note(now, text);
                let group = state.group_id;
                self.group(group).emergency = state.active.then_some(state);
            }
            Event::Presence(p) => {
                let state = pb::PresenceState::try_from(p.state).unwrap_or_default();
                let text = match p.group_id {
                    0 => format!("{} {} {state:?}", p.terminal_id, p.name),
                    g => format!("{} {} {state:?} group {g}", p.terminal_id, p.name),
                };
                self.note(now, text);
            }
            Event::Alert(a) => self.note(now, lines::alert(&a)),
            Event::Status(s) => {
                let line = lines::status(&s, &self.codes);
                self.note(now, line);
            }
            Event::Regrouped(r) => {
                self.note(now, lines::regrouped(&r));
                if r.terminal_id == self.me {
                    self.own_regrouping(&r);
                }
            }
            Event::Joined(ok) => self.on_join(now, ok),
            Event::Location(l) => {
                self.positions.insert(l.terminal_id, (now, l));
                if self.positions.len() > POSITIONS * 4 {
                    // Bounded: forget the terminal heard from longest ago.
                    let oldest = self.positions.iter().min_by_key(|(_, (at, _))| *at);
                    if let Some(&id) = oldest.map(|(id, _)| id) {
                        self.positions.remove(&id);
                    }
                }
            }
            event @ (Event::CallIncoming(_)
            | Event::CallAccepted { .. }
            | Event::CallRejected { .. }
            | Event::CallEnded { .. }) => self.on_call(now, &event),
            Event::Disconnected { reason, .. } => {
                self.connected = false;
                self.note(now, format!("disconnected: {reason}"));
            }
            Event::Reconnected { groups, .. } => {
                self.connected = true;
                self.note(now, format!("reconnected, groups {groups:?}"));
            }
            Event::GoingAway { reason, detail, .. } => {
                self.note(now, format!("relay going away: {reason:?} {detail}"));
            }
            Event::ServerError { reason, detail } => {
                self.note(now, format!("relay error: {reason:?} {detail}"));
            }
            Event::Lagged { missed } => self.note(now, format!("(missed {missed} events)")),
            _ => {}
        }
    }

    /// A regrouping of this terminal: the group appears (joined if it may
    /// listen) or goes.
    fn own_regrouping(&mut self, r: &pb::Regrouped) {
        match pb::RegroupChange::try_from(r.change).unwrap_or_default() {
            pb::RegroupChange::Added => {
                let info = r.group.clone().unwrap_or_default();
                let listen = info.rights.as_ref().is_none_or(|rights| rights.listen);
                let view = self.group(r.group_id);
                if !info.name.is_empty() {
                    view.name = info.name;
                }
                view.joined |= listen;
            }
            pb::RegroupChange::Removed => {
                self.groups.remove(&r.group_id);
            }
            pb::RegroupChange::Unspecified => {}
        }
    }

    /// A private-call event: one line, and the call's group follows the
    /// call (its join arrives as [`Event::Joined`]).
    fn on_call(&mut self, now: Instant, event: &Event) {
        if let Some(line) = lines::call(event) {
            self.note(now, line);
        }
        match event {
            Event::CallIncoming(setup) => {
                self.calls.insert(setup.call_id, setup.group_id);
            }
            Event::CallAccepted { call_id, group } => {
                self.calls.insert(*call_id, *group);
                let view = self.group(*group);
                if view.name.is_empty() {
                    view.name = format!("private call {call_id}");
                }
            }
            Event::CallRejected { call_id, .. } | Event::CallEnded { call_id, .. } => {
                if let Some(group) = self.calls.remove(call_id) {
                    self.groups.remove(&group);
                }
            }
            _ => {}
        }
    }

    /// The view as text (without the clear-screen sequence).
    #[must_use]
    /// The event lines noted after the first `seen` (the last few, if more
    /// came than the view keeps), and how many have been noted in all: what
    /// to print when the output is a file or a pipe, line by line.
    pub fn lines_after(&self, seen: u64) -> (Vec<&str>, u64) {
        let new = usize::try_from(self.noted.saturating_sub(seen)).unwrap_or(usize::MAX);
        let skip = self.recent.len().saturating_sub(new);
        let lines = self.recent.iter().skip(skip).map(String::as_str).collect();
        (lines, self.noted)
    }

    /// The whole view as text, for a terminal redrawn in place.
    pub fn render(&self, now: Instant) -> String {
        let mut out = String::new();
        let rtt = self.rtt.map_or_else(
            || "-".to_owned(),
            |r| format!("{:.1} ms", r.as_secs_f64() * 1e3),
        );
        let link = if self.connected {
            "connected"
        } else {
            "DISCONNECTED"
        };
        let _ = writeln!(out, "ptt monitor — {link}, ping RTT {rtt}\n");
        let _ = writeln!(
            out,
            "{:>6}  {:<24} {:<34} {:<8} emergency",
            "group", "name", "talking", "queue"
        );
        for (id, g) in &self.groups {
            if !g.joined {
                continue;
            }
            let talking = g.holder.as_ref().map_or_else(
                || "-".to_owned(),
                |h| {
                    format!(
                        "{} {} {:.1} s{}",
                        h.id,
                        h.name,
                        now.duration_since(h.since).as_secs_f64(),
                        match (h.kind, h.priority) {
                            (pb::FloorKind::Emergency, _) => " EMERG".to_owned(),
                            (pb::FloorKind::Broadcast, _) => " ALL-CALL".to_owned(),
                            (_, pb::Priority::Normal | pb::Priority::Unspecified) => String::new(),
                            (_, p) => format!(" {p:?}"),
                        }
                    )
                },
            );
            let queue = g
                .queue
                .map_or_else(|| "-".to_owned(), |(p, n)| format!("{p}/{n}"));
            let emergency = g.emergency.as_ref().map_or_else(
                || "-".to_owned(),
                |e| format!("ACTIVE by {} {}", e.declared_by, e.declared_by_name),
            );
            let _ = writeln!(
                out,
                "{id:>6}  {:<24} {:<34} {queue:<8} {emergency}",
                fit(&g.name, 24),
                fit(&talking, 34)
            );
        }
        if !self.positions.is_empty() {
            let _ = writeln!(out, "\npositions:");
            let mut latest: Vec<_> = self.positions.iter().collect();
            latest.sort_by_key(|(_, (at, _))| std::cmp::Reverse(*at));
            for (id, (at, report)) in latest.into_iter().take(POSITIONS) {
                let _ = writeln!(
                    out,
                    "  {id:>6}  {}  ({:.1} s ago)",
                    lines::position(report),
                    now.duration_since(*at).as_secs_f64()
                );
            }
        }
        let _ = writeln!(out, "\nrecent events:");
        for line in &self.recent {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

/// `text` in at most `width` characters: cut with "…" if longer, so a long
/// group name does not push the columns after it out of line.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use crate::cli::monitor::view::*;

    fn info(group: u32, name: &str) -> pb::GroupInfo {
        pb::GroupInfo {
            group_id: group,
            name: name.into(),
            rights: Some(pb::GroupRights {
                listen: true,
                ..Default::default()
            }),
            joined: true,
            dynamic: true,
        }
    }

    /// Dynamic groups come and go with their regrouping or call, and
    /// positions get their own section.
    #[test]
    fn dynamic_groups_follow_regroupings_and_calls() {
        let now = Instant::now();
        let mut view = View {
            me: 301,
            started: Some(now),
            ..View::default()
        };
        view.on_event(
            now,
            Event::Regrouped(pb::Regrouped {
                group_id: 31,
                terminal_id: 301,
                change: pb::RegroupChange::Added.into(),
                reason: pb::RegroupReason::ZoneEntered.into(),
                group: Some(info(31, "Patrol 3")),
                zone: "Compound 17".into(),
            }),
        );
        view.on_event(
            now,
            Event::CallIncoming(pb::PrivateCallSetup {
                call_id: 9,
                caller_terminal_id: 101,
                group_id: 90_001,
                ..Default::default()
            }),
        );
        view.on_event(
            now,
            Event::Joined(pb::JoinOk {
                group: Some(info(90_001, "Private 101-301")),
                ..Default::default()
            }),
        );
        view.on_event(
            now,
            Event::Location(pb::LocationReport {
                terminal_id: 205,
                latitude_deg: 31.2,
                longitude_deg: 121.4,
                ..Default::default()
            }),
        );
        let text = view.render(now);
        assert!(text.contains("    31  Patrol 3"), "{text}");
        assert!(text.contains(" 90001  Private 101-301"), "{text}");
        assert!(text.contains("+ terminal 301 joined group 31 Patrol 3 (zone Compound 17"));
        assert!(
            text.contains("positions:\n     205  31.200000, 121.400000"),
            "{text}"
        );

        view.on_event(
            now,
            Event::CallEnded {
                call_id: 9,
                reason: pb::PrivateCallEndReason::Hangup,
            },
        );
        view.on_event(
            now,
            Event::Regrouped(pb::Regrouped {
                group_id: 31,
                terminal_id: 301,
                change: pb::RegroupChange::Removed.into(),
                reason: pb::RegroupReason::ZoneLeft.into(),
                group: None,
                zone: "Compound 17".into(),
            }),
        );
        let text = view.render(now);
        assert!(!text.contains("Patrol 3  "), "{text}");
        assert!(!text.contains(" 90001  "), "{text}");
        assert!(text.contains("call 9: ended (Hangup)"), "{text}");
    }

    /// Into a file, each event is printed once: after the first `seen`
    /// lines only the new ones, and only as many as the view kept.
    #[test]
    fn lines_after_gives_each_event_line_once() {
        let now = Instant::now();
        let mut view = View {
            started: Some(now),
            ..View::default()
        };
        view.note(now, "one".into());
        view.note(now, "two".into());
        let (lines, seen) = view.lines_after(0);
        assert_eq!((lines.len(), seen), (2, 2));
        view.note(now, "three".into());
        let (lines, seen) = view.lines_after(seen);
        assert!(lines.len() == 1 && lines[0].ends_with("three"), "{lines:?}");
        assert_eq!(view.lines_after(seen).0.len(), 0);
        for n in 0..2 * RECENT {
            view.note(now, format!("burst {n}"));
        }
        assert_eq!(view.lines_after(seen).0.len(), RECENT, "what is kept");
    }

    #[test]
    fn long_names_are_cut_to_their_column() {
        assert_eq!(fit("District", 24), "District");
        let cut = fit("Textile Quarter Community Police Squad", 24);
        assert_eq!(cut.chars().count(), 24);
        assert!(cut.ends_with('…'), "{cut}");
    }
}
