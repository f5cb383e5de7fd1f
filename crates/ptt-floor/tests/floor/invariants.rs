//! Properties that hold under any sequence of inputs (ARCHITECTURE §4).
//!
//! A model is rebuilt from the events alone and compared with the floor's own
//! state after every input: at most one holder, state agrees with events,
//! pre-emption wins, queue positions are consistent, nobody who left is
//! named, and every queued request ends (granted, denied, expired, withdrawn
//! or removed by its leave) once the clock is driven far enough.

use crate::harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use harness::*;
use proptest::prelude::*;
use ptt_floor::{
    BurstId, DenyReason, Event, FloorPolicy, FloorState, MemberRights, ParticipantId, Priority,
    RequestKind, RevokeReason,
};

const IDS: u32 = 10;

#[derive(Clone, Debug)]
enum Op {
    Join(u32, usize),
    Leave(u32),
    Request(u32, Priority, RequestKind),
    Release(u32),
    Media(u32),
    Step(u64),
    Clear(u32),
}

const RIGHTS: [MemberRights; 6] = [
    MemberRights::LISTEN_ONLY,
    MemberRights::TALKER,
    MemberRights::talker(Priority::Elevated, false),
    MemberRights::talker(Priority::Elevated, true),
    MemberRights::DISPATCHER,
    MemberRights::talker(Priority::Dispatcher, false),
];

fn op() -> impl Strategy<Value = Op> {
    let id = 0..IDS;
    let priority = prop::sample::select(Priority::ALL.to_vec());
    let kind = prop_oneof![
        6 => Just(RequestKind::Normal),
        1 => Just(RequestKind::Broadcast),
        1 => Just(RequestKind::Emergency),
    ];
    prop_oneof![
        3 => (id.clone(), 0..RIGHTS.len()).prop_map(|(i, r)| Op::Join(i, r)),
        1 => id.clone().prop_map(Op::Leave),
        6 => (id.clone(), priority, kind).prop_map(|(i, p, k)| Op::Request(i, p, k)),
        3 => id.clone().prop_map(Op::Release),
        3 => id.clone().prop_map(Op::Media),
        3 => (0u64..3_000).prop_map(Op::Step),
        1 => id.prop_map(Op::Clear),
    ]
}

fn opt_secs(max: u64) -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        1 => Just(None),
        3 => (1..=max).prop_map(|s| Some(Duration::from_millis(s * 500))),
    ]
}

fn policy() -> impl Strategy<Value = FloorPolicy> {
    (
        opt_secs(20),
        opt_secs(20),
        prop::sample::select(vec![0u64, 500, 1000]),
        opt_secs(10),
        opt_secs(20),
        0usize..6,
    )
        .prop_map(
            |(talk, broadcast, grace, media, expiry, limit)| FloorPolicy {
                talk_limit: talk,
                broadcast_talk_limit: broadcast,
                emergency_talk_limit: talk,
                revoke_grace: Duration::from_millis(grace),
                media_inactivity: media,
                queue_expiry: expiry,
                queue_limit: limit,
            },
        )
}

/// What the events say the floor is.
#[derive(Default, Debug)]
struct Model {
    holder: Option<(ParticipantId, BurstId)>,
    last_burst: u32,
    queued: BTreeMap<ParticipantId, u32>,
    left: BTreeSet<ParticipantId>,
    emergency: bool,
}

