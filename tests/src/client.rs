//! A minimal real client: QUIC to the relay with its certificate pinned, the
//! control stream, and raw voice datagrams.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_proto::voice::VoiceDatagram;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::PATIENCE;
use crate::control::{Control, Inbox};
use crate::directory::secret;

/// A logged-in terminal.
pub struct Client {
    pub terminal: u32,
    pub conn: quinn::Connection,
    pub hello: pb::HelloOk,
    endpoint: quinn::Endpoint,
    control: Control<quinn::SendStream>,
}

/// A client endpoint that trusts only the relay's certificate.
pub fn endpoint(cert: &Path) -> anyhow::Result<quinn::Endpoint> {
    endpoint_with(cert, true)
}

/// A client endpoint; `datagrams` false makes a peer without RFC 9221
/// support.
pub fn endpoint_with(cert: &Path, datagrams: bool) -> anyhow::Result<quinn::Endpoint> {
    endpoint_speaking(cert, b"ptt/1", datagrams)
}

/// A client endpoint offering `alpn` (a peer speaking another protocol).
pub fn endpoint_speaking(
    cert: &Path,
    alpn: &[u8],
    datagrams: bool,
) -> anyhow::Result<quinn::Endpoint> {
    endpoint_tuned(cert, alpn, |transport| {
        transport.datagram_receive_buffer_size(datagrams.then_some(1 << 20));
    })
}

/// A client endpoint without QUIC datagrams (voice.md §4's stream fallback)
/// whose streams' flow-control window is `stream_window` bytes: a small one
/// makes a listener that does not read its voice streams block the relay.
pub fn endpoint_without_datagrams(
    cert: &Path,
    stream_window: u32,
) -> anyhow::Result<quinn::Endpoint> {
    endpoint_tuned(cert, b"ptt/1", |transport| {
        transport
            .datagram_receive_buffer_size(None)
            .stream_receive_window(stream_window.into());
    })
}

/// A client endpoint offering `alpn`, its transport set by `tune`.
fn endpoint_tuned(
    cert: &Path,
    alpn: &[u8],
    tune: impl FnOnce(&mut quinn::TransportConfig),
) -> anyhow::Result<quinn::Endpoint> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let mut transport = quinn::TransportConfig::default();
    tune(&mut transport);
    config.transport_config(Arc::new(transport));
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

impl Client {
    /// Connects and logs in as `terminal` with its test secret.
    pub async fn connect(addr: SocketAddr, cert: &Path, terminal: u32) -> anyhow::Result<Self> {
        match Self::login(addr, cert, terminal, secret(terminal).as_bytes()).await? {
            Ok(client) => Ok(client),
            Err(error) => bail!("login of {terminal} refused: {error:?}"),
        }
    }

    /// Connects and says `Hello`; the relay's refusal is returned as `Err`
    /// inside `Ok` so tests can check it.
    pub async fn login(
        addr: SocketAddr,
        cert: &Path,
        terminal: u32,
        secret: &[u8],
    ) -> anyhow::Result<Result<Self, pb::Error>> {
        Self::login_on(endpoint(cert)?, addr, terminal, secret).await
    }

    /// Like [`Client::login`] from a given endpoint.
    pub async fn login_on(
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        terminal: u32,
        secret: &[u8],
    ) -> anyhow::Result<Result<Self, pb::Error>> {
        let capabilities = pb::Capabilities {
            datagrams: true,
            ..Default::default()
        };
        Self::login_announcing(endpoint, addr, terminal, secret, capabilities).await
    }

