//! One authenticated connection to the relay: the QUIC handshake, `Hello`
//! (with the latest login's resumption credential when there is one, else
//! with the secret), and the two reader tasks (control messages, voice
//! datagrams); the requests themselves go through its [`Link`].
//!
//! A [`Link`] lives as long as its QUIC connection; reconnecting makes a new
//! one. The control reader completes the request waiting for each answer;
//! messages with `request_id` 0 become events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_proto::voice::{Flags, HEADER_LEN, Kind, VoiceDatagram, VoiceHeader};
use ptt_proto::voice_stream::{MAX_RECORD_LEN, RecordReader, STREAM_ERROR_CODE};
use tokio::task::JoinHandle;

use crate::clock::unix_us;
use crate::config::{STALL_ANSWER, STALL_PROBE};
use crate::error::ClientError;
use crate::events::{Event, VoiceFrame, enum_or_default};
use crate::link::{HELLO_ID, Link};
use crate::shared::Shared;
use crate::{auto, tls};

/// Application close codes of voice.md §1.
pub(crate) const CLOSE_NORMAL: u32 = 0;
const CLOSE_AUTH: u64 = 2;
const CLOSE_REPLACED: u64 = 4;

/// Largest read from the control stream at once.
const READ_CHUNK: usize = framing::MAX_MESSAGE_SIZE;

/// How a connection ended, as far as reconnecting is concerned.
#[derive(Debug, Clone)]
pub(crate) struct SessionEnd {
    /// For the user.
    pub(crate) reason: String,
    /// The relay's `GoingAway`, if it sent one.
    pub(crate) going_away: Option<pb::GoingAway>,
    /// Why not to reconnect, if the session ended for good: the terminal
    /// was disabled, or another session took over.
    pub(crate) fatal: Option<ClientError>,
}

/// A freshly authenticated connection with its reader tasks running.
pub(crate) struct Established {
    pub(crate) link: Arc<Link>,
    /// Ends when the control stream ends; says how.
    pub(crate) reader: JoinHandle<SessionEnd>,
}

/// Connects, says `Hello` and starts the readers: with the latest
/// resumption credential if there is one (no secret hashed on the relay),
/// and again with the secret if the relay refuses the credential.
pub(crate) async fn establish(shared: &Arc<Shared>) -> Result<Established, ClientError> {
    let credential = shared.resume.get();
    let resuming = credential.is_some();
    match establish_with(shared, credential).await {
        Err(ClientError::AuthFailed) if resuming => {
            tracing::info!("resumption credential refused; logging in with the secret");
            shared.resume.forget();
            establish_with(shared, None).await
        }
        other => other,
    }
}

/// The first login: each configured relay in turn until one answers
/// (a relay of a cluster that is down must not keep the terminal off the
/// air); any other refusal ends it at once.
pub(crate) async fn establish_first_reachable(
    shared: &Arc<Shared>,
) -> Result<Established, ClientError> {
    let relays = 1 + shared.config.other_servers.len();
    let mut tried = 1;
    loop {
        match establish(shared).await {
            Err(error @ (ClientError::Unreachable { .. } | ClientError::Timeout))
                if tried < relays =>
            {
                tracing::info!(%error, "relay unreachable at login");
                shared.next_server();
                tried += 1;
            }
            other => return other,
        }
    }
}

/// Connects and logs in once, with `credential` instead of the secret if given.
async fn establish_with(
    shared: &Arc<Shared>,
    credential: Option<Bytes>,
) -> Result<Established, ClientError> {
    let config = &shared.config;
    let server = shared.server();
    let connecting = shared
        .endpoint
        .connect_with(shared.quic.clone(), server, &config.server_name)
        .map_err(|e| ClientError::Config(format!("cannot connect to {server}: {e}")))?;
    let conn = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => return Err(connection_error(shared, &error)),
        Err(_) => {
            return Err(ClientError::Unreachable {
                addr: server,
                detail: format!("no QUIC handshake within {:?}", config.connect_timeout),
            });
        }
    };
    match tokio::time::timeout(config.connect_timeout, hello(shared, &conn, credential)).await {
        Ok(Ok(established)) => Ok(established),
        Ok(Err(error)) => {
            conn.close(CLOSE_NORMAL.into(), b"login failed");
            Err(error)
        }
        Err(_) => {
            conn.close(CLOSE_NORMAL.into(), b"no hello answer");
            Err(ClientError::Timeout)
        }
    }
}

