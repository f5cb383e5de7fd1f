//! A session's life: `HelloOk` and the groups joined at start, the loop that
//! reads requests (and follows membership changes, sends the coalesced
//! presence updates when due, and follows shutdown) until the stream ends or
//! the terminal is cut off, and leaving everything at the finish.

use std::time::Instant;

use ptt_proto::framing::Decoder;
use ptt_proto::pb::{self, server_message::Body};

use super::session::Session;
use crate::carrier::ControlRecv;
use crate::group::Command;
use crate::link;
use crate::session::read::{ReadError, read_message};
use crate::{dispatch, private_call, wire};

/// Malformed control messages tolerated before the terminal is cut off.
const MAX_MALFORMED: u32 = 16;

/// The server software name sent in `HelloOk`.
const SERVER_VERSION: &str = concat!("pttd/", env!("CARGO_PKG_VERSION"));

impl Session {
    /// Answers `Hello` and joins every group the terminal may listen to, as
    /// a radio scans its talkgroups from power-on.
    pub(in crate::session) async fn start(&mut self, hello_id: u64) {
        self.known = self.memberships();
        let groups = self.group_infos();
        let datagrams = !self.link.voice_on_streams();
        let max_datagram_size = self.link.max_datagram;
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
                resume_token: self
                    .shared
                    .auth
                    .resumption
                    .issue(self.link.terminal, self.shared.clock.unix_us_now() / 1000),
            }),
        );
        self.presence(pb::PresenceState::Online);
        for info in groups.into_iter().filter(|g| g.joined) {
            self.join(0, info.group_id).await;
        }
    }

    /// Reads and handles requests until the stream ends, the terminal is cut
    /// off, or the relay shuts down.
    pub(in crate::session) async fn serve(&mut self, mut recv: ControlRecv, mut decoder: Decoder) {
        loop {
            let presence_due = self.presence.deadline();
            let next = tokio::select! {
                next = read_message(&mut recv, &mut decoder) => next,
                () = sleep_until(presence_due) => {
                    self.flush_presence(false);
                    continue;
                }
                // Reading is cancel-safe: bytes read stay in `decoder`.
                () = self.link.membership_changed.notified() => {
                    Box::pin(self.regroup()).await;
                    continue;
                }
                () = self.shared.shutdown.cancelled() => {
                    self.link.farewell(
                        pb::GoingAway {
                            reason: pb::GoingAwayReason::Shutdown.into(),
                            reconnect_after_ms: 1000,
                            detail: "relay shutting down".into(),
                        },
                        link::CLOSE_GOING_AWAY,
                        "relay shutting down",
                    );
                    return;
                }
            };
            match next {
                Ok(Some(message)) => {
                    // Boxed: a request's handling is short, and its state
                    // (the largest of all requests') would otherwise size
                    // this loop, which lives as long as the session.
                    Box::pin(self.handle(message)).await;
                    if self.cut_off {
                        return;
                    }
                }
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
    pub(in crate::session) async fn finish(&mut self, still_current: bool) {
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
            // What waited is true of this session; a newer one tells its own.
            self.flush_presence(true);
            dispatch::lead_offline(&self.shared.dispatch, self.link.terminal);
            self.presence(pb::PresenceState::Offline);
        }
    }

    /// Tells the control room the coalesced presence updates that are due
    /// (or, with `all`, every one waiting).
    fn flush_presence(&mut self, all: bool) {
        let now = Instant::now();
        let due = if all {
            self.presence.take_all(now)
        } else {
            self.presence.take_due(now)
        };
        for (group_id, state) in due {
            self.presence_in(state, group_id);
        }
    }
}

/// Waits until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
