//! Relay configuration: one [`Config`] type read from a TOML file and the command line.
//!
//! Precedence, highest first: command-line flags, `PTTD_*` environment variables, the TOML
//! file given with `--config`, built-in defaults. The file uses the same names as the flags
//! (`data-dir = "/var/lib/pttd"`, `idle-timeout = "30s"`), so there is one name per setting.
//! A bad file stops the relay with `file:line:column: message`, naming the field.

use std::ffi::OsString;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
/// Humane durations (`250ms`, `1m30s`), as the config file and flags write them.
pub use ptt_directory::toml_text::parse_duration;
use ptt_directory::toml_text::{DurationError, Location, TomlError, duration_serde};
use ptt_ops::{AdminToken, Token, ViewToken};
use serde::Deserialize;

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
/// Not `PartialEq`: it holds secrets (see [`Token`]).
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

    /// Most QUIC connections served at once; more are refused at the handshake.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        env = "PTTD_MAX_CONNECTIONS"
    )]
    pub max_connections: usize,

    /// A connection silent for this long is closed, freeing its floor ("10s", "1m").
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_arg, env = "PTTD_IDLE_TIMEOUT")]
    #[serde(with = "duration_serde")]
    pub idle_timeout: Duration,

    /// Interval of QUIC keep-alive pings; must be shorter than the idle timeout.
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

    /// Capacity of the call-log queue; records beyond it are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = 4096, env = "PTTD_LOG_QUEUE")]
    pub log_queue: usize,

    /// Failed authentications allowed per source address per minute before it is refused.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        env = "PTTD_AUTH_FAILURES_PER_MINUTE"
    )]
    pub auth_failures_per_minute: u32,

    /// Bearer token of the admin API on the ops port (disable terminals, clear emergencies,
    /// change group members); without it (or empty) those routes answer 403. Never logged.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PTTD_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<AdminToken>,

    /// File holding the admin token (one line; surrounding whitespace ignored), so the token
    /// is not on the command line where `ps` shows it. Read once at start by [`Cli::load`];
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
}

/// The arg ids (= field names) that [`Config::merge_cli`] copies; a test checks it is complete.
#[cfg(test)]
const MERGED_FIELDS: &[&str] = &[
    "data_dir",
    "listen",
    "ops_listen",
    "directory",
    "cert",
    "key",
    "log",
    "max_connections",
    "idle_timeout",
    "keep_alive",
    "datagram_queue_ms",
    "log_queue",
    "auth_failures_per_minute",
    "admin_token",
    "admin_token_file",
    "view_token",
    "ops_allowed_hosts",
    "record",
    "recordings_dir",
    "recording_retention_days",
    "recording_max_mib",
    "recording_queue",
    "backup_radius_m",
    "private_calls",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            config: None,
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 7780)),
            directory: None,
            cert: None,
            key: None,
            log: "info".to_owned(),
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            datagram_queue_ms: 60,
            log_queue: 4096,
            auth_failures_per_minute: 10,
            admin_token: None,
            admin_token_file: None,
            view_token: None,
            ops_allowed_hosts: Vec::new(),
            record: true,
            recordings_dir: None,
            recording_retention_days: 30,
            recording_max_mib: 10_240,
            recording_queue: 4096,
            backup_radius_m: 400,
            private_calls: 64,
        }
    }
}

impl Cli {
    /// Parses the process arguments and merges `--config FILE`, so `main` is one line.
    ///
    /// `--help`, `--version` and malformed flags print and exit the process as clap does;
    /// a bad config file is returned so `main` can report it and exit non-zero.
    pub fn load() -> Result<Cli, ConfigError> {
        match Cli::try_load_from(std::env::args_os()) {
            Err(ConfigError::Cli(e)) => e.exit(),
            other => other,
        }
    }

    /// Like [`Cli::load`] but from the given arguments (first one is the program name) and
    /// never exits; tests and embedders use it.
    pub fn try_load_from<I, T>(args: I) -> Result<Cli, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let Some(path) = cli.config.config.clone() {
            let mut merged = Config::from_file(&path)?;
            merged.config = Some(path);
            merged.merge_cli(&cli.config, &matches);
            cli.config = merged;
        }
        cli.config.read_token_files()?;
        cli.config.validate()?;
        Ok(cli)
    }
}

impl Config {
    /// Largest `recording-queue`: 2^20 frames. The queue allocates every
    /// slot at start (about 60 MiB at this size) and holds 7 minutes of 50
    /// groups talking at once: anything larger is a typo.
    pub const MAX_RECORDING_QUEUE: usize = 1 << 20;

