//! A new connection's handshake: the control stream is accepted, the first
//! message must be a `Hello` of the protocol this relay speaks (both before
//! the connection's admission deadline, `hello-timeout`), and the terminal is
//! authenticated before its session may start: disabled terminals refused,
//! then a resumption credential checked without argon2, or else the secret
//! verified in the bounded hashing pool, rate-limited per (address, terminal)
//! (proto/voice.md §2.1); then a session slot is taken.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_proto::framing::Decoder;
use ptt_proto::pb::{self, client_message};
use ptt_proto::voice::HEADER_LEN;
use tokio::sync::mpsc;

use crate::admission::Ticket;
use crate::auth::pool::PoolError;
use crate::carrier::{Carrier, ControlRecv, ControlSend};
use crate::link::{self, Link, Outbound, VoiceOut, VoiceRoute};
use crate::session::context::SessionContext;
use crate::session::disable::DISABLED;
use crate::session::read::read_message;
use crate::stream_out::{StreamWriter, stream_feed};
use crate::wire;
use ptt_calllog::{AuthFailureRecord, Record};
use ptt_directory::TerminalId;

/// The protocol version this relay speaks (proto/ptt.proto).
const PROTOCOL_VERSION: u32 = 1;

/// The control stream's two halves and the decoder holding any bytes read
/// past the `Hello`.
pub(super) struct ControlStreams {
    pub(super) send: ControlSend,
    pub(super) recv: ControlRecv,
    pub(super) decoder: Decoder,
}

/// What a successful handshake hands the session.
pub(super) struct Handshake {
    /// The terminal's link, as groups and the fan-out see it.
    pub(super) link: Arc<Link>,
    /// The control stream.
    pub(super) streams: ControlStreams,
    /// The control frames to write, queued by the link.
    pub(super) outbound: mpsc::Receiver<Outbound>,
    /// The writer of the terminal's voice streams, if voice reaches it on
    /// streams (voice.md §4) rather than datagrams.
    pub(super) voice_writer: Option<StreamWriter>,
    /// The `Hello`'s request id, for `HelloOk`.
    pub(super) hello_id: u64,
}

/// Why a connection was closed before its session started, with the close
/// code (proto/voice.md §1) that tells the client whether to retry.
pub(super) struct Refusal {
    pub(super) code: u32,
    pub(super) why: &'static str,
}

impl Refusal {
    /// The client broke the protocol.
    fn protocol(why: &'static str) -> Self {
        Self {
            code: link::CLOSE_PROTOCOL,
            why,
        }
    }

    /// The terminal could not be authenticated.
    fn auth(why: &'static str) -> Self {
        Self {
            code: link::CLOSE_AUTH,
            why,
        }
    }

    /// The relay is going away (or the peer went): the client may retry.
    pub(super) fn going_away(why: &'static str) -> Self {
        Self {
            code: link::CLOSE_GOING_AWAY,
            why,
        }
    }
}

