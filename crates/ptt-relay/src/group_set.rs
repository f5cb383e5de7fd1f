//! The relay's groups, made at start: the directory's talkgroups, the pool of
//! private calls' temporary groups and, in a cluster, every relay's temporary
//! groups for calls between relays; each with the task that will own its floor.

use std::sync::Arc;

use ptt_directory::{Directory, GroupKind};
use ptt_floor::FloorPolicy;
use ptt_relay_core::group::{Command, GroupContext, GroupShared, GroupTask, Groups};
use ptt_relay_core::policy;
use ptt_relay_core::private_call::{PRIVATE_CALL_GROUP_BASE, cross_relay_group_ids};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// What a group is, for its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A directory group: any relay's terminals may be members.
    Talkgroup,
    /// A private call's slot within this relay: both ends are this relay's.
    CallWithin,
    /// A private call's slot between relays of a cluster.
    CallAcross,
}

/// A group whose task has not started.
struct Unstarted {
    group: Arc<GroupShared>,
    commands: mpsc::Receiver<Command>,
    policy: FloorPolicy,
    kind: Kind,
}

/// The parties of a private call, whose floor is sized for them.
const CALL_PARTIES: usize = 2;

/// A private call's floor: its two parties, one talking and the other at
/// most queued.
fn private_call_policy() -> FloorPolicy {
    FloorPolicy {
        queue_limit: CALL_PARTIES,
        ..FloorPolicy::default()
    }
}

/// Every group of the relay, before their tasks run.
pub(crate) struct GroupSet {
    /// The groups by id, with the control room and all-call subsets.
    pub(crate) groups: Groups,
    /// The private calls' temporary groups within this relay, by slot.
    pub(crate) call_slots: Vec<Arc<GroupShared>>,
    /// In a cluster, the temporary groups of calls between relays (in
    /// `cross_relay_group_ids` order); empty otherwise.
    pub(crate) cross_relay_slots: Vec<Arc<GroupShared>>,
    /// Their tasks.
    pub(crate) unstarted: UnstartedGroups,
}

impl GroupSet {
    /// The groups of `directory`, `private_calls` temporary groups and,
    /// if `in_cluster`, the groups of calls between relays.
    pub(crate) fn new(directory: &Directory, private_calls: u32, in_cluster: bool) -> Self {
        let mut set = Self {
            groups: Groups::default(),
            call_slots: Vec::new(),
            cross_relay_slots: Vec::new(),
            unstarted: UnstartedGroups(Vec::new()),
        };
        for group in directory.groups() {
            let policy = policy::floor_policy(&group.floor);
            let shared = set.add(group.id.0, &group.name, policy, Kind::Talkgroup);
            let control_room = group.kind == GroupKind::ControlRoom;
            set.groups.insert(shared, control_room, group.all_call);
        }
        for slot in 0..private_calls {
            let name = format!("Private call {}", slot + 1);
            let id = PRIVATE_CALL_GROUP_BASE + slot;
            let shared = set.add(id, &name, private_call_policy(), Kind::CallWithin);
            set.groups.insert(shared.clone(), false, false);
            set.call_slots.push(shared);
        }
        if in_cluster {
            for id in cross_relay_group_ids() {
                let shared = set.add(id, "Private call", private_call_policy(), Kind::CallAcross);
                set.groups.insert(shared.clone(), false, false);
                set.cross_relay_slots.push(shared);
            }
        }
        set
    }

    fn add(&mut self, id: u32, name: &str, policy: FloorPolicy, kind: Kind) -> Arc<GroupShared> {
        let (group, commands) = GroupShared::new(id, Arc::from(name));
        self.unstarted.0.push(Unstarted {
            group: group.clone(),
            commands,
            policy,
            kind,
        });
        group
    }
}

/// The groups' tasks, not running yet (they need the relay's other parts).
pub(crate) struct UnstartedGroups(Vec<Unstarted>);

impl UnstartedGroups {
    /// Runs every group's task on `tasks` with `context`, until `stop`.
    pub(crate) fn start(
        self,
        context: &Arc<GroupContext>,
        tasks: &TaskTracker,
        stop: &CancellationToken,
    ) {
        for unstarted in self.0 {
            let span = tracing::info_span!("group", id = unstarted.group.id);
            let mut task = GroupTask::new(
                unstarted.group,
                unstarted.commands,
                unstarted.policy,
                context.clone(),
            );
            if unstarted.kind == Kind::CallWithin {
                task = task.local_only();
            }
            if unstarted.kind != Kind::Talkgroup {
                task = task.sized_for(CALL_PARTIES);
            }
            tasks.spawn(task.run(stop.clone()).instrument(span));
        }
    }
}
