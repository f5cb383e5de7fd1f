//! The control requests of one authenticated terminal: checked against the
//! directory, then answered here or handed to the group's task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ptt_floor::{Priority, RequestKind};
use ptt_proto::framing::Decoder;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use quinn::RecvStream;

use crate::fanout::ALL_CALL_GROUP;
use crate::group::{Answer, Command, GroupShared};
use crate::link::{self, Link};
use crate::metrics::DenialReason;
use crate::session::context::SessionContext;
use crate::session::read::{ReadError, read_message};
use crate::{dispatch, policy, private_call, wire};
use ptt_directory::GeoPoint;
use ptt_directory::{GroupId, Role, Terminal, TerminalId};

mod limit;
mod regroup;

/// Position reports of a terminal forwarded to the control room: 50 a second on
/// average, 100 at once (a GPS replay at 40 Hz passes). Zone logic sees every
/// report; only the consoles are spared a flood.
const LOCATION_RATE: (f64, f64) = (50.0, 100.0);

/// Status messages a terminal may send: 5 a second, 20 at once.
const STATUS_RATE: (f64, f64) = (5.0, 20.0);

/// Longest status text, bytes.
const MAX_STATUS_TEXT: usize = 1024;

/// Malformed control messages tolerated before the terminal is cut off.
const MAX_MALFORMED: u32 = 16;

/// The server software name sent in `HelloOk`.
const SERVER_VERSION: &str = concat!("pttd/", env!("CARGO_PKG_VERSION"));

/// One terminal's control session.
pub(super) struct Session {
    shared: Arc<SessionContext>,
    link: Arc<Link>,
    /// Groups this terminal hears now.
    joined: HashSet<u32>,
    /// The terminal's groups and rights as last told to it, to see what an
    /// administrator changed (`regroup`).
    known: HashMap<u32, regroup::Held>,
    malformed: u32,
    locations: limit::Bucket,
    statuses: limit::Bucket,
}

impl Session {
    pub(super) fn new(shared: Arc<SessionContext>, link: Arc<Link>) -> Self {
        Self {
            shared,
            link,
            joined: HashSet::new(),
            known: HashMap::new(),
            malformed: 0,
            locations: limit::Bucket::new(LOCATION_RATE.0, LOCATION_RATE.1),
            statuses: limit::Bucket::new(STATUS_RATE.0, STATUS_RATE.1),
        }
    }

    fn terminal(&self) -> Option<&Terminal> {
        self.shared
            .directory
            .terminal(TerminalId(self.link.terminal))
    }

    /// Answers `Hello` and joins every group the terminal may listen to, as
    /// a radio scans its talkgroups from power-on.
    pub(super) async fn start(&mut self, hello_id: u64) {
        self.known = self.memberships();
        let groups = self.group_infos();
        let datagrams = self.link.conn.max_datagram_size().is_some();
        let max_datagram_size = self
            .link
            .conn
            .max_datagram_size()
            .map_or(0, |size| size.min(crate::quic::MAX_DATAGRAM));
        self.link.send(
            hello_id,
            Body::HelloOk(pb::HelloOk {
                session_id: self.link.session,
                server_version: SERVER_VERSION.to_owned(),
                protocol_version: 1,
                terminal_id: self.link.terminal,
                terminal_name: self.link.name.to_string(),
                groups: groups.clone(),
                max_datagram_size: u32::try_from(max_datagram_size).unwrap_or(0),
                datagrams,
                server_time_us: self.shared.clock.unix_us_now(),
                ping_interval_ms: 0,
                status_codes: self
                    .shared
                    .directory
                    .status_codes()
                    .iter()
                    .map(|s| pb::StatusCodeInfo {
                        code: u32::from(s.code),
                        label: s.label.clone(),
                    })
                    .collect(),
            }),
        );
        self.presence(pb::PresenceState::Online);
        for info in groups.into_iter().filter(|g| g.joined) {
            self.join(0, info.group_id).await;
        }
    }

