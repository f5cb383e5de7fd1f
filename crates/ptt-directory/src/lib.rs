//! The directory: who the terminals are, which groups exist, who may listen and talk where
//! and with what floor priority, the zones patrols move through, and the status codes.
//!
//! It is loaded once from TOML ([`Directory::load`]) or built in ([`Directory::demo`]) and
//! then only read, so the relay shares it behind an `Arc` without locks. The indexes answer
//! the relay's questions in O(1): a terminal by id, the groups of a terminal with its rights,
//! the members of a group.
//!
//! This crate owns the model, the TOML form with its line-and-field errors
//! ([`toml_text`]), WGS-84 geography, the built-in demo district, the generator of
//! load-test directories and the hashing of secrets. It knows nothing of sessions,
//! sockets, the call log or time: what changes at run time (disabled terminals, zone
//! grants) is the relay's roster, layered on top.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod demo;
#[cfg(test)]
mod demo_build;
mod generate;
mod geo;
mod load;
mod password;
pub mod toml_text;

pub use demo::DEMO_SECRET_PREFIX;
pub use generate::{GeneratedDirectory, generate, write_generated};
pub use geo::{GeoPoint, Shape};
pub use load::DirectoryError;
pub use password::{HashError, HashParams, hash_secret};

/// A terminal's id; globally unique so several relays can share ids (ARCHITECTURE §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TerminalId(pub u32);

/// A group's id; a separate namespace from terminal ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub u32);

/// The first group id the relay keeps for its temporary groups (private calls); the
/// directory's group ids stay below it.
pub const FIRST_RESERVED_GROUP_ID: u32 = 0xF000_0000;

/// A zone's id: an area that patrols pass through and compounds sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ZoneId(pub u32);

macro_rules! display_id {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
display_id!(TerminalId, GroupId, ZoneId);

/// Floor priority as the directory grants it; the relay maps it onto `ptt_floor`'s own type.
/// Ordered: `Normal < Elevated < Dispatcher < Emergency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// Ordinary talk.
    Normal,
    /// Supervisors: queued ahead of normal talkers.
    Elevated,
    /// Control-room consoles: pre-empt normal and elevated talkers.
    Dispatcher,
    /// Emergency calls: pre-empt everything.
    Emergency,
}

impl Priority {
    /// The lowercase name used in TOML and the call log.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Elevated => "elevated",
            Priority::Dispatcher => "dispatcher",
            Priority::Emergency => "emergency",
        }
    }

    /// Parses [`Priority::as_str`] back (used when reading the call log).
    pub fn from_name(s: &str) -> Option<Priority> {
        [
            Self::Normal,
            Self::Elevated,
            Self::Dispatcher,
            Self::Emergency,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What a terminal is for; dispatchers may all-call, the rest is for display and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Control-room console: member of everything, may all-call.
    Dispatcher,
    /// Community police officer (squads, posts).
    Police,
    /// Mobile patrol officer (trunk roads, key areas, lines).
    Patrol,
    /// Security guard of an enterprise or compound.
    Guard,
    /// Volunteer with a phone.
    Volunteer,
    /// Anything else (technicians, test terminals).
    Other,
}

/// What a group is; used by the dashboard and by zone logic (compounds join passing patrols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupKind {
    /// The dispatchers' own group.
    ControlRoom,
    /// A community-police squad.
    Squad,
    /// A police post.
    Post,
    /// A mobile patrol route.
    PatrolRoute,
    /// The guards of one enterprise or compound.
    Enterprise,
    /// Volunteers' own group.
    Volunteers,
    /// District-wide talk group.
    District,
    /// District-wide announcements: most members listen only.
    Alerts,
    /// Anything else (load-test groups).
    Other,
}

/// A radio terminal (handheld, console, phone) that can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// Unique id, sent at login.
    pub id: TerminalId,
    /// Display name ("Guard 301", "Console 1").
    pub name: String,
    /// What it is; dispatchers may all-call.
    pub role: Role,
    /// Who it belongs to (police station, enterprise).
    pub organisation: String,
    /// argon2id PHC string of the secret; its own parameters are used to verify.
    pub secret_hash: String,
    /// Highest priority it may request for an ordinary floor request.
    pub max_priority: Priority,
    /// Whether it may declare an emergency (pre-empt with [`Priority::Emergency`]).
    pub emergency: bool,
    /// Off-duty terminals may log in but are not pulled into calls by zone logic.
    pub on_duty: bool,
}

