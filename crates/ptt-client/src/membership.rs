//! Group membership as this terminal knows it: the groups of the directory,
//! the ones joined on the current connection, what the user asked for, and
//! the private calls in progress with their temporary groups.
//!
//! Three parties change membership and the client must keep them apart:
//! the user ([`crate::Client::join`] and `leave`, replayed after a
//! reconnect), the relay on its own (regrouping, a private call's group,
//! auto-joins at log-in: never replayed, the relay redoes or drops them),
//! and the end of a call or a regrouping, after which the group is
//! forgotten so neither a reconnect nor a talk tries it again. Plain data
//! without I/O, so the rules are unit-tested here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ptt_proto::pb;

use crate::events::enum_or_default;

/// Group membership as the relay reported it and as the user asked for it.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// Every group of the terminal with its rights (from `HelloOk`, joins
    /// and regroupings).
    pub(crate) infos: BTreeMap<u32, pb::GroupInfo>,
    /// Joined on the current connection: voice of these groups is heard.
    pub(crate) joined: BTreeSet<u32>,
    /// Explicit `join` (true) / `leave` (false) calls, replayed on reconnect.
    pub(crate) wanted: HashMap<u32, bool>,
    /// Bursts this terminal holds, by group.
    pub(crate) held: HashMap<u32, u32>,
    /// Private calls in progress: call id to the call's temporary group
    /// (0 until the relay says).
    pub(crate) calls: HashMap<u64, u32>,
}

impl Groups {
    /// A fresh log-in: the groups the relay reports and joined us to. Calls
    /// of the previous connection ended with it (the relay tells the peer
    /// PEER_DISCONNECTED), so they and their groups are gone.
    pub(crate) fn logged_in(&mut self, hello: &pb::HelloOk) {
        self.infos = hello
            .groups
            .iter()
            .map(|g| (g.group_id, g.clone()))
            .collect();
        self.joined = hello
            .groups
            .iter()
            .filter(|g| g.joined)
            .map(|g| g.group_id)
            .collect();
        self.held.clear();
        self.calls.clear();
    }

    /// The joins and leaves that make a fresh login match what the user
    /// asked for: `(group, join?)`, ascending.
    pub(crate) fn reconcile(&self) -> Vec<(u32, bool)> {
        let mut todo: Vec<(u32, bool)> = self
            .wanted
            .iter()
            .filter(|&(group, &join)| self.joined.contains(group) != join)
            .map(|(&group, &join)| (group, join))
            .collect();
        todo.sort_unstable();
        todo
    }

    /// Marks `group` joined or left; `by_user` remembers it for reconnects.
    pub(crate) fn set_joined(&mut self, group: u32, joined: bool, by_user: bool) {
        if joined {
            self.joined.insert(group);
        } else {
            self.joined.remove(&group);
            self.held.remove(&group);
        }
        if by_user {
            self.wanted.insert(group, joined);
        }
    }

    /// The relay joined this terminal to a group by itself (an unsolicited
    /// `JoinOk`: auto-join at log-in, a private call, a regrouping). Not
    /// remembered as the user's wish: after a reconnect the relay decides
    /// again.
    pub(crate) fn relay_joined(&mut self, info: &pb::GroupInfo) {
        self.infos.insert(info.group_id, info.clone());
        self.joined.insert(info.group_id);
    }

    /// Applies a `Regrouped` about this terminal. ADDED joins the group the
    /// way the relay does (a new membership where the terminal may listen,
    /// or a rights change of a group it hears), so its voice is heard at
    /// once; REMOVED forgets the group. Returns the group removed, so a
    /// talk in it can be ended.
    pub(crate) fn regrouped(&mut self, regrouped: &pb::Regrouped) -> Option<u32> {
        let group = regrouped.group_id;
        match enum_or_default::<pb::RegroupChange>(regrouped.change) {
            pb::RegroupChange::Added => {
                let new = !self.infos.contains_key(&group);
                let listen = regrouped
                    .group
                    .as_ref()
                    .is_none_or(|info| info.rights.as_ref().is_none_or(|r| r.listen));
                if let Some(info) = &regrouped.group {
                    self.infos.insert(group, info.clone());
                }
                if new {
                    // An old "left by hand" must not make a reconnect leave
                    // the group the relay has just put us in.
                    self.wanted.remove(&group);
                }
                if listen && (new || self.joined.contains(&group)) {
                    self.joined.insert(group);
                } else if !listen {
                    self.joined.remove(&group);
                }
                None
            }
            pb::RegroupChange::Removed => {
                self.forget(group);
                Some(group)
            }
            pb::RegroupChange::Unspecified => None,
        }
    }