impl Model {
    /// Applies one input's events. `leaver` is the participant whose leave
    /// caused them; `asker` the one whose request did.
    fn apply(
        &mut self,
        events: &[Event],
        leaver: Option<ParticipantId>,
        asker: Option<ParticipantId>,
    ) {
        for e in events {
            for who in named(e) {
                let own_burst_record =
                    matches!(e, Event::BurstEnded { holder, .. } if Some(*holder) == leaver);
                let own_refusal = matches!(
                    e,
                    Event::Denied { who, reason: DenyReason::NotMember } if Some(*who) == asker
                );
                assert!(
                    !self.left.contains(&who) || own_burst_record || own_refusal,
                    "event {e:?} names {who}, who left"
                );
            }
            match *e {
                Event::Granted { to, burst, .. } => {
                    match self.holder {
                        // Emergency upgrade in place keeps the burst.
                        Some((h, b)) => assert!(h == to && b == burst, "two holders: {e:?}"),
                        None => {
                            let expected = self.last_burst.wrapping_add(1).max(1);
                            assert_eq!(burst.0, expected, "burst ids increase by one");
                            self.last_burst = burst.0;
                        }
                    }
                    self.holder = Some((to, burst));
                    self.queued.remove(&to);
                }
                Event::Taken { holder, burst, .. } => {
                    assert_eq!(self.holder, Some((holder, burst)));
                }
                Event::BurstEnded { burst, holder, .. } => {
                    assert_eq!(self.holder.take(), Some((holder, burst)));
                }
                Event::Idle { last_burst, .. } => {
                    assert_eq!(self.holder, None);
                    assert_eq!(last_burst.0, self.last_burst);
                }
                Event::Revoked { who, reason } => {
                    assert_eq!(self.holder.map(|h| h.0), Some(who), "revoked a non-holder");
                    if let RevokeReason::Preempted { by } = reason {
                        assert_ne!(by, who);
                    }
                }
                Event::Queued {
                    who,
                    position,
                    queue_len,
                } => {
                    // Present already only when a higher-priority request
                    // replaced the old entry.
                    self.queued.insert(who, position);
                    assert!(position >= 1 && position <= queue_len);
                    assert_ne!(self.holder.map(|h| h.0), Some(who), "holder queued");
                }
                Event::QueuePosition { who, position } => {
                    let old = self.queued.insert(who, position);
                    assert!(old.is_some_and(|o| o != position), "{e:?} old {old:?}");
                }
                Event::Denied { who, .. } => {
                    // Refusing a request leaves an earlier queued request of
                    // the same member in place; a refusal of someone else
                    // (displaced, broadcast, emergency cleared) drops theirs.
                    if Some(who) != asker {
                        assert!(self.queued.remove(&who).is_some(), "{e:?} not queued");
                    }
                }
                Event::Withdrawn { who } | Event::Expired { who } => {
                    assert!(self.queued.remove(&who).is_some(), "{e:?} not queued");
                }
                Event::EmergencyStarted { .. } => {
                    assert!(!self.emergency, "emergency started twice");
                    self.emergency = true;
                }
                Event::EmergencyCleared { .. } => {
                    assert!(self.emergency);
                    self.emergency = false;
                }
            }
        }
    }

    fn check(&self, s: &Sim) {
        let state = s.floor.state();
        assert_eq!(self.holder.map(|h| h.0), state.holder());
        assert_eq!(self.holder.map(|h| h.1), state.burst());
        assert_eq!(self.emergency, s.floor.in_emergency());
        let actual: BTreeMap<ParticipantId, u32> =
            s.floor.queue().map(|q| (q.who, q.position)).collect();
        assert_eq!(self.queued, actual, "reported positions match the queue");
        let positions: Vec<u32> = s.floor.queue().map(|q| q.position).collect();
        assert!(positions.iter().copied().eq(1..=positions.len() as u32));
        let prios: Vec<Priority> = s.floor.queue().map(|q| q.priority).collect();
        assert!(prios.windows(2).all(|w| w[0] >= w[1]), "priority order");
        if state == FloorState::Idle {
            assert_eq!(s.floor.queue_len(), 0, "idle with a queue");
        }
        assert!(s.floor.queue_len() <= s.floor.policy().queue_limit);
        for q in s.floor.queue() {
            assert!(s.floor.is_member(q.who));
        }
        if let Some(at) = s.floor.poll_timeout() {
            assert!(at > s.now, "a due timer was left unfired");
        }
    }
}

