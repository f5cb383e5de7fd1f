//! Tests of the roster: admin changes, their replay, and refused logins.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ptt_calllog::{AdminAction, AdminActionRecord, CallLog, CallLogReader, Record};
use ptt_directory::{Directory, GroupId, Priority, TerminalId};

use super::error::RosterError;
use super::locks::read;
use super::refusals::REFUSAL_LOG_INTERVAL;
use super::state::Roster;

fn roster() -> Roster {
    Roster::new(Arc::new(Directory::demo().unwrap()))
}

/// A terminal of the demo district and a group it is not a member of.
fn outsider(roster: &Roster) -> (TerminalId, GroupId) {
    let directory = roster.directory();
    for terminal in directory.terminals() {
        for group in directory.groups() {
            if directory.membership(terminal.id, group.id).is_none() {
                return (terminal.id, group.id);
            }
        }
    }
    panic!("everyone is in every group");
}

#[test]
fn add_change_and_remove_a_member() {
    let roster = roster();
    let (terminal, group) = outsider(&roster);
    let before = roster.groups_of(terminal).len();
    let add = AdminAction::SetMember {
        group,
        terminal,
        listen: true,
        talk: false,
        max_priority: Some(Priority::Emergency),
    };
    roster.apply(&add).unwrap();
    let rights = roster.membership(terminal, group).unwrap();
    assert!(rights.listen && !rights.talk);
    // Capped by the terminal's own priority, as in the file.
    let cap = roster.directory().terminal(terminal).unwrap().max_priority;
    assert_eq!(rights.max_priority, cap.min(Priority::Emergency));
    assert_eq!(roster.groups_of(terminal).len(), before + 1);
    assert_eq!(roster.groups_of(terminal).last().unwrap().0.id, group);

    roster
        .apply(&AdminAction::RemoveMember { group, terminal })
        .unwrap();
    assert_eq!(roster.membership(terminal, group), None);
    assert_eq!(roster.groups_of(terminal).len(), before);
    assert_eq!(
        roster.apply(&AdminAction::RemoveMember { group, terminal }),
        Err(RosterError::NotMember { terminal, group })
    );
}

#[test]
fn removing_a_member_of_the_file_hides_it_until_added_back() {
    let roster = roster();
    let directory = roster.directory().clone();
    let terminal = directory.terminals()[0].id;
    let (group, in_file) = directory
        .groups_of(terminal)
        .map(|(g, m)| (g.id, *m))
        .next()
        .unwrap();
    roster
        .apply(&AdminAction::RemoveMember { group, terminal })
        .unwrap();
    assert!(
        roster
            .groups_of(terminal)
            .iter()
            .all(|(g, _)| g.id != group)
    );
    roster
        .apply(&AdminAction::SetMember {
            group,
            terminal,
            listen: in_file.listen,
            talk: in_file.talk,
            max_priority: Some(in_file.max_priority),
        })
        .unwrap();
    assert_eq!(roster.membership(terminal, group), Some(in_file));
    // Back to the file's rights: nothing is left in the overlay.
    assert!(read(&roster.changed).values().all(BTreeMap::is_empty));
}

#[test]
fn members_follow_the_changes() {
    let roster = roster();
    let (outsider, group) = outsider(&roster);
    let in_file: Vec<_> = roster.directory().members(group).to_vec();
    assert_eq!(roster.members(group), in_file);
    let removed = in_file[0].terminal;
    roster
        .apply(&AdminAction::RemoveMember {
            group,
            terminal: removed,
        })
        .unwrap();
    roster
        .apply(&AdminAction::SetMember {
            group,
            terminal: outsider,
            listen: true,
            talk: false,
            max_priority: None,
        })
        .unwrap();
    let now: Vec<_> = roster.members(group).iter().map(|m| m.terminal).collect();
    assert!(!now.contains(&removed), "{now:?}");
    assert_eq!(now.last(), Some(&outsider));
    assert_eq!(now.len(), in_file.len());
    assert!(roster.members(GroupId(u32::MAX)).is_empty());
}

#[test]
fn refused_logins_of_a_disabled_terminal_are_logged_once_a_minute() {
    let roster = roster();
    let terminal = roster.directory().terminals()[0].id;
    let start = Instant::now();
    // Not disabled: nothing to note.
    assert!(!roster.note_refused_login(terminal, start));
    roster.apply(&AdminAction::Disable { terminal }).unwrap();
    assert!(roster.note_refused_login(terminal, start));
    assert!(!roster.note_refused_login(terminal, start + Duration::from_secs(59)));
    assert!(roster.note_refused_login(terminal, start + REFUSAL_LOG_INTERVAL));
    // Enabled and disabled again: the next refusal is logged at once.
    roster.apply(&AdminAction::Enable { terminal }).unwrap();
    roster.apply(&AdminAction::Disable { terminal }).unwrap();
    assert!(roster.note_refused_login(terminal, start + REFUSAL_LOG_INTERVAL));
}

#[test]
fn unknown_ids_and_empty_rights_are_refused() {
    let roster = roster();
    let (terminal, group) = outsider(&roster);
    let nobody = TerminalId(u32::MAX);
    assert_eq!(
        roster.apply(&AdminAction::Disable { terminal: nobody }),
        Err(RosterError::UnknownTerminal(nobody))
    );
    let nowhere = GroupId(u32::MAX);
    assert_eq!(
        roster.check(&AdminAction::ClearEmergency { group: nowhere }),
        Err(RosterError::UnknownGroup(nowhere))
    );
    let neither = AdminAction::SetMember {
        group,
        terminal,
        listen: false,
        talk: false,
        max_priority: None,
    };
    assert_eq!(roster.apply(&neither), Err(RosterError::NoRights));
    assert_eq!(roster.membership(terminal, group), None);
}

#[tokio::test]
async fn actions_in_the_call_log_are_replayed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pttd.sqlite");
    let directory = Arc::new(Directory::demo().unwrap());
    let probe = Roster::new(directory.clone());
    let (terminal, group) = outsider(&probe);
    let other = directory.terminals()[1].id;
    let log = CallLog::open(&path, 16).unwrap();
    let actions = [
        AdminAction::Disable { terminal },
        AdminAction::Disable { terminal: other },
        AdminAction::Enable { terminal: other },
        AdminAction::SetMember {
            group,
            terminal,
            listen: true,
            talk: true,
            max_priority: None,
        },
        AdminAction::ClearEmergency { group },
        // No longer in the directory: skipped, the rest still applies.
        AdminAction::Disable {
            terminal: TerminalId(u32::MAX),
        },
    ];
    for (i, action) in actions.iter().enumerate() {
        log.record_durable(Record::Admin(AdminActionRecord {
            action: action.clone(),
            by: "admin".into(),
            at_ms: i64::try_from(i).unwrap(),
        }))
        .await
        .unwrap();
    }
    log.close().await.unwrap();

    let rows = CallLogReader::open(&path).unwrap().admin_actions().unwrap();
    let read_back: Vec<_> = rows.iter().map(|r| r.record.action.clone()).collect();
    assert_eq!(read_back, actions);

    let roster = Roster::load(directory, &path).unwrap();
    assert_eq!(roster.disabled(), vec![terminal]);
    assert!(!roster.is_disabled(other));
    let rights = roster.membership(terminal, group).unwrap();
    assert!(rights.listen && rights.talk);
}
