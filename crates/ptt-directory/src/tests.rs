use super::*;
use crate::demo_build::{demo_markdown, demo_toml};
use std::time::Instant;

mod demo_geography;
mod geo_file;

fn hash() -> String {
    hash_secret(b"s3cret", HashParams::LIGHT).unwrap()
}

fn small(hash: &str) -> String {
    format!(
        r#"[[zone]]
id = 1
name = "Riverside"

[[terminal]]
id = 1
name = "Console 1"
role = "dispatcher"
secret-hash = "{hash}"
max-priority = "dispatcher"

[[terminal]]
id = 2
name = "Guard 2"
role = "guard"
secret-hash = "{hash}"
emergency = false

[[group]]
id = 10
name = "Compound"
kind = "enterprise"
zone = 1
talk-limit = "30s"
members = [{{ terminal = 1 }}, {{ terminal = 2, max-priority = "dispatcher" }}]
"#
    )
}

/// Loads `text` expecting an `Invalid` error; returns (line, field, display).
fn invalid(text: &str) -> (usize, &'static str, String) {
    match Directory::from_toml_str(text, "dir.toml") {
        Err(e @ DirectoryError::Invalid { .. }) => {
            let shown = e.to_string();
            let DirectoryError::Invalid {
                location, field, ..
            } = e
            else {
                unreachable!()
            };
            (location.line, field, shown)
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn small_directory_loads_with_indexes() {
    let h = hash();
    let dir = Directory::from_toml_str(&small(&h), "dir.toml").unwrap();
    let g = dir.group(GroupId(10)).unwrap();
    assert_eq!(g.floor.talk_limit, Some(Duration::from_secs(30)));
    assert_eq!(g.zone, Some(ZoneId(1)));
    assert_eq!(dir.members(GroupId(10)).len(), 2);
    // A membership cannot raise a terminal above its own cap.
    let m = dir.membership(TerminalId(2), GroupId(10)).unwrap();
    assert_eq!(m.max_priority, Priority::Normal);
    assert!(dir.may_request(TerminalId(2), GroupId(10), Priority::Normal));
    assert!(!dir.may_request(TerminalId(2), GroupId(10), Priority::Dispatcher));
    assert!(!dir.may_request(TerminalId(2), GroupId(10), Priority::Emergency));
    assert!(dir.may_request(TerminalId(1), GroupId(10), Priority::Emergency));
    assert!(!dir.may_request(TerminalId(3), GroupId(10), Priority::Normal));
    assert!(dir.may_all_call(TerminalId(1)) && !dir.may_all_call(TerminalId(2)));
    assert_eq!(dir.groups_of(TerminalId(2)).count(), 1);
    assert_eq!(dir.groups_of(TerminalId(99)).count(), 0);
}

#[test]
fn verify_secret_right_wrong_unknown() {
    let h = hash();
    let dir = Directory::from_toml_str(&small(&h), "dir.toml").unwrap();
    assert!(dir.verify_secret(TerminalId(1), b"s3cret"));
    assert!(!dir.verify_secret(TerminalId(1), b"s3cret!"));
    assert!(!dir.verify_secret(TerminalId(1), b""));
    assert!(!dir.verify_secret(TerminalId(42), b"s3cret"));
}

#[test]
fn default_params_hash_verifies() {
    let h = hash_secret(b"pw", HashParams::DEFAULT).unwrap();
    assert_eq!(HashParams::of_hash(&h), Some(HashParams::DEFAULT));
    assert!(password::verify(&h, b"pw"));
    assert!(!password::verify(&h, b"pW"));
    assert!(!password::verify("garbage", b"pw"));
}

#[test]
fn duplicate_terminal_id() {
    let text = small(&hash()).replace("id = 2\n", "id = 1\n");
    let (line, field, shown) = invalid(&text);
    assert_eq!((line, field), (13, "terminal.id"));
    assert!(
        shown
            .starts_with("dir.toml:13:6: `terminal.id`: duplicate terminal id 1 (first on line 6)"),
        "{shown}"
    );
}

#[test]
fn reserved_ids_are_refused() {
    let text = small(&hash())
        .replace("id = 2\n", "id = 0\n")
        .replace("terminal = 2,", "terminal = 0,");
    let (line, field, shown) = invalid(&text);
    assert_eq!((line, field), (13, "terminal.id"));
    assert!(shown.contains("terminal id 0 is reserved"), "{shown}");

    let text = small(&hash()).replace("id = 10\n", "id = 0\n");
    let (line, field, shown) = invalid(&text);
    assert_eq!((line, field), (20, "group.id"));
    assert!(
        shown.contains("reserved for a dispatcher's all-call"),
        "{shown}"
    );

    let text = small(&hash()).replace("id = 10\n", "id = 4026531840\n");
    let (line, field, shown) = invalid(&text);
    assert_eq!((line, field), (20, "group.id"));
    assert!(
        shown.contains("temporary groups (private calls)"),
        "{shown}"
    );
}

#[test]
fn unknown_terminal_in_group() {
    let text = small(&hash()).replace("{ terminal = 2,", "{ terminal = 7,");
    let (line, field, shown) = invalid(&text);
    assert_eq!((line, field), (25, "group.members.terminal"));
    assert!(shown.contains("unknown terminal 7 in group 10"), "{shown}");
}

#[test]
fn bad_phc_hash() {
    let h = hash();
    let text = small(&h).replacen(
        &h,
        "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        1,
    );
    let (line, field, shown) = invalid(&text);
    assert_eq!((line, field), (9, "terminal.secret-hash"));
    assert!(shown.contains("expected argon2id"), "{shown}");
    let text = small(&h).replacen(&h, "plaintext", 1);
    assert_eq!(invalid(&text).1, "terminal.secret-hash");
}

#[test]
fn empty_names() {
    let text = small(&hash()).replace("name = \"Compound\"", "name = \"  \"");
    let (line, field, _) = invalid(&text);
    assert_eq!((line, field), (21, "group.name"));
    let text = small(&hash()).replace("name = \"Guard 2\"", "name = \"\"");
    assert_eq!(invalid(&text).0, 14);
    assert_eq!(invalid(&text).1, "terminal.name");
}

#[test]
fn duplicate_group_unknown_zone_zero_timer_useless_member() {
    let h = hash();
    let extra = "\n[[group]]\nid = 10\nname = \"Again\"\nkind = \"squad\"\n";
    let (line, field, _) = invalid(&(small(&h) + extra));
    assert_eq!((line, field), (28, "group.id"));
    let (line, field, _) = invalid(&small(&h).replace("zone = 1", "zone = 9"));
    assert_eq!((line, field), (23, "group.zone"));
    let (line, field, _) = invalid(&small(&h).replace("\"30s\"", "\"0\""));
    assert_eq!((line, field), (24, "group.talk-limit"));
    let text = small(&h).replace(
        "{ terminal = 1 }",
        "{ terminal = 1, listen = false, talk = false }",
    );
    assert_eq!(invalid(&text).1, "group.members");
}

#[test]
fn parse_errors_name_line_and_field() {
    let h = hash();
    let text = small(&h).replace("emergency = false", "emergancy = false");
    let err = Directory::from_toml_str(&text, "dir.toml").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("dir.toml:17:1: unknown field `emergancy`"),
        "{shown}"
    );
    let text = small(&h).replace("\"30s\"", "\"30 fortnights\"");
    let shown = Directory::from_toml_str(&text, "dir.toml")
        .unwrap_err()
        .to_string();
    assert!(shown.starts_with("dir.toml:24:"), "{shown}");
    assert!(shown.contains("talk-limit"), "{shown}");
    let shown = Directory::from_toml_str("[[terminal]\n", "d.toml")
        .unwrap_err()
        .to_string();
    assert!(shown.starts_with("d.toml:1:"), "{shown}");
}

#[test]
fn demo_district_shape() {
    let start = Instant::now();
    let dir = Directory::demo().unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "demo took {took:?}");
    let count = |k: GroupKind| dir.groups().iter().filter(|g| g.kind == k).count();
    assert_eq!(count(GroupKind::ControlRoom), 1);
    assert_eq!(count(GroupKind::Squad), 4);
    assert_eq!(count(GroupKind::Post), 3);
    assert_eq!(count(GroupKind::PatrolRoute), 16);
    assert!(count(GroupKind::Enterprise) >= 30);
    let guards = dir
        .terminals()
        .iter()
        .filter(|t| t.role == Role::Guard)
        .count();
    assert!(guards >= 70, "{guards} guards");
    for g in dir.groups() {
        for d in 1..=3 {
            let m = dir.membership(TerminalId(d), g.id).unwrap();
            assert_eq!(
                m.max_priority,
                Priority::Dispatcher,
                "dispatcher {d} in {}",
                g.name
            );
        }
        if g.kind == GroupKind::Enterprise {
            assert!((2..=3).contains(&(g.members.len() - 3)));
        }
    }
    // Volunteers listen only in District Alerts, talk in their own group.
    let v = dir.membership(TerminalId(501), GroupId(3)).unwrap();
    assert!(v.listen && !v.talk);
    assert!(dir.may_request(TerminalId(501), GroupId(201), Priority::Normal));
    // Every terminal is in District Alerts.
    assert_eq!(dir.members(GroupId(3)).len(), dir.terminals().len());
    assert!(dir.verify_secret(TerminalId(301), b"demo-301"));
    assert!(!dir.verify_secret(TerminalId(301), b"demo-302"));
    assert_eq!(dir.status(3).unwrap().label, "Need backup");
}

fn bless() -> bool {
    std::env::var_os("PTTD_BLESS").is_some()
}

#[test]
fn demo_asset_is_current() {
    let fresh = demo_toml().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo-district.toml");
    if bless() {
        std::fs::write(path, &fresh).unwrap();
    }
    assert!(
        fresh == demo::DEMO_TOML,
        "assets/demo-district.toml is stale: rerun with PTTD_BLESS=1"
    );
}

#[test]
fn demo_doc_is_current() {
    const BEGIN: &str = "<!-- BEGIN generated tables -->\n";
    const END: &str = "<!-- END generated tables -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/demo-district.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("markers missing in {path}")
    };
    let fresh = demo_markdown(&Directory::demo().unwrap());
    let current = &doc[b + BEGIN.len()..e];
    if bless() && current != fresh {
        let new = format!("{}{BEGIN}{fresh}{}", &doc[..b], &doc[e..]);
        std::fs::write(path, new).unwrap();
        return;
    }
    assert!(
        current == fresh,
        "docs/demo-district.md tables are stale: rerun with PTTD_BLESS=1"
    );
}

