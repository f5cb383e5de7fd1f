//! What a session runs on: a terminal's QUIC connection, or a browser's
//! WebTransport session over one. Both carry the same control stream and
//! voice datagrams; only how a stream is accepted, a stream written and the
//! connection closed differ.

use bytes::Bytes;

use crate::browser::BrowserSession;

/// The connection a session runs on.
#[derive(Debug, Clone)]
pub(crate) enum Carrier {
    /// A terminal: QUIC with ALPN `ptt/1`.
    Terminal(quinn::Connection),
    /// A dispatcher's browser: WebTransport on the console port.
    Browser(BrowserSession),
}

impl Carrier {
    /// The QUIC connection under the carrier.
    pub(crate) fn connection(&self) -> &quinn::Connection {
        match self {
            Carrier::Terminal(conn) => conn,
            Carrier::Browser(session) => session.connection(),
        }
    }

    /// The largest voice datagram the path takes now, after WebTransport's
    /// prefix for a browser; `None` if the peer takes no datagrams.
    pub(crate) fn max_datagram_size(&self) -> Option<usize> {
        match self {
            Carrier::Terminal(conn) => conn.max_datagram_size(),
            Carrier::Browser(session) => session.max_datagram_size(),
        }
    }

    /// Waits for the client's control stream; `None` if the connection
    /// ended first.
    pub(crate) async fn accept_control(&self) -> Option<(ControlSend, ControlRecv)> {
        match self {
            Carrier::Terminal(conn) => {
                let (send, recv) = conn.accept_bi().await.ok()?;
                Some((ControlSend::Terminal(send), ControlRecv::Terminal(recv)))
            }
            Carrier::Browser(session) => {
                let (send, recv) = session.accept_control().await?;
                Some((ControlSend::Browser(send), ControlRecv::Browser(recv)))
            }
        }
    }

    /// Closes the connection with an application code (proto/voice.md §1);
    /// a browser reads it from its session's close.
    pub(crate) fn close(&self, code: u32, why: &str) {
        match self {
            Carrier::Terminal(conn) => conn.close(code.into(), why.as_bytes()),
            Carrier::Browser(session) => session.close(code, why),
        }
    }
}

/// The relay's half of the control stream.
pub(crate) enum ControlSend {
    Terminal(quinn::SendStream),
    Browser(web_transport_quinn::SendStream),
}

impl ControlSend {
    /// Writes all of `bytes`; false if the stream or connection is gone.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> bool {
        match self {
            ControlSend::Terminal(send) => send.write_all(bytes).await.is_ok(),
            ControlSend::Browser(send) => send.write_all(bytes).await.is_ok(),
        }
    }

    /// Ends the stream after what was written.
    pub(crate) fn finish(&mut self) {
        // Already finished or reset: nothing more to end.
        match self {
            ControlSend::Terminal(send) => drop(send.finish()),
            ControlSend::Browser(send) => drop(send.finish()),
        }
    }

    /// Waits until the peer has acknowledged everything (or stopped the
    /// stream, or the connection ended).
    pub(crate) async fn stopped(&mut self) {
        match self {
            ControlSend::Terminal(send) => {
                let _ = send.stopped().await;
            }
            ControlSend::Browser(send) => {
                let _ = send.stopped().await;
            }
        }
    }
}

/// The client's half of the control stream.
pub(crate) enum ControlRecv {
    Terminal(quinn::RecvStream),
    Browser(web_transport_quinn::RecvStream),
}

impl ControlRecv {
    /// The next bytes, at most `max`; `None` when the stream ended, was
    /// reset or the connection is gone.
    pub(crate) async fn read_chunk(&mut self, max: usize) -> Option<Bytes> {
        let chunk = match self {
            ControlRecv::Terminal(recv) => recv.read_chunk(max, true).await.ok()?,
            ControlRecv::Browser(recv) => recv.read_chunk(max, true).await.ok()?,
        };
        chunk.map(|chunk| chunk.bytes)
    }
}
