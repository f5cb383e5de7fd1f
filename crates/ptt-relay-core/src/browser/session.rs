//! A browser's WebTransport session: opened by its HTTP/3 `CONNECT`, then a
//! carrier for the same control stream and voice datagrams a terminal uses.

use std::sync::Arc;

use bytes::Bytes;
use web_transport_quinn::{RecvStream, Request, SendStream, Session};

/// The path of the session a console opens
/// (`https://<relay>:<console port>/ptt`).
pub const SESSION_PATH: &str = "/ptt";

/// Why a browser's connection did not become a session.
#[derive(Debug, thiserror::Error)]
pub enum BrowserRefusal {
    /// HTTP/3's settings or the `CONNECT` request failed or never came.
    #[error("no WebTransport session: {0}")]
    Handshake(#[from] web_transport_quinn::ServerError),
    /// The browser asked for another path (answered 404).
    #[error("WebTransport session for {0}, not {SESSION_PATH}")]
    WrongPath(String),
}

/// One browser's WebTransport session. Datagrams and streams go through it
/// because WebTransport prefixes each with the session's id; the QUIC
/// connection under it is [`BrowserSession::connection`]. Shared, as a
/// session is large and the link, the writer and the voice reader hold it.
#[derive(Clone, Debug)]
pub struct BrowserSession {
    session: Arc<Session>,
}

impl BrowserSession {
    /// Reads the browser's HTTP/3 settings and its `CONNECT` request on a
    /// new connection and opens the session if it asks for
    /// [`SESSION_PATH`]; any other path is answered 404.
    pub async fn accept(conn: quinn::Connection) -> Result<Self, BrowserRefusal> {
        let request = Request::accept(conn).await?;
        if request.url.path() != SESSION_PATH {
            let path = request.url.path().to_owned();
            let _ = request.reject(http_not_found()).await;
            return Err(BrowserRefusal::WrongPath(path));
        }
        Ok(Self {
            session: Arc::new(request.ok().await?),
        })
    }

    /// The QUIC connection the session runs on.
    pub fn connection(&self) -> &quinn::Connection {
        &self.session
    }

    /// The largest voice datagram the session takes now (the path's limit
    /// less the session's prefix); `None` if the browser takes none.
    pub fn max_datagram_size(&self) -> Option<usize> {
        Some(self.session.max_datagram_size()).filter(|&size| size > 0)
    }

    /// Waits for the browser's first bidirectional stream: the control
    /// stream. `None` if the session ended first.
    pub async fn accept_control(&self) -> Option<(SendStream, RecvStream)> {
        self.session.accept_bi().await.ok()
    }

    /// The next voice datagram from the browser, without the session's
    /// prefix; `None` once the session has ended.
    pub async fn read_datagram(&self) -> Option<Bytes> {
        self.session.read_datagram().await.ok()
    }

    /// Hands a voice datagram to the session; false if it was refused (too
    /// large, or the session is closed). WebTransport's prefix makes this a
    /// copy per browser (quinn takes a datagram as one buffer): the
    /// consoles of a control room are few, terminals pay nothing for it.
    pub fn send_datagram(&self, datagram: Bytes) -> bool {
        self.session.send_datagram(datagram).is_ok()
    }

    /// Closes the session with an application code and reason the page
    /// reads from `WebTransport.closed`, then the connection.
    pub fn close(&self, code: u32, why: &str) {
        self.session.close(code, why.as_bytes());
    }
}

fn http_not_found() -> web_transport_quinn::http::StatusCode {
    web_transport_quinn::http::StatusCode::NOT_FOUND
}
