//! One authenticated connection to the relay: the QUIC handshake, `Hello`
//! (with the latest login's resumption credential when there is one, else
//! with the secret), and the two reader tasks (control messages, voice
//! datagrams); the requests themselves go through its [`Link`].
//!
//! A [`Link`] lives as long as its QUIC connection; reconnecting makes a new
//! one. The control reader completes the request waiting for each answer;
//! messages with `request_id` 0 become events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use tokio::task::JoinHandle;

use crate::clock::unix_us;
use crate::error::ClientError;
use crate::events::{Event, enum_or_default};
use crate::link::{HELLO_ID, Link};
use crate::shared::Shared;
use crate::{auto, liveness, tls, voice_in};

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
    tokio::spawn(voice_in::read_voice(shared.clone(), link.clone()));
    tokio::spawn(voice_in::read_voice_streams(shared.clone(), link.clone()));
    if !shared.config.other_servers.is_empty() {
        let watched = link.clone();
        tokio::spawn(async move {
            if liveness::relay_is_dead(watched.clone()).await {
                watched
                    .conn
                    .close(CLOSE_NORMAL.into(), b"the relay answers nothing");
            }
        });
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
