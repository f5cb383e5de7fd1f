//! Talking: press → wait for the floor → send voice → release, without
//! clipping the first syllable.
//!
//! A user starts speaking the moment they press the button, but the grant
//! comes a round trip later (or much later, from the queue). [`Talk`] holds
//! the encoded frames pushed meanwhile in a bounded buffer and sends them
//! first, with the granted burst id and sequence numbers from 0, as soon as
//! the grant arrives; later frames go out as they are pushed. The buffered
//! frames leave back to back: listeners' jitter buffers absorb the burst,
//! and the talker's extra delay is drained instead of kept for the whole
//! burst.
//!
//! The API carries encoded Opus packets, not audio: the `ptt` command feeds
//! it from its microphone encoder, the load generator from canned packets.
//! One talk task per press owns the state; the handle only queues frames.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_proto::voice::{self, Flags, Kind, VoiceHeader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::answers::{release, unexpected};
use crate::clock::unix_us;
use crate::error::ClientError;
use crate::events::{enum_or_default, limit};
use crate::link::Link;
use crate::shared::{FloorSignal, Shared};

/// Pause between the burst's last datagram and `FloorRelease`.
///
/// Voice and control travel separately (datagrams and the control stream)
/// and the relay handles them in separate tasks: a release sent right behind
/// the last frame can be handled first, and the relay then drops that frame
/// because the sender no longer holds the floor. One frame's duration lets
/// the final frame through; it is the time that frame's audio lasts anyway.
pub const RELEASE_HANG: Duration = Duration::from_millis(20);

/// What was pressed: the group, and the priority and kind of the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TalkRequest {
    pub(crate) group: u32,
    pub(crate) priority: pb::Priority,
    pub(crate) kind: pb::FloorKind,
}

/// Where a talk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalkState {
    /// The floor request is on its way; frames are buffered.
    Requesting,
    /// The floor is busy and the request waits in the queue; frames are
    /// buffered (the oldest dropped once the buffer is full).
    Queued {
        /// 1-based position (1: next).
        position: u32,
        /// Requests queued in all.
        queue_length: u32,
    },
    /// The floor is ours: frames are sent as they are pushed.
    Talking {
        /// The granted burst id.
        burst: u32,
        /// When the relay will revoke the burst; `None`: no limit.
        talk_limit: Option<Duration>,
    },
    /// The talk is over; pushed frames are refused.
    Ended(TalkEnd),
}

/// How a talk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalkEnd {
    /// Released after talking; the relay acknowledged.
    Released,
    /// Released before the floor was granted: the request was withdrawn and
    /// the buffered audio discarded.
    Withdrawn,
    /// The relay refused the floor (or a queued request expired); the
    /// buffered audio was discarded.
    Denied(pb::FloorDenyReason),
    /// The relay took the floor away (pre-emption, talk limit, ...).
    Revoked(pb::FloorRevokeReason),
    /// The connection was lost during the talk.
    Disconnected,
    /// Something else failed (e.g. the relay answered with an error).
    Failed(ClientError),
}

/// Why a frame was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TalkError {
    /// The talk is over (denied, revoked, released, disconnected): stop
    /// capturing, and tell the user why.
    #[error("the talk has ended: {0:?}")]
    Ended(TalkEnd),
    /// The talk task is behind by a whole buffer; this frame was dropped.
    /// Happens only if the runtime is starved.
    #[error("talk buffer full; frame dropped")]
    Overloaded,
}

/// The result of a talk once it has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkSummary {
    /// The group.
    pub group: u32,
    /// The burst id, if the floor was granted.
    pub burst: Option<u32>,
    /// Voice frames sent.
    pub frames_sent: u64,
    /// Frames dropped: buffer overflow while waiting, audio discarded after
    /// a denial, frames refused by the connection, frames after revocation.
    pub frames_dropped: u64,
    /// How it ended.
    pub end: TalkEnd,
}

/// The floor grant a talk got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The burst id.
    pub burst: u32,
    /// When the relay will revoke the burst; `None`: no limit.
    pub talk_limit: Option<Duration>,
}

/// One encoded frame and when its audio was captured.
#[derive(Debug)]
struct Frame {
    opus: Bytes,
    captured_us: u64,
}

#[derive(Debug)]
enum Command {
    Frame(Frame),
    Release,
}