/// Opens the control stream, authenticates (with `credential` if given,
/// else the secret) and starts the readers; keeps the relay's fresh
/// credential.
async fn hello(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    credential: Option<Bytes>,
) -> Result<Established, ClientError> {
    let config = &shared.config;
    let (secret, resume_token) = match credential {
        Some(token) => (Bytes::new(), token),
        None => (Bytes::copy_from_slice(&config.secret), Bytes::new()),
    };
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| connection_error(shared, &e))?;
    let frame = framing::encode_to_bytes(&pb::ClientMessage {
        request_id: HELLO_ID,
        body: Some(Request::Hello(pb::Hello {
            protocol_version: crate::PROTOCOL_VERSION,
            terminal_id: config.terminal_id,
            secret,
            client_version: config.client_version.clone(),
            capabilities: Some(pb::Capabilities {
                datagrams: config.datagrams && conn.max_datagram_size().is_some(),
                max_datagram_size: 0,
                private_calls: true,
                location: true,
            }),
            resume_token,
        })),
    })
    .map_err(|e| ClientError::Config(format!("hello does not fit a frame: {e}")))?;
    if send.write_all(&frame).await.is_err() {
        return Err(closed_during_login(shared, conn));
    }
    let mut decoder = Decoder::new();
    let answer = loop {
        match decoder.decode::<pb::ServerMessage>() {
            Ok(Some(message)) if message.request_id == HELLO_ID => break message.body,
            Ok(Some(other)) => {
                tracing::debug!(?other, "message before the hello answer ignored");
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                return Err(ClientError::Protocol(format!("control stream: {error}")));
            }
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => decoder.extend(&chunk.bytes),
            Ok(None) | Err(_) => return Err(closed_during_login(shared, conn)),
        }
    };
    let mut hello = match answer {
        Some(Body::HelloOk(hello)) => hello,
        Some(Body::Error(error)) => return Err(ClientError::from_relay(&error, None)),
        other => {
            return Err(ClientError::Protocol(format!(
                "unexpected answer to hello: {other:?}"
            )));
        }
    };
    // Kept apart from the `HelloOk` the link holds, so it is never logged.
    shared.resume.keep(std::mem::take(&mut hello.resume_token));
    if !hello.datagrams {
        tracing::info!("voice on streams (voice.md §4): no QUIC datagrams on this connection");
    }
    tracing::info!(
        session = hello.session_id,
        server = %hello.server_version,
        terminal = hello.terminal_id,
        "logged in"
    );
    let link = Arc::new(Link::new(conn.clone(), hello, send, config.request_timeout));
    tokio::spawn(read_voice(shared.clone(), link.clone()));
    tokio::spawn(read_voice_streams(shared.clone(), link.clone()));
    if !shared.config.other_servers.is_empty() {
        tokio::spawn(watch_relay(link.clone()));
    }
    if link.hello.ping_interval_ms > 0 {
        let interval = Duration::from_millis(u64::from(link.hello.ping_interval_ms));
        tokio::spawn(keep_pinging(link.clone(), interval));
    }
    let reader = tokio::spawn(read_control(shared.clone(), link.clone(), recv, decoder));
    Ok(Established { link, reader })
}

/// The error for a connection that ended before `Hello` was answered: the
/// relay closes with code 2 and the reason when it refuses a login.
fn closed_during_login(shared: &Shared, conn: &quinn::Connection) -> ClientError {
    match conn.close_reason() {
        Some(error) => connection_error(shared, &error),
        None => ClientError::Protocol("control stream ended before the hello answer".into()),
    }
}

/// Maps a QUIC connection error to what the user can act on.
fn connection_error(shared: &Shared, error: &quinn::ConnectionError) -> ClientError {
    use quinn::ConnectionError as E;
    let addr = shared.server();
    match error {
        E::TransportError(e) if tls::is_certificate_alert(u64::from(e.code)) => {
            ClientError::CertificateNotTrusted(e.reason.clone())
        }
        E::ConnectionClosed(close) if u64::from(close.error_code) == 0x100 + 120 => {
            ClientError::Config("the server does not speak ptt/1 (ALPN refused)".into())
        }
        E::TransportError(e) => ClientError::Protocol(format!("QUIC: {e}")),
        E::ConnectionClosed(close) => ClientError::Unreachable {
            addr,
            detail: format!("connection refused: {close}"),
        },
        E::ApplicationClosed(close) if u64::from(close.error_code) == CLOSE_AUTH => {
            let reason = String::from_utf8_lossy(&close.reason);
            if reason.contains("rate") {
                ClientError::RateLimited
            } else if reason.contains("version") {
                ClientError::UnsupportedVersion(crate::PROTOCOL_VERSION)
            } else {
                ClientError::AuthFailed
            }
        }
        E::ApplicationClosed(close) => ClientError::Unreachable {
            addr,
            detail: format!("closed by the relay: {close}"),
        },
        E::TimedOut => ClientError::Unreachable {
            addr,
            detail: "timed out".into(),
        },
        E::Reset | E::VersionMismatch | E::CidsExhausted => ClientError::Unreachable {
            addr,
            detail: error.to_string(),
        },
        E::LocallyClosed => ClientError::Closed("the client closed the connection".into()),
    }
}