fn run(policy: FloorPolicy, ops: Vec<Op>) {
    let mut s = Sim::new(policy);
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Join(id, r) => {
                s.join(id, RIGHTS[r]);
                m.left.remove(&p(id));
                m.apply(&s.drain(), None, None);
            }
            Op::Leave(id) => {
                let was_member = s.floor.is_member(p(id));
                s.floor.handle_leave(s.now, p(id));
                if was_member {
                    m.left.insert(p(id));
                }
                let events = s.drain();
                m.queued.remove(&p(id));
                m.apply(&events, Some(p(id)), None);
            }
            Op::Request(id, priority, kind) => {
                let before = s.floor.state();
                let rights = s.floor.rights(p(id));
                s.floor.handle_request(s.now, p(id), priority, kind);
                let events = s.drain();
                m.apply(&events, None, Some(p(id)));
                // A request that may pre-empt always ends holding the floor.
                if let Some(r) = rights
                    && r.may_talk
                    && (kind != RequestKind::Broadcast || r.is_dispatcher())
                {
                    let eff = r.effective_priority(priority, kind);
                    let wins = match before {
                        FloorState::Idle => true,
                        FloorState::Taken {
                            holder, priority, ..
                        }
                        | FloorState::Revoking {
                            holder, priority, ..
                        } => {
                            holder != p(id)
                                && eff > priority
                                && (r.preemptive || kind == RequestKind::Emergency)
                        }
                    };
                    if wins {
                        assert_eq!(s.floor.holder(), Some(p(id)), "{events:?}");
                    }
                }
            }
            Op::Release(id) => {
                s.floor.handle_release(s.now, p(id));
                m.apply(&s.drain(), None, None);
            }
            Op::Media(id) => {
                let expected = match s.floor.state() {
                    FloorState::Taken { holder, .. } => holder == p(id),
                    FloorState::Revoking {
                        holder, deadline, ..
                    } => holder == p(id) && s.now < deadline,
                    FloorState::Idle => false,
                };
                assert_eq!(s.media(id), expected);
            }
            Op::Step(ms) => {
                let events = s.step_events(Duration::from_millis(ms));
                m.apply(&events, None, None);
            }
            Op::Clear(id) => {
                let _ = s.floor.handle_clear_emergency(s.now, p(id));
                m.apply(&s.drain(), None, None);
            }
        }
        m.check(&s);
    }

    // The end: fire every timer, then release whoever still holds the floor
    // (timers may be disabled). Every queued request must have ended.
    for _ in 0..=(IDS as usize + 2) {
        let events = s.drive();
        m.apply(&events, None, None);
        m.check(&s);
        match s.floor.holder() {
            Some(h) => {
                s.floor.handle_release(s.now, h);
                m.apply(&s.drain(), None, None);
                m.check(&s);
            }
            None => break,
        }
    }
    assert_eq!(s.floor.holder(), None);
    assert!(m.queued.is_empty(), "requests never ended: {:?}", m.queued);
    assert_eq!(s.floor.queue_len(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn floor_invariants(policy in policy(), ops in prop::collection::vec(op(), 1..200)) {
        run(policy, ops);
    }
}

#[test]
fn default_policy_long_random_walk() {
    // A fixed long sequence under the default policy, as a smoke test that
    // does not depend on proptest's sampling.
    let mut ops = Vec::new();
    let mut x: u32 = 12345;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..5_000 {
        let id = next() % IDS;
        let op = match next() % 8 {
            0 => Op::Join(id, (next() % 6) as usize),
            1 => Op::Leave(id),
            2 | 3 => Op::Request(
                id,
                Priority::from_u8((next() % 4) as u8).unwrap(),
                match next() % 8 {
                    0 => RequestKind::Broadcast,
                    1 => RequestKind::Emergency,
                    _ => RequestKind::Normal,
                },
            ),
            4 => Op::Release(id),
            5 => Op::Media(id),
            6 => Op::Step(u64::from(next() % 5_000)),
            _ => Op::Clear(id),
        };
        ops.push(op);
    }
    run(FloorPolicy::default(), ops);
}
