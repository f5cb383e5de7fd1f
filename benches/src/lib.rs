//! Shared workloads for the criterion benches of the PTT relay.
//!
//! The benches themselves live in `benches/benches/`; this library holds the
//! scenario builders they share so that a workload is defined once.

pub mod mumble;

pub mod floor {
    //! Floor-control workloads. Each one owns a [`Floor`] set up once and a
    //! virtual clock, and [`FloorWorkload::run`] replays one iteration that
    //! ends in the same state it started from, so iterations measure the
    //! steady state (no allocation, no growth). A *decision* is one
    //! `handle_*` call, events drained included.

    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use ptt_floor::{Floor, FloorPolicy, MemberRights, ParticipantId, Priority, RequestKind};

    /// The console in every workload.
    pub const DISPATCHER: ParticipantId = ParticipantId(1_000);

    /// The workloads, named as their benches are.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Workload {
        /// One talker: request (granted at once), release (idle).
        UncontendedRequestGrantRelease,
        /// A talker holds the floor; a dispatcher pre-empts; the dispatcher
        /// releases.
        Preemption,
        /// A dispatcher's all-call, released; then 100 terminals answer at
        /// the same instant and are drained through the queue, each granted
        /// in turn when the previous one releases.
        DispatcherCall100Answers,
        /// The hot path: one voice frame from the holder.
        MediaFromHolder,
    }

    impl Workload {
        /// Every workload.
        pub const ALL: [Workload; 4] = [
            Workload::UncontendedRequestGrantRelease,
            Workload::Preemption,
            Workload::DispatcherCall100Answers,
            Workload::MediaFromHolder,
        ];

        /// The bench name.
        #[must_use]
        pub fn name(self) -> &'static str {
            match self {
                Workload::UncontendedRequestGrantRelease => {
                    "floor_uncontended_request_grant_release"
                }
                Workload::Preemption => "floor_preemption",
                Workload::DispatcherCall100Answers => "floor_dispatcher_call_100_answers",
                Workload::MediaFromHolder => "floor_media_from_holder",
            }
        }

        /// Decisions per iteration.
        #[must_use]
        pub fn decisions(self) -> u64 {
            match self {
                Workload::UncontendedRequestGrantRelease => 2,
                Workload::Preemption => 3,
                Workload::DispatcherCall100Answers => 2 + 2 * ANSWERS as u64,
                Workload::MediaFromHolder => 1,
            }
        }
    }

    const ANSWERS: u32 = 100;

    /// A floor set up for one [`Workload`], ready to iterate.
    #[derive(Debug)]
    pub struct FloorWorkload {
        workload: Workload,
        floor: Floor,
        now: Instant,
    }

    impl FloorWorkload {
        /// Sets up the members of `workload` under the default policy.
        #[must_use]
        pub fn new(workload: Workload) -> Self {
            let now = Instant::now();
            let mut floor = Floor::with_capacity(FloorPolicy::default(), 128);
            floor.handle_join(now, DISPATCHER, MemberRights::DISPATCHER);
            for id in 1..=ANSWERS {
                floor.handle_join(now, ParticipantId(id), MemberRights::TALKER);
            }
            if workload == Workload::MediaFromHolder {
                floor.handle_request(now, ParticipantId(1), Priority::Normal, RequestKind::Normal);
            }
            let mut w = FloorWorkload {
                workload,
                floor,
                now,
            };
            w.drain();
            w
        }

        /// The floor, for checks after a run.
        #[must_use]
        pub fn floor(&self) -> &Floor {
            &self.floor
        }

        /// Drains the events, as the relay does after every input; returns
        /// how many there were.
        pub fn drain(&mut self) -> usize {
            let mut n = 0;
            while let Some(e) = self.floor.poll_event() {
                black_box(e);
                n += 1;
            }
            n
        }

        /// One iteration; returns the number of events it produced.
        pub fn run(&mut self) -> usize {
            // Time moves a little per iteration, like on a live relay.
            self.now += Duration::from_micros(20);
            let now = self.now;
            let talker = ParticipantId(1);
            match self.workload {
                Workload::UncontendedRequestGrantRelease => {
                    self.floor
                        .handle_request(now, talker, Priority::Normal, RequestKind::Normal);
                    let n = self.drain();
                    self.floor.handle_release(now, talker);
                    n + self.drain()
                }
                Workload::Preemption => {
                    self.floor
                        .handle_request(now, talker, Priority::Normal, RequestKind::Normal);
                    let mut n = self.drain();
                    self.floor.handle_request(
                        now,
                        DISPATCHER,
                        Priority::Dispatcher,
                        RequestKind::Normal,
                    );
                    n += self.drain();
                    self.floor.handle_release(now, DISPATCHER);
                    n + self.drain()
                }
                Workload::DispatcherCall100Answers => {
                    self.floor.handle_request(
                        now,
                        DISPATCHER,
                        Priority::Dispatcher,
                        RequestKind::Broadcast,
                    );
                    let mut n = self.drain();
                    self.floor.handle_release(now, DISPATCHER);
                    n += self.drain();
                    for id in 1..=ANSWERS {
                        self.floor.handle_request(
                            now,
                            ParticipantId(id),
                            Priority::Normal,
                            RequestKind::Normal,
                        );
                        n += self.drain();
                    }
                    for id in 1..=ANSWERS {
                        self.floor.handle_release(now, ParticipantId(id));
                        n += self.drain();
                    }
                    n
                }
                Workload::MediaFromHolder => {
                    black_box(self.floor.handle_media(now, talker));
                    0
                }
            }
        }
    }
}
