//! What the relay tells a terminal without being asked, and what happens to
//! the connection: one stream of [`Event`]s per subscriber.
//!
//! The stream is a broadcast: the `ptt` command's display, a recorder and a
//! player can each hold their own [`Events`]. A subscriber that falls behind
//! by more than [`crate::ClientConfig::event_capacity`] events misses the
//! oldest and is told so ([`Event::Lagged`]); it never slows the connection
//! down, because live voice must not queue behind a slow reader.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_proto::pb::{self, server_message::Body};
use tokio::sync::broadcast;

use crate::error::{ClientError, Ended};

/// One voice frame heard in a group: one Opus packet with the header fields
/// a jitter buffer and a quality meter need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceFrame {
    /// The group the frame was sent to.
    pub group: u32,
    /// Who talks, as authenticated by the relay (never the sender's claim).
    pub talker: u32,
    /// The burst, as granted by the relay; a new burst starts a new stream.
    pub burst: u32,
    /// Sequence within the burst (wrapping; compare with
    /// [`ptt_proto::voice::seq_cmp`]).
    pub sequence: u16,
    /// The sender's clock at capture of the frame (Unix µs recommended).
    pub sender_timestamp_us: u64,
    /// When this client received the datagram.
    pub received_at: Instant,
    /// The talker marked this as the burst's last frame.
    pub last: bool,
    /// The Opus packet (a view of the received datagram, not a copy).
    pub payload: Bytes,
}

/// Something the relay said unprompted, or something that happened to the
/// connection.
///
/// Reason and priority fields use the protocol's enums; a value this client
/// does not know reads as `Unspecified`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Someone (maybe this terminal) holds the floor of a group.
    FloorTaken {
        /// The group.
        group: u32,
        /// The terminal talking.
        holder: u32,
        /// Its display name.
        holder_name: String,
        /// Priority the floor is held at.
        priority: pb::Priority,
        /// The burst id its voice carries.
        burst: u32,
        /// Normal, broadcast or emergency.
        kind: pb::FloorKind,
    },
    /// Nobody holds the floor of a group any more.
    FloorIdle {
        /// The group.
        group: u32,
        /// The burst that ended; 0 if unknown.
        burst: u32,
        /// Why it ended.
        reason: pb::FloorIdleReason,
    },
    /// This terminal's queued floor request moved in the queue.
    FloorQueued {
        /// The group.
        group: u32,
        /// 1-based position (1: next to talk).
        position: u32,
        /// Requests queued in all.
        queue_length: u32,
    },
    /// A queued floor request of this terminal was granted: talk now.
    FloorGranted {
        /// The group.
        group: u32,
        /// Burst id to send voice with.
        burst: u32,
        /// When the relay revokes the burst; `None`: no limit.
        talk_limit: Option<Duration>,
    },
    /// The floor was taken away from this terminal: stop sending.
    FloorRevoked {
        /// The group.
        group: u32,
        /// The burst revoked.
        burst: u32,
        /// Why.
        reason: pb::FloorRevokeReason,
        /// Time left before the relay drops further voice.
        grace: Duration,
    },
    /// A queued floor request of this terminal was dropped (e.g. expired).
    FloorDenied {
        /// The group.
        group: u32,
        /// Why.
        reason: pb::FloorDenyReason,
    },
    /// An alert (roll call) for this terminal. If it requires an answer,
    /// the client has already sent DELIVERED (unless
    /// [`crate::ClientConfig::auto_ack_alerts`] is off); the user answers
    /// "responding" or "unable" with [`crate::Client::ack_alert`].
    Alert(pb::Alert),
    /// Acknowledgement counts of an alert this terminal sent or watches.
    AlertTally(pb::AlertTally),
    /// A group's emergency was declared or cleared.
    Emergency(pb::EmergencyState),
    /// A terminal came online, went offline, joined or left a group.
    Presence(pb::Presence),
    /// This terminal's (or, for dispatchers, someone's) membership changed.
    Regrouped(pb::Regrouped),
    /// A terminal's position (dispatchers).
    Location(pb::LocationReport),
    /// A status message for this terminal, its group or the control room.
    Status(pb::StatusMessage),
    /// Someone calls this terminal privately: answer with
    /// [`crate::Client::accept_call`] or [`crate::Client::reject_call`].
    /// The setup carries the call id, the caller and the call's group.
    CallIncoming(pb::PrivateCallSetup),
    /// The callee accepted this terminal's private call: talk in `group`
    /// (the relay has joined both parties to it).
    CallAccepted {
        /// The call.
        call_id: u64,
        /// The call's temporary group.
        group: u32,
    },
    /// This terminal's private call was rejected, by the callee or by the
    /// relay on its behalf (offline, busy, no answer).
    CallRejected {
        /// The call.
        call_id: u64,
        /// Why.
        reason: pb::PrivateCallRejectReason,
    },
    /// A private call ended: the other party hung up or was lost, or the
    /// relay ended it. Its group is forgotten.
    CallEnded {
        /// The call.
        call_id: u64,
        /// Why.
        reason: pb::PrivateCallEndReason,
    },
    /// The relay joined this terminal to a group by itself: at log-in, into
    /// a private call's group, or after a regrouping. Carries who talks now.
    Joined(pb::JoinOk),
    /// The relay reported an error not tied to a request of this client.
    ServerError {
        /// What went wrong.
        reason: pb::ErrorReason,
        /// The relay's detail, for logs.
        detail: String,
    },
    /// The relay announced it is closing the connection.
    GoingAway {
        /// Why.
        reason: pb::GoingAwayReason,
        /// The relay's hint for when to reconnect.
        reconnect_after: Duration,
        /// The relay's detail, for logs.
        detail: String,
    },
    /// The connection was lost or closed.
    Disconnected {
        /// What happened, for the user.
        reason: String,
        /// The client is trying to reconnect; when false it has given up
        /// (credentials revoked, session replaced, reconnect disabled).
        will_reconnect: bool,
    },
    /// One reconnect attempt failed; another follows after `retry_in`.
    ReconnectFailed {
        /// Attempts so far since the connection was lost.
        attempt: u32,
        /// Why this one failed.
        error: ClientError,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// The connection is back: logged in again, groups rejoined.
    Reconnected {
        /// The relay's id of the new session.
        session_id: u64,
        /// The groups joined now.
        groups: Vec<u32>,
    },
    /// A voice frame from another terminal.
    Voice(VoiceFrame),
    /// This subscriber fell behind and missed this many events.
    Lagged {
        /// Events missed.
        missed: u64,
    },
}

