//! State shared by the client handles, the connection's tasks, the
//! reconnect supervisor and the talk tasks: the current connection, the
//! event sender, group membership and the floor watchers of active talks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::ClientConfig;
use crate::error::{ClientError, Ended};
use crate::events::{Event, enum_or_default, limit};
use crate::link::Link;
pub(crate) use crate::membership::Groups;
use crate::quality::QualityMeter;
use crate::resume::ResumeCredential;

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) voice_frames: AtomicU64,
    pub(crate) bad_datagrams: AtomicU64,
    pub(crate) voice_sent: AtomicU64,
    pub(crate) voice_dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// What a [`Talk`] waiting on a group's floor needs to hear about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FloorSignal {
    Granted {
        burst: u32,
        talk_limit: Option<Duration>,
    },
    Queued {
        position: u32,
        queue_length: u32,
    },
    Denied(pb::FloorDenyReason),
    Revoked(pb::FloorRevokeReason),
    /// The terminal is no longer in the group (regrouped out, the private
    /// call ended): a talk there is over, granted or not.
    Removed,
    Disconnected,
}

/// State shared by the client handles, the connection's tasks, the
/// reconnect supervisor and the talk tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    pub(crate) quic: quinn::ClientConfig,
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) quality: Arc<QualityMeter>,
    pub(crate) stats: Stats,
    pub(crate) events: broadcast::Sender<Event>,
    /// The subscriber created before the first connection, so the first
    /// call to [`Client::events`] sees everything since log-in.
    pub(crate) first_events: Mutex<Option<broadcast::Receiver<Event>>>,
    pub(crate) link: Mutex<Option<Arc<Link>>>,
    pub(crate) groups: Mutex<Groups>,
    /// The directory's status code table from the latest `HelloOk`; kept
    /// while disconnected so received codes still show by name.
    pub(crate) status_codes: Mutex<Vec<pb::StatusCodeInfo>>,
    pub(crate) watchers: Mutex<HashMap<u32, (u64, mpsc::UnboundedSender<FloorSignal>)>>,
    pub(crate) next_watcher: AtomicU64,
    /// Relay clock minus ours, µs, from the latest `Pong`.
    pub(crate) clock_offset_us: AtomicI64,
    /// The latest login's resumption credential, presented instead of the
    /// secret when logging in again.
    pub(crate) resume: ResumeCredential,
    /// Which of the configured relays the client uses now (an index into
    /// `server` then `other_servers`, modulo their number).
    pub(crate) server_turn: AtomicUsize,
    /// Set once the client is shut down.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Why the client ended for good, when the relay ended it (disabled,
    /// replaced, credentials refused): what later requests and
    /// [`Events::ended`](crate::Events::ended) report.
    pub(crate) ended: Ended,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The relay the client uses now.
    pub(crate) fn server(&self) -> SocketAddr {
        let turn = self.server_turn.load(Ordering::Relaxed);
        match turn % (1 + self.config.other_servers.len()) {
            0 => self.config.server,
            other => self.config.other_servers[other - 1],
        }
    }

    /// Moves on to the next configured relay; false if there is only one.
    pub(crate) fn next_server(&self) -> bool {
        if self.config.other_servers.is_empty() {
            return false;
        }
        self.server_turn.fetch_add(1, Ordering::Relaxed);
        tracing::info!(server = %self.server(), "trying the next relay of the cluster");
        true
    }

    pub(crate) fn emit(&self, event: Event) {
        // No subscriber is fine: nobody is listening.
        let _ = self.events.send(event);
    }

    /// The current connection, if up.
    pub(crate) fn link(&self) -> Result<Arc<Link>, ClientError> {
        if *self.shutdown.borrow() {
            return Err(lock(&self.ended)
                .clone()
                .unwrap_or_else(|| ClientError::Closed("the client was shut down".into())));
        }
        lock(&self.link).clone().ok_or(ClientError::Disconnected)
    }

    /// Ends the client for good because of `error`: no more reconnecting,
    /// every later request fails with it, and the final
    /// [`Event::Disconnected`] says so (after which event streams end).
    pub(crate) fn end_for_good(&self, error: ClientError) {
        let reason = error.to_string();
        self.end_for_good_with(error, reason);
    }

    /// [`Shared::end_for_good`] with the event's `reason` worded apart.
    pub(crate) fn end_for_good_with(&self, error: ClientError, reason: String) {
        lock(&self.ended).get_or_insert(error);
        // Closed before the event, so a caller reacting to it sees it.
        self.shutdown.send_replace(true);
        self.emit(Event::Disconnected {
            reason,
            will_reconnect: false,
        });
    }

    pub(crate) fn set_link(&self, link: Option<Arc<Link>>) {
        *lock(&self.link) = link;
    }

    pub(crate) fn clock_offset_us(&self) -> i64 {
        self.clock_offset_us.load(Ordering::Relaxed)
    }

    /// Records the groups and status codes of a fresh login.
    pub(crate) fn logged_in(&self, hello: &pb::HelloOk) {
        lock(&self.groups).logged_in(hello);
        *lock(&self.status_codes) = hello.status_codes.clone();
    }

    /// The joins and leaves that make a fresh login match what the user
    /// asked for: `(group, join?)`.
    pub(crate) fn reconcile(&self) -> Vec<(u32, bool)> {
        lock(&self.groups).reconcile()
    }

    pub(crate) fn joined(&self) -> Vec<u32> {
        lock(&self.groups).joined.iter().copied().collect()
    }

    pub(crate) fn set_joined(&self, group: u32, joined: bool, by_user: bool) {
        lock(&self.groups).set_joined(group, joined, by_user);
    }

    /// Forgets a private call and its group; a talk in the group ends.
    pub(crate) fn call_over(&self, call_id: u64) {
        let group = lock(&self.groups).call_over(call_id);
        if let Some(group) = group {
            self.signal(group, FloorSignal::Removed);
        }
    }

    /// Keeps local state in step with the answer to one of our requests,
    /// in stream order (before the requester even runs, so an event right
    /// behind the answer finds the state it refers to).
    pub(crate) fn note_answer(&self, body: &Body) {
        if let Body::PrivateCallSetup(setup) = body {
            lock(&self.groups).call_set_up(setup.call_id, setup.group_id);
        }
    }

    pub(crate) fn set_held(&self, group: u32, burst: Option<u32>) {
        let mut groups = lock(&self.groups);
        match burst {
            Some(burst) => groups.held.insert(group, burst),
            None => groups.held.remove(&group),
        };
    }

    /// Keeps local state in step with an unsolicited message and tells the
    /// talk waiting on that group's floor, if any.
    pub(crate) fn note_unsolicited(&self, body: &Body) {
        let signal = match body {
            Body::FloorGranted(g) => {
                self.set_held(g.group_id, Some(g.burst_id));
                Some((
                    g.group_id,
                    FloorSignal::Granted {
                        burst: g.burst_id,
                        talk_limit: limit(g.talk_limit_ms),
                    },
                ))
            }
            Body::FloorQueued(q) => Some((
                q.group_id,
                FloorSignal::Queued {
                    position: q.position,
                    queue_length: q.queue_length,
                },
            )),
            Body::QueuePositionUpdate(q) => Some((
                q.group_id,
                FloorSignal::Queued {
                    position: q.position,
                    queue_length: q.queue_length,
                },
            )),
            Body::FloorDenied(d) => {
                Some((d.group_id, FloorSignal::Denied(enum_or_default(d.reason))))
            }
            Body::FloorRevoked(r) => {
                self.set_held(r.group_id, None);
                Some((r.group_id, FloorSignal::Revoked(enum_or_default(r.reason))))
            }
            Body::FloorIdle(i) => {
                let mut groups = lock(&self.groups);
                if groups.held.get(&i.group_id) == Some(&i.burst_id) {
                    groups.held.remove(&i.group_id);
                }
                None
            }
            Body::Regrouped(r) if r.terminal_id == self.config.terminal_id => {
                let removed = lock(&self.groups).regrouped(r);
                removed.map(|group| (group, FloorSignal::Removed))
            }
            Body::JoinOk(ok) => {
                if let Some(info) = &ok.group {
                    lock(&self.groups).relay_joined(info);
                }
                None
            }
            Body::PrivateCallSetup(setup) => {
                lock(&self.groups).call_set_up(setup.call_id, setup.group_id);
                None
            }
            Body::PrivateCallAccept(accept) => {
                lock(&self.groups).call_set_up(accept.call_id, accept.group_id);
                None
            }
            Body::PrivateCallReject(reject) => {
                self.call_over(reject.call_id);
                None
            }
            Body::PrivateCallEnd(end) => {
                self.call_over(end.call_id);
                None
            }
            _ => None,
        };
        if let Some((group, signal)) = signal {
            self.signal(group, signal);
        }
    }

    fn signal(&self, group: u32, signal: FloorSignal) {
        if let Some((_, tx)) = lock(&self.watchers).get(&group) {
            let _ = tx.send(signal);
        }
    }

    /// Tells every waiting talk the connection is gone.
    pub(crate) fn signal_all(&self, signal: FloorSignal) {
        for (_, tx) in lock(&self.watchers).values() {
            let _ = tx.send(signal);
        }
    }

    /// Registers the talk of `group` to hear its floor signals; the returned
    /// token unregisters it.
    pub(crate) fn watch_floor(&self, group: u32) -> (u64, mpsc::UnboundedReceiver<FloorSignal>) {
        let token = self.next_watcher.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.watchers).insert(group, (token, tx));
        (token, rx)
    }

    pub(crate) fn unwatch_floor(&self, group: u32, token: u64) {
        let mut watchers = lock(&self.watchers);
        if watchers.get(&group).is_some_and(|(t, _)| *t == token) {
            watchers.remove(&group);
        }
    }

    /// Sends a request on the current connection and waits for the answer.
    pub(crate) async fn request(&self, body: Request) -> Result<Body, ClientError> {
        self.link()?.request(body).await
    }
}
