//! The relay's error when its configuration cannot be loaded or is unusable.

use std::path::PathBuf;

use ptt_directory::toml_text::Location;

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
    /// [`ConfigError::Invalid`] for a value the config file set: fix the named line.
    #[error("{location}: invalid `{field}`: {reason}")]
    InvalidAt {
        /// Where the config file sets the field.
        location: Location,
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

/// `Err(ConfigError::Invalid { .. })` for `field` (its flag and file name) and `reason`: how
/// each concern's part of [`Config::validate`](super::settings::Config::validate) refuses a
/// value.
pub(super) fn invalid(field: &'static str, reason: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        field,
        reason: reason.to_owned(),
    })
}