/// Reads a protocol enum value, unknown values as `Unspecified` (ptt.proto
/// conventions).
pub(crate) fn enum_or_default<E: TryFrom<i32> + Default>(value: i32) -> E {
    E::try_from(value).unwrap_or_default()
}

/// A non-zero millisecond count as a duration; 0 means "none".
pub(crate) fn limit(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

impl Event {
    /// The event a server message with `request_id` 0 stands for; `None`
    /// for messages that are only ever answers (`Ack`, `Pong`, ...).
    pub(crate) fn from_body(body: Body) -> Option<Self> {
        Some(match body {
            Body::FloorTaken(t) => Self::FloorTaken {
                group: t.group_id,
                holder: t.holder_terminal_id,
                holder_name: t.holder_name,
                priority: enum_or_default(t.priority),
                burst: t.burst_id,
                kind: enum_or_default(t.kind),
            },
            Body::FloorIdle(i) => Self::FloorIdle {
                group: i.group_id,
                burst: i.burst_id,
                reason: enum_or_default(i.reason),
            },
            Body::FloorQueued(q) => Self::FloorQueued {
                group: q.group_id,
                position: q.position,
                queue_length: q.queue_length,
            },
            Body::QueuePositionUpdate(q) => Self::FloorQueued {
                group: q.group_id,
                position: q.position,
                queue_length: q.queue_length,
            },
            Body::FloorGranted(g) => Self::FloorGranted {
                group: g.group_id,
                burst: g.burst_id,
                talk_limit: limit(g.talk_limit_ms),
            },
            Body::FloorRevoked(r) => Self::FloorRevoked {
                group: r.group_id,
                burst: r.burst_id,
                reason: enum_or_default(r.reason),
                grace: Duration::from_millis(u64::from(r.grace_ms)),
            },
            Body::FloorDenied(d) => Self::FloorDenied {
                group: d.group_id,
                reason: enum_or_default(d.reason),
            },
            Body::Alert(a) => Self::Alert(a),
            Body::AlertTally(t) => Self::AlertTally(t),
            Body::EmergencyState(e) => Self::Emergency(e),
            Body::Presence(p) => Self::Presence(p),
            Body::Regrouped(r) => Self::Regrouped(r),
            Body::LocationReport(l) => Self::Location(l),
            Body::StatusMessage(s) => Self::Status(s),
            Body::PrivateCallSetup(setup) => Self::CallIncoming(setup),
            Body::PrivateCallAccept(a) => Self::CallAccepted {
                call_id: a.call_id,
                group: a.group_id,
            },
            Body::PrivateCallReject(r) => Self::CallRejected {
                call_id: r.call_id,
                reason: enum_or_default(r.reason),
            },
            Body::PrivateCallEnd(e) => Self::CallEnded {
                call_id: e.call_id,
                reason: enum_or_default(e.reason),
            },
            Body::JoinOk(ok) => Self::Joined(ok),
            Body::Error(e) => Self::ServerError {
                reason: enum_or_default(e.reason),
                detail: e.detail,
            },
            Body::GoingAway(g) => Self::GoingAway {
                reason: enum_or_default(g.reason),
                reconnect_after: Duration::from_millis(u64::from(g.reconnect_after_ms)),
                detail: g.detail,
            },
            Body::HelloOk(_) | Body::LeaveOk(_) | Body::Pong(_) | Body::Ack(_) => {
                return None;
            }
        })
    }
}

/// One subscriber's view of the event stream.
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<Event>,
    ended: Ended,
    /// The final [`Event::Disconnected`] was read: the stream is over.
    over: bool,
}

