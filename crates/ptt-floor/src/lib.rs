//! Floor control (talk permission) for push-to-talk groups, modelled on
//! 3GPP MCPTT floor control (TS 24.380) and simplified where radio allows.
//!
//! Sans-IO: no sockets, no tasks, no clock reads. Time comes in as
//! `now: Instant`, decisions come out as [`Event`]s, and
//! [`Floor::poll_timeout`] says when to come back. That makes every
//! transition deterministic and testable with a virtual clock, and keeps the
//! relay's task that owns a group's floor the only place where time and I/O
//! happen.
//!
//! # Driving a floor
//!
//! One [`Floor`] per group, owned by one task. After **every** input
//! (`handle_*`), drain [`Floor::poll_event`] until `None`, then re-arm the
//! single timer from [`Floor::poll_timeout`]; when it fires, call
//! [`Floor::handle_timeout`] and drain again. Voice frames go through
//! [`Floor::handle_media`], which answers whether to forward the frame and
//! emits nothing.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ptt_floor::{Audience, Event, Floor, FloorPolicy, MemberRights, ParticipantId, Priority, RequestKind};
//!
//! let mut floor = Floor::new(FloorPolicy::default());
//! let now = Instant::now();
//! let (guard, console) = (ParticipantId(7), ParticipantId(1));
//! floor.handle_join(now, guard, MemberRights::TALKER);
//! floor.handle_join(now, console, MemberRights::DISPATCHER);
//!
//! // An input…
//! floor.handle_request(now, guard, Priority::Normal, RequestKind::Normal);
//! // …then drain every event it caused…
//! while let Some(event) = floor.poll_event() {
//!     match event.audience() {
//!         Audience::Participant(id) => { /* send to that terminal */ let _ = id; }
//!         Audience::Group => { /* send to every member */ }
//!         Audience::Log => { /* write the call log */ }
//!     }
//! }
//! // …then re-arm the one timer.
//! let wake_at = floor.poll_timeout();
//! assert!(wake_at.is_some()); // talk limit and media inactivity are running
//!
//! // The hot path: forward only the holder's frames.
//! assert!(floor.handle_media(now, guard));
//! assert!(!floor.handle_media(now, console));
//!
//! // When the timer fires (here: the guard went silent for 4 s):
//! let later = now + Duration::from_secs(4);
//! floor.handle_timeout(later);
//! let events: Vec<Event> = std::iter::from_fn(|| floor.poll_event()).collect();
//! assert!(matches!(events[0], Event::Revoked { who, .. } if who == guard));
//! assert_eq!(floor.holder(), None);
//! ```
//!
//! # Order of events
//!
//! Events come out in the order things happened; a compound transition
//! always emits in this order:
//!
//! - **Grant from idle:** `Granted(new)` → `Taken(new)`.
//! - **Queued:** `Queued(who)` → `QueuePosition` of those it overtook.
//! - **Release / holder leaves / inactivity / grace end:** [`Revoked(old)`
//!   if revoked] → `BurstEnded(old)` → `Granted(head)` → `Taken(head)` →
//!   `QueuePosition` of the rest; or with an empty queue `BurstEnded(old)` →
//!   `Idle`.
//! - **Pre-emption:** [`EmergencyStarted` for an emergency request not
//!   already in emergency] → `Revoked(old, Preempted{by})` →
//!   `BurstEnded(old)` → `Granted(new)` → `Taken(new)`.
//! - **Talk limit:** `Revoked(holder, TalkLimit)`, the floor enters
//!   [`FloorState::Revoking`]; at release or the end of the grace period:
//!   `BurstEnded` → next grant or `Idle`. A zero grace does both at once.
//! - **Broadcast granted:** `Granted` → `Taken` → `Denied(BroadcastInProgress)`
//!   for every request that was queued, in queue order.
//! - **Queue full, request outranks the tail:** `Denied(tail, QueueFull)` →
//!   `Queued(new)` → `QueuePosition`…
//! - **Expiry:** `Expired` for each expired request, in queue order →
//!   `QueuePosition` of the rest.
//! - **Emergency cleared:** `EmergencyCleared` → `Denied(EmergencyCleared)`
//!   for each queued emergency request → [`Revoked(holder, EmergencyCleared)`
//!   → `BurstEnded` → next grant or `Idle`, if the holder was in emergency].
//! - **Emergency upgrade by the holder:** `EmergencyStarted` (if new) →
//!   `Granted` → `Taken`, with the same burst id.
//!
//! `QueuePosition` events always come last in the batch of one input, one
//! per request whose position changed, in queue order: after draining, the
//! positions last reported equal [`Floor::queue`]'s.
//!
//! A participant who has left is never named again, except by the
//! `BurstEnded` record of its own burst emitted by [`Floor::handle_leave`]
//! itself, and by `Denied(NotMember)` answering a request it sends later.
//!
//! # Decisions where MCPTT leaves a choice
//!
//! - The pre-empted holder is not re-queued (as in MCPTT): it gets `Revoked`
//!   and may press again.
//! - Requested priority above a member's `max_priority` is clamped, not
//!   refused; [`Priority::Emergency`] is reserved to emergency requests.
//! - Any member who may talk can raise an emergency (the emergency button is
//!   on every handheld); an emergency pre-empts a non-emergency holder even
//!   without the pre-emptive right. Only members with `max_priority >=
//!   Dispatcher` can start a broadcast or clear an emergency.
//! - A broadcast is refused to others but can itself be pre-empted by a
//!   request that would pre-empt any holder (in practice: an emergency).
//! - Queued requests expire after [`FloorPolicy::queue_expiry`] without
//!   moving up, so a draining queue of a hundred answers never expires.

#![forbid(unsafe_code)]

mod event;
mod floor;
mod policy;
mod queue;
mod timer;
mod types;

pub use event::{Audience, BurstEnd, ClearEmergencyError, DenyReason, Event, RevokeReason};
pub use floor::{Floor, FloorState};
pub use policy::FloorPolicy;
pub use queue::QueuedRequest;
pub use types::{BurstId, MemberRights, ParticipantId, Priority, RequestKind, UnknownPriority};
