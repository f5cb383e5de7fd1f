//! How the directory's ACLs and per-group settings become floor rules.

use ptt_floor::{FloorPolicy, MemberRights, Priority};

use ptt_directory::{self as directory, Membership, Role, Terminal};

/// The floor priority of a directory priority.
pub fn priority(priority: directory::Priority) -> Priority {
    match priority {
        directory::Priority::Normal => Priority::Normal,
        directory::Priority::Elevated => Priority::Elevated,
        directory::Priority::Dispatcher => Priority::Dispatcher,
        directory::Priority::Emergency => Priority::Emergency,
    }
}

/// The directory's (and call log's) priority of a floor priority.
pub fn directory_priority(priority: Priority) -> directory::Priority {
    match priority {
        Priority::Normal => directory::Priority::Normal,
        Priority::Elevated => directory::Priority::Elevated,
        Priority::Dispatcher => directory::Priority::Dispatcher,
        Priority::Emergency => directory::Priority::Emergency,
    }
}

/// A group's floor policy: the floor crate's defaults (ARCHITECTURE §4) with
/// the directory's overrides applied.
pub fn floor_policy(overrides: &directory::FloorPolicy) -> FloorPolicy {
    let mut policy = FloorPolicy::default();
    if let Some(limit) = overrides.talk_limit {
        policy.talk_limit = Some(limit);
        policy.emergency_talk_limit = Some(limit);
        // Zero disables the limit for every kind; otherwise a broadcast is
        // never cut shorter than an ordinary burst.
        policy.broadcast_talk_limit = if limit.is_zero() {
            Some(limit)
        } else {
            policy.broadcast_talk_limit.map(|b| b.max(limit))
        };
    }
    if let Some(grace) = overrides.revoke_grace {
        policy.revoke_grace = grace;
    }
    if let Some(inactivity) = overrides.media_inactivity {
        policy.media_inactivity = Some(inactivity);
    }
    if let Some(expiry) = overrides.queue_expiry {
        policy.queue_expiry = Some(expiry);
    }
    if let Some(limit) = overrides.queue_limit {
        policy.queue_limit = limit as usize;
    }
    policy
}

/// A member's floor rights from its ACL entry. Dispatchers hold the
/// pre-emptive right (a console interrupts a routine call); everybody else
/// queues. Emergency requests pre-empt regardless, if the terminal may make
/// them (checked by the session before the request reaches the floor).
pub fn member_rights(terminal: &Terminal, membership: &Membership) -> MemberRights {
    let max_priority = priority(membership.max_priority);
    MemberRights {
        may_talk: membership.talk,
        max_priority,
        preemptive: terminal.role == Role::Dispatcher || max_priority >= Priority::Dispatcher,
    }
}
