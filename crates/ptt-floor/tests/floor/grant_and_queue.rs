//! Scenarios of granting and queueing: a grant on an idle floor, the queue
//! ordered by priority then arrival with positions reported, requested
//! priority clamped to rights, the queue limit, asking again, withdrawing,
//! and a hundred answers to an all-call granted in order.

use crate::harness;
use crate::scenario;

use harness::*;
use ptt_floor::Priority::{Dispatcher, Elevated, Emergency, Normal};
use ptt_floor::{Event, FloorPolicy, FloorState, RequestKind};
use scenario::{sim, sim_with_talkers};

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
