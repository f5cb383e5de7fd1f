//! What a terminal reports: positions, status messages, receive quality, and
//! its presence as the control room is told it.

use ptt_proto::pb::{self, server_message::Body};

use super::session::Session;
use crate::{dispatch, link};
use ptt_calllog::{Record, StatusRecord, StatusTarget};
use ptt_directory::{GeoPoint, GroupId, Role, TerminalId};

/// Longest status text, bytes.
const MAX_STATUS_TEXT: usize = 1024;

impl Session {
    /// Takes a position report: checked, remembered, forwarded to the control
    /// room (within the session's `location_forwarded` rate), and fed to zone logic (relay patrols
    /// this terminal leads).
    pub(super) fn location(&mut self, id: u64, mut report: pb::LocationReport) {
        let Some(at) = GeoPoint::new(report.latitude_deg, report.longitude_deg) else {
            self.shared.metrics.malformed_control.inc();
            return self.error(
                id,
                pb::ErrorReason::Malformed,
                "latitude must be within -90..90 and longitude within -180..180",
            );
        };
        report.terminal_id = self.link.terminal;
        let forward = self.locations.take(std::time::Instant::now());
        dispatch::report_location(
            &self.shared.dispatch,
            self.link.terminal,
            at,
            report,
            forward,
        );
        self.ack(id);
    }

    /// A status message: a code from the directory's table (or 0 with text
    /// only), delivered to one terminal, a group this terminal hears, or the
    /// control room. An empty text is filled with the code's label so every
    /// receiver can show it.
    pub(super) fn status(&mut self, id: u64, mut status: pb::StatusMessage) {
        use pb::status_message::Target;
        if status.text.len() > MAX_STATUS_TEXT {
            self.shared.metrics.malformed_control.inc();
            return self.error(
                id,
                pb::ErrorReason::Malformed,
                &format!("status text longer than {MAX_STATUS_TEXT} bytes"),
            );
        }
        status.from_terminal_id = self.link.terminal;
        if status.code != 0 {
            let label = u16::try_from(status.code)
                .ok()
                .and_then(|code| self.shared.directory.status(code));
            let Some(label) = label else {
                self.shared.metrics.malformed_control.inc();
                return self.error(
                    id,
                    pb::ErrorReason::Malformed,
                    &format!("unknown status code {}", status.code),
                );
            };
            if status.text.is_empty() {
                status.text = label.label.clone();
            }
        } else if status.text.trim().is_empty() {
            return self.error(
                id,
                pb::ErrorReason::Malformed,
                "a status message needs a code or a text",
            );
        }
        let target = status.target;
        let (code, text) = (status.code, status.text.clone());
        let frame = link::frame(0, Body::StatusMessage(status));
        match target {
            Some(Target::TerminalId(terminal)) if !self.may_reach(terminal) => {
                return self.error(
                    id,
                    pb::ErrorReason::Forbidden,
                    "status messages only to terminals sharing a group, or dispatchers",
                );
            }
            Some(Target::TerminalId(terminal)) => match self.shared.online.get(terminal) {
                Some(peer) => peer.send_frame(frame),
                None => {
                    return self.error(
                        id,
                        pb::ErrorReason::UnknownTerminal,
                        "terminal offline or unknown",
                    );
                }
            },
            Some(Target::GroupId(group)) => match self.shared.groups.get(group) {
                Some(group) if self.hears(group.id) => group.broadcast(&frame),
                _ => return self.error(id, pb::ErrorReason::NotMember, "not joined to this group"),
            },
            Some(Target::Dispatchers(_)) | None => {
                self.shared.groups.notify_control_room(0, &frame)
            }
        }
        // Delivered: into the history too.
        let target = match target {
            Some(Target::TerminalId(terminal)) => StatusTarget::Terminal(TerminalId(terminal)),
            Some(Target::GroupId(group)) => StatusTarget::Group(GroupId(group)),
            Some(Target::Dispatchers(_)) | None => StatusTarget::Dispatchers,
        };
        self.shared.log.log(Record::Status(StatusRecord {
            from: TerminalId(self.link.terminal),
            code,
            text,
            target,
            at_ms: self.shared.unix_ms(),
        }));
        self.ack(id);
    }

    /// Whether this terminal may address `terminal` directly (a status message):
    /// the same rule as a private call.
    fn may_reach(&self, terminal: u32) -> bool {
        let directory = &self.shared.directory;
        let dispatcher = |id: u32| {
            directory
                .terminal(TerminalId(id))
                .is_some_and(|t| t.role == Role::Dispatcher)
        };
        directory.terminal(TerminalId(terminal)).is_none()
            || dispatcher(self.link.terminal)
            || dispatcher(terminal)
            || self
                .shared
                .roster
                .share_a_group(TerminalId(self.link.terminal), TerminalId(terminal))
    }

    /// Tells the control room the terminal's presence (online, offline).
    pub(super) fn presence(&self, state: pb::PresenceState) {
        self.presence_in(state, 0);
    }

    /// Tells the control room the terminal's presence in a group (joined,
    /// left; 0 for none).
    pub(super) fn presence_in(&self, state: pb::PresenceState, group_id: u32) {
        let frame = link::frame(
            0,
            Body::Presence(pb::Presence {
                terminal_id: self.link.terminal,
                name: self.link.name.to_string(),
                state: state.into(),
                group_id,
            }),
        );
        self.shared.groups.notify_control_room(0, &frame);
    }

    /// Takes a terminal's receive-quality report into the per-group client
    /// figures (metrics and dashboard). Entries for groups the terminal does
    /// not hear are ignored, so a terminal can only speak for its own
    /// groups and the figures stay keyed by configured groups; the rest is
    /// bounded by what the relay sent it.
    pub(super) fn quality(&self, id: u64, report: &pb::QualityReport) {
        // Nothing in it is trusted: at most one report per interval counts,
        // bounded by what the relay sent this terminal, weighing as one
        // listener at most (see `metrics::trust`). Ignored reports are
        // acknowledged too; they are counted, not refused.
        let metrics = &self.shared.metrics;
        let verdict = crate::metrics::trust::take_report(
            &metrics.client_quality,
            &metrics.quality_reports,
            &self.link.quality_ledger,
            self.link.voice_handed(),
            report,
            |group| self.joined.contains(&group),
            std::time::Instant::now(),
        );
        if let crate::metrics::trust::Verdict::Counted {
            budget,
            overclaimed: true,
        } = verdict
        {
            tracing::debug!(budget, "quality report claims more than the relay sent");
        }
        self.ack(id);
    }
}
