//! Scenarios of the floor's timers: the talk limit with its grace (or none,
//! or disabled), media inactivity, and the expiry of a queued request.

use crate::harness;
use crate::scenario;

use harness::*;
use ptt_floor::{FloorPolicy, FloorState, RevokeReason};
use scenario::sim_with_talkers;

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
