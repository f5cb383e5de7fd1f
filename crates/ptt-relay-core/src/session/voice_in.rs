//! Voice from the terminal: QUIC datagrams (voice.md §3) and, for terminals
//! without them, voice streams (§4), both into the fan-out.

use std::sync::Arc;

use bytes::Bytes;
use ptt_proto::voice_stream::{MAX_RECORD_LEN, RecordLengthError, RecordReader, STREAM_ERROR_CODE};
use quinn::RecvStream;
use tracing::Instrument;

use crate::carrier::Carrier;
use crate::fanout::{self, Forwarded};
use crate::link::Link;
use crate::metrics::DropReason;
use crate::session::context::SessionContext;

/// Forwards the terminal's voice datagrams until the connection ends.
///
/// Every datagram the connection received is counted once: read ones in
/// `datagrams_in` (and, if not forwarded, by drop reason), and those quinn
/// discarded unread because its receive buffer was full (a flood) as
/// [`DropReason::ReceiveOverflow`]. quinn counts the latter only inside its
/// connection stats, so they are reconciled each time the loop has drained
/// the buffer and is about to wait (idle time; never per datagram of a
/// flood).
pub(super) async fn receive_voice(shared: Arc<SessionContext>, link: Arc<Link>) {
    let mut tally = ReceiveTally::default();
    loop {
        let read = next_datagram(link.carrier());
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
        let Some(datagram) = result else { break };
        tally.read += 1;
        take_in(&shared, &link, datagram);
    }
}

/// The next voice datagram the client sent; `None` once the connection
/// has ended. A browser's arrive behind its session's prefix, which is
/// taken off.
async fn next_datagram(carrier: &Carrier) -> Option<Bytes> {
    match carrier {
        Carrier::Terminal(conn) => conn.read_datagram().await.ok(),
        Carrier::Browser(session) => session.read_datagram().await,
    }
}

/// Counts and forwards one voice datagram, however it arrived; a dropped
/// one is counted by reason.
fn take_in(shared: &SessionContext, link: &Link, datagram: Bytes) {
    shared.metrics.datagrams_in.inc();
    match fanout::forward(&shared.fanout, link, datagram) {
        Ok(Forwarded::Voice(_)) => {}
        Ok(Forwarded::KeepAlive) => shared.metrics.keepalives_in.inc(),
        Err(reason) => {
            shared.metrics.count_drop(reason);
            tracing::trace!(%reason, "datagram dropped");
        }
    }
}

/// Accepts the terminal's voice streams (voice.md §4: one per burst) until
/// the connection ends, each read by a task of its own. Served whatever
/// `HelloOk.datagrams` said: a terminal whose path stops carrying datagrams
/// may go on talking on streams. How many are open at once is bounded by
/// the transport's stream limit ([`crate::quic`]).
pub(super) async fn receive_voice_streams(shared: Arc<SessionContext>, link: Arc<Link>) {
    // A browser's unidirectional streams are HTTP/3's (and WebTransport's,
    // behind a header); its voice comes in datagrams only.
    let Carrier::Terminal(conn) = link.carrier() else {
        return;
    };
    while let Ok(stream) = conn.accept_uni().await {
        tokio::spawn(read_voice_stream(shared.clone(), link.clone(), stream).in_current_span());
    }
}

/// Forwards each record of one voice stream as a datagram. A record length
/// out of bounds stops the stream (`STOP_SENDING`, code 1) and drops the
/// rest of its burst, counted as too large or as a bad header.
async fn read_voice_stream(shared: Arc<SessionContext>, link: Arc<Link>, mut stream: RecvStream) {
    let mut records = RecordReader::new();
    loop {
        loop {
            match records.next_record() {
                Ok(Some(datagram)) => take_in(&shared, &link, datagram),
                Ok(None) => break,
                Err(RecordLengthError(len)) => {
                    shared.metrics.datagrams_in.inc();
                    shared.metrics.count_drop(if len > MAX_RECORD_LEN {
                        DropReason::TooLarge
                    } else {
                        DropReason::BadHeader
                    });
                    let _ = stream.stop(STREAM_ERROR_CODE.into());
                    return;
                }
            }
        }
        match stream.read_chunk(MAX_RECORD_LEN, true).await {
            Ok(Some(chunk)) => records.extend(&chunk.bytes),
            // Finished (a record cut short is dropped), reset, or gone.
            Ok(None) | Err(_) => return,
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
