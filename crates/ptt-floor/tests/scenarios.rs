//! Script-like scenarios, one per floor-control rule.

mod harness;

use harness::*;
use ptt_floor::{
    ClearEmergencyError, Event, FloorPolicy, FloorState, Priority, RequestKind, RevokeReason,
};

use Priority::{Dispatcher, Elevated, Emergency, Normal};

fn sim() -> Sim {
    Sim::new(FloorPolicy::default())
}

/// A sim with talkers 1..=n joined.
fn sim_with_talkers(policy: FloorPolicy, n: u32) -> Sim {
    let mut s = Sim::new(policy);
    for id in 1..=n {
        s.join(id, TALKER);
    }
    s
}

#[test]
fn grant_when_idle() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 2);
    assert_eq!(s.press(1), ["granted 1 #1 normal/normal", "taken 1 #1"]);
    assert_eq!(
        s.floor.state(),
        FloorState::Taken {
            holder: p(1),
            burst: ptt_floor::BurstId(1),
            priority: Normal,
            kind: RequestKind::Normal,
        }
    );
    assert!(s.media(1), "holder's media is forwarded");
    assert!(!s.media(2), "others' media is dropped");
    assert!(!s.media(99), "non-members' media is dropped");

    let Some(&(_, Event::Granted { talk_limit, .. })) = s.log.first() else {
        panic!("first event is the grant");
    };
    assert_eq!(talk_limit, Some(secs(60)));

    s.step(secs(2));
    assert_eq!(s.release(1), ["ended #1 1 released", "idle #1 released"]);
    let Some(&(_, Event::BurstEnded { started, ended, .. })) = s.log.iter().rev().nth(1) else {
        panic!("burst ended is logged");
    };
    assert_eq!(ended - started, secs(2));
    assert_eq!(s.floor.state(), FloorState::Idle);
    assert_eq!(s.floor.poll_timeout(), None, "idle floor arms no timer");

    // Next burst gets the next id.
    assert_eq!(s.press(2), ["granted 2 #2 normal/normal", "taken 2 #2"]);
}

#[test]
fn queue_orders_by_priority_then_arrival_and_reports_positions() {
    let mut s = sim();
    s.join(1, TALKER);
    s.join(2, TALKER);
    s.join(3, ELEVATED);
    s.join(4, TALKER);
    s.join(5, ELEVATED);
    s.press(1);
    assert_eq!(s.press(2), ["queued 2 @1/1"]);
    assert_eq!(
        s.request(3, Elevated, RequestKind::Normal),
        ["queued 3 @1/2", "pos 2 @2"]
    );
    assert_eq!(s.press(4), ["queued 4 @3/3"]);
    assert_eq!(
        s.request(5, Elevated, RequestKind::Normal),
        ["queued 5 @2/4", "pos 2 @3", "pos 4 @4"]
    );
    assert_eq!(s.queue(), [3, 5, 2, 4]);

    // Release grants the head; everyone behind moves up.
    assert_eq!(
        s.release(1),
        [
            "ended #1 1 released",
            "granted 3 #2 elevated/normal",
            "taken 3 #2",
            "pos 5 @1",
            "pos 2 @2",
            "pos 4 @3",
        ]
    );
    let positions: Vec<(u32, u32)> = s.floor.queue().map(|q| (q.who.0, q.position)).collect();
    assert_eq!(positions, [(5, 1), (2, 2), (4, 3)]);
}

#[test]
fn requested_priority_is_clamped_to_rights() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 3);
    s.press(1);
    // A normal talker asking for dispatcher priority is queued as normal.
    assert_eq!(
        s.request(2, Dispatcher, RequestKind::Normal),
        ["queued 2 @1/1"]
    );
    assert_eq!(s.floor.queue().next().map(|q| q.priority), Some(Normal));
    // Emergency priority on a normal request is not an emergency.
    assert_eq!(
        s.request(3, Emergency, RequestKind::Normal),
        ["queued 3 @2/2"]
    );
    assert!(!s.floor.in_emergency());
}

