//! Garbage, as a broken or hostile terminal sends it: random datagrams on a
//! logged-in connection (1 % of all datagrams the fleet sends, counted
//! against the fleet's voice frames), and now and then garbage on the
//! control stream — random protobuf bodies in valid frames on that session,
//! or random bytes instead of a `Hello` on a fresh connection.
//!
//! It speaks raw QUIC (quinn + rustls, the relay's certificate pinned as the
//! only root) because the client library never sends anything malformed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::fleet::Fleet;

/// The demo volunteer the garbage session logs in as (not in the fleet).
pub(crate) const GARBAGE_TERMINAL: u32 = 512;

/// Garbage datagrams per datagram sent, as a ratio of the fleet's voice
/// frames: 1 in 100 datagrams is garbage.
const GARBAGE_PER_VOICE: f64 = 1.0 / 99.0;

/// A raw logged-in session: its connection and control stream's send half.
struct Session {
    conn: quinn::Connection,
    send: quinn::SendStream,
    _endpoint: quinn::Endpoint,
}

/// Logs in as [`GARBAGE_TERMINAL`] and keeps reading (and discarding) what
/// the relay sends, as a terminal must.
async fn login(server: SocketAddr, cert: &Path) -> anyhow::Result<Session> {
    let endpoint = ptt_tests::client::endpoint(cert)?;
    let conn = endpoint.connect(server, "localhost")?.await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let hello = framing::encode_to_bytes(&pb::ClientMessage {
        request_id: 1,
        body: Some(Request::Hello(pb::Hello {
            protocol_version: 1,
            terminal_id: GARBAGE_TERMINAL,
            secret: Bytes::from(format!("demo-{GARBAGE_TERMINAL}")),
            client_version: "soak-garbage".into(),
            capabilities: Some(pb::Capabilities {
                datagrams: true,
                ..Default::default()
            }),
            resume_token: Bytes::new(),
        })),
    })?;
    send.write_all(&hello).await?;
    let mut decoder = Decoder::new();
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(message) = decoder.decode::<pb::ServerMessage>()? {
                if message.request_id == 1 {
                    return anyhow::Ok(message.body);
                }
                continue;
            }
            let chunk = recv
                .read_chunk(64 * 1024, true)
                .await?
                .context("control stream closed before HelloOk")?;
            decoder.extend(&chunk.bytes);
        }
    })
    .await
    .context("no answer to Hello")??;
    if !matches!(answer, Some(Body::HelloOk(_))) {
        bail!("garbage terminal refused: {answer:?}");
    }
    tokio::spawn(async move { while let Ok(Some(_)) = recv.read_chunk(64 * 1024, true).await {} });
    let drain = conn.clone();
    tokio::spawn(async move { while drain.read_datagram().await.is_ok() {} });
    Ok(Session {
        conn,
        send,
        _endpoint: endpoint,
    })
}

/// Random bytes, 1–160 of them; half start like a voice header (version 1,
/// kind 0) so the parser gets further than the first byte.
fn garbage_datagram(rng: &mut StdRng) -> Bytes {
    let len = rng.random_range(1..=160);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes[..]);
    if rng.random_bool(0.5) {
        bytes[0] = 0x10;
    }
    Bytes::from(bytes)
}

/// Three valid frames whose bodies are random bytes.
fn garbage_frames(rng: &mut StdRng) -> Bytes {
    let mut out = BytesMut::new();
    for _ in 0..3 {
        let len = rng.random_range(1..=127u8);
        let mut body = vec![0u8; usize::from(len)];
        rng.fill(&mut body[..]);
        out.put_u8(len); // a one-byte varint
        out.put_slice(&body);
    }
    out.freeze()
}

/// A fresh connection that sends random bytes instead of `Hello`; waits
/// (bounded) for the relay to close it. True if it did.
async fn garbage_hello(server: SocketAddr, cert: &Path, rng: &mut StdRng) -> anyhow::Result<bool> {
    let endpoint = ptt_tests::client::endpoint(cert)?;
    let conn = endpoint.connect(server, "localhost")?.await?;
    let (mut send, _recv) = conn.open_bi().await?;
    let mut bytes = vec![0u8; 64];
    rng.fill(&mut bytes[..]);
    send.write_all(&bytes).await?;
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .is_ok();
    conn.close(0u32.into(), b"bye");
    Ok(closed)
}

/// Sends garbage until `end`: datagrams at 1 % of the fleet's voice, and
/// every `control_every` a garbage control message (alternately on the
/// session and instead of a `Hello`).
pub(crate) async fn run(
    fleet: Arc<Fleet>,
    server: SocketAddr,
    cert: &Path,
    control_every: Duration,
    end: Instant,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let counts = &fleet.counts;
    let mut session: Option<Session> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_control = Instant::now() + control_every;
    let mut rounds = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        if session
            .as_ref()
            .is_none_or(|s| s.conn.close_reason().is_some())
        {
            if session.take().is_some() {
                counts
                    .garbage_sessions_closed
                    .fetch_add(1, Ordering::Relaxed);
            }
            match login(server, cert).await {
                Ok(s) => session = Some(s),
                Err(error) => {
                    counts
                        .garbage_login_failures
                        .fetch_add(1, Ordering::Relaxed);
                    eprintln!("soak: garbage terminal cannot log in: {error:#}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let Some(s) = session.as_mut() else { continue };
        let voice = counts.frames_sent.load(Ordering::Relaxed) as f64;
        let target = (voice * GARBAGE_PER_VOICE) as u64;
        while counts.garbage_datagrams.load(Ordering::Relaxed) < target {
            if s.conn.send_datagram(garbage_datagram(&mut rng)).is_err() {
                break;
            }
            counts.garbage_datagrams.fetch_add(1, Ordering::Relaxed);
        }
        if Instant::now() >= next_control {
            next_control += control_every;
            rounds += 1;
            if rounds % 2 == 1 {
                if s.send.write_all(&garbage_frames(&mut rng)).await.is_ok() {
                    counts.garbage_control.fetch_add(3, Ordering::Relaxed);
                }
            } else {
                match garbage_hello(server, cert, &mut rng).await {
                    Ok(closed) => {
                        counts.garbage_control.fetch_add(1, Ordering::Relaxed);
                        if !closed {
                            counts
                                .garbage_hello_not_closed
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(error) => eprintln!("soak: garbage hello: {error:#}"),
                }
            }
        }
    }
    if let Some(s) = session {
        s.conn.close(0u32.into(), b"bye");
    }
}