/// Accepts the control stream, reads `Hello` and authenticates it; the
/// control stream and `Hello` must come before `ticket`'s deadline, and the
/// authenticated terminal takes a session slot on `ticket`. Its link is
/// served voice by `shard`, the shard the connection lives on.
pub(super) async fn handshake(
    shared: &SessionContext,
    carrier: &Carrier,
    shard: u8,
    remote: SocketAddr,
    ticket: &mut Ticket,
) -> Result<Handshake, Refusal> {
    let deadline = ticket.deadline();
    let (mut send, mut recv) = tokio::time::timeout_at(deadline, carrier.accept_control())
        .await
        .map_err(|_| {
            ticket.hello_timed_out();
            Refusal::protocol("no control stream in time")
        })?
        .ok_or_else(|| Refusal::going_away("connection lost before the control stream"))?;
    let conn = carrier.connection();
    let mut decoder = Decoder::new();
    let first = tokio::time::timeout_at(deadline, read_message(&mut recv, &mut decoder))
        .await
        .map_err(|_| {
            ticket.hello_timed_out();
            Refusal::protocol("no hello in time")
        })?;
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

    let client_limit = hello
        .capabilities
        .as_ref()
        .map_or(0, |capabilities| capabilities.max_datagram_size);
    // A `Hello` without capabilities is taken to want datagrams. Without
    // them (the client's choice, or a QUIC stack or path that carries none)
    // voice flows on streams (voice.md §4), limited like datagrams.
    let wants_datagrams = hello.capabilities.as_ref().is_none_or(|c| c.datagrams);
    let path_limit = carrier.max_datagram_size().filter(|_| wants_datagrams);
    let on_streams = path_limit.is_none();
    let path_limit = path_limit.unwrap_or(crate::quic::MAX_DATAGRAM);
    let Some(max_datagram) = datagram_limit(path_limit, client_limit) else {
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::Malformed,
            "Capabilities.max_datagram_size leaves no room for a voice frame (24-byte header)",
        )
        .await;
        return Err(Refusal::protocol("datagram limit below a voice header"));
    };
    let now = Instant::now();
    let terminal = hello.terminal_id;
    let presented = !hello.resume_token.is_empty();
    let resumed = presented && resumption_accepted(shared, &hello.resume_token, terminal, remote);
    if !resumed {
        if presented && hello.secret.is_empty() {
            // voice.md §2.1: the client forgets the credential and logs in
            // with its secret; nothing was hashed, so nothing is counted
            // against the address.
            refuse(
                &mut send,
                request_id,
                pb::ErrorReason::AuthFailed,
                RESUMPTION_REFUSED,
            )
            .await;
            return Err(Refusal::auth(RESUMPTION_REFUSED));
        }
        verify_secret(
            shared,
            &mut send,
            request_id,
            remote,
            terminal,
            hello.secret,
        )
        .await?;
    }
    // Authenticated. A terminal an administrator disabled is told so now and
    // only now: whoever does not know its secret learns nothing about it (a
    // wrong secret is AUTH_FAILED, as for any terminal). Counted apart from
    // failures; logged (call log and warning) once a minute per terminal.
    if shared.roster.is_disabled(TerminalId(terminal)) {
        shared.metrics.auth_disabled.inc();
        if shared.roster.note_refused_login(TerminalId(terminal), now) {
            shared.log.log(Record::AuthFailure(AuthFailureRecord {
                terminal: Some(TerminalId(terminal)),
                source: remote,
                at_ms: shared.unix_ms(),
            }));
            tracing::warn!(terminal, "login of a disabled terminal refused");
        }
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::TerminalDisabled,
            DISABLED,
        )
        .await;
        return Err(Refusal::auth(DISABLED));
    }
    if resumed {
        shared.metrics.auth_resumed.inc();
    }
    // Authenticated: the unauthenticated slot is traded for one of the
    // `max-connections` session slots (a terminal replacing its own older
    // session always gets one).
    if !ticket.authenticate(shared.online.contains(terminal)) {
        refuse(
            &mut send,
            request_id,
            pb::ErrorReason::Internal,
            "the relay is full; retry later",
        )
        .await;
        return Err(Refusal::going_away("max-connections reached"));
    }

    let (voice_out, voice_writer) = match carrier {
        Carrier::Terminal(_) if on_streams => {
            let (feed, writer) = stream_feed(conn.clone(), shared.metrics.clone());
            (VoiceOut::Streams(feed), Some(writer))
        }
        Carrier::Terminal(_) => (VoiceOut::Datagrams, None),
        // A browser's voice streams would need WebTransport's stream
        // headers; its datagrams are never missing (the page asks for them).
        Carrier::Browser(session) => (VoiceOut::Browser(session.clone()), None),
    };
    let (link, outbound) = Link::new(
        terminal,
        Arc::from(shared.directory.name_of(TerminalId(terminal))),
        shared.online.next_session(),
        VoiceRoute {
            carrier: carrier.clone(),
            shard,
            max_datagram,
            voice_out,
        },
        shared.metrics.clone(),
    );
    Ok(Handshake {
        link,
        streams: ControlStreams {
            send,
            recv,
            decoder,
        },
        outbound,
        voice_writer,
        hello_id: request_id,
    })
}

/// The largest voice datagram either side may send on a connection
/// (`HelloOk.max_datagram_size`): the smallest of the relay's limit
/// (voice.md §3.2), the QUIC path's (`path`) and the client's own
/// (`client`, 0 for none). `None` if the client's leaves no room for a
/// voice header and one byte of Opus.
fn datagram_limit(path: usize, client: u32) -> Option<usize> {
    let relay = crate::quic::MAX_DATAGRAM.min(path);
    let limit = match usize::try_from(client) {
        Ok(0) | Err(_) => relay,
        Ok(client) => relay.min(client),
    };
    (limit > HEADER_LEN).then_some(limit)
}