/// One terminal's rights in one group (its ACL entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The member.
    pub terminal: TerminalId,
    /// May receive the group's voice.
    pub listen: bool,
    /// May request the floor.
    pub talk: bool,
    /// Effective cap in this group: the lower of the entry's and the terminal's.
    pub max_priority: Priority,
}

/// Per-group overrides of the floor timers; `None` keeps the floor crate's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloorPolicy {
    /// Longest a talker may hold the floor (MCPTT T2).
    pub talk_limit: Option<Duration>,
    /// Grace between revoke and forced release (T8).
    pub revoke_grace: Option<Duration>,
    /// Silence after which the floor is taken back (T1).
    pub media_inactivity: Option<Duration>,
    /// How long a queued request waits before it expires.
    pub queue_expiry: Option<Duration>,
    /// Most requests queued at once (a count, not a duration).
    pub queue_limit: Option<u32>,
}

/// How a patrol group follows its lead terminal (relay patrol): the guards of every
/// enterprise whose premises the lead comes within `approach_m` of join the group, and
/// leave once it is more than `approach_m + hysteresis_m` away, so a patrol standing on the
/// boundary (GPS jitter included) does not make them flap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatrolRule {
    /// The terminal whose location reports move the group (a member of it).
    pub lead: TerminalId,
    /// Enter distance from a premises zone's edge, metres (0: only inside).
    pub approach_m: f64,
    /// Extra distance before guards are dropped again, metres.
    pub hysteresis_m: f64,
}

/// A talk group with its ACL and floor policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Unique id.
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// What it is.
    pub kind: GroupKind,
    /// Static members with their rights (zone logic may add members at run time).
    pub members: Vec<Membership>,
    /// Floor timer overrides.
    pub floor: FloorPolicy,
    /// Included when a dispatcher calls all groups at once.
    pub all_call: bool,
    /// The zone an enterprise/post sits in, for "guards of the neighbouring zones".
    pub zone: Option<ZoneId>,
    /// The zones a patrol route passes, in order (its segments).
    pub route: Vec<ZoneId>,
    /// Relay patrol: set for a patrol group whose membership follows its lead.
    pub patrol: Option<PatrolRule>,
}

/// What a zone is, for the zone logic and the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZoneKind {
    /// A neighbourhood of the district.
    Area,
    /// An enterprise's or compound's premises: its guards join passing patrols and
    /// backup calls nearby.
    Premises,
    /// One of the key areas patrolled on foot.
    KeyArea,
    /// A segment of a patrol route.
    RouteSegment,
}

/// An area of the district with its outline.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Unique id.
    pub id: ZoneId,
    /// Display name.
    pub name: String,
    /// What it is.
    pub kind: ZoneKind,
    /// Adjacent zones (symmetric in the demo; not enforced).
    pub neighbours: Vec<ZoneId>,
    /// Its outline; `None` for a zone known by name only (no zone logic applies).
    pub shape: Option<Shape>,
}

/// A status code a terminal can report ("on scene") or send with an alert acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCode {
    /// The number sent on the wire.
    pub code: u16,
    /// What it means.
    pub label: String,
}

/// The loaded, validated, indexed directory. Immutable: share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Directory {
    origin: String,
    terminals: Vec<Terminal>,
    groups: Vec<Group>,
    zones: Vec<Zone>,
    status_codes: Vec<StatusCode>,
    terminal_index: HashMap<TerminalId, usize>,
    group_index: HashMap<GroupId, usize>,
    zone_index: HashMap<ZoneId, usize>,
    /// Per terminal (same order as `terminals`): (group index, member index).
    memberships: Vec<Vec<(usize, usize)>>,
    /// Hash verified for unknown terminals so their answer takes as long as a known one's.
    dummy_hash: OnceLock<String>,
}