/// The handle of one press of the talk button. Push encoded 20 ms Opus
/// frames with [`Talk::push_frame`] from the moment of the press; end with
/// [`Talk::release`]. Dropping the handle releases too.
#[derive(Debug)]
pub struct Talk {
    group: u32,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<TalkState>,
    task: JoinHandle<TalkSummary>,
}

impl Talk {
    pub(crate) fn start(shared: Arc<Shared>, request: TalkRequest) -> Self {
        let capacity = shared.config.talk_buffer_frames.max(1);
        let (commands, rx) = mpsc::channel(capacity);
        let (state_tx, state) = watch::channel(TalkState::Requesting);
        let task = tokio::spawn(TalkTask::new(shared, request, rx, state_tx, capacity).run());
        Self {
            group: request.group,
            commands,
            state,
            task,
        }
    }

    /// The group talked in.
    #[must_use]
    pub fn group(&self) -> u32 {
        self.group
    }

    /// Where the talk is now.
    #[must_use]
    pub fn state(&self) -> TalkState {
        self.state.borrow().clone()
    }

    /// Queues one encoded Opus packet (normally 20 ms), captured now.
    pub fn push_frame(&self, opus: Bytes) -> Result<(), TalkError> {
        self.push_frame_at(opus, unix_us())
    }

    /// Queues one encoded Opus packet whose first sample was captured at
    /// `captured_us` (Unix µs), for callers that know better than "now".
    pub fn push_frame_at(&self, opus: Bytes, captured_us: u64) -> Result<(), TalkError> {
        if let TalkState::Ended(end) = &*self.state.borrow() {
            return Err(TalkError::Ended(end.clone()));
        }
        match self
            .commands
            .try_send(Command::Frame(Frame { opus, captured_us }))
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(TalkError::Overloaded),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(TalkError::Ended(self.end_or_failed()))
            }
        }
    }

    fn end_or_failed(&self) -> TalkEnd {
        match &*self.state.borrow() {
            TalkState::Ended(end) => end.clone(),
            _ => TalkEnd::Failed(ClientError::Protocol("talk task ended".into())),
        }
    }

    /// Waits until the floor is granted (frames buffered so far are being
    /// sent), or the talk ended without it.
    pub async fn granted(&self) -> Result<Grant, TalkError> {
        let mut state = self.state.clone();
        let state = state
            .wait_for(|s| matches!(s, TalkState::Talking { .. } | TalkState::Ended(_)))
            .await
            .map_err(|_| {
                TalkError::Ended(TalkEnd::Failed(ClientError::Protocol(
                    "talk task ended".into(),
                )))
            })?
            .clone();
        match state {
            TalkState::Talking { burst, talk_limit } => Ok(Grant { burst, talk_limit }),
            TalkState::Ended(end) => Err(TalkError::Ended(end)),
            _ => Err(TalkError::Ended(self.end_or_failed())),
        }
    }

    /// Waits until the talk ends by itself (revoked, denied, disconnected).
    pub async fn ended(&self) -> TalkEnd {
        let mut state = self.state.clone();
        let ended = state
            .wait_for(|s| matches!(s, TalkState::Ended(_)))
            .await
            .map(|s| s.clone());
        match ended {
            Ok(TalkState::Ended(end)) => end,
            _ => self.end_or_failed(),
        }
    }

    /// Releases the button: frames pushed so far are sent (the last one
    /// marked as the burst's last frame) and the floor is given back; before
    /// the grant, a queued request is withdrawn and its audio discarded.
    pub async fn release(self) -> TalkSummary {
        let _ = self.commands.send(Command::Release).await;
        let group = self.group;
        drop(self.commands);
        self.task.await.unwrap_or_else(|_| TalkSummary {
            group,
            burst: None,
            frames_sent: 0,
            frames_dropped: 0,
            end: TalkEnd::Failed(ClientError::Protocol("talk task failed".into())),
        })
    }
}

/// The task behind a [`Talk`].
struct TalkTask {
    shared: Arc<Shared>,
    request: TalkRequest,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    state: watch::Sender<TalkState>,
    backlog: VecDeque<Frame>,
    capacity: usize,
    release_requested: bool,
    burst: Option<u32>,
    sequence: u16,
    last_toc: Option<u8>,
    last_flagged: bool,
    sent: u64,
    dropped: u64,
}

