//! A connected, authenticated terminal as the rest of the relay sees it: where
//! to send its voice datagrams and its control messages.
//!
//! Group tasks and the fan-out hold `Arc<Link>`s. Sending never waits: a
//! control message goes into a bounded queue drained by the connection's
//! writer task, and a terminal that lets that queue fill up is cut off rather
//! than allowed to slow down the group (a slow listener must not hurt the
//! others).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ptt_proto::pb::{self, server_message::Body};
use tokio::sync::mpsc;

use crate::browser::BrowserSession;
use crate::carrier::Carrier;
use crate::metrics::Metrics;
use crate::metrics::trust::ReportLedger;
use crate::stream_out::StreamFeed;

/// Application close code (proto/voice.md §1): the control stream broke the
/// protocol (malformed framing, too many malformed messages).
pub const CLOSE_PROTOCOL: u32 = 1;
/// Application close code: authentication failed.
pub const CLOSE_AUTH: u32 = 2;
/// Application close code: going away (shutdown, or a terminal too slow to
/// read its control stream), after `GoingAway` where possible.
pub const CLOSE_GOING_AWAY: u32 = 3;
/// Application close code: another connection authenticated as this terminal.
pub const CLOSE_REPLACED: u32 = 4;
/// Application close code of a terminal disabled by an administrator: the
/// authentication code, as its credentials no longer log in (after
/// `GoingAway{AUTH_REVOKED}` where possible).
pub const CLOSE_DISABLED: u32 = CLOSE_AUTH;

/// Control messages buffered per terminal before it counts as too slow.
pub const CONTROL_QUEUE: usize = 512;

/// How long a farewell waits for the terminal to acknowledge its
/// `GoingAway` before the connection is closed anyway (a terminal that
/// acknowledges nothing must not hold the relay's shutdown).
pub const FAREWELL_GRACE: Duration = Duration::from_millis(250);

/// What the connection's writer task is handed.
#[derive(Debug)]
pub enum Outbound {
    /// A framed control message, to write in order.
    Frame(Bytes),
    /// The last word: finish the control stream, give the terminal up to
    /// [`FAREWELL_GRACE`] to acknowledge what was written, then close the
    /// connection with this application code and reason.
    Close {
        /// The application close code (proto/voice.md §1).
        code: u32,
        /// The close reason, for the terminal's log.
        why: &'static str,
    },
}

/// How voice reaches a terminal (`HelloOk.datagrams`).
#[derive(Debug)]
pub enum VoiceOut {
    /// QUIC datagrams, handed straight to the connection (voice.md §3).
    Datagrams,
    /// A browser's WebTransport datagrams: the same voice datagrams behind
    /// the session's prefix.
    Browser(BrowserSession),
    /// One stream per burst (voice.md §4), through the session's writer:
    /// the terminal's QUIC stack or path carries no datagrams.
    Streams(StreamFeed),
}

/// Where a terminal's voice goes: its connection, the shard that serves it,
/// and what it takes.
#[derive(Debug)]
pub struct VoiceRoute {
    /// The connection: a terminal's, or a browser's session.
    pub(crate) carrier: Carrier,
    /// The shard that owns the connection.
    pub shard: u8,
    /// The largest voice datagram the terminal takes.
    pub max_datagram: usize,
    /// Datagrams or streams.
    pub voice_out: VoiceOut,
}

