//! The floor allocates nothing in the steady state: after a warm-up round
//! that sizes its buffers, a thousand rounds of grants, pre-emption,
//! all-call, a hundred queued answers, emergency, leave/rejoin and every
//! timer make zero heap allocations.
//!
//! Measured with a counting global allocator that counts only the test's
//! own thread, so the test harness cannot disturb the figure.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use ptt_floor::{Floor, FloorPolicy, MemberRights, ParticipantId, Priority, RequestKind};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

// SAFETY: delegates every call to the system allocator unchanged; the only
// addition is a thread-local counter with a const initialiser, which does not
// allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn drain(floor: &mut Floor) {
    while let Some(event) = floor.poll_event() {
        std::hint::black_box(event);
    }
}

const DISPATCHER: ParticipantId = ParticipantId(1000);

/// One round of everything the floor does, ending idle.
fn round(floor: &mut Floor, now: &mut Instant) {
    let p = ParticipantId;
    // Uncontended talk.
    floor.handle_request(*now, p(1), Priority::Normal, RequestKind::Normal);
    drain(floor);
    assert!(floor.handle_media(*now, p(1)));
    floor.handle_release(*now, p(1));
    drain(floor);
    // Pre-emption by the dispatcher.
    floor.handle_request(*now, p(1), Priority::Normal, RequestKind::Normal);
    drain(floor);
    floor.handle_request(*now, DISPATCHER, Priority::Dispatcher, RequestKind::Normal);
    drain(floor);
    floor.handle_release(*now, DISPATCHER);
    drain(floor);
    // All-call, then a hundred answers, an emergency, a leave and a rejoin.
    floor.handle_request(
        *now,
        DISPATCHER,
        Priority::Dispatcher,
        RequestKind::Broadcast,
    );
    drain(floor);
    floor.handle_release(*now, DISPATCHER);
    drain(floor);
    for i in 1..=100 {
        floor.handle_request(*now, p(i), Priority::Normal, RequestKind::Normal);
        drain(floor);
    }
    floor.handle_request(*now, p(50), Priority::Normal, RequestKind::Emergency);
    drain(floor);
    floor.handle_leave(*now, p(70));
    drain(floor);
    floor.handle_join(*now, p(70), MemberRights::TALKER);
    drain(floor);
    floor
        .handle_clear_emergency(*now, DISPATCHER)
        .expect("dispatcher clears");
    drain(floor);
    for i in 1..=100 {
        floor.handle_release(*now, p(i));
        drain(floor);
    }
    // Talk limit with grace, media inactivity and queue expiry, by the clock.
    floor.handle_request(*now, p(2), Priority::Normal, RequestKind::Normal);
    drain(floor);
    floor.handle_request(*now, p(3), Priority::Normal, RequestKind::Normal);
    drain(floor);
    for _ in 0..70 {
        *now += Duration::from_secs(1);
        floor.handle_media(*now, p(2));
        floor.handle_media(*now, p(3));
        floor.handle_timeout(*now);
        drain(floor);
    }
    *now += Duration::from_secs(100);
    floor.handle_timeout(*now);
    drain(floor);
    assert_eq!(floor.holder(), None);
}

#[test]
fn steady_state_makes_no_allocation() {
    let mut now = Instant::now();
    let mut floor = Floor::with_capacity(FloorPolicy::default(), 128);
    floor.handle_join(now, DISPATCHER, MemberRights::DISPATCHER);
    for i in 1..=100 {
        floor.handle_join(now, ParticipantId(i), MemberRights::TALKER);
    }
    round(&mut floor, &mut now); // warm-up: first use may size buffers
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..1000 {
        round(&mut floor, &mut now);
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(allocations, 0, "allocations in 1000 steady-state rounds");
}
