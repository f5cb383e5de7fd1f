//! The [`Client`]: a terminal logged in to the relay, with every request of
//! the control protocol as an awaitable method and the relay's unsolicited
//! messages as [`Event`](crate::Event)s.
//!
//! The client keeps itself connected (see [`crate::reconnect`]): methods
//! called while the connection is down fail fast with
//! [`ClientError::Disconnected`] instead of queueing stale requests (a floor
//! request from ten seconds ago is not what the user wants now).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use tokio::sync::{broadcast, watch};

pub use crate::answers::FloorOutcome;
use crate::answers::{expect_ack, release, send_quality_report, unexpected};
use crate::config::ClientConfig;
use crate::connection::{self, CLOSE_NORMAL};
use crate::error::{ClientError, Ended};
use crate::events::Events;
use crate::quality::QualityMeter;
use crate::resume::ResumeCredential;
use crate::shared::{Groups, Shared, Stats, lock};
use crate::talk::{Talk, TalkRequest};
use crate::{clock, reconnect, tls};

/// Counters of one client since it was created, for the load generator and
/// diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Voice frames received and delivered as events.
    pub voice_frames_received: u64,
    /// Datagrams dropped because they were not valid voice (voice.md §3.2).
    pub bad_datagrams: u64,
    /// Voice frames sent by [`Talk`]s.
    pub voice_frames_sent: u64,
    /// Voice frames a [`Talk`] could not send or had to drop (buffer full
    /// while waiting for the floor, datagram refused).
    pub voice_frames_dropped: u64,
    /// Successful reconnects.
    pub reconnects: u64,
}

/// Closes the connection when the last [`Client`] handle is dropped.
#[derive(Debug)]
struct CloseGuard(Arc<Shared>);

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
        if let Some(link) = lock(&self.0.link).take() {
            link.conn.close(CLOSE_NORMAL.into(), b"client closed");
        }
    }
}

/// A terminal logged in to the relay. Cheap to clone; all clones share one
/// connection, and the connection closes when the last clone is dropped (or
/// at [`Client::close`]).
///
/// ```no_run
/// # async fn demo(opus_frames: Vec<bytes::Bytes>) -> Result<(), ptt_client::ClientError> {
/// use ptt_client::{Client, ClientConfig, Event, Trust};
/// use ptt_proto::pb;
///
/// let config = ClientConfig::new(
///     "127.0.0.1:7700".parse().unwrap(),
///     Trust::Pinned("data/pttd-cert.pem".into()),
///     1001,
///     "secret-1001",
/// );
/// let client = Client::connect(config).await?;
/// let mut events = client.events();
/// tokio::spawn(async move {
///     while let Some(event) = events.recv().await {
///         if let Event::Voice(frame) = event {
///             // hand frame.payload to the jitter buffer
///         }
///     }
/// });
/// let talk = client.press(10, pb::Priority::Normal, pb::FloorKind::Normal);
/// for frame in opus_frames {
///     let _ = talk.push_frame(frame); // from the moment of the press
/// }
/// let summary = talk.release().await;
/// println!("sent {} frames: {:?}", summary.frames_sent, summary.end);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    guard: Arc<CloseGuard>,
}

