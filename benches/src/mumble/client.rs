//! One simulated Mumble user: logs in over TLS, opens UDP voice (the
//! server's ping echoed through the cipher proves both directions), moves
//! to a channel, and then talks or listens on UDP while its control
//! connection is drained.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::control::{self, ControlError, kind};
use super::crypt::CryptState;
use super::voice;

/// The version a client announces: 1.3.4, as Debian's server.
const VERSION: u32 = (1 << 16) | (3 << 8) | 4;
/// How long a log-in, a move or the UDP check may take.
const STEP_WITHIN: Duration = Duration::from_secs(30);
/// UDP pings sent before voice is given up on.
const UDP_TRIES: u32 = 20;

/// Why a user could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP, TLS or UDP failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The control protocol failed.
    #[error("{0}")]
    Control(#[from] ControlError),
    /// The server refused the log-in.
    #[error("log-in refused: {0}")]
    Rejected(String),
    /// The server refused an action.
    #[error("refused: {0}")]
    Denied(String),
    /// The server's `CryptSetup` was not usable.
    #[error("no usable CryptSetup before ServerSync")]
    NoCrypt,
    /// The server never echoed a UDP ping.
    #[error("no UDP ping echoed after {UDP_TRIES} tries")]
    NoUdp,
    /// A step took longer than [`STEP_WITHIN`].
    #[error("{0} took longer than {STEP_WITHIN:?}")]
    Timeout(&'static str),
}

/// TLS settings for the bench's own server on loopback: it made its own
/// self-signed certificate on its first start, so any certificate is taken;
/// the handshake's signature is still checked against it.
#[must_use]
pub fn tls_connector() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = LocalServer {
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[derive(Debug)]
struct LocalServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for LocalServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A logged-in user, before its voice is opened.
pub struct LoggedIn {
    /// Its session number.
    pub session: u32,
    control: TlsStream<TcpStream>,
    crypt: Option<CryptState>,
    server: SocketAddr,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Logs in as `name` (with `password` for SuperUser).
pub async fn log_in(
    server: SocketAddr,
    tls: &TlsConnector,
    name: &str,
    password: Option<&str>,
) -> Result<LoggedIn, ClientError> {
    tokio::time::timeout(STEP_WITHIN, log_in_now(server, tls, name, password))
        .await
        .map_err(|_| ClientError::Timeout("a log-in"))?
}

async fn log_in_now(
    server: SocketAddr,
    tls: &TlsConnector,
    name: &str,
    password: Option<&str>,
) -> Result<LoggedIn, ClientError> {
    let tcp = TcpStream::connect(server).await?;
    tcp.set_nodelay(true)?;
    let host = ServerName::try_from("localhost").expect("a valid name");
    let mut stream = tls.connect(host, tcp).await?;
    let version = control::Version {
        version: Some(VERSION),
        release: Some("ptt-benches".to_owned()),
    };
    control::send(&mut stream, kind::VERSION, &version).await?;
    let authenticate = control::Authenticate {
        username: Some(name.to_owned()),
        password: password.map(str::to_owned),
        opus: Some(true),
    };
    control::send(&mut stream, kind::AUTHENTICATE, &authenticate).await?;
    let mut crypt = None;
    loop {
        let (kind, body) = control::receive(&mut stream).await?;
        match kind {
            kind::CRYPT_SETUP => crypt = crypt_state(&control::decode(kind, &body)?),
            kind::REJECT => {
                let reject: control::Reject = control::decode(kind, &body)?;
                return Err(ClientError::Rejected(reject.reason.unwrap_or_default()));
            }
            kind::SERVER_SYNC => {
                let sync: control::ServerSync = control::decode(kind, &body)?;
                return Ok(LoggedIn {
                    session: sync.session.unwrap_or_default(),
                    control: stream,
                    crypt,
                    server,
                });
            }
            _ => {}
        }
    }
}

/// The client's cipher from the server's `CryptSetup`.
fn crypt_state(setup: &control::CryptSetup) -> Option<CryptState> {
    let key = setup.key.as_deref()?.try_into().ok()?;
    let client = setup.client_nonce.as_deref()?.try_into().ok()?;
    let server = setup.server_nonce.as_deref()?.try_into().ok()?;
    Some(CryptState::new(key, client, server))
}

impl LoggedIn {
    /// Asks for a channel `name` under the root (SuperUser may) and
    /// returns its id once the server announces it.
    pub async fn create_channel(&mut self, name: &str) -> Result<u32, ClientError> {
        let ask = control::ChannelState {
            channel_id: None,
            parent: Some(0),
            name: Some(name.to_owned()),
        };
        control::send(&mut self.control, kind::CHANNEL_STATE, &ask).await?;
        self.until(
            "creating a channel",
            kind::CHANNEL_STATE,
            |channel: control::ChannelState| {
                channel
                    .channel_id
                    .filter(|_| channel.name.as_deref() == Some(name))
            },
        )
        .await
    }

    /// Moves to `channel` and waits until the server says it did.
    pub async fn join(&mut self, channel: u32) -> Result<(), ClientError> {
        let me = self.session;
        let ask = control::UserState {
            session: Some(me),
            channel_id: Some(channel),
        };
        control::send(&mut self.control, kind::USER_STATE, &ask).await?;
        self.until(
            "moving to a channel",
            kind::USER_STATE,
            |state: control::UserState| {
                (state.session == Some(me) && state.channel_id == Some(channel)).then_some(())
            },
        )
        .await
    }

    /// Reads the control connection until a message of type `wanted`
    /// gives `pick` an answer; a refusal ends the wait, and so does
    /// [`STEP_WITHIN`] (`doing` names the step).
    async fn until<M: prost::Message + Default, T>(
        &mut self,
        doing: &'static str,
        wanted: u16,
        mut pick: impl FnMut(M) -> Option<T>,
    ) -> Result<T, ClientError> {
        let wait = async {
            loop {
                let (kind, body) = control::receive(&mut self.control).await?;
                if kind == wanted {
                    if let Some(answer) = pick(control::decode(kind, &body)?) {
                        return Ok(answer);
                    }
                } else if kind == kind::PERMISSION_DENIED {
                    return Err(denied(kind, &body));
                }
            }
        };
        tokio::time::timeout(STEP_WITHIN, wait)
            .await
            .map_err(|_| ClientError::Timeout(doing))?
    }

    /// Opens UDP voice: a stamping socket whose pings the server echoes.
    /// The control connection is handed back, to be drained.
    pub async fn open_voice(self) -> Result<(Voice, TlsStream<TcpStream>), ClientError> {
        let mut crypt = self.crypt.ok_or(ClientError::NoCrypt)?;
        let socket = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
        ptt_cli::load::stamp_arrivals(&socket)?;
        socket.set_nonblocking(true)?;
        socket.connect(self.server)?;
        let socket = UdpSocket::from_std(socket)?;
        let mut buf = [0u8; 2048];
        let mut plain = Vec::new();
        for attempt in 0..UDP_TRIES {
            socket
                .send(&crypt.encrypt(&voice::ping_packet(attempt)))
                .await?;
            let echo = async {
                loop {
                    let len = socket.recv(&mut buf).await?;
                    if crypt.decrypt(&buf[..len], &mut plain).is_ok() && voice::is_ping(&plain) {
                        return Ok::<_, std::io::Error>(());
                    }
                }
            };
            if let Ok(echoed) = tokio::time::timeout(Duration::from_millis(250), echo).await {
                echoed?;
                let voice = Voice { crypt, socket };
                return Ok((voice, self.control));
            }
        }
        Err(ClientError::NoUdp)
    }
}

fn denied(kind: u16, body: &[u8]) -> ClientError {
    let reason = control::decode::<control::PermissionDenied>(kind, body)
        .ok()
        .and_then(|d| d.reason)
        .unwrap_or_default();
    ClientError::Denied(reason)
}

/// Reads and drops whatever the server sends on a control connection until
/// it closes (user lists while others log in, state changes): a reader
/// keeps the server's send buffer from filling.
pub async fn drain(mut control: TlsStream<TcpStream>) {
    while control::receive(&mut control).await.is_ok() {}
}

/// A user's UDP voice, open.
#[derive(Debug)]
pub struct Voice {
    /// Its cipher.
    pub crypt: CryptState,
    /// Its socket, connected to the server and stamping arrivals.
    pub socket: UdpSocket,
}
