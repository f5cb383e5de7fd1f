//! The directory file's TOML form as serde reads and writes it: every table and field,
//! with the spans validation reports errors at. Checked by [`super::validator`].

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

use crate::toml_text::{format_duration, parse_duration};
use crate::{GroupKind, Priority, Role, ZoneKind};

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

/// `circle = { lat = 30.25, lon = 120.15, radius-m = 60 }`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileCircle {
    pub(crate) lat: Spanned<f64>,
    pub(crate) lon: Spanned<f64>,
    pub(crate) radius_m: Spanned<f64>,
}

/// One corner of `polygon = [[lat, lon], …]`; a list so a wrong count is our error, with
/// the line, rather than a bare serde one.
pub(crate) type FileCorner = Spanned<Vec<f64>>;