    /// Reads and handles requests until the stream ends, the terminal is cut
    /// off, or the relay shuts down.
    pub(super) async fn serve(&mut self, mut recv: RecvStream, mut decoder: Decoder) {
        loop {
            let next = tokio::select! {
                next = read_message(&mut recv, &mut decoder) => next,
                // Reading is cancel-safe: bytes read stay in `decoder`.
                () = self.link.membership_changed.notified() => {
                    self.regroup().await;
                    continue;
                }
                () = self.shared.shutdown.cancelled() => {
                    self.link.send(0, Body::GoingAway(pb::GoingAway {
                        reason: pb::GoingAwayReason::Shutdown.into(),
                        reconnect_after_ms: 1000,
                        detail: "relay shutting down".into(),
                    }));
                    return;
                }
            };
            match next {
                Ok(Some(message)) => self.handle(message).await,
                Ok(None) => return,
                Err(ReadError::Malformed) => {
                    self.shared.metrics.malformed_control.inc();
                    self.malformed += 1;
                    self.link.send(
                        0,
                        wire::error(pb::ErrorReason::Malformed, "undecodable message"),
                    );
                    if self.malformed > MAX_MALFORMED {
                        self.link
                            .cut_off(link::CLOSE_PROTOCOL, "too many malformed control messages");
                        return;
                    }
                }
                Err(ReadError::Broken(reason)) => {
                    self.shared.metrics.malformed_control.inc();
                    self.link
                        .send(0, wire::error(reason, "control stream framing broken"));
                    self.link
                        .cut_off(link::CLOSE_PROTOCOL, "control stream framing broken");
                    return;
                }
            }
        }
    }

    /// Leaves every joined group (freeing a held floor) and, unless a newer
    /// session of the terminal took over (`still_current` false), tells the
    /// control room the terminal went offline.
    pub(super) async fn finish(&mut self, still_current: bool) {
        for group in std::mem::take(&mut self.joined) {
            if let Some(group) = self.shared.groups.get(group) {
                group
                    .command(Command::Leave {
                        terminal: self.link.terminal,
                        session: self.link.session,
                        disconnected: true,
                        request_id: 0,
                    })
                    .await;
            }
        }
        private_call::disconnected(&self.shared.private_calls, &self.link).await;
        if still_current {
            dispatch::lead_offline(&self.shared.dispatch, self.link.terminal);
            self.presence(pb::PresenceState::Offline);
        }
    }

    async fn handle(&mut self, message: pb::ClientMessage) {
        let id = message.request_id;
        let Some(body) = message.body else {
            return self.error(id, pb::ErrorReason::UnsupportedRequest, "empty request");
        };
        match body {
            Request::Hello(_) => self.error(
                id,
                pb::ErrorReason::AlreadyAuthenticated,
                "already logged in",
            ),
            Request::JoinGroup(join) => self.join(id, join.group_id).await,
            Request::LeaveGroup(leave) => self.leave(id, leave.group_id).await,
            Request::FloorRequest(request) => {
                let kind = wire::kind_from_wire(request.kind);
                let priority = wire::priority_from_wire(request.priority);
                self.request_floor(id, request.group_id, priority, kind, Answer::Floor)
                    .await;
            }
            Request::EmergencyDeclare(declare) => {
                self.request_floor(
                    id,
                    declare.group_id,
                    Priority::Emergency,
                    RequestKind::Emergency,
                    Answer::Emergency,
                )
                .await;
            }
            Request::FloorRelease(release) if release.group_id == ALL_CALL_GROUP => {
                self.end_all_call(id).await;
            }
            Request::FloorRelease(release) => {
                if let Some(group) = self.joined_group(id, release.group_id) {
                    group
                        .command(Command::Release {
                            from: self.link.clone(),
                            burst: release.burst_id,
                            request_id: id,
                        })
                        .await;
                }
            }
            Request::EmergencyClear(clear) => {
                if let Some(group) = self.joined_group(id, clear.group_id) {
                    group
                        .command(Command::ClearEmergency {
                            from: self.link.clone(),
                            request_id: id,
                        })
                        .await;
                }
            }
            Request::Ping(ping) => self.link.send(
                id,
                Body::Pong(pb::Pong {
                    client_send_time_us: ping.client_send_time_us,
                    server_time_us: self.shared.clock.unix_us_now(),
                }),
            ),
            Request::LocationReport(report) => self.location(id, report),
            Request::StatusMessage(status) => self.status(id, status),
            Request::QualityReport(report) => self.quality(id, &report),
            Request::Alert(alert) => self.send_alert(id, alert),
            Request::AlertAck(ack) => self.acknowledge_alert(id, ack),
            Request::PrivateCallSetup(setup) => {
                private_call::setup(&self.shared.private_calls, &self.link, id, setup).await;
            }
            Request::PrivateCallAccept(accept) => {
                private_call::accept(&self.shared.private_calls, &self.link, id, accept.call_id)
                    .await;
            }
            Request::PrivateCallReject(reject) => {
                private_call::reject(&self.shared.private_calls, &self.link, id, reject).await;
            }
            Request::PrivateCallEnd(end) => {
                private_call::end(&self.shared.private_calls, &self.link, id, end.call_id).await;
            }
        }
    }

