//! Scenarios of emergencies: any talker raises one, nobody pre-empts it,
//! only a dispatcher clears it (which ends an emergency burst and drops the
//! queued emergency requests), and a holder upgrades to one in place.

use crate::harness;
use crate::scenario;

use harness::*;
use ptt_floor::Priority::{Dispatcher, Normal};
use ptt_floor::{ClearEmergencyError, FloorPolicy, RequestKind};
use scenario::sim_with_talkers;

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
