//! Directories built for a test: terminals with known secrets, groups with
//! exactly the members and rights a scenario needs.

use std::fmt::Write as _;

use ptt_directory::{HashParams, hash_secret};

/// One terminal of a test directory.
#[derive(Debug, Clone)]
pub struct TestTerminal {
    pub id: u32,
    pub role: &'static str,
    pub max_priority: &'static str,
    pub emergency: bool,
    pub on_duty: bool,
}

/// One member entry of a test group.
#[derive(Debug, Clone)]
pub struct TestMember {
    pub terminal: u32,
    pub talk: bool,
    pub max_priority: Option<&'static str>,
}

/// One group of a test directory.
#[derive(Debug, Clone)]
pub struct TestGroup {
    pub id: u32,
    pub kind: &'static str,
    pub members: Vec<TestMember>,
    /// Extra `key = value` lines (floor policy overrides, all-call).
    pub settings: Vec<String>,
}

/// A directory under construction.
#[derive(Debug, Clone, Default)]
pub struct TestDirectory {
    pub terminals: Vec<TestTerminal>,
    pub groups: Vec<TestGroup>,
    /// Raw TOML tables appended as they are (`[[zone]]`, `[[status]]`).
    pub tables: Vec<String>,
}

/// The secret of test terminal `id`.
pub fn secret(id: u32) -> String {
    format!("secret-{id}")
}

impl TestDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds guard terminals `ids` (normal priority, may declare emergencies).
    pub fn guards(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
        for id in ids {
            self.terminals.push(TestTerminal {
                id,
                role: "guard",
                max_priority: "normal",
                emergency: true,
                on_duty: true,
            });
        }
        self
    }

    /// Adds terminals `ids` of `role` (normal priority, may declare emergencies).
    pub fn terminals_of(mut self, role: &'static str, ids: impl IntoIterator<Item = u32>) -> Self {
        for id in ids {
            self.terminals.push(TestTerminal {
                id,
                role,
                max_priority: "normal",
                emergency: true,
                on_duty: true,
            });
        }
        self
    }

    /// Marks `terminal` off duty (zone logic leaves it alone).
    pub fn off_duty(mut self, terminal: u32) -> Self {
        for t in self.terminals.iter_mut().filter(|t| t.id == terminal) {
            t.on_duty = false;
        }
        self
    }

    /// Appends a raw TOML table (a `[[zone]]` or `[[status]]` block).
    pub fn table(mut self, toml: &str) -> Self {
        self.tables.push(toml.to_owned());
        self
    }

    /// Adds a dispatcher terminal.
    pub fn dispatcher(mut self, id: u32) -> Self {
        self.terminals.push(TestTerminal {
            id,
            role: "dispatcher",
            max_priority: "dispatcher",
            emergency: true,
            on_duty: true,
        });
        self
    }

    /// Adds a group whose members all may talk.
    pub fn group(self, id: u32, members: impl IntoIterator<Item = u32>) -> Self {
        self.group_with(id, "other", members, &[])
    }

    /// Adds a group of `kind` with extra settings lines.
    pub fn group_with(
        mut self,
        id: u32,
        kind: &'static str,
        members: impl IntoIterator<Item = u32>,
        settings: &[&str],
    ) -> Self {
        self.groups.push(TestGroup {
            id,
            kind,
            members: members
                .into_iter()
                .map(|terminal| TestMember {
                    terminal,
                    talk: true,
                    max_priority: None,
                })
                .collect(),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Adds patrol terminal `lead` and relay-patrol group `group` it leads, with
    /// `dispatcher` as the other member: guards join within 60 m of a premises and
    /// leave beyond 90 m.
    pub fn patrol(self, group: u32, lead: u32, dispatcher: u32) -> Self {
        let lead_line = format!("lead = {lead}");
        self.terminals_of("patrol", [lead]).group_with(
            group,
            "patrol-route",
            [dispatcher, lead],
            &[lead_line.as_str(), "approach-m = 60", "hysteresis-m = 30"],
        )
    }

    /// Adds `guards` and their compound: enterprise group `zone` (with `dispatcher`)
    /// whose premises, zone `zone`, is a 50 m circle `east` metres along a road and
    /// 100 m north of it (see [`crate::geo`]).
    pub fn compound(
        self,
        zone: u32,
        name: &str,
        east: f64,
        guards: &[u32],
        dispatcher: u32,
    ) -> Self {
        let zone_line = format!("zone = {zone}");
        self.guards(guards.iter().copied())
            .table(&crate::geo::premises(zone, name, east, 100.0, 50.0))
            .group_with(
                zone,
                "enterprise",
                [dispatcher].into_iter().chain(guards.iter().copied()),
                &[zone_line.as_str()],
            )
    }

    /// Makes `terminal` listen-only in `group`.
    pub fn listen_only(mut self, group: u32, terminal: u32) -> Self {
        for member in self
            .groups
            .iter_mut()
            .filter(|g| g.id == group)
            .flat_map(|g| g.members.iter_mut())
            .filter(|m| m.terminal == terminal)
        {
            member.talk = false;
        }
        self
    }

    /// The directory as TOML, with every secret hashed (light parameters, so
    /// hundreds of terminals log in quickly).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for t in &self.terminals {
            let hash = hash_secret(secret(t.id).as_bytes(), HashParams::LIGHT).expect("hash");
            let _ = write!(
                out,
                "[[terminal]]\nid = {}\nname = \"T{}\"\nrole = \"{}\"\norganisation = \"Test\"\nsecret-hash = \"{}\"\nmax-priority = \"{}\"\nemergency = {}\non-duty = {}\n\n",
                t.id, t.id, t.role, hash, t.max_priority, t.emergency, t.on_duty
            );
        }
        for g in &self.groups {
            let _ = write!(
                out,
                "[[group]]\nid = {}\nname = \"G{}\"\nkind = \"{}\"\n",
                g.id, g.id, g.kind
            );
            for line in &g.settings {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
            for m in &g.members {
                let _ = write!(out, "[[group.members]]\nterminal = {}\n", m.terminal);
                if !m.talk {
                    out.push_str("talk = false\n");
                }
                if let Some(p) = m.max_priority {
                    let _ = writeln!(out, "max-priority = \"{p}\"");
                }
                out.push('\n');
            }
        }
        for table in &self.tables {
            out.push_str(table);
            out.push('\n');
        }
        out
    }
}
