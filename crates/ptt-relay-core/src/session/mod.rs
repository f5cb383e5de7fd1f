//! One terminal's connection: handshake and authentication, then three
//! tasks — control requests in, control messages out, voice datagrams in —
//! until the connection ends, when the terminal leaves its groups.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message, server_message::Body};
use quinn::{RecvStream, SendStream};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::fanout;
use crate::link::{self, Link};
use crate::wire;
use context::SessionContext;
use ptt_calllog::{AuthFailureRecord, Record, SessionEvent, SessionRecord};
use ptt_directory::TerminalId;

pub mod context;
mod control;

/// How long a new connection may take to open its control stream and say
/// `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocol version this relay speaks (proto/ptt.proto).
const PROTOCOL_VERSION: u32 = 1;

/// Serves one incoming connection to its end. Errors are logged, never
/// propagated: one terminal's trouble is not the relay's.
pub async fn serve(shared: Arc<SessionContext>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let span = tracing::info_span!("conn", %remote, terminal = tracing::field::Empty);
    async move {
        let conn = match incoming.await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::debug!(%error, "handshake failed");
                return;
            }
        };
        let result = tokio::select! {
            result = handshake(&shared, &conn, remote) => result,
            () = shared.shutdown.cancelled() => Err(Refusal::going_away("relay shutting down")),
        };
        match result {
            Ok((link, streams, outbound, hello_id)) => {
                tracing::Span::current().record("terminal", link.terminal);
                run(shared, link, streams, outbound, hello_id).await;
            }
            Err(Refusal { code, why }) => {
                tracing::info!(why, "connection refused");
                conn.close(code.into(), why.as_bytes());
            }
        }
    }
    .instrument(span)
    .await
}

/// The control stream's two halves and the decoder holding any bytes read
/// past the `Hello`.
struct ControlStreams {
    send: SendStream,
    recv: RecvStream,
    decoder: Decoder,
}

type Handshake = (Arc<Link>, ControlStreams, mpsc::Receiver<Bytes>, u64);

/// Why a connection was closed before its session started, with the close
/// code (proto/voice.md §1) that tells the client whether to retry.
struct Refusal {
    code: u32,
    why: &'static str,
}

impl Refusal {
    fn protocol(why: &'static str) -> Self {
        Self {
            code: link::CLOSE_PROTOCOL,
            why,
        }
    }

    fn auth(why: &'static str) -> Self {
        Self {
            code: link::CLOSE_AUTH,
            why,
        }
    }

    fn going_away(why: &'static str) -> Self {
        Self {
            code: link::CLOSE_GOING_AWAY,
            why,
        }
    }
}

