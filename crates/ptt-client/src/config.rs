//! Everything a client needs to reach and log in to a relay.
//!
//! Plain data with defaults that suit a handheld on a mobile network; the
//! `ptt` command fills it from its flags, the load generator from its
//! scenario, tests from the relay they started.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the client decides to trust the relay's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Trust exactly the certificate in this PEM file (the relay's
    /// self-signed `pttd-cert.pem`): nothing else is accepted, whatever its
    /// name or issuer. The usual choice for a district's own relay.
    Pinned(PathBuf),
    /// Trust certificates issued by the CA(s) in this PEM file, checked
    /// against [`ClientConfig::server_name`]. For relays with an operator
    /// certificate.
    Ca(PathBuf),
}

/// How the client reconnects after losing the relay.
///
/// The first attempt waits a uniformly random delay of up to
/// `first_attempt_spread` (after the relay's `GoingAway.reconnect_after_ms`,
/// if it sent one), so that a fleet cut off at the same instant — a relay
/// restart — does not log in at the same instant. If it fails, the next
/// delays start at `initial_delay` and double per failed attempt up to
/// `max_delay`, each spread by up to ±`jitter` (a fraction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    /// Reconnect at all; when false a lost connection ends the client.
    pub enabled: bool,
    /// Upper bound of the random delay before the first attempt.
    pub first_attempt_spread: Duration,
    /// Delay before the second attempt; it doubles for every later one.
    pub initial_delay: Duration,
    /// Upper bound of the delay between attempts.
    pub max_delay: Duration,
    /// Random spread of each delay, as a fraction of it (0.0..=1.0).
    pub jitter: f64,
}

/// Default [`ReconnectPolicy::first_attempt_spread`]. A restarted relay
/// resets every terminal at its next packet, within [`KEEP_ALIVE`]; after a
/// crash during a call the last voice frame lined the keep-alives up, so the
/// whole fleet learns it within milliseconds. Half a second spreads those
/// logins (each a TLS handshake and a credential check on the relay) instead
/// of letting them arrive together, while "relay back → voice heard" stays
/// under 2 s with the default keep-alive (up to 1 s to the reset, up to
/// 0.5 s to the attempt, then the login).
pub const FIRST_ATTEMPT_SPREAD: Duration = Duration::from_millis(500);

/// Default [`ClientConfig::keep_alive`]: the relay's own keep-alive
/// interval (`pttd --keep-alive`, 1 s), within the 1–5 s that voice.md §1.1
/// asks of clients. The keep-alive timer restarts with every packet
/// received, so while the relay pings every second this costs no extra
/// packet; when the relay goes silent — it crashed — the terminal sends its
/// first packet within 1 s, and a restarted relay answers it with a
/// stateless reset. It is what bounds the fleet's deafness after a crash:
/// with 2 s, 1,000 terminals heard voice again 2.3 s (p50) and 3.0 s (p99)
/// after the restart; with 1 s, 1.4 s and 2.0 s. With 10 s a terminal stayed
/// silent, hence deaf, until its 10 s idle timeout.
///
/// What it costs an idle terminal (measured on loopback): one packet each
/// way per second, 35 and 38 bytes of UDP payload (about 65 on the wire),
/// some 11 MB a day; half that at 2 s. A handset's radio stays connected
/// between packets closer than its inactivity timer (seconds), so battery
/// costs much the same anywhere from 1 s to several seconds. A fleet on
/// metered data may raise it, and stays deaf that much longer after a
/// crash while nobody talks (a call in progress still learns of it at once,
/// see [`STALL_PROBE`]).
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How long a burst may go without a frame, its last frame not yet heard,
/// before the terminal sends the relay one keep-alive datagram. Frames come
/// every 20–60 ms, so a quarter second of silence means the talker's radio
/// or the relay is gone; if the relay was restarted, the probe draws the
/// stateless reset at once, and the terminal is back in the call without
/// waiting for its [`KEEP_ALIVE`]. It costs one small datagram per listener
/// per stalled burst.
pub const STALL_PROBE: Duration = Duration::from_millis(250);

/// With other relays to move to ([`ClientConfig::other_servers`]), how long
/// a relay that has acknowledged nothing lately has to answer a `Ping`
/// before the terminal takes it for dead and moves on. A live relay answers
/// within a round trip; a killed one never does, and nothing else would
/// tell the terminal before its idle timeout.
pub const STALL_ANSWER: Duration = Duration::from_millis(500);

/// Default [`ClientConfig::quality_report_interval`]: every 5 s, a little
/// over the relay's one counted report per session per 4 s, so none is
/// refused for its rate and the dashboard's figures stay current.
pub const QUALITY_REPORT_INTERVAL: Duration = Duration::from_secs(5);

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            first_attempt_spread: FIRST_ATTEMPT_SPREAD,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            jitter: 0.25,
        }
    }
}

