//! Relay configuration: one [`Config`] type read from a TOML file and the command line.
//!
//! Precedence, highest first: command-line flags, `PTTD_*` environment variables, the TOML
//! file given with `--config`, built-in defaults. The file uses the same names as the flags
//! (`data-dir = "/var/lib/pttd"`, `idle-timeout = "30s"`), so there is one name per setting.
//! A bad file stops the relay with `file:line:column: message`, naming the field.
//!
//! [`Config`] is one flat struct (its field order is the order of `pttd --help`); each
//! concern keeps its rules and derived values in a file of its own:
//!
//! - `settings.rs`: the struct itself with every flag, variable and default, the `pttd`
//!   command line ([`Cli`]), [`Config::validate`] and the general `log` filter;
//! - `transport.rs`: `listen`, `max-connections`, `hello-timeout`, `max-unauthenticated`,
//!   `max-unauthenticated-per-address`, `idle-timeout`, `keep-alive`, `datagram-queue-ms`,
//!   `shards`, `pin-shards`, `cert`/`key`;
//! - `login.rs`: `auth-failures-per-minute`, `auth-global-failures-per-minute`,
//!   `auth-failure-delay`, `auth-hash-*` and `resume-ttl`, with [`Config::login_settings`];
//! - `storage.rs`: `data-dir`, `log-queue` and the recordings (`record`, `recordings-dir`,
//!   `recording-*`), with [`Config::calllog_path`] and [`Config::recording_settings`];
//! - `ops_access.rs`: `ops-listen`, `admin-token`/`admin-token-file`, `view-token`,
//!   `ops-allowed-hosts`, with [`Config::read_token_files`];
//! - `dispatch.rs`: `directory`, `backup-radius-m`, `private-calls`,
//!   `private-call-answer-timeout`;
//! - `limits.rs`: a session's request limits, `rate-*` (`"N/M"`: N a second, M at once),
//!   with [`Config::rate_limits`]; `rate_text.rs`: how such a rate is read;
//! - `cluster.rs`: `cluster` and `relay-id`, with [`Config::cluster_join`];
//! - `load.rs`: `--config` and the merging of file, environment and flags ([`Cli::load`]);
//! - `error.rs`: [`ConfigError`].

mod cluster;
mod dispatch;
mod error;
mod limits;
mod load;
mod login;
mod ops_access;
mod rate_text;
mod settings;
mod storage;
mod transport;

pub use error::ConfigError;
pub use settings::{Cli, Command, Config, GenDirectoryArgs};

/// Humane durations (`250ms`, `1m30s`), as the config file and flags write them.
pub use ptt_directory::toml_text::parse_duration;
