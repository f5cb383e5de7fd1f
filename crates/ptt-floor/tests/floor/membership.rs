//! Scenarios of membership: a holder or a queued member leaving, and the
//! listen-only and non-members denied the floor.

use crate::harness;
use crate::scenario;

use harness::*;
use ptt_floor::FloorPolicy;
use ptt_floor::Priority::Normal;
use ptt_floor::RequestKind;
use scenario::{sim, sim_with_talkers};

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