/// Reads control messages until the stream ends: answers complete their
/// requests, the rest become events.
async fn read_control(
    shared: Arc<Shared>,
    link: Arc<Link>,
    mut recv: quinn::RecvStream,
    mut decoder: Decoder,
) -> SessionEnd {
    let reason = 'read: loop {
        loop {
            match decoder.decode::<pb::ServerMessage>() {
                Ok(Some(message)) => dispatch(&shared, &link, message),
                Ok(None) => break,
                Err(framing::DecodeError::Protobuf(error)) => {
                    // The frame was consumed; the stream is still in step.
                    tracing::warn!(%error, "undecodable control message dropped");
                }
                Err(error) => {
                    link.conn
                        .close(1u32.into(), b"control stream framing broken");
                    break 'read Some(format!("control stream broken: {error}"));
                }
            }
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => decoder.extend(&chunk.bytes),
            Ok(None) => break None,
            Err(error) => break Some(error.to_string()),
        }
    };
    // Fail every request still waiting: its answer will never come.
    link.fail_pending();
    let going_away = link.going_away();
    let fatal = final_end(
        going_away.as_ref(),
        link.conn.close_reason().as_ref(),
        shared.config.terminal_id,
    );
    let reason = match (&fatal, &going_away, reason) {
        (Some(fatal), _, _) => fatal.to_string(),
        (None, Some(g), _) => format!(
            "relay going away ({:?}): {}",
            enum_or_default::<pb::GoingAwayReason>(g.reason),
            g.detail
        ),
        (None, None, Some(reason)) => reason,
        (None, None, None) => "the relay closed the control stream".to_owned(),
    };
    SessionEnd {
        reason,
        going_away,
        fatal,
    }
}

/// Whether a session that was logged in ended for good (voice.md §1): its
/// credentials revoked — `GoingAway` AUTH_REVOKED or close code 2, which
/// after login means an administrator disabled the terminal — or another
/// session of `terminal` took over (`GoingAway` SESSION_REPLACED or close
/// code 4). Either the message or the close is enough: the close can
/// overtake the `GoingAway` in flight.
fn final_end(
    going_away: Option<&pb::GoingAway>,
    close: Option<&quinn::ConnectionError>,
    terminal: u32,
) -> Option<ClientError> {
    let said = going_away.map(|g| enum_or_default::<pb::GoingAwayReason>(g.reason));
    let code = match close {
        Some(quinn::ConnectionError::ApplicationClosed(c)) => Some(u64::from(c.error_code)),
        _ => None,
    };
    if said == Some(pb::GoingAwayReason::AuthRevoked) || code == Some(CLOSE_AUTH) {
        Some(ClientError::Disabled)
    } else if said == Some(pb::GoingAwayReason::SessionReplaced) || code == Some(CLOSE_REPLACED) {
        Some(ClientError::Replaced { terminal })
    } else {
        None
    }
}

/// Routes one server message: to its waiting request, or to the events.
fn dispatch(shared: &Shared, link: &Arc<Link>, message: pb::ServerMessage) {
    let Some(body) = message.body else {
        tracing::debug!(request = message.request_id, "server message without body");
        return;
    };
    if message.request_id != 0 {
        let waiting = link.take_pending(message.request_id);
        match (waiting, &body) {
            (Some(tx), _) => {
                shared.note_answer(&body);
                let _ = tx.send(body);
                return;
            }
            // Our own call, set up after we stopped waiting: not an
            // incoming call, and not wanted any more.
            (None, Body::PrivateCallSetup(setup)) => {
                tracing::debug!(call = setup.call_id, "late call setup hung up");
                auto::hang_up_orphan(link, setup.call_id);
                return;
            }
            // An answer that came after its request timed out: still news.
            (None, _) => tracing::debug!(request = message.request_id, "late answer"),
        }
    }
    match &body {
        Body::GoingAway(g) => {
            link.set_going_away(g.clone());
        }
        Body::Alert(alert) if alert.requires_ack && shared.config.auto_ack_alerts => {
            auto::deliver_receipt(link, alert.alert_id);
        }
        _ => {}
    }
    shared.note_unsolicited(&body);
    if let Some(event) = Event::from_body(body) {
        shared.emit(event);
    }
}