    /// Like [`Client::login_on`], announcing `capabilities` in `Hello`.
    pub async fn login_announcing(
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        terminal: u32,
        secret: &[u8],
        capabilities: pb::Capabilities,
    ) -> anyhow::Result<Result<Self, pb::Error>> {
        let mut client = Self::open(endpoint, addr, terminal).await?;
        let answer = client
            .request(Request::Hello(pb::Hello {
                protocol_version: 1,
                terminal_id: terminal,
                secret: Bytes::copy_from_slice(secret),
                client_version: "ptt-tests".into(),
                capabilities: Some(capabilities),
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

    /// Connects and opens the control stream, saying nothing yet: for tests
    /// of what the relay does before `Hello`. `terminal` is only a label.
    pub async fn open(
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        terminal: u32,
    ) -> anyhow::Result<Self> {
        let conn = endpoint
            .connect(addr, "localhost")?
            .await
            .context("QUIC handshake")?;
        let (send, recv) = conn.open_bi().await?;
        let inbox = Inbox::read(recv, format!("terminal {terminal}"));
        Ok(Self {
            terminal,
            conn,
            hello: pb::HelloOk::default(),
            endpoint,
            control: Control::new(send, inbox),
        })
    }

    /// The application code the relay closed the connection with.
    pub async fn close_code(&self) -> anyhow::Result<u64> {
        let closed = tokio::time::timeout(PATIENCE, self.conn.closed())
            .await
            .with_context(|| format!("terminal {}: connection still open", self.terminal))?;
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => Ok(u64::from(close.error_code)),
            other => bail!("connection ended by {other} rather than the relay's close"),
        }
    }

    /// Sends a request without waiting; returns its id.
    pub async fn send(&mut self, body: Request) -> anyhow::Result<u64> {
        self.control.send(body).await
    }

    /// Sends a `ClientMessage` as given, request id and body (even none)
    /// included; returns its request id.
    pub async fn send_message(&mut self, message: pb::ClientMessage) -> anyhow::Result<u64> {
        self.control.send_message(message).await
    }

    /// Writes raw bytes on the control stream (for malformed-input tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.control.send_raw(bytes).await
    }

    /// Sends a request and waits for its answer; events that arrive first
    /// are kept for later.
    pub async fn request(&mut self, body: Request) -> anyhow::Result<Body> {
        self.control.request(body).await
    }

    /// The first message (held or new) that `matches`, waiting up to
    /// [`PATIENCE`]; messages that do not match stay held, in order.
    pub async fn expect(
        &mut self,
        matches: impl Fn(&pb::ServerMessage) -> bool,
    ) -> anyhow::Result<pb::ServerMessage> {
        self.control.inbox.expect(matches).await
    }

    /// Like [`Client::expect`] with a custom wait; `None` if nothing matched.
    pub async fn expect_within(
        &mut self,
        wait: Duration,
        matches: impl Fn(&pb::ServerMessage) -> bool,
    ) -> anyhow::Result<Option<pb::ServerMessage>> {
        self.control.inbox.expect_within(wait, matches).await
    }

    /// The first message whose body `pick` accepts, returning what it picked.
    pub async fn expect_body<T>(&mut self, pick: impl Fn(&Body) -> Option<T>) -> anyhow::Result<T> {
        self.control.inbox.expect_body(pick).await
    }

    /// Drops every message received so far.
    pub fn clear(&mut self) {
        self.control.inbox.clear();
    }

    /// Requests the floor of `group` at normal priority; returns the answer.
    pub async fn press(&mut self, group: u32) -> anyhow::Result<Body> {
        self.press_with(group, pb::Priority::Normal, pb::FloorKind::Normal)
            .await
    }

    /// Requests the floor with a priority and kind.
    pub async fn press_with(
        &mut self,
        group: u32,
        priority: pb::Priority,
        kind: pb::FloorKind,
    ) -> anyhow::Result<Body> {
        self.request(Request::FloorRequest(pb::FloorRequest {
            group_id: group,
            priority: priority.into(),
            kind: kind.into(),
        }))
        .await
    }

    /// Releases the floor of `group` and waits for the `Ack`.
    pub async fn release(&mut self, group: u32) -> anyhow::Result<Body> {
        self.request(Request::FloorRelease(pb::FloorRelease {
            group_id: group,
            burst_id: 0,
            last_sequence: None,
        }))
        .await
    }

    /// Sends a raw datagram.
    pub fn send_datagram(&self, datagram: Bytes) -> anyhow::Result<()> {
        self.conn.send_datagram(datagram)?;
        Ok(())
    }

    /// Moves the client to a new local UDP port, as a NAT rebinding or a
    /// handset changing networks does: the relay sees the connection's
    /// packets come from another address.
    pub fn rebind(&self) -> anyhow::Result<()> {
        self.endpoint
            .rebind(std::net::UdpSocket::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            )))?)?;
        Ok(())
    }

    /// The next voice datagram, or `None` after `wait`.
    pub async fn recv_voice(&self, wait: Duration) -> Option<VoiceDatagram> {
        let datagram = tokio::time::timeout(wait, self.conn.read_datagram())
            .await
            .ok()?
            .ok()?;
        VoiceDatagram::parse(datagram).ok()
    }

    /// Sends `datagrams` as the records of one new voice stream (voice.md
    /// §4), 2 ms apart (as a talker's backlog goes out; all at once would
    /// overflow a datagram listener's bounded queue, which drops the
    /// oldest), finished after the last; the stream is returned for tests
    /// that look at how the relay answered it.
    pub async fn send_on_stream(&self, datagrams: &[Bytes]) -> anyhow::Result<quinn::SendStream> {
        let mut stream = self.conn.open_uni().await?;
        for datagram in datagrams {
            let prefix = ptt_proto::voice_stream::record_prefix(datagram.len())?;
            stream.write_all(&prefix).await?;
            stream.write_all(datagram).await?;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stream.finish()?;
        Ok(stream)
    }

    /// The next voice stream the relay opens to this terminal, or `None`
    /// after `wait`.
    pub async fn next_voice_stream(&self, wait: Duration) -> Option<quinn::RecvStream> {
        tokio::time::timeout(wait, self.conn.accept_uni())
            .await
            .ok()?
            .ok()
    }

    /// Every record of a voice stream, read until it ends or `wait` passes;
    /// true with them if it ended with FIN (not a reset, not the timeout).
    pub async fn read_voice_stream(
        stream: &mut quinn::RecvStream,
        wait: Duration,
    ) -> anyhow::Result<(Vec<VoiceDatagram>, bool)> {
        let mut records = ptt_proto::voice_stream::RecordReader::new();
        let mut voice = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        let finished = loop {
            while let Some(datagram) = records.next_record()? {
                voice.push(VoiceDatagram::parse(datagram)?);
            }
            let read = tokio::time::timeout_at(deadline, stream.read_chunk(usize::MAX, true));
            match read.await {
                Ok(Ok(Some(chunk))) => records.extend(&chunk.bytes),
                Ok(Ok(None)) => break records.buffered() == 0,
                Ok(Err(_)) | Err(_) => break false,
            }
        };
        Ok((voice, finished))
    }

    /// The `GoingAway` on the control stream, then the application code the
    /// relay closed the connection with (proto/voice.md §1: the message
    /// first, then the code).
    pub async fn going_away_and_close(&mut self) -> anyhow::Result<(pb::GoingAway, u64)> {
        let id = self.terminal;
        let going_away = self
            .expect_body(|body| match body {
                Body::GoingAway(g) => Some(g.clone()),
                _ => None,
            })
            .await
            .with_context(|| format!("terminal {id}: no GoingAway"))?;
        Ok((going_away, self.close_code().await?))
    }

    /// Closes the connection and waits until the relay has been told.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        self.endpoint.wait_idle().await;
    }
}

/// The answer is an `Ack` (for `ensure!`: anything else is the failure).
pub fn acked(body: &Body) -> bool {
    matches!(body, Body::Ack(_))
}

/// The granted burst id, if `body` is `FloorGranted`.
pub fn granted(body: &Body) -> Option<u32> {
    match body {
        Body::FloorGranted(g) => Some(g.burst_id),
        _ => None,
    }
}
