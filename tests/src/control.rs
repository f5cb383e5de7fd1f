//! The client's end of a control stream, whatever carries it (a terminal's
//! QUIC stream, a browser's WebTransport stream): requests numbered and
//! framed on the way out, the relay's messages read into an inbox, and
//! waiting there for the one a test expects.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, bail};
use ptt_proto::framing::{self, Decoder};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::PATIENCE;

/// One control stream: `send` writes to the relay, `inbox` holds what it
/// sent back.
pub struct Control<W> {
    send: W,
    /// The relay's messages.
    pub inbox: Inbox,
    next_id: u64,
}

impl<W: AsyncWrite + Unpin> Control<W> {
    /// The control stream writing to `send` and reading into `inbox`.
    pub fn new(send: W, inbox: Inbox) -> Self {
        Self {
            send,
            inbox,
            next_id: 1,
        }
    }

    /// Sends a request without waiting; returns its id.
    pub async fn send(&mut self, body: Request) -> anyhow::Result<u64> {
        let request_id = self.next_id;
        self.next_id += 1;
        self.send_message(pb::ClientMessage {
            request_id,
            body: Some(body),
        })
        .await
    }

    /// Sends a `ClientMessage` as given, request id and body (even none)
    /// included; returns its request id.
    pub async fn send_message(&mut self, message: pb::ClientMessage) -> anyhow::Result<u64> {
        let frame = framing::encode_to_bytes(&message)?;
        self.send.write_all(&frame).await?;
        Ok(message.request_id)
    }

    /// Writes raw bytes on the control stream (for malformed-input tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.send.write_all(bytes).await?;
        Ok(())
    }

    /// Sends a request and waits for its answer; events that arrive first
    /// are kept for later.
    pub async fn request(&mut self, body: Request) -> anyhow::Result<Body> {
        let id = self.send(body).await?;
        let answer = self
            .inbox
            .expect(|m| m.request_id == id)
            .await
            .with_context(|| format!("answer to request {id}"))?;
        answer.body.context("answer without body")
    }
}

/// The messages the relay sent on one control stream, read by a task of
/// their own as they come.
pub struct Inbox {
    /// Who reads it, for errors.
    label: String,
    rx: mpsc::UnboundedReceiver<pb::ServerMessage>,
    /// Messages received but not yet consumed by the test, in order.
    held: VecDeque<pb::ServerMessage>,
}

impl Inbox {
    /// Starts reading `recv` into a new inbox; `label` names the client.
    pub fn read<R: AsyncRead + Unpin + Send + 'static>(recv: R, label: String) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(read_control(recv, tx));
        Self {
            label,
            rx,
            held: VecDeque::new(),
        }
    }

    /// The first message (held or new) that `matches`, waiting up to
    /// [`PATIENCE`]; messages that do not match stay held, in order.
    pub async fn expect(
        &mut self,
        matches: impl Fn(&pb::ServerMessage) -> bool,
    ) -> anyhow::Result<pb::ServerMessage> {
        self.expect_within(PATIENCE, matches)
            .await?
            .context("expected message did not arrive")
    }

    /// Like [`Inbox::expect`] with a custom wait; `None` if nothing matched.
    pub async fn expect_within(
        &mut self,
        wait: Duration,
        matches: impl Fn(&pb::ServerMessage) -> bool,
    ) -> anyhow::Result<Option<pb::ServerMessage>> {
        if let Some(at) = self.held.iter().position(&matches) {
            return Ok(self.held.remove(at));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("control stream of {} closed", self.label),
                Ok(Some(message)) if matches(&message) => return Ok(Some(message)),
                Ok(Some(message)) => self.held.push_back(message),
            }
        }
    }

    /// The first message whose body `pick` accepts, returning what it picked.
    pub async fn expect_body<T>(&mut self, pick: impl Fn(&Body) -> Option<T>) -> anyhow::Result<T> {
        let message = self
            .expect(|m| m.body.as_ref().is_some_and(|b| pick(b).is_some()))
            .await?;
        message
            .body
            .as_ref()
            .and_then(&pick)
            .context("picked body vanished")
    }

    /// Drops every message received so far.
    pub fn clear(&mut self) {
        self.held.clear();
        while self.rx.try_recv().is_ok() {}
    }
}

/// Decodes length-prefixed `ServerMessage`s from `recv` into `tx` until
/// the stream ends, breaks, or the inbox is dropped.
async fn read_control<R: AsyncRead + Unpin>(
    mut recv: R,
    tx: mpsc::UnboundedSender<pb::ServerMessage>,
) {
    let mut decoder = Decoder::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        loop {
            match decoder.decode::<pb::ServerMessage>() {
                Ok(Some(message)) => {
                    if tx.send(message).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match recv.read(&mut buffer).await {
            Ok(read) if read > 0 => decoder.extend(&buffer[..read]),
            _ => return,
        }
    }
}