/// Sends the `Ping`s the relay asked for in `HelloOk.ping_interval_ms`
/// until the connection ends.
async fn keep_pinging(link: Arc<Link>, interval: Duration) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = link.conn.closed() => return,
        }
        let ping = Request::Ping(pb::Ping {
            client_send_time_us: unix_us(),
        });
        if let Err(ClientError::Disconnected) = link.request(ping).await {
            return;
        }
    }
}

/// Reads voice datagrams until the connection ends; bad ones are counted
/// and dropped.
///
/// A burst whose frames stop without its last frame (the talker's radio
/// lost its network, or the relay died) is followed, [`STALL_PROBE`] after
/// its latest frame, by one keep-alive datagram to the relay: a relay that
/// was restarted answers it with a stateless reset, so a terminal in a call
/// learns of a crash within a fraction of a second instead of at its next
/// keep-alive.
async fn read_voice(shared: Arc<Shared>, link: Arc<Link>) {
    // The latest frame of a burst not yet over. The timer is moved only
    // when it fires early, not at every frame.
    let mut unfinished: Option<Instant> = None;
    let probe = tokio::time::sleep(STALL_PROBE);
    tokio::pin!(probe);
    loop {
        let datagram = tokio::select! {
            datagram = link.conn.read_datagram() => datagram,
            () = &mut probe, if unfinished.is_some() => {
                let due = unfinished.unwrap_or_else(Instant::now) + STALL_PROBE;
                if due > Instant::now() {
                    probe.as_mut().reset(due.into());
                } else {
                    unfinished = None;
                    let _ = link.conn.send_datagram(keep_alive_datagram());
                }
                continue;
            }
        };
        let Ok(datagram) = datagram else { break };
        let received_at = Instant::now();
        let Some(last) = deliver(&shared, datagram, received_at) else {
            continue;
        };
        if last {
            unfinished = None;
        } else {
            if unfinished.is_none() {
                probe.as_mut().reset((received_at + STALL_PROBE).into());
            }
            unfinished = Some(received_at);
        }
    }
}

/// In a cluster, watches that the relay still answers: when packets went
/// out (voice, a keep-alive, the probe of a stalled call) and nothing came
/// back for [`SILENCE_BEFORE_ASKING`], the relay is asked with a `Ping`; one
/// that answers none within [`STALL_ANSWER`] is taken for dead (killed, its
/// host gone: nothing would reset the connection) and the connection is
/// closed, so the terminal moves to the next relay of the cluster within
/// about a second instead of at its idle timeout. Costs nothing on the
/// wire while the relay answers.
async fn watch_relay(link: Arc<Link>) {
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    let counts = |link: &Link| {
        let stats = link.conn.stats();
        (stats.udp_rx.datagrams, stats.udp_tx.datagrams)
    };
    let (mut rx, mut tx_then) = counts(&link);
    let mut heard_at = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = link.conn.closed() => return,
        }
        let (rx_now, tx_now) = counts(&link);
        if rx_now != rx {
            (rx, tx_then, heard_at) = (rx_now, tx_now, Instant::now());
            continue;
        }
        if tx_now == tx_then || heard_at.elapsed() < SILENCE_BEFORE_ASKING {
            continue;
        }
        let ping = Request::Ping(pb::Ping {
            client_send_time_us: unix_us(),
        });
        match tokio::time::timeout(STALL_ANSWER, link.request(ping)).await {
            Ok(_) => {
                (rx, tx_then) = counts(&link);
                heard_at = Instant::now();
            }
            Err(_) => {
                tracing::warn!("the relay answers nothing; moving to the next one");
                link.conn
                    .close(CLOSE_NORMAL.into(), b"the relay answers nothing");
                return;
            }
        }
    }
}

/// How often [`watch_relay`] looks at the connection's packet counts.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Packets sent and none received for this long: time to ask the relay.
/// A relay acknowledges within its ack delay (25 ms) plus a round trip.
const SILENCE_BEFORE_ASKING: Duration = Duration::from_millis(300);