#[test]
fn generated_directory_loads_and_logs_in() {
    let start = Instant::now();
    let g = generate(1000, 20, 7).unwrap();
    let gen_took = start.elapsed();
    let dir = Directory::from_toml_str(&g.toml, "gen.toml").unwrap();
    assert_eq!(dir.terminals().len(), 1000);
    assert_eq!(dir.groups().len(), 20);
    assert_eq!(dir.members(GroupId(1)).len(), 1000);
    let dispatchers: Vec<_> = dir
        .terminals()
        .iter()
        .filter(|t| t.role == Role::Dispatcher)
        .collect();
    assert_eq!(dispatchers.len(), 4);
    // Every non-dispatcher is in exactly one group besides the district one.
    for t in dir.terminals().iter().skip(4) {
        assert_eq!(dir.groups_of(t.id).count(), 2, "terminal {}", t.id);
    }
    let line = g.secrets.lines().find(|l| l.starts_with("500 ")).unwrap();
    let secret = line.split_once(' ').unwrap().1;
    assert!(dir.verify_secret(TerminalId(500), secret.as_bytes()));
    assert!(!dir.verify_secret(TerminalId(501), secret.as_bytes()));
    assert_eq!(generate(1000, 20, 7).unwrap(), g, "not deterministic");
    eprintln!("generated 1000 terminals in {gen_took:?}");
}

#[test]
fn generate_edge_cases_and_write() {
    assert!(matches!(
        generate(0, 1, 1),
        Err(DirectoryError::Generate(_))
    ));
    assert!(matches!(
        generate(1, 0, 1),
        Err(DirectoryError::Generate(_))
    ));
    let one = generate(1, 1, 1).unwrap();
    assert_eq!(
        Directory::from_toml_str(&one.toml, "one")
            .unwrap()
            .terminals()
            .len(),
        1
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.toml");
    write_generated(5, 2, 3, &out, &dir.path().join("s.txt")).unwrap();
    assert!(Directory::load(&out).is_ok());
    assert!(matches!(
        Directory::load(&dir.path().join("none.toml")),
        Err(DirectoryError::Read { .. })
    ));
}