/// The outbound side of one authenticated terminal.
#[derive(Debug)]
pub struct Link {
    /// The authenticated terminal id (never taken from client data).
    pub terminal: u32,
    /// The terminal's display name, for floor events.
    pub name: Arc<str>,
    /// Relay-unique id of this session (a reconnect gets a new one).
    pub session: u64,
    /// The QUIC connection; voice datagrams go straight to it.
    pub conn: quinn::Connection,
    /// The same connection as the session sees it, to close it the way its
    /// client reads (a browser's through its WebTransport session).
    carrier: Carrier,
    /// The shard that owns the connection ([`crate::shard`]): only that
    /// shard's thread hands it voice.
    pub shard: u8,
    /// The largest voice datagram this terminal takes (`HelloOk.max_datagram_size`:
    /// the smallest of its own limit, the relay's and the QUIC path's at login).
    pub max_datagram: usize,
    voice_out: VoiceOut,
    control: mpsc::Sender<Outbound>,
    cut: AtomicBool,
    /// The last all-call frame handed to this link, so a terminal in several
    /// all-call groups hears each frame once.
    last_all_call_frame: AtomicU64,
    /// All-call frames this terminal has sent, for unique frame tokens.
    all_call_frames: AtomicU64,
    /// Woken when an administrator changed this terminal's group memberships;
    /// the session then joins or leaves groups to match (see `crate::roster`).
    pub membership_changed: tokio::sync::Notify,
    /// The voice datagrams handed to this terminal, on a cache line of its
    /// own so counting does not disturb the fields the fan-out reads.
    voice: VoiceTally,
    /// What this session's quality reports have used up (see
    /// [`crate::metrics::trust`]); only its control path takes it.
    pub quality_ledger: std::sync::Mutex<ReportLedger>,
    metrics: Arc<Metrics>,
}

/// Per-listener voice counts, written by the fan-out (relaxed adds).
#[derive(Debug, Default)]
#[repr(align(64))]
struct VoiceTally {
    handed: AtomicU64,
    refused: AtomicU64,
}

impl Link {
    /// Creates the link and the receiving end its writer task drains.
    pub fn new(
        terminal: u32,
        name: Arc<str>,
        session: u64,
        route: VoiceRoute,
        metrics: Arc<Metrics>,
    ) -> (Arc<Self>, mpsc::Receiver<Outbound>) {
        let (control, rx) = mpsc::channel(CONTROL_QUEUE);
        let VoiceRoute {
            carrier,
            shard,
            max_datagram,
            voice_out,
        } = route;
        let link = Arc::new(Self {
            terminal,
            name,
            session,
            conn: carrier.connection().clone(),
            carrier,
            shard,
            max_datagram,
            voice_out,
            control,
            cut: AtomicBool::new(false),
            last_all_call_frame: AtomicU64::new(0),
            all_call_frames: AtomicU64::new(0),
            membership_changed: tokio::sync::Notify::new(),
            voice: VoiceTally::default(),
            quality_ledger: std::sync::Mutex::default(),
            metrics,
        });
        (link, rx)
    }

    /// The connection as the session sees it.
    pub(crate) fn carrier(&self) -> &Carrier {
        &self.carrier
    }

