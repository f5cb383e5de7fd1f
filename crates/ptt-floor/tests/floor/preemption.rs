//! Scenarios of pre-emption: who may take the floor from its holder (a
//! pre-emptive right and a higher priority, both needed), an all-call where
//! only the caller talks, and an emergency over an all-call.

use crate::harness;
use crate::scenario;

use harness::*;
use ptt_floor::Priority::{Dispatcher, Elevated, Normal};
use ptt_floor::{Event, FloorPolicy, RequestKind};
use scenario::{sim, sim_with_talkers};

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