impl Directory {
    /// Loads and validates a directory TOML file; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Directory::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates directory TOML; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Directory, DirectoryError> {
        load::parse(text, origin)
    }

    /// The built-in demo district (ARCHITECTURE §1, `docs/demo-district.md`), from an
    /// embedded pre-hashed asset so startup costs no hashing.
    pub fn demo() -> Result<Directory, DirectoryError> {
        Directory::from_toml_str(demo::DEMO_TOML, demo::DEMO_ORIGIN)
    }

    pub(crate) fn from_parts(
        origin: String,
        terminals: Vec<Terminal>,
        groups: Vec<Group>,
        zones: Vec<Zone>,
        status_codes: Vec<StatusCode>,
    ) -> Directory {
        let terminal_index: HashMap<_, _> = terminals
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        let group_index = groups.iter().enumerate().map(|(i, g)| (g.id, i)).collect();
        let zone_index = zones.iter().enumerate().map(|(i, z)| (z.id, i)).collect();
        let mut memberships = vec![Vec::new(); terminals.len()];
        for (gi, g) in groups.iter().enumerate() {
            for (mi, m) in g.members.iter().enumerate() {
                if let Some(&ti) = terminal_index.get(&m.terminal) {
                    memberships[ti].push((gi, mi));
                }
            }
        }
        Directory {
            origin,
            terminals,
            groups,
            zones,
            status_codes,
            terminal_index,
            group_index,
            zone_index,
            memberships,
            dummy_hash: OnceLock::new(),
        }
    }

    /// Where it came from (file path or `<built-in demo>`), for logs.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// All terminals in file order.
    pub fn terminals(&self) -> &[Terminal] {
        &self.terminals
    }

    /// All groups in file order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// All zones in file order.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The status code table.
    pub fn status_codes(&self) -> &[StatusCode] {
        &self.status_codes
    }

    /// A terminal by id.
    pub fn terminal(&self, id: TerminalId) -> Option<&Terminal> {
        self.terminal_index.get(&id).map(|&i| &self.terminals[i])
    }

    /// A terminal's display name, empty if there is no such terminal (an event about a
    /// terminal removed from the file still shows, without a name).
    pub fn name_of(&self, id: TerminalId) -> &str {
        self.terminal(id).map_or("", |t| t.name.as_str())
    }

    /// A group by id.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.group_index.get(&id).map(|&i| &self.groups[i])
    }

    /// A zone by id.
    pub fn zone(&self, id: ZoneId) -> Option<&Zone> {
        self.zone_index.get(&id).map(|&i| &self.zones[i])
    }

    /// The meaning of a status code, if it is in the table.
    pub fn status(&self, code: u16) -> Option<&StatusCode> {
        self.status_codes.iter().find(|s| s.code == code)
    }

    /// The static members of a group (empty if the group is unknown).
    pub fn members(&self, group: GroupId) -> &[Membership] {
        self.group(group).map_or(&[], |g| &g.members)
    }

    /// The groups a terminal belongs to, each with its rights there.
    pub fn groups_of(&self, terminal: TerminalId) -> impl Iterator<Item = (&Group, &Membership)> {
        let list = self
            .terminal_index
            .get(&terminal)
            .map_or(&[][..], |&i| &self.memberships[i][..]);
        list.iter()
            .map(|&(gi, mi)| (&self.groups[gi], &self.groups[gi].members[mi]))
    }

    /// A terminal's rights in a group; `None` if it is not a member.
    pub fn membership(&self, terminal: TerminalId, group: GroupId) -> Option<&Membership> {
        self.groups_of(terminal)
            .find(|(g, _)| g.id == group)
            .map(|(_, m)| m)
    }

    /// Whether `terminal` may request the floor of `group` at `priority`: it must be a
    /// talking member, and either within its cap or declaring an emergency it is allowed.
    pub fn may_request(&self, terminal: TerminalId, group: GroupId, priority: Priority) -> bool {
        let (Some(t), Some(m)) = (self.terminal(terminal), self.membership(terminal, group)) else {
            return false;
        };
        m.talk && (priority <= m.max_priority || (priority == Priority::Emergency && t.emergency))
    }

    /// Whether a terminal may call all groups at once (dispatchers only).
    pub fn may_all_call(&self, terminal: TerminalId) -> bool {
        self.terminal(terminal)
            .is_some_and(|t| t.role == Role::Dispatcher)
    }

    /// The groups a dispatcher's all-call reaches.
    pub fn all_call_groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(|g| g.all_call)
    }

    /// Checks a terminal's secret against its stored argon2id hash, using the hash's own
    /// parameters, in constant time. CPU-heavy (milliseconds): call from `spawn_blocking`.
    /// An unknown terminal costs the same work and returns `false`.
    pub fn verify_secret(&self, terminal: TerminalId, secret: &[u8]) -> bool {
        match self.terminal(terminal) {
            Some(t) => password::verify(&t.secret_hash, secret),
            None => {
                let dummy = self.dummy_hash.get_or_init(|| {
                    let params = self
                        .terminals
                        .first()
                        .and_then(|t| HashParams::of_hash(&t.secret_hash))
                        .unwrap_or(HashParams::DEFAULT);
                    password::hash_with_salt(b"unknown terminal", params, &[0u8; 16])
                        .unwrap_or_default()
                });
                let _ = password::verify(dummy, secret);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests;