    /// Queues an already framed control message. If the terminal's queue is
    /// full it is disconnected: it stopped reading its control stream.
    pub fn send_frame(&self, frame: Bytes) {
        match self.control.try_send(Outbound::Frame(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.cut_off(
                    CLOSE_GOING_AWAY,
                    "control queue full: the terminal is not reading",
                );
            }
            // The writer has gone: the connection is closing already.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// A token no other all-call frame of any terminal carries: the session
    /// id (unique per relay) and a per-session frame count.
    #[inline]
    pub fn next_all_call_token(&self) -> u64 {
        let count = self.all_call_frames.fetch_add(1, Ordering::Relaxed) + 1;
        self.session << 40 | (count & ((1 << 40) - 1))
    }

    /// Claims all-call frame `token` for this link: true the first time,
    /// false if the link already got that frame through another group.
    #[inline]
    pub fn claim_all_call_frame(&self, token: u64) -> bool {
        self.last_all_call_frame.swap(token, Ordering::Relaxed) != token
    }

    /// Hands one voice datagram to this terminal's connection, counting it
    /// as sent (handed) or refused; true if the connection took it. One
    /// larger than the terminal said it takes is refused: a talker with a
    /// larger limit may send it, this listener never gets it.
    #[inline]
    pub fn send_voice(&self, datagram: Bytes) -> bool {
        let sent = datagram.len() <= self.max_datagram
            && match &self.voice_out {
                VoiceOut::Datagrams => self.conn.send_datagram(datagram).is_ok(),
                VoiceOut::Browser(session) => session.send_datagram(datagram),
                VoiceOut::Streams(feed) => feed.offer(datagram),
            };
        let counter = if sent {
            &self.voice.handed
        } else {
            &self.voice.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        sent
    }

    /// Voice datagrams handed to this terminal's connection since its
    /// session began: the relay's own count of what it sent the terminal.
    pub fn voice_handed(&self) -> u64 {
        self.voice.handed.load(Ordering::Relaxed)
    }

    /// Voice datagrams this terminal's connection refused.
    pub fn voice_refused(&self) -> u64 {
        self.voice.refused.load(Ordering::Relaxed)
    }

    /// True if voice reaches this terminal on streams, not datagrams
    /// (`HelloOk.datagrams` false).
    pub fn voice_on_streams(&self) -> bool {
        matches!(self.voice_out, VoiceOut::Streams(_))
    }

    /// Voice datagrams handed but never transmitted: dropped by quinn when
    /// the send queue overflowed, plus the few still queued. Takes the
    /// connection's lock: not for the hot path. A stream listener's writer
    /// counts what it discards itself.
    fn voice_unsent(&self) -> u64 {
        match self.voice_out {
            VoiceOut::Datagrams | VoiceOut::Browser(_) => self
                .voice_handed()
                .saturating_sub(self.conn.stats().frame_tx.datagram),
            VoiceOut::Streams(_) => 0,
        }
    }

    /// Frames and queues one message.
    pub fn send(&self, request_id: u64, body: Body) {
        self.send_frame(frame(request_id, body));
    }

    /// Tells the terminal it is going away and why, then closes its
    /// connection with `code` once the message has arrived (the terminal
    /// acknowledged it) or [`FAREWELL_GRACE`] has passed. Closed at once,
    /// the connection would lose the message: a close discards what is
    /// still unsent (proto/voice.md §1 asks for `GoingAway`, then the code).
    pub fn farewell(&self, going_away: pb::GoingAway, code: u32, why: &'static str) {
        self.send(0, Body::GoingAway(going_away));
        self.close_after_queue(code, why);
    }

    /// Has the writer close the connection once what is queued was
    /// delivered. Closed at once if the writer is gone or the queue is full
    /// (the terminal reads nothing), and in any case after twice
    /// [`FAREWELL_GRACE`]: a terminal whose stream is blocked (it stopped
    /// reading) would otherwise keep its writer waiting for ever.
    fn close_after_queue(&self, code: u32, why: &'static str) {
        if self
            .control
            .try_send(Outbound::Close { code, why })
            .is_err()
        {
            self.carrier.close(code, why);
            return;
        }
        // Called from the relay's tasks; outside a runtime (nothing there
        // sends control messages today) the close cannot wait: at once.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.carrier.close(code, why);
            return;
        };
        let carrier = self.carrier.clone();
        runtime.spawn(async move {
            tokio::time::sleep(FAREWELL_GRACE * 2).await;
            carrier.close(code, why);
        });
    }

    /// Closes the connection because the terminal misbehaved; the others are
    /// unaffected. Logged once. What was queued for the terminal before (the
    /// `Error` that says why) is delivered first, as after a farewell; one
    /// whose queue is full reads nothing and is closed at once.
    pub fn cut_off(&self, code: u32, why: &'static str) {
        if !self.cut.swap(true, Ordering::Relaxed) {
            self.metrics.cut_off.inc();
            tracing::warn!(
                terminal = self.terminal,
                session = self.session,
                why,
                "cutting off terminal"
            );
            self.close_after_queue(code, why);
        }
    }
}

impl Drop for Link {
    /// The session is over: what was handed and never transmitted is lost
    /// for good (queue overflow, or queued at close), counted relay-wide.
    fn drop(&mut self) {
        self.metrics.listener_queue_dropped.add(self.voice_unsent());
    }
}

/// Encodes a server message with its length prefix, ready for any number of
/// control streams.
pub fn frame(request_id: u64, body: Body) -> Bytes {
    let message = pb::ServerMessage {
        request_id,
        body: Some(body),
    };
    // Server messages are built by the relay and far below the 64 KiB limit;
    // the only failure is a bug, which must not take the relay down.
    ptt_proto::framing::encode_to_bytes(&message).unwrap_or_else(|error| {
        tracing::error!(%error, "server message does not fit a frame");
        Bytes::new()
    })
}