impl Events {
    pub(crate) fn new(rx: broadcast::Receiver<Event>, ended: Ended) -> Self {
        Self {
            rx,
            ended,
            over: false,
        }
    }

    /// The next event; `None` once the client is gone and every event has
    /// been read, or once the client has ended for good (the relay disabled
    /// or replaced it, or it will not reconnect) and its final
    /// [`Event::Disconnected`] was read: see [`Events::ended`] for why.
    /// Missed events are reported as [`Event::Lagged`].
    pub async fn recv(&mut self) -> Option<Event> {
        if self.over {
            return None;
        }
        match self.rx.recv().await {
            Ok(event) => {
                self.over = matches!(
                    event,
                    Event::Disconnected {
                        will_reconnect: false,
                        ..
                    }
                );
                Some(event)
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Why the client ended for good, once it has (e.g.
    /// [`ClientError::Disabled`], [`ClientError::Replaced`]); `None` while it
    /// is connected or reconnecting.
    #[must_use]
    pub fn ended(&self) -> Option<ClientError> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The next event if one is waiting, without blocking (for a UI loop).
    pub fn try_recv(&mut self) -> Option<Event> {
        match self.rx.try_recv() {
            Ok(event) => Some(event),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_stream_ends_after_the_disconnect_that_gives_up() {
        let (tx, rx) = broadcast::channel(8);
        let ended = Ended::default();
        let mut events = Events::new(rx, ended.clone());
        let disconnected = |will_reconnect| Event::Disconnected {
            reason: "why".into(),
            will_reconnect,
        };
        tx.send(disconnected(true)).unwrap();
        tx.send(Event::Lagged { missed: 1 }).unwrap();
        *ended.lock().unwrap() = Some(ClientError::Disabled);
        tx.send(disconnected(false)).unwrap();
        tx.send(Event::Lagged { missed: 2 }).unwrap();
        assert!(matches!(
            events.recv().await,
            Some(Event::Disconnected {
                will_reconnect: true,
                ..
            })
        ));
        assert!(matches!(
            events.recv().await,
            Some(Event::Lagged { missed: 1 })
        ));
        assert!(matches!(
            events.recv().await,
            Some(Event::Disconnected {
                will_reconnect: false,
                ..
            })
        ));
        assert!(events.recv().await.is_none(), "nothing after the end");
        assert_eq!(events.ended(), Some(ClientError::Disabled));
    }
}
