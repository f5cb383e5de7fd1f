//! One connection from end to end: the handshake, then, once authenticated,
//! the session registered in `Online` and its tasks — control requests in,
//! control messages out, voice in (datagrams and streams, `voice_in`) and,
//! for a terminal without datagrams, its voice streams out — until the
//! connection ends, when the terminal leaves its groups.

use std::sync::Arc;
use std::time::Duration;

use ptt_proto::pb;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::admission::{Admitted, Unfinished};
use crate::browser::BrowserSession;
use crate::carrier::{Carrier, ControlSend};
use crate::link::{self, Outbound};
use crate::session::context::SessionContext;
use crate::session::control::session::Session;
use crate::session::disable::disconnect_disabled;
use crate::session::handshake::{ControlStreams, Handshake, Refusal, handshake};
use crate::session::voice_in::{receive_voice, receive_voice_streams};
use ptt_calllog::{Record, SessionEvent, SessionRecord};
use ptt_directory::TerminalId;

/// The port a connection came in on, which says what it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The voice port: terminals, QUIC with ALPN `ptt/1`.
    Terminal,
    /// The console port: dispatchers' browsers, WebTransport (HTTP/3) whose
    /// session then speaks what terminals speak ([`crate::browser`]).
    Console,
}

/// Serves one admitted connection to its end, holding its admission ticket
/// (its slot) until then. Errors are logged, never propagated: one
/// terminal's trouble is not the relay's. `shard` is the shard whose
/// endpoint accepted the connection, and on whose thread this runs; `door`
/// the port it came in on.
pub async fn serve(shared: Arc<SessionContext>, admitted: Admitted, shard: u8, door: Door) {
    let remote = admitted.remote_address();
    let span = tracing::info_span!("conn", %remote, terminal = tracing::field::Empty);
    async move {
        // The QUIC handshake counts against the deadline to say `Hello`;
        // dropping an unfinished one closes it.
        // The steps before and after the session's life are boxed: their
        // state is freed when they end, instead of sizing the future that
        // lives as long as the terminal is connected (thousands of them).
        let (mut ticket, handshaken) = Box::pin(admitted.handshake()).await;
        let conn = match handshaken {
            Ok(conn) => conn,
            Err(Unfinished::Failed(error)) => {
                tracing::debug!(%error, "handshake failed");
                return;
            }
            Err(Unfinished::TimedOut) => {
                ticket.hello_timed_out();
                return;
            }
        };
        let carrier = match door {
            Door::Terminal => Carrier::Terminal(conn),
            Door::Console => {
                // The WebTransport session request counts against the
                // same deadline as the QUIC handshake and the `Hello`.
                let opened = tokio::time::timeout_at(
                    ticket.deadline(),
                    Box::pin(BrowserSession::accept(conn.clone())),
                )
                .await;
                match opened {
                    Ok(Ok(session)) => Carrier::Browser(session),
                    Ok(Err(refusal)) => {
                        tracing::debug!(%refusal, "browser session refused");
                        conn.close(link::CLOSE_PROTOCOL.into(), b"no WebTransport session");
                        return;
                    }
                    Err(_) => {
                        ticket.hello_timed_out();
                        conn.close(link::CLOSE_PROTOCOL.into(), b"no session in time");
                        return;
                    }
                }
            }
        };
        let result = tokio::select! {
            result = Box::pin(handshake(&shared, &carrier, shard, remote, &mut ticket)) => result,
            () = shared.shutdown.cancelled() => Err(Refusal::going_away("relay shutting down")),
        };
        match result {
            Ok(accepted) => {
                tracing::Span::current().record("terminal", accepted.link.terminal);
                run(shared, accepted).await;
            }
            Err(Refusal { code, why }) => {
                // A missed deadline was counted and logged (throttled) by
                // the ticket: a flood of them must not fill the log.
                if ticket.timed_out() {
                    tracing::debug!(why, "connection refused");
                } else {
                    tracing::info!(why, "connection refused");
                }
                carrier.close(code, why);
            }
        }
        drop(ticket);
    }
    .instrument(span)
    .await
}

/// Runs an authenticated session to its end.
async fn run(shared: Arc<SessionContext>, accepted: Handshake) {
    let Handshake {
        link,
        streams: ControlStreams {
            send,
            recv,
            decoder,
        },
        outbound,
        voice_writer,
        hello_id,
    } = accepted;
    shared.metrics.sessions_opened.inc();
    if let Some(previous) = shared.online.insert(link.clone()) {
        tracing::info!(
            previous = previous.session,
            "replacing the terminal's older session"
        );
        previous.farewell(
            pb::GoingAway {
                reason: pb::GoingAwayReason::SessionReplaced.into(),
                reconnect_after_ms: 0,
                detail: "another connection logged in as this terminal".into(),
            },
            link::CLOSE_REPLACED,
            "session replaced",
        );
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
        at_ms: shared.unix_ms(),
    }));
    tracing::info!(session = link.session, "terminal online");

    let writer =
        tokio::spawn(write_control(send, outbound, link.carrier().clone()).in_current_span());
    let voice = tokio::spawn(receive_voice(shared.clone(), link.clone()).in_current_span());
    let voice_streams =
        tokio::spawn(receive_voice_streams(shared.clone(), link.clone()).in_current_span());
    if let Some(voice_writer) = voice_writer {
        // Ends when the link (its feed) is dropped or the connection closes.
        tokio::spawn(voice_writer.run().in_current_span());
    }

    let mut session = Session::new(shared.clone(), link.clone());
    Box::pin(session.start(hello_id)).await;
    session.serve(recv, decoder).await;
    voice.abort();
    voice_streams.abort();
    let still_current = shared.online.remove_if_current(&link);
    // A replaced session leaves its groups quietly: its successor is online.
    Box::pin(session.finish(still_current)).await;
    if still_current {
        shared.log.log(Record::Session(SessionRecord {
            terminal: TerminalId(link.terminal),
            event: SessionEvent::Disconnected,
            at_ms: shared.unix_ms(),
        }));
    }
    // The writer ends after a farewell, or once every sender of the link
    // is gone (the groups let go of it as they handle the leave); give it a
    // moment to flush what is queued.
    drop(session);
    drop(link);
    let _ = tokio::time::timeout(WRITER_PATIENCE, writer).await;
    tracing::info!("terminal offline");
}

/// How long a finished session waits for its writer to flush.
const WRITER_PATIENCE: Duration = Duration::from_millis(500);

/// Writes queued control frames to the stream, in order; after a farewell
/// ([`Outbound::Close`]) closes the connection once it was delivered.
async fn write_control(
    mut send: ControlSend,
    mut outbound: mpsc::Receiver<Outbound>,
    carrier: Carrier,
) {
    while let Some(next) = outbound.recv().await {
        match next {
            Outbound::Frame(frame) => {
                if !send.write_all(&frame).await {
                    return;
                }
            }
            Outbound::Close { code, why } => {
                send.finish();
                let _ = tokio::time::timeout(link::FAREWELL_GRACE, send.stopped()).await;
                carrier.close(code, why);
                return;
            }
        }
    }
    send.finish();
}
