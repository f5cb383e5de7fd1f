//! One connection from end to end: the handshake, then, once authenticated,
//! the session registered in `Online` and three tasks — control requests in,
//! control messages out, voice datagrams in — until the connection ends, when
//! the terminal leaves its groups.

use std::sync::Arc;
use std::time::Duration;

use ptt_proto::pb;
use quinn::SendStream;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::admission::{Admitted, Unfinished};
use crate::fanout::{self, Forwarded};
use crate::link::{self, Link, Outbound};
use crate::metrics::DropReason;
use crate::session::context::SessionContext;
use crate::session::control::session::Session;
use crate::session::disable::disconnect_disabled;
use crate::session::handshake::{ControlStreams, Refusal, handshake};
use ptt_calllog::{Record, SessionEvent, SessionRecord};
use ptt_directory::TerminalId;

/// Serves one admitted connection to its end, holding its admission ticket
/// (its slot) until then. Errors are logged, never propagated: one
/// terminal's trouble is not the relay's.
pub async fn serve(shared: Arc<SessionContext>, admitted: Admitted) {
    let remote = admitted.remote_address();
    let span = tracing::info_span!("conn", %remote, terminal = tracing::field::Empty);
    async move {
        // The QUIC handshake counts against the deadline to say `Hello`;
        // dropping an unfinished one closes it.
        let (mut ticket, handshaken) = admitted.handshake().await;
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
        let result = tokio::select! {
            result = handshake(&shared, &conn, remote, &mut ticket) => result,
            () = shared.shutdown.cancelled() => Err(Refusal::going_away("relay shutting down")),
        };
        match result {
            Ok((link, streams, outbound, hello_id)) => {
                tracing::Span::current().record("terminal", link.terminal);
                run(shared, link, streams, outbound, hello_id).await;
            }
            Err(Refusal { code, why }) => {
                // A missed deadline was counted and logged (throttled) by
                // the ticket: a flood of them must not fill the log.
                if ticket.timed_out() {
                    tracing::debug!(why, "connection refused");
                } else {
                    tracing::info!(why, "connection refused");
                }
                conn.close(code.into(), why.as_bytes());
            }
        }
        drop(ticket);
    }
    .instrument(span)
    .await
}

/// Runs an authenticated session to its end.
async fn run(
    shared: Arc<SessionContext>,
    link: Arc<Link>,
    streams: ControlStreams,
    outbound: mpsc::Receiver<Outbound>,
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

    let writer = tokio::spawn(write_control(send, outbound, link.conn.clone()).in_current_span());
    let voice = tokio::spawn(receive_voice(shared.clone(), link.clone()).in_current_span());

    let mut session = Session::new(shared.clone(), link.clone());
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
/// ([`Outbound::Close`]) closes `conn` once it was delivered.
async fn write_control(
    mut send: SendStream,
    mut outbound: mpsc::Receiver<Outbound>,
    conn: quinn::Connection,
) {
    while let Some(next) = outbound.recv().await {
        match next {
            Outbound::Frame(frame) => {
                if send.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Outbound::Close { code, why } => {
                let _ = send.finish();
                let _ = tokio::time::timeout(link::FAREWELL_GRACE, send.stopped()).await;
                conn.close(code.into(), why.as_bytes());
                return;
            }
        }
    }
    let _ = send.finish();
}

/// Forwards the terminal's voice datagrams until the connection ends.
///
/// Every datagram the connection received is counted once: read ones in
/// `datagrams_in` (and, if not forwarded, by drop reason), and those quinn
/// discarded unread because its receive buffer was full (a flood) as
/// [`DropReason::ReceiveOverflow`]. quinn counts the latter only inside its
/// connection stats, so they are reconciled each time the loop has drained
/// the buffer and is about to wait (idle time; never per datagram of a
/// flood).
async fn receive_voice(shared: Arc<SessionContext>, link: Arc<Link>) {
    let mut tally = ReceiveTally::default();
    loop {
        let read = link.conn.read_datagram();
        tokio::pin!(read);
        let result = match ready_now(read.as_mut()).await {
            Some(result) => result,
            None => {
                // Taken before a last look at an empty buffer: every
                // datagram it counts was read or discarded by then.
                let received = link.conn.stats().frame_rx.datagram;
                match ready_now(read.as_mut()).await {
                    Some(result) => result,
                    None => {
                        tally.reconcile(&shared, received);
                        read.await
                    }
                }
            }
        };
        let Ok(datagram) = result else { break };
        shared.metrics.datagrams_in.inc();
        tally.read += 1;
        match fanout::forward(&shared.fanout, &link, datagram) {
            Ok(Forwarded::Voice(_)) => {}
            Ok(Forwarded::KeepAlive) => shared.metrics.keepalives_in.inc(),
            Err(reason) => {
                shared.metrics.count_drop(reason);
                tracing::trace!(%reason, "datagram dropped");
            }
        }
    }
}

/// The output of `future` if it is ready without waiting.
async fn ready_now<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
    tokio::select! {
        biased;
        output = future => Some(output),
        () = std::future::ready(()) => None,
    }
}

/// The voice datagrams of one connection: read by the relay, and already
/// counted as discarded by quinn.
#[derive(Debug, Default)]
struct ReceiveTally {
    read: u64,
    overflowed: u64,
}

impl ReceiveTally {
    /// Counts as discarded what quinn had `received` (its stats, taken when
    /// the buffer was empty) and the relay neither read nor counted yet.
    fn reconcile(&mut self, shared: &SessionContext, received: u64) {
        let discarded = received
            .saturating_sub(self.read)
            .saturating_sub(self.overflowed);
        if discarded > 0 {
            self.overflowed += discarded;
            shared
                .metrics
                .count_drops(DropReason::ReceiveOverflow, discarded);
        }
    }
}