/// The client configuration.
#[derive(Clone)]
pub struct ClientConfig {
    /// UDP address of the relay.
    pub server: SocketAddr,
    /// The other relays of the same cluster (`pttd --cluster`), tried in
    /// turn after `server` when a relay cannot be reached or is lost: a
    /// terminal whose relay died logs in to the next one (with its
    /// resumption credential, which every relay of a cluster accepts) and
    /// is back in its groups. Empty for a relay on its own. All must
    /// present a certificate `trust` accepts.
    pub other_servers: Vec<SocketAddr>,
    /// Name the relay's certificate must carry when trusting a CA; ignored
    /// for a pinned certificate. `localhost` for the generated one.
    pub server_name: String,
    /// How to trust the relay's certificate.
    pub trust: Trust,
    /// The terminal id provisioned in the relay's directory.
    pub terminal_id: u32,
    /// The terminal's secret. Never logged (the `Debug` output redacts it).
    pub secret: Vec<u8>,
    /// Sent in `Hello` and logged by the relay, e.g. `ptt-cli/0.1.0`.
    pub client_version: String,
    /// Longest wait for the QUIC handshake plus the `Hello` answer; past it
    /// the relay counts as unreachable.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to any other request.
    pub request_timeout: Duration,
    /// QUIC idle timeout: a relay silent for this long counts as lost.
    pub idle_timeout: Duration,
    /// Interval of QUIC keep-alive pings, so NAT bindings stay open while
    /// nobody talks (voice.md §1.1), and so a relay that restarted after a
    /// crash hears from the terminal and resets it (see [`KEEP_ALIVE`]).
    pub keep_alive: Duration,
    /// What to do after losing the connection.
    pub reconnect: ReconnectPolicy,
    /// Events buffered for a slow reader before it misses some (it is then
    /// told how many with [`crate::Event::Lagged`]). 50 voice frames are
    /// one second of one talker.
    pub event_capacity: usize,
    /// Encoded frames held while waiting for the floor, so the first
    /// syllable is not clipped; when full the oldest is dropped. 50 frames
    /// are one second of audio.
    pub talk_buffer_frames: usize,
    /// Send a `QualityReport` this often (only when there is something to
    /// report); `None` disables it. On by default ([`QUALITY_REPORT_INTERVAL`]):
    /// the operators' mouth-to-ear and loss figures come from these.
    pub quality_report_interval: Option<Duration>,
    /// Answer every alert that asks for acknowledgement with DELIVERED as
    /// soon as it arrives, so the dispatcher's roll call counts this
    /// terminal as reached (on by default). Turn off only for a client that
    /// shows alerts somewhere else first and sends the receipt itself.
    pub auto_ack_alerts: bool,
    /// Carry voice in QUIC datagrams (on by default). Off asks the relay
    /// for the voice stream fallback (voice.md §4: one stream per burst),
    /// for paths or middleboxes that drop datagrams; the connection then
    /// does not advertise datagram support at all. A relay that offers no
    /// datagrams gets streams either way.
    pub datagrams: bool,
}

impl ClientConfig {
    /// A configuration with the defaults for everything but where the relay
    /// is, how to trust it and who this terminal is.
    pub fn new(
        server: SocketAddr,
        trust: Trust,
        terminal_id: u32,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            server,
            other_servers: Vec::new(),
            server_name: "localhost".to_owned(),
            trust,
            terminal_id,
            secret: secret.into(),
            client_version: concat!("ptt-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            keep_alive: KEEP_ALIVE,
            reconnect: ReconnectPolicy::default(),
            event_capacity: 1024,
            talk_buffer_frames: 100,
            quality_report_interval: Some(QUALITY_REPORT_INTERVAL),
            auto_ack_alerts: true,
            datagrams: true,
        }
    }
}

/// Hand-written so the secret never appears in logs.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("other_servers", &self.other_servers)
            .field("server_name", &self.server_name)
            .field("trust", &self.trust)
            .field("terminal_id", &self.terminal_id)
            .field(
                "secret",
                &format_args!("<{} bytes redacted>", self.secret.len()),
            )
            .field("client_version", &self.client_version)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("reconnect", &self.reconnect)
            .field("event_capacity", &self.event_capacity)
            .field("talk_buffer_frames", &self.talk_buffer_frames)
            .field("datagrams", &self.datagrams)
            .field("quality_report_interval", &self.quality_report_interval)
            .field("auto_ack_alerts", &self.auto_ack_alerts)
            .finish()
    }
}