    /// A private call was set up (as caller or callee) or accepted: remember
    /// its group so the call's end can forget it.
    pub(crate) fn call_set_up(&mut self, call_id: u64, group: u32) {
        if call_id == 0 {
            return;
        }
        let known = self.calls.entry(call_id).or_insert(group);
        if group != 0 {
            *known = group;
        }
    }

    /// The group of a call in progress, if known.
    pub(crate) fn call_group(&self, call_id: u64) -> Option<u32> {
        self.calls.get(&call_id).copied().filter(|&g| g != 0)
    }

    /// A private call is over (rejected, hung up, ended by the relay): it
    /// and its temporary group are forgotten. Returns the group, if any.
    pub(crate) fn call_over(&mut self, call_id: u64) -> Option<u32> {
        let group = self.calls.remove(&call_id).filter(|&g| g != 0)?;
        self.forget(group);
        Some(group)
    }

    /// Drops every trace of `group`: it is neither heard, nor talked in,
    /// nor rejoined after a reconnect.
    fn forget(&mut self, group: u32) {
        self.infos.remove(&group);
        self.joined.remove(&group);
        self.held.remove(&group);
        self.wanted.remove(&group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: u32, listen: bool) -> pb::GroupInfo {
        pb::GroupInfo {
            group_id: group,
            name: format!("G{group}"),
            rights: Some(pb::GroupRights {
                listen,
                talk: listen,
                ..Default::default()
            }),
            joined: false,
            dynamic: true,
        }
    }

    fn regrouped(group: u32, change: pb::RegroupChange, listen: bool) -> pb::Regrouped {
        pb::Regrouped {
            group_id: group,
            terminal_id: 301,
            change: change.into(),
            reason: pb::RegroupReason::ZoneEntered.into(),
            group: (change == pb::RegroupChange::Added).then(|| info(group, listen)),
            zone: "Compound 17".into(),
        }
    }

    #[test]
    fn regrouped_in_is_heard_and_regrouped_out_is_forgotten() {
        let mut groups = Groups::default();
        groups.set_joined(31, false, true); // left by hand long ago
        assert_eq!(
            groups.regrouped(&regrouped(31, pb::RegroupChange::Added, true)),
            None
        );
        assert!(groups.joined.contains(&31));
        assert!(groups.infos.contains_key(&31));
        assert!(
            groups.reconcile().is_empty(),
            "a reconnect must not leave it"
        );
        groups.held.insert(31, 7);
        assert_eq!(
            groups.regrouped(&regrouped(31, pb::RegroupChange::Removed, true)),
            Some(31)
        );
        assert!(!groups.joined.contains(&31));
        assert!(!groups.infos.contains_key(&31));
        assert!(groups.held.is_empty());
        assert!(groups.reconcile().is_empty(), "nor join it again");
    }

    #[test]
    fn regrouped_listen_only_membership_is_not_heard() {
        let mut groups = Groups::default();
        groups.regrouped(&regrouped(32, pb::RegroupChange::Added, false));
        assert!(groups.infos.contains_key(&32));
        assert!(!groups.joined.contains(&32));
    }

    #[test]
    fn rights_change_of_a_group_left_by_hand_does_not_rejoin_it() {
        let mut groups = Groups::default();
        groups.relay_joined(&info(33, true));
        groups.set_joined(33, false, true);
        groups.regrouped(&regrouped(33, pb::RegroupChange::Added, true));
        assert!(!groups.joined.contains(&33), "the relay does not rejoin it");
        assert_eq!(groups.wanted.get(&33), Some(&false));
    }

    #[test]
    fn a_call_group_is_joined_by_the_relay_and_forgotten_at_the_end() {
        let mut groups = Groups::default();
        groups.call_set_up(9, 0);
        assert_eq!(groups.call_group(9), None);
        groups.call_set_up(9, 90_001);
        groups.call_set_up(9, 0); // an accept without the group keeps it
        assert_eq!(groups.call_group(9), Some(90_001));
        groups.relay_joined(&info(90_001, true));
        assert!(groups.joined.contains(&90_001));
        assert!(
            groups.reconcile().is_empty(),
            "never rejoined by the client"
        );
        assert_eq!(groups.call_over(9), Some(90_001));
        assert!(!groups.joined.contains(&90_001));
        assert!(!groups.infos.contains_key(&90_001));
        assert_eq!(groups.call_over(9), None, "ending twice is harmless");
    }

    #[test]
    fn a_new_login_drops_the_calls_of_the_old_connection() {
        let mut groups = Groups::default();
        groups.call_set_up(9, 90_001);
        groups.relay_joined(&info(90_001, true));
        groups.logged_in(&pb::HelloOk {
            groups: vec![pb::GroupInfo {
                joined: true,
                ..info(10, true)
            }],
            ..Default::default()
        });
        assert_eq!(groups.call_group(9), None);
        assert_eq!(groups.joined.iter().copied().collect::<Vec<_>>(), vec![10]);
    }
}
