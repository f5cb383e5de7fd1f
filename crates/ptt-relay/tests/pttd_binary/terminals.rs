//! The terminals of these tests: the client library (what a handheld runs),
//! followed event by event; the end-to-end tests' raw client, which sees
//! the QUIC close code the library keeps to itself; a talker pushing real
//! Opus frames; and a bare `Hello` for logins with a resumption credential.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN, signal};
use ptt_client::{Client as Terminal, ClientConfig, Event, TalkEnd, TalkError, Trust};
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::directory::secret;
use ptt_tests::{Client as RawClient, PATIENCE};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::process::Pttd;

/// Voice frames each library listener hears before the signal: the burst
/// is well under way.
pub(crate) const HEARD_BEFORE_SIGTERM: u32 = 25;

/// Frames the talker has (5 s of speech): far more than the test needs
/// before the signal, so the burst is always in flight when it comes.
const SPEECH_FRAMES: usize = 250;

/// Logs `id` in with the client library, reconnecting off (a relay that
/// went away should leave it disconnected, not retrying).
async fn connect(relay: &Pttd, id: u32) -> anyhow::Result<Terminal> {
    let mut config = ClientConfig::new(
        relay.addr,
        Trust::Pinned(relay.cert.clone()),
        id,
        secret(id),
    );
    config.reconnect.enabled = false;
    Terminal::connect(config)
        .await
        .with_context(|| format!("login of terminal {id}"))
}

/// What one library terminal went through.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Who.
    pub(crate) terminal: u32,
    /// Voice frames heard.
    pub(crate) frames: u32,
    /// The `GoingAway`'s reason and reconnect hint, if one came.
    pub(crate) going_away: Option<(pb::GoingAwayReason, Duration)>,
    /// The connection was closed after the `GoingAway` had come.
    pub(crate) disconnected_after_going_away: bool,
    /// Why the library says it was disconnected.
    pub(crate) disconnected: Option<String>,
}

/// A library terminal whose events are followed from its login until it is
/// disconnected.
pub(crate) struct Followed {
    terminal: Terminal,
    enough: Option<oneshot::Receiver<()>>,
    seen: JoinHandle<Seen>,
}

impl Followed {
    /// Logs `id` in and starts following it.
    pub(crate) async fn connect(relay: &Pttd, id: u32) -> anyhow::Result<Self> {
        let terminal = connect(relay, id).await?;
        let mut events = terminal.events();
        let (enough_tx, enough) = oneshot::channel();
        let seen = tokio::spawn(async move {
            let mut seen = Seen {
                terminal: id,
                ..Seen::default()
            };
            let mut enough_tx = Some(enough_tx);
            while let Some(event) = events.recv().await {
                match event {
                    Event::Voice(_) => {
                        seen.frames += 1;
                        if seen.frames >= HEARD_BEFORE_SIGTERM
                            && let Some(tx) = enough_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Event::GoingAway {
                        reason,
                        reconnect_after,
                        ..
                    } => seen.going_away = Some((reason, reconnect_after)),
                    Event::Disconnected { reason, .. } => {
                        seen.disconnected_after_going_away = seen.going_away.is_some();
                        seen.disconnected = Some(reason);
                        break;
                    }
                    _ => {}
                }
            }
            seen
        });
        Ok(Self {
            terminal,
            enough: Some(enough),
            seen,
        })
    }

    /// The library's handle.
    pub(crate) fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// Waits until it has heard [`HEARD_BEFORE_SIGTERM`] frames.
    pub(crate) async fn heard_enough(&mut self) -> anyhow::Result<()> {
        let id = self.terminal.terminal_id();
        let enough = self.enough.take().context("asked twice")?;
        tokio::time::timeout(PATIENCE, enough)
            .await
            .with_context(|| format!("terminal {id} did not hear the talker"))?
            .with_context(|| format!("terminal {id} was disconnected first"))
    }

    /// What it went through, once it has been disconnected.
    pub(crate) async fn outcome(self) -> anyhow::Result<Seen> {
        let id = self.terminal.terminal_id();
        let seen = tokio::time::timeout(PATIENCE, self.seen)
            .await
            .with_context(|| format!("terminal {id} was never disconnected"))??;
        drop(self.terminal);
        Ok(seen)
    }
}

/// A terminal on the raw client: it reads the control stream and the
/// connection's close as they are.
pub(crate) struct RawListener(RawClient);

impl RawListener {
    /// Logs `id` in.
    pub(crate) async fn connect(relay: &Pttd, id: u32) -> anyhow::Result<Self> {
        Ok(Self(RawClient::connect(relay.addr, &relay.cert, id).await?))
    }

    /// Its terminal id.
    pub(crate) fn terminal(&self) -> u32 {
        self.0.terminal
    }

