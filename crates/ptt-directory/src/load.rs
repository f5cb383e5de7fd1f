//! The directory's TOML form and its validation.
//!
//! ```toml
//! [[terminal]]
//! id = 301
//! name = "Guard 301"
//! role = "guard"                      # dispatcher | police | patrol | guard | volunteer | other
//! organisation = "Riverside Garden compound"
//! secret-hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! max-priority = "normal"             # default normal
//! emergency = true                    # may declare an emergency; default true
//! on-duty = true                      # default true
//!
//! [[group]]
//! id = 101
//! name = "Riverside Garden compound"
//! kind = "enterprise"
//! zone = 101                          # its premises: its guards join passing patrols
//! all-call = false
//! talk-limit = "30s"                  # also revoke-grace, media-inactivity, queue-expiry, queue-limit
//! members = [{ terminal = 301 }, { terminal = 1, max-priority = "dispatcher" }, { terminal = 501, talk = false }]
//!
//! [[group]]
//! id = 31
//! name = "Trunk Road 1"
//! kind = "patrol-route"
//! route = [201, 202]                  # its segments, in order
//! lead = 201                          # relay patrol: follows this talking member's location
//! approach-m = 60                     # guards join within this of their premises; default 50
//! hysteresis-m = 30                   # …and leave beyond approach + this; default 25
//! members = [{ terminal = 201 }, { terminal = 202 }]
//!
//! [[zone]]
//! id = 1
//! name = "Riverside"
//! kind = "area"                       # area (default) | premises | key-area | route-segment
//! neighbours = [8, 2]
//! # [lat, lon] corners, 3 or more, closed implicitly
//! polygon = [[30.25, 120.15], [30.23651, 120.141671], [30.23651, 120.129178], [30.243255, 120.129178]]
//!
//! [[zone]]
//! id = 101
//! name = "Riverside Garden compound"
//! kind = "premises"                   # premises must have a shape
//! circle = { lat = 30.239523, lon = 120.136081, radius-m = 60 }   # or as a [zone.circle] table
//!
//! [[status]]
//! code = 1
//! label = "On scene"
//! ```
//!
//! A zone has at most one shape, `circle` or `polygon`, in WGS-84 degrees. An enterprise
//! group takes part in relay patrol and backup calls when its `zone` names a `premises`
//! zone; a patrol group follows its `lead` when one is given.

use std::path::PathBuf;

use crate::Directory;
use crate::toml_text::{Location, TomlError};

mod geometry;
pub(crate) mod schema;
mod validator;

use schema::FileDirectory;
use validator::Validator;

/// Why a directory could not be loaded or written; the relay must not start with it.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The file could not be read: check the path and permissions.
    #[error("cannot read directory {}: {source}", path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A generated file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field is unknown or of the wrong type: fix the named line.
    #[error("{location}: {message}{}", field.as_ref().filter(|f| !message.contains(f.as_str())).map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
    Parse {
        /// Where.
        location: Location,
        /// The offending field (dotted path), when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Valid TOML but inconsistent (duplicate id, unknown member, bad hash…): fix the field.
    #[error("{location}: `{field}`: {reason}")]
    Invalid {
        /// Where.
        location: Location,
        /// The field, as `table.key` (e.g. `group.members.terminal`).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A generator was asked for something impossible (zero terminals) or hashing failed.
    #[error("cannot generate directory: {0}")]
    Generate(String),
}

/// Parses and validates; every error carries the file, line and field.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Directory, DirectoryError> {
    let file: FileDirectory = toml::from_str(text).map_err(|e| {
        let e = TomlError::new(&e, text, origin);
        DirectoryError::Parse {
            location: e.location,
            field: e.field,
            message: e.message,
        }
    })?;
    Validator { text, origin }.validate(file)
}
