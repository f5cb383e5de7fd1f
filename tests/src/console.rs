//! A dispatcher's console as the relay sees one: a WebTransport session on
//! the console port, opened as a browser opens it (HTTP/3 `CONNECT`, the
//! certificate pinned by its SHA-256), then the terminals' protocol on it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use web_transport_quinn::{ClientBuilder, SendStream, Session, SessionError, WebTransportError};

use crate::control::{Control, Inbox};

/// A console logged in (or refused) on the console port.
pub struct ConsoleClient {
    /// The WebTransport session.
    pub session: Session,
    /// The relay's answer to `Hello`.
    pub hello: pb::HelloOk,
    /// The control stream: requests out, the relay's messages in.
    pub control: Control<SendStream>,
}

/// The SHA-256 in `hex` as bytes.
fn hash_bytes(hex: &str) -> anyhow::Result<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|at| {
            let pair = hex.get(at..at + 2).context("odd hex length")?;
            u8::from_str_radix(pair, 16).context("not hex")
        })
        .collect()
}

impl ConsoleClient {
    /// Opens a WebTransport session to `https://<console><path>`, accepting
    /// only the certificate whose SHA-256 is `certificate_sha256` (hex), and
    /// its control stream; says nothing yet.
    pub async fn open(
        console: SocketAddr,
        certificate_sha256: &str,
        path: &str,
    ) -> anyhow::Result<Self> {
        let client = ClientBuilder::new()
            .with_server_certificate_hashes(vec![hash_bytes(certificate_sha256)?])?;
        let url: url::Url = format!("https://{console}{path}").parse()?;
        let session = client.connect(url).await.context("WebTransport session")?;
        let (send, recv) = session.open_bi().await.context("control stream")?;
        Ok(Self {
            control: Control::new(send, Inbox::read(recv, format!("console at {console}"))),
            session,
            hello: pb::HelloOk::default(),
        })
    }

    /// Opens a session and logs in as `terminal`; the relay's refusal is
    /// returned as `Err` inside `Ok`.
    pub async fn login(
        console: SocketAddr,
        certificate_sha256: &str,
        terminal: u32,
        secret: &[u8],
    ) -> anyhow::Result<Result<Self, pb::Error>> {
        let mut client = Self::open(console, certificate_sha256, "/ptt").await?;
        let answer = client
            .control
            .request(Request::Hello(pb::Hello {
                protocol_version: 1,
                terminal_id: terminal,
                secret: Bytes::copy_from_slice(secret),
                client_version: "ptt-tests console".into(),
                capabilities: Some(pb::Capabilities {
                    datagrams: true,
                    ..Default::default()
                }),
                resume_token: Bytes::new(),
            }))
            .await?;
        match answer {
            Body::HelloOk(hello) => {
                client.hello = hello;
                Ok(Ok(client))
            }
            Body::Error(error) => Ok(Err(error)),
            other => bail!("unexpected answer to hello: {other:?}"),
        }
    }

    /// The application code the relay closed the session with, read from
    /// WebTransport's close capsule as a browser reads it.
    pub async fn close_code(&self) -> anyhow::Result<u32> {
        let closed = tokio::time::timeout(crate::PATIENCE, self.session.closed())
            .await
            .context("the session is still open")?;
        match closed {
            SessionError::WebTransportError(WebTransportError::Closed(code, _)) => Ok(code),
            other => bail!("the session ended by {other} rather than the relay's close"),
        }
    }

    /// Sends a voice datagram in the session.
    pub fn send_datagram(&self, datagram: Bytes) -> anyhow::Result<()> {
        self.session.send_datagram(datagram)?;
        Ok(())
    }

    /// The next voice datagram of the session, waiting up to `wait`.
    pub async fn recv_datagram(&self, wait: Duration) -> Option<Bytes> {
        tokio::time::timeout(wait, self.session.read_datagram())
            .await
            .ok()?
            .ok()
    }
}