    /// Reads a TOML config file; unset fields keep their defaults. Does not validate.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors (usually the file path). Does not validate.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let err = TomlError::new(&e, text, origin);
            ConfigError::Parse {
                location: err.location,
                field: err.field,
                message: err.message,
            }
        })
    }

    /// Overwrites every field that was set on the command line (or by environment variable).
    fn merge_cli(&mut self, cli: &Config, matches: &ArgMatches) {
        let from_cli = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        macro_rules! merge {
            ($($field:ident),* $(,)?) => {
                $( if from_cli(stringify!($field)) { self.$field = cli.$field.clone(); } )*
            };
        }
        merge!(
            data_dir,
            listen,
            ops_listen,
            directory,
            cert,
            key,
            log,
            max_connections,
            idle_timeout,
            keep_alive,
            datagram_queue_ms,
            log_queue,
            auth_failures_per_minute,
            admin_token,
            admin_token_file,
            view_token,
            ops_allowed_hosts,
            record,
            recordings_dir,
            recording_retention_days,
            recording_max_mib,
            recording_queue,
            backup_radius_m,
            private_calls,
        );
    }

    /// Checks values that parse but cannot work together, so the relay refuses to start
    /// with a clear message instead of failing later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.max_connections == 0 {
            return invalid("max-connections", "must be at least 1");
        }
        if self.log_queue == 0 {
            return invalid("log-queue", "must be at least 1");
        }
        // The queue is allocated in full at start: a typo must not reserve
        // gigabytes.
        if !(1..=Self::MAX_RECORDING_QUEUE).contains(&self.recording_queue) {
            return invalid("recording-queue", "must be between 1 and 1048576");
        }
        if !(1..=20_000).contains(&self.backup_radius_m) {
            return invalid("backup-radius-m", "must be between 1 and 20000");
        }
        if !(1..=4096).contains(&self.private_calls) {
            return invalid("private-calls", "must be between 1 and 4096");
        }
        if !(1..=10_000).contains(&self.datagram_queue_ms) {
            return invalid("datagram-queue-ms", "must be between 1 and 10000");
        }
        if self.idle_timeout.is_zero() {
            return invalid("idle-timeout", "must be more than zero");
        }
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return invalid(
                "keep-alive",
                "must be more than zero and less than idle-timeout",
            );
        }
        if self.cert.is_some() != self.key.is_some() {
            return invalid("cert", "cert and key must be given together");
        }
        if self.log.trim().is_empty() {
            return invalid("log", "must not be empty");
        }
        if let Some(token) = &self.admin_token
            && !token.is_empty()
            && !token.well_formed()
        {
            return invalid(
                "admin-token",
                "must be at least 16 characters without surrounding spaces",
            );
        }
        if self.admin_token.is_some() && self.admin_token_file.is_some() {
            return invalid(
                "admin-token-file",
                "give admin-token or admin-token-file, not both",
            );
        }
        // Unlike the admin token, an empty view token is refused: a blank variable must not
        // silently open the recordings to everyone who reaches the port.
        if self.view_token.as_ref().is_some_and(|t| !t.well_formed()) {
            return invalid(
                "view-token",
                "must be at least 16 characters without surrounding spaces (leave it unset for an open ops port)",
            );
        }
        if let Some(host) = self.ops_allowed_hosts.iter().find(|h| {
            h.is_empty() || h.contains(|c: char| c == ':' || c == '/' || c.is_whitespace())
        }) {
            return invalid(
                "ops-allowed-hosts",
                &format!("{host:?} is not a host name (write names without port or scheme)"),
            );
        }
        Ok(())
    }

    /// Reads `admin-token-file` into `admin-token` (then forgets the path, so the two are
    /// not both set). Called by [`Cli::load`]; embedders building a [`Config`] in code and
    /// using the file call it before `Relay::load`.
    pub fn read_token_files(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(());
        };
        if self.admin_token.is_some() {
            return Err(ConfigError::Invalid {
                field: "admin-token-file",
                reason: "give admin-token or admin-token-file, not both".to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        self.admin_token = Some(Token::from(text.trim().to_owned()));
        self.admin_token_file = None;
        Ok(())
    }

    /// Path of the SQLite call log inside the data dir.
    pub fn calllog_path(&self) -> PathBuf {
        self.data_dir.join("pttd.sqlite")
    }

    /// Directory of the burst recordings: `recordings-dir`, else `<data-dir>/recordings`.
    pub fn recordings_dir(&self) -> PathBuf {
        self.recordings_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// The recorder's settings, or `None` when recording is off.
    pub fn recording_settings(&self) -> Option<ptt_recording::Settings> {
        self.record.then(|| ptt_recording::Settings {
            dir: self.recordings_dir(),
            queue: self.recording_queue,
            limits: ptt_recording::Limits {
                max_age: (self.recording_retention_days > 0).then(|| {
                    Duration::from_secs(u64::from(self.recording_retention_days) * 86_400)
                }),
                max_bytes: (self.recording_max_mib > 0)
                    .then(|| self.recording_max_mib.saturating_mul(1 << 20)),
            },
        })
    }
}

/// Why the configuration could not be loaded; the relay must not start with any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read: check the path and permissions.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has a wrong/unknown field: fix the named line.
    #[error("{location}: {}", with_field(field.as_deref(), message))]
    Parse {
        /// Where in the file.
        location: Location,
        /// The offending field (dotted path), when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value parsed but is unusable (e.g. keep-alive not below idle-timeout): fix that field.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// Flag / file name of the field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The command line itself is wrong (or asked for `--help`); `e.exit()` prints it.
    #[error(transparent)]
    Cli(#[from] clap::Error),
}

fn with_field(field: Option<&str>, message: &str) -> String {
    match field {
        Some(f) if !message.contains(&format!("`{f}`")) => {
            let last = f.rsplit('.').next().unwrap_or(f);
            if message.contains(&format!("`{last}`")) {
                message.to_owned()
            } else {
                format!("field `{f}`: {message}")
            }
        }
        _ => message.to_owned(),
    }
}

fn parse_duration_arg(s: &str) -> Result<Duration, DurationError> {
    parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Cli, ConfigError> {
        Cli::try_load_from(std::iter::once("pttd").chain(args.iter().copied()))
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("pttd.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_example_deploy_config_is_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/pttd.toml");
        let config = Config::from_file(&example).unwrap();
        config.validate().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/pttd"));
        // The example documents the defaults for everything else.
        assert_eq!(config.idle_timeout, Config::default().idle_timeout);
        assert_eq!(config.keep_alive, Config::default().keep_alive);
    }

    #[test]
    fn clap_defaults_match_default_impl() {
        let cli = load(&[]).unwrap();
        // Compared as printed: `Config` is not `PartialEq` (secrets), and tokens print
        // redacted but still as `Some`/`None`.
        assert_eq!(
            format!("{:?}", cli.config),
            format!("{:?}", Config::default())
        );
        assert!(cli.command.is_none());
    }

    #[test]
    fn every_flag_is_merged() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "config" | "help" | "version") {
                continue;
            }
            assert!(
                MERGED_FIELDS.contains(&id),
                "{id} is not merged from the command line"
            );
        }
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listen = \"0.0.0.0:9000\"\nlog = \"debug\"\nidle-timeout = \"1m\"\n",
        );
        let p = path.to_str().unwrap();
        let cli = load(&["--config", p, "--log", "trace", "--max-connections", "7"]).unwrap();
        let c = cli.config;
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap()); // file over default
        assert_eq!(c.log, "trace"); // flag over file
        assert_eq!(c.max_connections, 7); // flag over default
        assert_eq!(c.idle_timeout, Duration::from_secs(60)); // file
        assert_eq!(c.ops_listen, Config::default().ops_listen); // default
        assert_eq!(c.config.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn flag_equal_to_default_still_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "log = \"debug\"\n");
        let cli = load(&["--config", path.to_str().unwrap(), "--log", "info"]).unwrap();
        assert_eq!(cli.config.log, "info");
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let text = "listen = \"127.0.0.1:1\"\n\nlisen = \"x\"\n";
        let err = Config::from_toml_str(text, "pttd.toml").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("pttd.toml:3:1: unknown field `lisen`, expected one of"),
            "{shown}"
        );
        assert!(shown.contains("`listen`"), "{shown}");
    }

    #[test]
    fn bad_duration_names_field() {
        let text = "# comment\nkeep-alive = \"5 parsecs\"\n";
        let err = Config::from_toml_str(text, "pttd.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("pttd.toml:2:"), "{shown}");
        assert!(shown.contains("keep-alive"), "{shown}");
        assert!(shown.contains("5 parsecs"), "{shown}");
    }

    #[test]
    fn bad_type_and_bad_flag_duration() {
        let err = Config::from_toml_str("max-connections = \"many\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().starts_with("f.toml:1:"), "{err}");
        assert!(err.to_string().contains("max-connections"), "{err}");
        assert!(matches!(
            load(&["--idle-timeout", "soon"]),
            Err(ConfigError::Cli(_))
        ));
    }

    #[test]
    fn missing_file_and_invalid_combination() {
        assert!(matches!(
            load(&["--config", "/nonexistent/pttd.toml"]),
            Err(ConfigError::Read { .. })
        ));
        let err = load(&["--keep-alive", "40s"]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "keep-alive",
                    ..
                }
            ),
            "{err}"
        );
        assert!(load(&["--cert", "c.pem"]).is_err());
    }

    #[test]
    fn admin_token_is_checked_in_constant_time_and_never_shown() {
        let token: AdminToken = "0123456789abcdef-secret".parse().unwrap();
        assert!(token.matches(b"0123456789abcdef-secret"));
        assert!(!token.matches(b"0123456789abcdef-secreT"));
        assert!(!token.matches(b"0123456789abcdef"));
        assert!(!token.matches(b""));
        let config = Config {
            admin_token: Some(token),
            ..Config::default()
        };
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("secret"), "{config:?}");

        assert!(
            load(&["--admin-token", ""])
                .unwrap()
                .config
                .admin_token
                .unwrap()
                .is_empty()
        );
        let cli = load(&["--admin-token", "short"]).unwrap_err();
        assert!(
            matches!(
                cli,
                ConfigError::Invalid {
                    field: "admin-token",
                    ..
                }
            ),
            "{cli}"
        );
        let from_file =
            Config::from_toml_str("admin-token = \"abcdefghijklmnopqrstuvwxyz\"\n", "f").unwrap();
        assert!(
            from_file
                .admin_token
                .unwrap()
                .matches(b"abcdefghijklmnopqrstuvwxyz")
        );
    }

    #[test]
    fn the_admin_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-token");
        std::fs::write(&file, "abcdefghijklmnop-from-file\n").unwrap();
        let path = file.to_str().unwrap();
        let config = load(&["--admin-token-file", path]).unwrap().config;
        let token = config.admin_token.expect("read from the file");
        assert!(token.matches(b"abcdefghijklmnop-from-file"));
        assert!(config.admin_token_file.is_none());

        let both = load(&[
            "--admin-token-file",
            path,
            "--admin-token",
            "x".repeat(20).as_str(),
        ]);
        assert!(
            matches!(
                both,
                Err(ConfigError::Invalid {
                    field: "admin-token-file",
                    ..
                })
            ),
            "{both:?}"
        );
        assert!(matches!(
            load(&["--admin-token-file", "/nonexistent/admin-token"]),
            Err(ConfigError::Read { .. })
        ));
        std::fs::write(&file, "short\n").unwrap();
        assert!(matches!(
            load(&["--admin-token-file", path]),
            Err(ConfigError::Invalid {
                field: "admin-token",
                ..
            })
        ));
    }

    #[test]
    fn view_token_and_allowed_hosts() {
        let config = load(&[
            "--view-token",
            "viewer-0123456789-secret",
            "--ops-allowed-hosts",
            "ops.example.org,Dashboard.local",
        ])
        .unwrap()
        .config;
        assert!(
            config
                .view_token
                .unwrap()
                .matches(b"viewer-0123456789-secret")
        );
        assert_eq!(
            config.ops_allowed_hosts,
            ["ops.example.org", "Dashboard.local"]
        );
        assert!(
            !format!(
                "{:?}",
                load(&["--view-token", "viewer-0123456789-secret"]).unwrap()
            )
            .contains("secret")
        );
        for bad in ["", "short", " viewer-0123456789-secret "] {
            let err = load(&["--view-token", bad]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        field: "view-token",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
        for bad in ["ops.example.org:7780", "http://ops", ""] {
            let err = Config {
                ops_allowed_hosts: vec![bad.to_owned()],
                ..Config::default()
            }
            .validate()
            .unwrap_err();
            assert!(err.to_string().contains("ops-allowed-hosts"), "{err}");
        }
        let from_file = Config::from_toml_str(
            "view-token = \"abcdefghijklmnopqrstuvwxyz\"\nops-allowed-hosts = [\"ops.lan\"]\n",
            "f",
        )
        .unwrap();
        assert_eq!(from_file.ops_allowed_hosts, ["ops.lan"]);
        assert!(from_file.view_token.is_some());
    }

    #[test]
    fn gen_directory_subcommand() {
        let cli = load(&[
            "gen-directory",
            "--terminals",
            "10",
            "--groups",
            "3",
            "--out",
            "d.toml",
            "--secrets",
            "s.txt",
        ])
        .unwrap();
        let Some(Command::GenDirectory(args)) = cli.command else {
            panic!("no subcommand")
        };
        assert_eq!((args.terminals, args.groups, args.seed), (10, 3, 1));
    }

    #[test]
    fn a_recording_queue_beyond_the_cap_is_refused_by_name() {
        let with = |queue| {
            Config {
                recording_queue: queue,
                ..Config::default()
            }
            .validate()
        };
        assert!(with(Config::MAX_RECORDING_QUEUE).is_ok());
        for bad in [0, Config::MAX_RECORDING_QUEUE + 1, usize::MAX] {
            let error = with(bad).unwrap_err();
            assert!(error.to_string().contains("recording-queue"), "{error}");
        }
    }
}