#[test]
fn queue_limit_refuses_or_displaces_the_tail() {
    let policy = FloorPolicy {
        queue_limit: 2,
        ..FloorPolicy::default()
    };
    let mut s = sim_with_talkers(policy, 4);
    s.join(5, ELEVATED);
    s.press(1);
    s.press(2);
    s.press(3);
    assert_eq!(s.press(4), ["denied 4 queue-full"]);
    assert_eq!(s.queue(), [2, 3]);
    // A higher priority request displaces the lowest, latest entry.
    assert_eq!(
        s.request(5, Elevated, RequestKind::Normal),
        ["denied 3 queue-full", "queued 5 @1/2", "pos 2 @2"]
    );
    assert_eq!(s.queue(), [5, 2]);
    // The displaced one can ask again later and is queued normally.
    s.release(1);
    assert_eq!(s.press(3), ["queued 3 @2/2"]);
}

#[test]
fn queue_limit_zero_disables_queueing() {
    let policy = FloorPolicy {
        queue_limit: 0,
        ..FloorPolicy::default()
    };
    let mut s = sim_with_talkers(policy, 2);
    s.press(1);
    assert_eq!(s.press(2), ["denied 2 queue-full"]);
}

#[test]
fn preemption_with_preemptive_right() {
    let mut s = sim();
    s.join(1, TALKER);
    s.join(2, TALKER);
    s.join(9, DISPATCHER);
    s.press(1);
    s.press(2);
    assert_eq!(
        s.request(9, Dispatcher, RequestKind::Normal),
        [
            "revoked 1 preempted-by-9",
            "ended #1 1 preempted-by-9",
            "granted 9 #2 dispatcher/normal",
            "taken 9 #2",
        ]
    );
    // The pre-empted holder is not re-queued; the queue is untouched.
    assert_eq!(s.queue(), [2]);
    assert!(!s.media(1));
    assert!(s.media(9));
    // After the dispatcher, the queue continues.
    assert_eq!(
        s.release(9),
        [
            "ended #2 9 released",
            "granted 2 #3 normal/normal",
            "taken 2 #3"
        ]
    );
}

#[test]
fn elevated_preemptive_talker_preempts_normal() {
    let mut s = sim();
    s.join(1, TALKER);
    s.join(2, ELEVATED_PREEMPTIVE);
    s.press(1);
    assert_eq!(
        s.request(2, Elevated, RequestKind::Normal)[0],
        "revoked 1 preempted-by-2"
    );
    assert_eq!(s.holder(), Some(2));
}

#[test]
fn no_preemption_without_right_or_without_higher_priority() {
    let mut s = sim();
    s.join(1, TALKER);
    s.join(2, ELEVATED);
    s.join(8, DISPATCHER);
    s.join(9, DISPATCHER);
    s.press(1);
    // Higher priority but no pre-emptive right: queued ahead.
    assert_eq!(
        s.request(2, Elevated, RequestKind::Normal),
        ["queued 2 @1/1"]
    );
    // Pre-emptive right but asking for normal priority: not above the holder.
    assert_eq!(s.request(8, Normal, RequestKind::Normal), ["queued 8 @2/2"]);
    assert_eq!(s.holder(), Some(1));
    // Dispatcher pre-empts, and another dispatcher cannot pre-empt it (equal).
    s.request(9, Dispatcher, RequestKind::Normal);
    assert_eq!(s.holder(), Some(9));
    assert_eq!(
        s.request(8, Dispatcher, RequestKind::Normal),
        ["queued 8 @1/2", "pos 2 @2"],
        "raising the priority of a queued request re-queues it"
    );
    assert_eq!(s.holder(), Some(9));
}

#[test]
fn holder_and_queued_asking_again() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 2);
    s.join(3, ELEVATED);
    s.press(1);
    s.press(2);
    s.press(3);
    assert_eq!(s.press(1), ["denied 1 already-holder"]);
    assert_eq!(s.press(2), ["denied 2 already-queued"]);
    assert_eq!(s.queue(), [2, 3], "place kept");
    assert_eq!(
        s.request(3, Elevated, RequestKind::Normal),
        ["queued 3 @1/2", "pos 2 @2"]
    );
}

#[test]
fn queued_request_withdrawn_by_release() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 4);
    s.press(1);
    s.press(2);
    s.press(3);
    s.press(4);
    assert_eq!(s.release(2), ["withdrawn 2", "pos 3 @1", "pos 4 @2"]);
    assert_eq!(s.release(2), Vec::<String>::new(), "second release ignored");
    assert_eq!(s.queue(), [3, 4]);
}

