//! The task behind a [`Talk`](super::Talk): it asks for the floor, holds
//! the frames pushed meanwhile, sends the burst and gives the floor back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_proto::voice::{self, Flags, Kind, VoiceHeader};
use ptt_proto::voice_stream::record_prefix;
use tokio::sync::{mpsc, watch};

use super::request::{Command, Frame, TalkRequest};
use super::state::{TalkEnd, TalkState, TalkSummary};
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

/// The task behind a [`Talk`].
pub(super) struct TalkTask {
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
    /// The burst's voice stream, when voice travels on streams.
    voice_stream: Option<quinn::SendStream>,
}

impl TalkTask {
    pub(super) fn new(
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
            voice_stream: None,
        }
    }

    pub(super) async fn run(mut self) -> TalkSummary {
        let group = self.request.group;
        let (token, mut signals) = self.shared.watch_floor(group);
        let end = self.drive(&mut signals).await;
        if let Some(mut stream) = self.voice_stream.take() {
            // Revoked or disconnected mid-burst: the burst ends here.
            let _ = stream.finish();
        }
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
                return match release(&self.shared, self.request.group, 0, None).await {
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
            self.send(link, frame, last).await;
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
                        self.send(link, frame, true).await;
                        return self.finish(link).await;
                    }
                    Ok(following) => {
                        self.send(link, frame, false).await;
                        next = Some(following);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => self.send(link, frame, false).await,
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
            self.send(link, marker, true).await;
        }
        let Some(burst) = self.burst else {
            return TalkEnd::Withdrawn;
        };
        if self.sent > 0 {
            tokio::time::sleep(RELEASE_HANG).await;
        }
        let last_sequence = (self.sent > 0).then(|| self.sequence.wrapping_sub(1));
        match release(&self.shared, self.request.group, burst, last_sequence).await {
            Ok(()) => TalkEnd::Released,
            Err(ClientError::Disconnected) => TalkEnd::Disconnected,
            Err(error) => TalkEnd::Failed(error),
        }
    }

    /// Sends one frame of the burst, as a datagram or on the burst's stream.
    async fn send(&mut self, link: &Link, frame: Frame, last: bool) {
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
        let sent = if link.voice_on_streams() {
            self.write_on_stream(link, buf.freeze(), last).await
        } else {
            link.conn
                .send_datagram(buf.freeze())
                .map_err(|e| e.to_string())
        };
        match sent {
            Ok(()) => {
                self.sent += 1;
                self.shared.stats.voice_sent.fetch_add(1, Ordering::Relaxed);
                self.sequence = self.sequence.wrapping_add(1);
                self.last_toc = frame.opus.first().copied();
                self.last_flagged = last;
            }
            Err(error) => {
                tracing::debug!(%error, "voice frame not sent");
                self.dropped += 1;
            }
        }
    }

    /// Writes one frame as a record of the burst's voice stream (voice.md
    /// §4), opening the stream at the burst's first frame and finishing it
    /// after the last. A stream that cannot take the frame within a frame's
    /// time (the path is slower than the voice) is reset and the frame
    /// dropped: live voice is newest-wins, the next frame opens a new one.
    async fn write_on_stream(
        &mut self,
        link: &Link,
        datagram: Bytes,
        last: bool,
    ) -> Result<(), String> {
        let prefix = record_prefix(datagram.len()).map_err(|e| e.to_string())?;
        let mut stream = match self.voice_stream.take() {
            Some(stream) => stream,
            None => match tokio::time::timeout(STREAM_PATIENCE, link.conn.open_uni()).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err("no voice stream credit from the relay".into()),
            },
        };
        let write = async {
            stream.write_all(&prefix).await?;
            stream.write_chunk(datagram).await
        };
        match tokio::time::timeout(STREAM_PATIENCE, write).await {
            Ok(Ok(())) => {
                if last {
                    let _ = stream.finish();
                } else {
                    self.voice_stream = Some(stream);
                }
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => {
                let _ = stream.reset(0u32.into());
                Err("voice stream blocked".into())
            }
        }
    }
}

/// How long a frame may wait for the voice stream (its opening or flow
/// control) before it is dropped: one frame's time.
const STREAM_PATIENCE: Duration = Duration::from_millis(20);
