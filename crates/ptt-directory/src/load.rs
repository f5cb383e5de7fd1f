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

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

use super::password;
use super::{
    Directory, FloorPolicy, Group, GroupId, GroupKind, Membership, Priority, Role, StatusCode,
    Terminal, TerminalId, Zone, ZoneId, ZoneKind,
};
use crate::toml_text::{Location, TomlError, format_duration, parse_duration};

mod geometry;

pub(crate) use geometry::{FileCircle, FileCorner};

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

/// A duration written as a humane string ("30s") in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Humane(pub(crate) Duration);

impl<'de> Deserialize<'de> for Humane {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Humane)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Humane {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_normal(p: &Priority) -> bool {
    *p == Priority::Normal
}

/// Spans are only read when loading; values built in code use an empty span.
pub(crate) fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDirectory {
    #[serde(default, rename = "zone", skip_serializing_if = "Vec::is_empty")]
    pub(crate) zones: Vec<FileZone>,
    #[serde(default, rename = "status", skip_serializing_if = "Vec::is_empty")]
    pub(crate) status: Vec<FileStatus>,
    #[serde(default, rename = "terminal")]
    pub(crate) terminals: Vec<FileTerminal>,
    #[serde(default, rename = "group")]
    pub(crate) groups: Vec<FileGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileTerminal {
    pub(crate) id: Spanned<u32>,
    pub(crate) name: Spanned<String>,
    pub(crate) role: Role,
    #[serde(default)]
    pub(crate) organisation: String,
    pub(crate) secret_hash: Spanned<String>,
    #[serde(default = "normal", skip_serializing_if = "is_normal")]
    pub(crate) max_priority: Priority,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub(crate) emergency: bool,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub(crate) on_duty: bool,
}

fn normal() -> Priority {
    Priority::Normal
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileMember {
    pub(crate) terminal: Spanned<u32>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub(crate) listen: bool,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub(crate) talk: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_priority: Option<Priority>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileGroup {
    pub(crate) id: Spanned<u32>,
    pub(crate) name: Spanned<String>,
    pub(crate) kind: GroupKind,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) all_call: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) zone: Option<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) route: Vec<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lead: Option<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) approach_m: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hysteresis_m: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) talk_limit: Option<Spanned<Humane>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoke_grace: Option<Spanned<Humane>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_inactivity: Option<Spanned<Humane>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) queue_expiry: Option<Spanned<Humane>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) queue_limit: Option<u32>,
    #[serde(default)]
    pub(crate) members: Vec<FileMember>,
}

