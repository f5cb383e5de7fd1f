//! Relay configuration: one [`Config`] type read from a TOML file and the command line.
//!
//! Precedence, highest first: command-line flags, `PTTD_*` environment variables, the TOML
//! file given with `--config`, built-in defaults. The file uses the same names as the flags
//! (`data-dir = "/var/lib/pttd"`, `idle-timeout = "30s"`), so there is one name per setting.
//! A bad file stops the relay with `file:line:column: message`, naming the field.

mod error;
mod load;
mod settings;

pub use error::ConfigError;
pub use settings::{Cli, Command, Config, GenDirectoryArgs};

/// Humane durations (`250ms`, `1m30s`), as the config file and flags write them.
pub use ptt_directory::toml_text::parse_duration;
