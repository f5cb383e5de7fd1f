//! The jitter buffer over a simulated, seeded network: latency, jitter,
//! loss, reordering and duplication, driven by a virtual clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use ptt_client::jitter::{Arrival, JitterBuffer, JitterConfig, JitterStats, Playout};

const FRAME: Duration = Duration::from_millis(20);

/// SplitMix64: the seeded randomness of the simulated link.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A one-way path: every frame is delayed by `base` plus a uniform share of
/// `jitter` (which reorders frames when it exceeds 20 ms), dropped with
/// probability `loss`, and duplicated with probability `dup`.
#[derive(Clone, Copy)]
struct Link {
    base: Duration,
    jitter: Duration,
    loss: f64,
    dup: f64,
}

/// A frame as it arrives.
#[derive(Clone, Debug)]
struct Datagram {
    at: Instant,
    seq: u16,
    burst: u32,
    sent_us: u64,
}

fn payload(burst: u32, seq: u16) -> Bytes {
    let mut p = burst.to_be_bytes().to_vec();
    p.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(p)
}

fn unpack(p: &Bytes) -> (u32, u16) {
    (
        u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        u16::from_be_bytes([p[4], p[5]]),
    )
}

/// Sends `count` frames of `burst` from `first_seq`, the first captured at
/// `start`, over `link`; returns what arrives, in arrival order.
fn transmit(
    link: Link,
    rng: &mut Rng,
    start: Instant,
    burst: u32,
    first_seq: u16,
    count: u32,
) -> Vec<Datagram> {
    let mut out = Vec::new();
    for i in 0..count {
        if rng.unit() < link.loss {
            continue;
        }
        let sent = start + FRAME * i;
        let copies = if rng.unit() < link.dup { 2 } else { 1 };
        for _ in 0..copies {
            let delay = link.base + link.jitter.mul_f64(rng.unit());
            out.push(Datagram {
                at: sent + delay,
                seq: first_seq.wrapping_add(i as u16),
                burst,
                // Sender clock: an arbitrary epoch plus capture time.
                sent_us: 1_700_000_000_000_000 + u64::from(i) * 20_000,
            });
        }
    }
    out.sort_by_key(|d| d.at);
    out
}

/// What came out of the buffer, and when.
#[derive(Debug)]
struct Output {
    at: Instant,
    playout: Playout,
}

/// Runs the buffer event by event: each arrival at its time, each pop at the
/// buffer's own `poll_timeout`. Returns the outputs and the push results.
fn drive(jb: &mut JitterBuffer, arrivals: &[Datagram]) -> (Vec<Output>, Vec<Arrival>) {
    let mut outputs = Vec::new();
    let mut results = Vec::new();
    let mut clock = arrivals.first().map(|d| d.at);
    let mut next = 0;
    loop {
        let arrival = arrivals.get(next).map(|d| d.at);
        let timeout = jb.poll_timeout();
        let Some(now) = clock else { break };
        match (arrival, timeout) {
            (None, None) => break,
            (Some(a), t) if t.is_none_or(|t| a <= t) => {
                let d = &arrivals[next];
                let now = now.max(a);
                clock = Some(now);
                results.push(jb.push(now, d.seq, d.burst, d.sent_us, payload(d.burst, d.seq)));
                next += 1;
            }
            (_, Some(t)) => {
                let now = now.max(t);
                clock = Some(now);
                while let Some(playout) = jb.pop(now) {
                    outputs.push(Output { at: now, playout });
                }
                // A held tick pops nothing but moves the timeout on.
                assert_ne!(jb.poll_timeout(), Some(t), "livelock at {t:?}");
            }
            (Some(_), None) => unreachable!(),
        }
    }
    (outputs, results)
}