#[test]
fn broadcast_only_the_caller_talks() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 3);
    s.join(9, DISPATCHER);
    s.press(1);
    s.press(2);
    // A normal talker cannot start an all-call.
    assert_eq!(
        s.request(3, Normal, RequestKind::Broadcast),
        ["denied 3 priority-not-allowed"]
    );
    assert_eq!(
        s.request(9, Dispatcher, RequestKind::Broadcast),
        [
            "revoked 1 preempted-by-9",
            "ended #1 1 preempted-by-9",
            "granted 9 #2 dispatcher/broadcast",
            "taken 9 #2",
            "denied 2 broadcast",
        ]
    );
    assert_eq!(s.queue(), Vec::<u32>::new());
    let Some(&(_, Event::Granted { talk_limit, .. })) = s
        .log
        .iter()
        .find(|(_, e)| matches!(e, Event::Granted { to, .. } if to.0 == 9))
    else {
        panic!("broadcast granted");
    };
    assert_eq!(
        talk_limit,
        Some(secs(120)),
        "broadcasts have their own limit"
    );
    assert_eq!(s.press(3), ["denied 3 broadcast"]);
    assert_eq!(
        s.request(1, Elevated, RequestKind::Normal),
        ["denied 1 broadcast"]
    );
    assert_eq!(s.release(9), ["ended #2 9 released", "idle #2 released"]);
    assert_eq!(s.press(3), ["granted 3 #3 normal/normal", "taken 3 #3"]);
}

#[test]
fn emergency_preempts_a_broadcast() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 1);
    s.join(9, DISPATCHER);
    s.request(9, Dispatcher, RequestKind::Broadcast);
    assert_eq!(
        s.request(1, Normal, RequestKind::Emergency),
        [
            "emergency 1",
            "revoked 9 preempted-by-1",
            "ended #1 9 preempted-by-1",
            "granted 1 #2 emergency/emergency",
            "taken 1 #2",
        ]
    );
}

#[test]
fn emergency_set_and_cleared_by_dispatcher_only() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 3);
    s.join(8, ELEVATED_PREEMPTIVE);
    s.join(9, DISPATCHER);
    s.press(1);
    s.press(2);
    // Any talker may raise an emergency; it pre-empts without the right.
    assert_eq!(
        s.request(3, Normal, RequestKind::Emergency),
        [
            "emergency 3",
            "revoked 1 preempted-by-3",
            "ended #1 1 preempted-by-3",
            "granted 3 #2 emergency/emergency",
            "taken 3 #2",
        ]
    );
    assert!(s.floor.in_emergency());
    // Nobody pre-empts an emergency; not even a dispatcher.
    assert_eq!(
        s.request(9, Dispatcher, RequestKind::Normal),
        ["queued 9 @1/2", "pos 2 @2"]
    );
    // The emergency stays after the caller releases.
    s.release(3);
    assert!(s.floor.in_emergency());
    assert_eq!(s.holder(), Some(9));

    // Clearing needs dispatcher rights.
    assert_eq!(s.clear(8), Err(ClearEmergencyError::NotDispatcher));
    assert_eq!(s.clear(77), Err(ClearEmergencyError::NotMember));
    assert!(s.floor.in_emergency());
    assert_eq!(s.clear(9), Ok(vec!["cleared 9".to_string()]));
    assert!(!s.floor.in_emergency());
    assert_eq!(s.clear(9), Err(ClearEmergencyError::NotInEmergency));
}

#[test]
fn clearing_revokes_an_emergency_holder_and_drops_queued_emergencies() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 3);
    s.join(9, DISPATCHER);
    s.request(1, Normal, RequestKind::Emergency);
    // A second emergency while one holds the floor is queued first.
    s.press(2);
    assert_eq!(
        s.request(3, Normal, RequestKind::Emergency),
        ["queued 3 @1/2", "pos 2 @2"],
        "already in emergency: no second EmergencyStarted"
    );
    assert_eq!(
        s.clear(9).unwrap(),
        [
            "cleared 9",
            "denied 3 emergency-cleared",
            "revoked 1 emergency-cleared",
            "ended #1 1 emergency-cleared",
            "granted 2 #2 normal/normal",
            "taken 2 #2",
        ]
    );
}