    /// Every group of the terminal with its rights, marked joined where the
    /// terminal may listen.
    fn group_infos(&self) -> Vec<pb::GroupInfo> {
        let terminal = TerminalId(self.link.terminal);
        let dispatcher = self.terminal().is_some_and(|t| t.role == Role::Dispatcher);
        self.shared
            .roster
            .groups_of(terminal)
            .into_iter()
            .map(|(group, membership)| {
                let rights = self
                    .terminal()
                    .map(|t| policy::member_rights(t, &membership));
                pb::GroupInfo {
                    group_id: group.id.0,
                    name: group.name.clone(),
                    rights: Some(pb::GroupRights {
                        listen: membership.listen,
                        talk: membership.talk,
                        max_priority: wire::priority(policy::priority(membership.max_priority))
                            .into(),
                        preempt: rights.is_some_and(|r| r.preemptive),
                        // What the floor will allow, not just the role.
                        broadcast: rights.is_some_and(|r| r.may_talk && r.is_dispatcher()),
                        dispatch: dispatcher,
                    }),
                    joined: membership.listen,
                    dynamic: self
                        .shared
                        .roster
                        .dynamic_grant(terminal, group.id)
                        .is_some(),
                }
            })
            .collect()
    }

    async fn join(&mut self, id: u64, group_id: u32) {
        let (Some(group), Some(terminal)) = (self.shared.groups.get(group_id), self.terminal())
        else {
            return self.error(id, pb::ErrorReason::UnknownGroup, "no such group");
        };
        let Some(membership) = self
            .shared
            .roster
            .membership(terminal.id, GroupId(group_id))
        else {
            return self.error(id, pb::ErrorReason::NotMember, "not a member of this group");
        };
        if !membership.listen {
            return self.error(
                id,
                pb::ErrorReason::Forbidden,
                "may not listen to this group",
            );
        }
        let rights = policy::member_rights(terminal, &membership);
        let Some(info) = self
            .group_infos()
            .into_iter()
            .find(|info| info.group_id == group_id)
        else {
            return self.error(id, pb::ErrorReason::NotMember, "not a member of this group");
        };
        let group = group.clone();
        self.joined.insert(group_id);
        group
            .command(Command::Join {
                link: self.link.clone(),
                rights,
                info,
                request_id: id,
            })
            .await;
        self.presence_in(pb::PresenceState::Joined, group_id);
    }

    async fn leave(&mut self, id: u64, group_id: u32) {
        if !self.joined.remove(&group_id) {
            return self.error(id, pb::ErrorReason::NotMember, "not joined to this group");
        }
        if let Some(group) = self.shared.groups.get(group_id) {
            group
                .command(Command::Leave {
                    terminal: self.link.terminal,
                    session: self.link.session,
                    disconnected: false,
                    request_id: id,
                })
                .await;
        }
        self.presence_in(pb::PresenceState::Left, group_id);
    }

    async fn request_floor(
        &mut self,
        id: u64,
        group_id: u32,
        priority: Priority,
        kind: RequestKind,
        answer: Answer,
    ) {
        let deny = |reason: pb::FloorDenyReason| {
            self.shared.metrics.count_denial(wire_denial(reason));
            Body::FloorDenied(pb::FloorDenied {
                group_id,
                reason: reason.into(),
            })
        };
        if group_id == ALL_CALL_GROUP {
            return self.all_call(id, kind).await;
        }
        let Some(group) = self.shared.groups.get(group_id).cloned() else {
            return self.link.send(id, deny(pb::FloorDenyReason::UnknownGroup));
        };
        if !self.hears(group_id) {
            return self.link.send(id, deny(pb::FloorDenyReason::NotMember));
        }
        // An emergency belongs to a talkgroup the control room watches: a
        // private call's group outlives the call and nobody could clear it.
        let private = self.shared.private_calls.is_call_group(group_id);
        if kind == RequestKind::Emergency
            && (private || !self.terminal().is_some_and(|t| t.emergency))
        {
            return self
                .link
                .send(id, deny(pb::FloorDenyReason::PriorityNotAllowed));
        }
        group
            .command(Command::Request {
                answer,
                from: self.link.clone(),
                priority,
                kind,
                request_id: id,
            })
            .await;
    }

    /// The all-call groups this terminal has joined.
    fn all_call_groups(&self) -> Vec<Arc<GroupShared>> {
        self.shared
            .groups
            .all_call()
            .iter()
            .filter(|g| self.joined.contains(&g.id))
            .cloned()
            .collect()
    }