/// Accepts the control stream, reads `Hello` and authenticates it.
async fn handshake(
    shared: &SessionContext,
    conn: &quinn::Connection,
    remote: SocketAddr,
) -> Result<Handshake, Refusal> {
    let (mut send, mut recv) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| Refusal::protocol("no control stream in time"))?
        .map_err(|_| Refusal::going_away("connection lost before the control stream"))?;
    let mut decoder = Decoder::new();
    let first = tokio::time::timeout(HELLO_TIMEOUT, read_message(&mut recv, &mut decoder))
        .await
        .map_err(|_| Refusal::protocol("no hello in time"))?;
    let message = match first {
        Ok(Some(message)) => message,
        Ok(None) => return Err(Refusal::protocol("control stream closed before hello")),
        Err(error) => {
            refuse(&mut send, 0, error.reason(), "malformed first message").await;
            return Err(Refusal::protocol("malformed first message"));
        }
    };
    let request_id = message.request_id;
    let Some(client_message::Body::Hello(hello)) = message.body else {
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::NotAuthenticated,
            "say hello first",
        )
        .await;
        return Err(Refusal::protocol("first message was not hello"));
    };
    if hello.protocol_version != PROTOCOL_VERSION {
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::UnsupportedVersion,
            "protocol version 1 only",
        )
        .await;
        return Err(Refusal::protocol("unsupported protocol version"));
    }

    if conn.max_datagram_size().is_none() {
        // voice.md §4's stream fallback is not served yet: say so plainly
        // instead of accepting a terminal that could neither talk nor hear.
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::UnsupportedRequest,
            "this relay needs QUIC datagrams (RFC 9221); the voice stream fallback is not served",
        )
        .await;
        return Err(Refusal::protocol("peer without datagram support"));
    }
    let now = Instant::now();
    if !shared.auth_limiter.allows(remote.ip(), now) {
        shared.metrics.auth_rate_limited.inc();
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::RateLimited,
            "too many failed attempts; wait a minute",
        )
        .await;
        return Err(Refusal::auth("authentication rate-limited"));
    }
    let terminal = hello.terminal_id;
    if shared.roster.is_disabled(TerminalId(terminal)) {
        // Refused before the secret is hashed: a disabled terminal retrying
        // costs no password hash. Which ids are disabled is no secret (the
        // answer says so only to whoever names the id), so the secret need
        // not be right to learn it. Not counted against the address either:
        // a disabled terminal retrying must not lock out its neighbours
        // behind one NAT. Logged (call log and warning) once a minute per
        // terminal at most; every refusal is counted.
        shared.metrics.auth_failures.inc();
        if shared.roster.note_refused_login(TerminalId(terminal), now) {
            shared.log.log(Record::AuthFailure(AuthFailureRecord {
                terminal: Some(TerminalId(terminal)),
                source: remote,
                at_ms: unix_ms(shared),
            }));
            tracing::warn!(terminal, "login of a disabled terminal refused");
        }
        refuse(&mut send, request_id, pb::ErrorReason::AuthFailed, DISABLED).await;
        return Err(Refusal::auth(DISABLED));
    }
    let directory = shared.directory.clone();
    let secret = hello.secret;
    let verified =
        tokio::task::spawn_blocking(move || directory.verify_secret(TerminalId(terminal), &secret))
            .await
            .unwrap_or(false);
    if !verified {
        // Counted after the check: reserving before it would refuse a burst
        // of good logins from one address (a depot NAT, the load generator).
        shared.auth_limiter.record_failure(remote.ip(), now);
        shared.metrics.auth_failures.inc();
        shared.log.log(Record::AuthFailure(AuthFailureRecord {
            terminal: Some(TerminalId(terminal)),
            source: remote,
            at_ms: unix_ms(shared),
        }));
        tracing::warn!(terminal, "authentication failed");
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::AuthFailed,
            "unknown terminal or wrong secret",
        )
        .await;
        return Err(Refusal::auth("authentication failed"));
    }

    let (link, outbound) = Link::new(
        terminal,
        Arc::from(shared.directory.name_of(TerminalId(terminal))),
        shared.online.next_session(),
        conn.clone(),
        shared.metrics.clone(),
    );
    Ok((
        link,
        ControlStreams {
            send,
            recv,
            decoder,
        },
        outbound,
        request_id,
    ))
}

/// Answers a refused handshake with an `Error` and finishes the stream so the
/// terminal reads the reason before the connection closes.
async fn refuse(send: &mut SendStream, request_id: u64, reason: pb::ErrorReason, detail: &str) {
    let frame = link::frame(request_id, wire::error(reason, detail));
    let _ = send.write_all(&frame).await;
    let _ = send.finish();
    // Give the frame a moment to leave before the connection is closed.
    let _ = tokio::time::timeout(Duration::from_millis(200), send.stopped()).await;
}

/// Runs an authenticated session to its end.
async fn run(
    shared: Arc<SessionContext>,
    link: Arc<Link>,
    streams: ControlStreams,
    outbound: mpsc::Receiver<Bytes>,
    hello_id: u64,
) {
    let ControlStreams {
        send,
        recv,
        decoder,
    } = streams;
    shared.metrics.sessions_opened.inc();
    if let Some(previous) = shared.online.insert(link.clone()) {
        tracing::info!(
            previous = previous.session,
            "replacing the terminal's older session"
        );
        previous.send(
            0,
            Body::GoingAway(pb::GoingAway {
                reason: pb::GoingAwayReason::SessionReplaced.into(),
                reconnect_after_ms: 0,
                detail: "another connection logged in as this terminal".into(),
            }),
        );
        previous
            .conn
            .close(link::CLOSE_REPLACED.into(), b"session replaced");
    }
    // Checked again now that the session is findable: an administrator who
    // disabled the terminal during the handshake either closes this session
    // or is seen here.
    if shared.roster.is_disabled(TerminalId(link.terminal)) {
        disconnect_disabled(&link);
    }
    shared.log.log(Record::Session(SessionRecord {
        terminal: TerminalId(link.terminal),
        event: SessionEvent::Connected,
        at_ms: unix_ms(&shared),
    }));
    tracing::info!(session = link.session, "terminal online");

    let writer = tokio::spawn(write_control(send, outbound).in_current_span());
    let voice = tokio::spawn(receive_voice(shared.clone(), link.clone()).in_current_span());

    let mut session = control::Session::new(shared.clone(), link.clone());
    session.start(hello_id).await;
    session.serve(recv, decoder).await;
    voice.abort();
    let still_current = shared.online.remove_if_current(&link);
    // A replaced session leaves its groups quietly: its successor is online.
    session.finish(still_current).await;
    if still_current {
        shared.log.log(Record::Session(SessionRecord {
            terminal: TerminalId(link.terminal),
            event: SessionEvent::Disconnected,
            at_ms: unix_ms(&shared),
        }));
    }
    // The writer ends once every sender of the link is gone or the
    // connection closes; give it a moment to flush a final GoingAway.
    drop(link);
    let _ = tokio::time::timeout(Duration::from_millis(500), writer).await;
    tracing::info!("terminal offline");
}

