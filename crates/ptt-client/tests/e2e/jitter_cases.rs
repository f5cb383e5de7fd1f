//! The jitter buffer's edge cases, driven by a virtual clock: sequence
//! wrap-around, a reordered start, underruns, new bursts and far jumps;
//! and arbitrary arrivals that must never replay or reorder a frame.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::network::{FRAME, Link, Rng, check_contract, drive, payload, transmit, unpack};
use proptest::prelude::*;
use ptt_client::jitter::{Arrival, JitterBuffer, JitterConfig, Playout};

#[test]
fn sequence_wraps_around() {
    let t0 = Instant::now();
    let link = Link {
        base: Duration::from_millis(20),
        jitter: Duration::from_millis(50),
        loss: 0.05,
        dup: 0.05,
    };
    let mut rng = Rng(3);
    let arrivals = transmit(link, &mut rng, t0, 9, 65_500, 100);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let (outputs, _) = drive(&mut jb, &arrivals);
    let (played, lost) = check_contract(&outputs, &arrivals);
    assert!(played.contains(&65_535) || lost.contains(&65_535));
    assert!(played.contains(&0) || lost.contains(&0));
    assert!(played.len() + lost.len() > 95);
    assert!(played.last().unwrap() < &100);
}

/// The second frame arriving first does not lose the first.
#[test]
fn reordered_start_keeps_the_head() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    assert_eq!(
        jb.push(ms(0), 11, 5, 20_000, payload(5, 11)),
        Arrival::NewBurst
    );
    assert_eq!(jb.push(ms(5), 10, 5, 0, payload(5, 10)), Arrival::Buffered);
    let due = jb.poll_timeout().unwrap();
    assert_eq!(
        due,
        ms(20),
        "first playout one target delay after the first arrival"
    );
    assert_eq!(jb.pop(due), Some(Playout::Frame(payload(5, 10))));
    assert_eq!(jb.pop(due + FRAME), Some(Playout::Frame(payload(5, 11))));
}

/// When the buffer runs dry it holds rather than declaring losses, and
/// resumes from the moment frames come back.
#[test]
fn underrun_holds_then_resumes() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    jb.push(ms(0), 0, 1, 0, payload(1, 0));
    assert_eq!(jb.pop(ms(20)), Some(Playout::Frame(payload(1, 0))));
    // Frame 1 is due at 40 ms and nothing is there.
    assert_eq!(jb.pop(ms(40)), None);
    assert_eq!(jb.pop(ms(100)), None);
    assert_eq!(jb.poll_timeout(), None);
    assert_eq!(jb.stats().lost, 0);
    // It comes at 150 ms: played at once, and the next one 20 ms later.
    jb.push(ms(150), 1, 1, 20_000, payload(1, 1));
    jb.push(ms(151), 2, 1, 40_000, payload(1, 2));
    assert_eq!(jb.pop(ms(150)), Some(Playout::Frame(payload(1, 1))));
    assert_eq!(jb.pop(ms(151)), None);
    assert_eq!(jb.poll_timeout(), Some(ms(170)));
    assert_eq!(jb.pop(ms(170)), Some(Playout::Frame(payload(1, 2))));
}

/// A new burst id restarts the stream; stragglers of the old burst are late.
#[test]
fn new_burst_resets_the_stream() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    jb.push(ms(0), 100, 1, 0, payload(1, 100));
    jb.push(ms(20), 101, 1, 20_000, payload(1, 101));
    assert_eq!(jb.push(ms(30), 0, 2, 0, payload(2, 0)), Arrival::NewBurst);
    assert_eq!(jb.burst_id(), Some(2));
    assert_eq!(
        jb.push(ms(31), 102, 1, 40_000, payload(1, 102)),
        Arrival::Late
    );
    assert_eq!(jb.burst_id(), Some(2));
    assert_eq!(jb.pop(ms(50)), Some(Playout::Frame(payload(2, 0))));
    jb.end_burst();
    assert_eq!(jb.burst_id(), None);
    assert_eq!(jb.push(ms(60), 1, 2, 20_000, payload(2, 1)), Arrival::Late);
    assert_eq!(jb.pop(ms(1_000)), None);
}

/// A sender that jumps far ahead restarts the stream instead of growing the
/// buffer.
#[test]
fn far_jump_restarts_bounded() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    jb.push(t0, 0, 1, 0, payload(1, 0));
    jb.push(t0, 10_000, 1, 0, payload(1, 10_000));
    assert_eq!(jb.buffered(), 1);
    assert_eq!(jb.stats().lost, 10_000 - 1);
    assert_eq!(jb.stats().late, 1);
    let due = jb.poll_timeout().unwrap();
    assert_eq!(jb.pop(due), Some(Playout::Frame(payload(1, 10_000))));
}

#[derive(Debug, Clone)]
enum Op {
    Push {
        dt_ms: u8,
        seq: u16,
        burst: u32,
        ts: u64,
    },
    Pop {
        dt_ms: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..40, 0u16..80, 0u32..3, any::<u64>())
            .prop_map(|(dt_ms, seq, burst, ts)| Op::Push { dt_ms, seq, burst, ts }),
        1 => (0u8..40, 65_500u16..=65_535, 0u32..3, any::<u64>())
            .prop_map(|(dt_ms, seq, burst, ts)| Op::Push { dt_ms, seq, burst, ts }),
        3 => (0u8..60).prop_map(|dt_ms| Op::Pop { dt_ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Whatever arrives, whenever: no panic, no frame played twice, and
    /// within a burst frames come out in increasing sequence order.
    #[test]
    fn arbitrary_arrivals_never_replay_or_reorder(ops in proptest::collection::vec(op(), 1..200)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut seen = std::collections::HashSet::new();
        // Last position (sequence, as a frame or a loss) output per burst.
        let mut last: HashMap<u32, u16> = HashMap::new();
        let mut current: Option<u32> = None;
        for op in ops {
            match op {
                Op::Push { dt_ms, seq, burst, ts } => {
                    now += Duration::from_millis(u64::from(dt_ms));
                    jb.push(now, seq, burst, ts, payload(burst, seq));
                }
                Op::Pop { dt_ms } => {
                    now += Duration::from_millis(u64::from(dt_ms));
                    while let Some(p) = jb.pop(now) {
                        match p {
                            Playout::Frame(p) => {
                                let (burst, seq) = unpack(&p);
                                prop_assert!(seen.insert((burst, seq)), "{}/{} twice", burst, seq);
                                if let Some(&prev) = last.get(&burst) {
                                    prop_assert!(ptt_proto::voice::seq_cmp(seq, prev) > 0,
                                        "{} after {} in burst {}", seq, prev, burst);
                                }
                                last.insert(burst, seq);
                                current = Some(burst);
                            }
                            Playout::Lost { fec_from } => {
                                let burst = current.expect("a loss follows a frame");
                                let prev = last[&burst];
                                let seq = prev.wrapping_add(1);
                                if let Some(next) = fec_from {
                                    prop_assert_eq!(unpack(&next), (burst, seq.wrapping_add(1)));
                                }
                                last.insert(burst, seq);
                            }
                        }
                    }
                }
            }
            let s = jb.stats();
            prop_assert!(s.concealed + s.recovered_fec <= s.lost);
            prop_assert!(jb.buffered() <= 64);
            prop_assert!(s.target_delay_us >= 20_000 && s.target_delay_us <= 200_000);
        }
    }
}