/// Checks the core contract on one burst and returns the played and lost
/// sequences: outputs are consecutive sequences, each once; a frame is played
/// only if it arrived by then; a loss is declared only if it had not; FEC is
/// offered exactly when the next frame was there.
fn check_contract(outputs: &[Output], arrivals: &[Datagram]) -> (Vec<u16>, Vec<u16>) {
    let mut first_arrival: HashMap<u16, Instant> = HashMap::new();
    for d in arrivals {
        first_arrival.entry(d.seq).or_insert(d.at);
    }
    let arrived_by = |seq: u16, t: Instant| first_arrival.get(&seq).is_some_and(|&a| a <= t);
    let (mut played, mut lost) = (Vec::new(), Vec::new());
    let mut expected: Option<u16> = None;
    for o in outputs {
        match &o.playout {
            Playout::Frame(p) => {
                let (_, seq) = unpack(p);
                if let Some(e) = expected {
                    assert_eq!(seq, e, "frames out of order or skipped");
                }
                assert!(arrived_by(seq, o.at));
                played.push(seq);
                expected = Some(seq.wrapping_add(1));
            }
            Playout::Lost { fec_from } => {
                let seq = expected.expect("a stream starts with a frame");
                assert!(!arrived_by(seq, o.at), "frame {seq} was there");
                let next = seq.wrapping_add(1);
                match fec_from {
                    Some(p) => assert_eq!(unpack(p).1, next),
                    None => assert!(!arrived_by(next, o.at), "FEC for {seq} not offered"),
                }
                lost.push(seq);
                expected = Some(next);
            }
        }
    }
    (played, lost)
}

#[test]
fn lossy_reordering_link_1000_frames() {
    let t0 = Instant::now();
    let link = Link {
        base: Duration::from_millis(40),
        jitter: Duration::from_millis(60),
        loss: 0.05,
        dup: 0.03,
    };
    for seed in 1..=5 {
        let mut rng = Rng(seed);
        let arrivals = transmit(link, &mut rng, t0, 7, 0, 1000);
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let (outputs, results) = drive(&mut jb, &arrivals);
        let (played, lost) = check_contract(&outputs, &arrivals);
        let stats = jb.stats();
        eprintln!("seed {seed}: {stats:?}");

        // Every frame between the first and the last played is accounted
        // for exactly once.
        let span = u32::from(played.last().unwrap() - played[0]) + 1;
        assert_eq!(played.len() + lost.len(), span as usize);
        assert!(span >= 990, "span {span}");
        // Most frames play; 5 % are lost by the link, a few more come late.
        assert!(played.len() > 900, "{} played", played.len());

        // The counters agree with what was seen.
        let count = |a: Arrival| results.iter().filter(|&&r| r == a).count() as u64;
        assert_eq!(stats.lost, lost.len() as u64);
        assert_eq!(stats.concealed + stats.recovered_fec, stats.lost);
        assert_eq!(stats.duplicates, count(Arrival::Duplicate));
        assert_eq!(stats.late, count(Arrival::Late));
        assert!(stats.duplicates > 10, "duplicates {}", stats.duplicates);
        assert!(stats.recovered_fec > stats.concealed, "{stats:?}");
        assert_eq!(
            stats.received,
            arrivals.len() as u64 - stats.duplicates,
            "received counts unique frames, in time or late"
        );
        // The estimate sees the 60 ms spread (a third of it for uniform
        // delays) and the target delay covers it.
        assert!((12_000..30_000).contains(&stats.jitter_us), "{stats:?}");
        assert!(stats.target_delay_us >= 60_000, "{stats:?}");
        // The burst started at the cold-start delay and stretched to what
        // the link needs, so hardly any frame missed its slot.
        assert!(stats.late <= 5, "{stats:?}");
        let delay = jb.playout_delay().unwrap();
        assert!(delay >= Duration::from_millis(60), "{delay:?}");
    }
}