impl TalkTask {
    fn new(
        shared: Arc<Shared>,
        request: TalkRequest,
        commands: mpsc::Receiver<Command>,
        state: watch::Sender<TalkState>,
        capacity: usize,
    ) -> Self {
        Self {
            shared,
            request,
            commands,
            commands_open: true,
            state,
            backlog: VecDeque::with_capacity(capacity),
            capacity,
            release_requested: false,
            burst: None,
            sequence: 0,
            last_toc: None,
            last_flagged: false,
            sent: 0,
            dropped: 0,
        }
    }

    async fn run(mut self) -> TalkSummary {
        let group = self.request.group;
        let (token, mut signals) = self.shared.watch_floor(group);
        let end = self.drive(&mut signals).await;
        self.shared.unwatch_floor(group, token);
        self.dropped += self.backlog.len() as u64;
        self.backlog.clear();
        self.shared
            .stats
            .voice_dropped
            .fetch_add(self.dropped, Ordering::Relaxed);
        self.state.send_replace(TalkState::Ended(end.clone()));
        TalkSummary {
            group,
            burst: self.burst,
            frames_sent: self.sent,
            frames_dropped: self.dropped,
            end,
        }
    }

    /// Holds a frame until the grant; the oldest goes when the buffer is full.
    fn buffer(&mut self, frame: Frame) {
        if self.backlog.len() >= self.capacity {
            self.backlog.pop_front();
            self.dropped += 1;
        }
        self.backlog.push_back(frame);
    }

    /// Handles a command that arrives before the grant.
    fn before_grant(&mut self, command: Option<Command>) {
        match command {
            Some(Command::Frame(frame)) => self.buffer(frame),
            Some(Command::Release) => self.release_requested = true,
            None => {
                self.release_requested = true;
                self.commands_open = false;
            }
        }
    }

    async fn drive(&mut self, signals: &mut mpsc::UnboundedReceiver<FloorSignal>) -> TalkEnd {
        let link = match self.shared.link() {
            Ok(link) => link,
            Err(ClientError::Disconnected) => return TalkEnd::Disconnected,
            Err(error) => return TalkEnd::Failed(error),
        };
        let request = link.request(Request::FloorRequest(pb::FloorRequest {
            group_id: self.request.group,
            priority: self.request.priority.into(),
            kind: self.request.kind.into(),
        }));
        tokio::pin!(request);
        let answer = loop {
            tokio::select! {
                biased;
                answer = &mut request => break answer,
                command = self.commands.recv(), if self.commands_open => self.before_grant(command),
            }
        };
        match answer {
            Ok(Body::FloorGranted(g)) => {
                self.talk(&link, signals, g.burst_id, limit(g.talk_limit_ms))
                    .await
            }
            Ok(Body::FloorQueued(q)) => {
                self.state.send_replace(TalkState::Queued {
                    position: q.position,
                    queue_length: q.queue_length,
                });
                self.queued(&link, signals).await
            }
            Ok(Body::FloorDenied(d)) => TalkEnd::Denied(enum_or_default(d.reason)),
            Ok(other) => TalkEnd::Failed(unexpected(other, Some(self.request.group))),
            Err(ClientError::Disconnected) => TalkEnd::Disconnected,
            Err(error) => TalkEnd::Failed(error),
        }
    }

    /// Waits in the floor queue, still buffering.
    async fn queued(
        &mut self,
        link: &Arc<Link>,
        signals: &mut mpsc::UnboundedReceiver<FloorSignal>,
    ) -> TalkEnd {
        loop {
            if self.release_requested {
                // Released while waiting: withdraw; stale audio is not sent.
                return match release(&self.shared, self.request.group, 0).await {
                    Ok(()) => TalkEnd::Withdrawn,
                    Err(ClientError::Disconnected) => TalkEnd::Disconnected,
                    Err(error) => TalkEnd::Failed(error),
                };
            }
            tokio::select! {
                biased;
                signal = signals.recv() => match signal {
                    Some(FloorSignal::Granted { burst, talk_limit }) => {
                        return self.talk(link, signals, burst, talk_limit).await;
                    }
                    Some(FloorSignal::Queued { position, queue_length }) => {
                        self.state.send_replace(TalkState::Queued { position, queue_length });
                    }
                    Some(FloorSignal::Denied(reason)) => return TalkEnd::Denied(reason),
                    Some(FloorSignal::Revoked(_)) => {}
                    Some(FloorSignal::Removed) => {
                        return TalkEnd::Denied(pb::FloorDenyReason::NotMember);
                    }
                    Some(FloorSignal::Disconnected) | None => return TalkEnd::Disconnected,
                },
                command = self.commands.recv(), if self.commands_open => self.before_grant(command),
            }
        }
    }

