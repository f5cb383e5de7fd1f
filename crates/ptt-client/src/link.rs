//! One authenticated connection's request side: the control stream's
//! writer with request/answer correlation, and what the relay said of the
//! connection (`HelloOk`, `GoingAway`).
//!
//! Requests register a oneshot under a fresh `request_id` before the frame
//! is written; the control reader (see `connection`) completes it when the
//! answer with that id arrives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ptt_proto::framing;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use tokio::sync::oneshot;

use crate::error::ClientError;

/// The `request_id` of `Hello`, the first request of every connection.
pub(crate) const HELLO_ID: u64 = 1;

/// One authenticated QUIC connection.
#[derive(Debug)]
pub(crate) struct Link {
    /// The QUIC connection (voice datagrams go straight to it).
    pub(crate) conn: quinn::Connection,
    /// The relay's answer to `Hello`.
    pub(crate) hello: pb::HelloOk,
    send: tokio::sync::Mutex<quinn::SendStream>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Body>>>,
    next_id: AtomicU64,
    /// The `GoingAway` the relay sent, if it did.
    going_away: Mutex<Option<pb::GoingAway>>,
    request_timeout: Duration,
}

impl Link {
    /// A link over `conn`, authenticated with `hello`; `send` is its control
    /// stream, on which the request after `Hello` comes next.
    pub(crate) fn new(
        conn: quinn::Connection,
        hello: pb::HelloOk,
        send: quinn::SendStream,
        request_timeout: Duration,
    ) -> Self {
        Self {
            conn,
            hello,
            send: tokio::sync::Mutex::new(send),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(HELLO_ID + 1),
            going_away: Mutex::new(None),
            request_timeout,
        }
    }

    /// Sends `body` with a fresh request id and waits for its answer.
    ///
    /// An `Error` answer is returned as `Ok(Body::Error)`; the caller maps it
    /// knowing what the request was about.
    pub(crate) async fn request(&self, body: Request) -> Result<Body, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id, tx);
        if let Err(error) = self.write(id, body).await {
            self.lock_pending().remove(&id);
            return Err(error);
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            // The reader dropped the sender: the connection ended.
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Err(_) => {
                self.lock_pending().remove(&id);
                Err(ClientError::Timeout)
            }
        }
    }

    async fn write(&self, request_id: u64, body: Request) -> Result<(), ClientError> {
        let frame = framing::encode_to_bytes(&pb::ClientMessage {
            request_id,
            body: Some(body),
        })
        .map_err(|e| ClientError::Protocol(format!("request does not fit a frame: {e}")))?;
        self.send
            .lock()
            .await
            .write_all(&frame)
            .await
            .map_err(|_| ClientError::Disconnected)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Body>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sender waiting for the answer `request_id`, taken out (`None`
    /// once its request timed out).
    pub(crate) fn take_pending(&self, request_id: u64) -> Option<oneshot::Sender<Body>> {
        self.lock_pending().remove(&request_id)
    }

    /// Fails every request still waiting: the connection ended, so its
    /// answer will never come.
    pub(crate) fn fail_pending(&self) {
        self.lock_pending().clear();
    }

    /// Remembers the `GoingAway` the relay sent.
    pub(crate) fn set_going_away(&self, going_away: pb::GoingAway) {
        *self.going_away.lock().unwrap_or_else(|e| e.into_inner()) = Some(going_away);
    }

    /// The `GoingAway` the relay sent, if it did.
    pub(crate) fn going_away(&self) -> Option<pb::GoingAway> {
        self.going_away
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True if voice travels on streams, one per burst (voice.md §4): the
    /// relay said `HelloOk.datagrams` false.
    pub(crate) fn voice_on_streams(&self) -> bool {
        !self.hello.datagrams
    }

    /// Largest voice datagram this connection may carry (voice.md §3.2).
    pub(crate) fn max_datagram(&self) -> usize {
        let negotiated = if self.voice_on_streams() {
            ptt_proto::voice::MAX_DATAGRAM_SIZE
        } else {
            self.conn.max_datagram_size().unwrap_or(0)
        };
        let announced = usize::try_from(self.hello.max_datagram_size).unwrap_or(0);
        let announced = if announced == 0 {
            ptt_proto::voice::MAX_DATAGRAM_SIZE
        } else {
            announced
        };
        negotiated
            .min(announced)
            .min(ptt_proto::voice::MAX_DATAGRAM_SIZE)
    }
}