    /// Waits for a voice datagram from `talker`.
    pub(crate) async fn hears(&self, talker: u32) -> anyhow::Result<()> {
        let voice = self
            .0
            .recv_voice(PATIENCE)
            .await
            .with_context(|| format!("terminal {} heard nothing", self.0.terminal))?;
        anyhow::ensure!(voice.header.talker_id == talker, "{:?}", voice.header);
        Ok(())
    }

    /// The `GoingAway` on the control stream, then the application code the
    /// connection was closed with.
    pub(crate) async fn going_away_and_close(mut self) -> anyhow::Result<(pb::GoingAway, u64)> {
        self.0.going_away_and_close().await
    }
}

/// A talker pushing real Opus frames at 50 a second until its talk ends.
pub(crate) struct Burst {
    burst: u32,
    pushed: Arc<AtomicU64>,
    task: JoinHandle<TalkEnd>,
}

impl Burst {
    /// Presses in `group`, waits for the grant and starts talking.
    pub(crate) async fn start(terminal: &Terminal, group: u32) -> anyhow::Result<Self> {
        let frames = tokio::task::spawn_blocking(speech).await??;
        let talk = terminal.press(group, pb::Priority::Normal, pb::FloorKind::Normal);
        let grant = tokio::time::timeout(PATIENCE, talk.granted())
            .await
            .context("no answer to the press")??;
        let pushed = Arc::new(AtomicU64::new(0));
        let counter = pushed.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(20));
            for frame in frames {
                ticks.tick().await;
                match talk.push_frame(frame) {
                    Ok(()) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TalkError::Ended(end)) => return end,
                    // A full buffer drops this frame; the next may fit.
                    Err(_) => {}
                }
            }
            // Out of speech before the talk ended: the test's budget is wrong.
            match tokio::time::timeout(PATIENCE, talk.ended()).await {
                Ok(end) => end,
                Err(_) => TalkEnd::Released,
            }
        });
        Ok(Self {
            burst: grant.burst,
            pushed,
            task,
        })
    }

    /// Frames pushed so far.
    pub(crate) fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// The burst id, the frames pushed and how the talk ended.
    pub(crate) async fn finish(self) -> anyhow::Result<(u32, u64, TalkEnd)> {
        let end = tokio::time::timeout(PATIENCE, self.task)
            .await
            .context("the talk did not end")??;
        Ok((self.burst, self.pushed.load(Ordering::Relaxed), end))
    }
}

/// [`SPEECH_FRAMES`] real Opus packets of speech-like audio, 20 ms each.
fn speech() -> anyhow::Result<Vec<Bytes>> {
    let pcm = signal::speech_like(SPEECH_FRAMES as f32 * 0.02, 7);
    let mut encoder = Backend::OpusRs.encoder(CodecConfig::default())?;
    let mut out = [0u8; MAX_PACKET_LEN];
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let len = encoder.encode(frame, &mut out)?;
            Ok(Bytes::copy_from_slice(&out[..len]))
        })
        .collect()
}

/// Connects from `endpoint` and says `Hello` as `terminal` with `secret`
/// and resumption credential `token` (either may be empty). Returns the
/// connection (dropping it ends the session) and the relay's answer.
pub(crate) async fn hello(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    terminal: u32,
    secret: &[u8],
    token: &[u8],
) -> anyhow::Result<(quinn::Connection, Result<pb::HelloOk, pb::Error>)> {
    let conn = endpoint
        .connect(addr, "localhost")?
        .await
        .context("QUIC handshake")?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let frame = framing::encode_to_bytes(&pb::ClientMessage {
        request_id: 1,
        body: Some(Request::Hello(pb::Hello {
            protocol_version: 1,
            terminal_id: terminal,
            secret: Bytes::copy_from_slice(secret),
            client_version: "pttd_binary".into(),
            capabilities: Some(pb::Capabilities {
                datagrams: true,
                ..Default::default()
            }),
            resume_token: Bytes::copy_from_slice(token),
        })),
    })?;
    send.write_all(&frame).await?;
    let mut decoder = Decoder::new();
    let answer = tokio::time::timeout(PATIENCE, async {
        loop {
            while let Some(message) = decoder.decode::<pb::ServerMessage>()? {
                if message.request_id == 1 {
                    return anyhow::Ok(message.body);
                }
            }
            match recv.read_chunk(framing::MAX_MESSAGE_SIZE, true).await? {
                Some(chunk) => decoder.extend(&chunk.bytes),
                None => bail!("control stream ended before the hello answer"),
            }
        }
    })
    .await
    .context("no answer to hello")??;
    match answer {
        Some(Body::HelloOk(ok)) => Ok((conn, Ok(ok))),
        Some(Body::Error(error)) => Ok((conn, Err(error))),
        other => bail!("unexpected answer to hello: {other:?}"),
    }
}