/// What a terminal whose resumption credential was refused is told.
const RESUMPTION_REFUSED: &str = "resumption credential refused; log in with the secret";

/// Checks a resumption credential (no argon2): genuine, unexpired, this
/// terminal's, and the terminal still in the directory. Refusals are counted
/// by kind; one that was never valid (altered, forged) is logged as an
/// authentication failure.
fn resumption_accepted(
    shared: &SessionContext,
    token: &[u8],
    terminal: u32,
    remote: SocketAddr,
) -> bool {
    let now_ms = shared.clock.unix_us_now() / 1000;
    let checked = shared.auth.resumption.check(token, terminal, now_ms);
    match checked {
        // Counted as a resumed login once the terminal is let in.
        Ok(()) if shared.directory.terminal(TerminalId(terminal)).is_some() => true,
        Ok(()) => {
            shared.metrics.auth_resume_stale.inc();
            false
        }
        Err(refusal) if refusal.is_stale() => {
            shared.metrics.auth_resume_stale.inc();
            tracing::debug!(terminal, %refusal, "resumption credential refused");
            false
        }
        Err(refusal) => {
            shared.metrics.auth_resume_invalid.inc();
            shared.log.log(Record::AuthFailure(AuthFailureRecord {
                terminal: Some(TerminalId(terminal)),
                source: remote,
                at_ms: shared.unix_ms(),
            }));
            tracing::warn!(terminal, %refusal, "invalid resumption credential");
            false
        }
    }
}

/// Checks the terminal's secret: its place in the limiter is reserved first
/// (an attempt in flight counts against the (address, terminal) pair until it
/// succeeds), then argon2 runs in the bounded pool. A failure is counted and
/// logged, and answered late while failures across the relay exceed their
/// budget.
async fn verify_secret(
    shared: &SessionContext,
    send: &mut ControlSend,
    request_id: u64,
    remote: SocketAddr,
    terminal: u32,
    secret: Bytes,
) -> Result<(), Refusal> {
    let Ok(attempt) = shared
        .auth
        .limiter
        .try_reserve(remote.ip(), terminal, Instant::now())
    else {
        shared.metrics.auth_rate_limited.inc();
        refuse(
            send,
            request_id,
            pb::ErrorReason::RateLimited,
            "too many failed attempts; wait a minute",
        )
        .await;
        return Err(Refusal::auth("authentication rate-limited"));
    };
    let verified = match shared
        .auth
        .verify_secret(&shared.directory, terminal, secret)
        .await
    {
        Ok(verified) => verified,
        Err(PoolError::Busy) => {
            // Undecided: the attempt frees its place uncounted.
            drop(attempt);
            refuse(
                send,
                request_id,
                pb::ErrorReason::RateLimited,
                "the relay is busy verifying logins; retry shortly",
            )
            .await;
            return Err(Refusal::auth("authentication rate-limited: relay busy"));
        }
        Err(PoolError::Failed) => false,
    };
    if verified {
        attempt.succeeded();
        return Ok(());
    }
    let slow_down = attempt.failed(Instant::now());
    shared.metrics.auth_failures.inc();
    shared.log.log(Record::AuthFailure(AuthFailureRecord {
        terminal: Some(TerminalId(terminal)),
        source: remote,
        at_ms: shared.unix_ms(),
    }));
    tracing::warn!(terminal, "authentication failed");
    if slow_down {
        shared.metrics.auth_slowed.inc();
        tokio::time::sleep(shared.auth.failure_delay()).await;
    }
    refuse(
        send,
        request_id,
        pb::ErrorReason::AuthFailed,
        "unknown terminal or wrong secret",
    )
    .await;
    Err(Refusal::auth("authentication failed"))
}

/// Answers a refused handshake with an `Error` and finishes the stream so the
/// terminal reads the reason before the connection closes.
async fn refuse(send: &mut ControlSend, request_id: u64, reason: pb::ErrorReason, detail: &str) {
    let frame = link::frame(request_id, wire::error(reason, detail));
    send.write_all(&frame).await;
    send.finish();
    // Give the frame a moment to leave before the connection is closed.
    let _ = tokio::time::timeout(Duration::from_millis(200), send.stopped()).await;
}