/// What a disabled terminal is told, at login and when its session is closed.
pub(crate) const DISABLED: &str = "terminal disabled by an administrator";

/// Ends the session of a terminal an administrator disabled: `GoingAway`
/// with AUTH_REVOKED (the client must not reconnect), then, a moment later so
/// that message can leave, the connection is closed with
/// [`link::CLOSE_DISABLED`] and the reason. Returns at once.
pub fn disconnect_disabled(link: &Arc<Link>) {
    link.send(
        0,
        Body::GoingAway(pb::GoingAway {
            reason: pb::GoingAwayReason::AuthRevoked.into(),
            reconnect_after_ms: 0,
            detail: DISABLED.into(),
        }),
    );
    let link = link.clone();
    tokio::spawn(async move {
        tokio::time::sleep(DISABLED_GRACE).await;
        link.conn
            .close(link::CLOSE_DISABLED.into(), DISABLED.as_bytes());
    });
}

/// How long a disabled terminal's `GoingAway` has to reach it before its
/// connection is closed (well inside the second the issue allows).
const DISABLED_GRACE: Duration = Duration::from_millis(50);

/// Writes queued control frames to the stream, in order.
async fn write_control(mut send: SendStream, mut outbound: mpsc::Receiver<Bytes>) {
    while let Some(frame) = outbound.recv().await {
        if send.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

/// Forwards the terminal's voice datagrams until the connection ends.
async fn receive_voice(shared: Arc<SessionContext>, link: Arc<Link>) {
    while let Ok(datagram) = link.conn.read_datagram().await {
        shared.metrics.datagrams_in.inc();
        if let Err(reason) = fanout::forward(&shared.fanout, &link, datagram) {
            shared.metrics.count_drop(reason);
            tracing::trace!(%reason, "datagram dropped");
        }
    }
}

/// Why a control message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadError {
    /// A complete frame that is not a valid `ClientMessage`; the stream is
    /// still in step, so the session may go on.
    Malformed,
    /// The framing itself is broken (oversized or garbled length): the
    /// stream cannot be resynchronised and the terminal is cut off.
    Broken(pb::ErrorReason),
}

impl ReadError {
    fn reason(self) -> pb::ErrorReason {
        match self {
            ReadError::Malformed => pb::ErrorReason::Malformed,
            ReadError::Broken(reason) => reason,
        }
    }
}

/// Reads the next complete control message; `Ok(None)` when the stream ended.
async fn read_message(
    recv: &mut RecvStream,
    decoder: &mut Decoder,
) -> Result<Option<pb::ClientMessage>, ReadError> {
    loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => {
                return <pb::ClientMessage as ptt_proto::prost::Message>::decode(frame)
                    .map(Some)
                    .map_err(|_| ReadError::Malformed);
            }
            Ok(None) => {}
            Err(framing::DecodeError::TooLarge { .. }) => {
                return Err(ReadError::Broken(pb::ErrorReason::MessageTooLarge));
            }
            Err(_) => return Err(ReadError::Broken(pb::ErrorReason::Malformed)),
        }
        match recv.read_chunk(framing::MAX_MESSAGE_SIZE, true).await {
            Ok(Some(chunk)) => decoder.extend(&chunk.bytes),
            Ok(None) | Err(_) => return Ok(None),
        }
    }
}

fn unix_ms(shared: &SessionContext) -> i64 {
    i64::try_from(shared.clock.unix_us_now() / 1000).unwrap_or(i64::MAX)
}