impl FileGroup {
    /// A group with these members and nothing else set, for generators.
    pub(crate) fn new(id: u32, name: String, kind: GroupKind, members: Vec<FileMember>) -> Self {
        FileGroup {
            id: sp(id),
            name: sp(name),
            kind,
            all_call: false,
            zone: None,
            route: Vec::new(),
            lead: None,
            approach_m: None,
            hysteresis_m: None,
            talk_limit: None,
            revoke_grace: None,
            media_inactivity: None,
            queue_expiry: None,
            queue_limit: None,
            members,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileZone {
    pub(crate) id: Spanned<u32>,
    pub(crate) name: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<Spanned<ZoneKind>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) neighbours: Vec<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) polygon: Option<Spanned<Vec<FileCorner>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) circle: Option<Spanned<FileCircle>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileStatus {
    pub(crate) code: Spanned<u16>,
    pub(crate) label: Spanned<String>,
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

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn err<T>(&self, at: &Spanned<T>, field: &'static str, reason: String) -> DirectoryError {
        self.err_at(at.span().start, field, reason)
    }

    fn err_at(&self, offset: usize, field: &'static str, reason: String) -> DirectoryError {
        DirectoryError::Invalid {
            location: Location::from_offset(self.origin, self.text, offset),
            field,
            reason,
        }
    }

    /// The line of a byte offset; only called on the error path (it scans the text).
    fn line(&self, offset: usize) -> usize {
        Location::from_offset(self.origin, self.text, offset).line
    }

    fn name(&self, name: Spanned<String>, field: &'static str) -> Result<String, DirectoryError> {
        if name.get_ref().trim().is_empty() {
            return Err(self.err(&name, field, "must not be empty".to_owned()));
        }
        Ok(name.into_inner())
    }

    fn validate(&self, file: FileDirectory) -> Result<Directory, DirectoryError> {
        // Zones first: groups refer to them.
        let mut zone_offsets = HashMap::new();
        for z in &file.zones {
            if let Some(first) = zone_offsets.insert(*z.id.get_ref(), z.id.span().start) {
                let first = self.line(first);
                let reason = format!(
                    "duplicate zone id {} (first on line {first})",
                    z.id.get_ref()
                );
                return Err(self.err(&z.id, "zone.id", reason));
            }
        }
        let zone_ref = |v: &Spanned<u32>, field| {
            if zone_offsets.contains_key(v.get_ref()) {
                Ok(ZoneId(*v.get_ref()))
            } else {
                Err(self.err(v, field, format!("unknown zone {}", v.get_ref())))
            }
        };
        let mut zones = Vec::with_capacity(file.zones.len());
        for z in file.zones {
            let neighbours = z
                .neighbours
                .iter()
                .map(|n| zone_ref(n, "zone.neighbours"))
                .collect::<Result<_, _>>()?;
            let (kind, shape) = self.zone_geometry(&z)?;
            zones.push(Zone {
                id: ZoneId(*z.id.get_ref()),
                name: self.name(z.name, "zone.name")?,
                kind,
                neighbours,
                shape,
            });
        }

        let mut status_codes = Vec::with_capacity(file.status.len());
        let mut codes = HashSet::new();
        for s in file.status {
            if !codes.insert(*s.code.get_ref()) {
                let reason = format!("duplicate status code {}", s.code.get_ref());
                return Err(self.err(&s.code, "status.code", reason));
            }
            status_codes.push(StatusCode {
                code: *s.code.get_ref(),
                label: self.name(s.label, "status.label")?,
            });
        }

        let mut terminal_offsets = HashMap::new();
        let mut terminals = Vec::with_capacity(file.terminals.len());
        for t in file.terminals {
            let id = *t.id.get_ref();
            if id == 0 {
                let reason = "terminal id 0 is reserved (voice headers from clients carry 0; \
                              admin actions act as 0)"
                    .to_owned();
                return Err(self.err(&t.id, "terminal.id", reason));
            }
            if let Some(first) = terminal_offsets.insert(id, t.id.span().start) {
                let first = self.line(first);
                let reason = format!("duplicate terminal id {id} (first on line {first})");
                return Err(self.err(&t.id, "terminal.id", reason));
            }
            if let Err(reason) = password::check(t.secret_hash.get_ref()) {
                return Err(self.err(&t.secret_hash, "terminal.secret-hash", reason));
            }
            terminals.push(Terminal {
                id: TerminalId(id),
                name: self.name(t.name, "terminal.name")?,
                role: t.role,
                organisation: t.organisation,
                secret_hash: t.secret_hash.into_inner(),
                max_priority: t.max_priority,
                emergency: t.emergency,
                on_duty: t.on_duty,
            });
        }
        let caps: HashMap<u32, Priority> =
            terminals.iter().map(|t| (t.id.0, t.max_priority)).collect();

        let mut group_offsets = HashMap::new();
        let mut groups = Vec::with_capacity(file.groups.len());
        for g in file.groups {
            let id = *g.id.get_ref();
            if id == 0 {
                let reason = "group id 0 is reserved for a dispatcher's all-call".to_owned();
                return Err(self.err(&g.id, "group.id", reason));
            }
            if id >= super::FIRST_RESERVED_GROUP_ID {
                let reason = format!(
                    "group ids from {} up are the relay's temporary groups (private calls)",
                    super::FIRST_RESERVED_GROUP_ID
                );
                return Err(self.err(&g.id, "group.id", reason));
            }
            if let Some(first) = group_offsets.insert(id, g.id.span().start) {
                let first = self.line(first);
                let reason = format!("duplicate group id {id} (first on line {first})");
                return Err(self.err(&g.id, "group.id", reason));
            }
            let mut seen = HashSet::new();
            let mut members = Vec::with_capacity(g.members.len());
            for m in &g.members {
                let tid = *m.terminal.get_ref();
                let Some(&cap) = caps.get(&tid) else {
                    let reason = format!("unknown terminal {tid} in group {id}");
                    return Err(self.err(&m.terminal, "group.members.terminal", reason));
                };
                if !seen.insert(tid) {
                    let reason = format!("terminal {tid} is listed twice in group {id}");
                    return Err(self.err(&m.terminal, "group.members.terminal", reason));
                }
                if !m.listen && !m.talk {
                    let reason = format!("terminal {tid} may neither listen nor talk");
                    return Err(self.err(&m.terminal, "group.members", reason));
                }
                members.push(Membership {
                    terminal: TerminalId(tid),
                    listen: m.listen,
                    talk: m.talk,
                    max_priority: m.max_priority.map_or(cap, |p| p.min(cap)),
                });
            }
            let zone = g
                .zone
                .as_ref()
                .map(|z| zone_ref(z, "group.zone"))
                .transpose()?;
            let route = g
                .route
                .iter()
                .map(|z| zone_ref(z, "group.route"))
                .collect::<Result<_, _>>()?;
            let timer = |v: &Option<Spanned<Humane>>, field| match v {
                Some(d) if d.get_ref().0.is_zero() => {
                    Err(self.err(d, field, "must be more than zero".to_owned()))
                }
                Some(d) => Ok(Some(d.get_ref().0)),
                None => Ok(None),
            };
            let floor = FloorPolicy {
                talk_limit: timer(&g.talk_limit, "group.talk-limit")?,
                revoke_grace: timer(&g.revoke_grace, "group.revoke-grace")?,
                media_inactivity: timer(&g.media_inactivity, "group.media-inactivity")?,
                queue_expiry: timer(&g.queue_expiry, "group.queue-expiry")?,
                queue_limit: g.queue_limit,
            };
            let patrol = self.patrol(&g, &members)?;
            groups.push(Group {
                id: GroupId(id),
                name: self.name(g.name, "group.name")?,
                kind: g.kind,
                members,
                floor,
                all_call: g.all_call,
                zone,
                route,
                patrol,
            });
        }
        Ok(Directory::from_parts(
            self.origin.to_owned(),
            terminals,
            groups,
            zones,
            status_codes,
        ))
    }
}