#[test]
fn holder_upgrades_to_emergency_in_place() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 1);
    s.press(1);
    s.step(secs(2));
    assert!(s.media(1));
    assert_eq!(
        s.request(1, Normal, RequestKind::Emergency),
        [
            "emergency 1",
            "granted 1 #1 emergency/emergency",
            "taken 1 #1"
        ]
    );
    assert!(s.floor.in_emergency());
    assert_eq!(
        s.request(1, Normal, RequestKind::Emergency),
        ["denied 1 already-holder"]
    );
}

#[test]
fn talk_limit_revokes_with_grace_then_forces_the_end() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 2);
    s.press(1);
    // Talk for 59.9 s: nothing happens.
    assert!(s.talk(1, ms(59_900), ms(100)).is_empty());
    s.press(2);
    // At 60 s the holder is told to stop; media still flows in the grace.
    assert_eq!(s.step(ms(100)), ["revoked 1 talk-limit"]);
    assert!(matches!(
        s.floor.state(),
        FloorState::Revoking { holder, reason: RevokeReason::TalkLimit, deadline, .. }
            if holder == p(1) && deadline == s.at(secs(61))
    ));
    assert!(s.media(1), "forwarded during grace");
    // The holder keeps talking: at 61 s the floor is taken from them.
    assert_eq!(
        s.talk(1, secs(1), ms(20)),
        [
            "ended #1 1 talk-limit",
            "granted 2 #2 normal/normal",
            "taken 2 #2"
        ]
    );
    assert!(!s.media(1), "dropped after grace");
    assert!(s.media(2));
}

#[test]
fn talk_limit_release_during_grace_and_zero_grace() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 1);
    s.press(1);
    s.talk(1, secs(60), secs(1));
    assert!(matches!(s.floor.state(), FloorState::Revoking { .. }));
    s.step(ms(300));
    assert_eq!(
        s.release(1),
        ["ended #1 1 talk-limit", "idle #1 talk-limit"]
    );
    assert_eq!(s.floor.poll_timeout(), None);

    let policy = FloorPolicy {
        revoke_grace: secs(0),
        ..FloorPolicy::default()
    };
    let mut s = sim_with_talkers(policy, 1);
    s.press(1);
    assert_eq!(
        s.talk(1, secs(60), secs(1)),
        [
            "revoked 1 talk-limit",
            "ended #1 1 talk-limit",
            "idle #1 talk-limit"
        ]
    );
}

#[test]
fn talk_limit_can_be_disabled() {
    let policy = FloorPolicy {
        talk_limit: None,
        ..FloorPolicy::default()
    };
    let mut s = sim_with_talkers(policy, 1);
    s.press(1);
    assert!(s.talk(1, secs(3600), secs(1)).is_empty());
    assert_eq!(s.holder(), Some(1));
}

#[test]
fn media_inactivity_releases_the_floor() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 2);
    s.press(1);
    s.step(secs(3));
    assert!(s.media(1), "a frame at 3 s restarts the 4 s timer");
    assert!(s.step(ms(3_999)).is_empty());
    s.press(2);
    assert_eq!(
        s.step(ms(1)),
        [
            "revoked 1 inactive",
            "ended #1 1 inactive",
            "granted 2 #2 normal/normal",
            "taken 2 #2",
        ]
    );
    assert_eq!(s.elapsed(), secs(7));
    // A holder that never talks loses the floor 4 s after the grant.
    assert_eq!(
        s.step(secs(4)),
        [
            "revoked 2 inactive",
            "ended #2 2 inactive",
            "idle #2 inactive"
        ]
    );
}

#[test]
fn queued_request_expires() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 3);
    s.press(1);
    s.press(2);
    s.talk(1, secs(5), secs(1));
    s.press(3);
    // 2 expires at 10 s; 3 moves up at that moment, restarting its clock.
    assert_eq!(s.talk(1, secs(5), secs(1)), ["expired 2", "pos 3 @1"]);
    assert_eq!(s.elapsed(), secs(10));
    assert!(s.talk(1, ms(9_900), ms(100)).is_empty());
    assert_eq!(s.talk(1, ms(100), ms(100)), ["expired 3"]);
    assert_eq!(s.floor.queue_len(), 0);
}