    /// Holds the floor: sends the backlog, then live frames, until release,
    /// revocation or disconnection.
    async fn talk(
        &mut self,
        link: &Arc<Link>,
        signals: &mut mpsc::UnboundedReceiver<FloorSignal>,
        burst: u32,
        talk_limit: Option<Duration>,
    ) -> TalkEnd {
        self.burst = Some(burst);
        self.shared.set_held(self.request.group, Some(burst));
        self.state
            .send_replace(TalkState::Talking { burst, talk_limit });
        while let Some(frame) = self.backlog.pop_front() {
            let last = self.backlog.is_empty() && self.release_requested;
            self.send(link, frame, last);
        }
        if self.release_requested {
            return self.finish(link).await;
        }
        let mut next: Option<Command> = None;
        loop {
            let command = match next.take() {
                Some(command) => Some(command),
                None => tokio::select! {
                    biased;
                    signal = signals.recv() => match signal {
                        Some(FloorSignal::Revoked(reason)) => {
                            self.shared.set_held(self.request.group, None);
                            return TalkEnd::Revoked(reason);
                        }
                        Some(FloorSignal::Removed) => {
                            self.shared.set_held(self.request.group, None);
                            return TalkEnd::Revoked(pb::FloorRevokeReason::Removed);
                        }
                        Some(FloorSignal::Disconnected) | None => return TalkEnd::Disconnected,
                        Some(_) => continue,
                    },
                    command = self.commands.recv(), if self.commands_open => command,
                },
            };
            match command {
                Some(Command::Frame(frame)) => match self.commands.try_recv() {
                    // The release is already queued: this is the last frame.
                    Ok(Command::Release) | Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.send(link, frame, true);
                        return self.finish(link).await;
                    }
                    Ok(following) => {
                        self.send(link, frame, false);
                        next = Some(following);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => self.send(link, frame, false),
                },
                Some(Command::Release) | None => return self.finish(link).await,
            }
        }
    }

    /// Marks the end of the burst and gives the floor back.
    async fn finish(&mut self, link: &Arc<Link>) -> TalkEnd {
        if !self.last_flagged
            && let Some(toc) = self.last_toc
        {
            // The last frame went out unmarked: send an end-of-burst frame,
            // a TOC byte alone (code 0: one empty frame, which decoders
            // treat as DTX), flagged last.
            let marker = Frame {
                opus: Bytes::copy_from_slice(&[toc & 0xfc]),
                captured_us: unix_us(),
            };
            self.send(link, marker, true);
        }
        let Some(burst) = self.burst else {
            return TalkEnd::Withdrawn;
        };
        if self.sent > 0 {
            tokio::time::sleep(RELEASE_HANG).await;
        }
        match release(&self.shared, self.request.group, burst).await {
            Ok(()) => TalkEnd::Released,
            Err(ClientError::Disconnected) => TalkEnd::Disconnected,
            Err(error) => TalkEnd::Failed(error),
        }
    }

    /// Sends one frame of the burst as a datagram.
    fn send(&mut self, link: &Link, frame: Frame, last: bool) {
        let Some(burst) = self.burst else {
            self.dropped += 1;
            return;
        };
        let header = VoiceHeader {
            kind: Kind::Voice,
            flags: Flags(if last { Flags::LAST_FRAME } else { 0 }),
            group_id: self.request.group,
            talker_id: 0,
            burst_id: burst,
            sequence: self.sequence,
            timestamp_us: frame.captured_us,
        };
        let mut buf = BytesMut::new();
        if voice::encode(&header, &frame.opus, &mut buf).is_err() || buf.len() > link.max_datagram()
        {
            tracing::debug!(
                len = frame.opus.len(),
                "voice frame too large or empty; dropped"
            );
            self.dropped += 1;
            return;
        }
        match link.conn.send_datagram(buf.freeze()) {
            Ok(()) => {
                self.sent += 1;
                self.shared.stats.voice_sent.fetch_add(1, Ordering::Relaxed);
                self.sequence = self.sequence.wrapping_add(1);
                self.last_toc = frame.opus.first().copied();
                self.last_flagged = last;
            }
            Err(error) => {
                tracing::debug!(%error, "voice datagram not sent");
                self.dropped += 1;
            }
        }
    }
}