impl Client {
    /// Connects to the relay, checks its certificate, logs in, and keeps the
    /// connection up from then on. Fails with the reason the first attempt
    /// failed: nothing is retried here, so a wrong secret or certificate is
    /// reported at once.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let bind: SocketAddr = if config.server.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = quinn::Endpoint::client(bind)
            .map_err(|e| ClientError::Config(format!("cannot bind a UDP socket: {e}")))?;
        Self::connect_with_endpoint(config, endpoint).await
    }

    /// Like [`Client::connect`] over an existing QUIC endpoint, so a load
    /// generator can run many terminals on one UDP socket.
    pub async fn connect_with_endpoint(
        config: ClientConfig,
        endpoint: quinn::Endpoint,
    ) -> Result<Self, ClientError> {
        let quic = tls::quic_config(&config)?;
        let (events, first) = broadcast::channel(config.event_capacity.max(16));
        let shared = Arc::new(Shared {
            config,
            quic,
            endpoint,
            quality: Arc::new(QualityMeter::new()),
            stats: Stats::default(),
            events,
            first_events: Mutex::new(Some(first)),
            link: Mutex::new(None),
            groups: Mutex::new(Groups::default()),
            status_codes: Mutex::new(Vec::new()),
            watchers: Mutex::new(HashMap::new()),
            next_watcher: AtomicU64::new(1),
            clock_offset_us: AtomicI64::new(0),
            resume: ResumeCredential::default(),
            server_turn: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
            ended: Ended::default(),
        });
        let established = connection::establish_first_reachable(&shared).await?;
        shared.logged_in(&established.link.hello);
        shared.set_link(Some(established.link.clone()));
        tokio::spawn(reconnect::supervise(
            shared.clone(),
            established.link,
            established.reader,
        ));
        if let Some(interval) = shared.config.quality_report_interval {
            tokio::spawn(reconnect::report_quality(shared.clone(), interval));
        }
        Ok(Self {
            guard: Arc::new(CloseGuard(shared.clone())),
            shared,
        })
    }

    /// The terminal id this client logs in as.
    #[must_use]
    pub fn terminal_id(&self) -> u32 {
        self.shared.config.terminal_id
    }

    /// The relay's `HelloOk` of the current connection (session id, server
    /// version, groups at log-in); `None` while disconnected.
    #[must_use]
    pub fn session(&self) -> Option<pb::HelloOk> {
        self.shared.link().ok().map(|link| link.hello.clone())
    }

    /// True while logged in (false while reconnecting or after close).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.link().is_ok()
    }

    /// Every group of this terminal with its rights, `joined` as it is now.
    #[must_use]
    pub fn groups(&self) -> Vec<pb::GroupInfo> {
        let groups = lock(&self.shared.groups);
        groups
            .infos
            .values()
            .map(|info| pb::GroupInfo {
                joined: groups.joined.contains(&info.group_id),
                ..info.clone()
            })
            .collect()
    }

    /// The deployment's status code table ("1: On scene", ...) from the
    /// relay's `HelloOk`, for a status menu and to show received codes by
    /// name. The last one known is kept while reconnecting.
    #[must_use]
    pub fn status_codes(&self) -> Vec<pb::StatusCodeInfo> {
        lock(&self.shared.status_codes).clone()
    }

    /// The label of status code `code` in [`Client::status_codes`], if the
    /// table has it.
    #[must_use]
    pub fn status_label(&self, code: u32) -> Option<String> {
        lock(&self.shared.status_codes)
            .iter()
            .find(|s| s.code == code)
            .map(|s| s.label.clone())
    }

    /// The groups joined now, ascending.
    #[must_use]
    pub fn joined(&self) -> Vec<u32> {
        self.shared.joined()
    }

    /// A stream of events. The first call gets every event since log-in;
    /// later calls get events from the moment of the call.
    #[must_use]
    pub fn events(&self) -> Events {
        let first = lock(&self.shared.first_events).take();
        Events::new(
            first.unwrap_or_else(|| self.shared.events.subscribe()),
            self.shared.ended.clone(),
        )
    }

    /// The receive-quality meter: the client counts arrivals; the playout
    /// side adds late and concealed frames.
    #[must_use]
    pub fn quality(&self) -> Arc<QualityMeter> {
        self.shared.quality.clone()
    }

    /// Counters since the client was created.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        let s = &self.shared.stats;
        ClientStats {
            voice_frames_received: s.voice_frames.load(Ordering::Relaxed),
            bad_datagrams: s.bad_datagrams.load(Ordering::Relaxed),
            voice_frames_sent: s.voice_sent.load(Ordering::Relaxed),
            voice_frames_dropped: s.voice_dropped.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
        }
    }

    /// The QUIC counters of the current connection (`None` while
    /// reconnecting): what a load generator or a field test reads to see
    /// how often this terminal acknowledges, and its path's RTT.
    #[must_use]
    pub fn quic_stats(&self) -> Option<quinn::ConnectionStats> {
        lock(&self.shared.link)
            .as_ref()
            .map(|link| link.conn.stats())
    }

    /// The relay's clock minus ours in µs, from the latest [`Client::ping`]
    /// (0 before the first).
    #[must_use]
    pub fn clock_offset_us(&self) -> i64 {
        self.shared.clock_offset_us()
    }

    /// Joins `group` (starts hearing it); remembered and redone after a
    /// reconnect. The answer says who talks now and any emergency.
    pub async fn join(&self, group: u32) -> Result<pb::JoinOk, ClientError> {
        match self
            .shared
            .request(Request::JoinGroup(pb::JoinGroup { group_id: group }))
            .await?
        {
            Body::JoinOk(ok) => {
                if let Some(info) = &ok.group {
                    lock(&self.shared.groups).infos.insert(group, info.clone());
                }
                self.shared.set_joined(group, true, true);
                Ok(ok)
            }
            other => Err(unexpected(other, Some(group))),
        }
    }

    /// Leaves `group` (stops hearing it, withdraws any floor request);
    /// remembered so a reconnect does not join it again.
    pub async fn leave(&self, group: u32) -> Result<(), ClientError> {
        match self
            .shared
            .request(Request::LeaveGroup(pb::LeaveGroup { group_id: group }))
            .await?
        {
            Body::LeaveOk(_) => {
                self.shared.set_joined(group, false, true);
                Ok(())
            }
            other => Err(unexpected(other, Some(group))),
        }
    }

    /// Asks for the floor of `group`. For talking with buffered audio use
    /// [`Client::press`], which does this and the rest.
    pub async fn request_floor(
        &self,
        group: u32,
        priority: pb::Priority,
        kind: pb::FloorKind,
    ) -> Result<FloorOutcome, ClientError> {
        let answer = self
            .shared
            .request(Request::FloorRequest(pb::FloorRequest {
                group_id: group,
                priority: priority.into(),
                kind: kind.into(),
            }))
            .await?;
        let outcome = FloorOutcome::from_answer(answer, group)?;
        if let FloorOutcome::Granted { burst, .. } = outcome {
            self.shared.set_held(group, Some(burst));
        }
        Ok(outcome)
    }

    /// Gives the floor of `group` back, or withdraws a queued request.
    pub async fn release(&self, group: u32) -> Result<(), ClientError> {
        let burst = lock(&self.shared.groups).held.get(&group).copied();
        release(&self.shared, group, burst.unwrap_or(0), None).await
    }

    /// Clears the emergency of `group` (dispatchers only).
    pub async fn clear_emergency(&self, group: u32) -> Result<pb::EmergencyState, ClientError> {
        match self
            .shared
            .request(Request::EmergencyClear(pb::EmergencyClear {
                group_id: group,
            }))
            .await?
        {
            Body::EmergencyState(state) => Ok(state),
            other => Err(unexpected(other, Some(group))),
        }
    }

    /// Sends a dispatcher alert (roll call) to the members of `groups`; an
    /// empty list means every all-call group. The answer is the first tally,
    /// carrying the alert id; later tallies arrive as
    /// [`Event::AlertTally`](crate::Event::AlertTally).
    pub async fn send_alert(
        &self,
        text: String,
        groups: Vec<u32>,
        requires_ack: bool,
    ) -> Result<pb::AlertTally, ClientError> {
        let group = groups.first().copied();
        match self
            .shared
            .request(Request::Alert(pb::Alert {
                text,
                target_group_ids: groups,
                requires_ack,
                ..Default::default()
            }))
            .await?
        {
            Body::AlertTally(tally) => Ok(tally),
            other => Err(unexpected(other, group)),
        }
    }

    /// Measures the round-trip time to the relay over the control stream,
    /// and updates the clock offset used for latency measurement.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let sent = Instant::now();
        let sent_us = clock::unix_us();
        match self
            .shared
            .request(Request::Ping(pb::Ping {
                client_send_time_us: sent_us,
            }))
            .await?
        {
            Body::Pong(pong) => {
                let rtt = sent.elapsed();
                let half = i64::try_from(rtt.as_micros() / 2).unwrap_or(0);
                let offset =
                    i128::from(pong.server_time_us) - i128::from(sent_us) - i128::from(half);
                if pong.server_time_us != 0 {
                    self.shared
                        .clock_offset_us
                        .store(i64::try_from(offset).unwrap_or(0), Ordering::Relaxed);
                }
                Ok(rtt)
            }
            other => Err(unexpected(other, None)),
        }
    }

    /// Reports this terminal's position (the relay sets the terminal id).
    pub async fn send_location(&self, report: pb::LocationReport) -> Result<(), ClientError> {
        expect_ack(
            self.shared.request(Request::LocationReport(report)).await?,
            None,
        )
    }

    /// Sends a status message to a terminal, a group or the control room.
    pub async fn send_status(&self, status: pb::StatusMessage) -> Result<(), ClientError> {
        let group = match status.target {
            Some(pb::status_message::Target::GroupId(group)) => Some(group),
            _ => None,
        };
        expect_ack(
            self.shared.request(Request::StatusMessage(status)).await?,
            group,
        )
    }

    /// Answers an alert (roll call): RESPONDING or UNABLE, optionally with a
    /// status code from [`Client::status_codes`]. The DELIVERED receipt is
    /// sent by the client itself (see [`ClientConfig::auto_ack_alerts`]).
    pub async fn ack_alert(
        &self,
        alert_id: u64,
        kind: pb::AlertAckKind,
        status_code: Option<u32>,
    ) -> Result<(), ClientError> {
        expect_ack(
            self.shared
                .request(Request::AlertAck(pb::AlertAck {
                    alert_id,
                    kind: kind.into(),
                    status_code,
                }))
                .await?,
            None,
        )
    }

    /// Sends a receive-quality report (see [`QualityMeter::take_report`];
    /// [`ClientConfig::quality_report_interval`] does it periodically).
    pub async fn send_quality_report(&self, report: pb::QualityReport) -> Result<(), ClientError> {
        send_quality_report(&self.shared, report).await
    }

    /// Presses the talk button in `group`: asks for the floor at once and
    /// returns the handle to push audio into right away. Frames pushed
    /// before the grant are held and sent first when it comes, so the first
    /// syllable is not clipped. See [`Talk`].
    #[must_use]
    pub fn press(&self, group: u32, priority: pb::Priority, kind: pb::FloorKind) -> Talk {
        Talk::start(
            self.shared.clone(),
            TalkRequest {
                group,
                priority,
                kind,
            },
        )
    }

    /// Logs out: closes the connection, stops reconnecting, and waits
    /// briefly for the relay to be told.
    pub async fn close(self) {
        let link = lock(&self.shared.link).clone();
        self.shared.shutdown.send_replace(true);
        if let Some(link) = link {
            link.conn.close(CLOSE_NORMAL.into(), b"bye");
        }
        let endpoint = self.shared.endpoint.clone();
        drop(self.guard);
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    }
}