#[test]
fn expiry_at_the_instant_the_floor_frees_up_grants() {
    let policy = FloorPolicy {
        media_inactivity: Some(secs(10)),
        ..FloorPolicy::default()
    };
    let mut s = sim_with_talkers(policy, 2);
    s.press(1);
    s.press(2);
    // Inactivity and expiry both fall at 10 s: the burst timer goes first.
    assert_eq!(
        s.step(secs(10)),
        [
            "revoked 1 inactive",
            "ended #1 1 inactive",
            "granted 2 #2 normal/normal",
            "taken 2 #2",
        ]
    );
}

#[test]
fn holder_leaves_next_is_granted() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 3);
    s.press(1);
    s.press(2);
    s.press(3);
    assert_eq!(
        s.leave(1),
        [
            "ended #1 1 left",
            "granted 2 #2 normal/normal",
            "taken 2 #2",
            "pos 3 @1",
        ]
    );
    assert!(!s.floor.is_member(p(1)));
    assert_eq!(s.press(1), ["denied 1 not-member"]);
    assert_eq!(
        s.leave(2),
        [
            "ended #2 2 left",
            "granted 3 #3 normal/normal",
            "taken 3 #3"
        ]
    );
    assert_eq!(s.leave(3), ["ended #3 3 left", "idle #3 left"]);
    assert_eq!(s.leave(3), Vec::<String>::new(), "unknown leave ignored");
}

#[test]
fn queued_leaves_positions_updated() {
    let mut s = sim_with_talkers(FloorPolicy::default(), 4);
    s.press(1);
    s.press(2);
    s.press(3);
    s.press(4);
    assert_eq!(s.leave(2), ["pos 3 @1", "pos 4 @2"]);
    assert_eq!(s.leave(4), Vec::<String>::new());
    assert_eq!(s.queue(), [3]);
    // Rejoining starts afresh.
    s.join(2, TALKER);
    assert_eq!(s.press(2), ["queued 2 @2/2"]);
}

#[test]
fn listen_only_and_non_members_are_denied() {
    let mut s = sim();
    s.join(1, LISTENER);
    assert_eq!(s.press(1), ["denied 1 listen-only"]);
    assert_eq!(
        s.request(1, Normal, RequestKind::Emergency),
        ["denied 1 listen-only"]
    );
    assert_eq!(s.press(2), ["denied 2 not-member"]);
    assert!(!s.media(1));
    // Rights change on re-join.
    s.join(1, TALKER);
    assert_eq!(s.press(1), ["granted 1 #1 normal/normal", "taken 1 #1"]);
}

#[test]
fn dispatcher_call_then_hundred_answers_in_order() {
    let mut s = sim();
    s.join(1000, DISPATCHER);
    for id in 1..=100 {
        s.join(id, TALKER);
    }
    s.request(1000, Dispatcher, RequestKind::Broadcast);
    s.talk(1000, secs(5), ms(20));
    s.release(1000);
    assert_eq!(s.holder(), None);

    // A hundred answers at the same instant.
    for id in 1..=100 {
        let out = s.press(id);
        assert!(
            out[0].starts_with(&format!("granted {id} "))
                || out[0].starts_with(&format!("queued {id} @{}/", id - 1)),
            "{out:?}"
        );
    }
    assert_eq!(s.floor.queue_len(), 99);

    // Each speaks 3 s, then the next: nobody expires, nobody collides.
    let mut granted = vec![1];
    for id in 1..=100 {
        assert_eq!(s.holder(), Some(id));
        let timers = s.talk(id, secs(3), ms(500));
        assert!(timers.is_empty(), "{timers:?}");
        for e in s.release(id) {
            if let Some(rest) = e.strip_prefix("granted ") {
                granted.push(rest.split(' ').next().unwrap().parse().unwrap());
            }
        }
    }
    assert_eq!(granted, (1..=100).collect::<Vec<u32>>());
    assert_eq!(s.holder(), None);

    // Bursts never overlap and ids increase.
    let mut open = None;
    let mut last_burst = 0;
    for (_, e) in &s.log {
        match *e {
            Event::Granted { burst, .. } => {
                assert!(open.is_none(), "two holders at once");
                assert!(burst.0 > last_burst);
                last_burst = burst.0;
                open = Some(burst);
            }
            Event::BurstEnded { burst, .. } => {
                assert_eq!(open.take(), Some(burst));
            }
            _ => {}
        }
    }
    assert_eq!(last_burst, 101);
}