    /// A dispatcher's all-call: a broadcast request in every all-call group
    /// it has joined, at dispatcher priority (pre-empting routine talk).
    /// Answered at once with `FloorGranted{group 0}`; each group's own
    /// grant (or refusal, e.g. under an emergency) follows as an event.
    async fn all_call(&mut self, id: u64, kind: RequestKind) {
        let deny = |reason: pb::FloorDenyReason| {
            self.shared.metrics.count_denial(wire_denial(reason));
            Body::FloorDenied(pb::FloorDenied {
                group_id: ALL_CALL_GROUP,
                reason: reason.into(),
            })
        };
        let dispatcher = self
            .shared
            .directory
            .may_all_call(TerminalId(self.link.terminal));
        if kind != RequestKind::Broadcast || !dispatcher {
            return self
                .link
                .send(id, deny(pb::FloorDenyReason::PriorityNotAllowed));
        }
        let groups = self.all_call_groups();
        if groups.is_empty() {
            return self.link.send(id, deny(pb::FloorDenyReason::NotMember));
        }
        self.link.send(
            id,
            Body::FloorGranted(pb::FloorGranted {
                group_id: ALL_CALL_GROUP,
                burst_id: 0,
                talk_limit_ms: 0,
                priority: pb::Priority::Dispatcher.into(),
                kind: pb::FloorKind::Broadcast.into(),
            }),
        );
        for group in &groups {
            group
                .command(Command::Request {
                    answer: Answer::Floor,
                    from: self.link.clone(),
                    priority: Priority::Dispatcher,
                    kind: RequestKind::Broadcast,
                    request_id: 0,
                })
                .await;
        }
    }

    /// Ends an all-call: releases the floor (or the queued request) in every
    /// all-call group.
    async fn end_all_call(&mut self, id: u64) {
        for group in self.all_call_groups() {
            group
                .command(Command::Release {
                    from: self.link.clone(),
                    burst: 0,
                    request_id: 0,
                })
                .await;
        }
        self.ack(id);
    }

    /// Whether this terminal hears `group_id`: joined to it, or a party of the
    /// private call using it.
    fn hears(&self, group_id: u32) -> bool {
        self.joined.contains(&group_id)
            || self
                .shared
                .private_calls
                .is_party(group_id, self.link.terminal)
    }

    /// The joined group `group_id`, or `None` after answering the request
    /// with the reason it cannot be used.
    fn joined_group(&self, id: u64, group_id: u32) -> Option<Arc<GroupShared>> {
        match self.shared.groups.get(group_id) {
            None => {
                self.error(id, pb::ErrorReason::UnknownGroup, "no such group");
                None
            }
            Some(_) if !self.hears(group_id) => {
                self.error(id, pb::ErrorReason::NotMember, "not joined to this group");
                None
            }
            Some(group) => Some(group.clone()),
        }
    }

    /// A dispatcher's alert; answered with the first `AlertTally` once the
    /// alert is logged, without holding up this session's requests.
    fn send_alert(&self, id: u64, alert: pb::Alert) {
        crate::alert::send(&self.shared.alerts, &self.link, id, alert);
    }

    /// A recipient's answer to an alert; answered with `Ack` once logged.
    fn acknowledge_alert(&self, id: u64, ack: pb::AlertAck) {
        crate::alert::acknowledge(&self.shared.alerts, &self.link, id, ack);
    }

    /// Takes a position report: checked, remembered, forwarded to the control
    /// room (within [`LOCATION_RATE`]), and fed to zone logic (relay patrols
    /// this terminal leads).
    fn location(&mut self, id: u64, mut report: pb::LocationReport) {
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
    fn status(&mut self, id: u64, mut status: pb::StatusMessage) {
        use pb::status_message::Target;
        if !self.statuses.take(std::time::Instant::now()) {
            return self.error(id, pb::ErrorReason::RateLimited, "too many status messages");
        }
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

    fn presence(&self, state: pb::PresenceState) {
        self.presence_in(state, 0);
    }

    fn presence_in(&self, state: pb::PresenceState, group_id: u32) {
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

    fn ack(&self, id: u64) {
        self.link.send(id, Body::Ack(pb::Ack {}));
    }

    /// Takes a terminal's receive-quality report into the per-group client
    /// figures (metrics and dashboard). Entries for groups the terminal does
    /// not hear are ignored, so a terminal can only speak for its own
    /// groups and the figures stay keyed by configured groups.
    fn quality(&self, id: u64, report: &pb::QualityReport) {
        let now = std::time::Instant::now();
        let quality = &self.shared.metrics.client_quality;
        for entry in &report.groups {
            if self.joined.contains(&entry.group_id) {
                quality.record(entry, now);
            }
        }
        self.ack(id);
    }

    fn error(&self, id: u64, reason: pb::ErrorReason, detail: &str) {
        self.link.send(id, wire::error(reason, detail));
    }
}

/// The metrics label of a refusal the session itself sends.
fn wire_denial(reason: pb::FloorDenyReason) -> DenialReason {
    match reason {
        pb::FloorDenyReason::UnknownGroup => DenialReason::UnknownGroup,
        pb::FloorDenyReason::PriorityNotAllowed => DenialReason::PriorityNotAllowed,
        _ => DenialReason::NotMember,
    }
}