/// Duplicates and late frames are dropped and counted under their name.
#[test]
fn duplicates_and_late_frames_are_counted() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    assert_eq!(jb.push(ms(0), 0, 1, 0, payload(1, 0)), Arrival::NewBurst);
    assert_eq!(jb.push(ms(1), 0, 1, 0, payload(1, 0)), Arrival::Duplicate);
    assert_eq!(
        jb.push(ms(40), 2, 1, 40_000, payload(1, 2)),
        Arrival::Buffered
    );
    assert_eq!(
        jb.push(ms(41), 2, 1, 40_000, payload(1, 2)),
        Arrival::Duplicate
    );
    // Play 0, then 1 is due and missing with 2 here: lost, FEC from 2.
    let mut outs = Vec::new();
    let mut now = t0;
    while outs.len() < 2 {
        now = jb.poll_timeout().unwrap();
        while let Some(p) = jb.pop(now) {
            outs.push(p);
        }
    }
    assert_eq!(outs[0], Playout::Frame(payload(1, 0)));
    assert_eq!(
        outs[1],
        Playout::Lost {
            fec_from: Some(payload(1, 2))
        }
    );
    // 1 arrives after its playout: late. 0 again: a duplicate of a played frame.
    assert_eq!(jb.push(now, 1, 1, 20_000, payload(1, 1)), Arrival::Late);
    assert_eq!(jb.push(now, 0, 1, 0, payload(1, 0)), Arrival::Duplicate);
    let s = jb.stats();
    assert_eq!(
        (
            s.received,
            s.duplicates,
            s.late,
            s.lost,
            s.recovered_fec,
            s.concealed
        ),
        (3, 3, 1, 1, 1, 0)
    );
}

/// One burst over `link`; returns the stats after it and the delay between
/// the first arrival and the first playout.
fn burst_over(
    jb: &mut JitterBuffer,
    link: Link,
    rng: &mut Rng,
    start: Instant,
    burst: u32,
) -> (JitterStats, Duration) {
    let arrivals = transmit(link, rng, start, burst, 0, 250);
    let (outputs, _) = drive(jb, &arrivals);
    check_contract(&outputs, &arrivals);
    let initial = outputs[0].at - arrivals[0].at;
    (jb.stats(), initial)
}

#[test]
fn target_delay_follows_jitter() {
    let t0 = Instant::now();
    let mut rng = Rng(99);
    let calm = Link {
        base: Duration::from_millis(30),
        jitter: Duration::from_millis(4),
        loss: 0.0,
        dup: 0.0,
    };
    let rough = Link {
        jitter: Duration::from_millis(80),
        ..calm
    };
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let second = Duration::from_secs(10);
    let (s1, _) = burst_over(&mut jb, calm, &mut rng, t0, 1);
    let (s2, d2) = burst_over(&mut jb, rough, &mut rng, t0 + second, 2);
    let (s3, d3) = burst_over(&mut jb, rough, &mut rng, t0 + second * 2, 3);
    let (s4, d4) = burst_over(&mut jb, calm, &mut rng, t0 + second * 3, 4);
    let (s5, d5) = burst_over(&mut jb, calm, &mut rng, t0 + second * 4, 5);
    for s in [s1, s2, s3, s4, s5] {
        eprintln!("jitter {} µs target {} µs", s.jitter_us, s.target_delay_us);
    }
    eprintln!("initial delays {d2:?} {d3:?} {d4:?} {d5:?}");
    assert!(s1.target_delay_us < 30_000, "{s1:?}");
    assert!(s2.target_delay_us > 60_000, "grows with jitter: {s2:?}");
    assert!(
        s4.target_delay_us < s3.target_delay_us / 2,
        "shrinks: {s4:?}"
    );
    assert!(s5.target_delay_us < 30_000, "{s5:?}");
    // The next burst starts with the delay learnt: long after a rough
    // burst, short after a calm one.
    assert!(d3 >= Duration::from_millis(60), "{d3:?}");
    assert!(d5 < Duration::from_millis(40), "{d5:?}");
    // A rough burst with a calm-sized delay would have lost many frames.
    assert!(
        s3.late - s2.late < 15,
        "late in the adapted burst: {}",
        s3.late - s2.late
    );
}

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
