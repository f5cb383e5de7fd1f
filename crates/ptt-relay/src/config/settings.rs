//! What can be set: the one flat [`Config`] struct (each setting's flag, `PTTD_*` variable,
//! TOML key and built-in default) and the `pttd` command line ([`Cli`]) that carries it.
//!
//! The fields stay in one struct, in this order, because the order is the wire: it is the
//! order of `pttd --help` and of the keys a bad config file is told to choose from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ptt_directory::toml_text::{DurationError, duration_serde, parse_duration};
use ptt_ops::{AdminTokens, ViewToken};
use ptt_relay_core::session::Rate;
use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::rate_text::{parse_rate_arg, rate_serde};

/// The `pttd` command line: an optional subcommand, otherwise run the relay with [`Config`].
#[derive(Debug, Clone, Parser)]
#[command(name = "pttd", version, about = "Push-to-talk relay over QUIC")]
pub struct Cli {
    /// What to do instead of serving; `None` runs the relay.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The relay configuration, already merged with `--config FILE` by [`Cli::load`].
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands of `pttd` that do something other than serve.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Write a large directory (and its plain-text secrets) for load tests.
    GenDirectory(GenDirectoryArgs),
}

/// Arguments of `pttd gen-directory`; passed to [`ptt_directory::write_generated`].
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct GenDirectoryArgs {
    /// Number of terminals to generate (the first few are dispatchers).
    #[arg(long)]
    pub terminals: usize,
    /// Number of groups to generate (group 1 is a district group holding everyone).
    #[arg(long)]
    pub groups: usize,
    /// Where to write the directory TOML.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the secrets, one `<terminal id> <secret>` per line.
    #[arg(long)]
    pub secrets: PathBuf,
    /// Seed of the generator: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Everything the relay needs to start; see the module docs for where values come from.
/// Not `PartialEq`: it holds secrets (see [`Token`](ptt_ops::Token)).
#[derive(Debug, Clone, Args, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// TOML file to read settings from (flags still win over it).
    #[arg(long, short = 'c', value_name = "FILE", env = "PTTD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Directory for the call log, recordings and the generated certificate.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./data",
        env = "PTTD_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// UDP address the QUIC endpoint binds.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7700",
        env = "PTTD_LISTEN"
    )]
    pub listen: SocketAddr,

    /// TCP address of the operations HTTP server (metrics, JSON API, dashboard).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7780",
        env = "PTTD_OPS_LISTEN"
    )]
    pub ops_listen: SocketAddr,

    /// UDP address of the dispatchers' console port: browsers log in over
    /// WebTransport (HTTP/3) with a certificate they pin by hash, which the
    /// console page on the ops port hands them.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7781",
        env = "PTTD_CONSOLE_LISTEN"
    )]
    pub console_listen: SocketAddr,

    /// Tile server for the console's map, a URL template with `{z}`, `{x}` and `{y}`
    /// (Web-Mercator tiles, e.g. `https://tiles.example.org/{z}/{x}/{y}.png`): browsers
    /// fetch streets from it under the district's zones. Unset, the map is the zones alone,
    /// which needs no network beyond the relay.
    #[arg(long, value_name = "URL", env = "PTTD_CONSOLE_TILES")]
    pub console_tiles: Option<ptt_ops::TileUrl>,

    /// Directory TOML (terminals, groups, ACLs); without it the built-in demo district is used.
    #[arg(long, value_name = "FILE", env = "PTTD_DIRECTORY")]
    pub directory: Option<PathBuf>,

    /// TLS certificate chain (PEM); without it a self-signed one is generated in the data dir.
    #[arg(long, value_name = "FILE", env = "PTTD_CERT")]
    pub cert: Option<PathBuf>,

    /// TLS private key (PEM) matching `--cert`.
    #[arg(long, value_name = "FILE", env = "PTTD_KEY")]
    pub key: Option<PathBuf>,

    /// Tracing filter, e.g. `info` or `ptt_relay_core=debug,quinn=warn`.
    #[arg(long, value_name = "FILTER", default_value = "info", env = "PTTD_LOG")]
    pub log: String,

    /// Most terminals logged in at once; a login beyond it is answered "retry later".
    /// Connections not yet logged in never take these places (see `max-unauthenticated`).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        env = "PTTD_MAX_CONNECTIONS"
    )]
    pub max_connections: usize,

    /// Time a new connection has to finish the QUIC handshake and say `Hello` once it has its
    /// unauthenticated slot; also how long an attempt may wait for such a slot. A terminal
    /// needs two or three round trips (a lost packet adds a retransmission of about a
    /// second): 5 s covers a poor cellular link, while a peer that never says `Hello` holds
    /// its slot only that long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration_arg, env = "PTTD_HELLO_TIMEOUT")]
    #[serde(with = "duration_serde")]
    pub hello_timeout: Duration,

    /// Most connections not yet logged in at once (QUIC handshake, waiting for `Hello`, being
    /// authenticated); more wait briefly for a place, or are refused. Logins take well under
    /// a second and password checks are CPU-bound, so 64 in flight keep a district's
    /// reconnect storm moving while bounding what strangers can make the relay hold.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        env = "PTTD_MAX_UNAUTHENTICATED"
    )]
    pub max_unauthenticated: usize,

    /// Most connections not yet logged in from one source address (IPv4 address or IPv6
    /// /64); more from it wait their turn. With 8 of 64, one address (a depot behind NAT, or
    /// an attacker) takes at most an eighth of the places; terminals elsewhere keep theirs.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        env = "PTTD_MAX_UNAUTHENTICATED_PER_ADDRESS"
    )]
    pub max_unauthenticated_per_address: usize,

    /// A connection silent for this long is closed, freeing its floor ("10s", "1m").
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_arg, env = "PTTD_IDLE_TIMEOUT")]
    #[serde(with = "duration_serde")]
    pub idle_timeout: Duration,

    /// Interval of the relay's QUIC keep-alive pings to a quiet terminal; must be shorter
    /// than the idle timeout. Any packet from the terminal restarts it, so a terminal that
    /// pings more often itself (the client library: every second, which bounds how long it
    /// stays deaf after a relay crash) never draws one: an idle terminal then costs one
    /// small packet each way a second, not two. For terminals that do not ping, it keeps the
    /// connection and their NAT binding alive.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_arg, env = "PTTD_KEEP_ALIVE")]
    #[serde(with = "duration_serde")]
    pub keep_alive: Duration,

    /// Per-connection datagram send budget in milliseconds of audio; older frames are dropped.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 60,
        env = "PTTD_DATAGRAM_QUEUE_MS"
    )]
    pub datagram_queue_ms: u32,

    /// Voice datapath shards: each a thread with its own event loop, UDP socket (one port,
    /// `SO_REUSEPORT`) and QUIC endpoint, serving the connections that arrive on it; the
    /// kernel hands each packet to its connection's shard by connection id, so a terminal
    /// whose address changes stays on its shard. 0: one per core this process may run on
    /// (at most 64).
    #[arg(long, value_name = "N", default_value_t = 0, env = "PTTD_SHARDS")]
    pub shards: usize,

    /// Pin each shard's thread to a core of its own (when there are no more shards than
    /// cores), so a shard's connections stay in that core's caches. Meant for a host that
    /// runs the relay alone; where other processes share the cores (a VM, a load generator
    /// beside it) a pinned shard cannot move away from them: on a shared 2-core VM pinned
    /// shards used 1-15 % more CPU per forward than shards the kernel placed.
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, env = "PTTD_PIN_SHARDS")]
    pub pin_shards: bool,

    /// Capacity of the call-log queue; records beyond it are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = 4096, env = "PTTD_LOG_QUEUE")]
    pub log_queue: usize,

    /// Failed logins allowed per (source address, terminal) per minute before that terminal is
    /// refused from that address unchecked (other terminals behind the address are not); an
    /// attempt being checked counts until it succeeds. 0: no limit.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        env = "PTTD_AUTH_FAILURES_PER_MINUTE"
    )]
    pub auth_failures_per_minute: u32,

    /// Failed logins per minute across the relay before every failed login is answered only
    /// after `auth-failure-delay`; 0: never.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 300,
        env = "PTTD_AUTH_GLOBAL_FAILURES_PER_MINUTE"
    )]
    pub auth_global_failures_per_minute: u32,

    /// How late a failed login is answered while the global budget is exceeded (at most 1m).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_arg, env = "PTTD_AUTH_FAILURE_DELAY")]
    #[serde(with = "duration_serde")]
    pub auth_failure_delay: Duration,

    /// Secret verifications (argon2) running at once; 0: one per core but one (at least one),
    /// so hashing never takes the voice path's last core.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "PTTD_AUTH_HASH_WORKERS"
    )]
    pub auth_hash_workers: usize,

    /// Memory the running verifications may use together, in MiB; 0: the workers times the
    /// largest memory cost (`m=`) among the directory's hashes.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = 0,
        env = "PTTD_AUTH_HASH_MEMORY_MIB"
    )]
    pub auth_hash_memory_mib: u32,

    /// Logins that may wait for a verification; more are refused at once (RATE_LIMITED).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1024,
        env = "PTTD_AUTH_HASH_QUEUE"
    )]
    pub auth_hash_queue: usize,

    /// Longest a login may expect to wait for its verification, judged from recent ones; a
    /// login that would wait longer is refused at once (RATE_LIMITED) and retries later.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_arg, env = "PTTD_AUTH_HASH_MAX_WAIT")]
    #[serde(with = "duration_serde")]
    pub auth_hash_max_wait: Duration,

    /// How long a session resumption credential (given at every login, presented instead of
    /// the secret on the next) is valid, at most 30 days; "0" turns resumption off.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration_arg, env = "PTTD_RESUME_TTL")]
    #[serde(with = "duration_serde")]
    pub resume_ttl: Duration,

    /// Bearer token of the admin API on the ops port (disable terminals, clear emergencies,
    /// change group members), shared by whoever holds it; without it (or empty) those
    /// routes answer 403. Never logged. For one token per operator, named in the audit
    /// trail, use `admin-token-file`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PTTD_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<AdminTokens>,

    /// File holding the admin tokens, so none is on the command line where `ps` shows it:
    /// one token per line, preceded by the name of the operator it belongs to
    /// (`duty officer Li 3f9c...`; the token is the last word), who is then named in the
    /// call log for every action made with it. A single line may be a bare token (shared,
    /// like `admin-token`). Blank lines and `#` comments are skipped. Read once at start;
    /// giving both this and `admin-token` is an error.
    #[arg(long, value_name = "FILE", env = "PTTD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Token that guards reading the ops port (history, recordings, dashboard, live feed):
    /// when set, every ops route but `/metrics` needs `Authorization: Bearer <view or admin
    /// token>` or the `pttd_view` cookie a browser gets by opening `/?token=<token>` once.
    /// Unset, the ops port is open to whoever reaches it. Never logged.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PTTD_VIEW_TOKEN",
        hide_env_values = true
    )]
    pub view_token: Option<ViewToken>,

    /// Host names (besides IP literals and `localhost`) the ops port answers to, e.g. the
    /// name operators browse to; any other `Host` header is refused with 421 so a web page
    /// cannot reach the ops port through DNS rebinding.
    #[arg(
        long,
        value_name = "HOST,...",
        value_delimiter = ',',
        env = "PTTD_OPS_ALLOWED_HOSTS"
    )]
    pub ops_allowed_hosts: Vec<String>,

    /// Most HTTP connections the ops port holds at once; one more is answered 503 and
    /// closed at once, so clients beyond it take no file descriptors.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 256,
        env = "PTTD_OPS_MAX_CONNECTIONS"
    )]
    pub ops_max_connections: usize,

    /// An ops-port connection must send a request's headers within this long of waiting for
    /// one (its opening, or the previous answer's end), or it is closed ("5s").
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration_arg, env = "PTTD_OPS_HEADER_TIMEOUT")]
    #[serde(with = "duration_serde")]
    pub ops_header_timeout: Duration,

    /// An ops-port connection whose request moves no byte either way for this long is
    /// closed (a client that stops reading its answer); a live event stream never is.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration_arg, env = "PTTD_OPS_IDLE_TIMEOUT")]
    #[serde(with = "duration_serde")]
    pub ops_idle_timeout: Duration,

    /// Wrong ops-port tokens (admin or view) one address may send in a minute; past it
    /// every token it sends is answered 429 unchecked until its minute is over. 0: no limit.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        env = "PTTD_OPS_TOKEN_FAILURES_PER_MINUTE"
    )]
    pub ops_token_failures_per_minute: u32,

    /// Wrong ops-port tokens all addresses together may send in a minute; past it every
    /// token is answered 429 unchecked until the minute is over. 0: no limit.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 200,
        env = "PTTD_OPS_TOKEN_FAILURES_PER_MINUTE_TOTAL"
    )]
    pub ops_token_failures_per_minute_total: u32,

    /// Record every talk burst as an Ogg Opus file (`--record false` turns it off).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, env = "PTTD_RECORD")]
    pub record: bool,

    /// Where recordings are written; default `<data-dir>/recordings`.
    #[arg(long, value_name = "DIR", env = "PTTD_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,

    /// Recordings older than this many days are deleted; 0 keeps them regardless of age.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 30,
        env = "PTTD_RECORDING_RETENTION_DAYS"
    )]
    pub recording_retention_days: u32,

    /// The oldest recordings are deleted while all of them take more than this; 0 is no limit.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = 10_240,
        env = "PTTD_RECORDING_MAX_MIB"
    )]
    pub recording_max_mib: u64,

    /// Capacity of the recording queue in voice frames (1 to 1048576); frames beyond it are
    /// dropped and counted.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4096,
        env = "PTTD_RECORDING_QUEUE"
    )]
    pub recording_queue: usize,

    /// Backup calls: an emergency pulls in the on-duty guards of every compound whose
    /// premises are within this many metres of the caller's last position (1 to 20000).
    #[arg(
        long,
        value_name = "METRES",
        default_value_t = 400,
        env = "PTTD_BACKUP_RADIUS_M"
    )]
    pub backup_radius_m: u32,

    /// Private calls that can be up at once (1 to 4096); each is a temporary group whose
    /// task is started with the relay.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        env = "PTTD_PRIVATE_CALLS"
    )]
    pub private_calls: u32,

    /// How long a private call rings before the caller is told nobody answered (1s to 5m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration_arg, env = "PTTD_PRIVATE_CALL_ANSWER_TIMEOUT")]
    #[serde(with = "duration_serde")]
    pub private_call_answer_timeout: Duration,

    /// NATS server of the cluster to join (`nats://host:port`, or several servers of one NATS
    /// cluster separated by commas): relays sharing it serve one district together, each
    /// group's floor decided by one of them at a time. Unset, the relay runs alone and never
    /// connects to NATS.
    #[arg(long, value_name = "URL", env = "PTTD_CLUSTER")]
    pub cluster: Option<String>,

    /// This relay's id in its cluster, unique among its relays (letters, digits, `-`, `_`);
    /// needed with `cluster`.
    #[arg(long, value_name = "ID", env = "PTTD_RELAY_ID")]
    pub relay_id: Option<String>,

    /// With NATS out of reach, serve this relay's terminals with a local floor (site
    /// trunking, the default), or refuse presses until NATS is back (`false`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, env = "PTTD_SITE_TRUNKING")]
    pub site_trunking: bool,

    /// Floor requests one terminal may make (not emergency ones; releases are never limited):
    /// "N/M" is N a second on average and M at once. Beyond it `RATE_LIMITED`.
    #[arg(long, value_name = "N/M", default_value = "10/20", value_parser = parse_rate_arg, env = "PTTD_RATE_FLOOR")]
    #[serde(with = "rate_serde")]
    pub rate_floor: Rate,

    /// Joins and leaves one terminal may request ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "20/50", value_parser = parse_rate_arg, env = "PTTD_RATE_MEMBERSHIP")]
    #[serde(with = "rate_serde")]
    pub rate_membership: Rate,

    /// Position reports one terminal may send ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "100/200", value_parser = parse_rate_arg, env = "PTTD_RATE_LOCATION")]
    #[serde(with = "rate_serde")]
    pub rate_location: Rate,

    /// Status messages one terminal may send ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "5/20", value_parser = parse_rate_arg, env = "PTTD_RATE_STATUS")]
    #[serde(with = "rate_serde")]
    pub rate_status: Rate,

    /// Alerts (roll calls) one dispatcher may send ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "1/5", value_parser = parse_rate_arg, env = "PTTD_RATE_ALERT")]
    #[serde(with = "rate_serde")]
    pub rate_alert: Rate,

    /// Answers to alerts one terminal may send ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "5/20", value_parser = parse_rate_arg, env = "PTTD_RATE_ALERT_ACK")]
    #[serde(with = "rate_serde")]
    pub rate_alert_ack: Rate,

    /// Private call setups, answers and hang-ups one terminal may send ("N/M": N a second, M
    /// at once).
    #[arg(long, value_name = "N/M", default_value = "5/20", value_parser = parse_rate_arg, env = "PTTD_RATE_PRIVATE_CALL")]
    #[serde(with = "rate_serde")]
    pub rate_private_call: Rate,

    /// Receive-quality reports one terminal may send ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "1/5", value_parser = parse_rate_arg, env = "PTTD_RATE_QUALITY")]
    #[serde(with = "rate_serde")]
    pub rate_quality: Rate,

    /// Pings and other requests the relay answers alone ("N/M": N a second, M at once).
    #[arg(long, value_name = "N/M", default_value = "10/20", value_parser = parse_rate_arg, env = "PTTD_RATE_OTHER")]
    #[serde(with = "rate_serde")]
    pub rate_other: Rate,

    /// `RATE_LIMITED` refusals one terminal may ignore ("N/M": N a second, M at once); past
    /// them it is cut off (close code 1).
    #[arg(long, value_name = "N/M", default_value = "5/50", value_parser = parse_rate_arg, env = "PTTD_RATE_REFUSALS_TOLERATED")]
    #[serde(with = "rate_serde")]
    pub rate_refusals_tolerated: Rate,

    /// Position reports of one terminal sent on to the control room ("N/M": N a second, M at
    /// once); zone logic still sees every report within `rate-location`.
    #[arg(long, value_name = "N/M", default_value = "50/100", value_parser = parse_rate_arg, env = "PTTD_RATE_LOCATION_FORWARDED")]
    #[serde(with = "rate_serde")]
    pub rate_location_forwarded: Rate,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            config: None,
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 7780)),
            console_listen: SocketAddr::from(([127, 0, 0, 1], 7781)),
            console_tiles: None,
            directory: None,
            cert: None,
            key: None,
            log: "info".to_owned(),
            max_connections: 10_000,
            hello_timeout: Duration::from_secs(5),
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 8,
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            datagram_queue_ms: 60,
            shards: 0,
            pin_shards: false,
            log_queue: 4096,
            auth_failures_per_minute: 10,
            auth_global_failures_per_minute: 300,
            auth_failure_delay: Duration::from_secs(2),
            auth_hash_workers: 0,
            auth_hash_memory_mib: 0,
            auth_hash_queue: 1024,
            auth_hash_max_wait: Duration::from_secs(2),
            resume_ttl: Duration::from_secs(24 * 3600),
            admin_token: None,
            admin_token_file: None,
            view_token: None,
            ops_allowed_hosts: Vec::new(),
            ops_max_connections: 256,
            ops_header_timeout: Duration::from_secs(5),
            ops_idle_timeout: Duration::from_secs(60),
            ops_token_failures_per_minute: 20,
            ops_token_failures_per_minute_total: 200,
            record: true,
            recordings_dir: None,
            recording_retention_days: 30,
            recording_max_mib: 10_240,
            recording_queue: 4096,
            backup_radius_m: 400,
            private_calls: 64,
            private_call_answer_timeout: Duration::from_secs(30),
            cluster: None,
            relay_id: None,
            site_trunking: true,
            rate_floor: Rate::new(10.0, 20.0),
            rate_membership: Rate::new(20.0, 50.0),
            rate_location: Rate::new(100.0, 200.0),
            rate_status: Rate::new(5.0, 20.0),
            rate_alert: Rate::new(1.0, 5.0),
            rate_alert_ack: Rate::new(5.0, 20.0),
            rate_private_call: Rate::new(5.0, 20.0),
            rate_quality: Rate::new(1.0, 5.0),
            rate_other: Rate::new(10.0, 20.0),
            rate_refusals_tolerated: Rate::new(5.0, 50.0),
            rate_location_forwarded: Rate::new(50.0, 100.0),
        }
    }
}

impl Config {
    /// Checks values that parse but cannot work together, so the relay refuses to start
    /// with a clear message instead of failing later.
    ///
    /// Each concern checks its own fields (transport, storage, dispatch, login, then the
    /// general `log` here, then ops access); the first rule broken is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_transport()?;
        self.validate_storage()?;
        self.validate_dispatch()?;
        self.validate_login()?;
        self.validate_cluster()?;
        if self.log.trim().is_empty() {
            return invalid("log", "must not be empty");
        }
        self.validate_ops_access()
    }
}

fn parse_duration_arg(s: &str) -> Result<Duration, DurationError> {
    parse_duration(s)
}
