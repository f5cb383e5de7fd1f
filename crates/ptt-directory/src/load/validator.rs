//! Checks a parsed directory file and builds the [`Directory`]: unique ids, known
//! references, sane rights and timers; every error names the file, line and field. Zone
//! shapes and patrol rules are checked in [`super::geometry`].

use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::schema::{FileDirectory, Humane};
use crate::password;
use crate::toml_text::Location;
use crate::{
    Directory, DirectoryError, FloorPolicy, Group, GroupId, Membership, Priority, StatusCode,
    Terminal, TerminalId, Zone, ZoneId,
};

/// Validates one file's text; built per parse.
pub(super) struct Validator<'a> {
    /// The file's text, for the line of an error.
    pub(super) text: &'a str,
    /// Where the text came from, for error messages.
    pub(super) origin: &'a str,
}

impl Validator<'_> {
    pub(super) fn err<T>(
        &self,
        at: &Spanned<T>,
        field: &'static str,
        reason: String,
    ) -> DirectoryError {
        self.err_at(at.span().start, field, reason)
    }

    pub(super) fn err_at(
        &self,
        offset: usize,
        field: &'static str,
        reason: String,
    ) -> DirectoryError {
        DirectoryError::Invalid {
            location: Location::from_offset(self.origin, self.text, offset),
            field,
            reason,
        }
    }

    /// The line of a byte offset; only called on the error path (it scans the text).
    pub(super) fn line(&self, offset: usize) -> usize {
        Location::from_offset(self.origin, self.text, offset).line
    }

    pub(super) fn name(
        &self,
        name: Spanned<String>,
        field: &'static str,
    ) -> Result<String, DirectoryError> {
        if name.get_ref().trim().is_empty() {
            return Err(self.err(&name, field, "must not be empty".to_owned()));
        }
        Ok(name.into_inner())
    }

    pub(super) fn validate(&self, file: FileDirectory) -> Result<Directory, DirectoryError> {
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
            if id >= crate::FIRST_RESERVED_GROUP_ID {
                let reason = format!(
                    "group ids from {} up are the relay's temporary groups (private calls)",
                    crate::FIRST_RESERVED_GROUP_ID
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