/// Reads the relay's voice streams (voice.md §4: one per burst) until the
/// connection ends; each is read by a task of its own. Only a connection
/// without datagrams gets them.
async fn read_voice_streams(shared: Arc<Shared>, link: Arc<Link>) {
    while let Ok(stream) = link.conn.accept_uni().await {
        tokio::spawn(read_voice_stream(shared.clone(), stream));
    }
}

/// Delivers each record of one voice stream as a datagram. A record length
/// out of bounds stops the stream (code 1) and drops the rest of the burst.
async fn read_voice_stream(shared: Arc<Shared>, mut stream: quinn::RecvStream) {
    let mut records = RecordReader::new();
    loop {
        loop {
            match records.next_record() {
                Ok(Some(datagram)) => {
                    deliver(&shared, datagram, Instant::now());
                }
                Ok(None) => break,
                Err(error) => {
                    shared.stats.bad_datagrams.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "voice stream stopped");
                    let _ = stream.stop(STREAM_ERROR_CODE.into());
                    return;
                }
            }
        }
        match stream.read_chunk(MAX_RECORD_LEN, true).await {
            Ok(Some(chunk)) => records.extend(&chunk.bytes),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Counts one voice datagram (however it arrived), feeds the quality
/// report and emits it as an event. `Some(last)` for a voice frame,
/// telling whether it ended its burst; `None` for anything else (dropped
/// and counted if bad).
fn deliver(shared: &Shared, datagram: Bytes, received_at: Instant) -> Option<bool> {
    let datagram = match VoiceDatagram::parse(datagram) {
        Ok(datagram) => datagram,
        Err(error) => {
            shared.stats.bad_datagrams.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(%error, "bad voice datagram dropped");
            return None;
        }
    };
    if datagram.header.kind != Kind::Voice {
        return None;
    }
    let h = datagram.header;
    shared.stats.voice_frames.fetch_add(1, Ordering::Relaxed);
    shared.quality.record_frame(
        h.group_id,
        h.burst_id,
        h.sequence,
        h.timestamp_us,
        unix_us(),
        shared.clock_offset_us(),
    );
    shared.emit(Event::Voice(VoiceFrame {
        group: h.group_id,
        talker: h.talker_id,
        burst: h.burst_id,
        sequence: h.sequence,
        sender_timestamp_us: h.timestamp_us,
        received_at,
        last: h.flags.last_frame(),
        payload: datagram.payload,
    }));
    Some(h.flags.last_frame())
}

/// A keep-alive datagram (kind 1, no payload): the relay drops it.
fn keep_alive_datagram() -> Bytes {
    let header = VoiceHeader {
        kind: Kind::KeepAlive,
        flags: Flags::default(),
        group_id: 0,
        talker_id: 0,
        burst_id: 0,
        sequence: 0,
        timestamp_us: unix_us(),
    };
    let mut datagram = BytesMut::with_capacity(HEADER_LEN);
    header.write(&mut datagram);
    datagram.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn going_away(reason: pb::GoingAwayReason) -> pb::GoingAway {
        pb::GoingAway {
            reason: reason.into(),
            reconnect_after_ms: 0,
            detail: String::new(),
        }
    }

    fn closed(code: u32) -> quinn::ConnectionError {
        quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: code.into(),
            reason: Bytes::new(),
        })
    }

    #[test]
    fn disabled_and_replaced_sessions_end_for_good_by_message_or_close_code() {
        let revoked = going_away(pb::GoingAwayReason::AuthRevoked);
        let replaced = going_away(pb::GoingAwayReason::SessionReplaced);
        let restart = going_away(pb::GoingAwayReason::Restart);
        let cases = [
            (Some(&revoked), None, Some(ClientError::Disabled)),
            (None, Some(closed(2)), Some(ClientError::Disabled)),
            (Some(&revoked), Some(closed(2)), Some(ClientError::Disabled)),
            (
                Some(&replaced),
                None,
                Some(ClientError::Replaced { terminal: 7 }),
            ),
            (
                None,
                Some(closed(4)),
                Some(ClientError::Replaced { terminal: 7 }),
            ),
            (Some(&restart), Some(closed(3)), None),
            (None, Some(closed(1)), None),
            (None, Some(quinn::ConnectionError::TimedOut), None),
            (None, None, None),
        ];
        for (message, close, expected) in cases {
            assert_eq!(
                final_end(message, close.as_ref(), 7),
                expected,
                "{message:?} {close:?}"
            );
        }
    }
}
