//! Test harness: a floor driven by a virtual clock, with every event logged
//! and rendered as a short line so scenarios read like scripts.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use ptt_floor::{
    BurstEnd, ClearEmergencyError, DenyReason, Event, Floor, FloorPolicy, MemberRights,
    ParticipantId, Priority, RequestKind, RevokeReason,
};

/// Bound on timer firings in one `step`/`drive`, to catch livelock.
const MAX_FIRES: usize = 100_000;

/// A floor, a virtual clock and the log of everything it emitted.
pub(crate) struct Sim {
    pub(crate) floor: Floor,
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    /// Every event with the virtual time it was drained at.
    pub(crate) log: Vec<(Instant, Event)>,
}

pub(crate) fn p(id: u32) -> ParticipantId {
    ParticipantId(id)
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

impl Sim {
    pub(crate) fn new(policy: FloorPolicy) -> Self {
        let start = Instant::now();
        Sim {
            floor: Floor::new(policy),
            start,
            now: start,
            log: Vec::new(),
        }
    }

    /// Virtual time elapsed since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The instant `d` after the start.
    pub(crate) fn at(&self, d: Duration) -> Instant {
        self.start + d
    }

    /// Drains every pending event into the log and returns them.
    pub(crate) fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = self.floor.poll_event() {
            self.log.push((self.now, e));
            out.push(e);
        }
        out
    }

    pub(crate) fn join(&mut self, id: u32, rights: MemberRights) -> Vec<String> {
        self.floor.handle_join(self.now, p(id), rights);
        lines(&self.drain())
    }

    pub(crate) fn leave(&mut self, id: u32) -> Vec<String> {
        self.floor.handle_leave(self.now, p(id));
        lines(&self.drain())
    }

    pub(crate) fn request(
        &mut self,
        id: u32,
        priority: Priority,
        kind: RequestKind,
    ) -> Vec<String> {
        self.floor.handle_request(self.now, p(id), priority, kind);
        lines(&self.drain())
    }

    /// A normal request at normal priority.
    pub(crate) fn press(&mut self, id: u32) -> Vec<String> {
        self.request(id, Priority::Normal, RequestKind::Normal)
    }

    pub(crate) fn release(&mut self, id: u32) -> Vec<String> {
        self.floor.handle_release(self.now, p(id));
        lines(&self.drain())
    }

    pub(crate) fn media(&mut self, id: u32) -> bool {
        let forwarded = self.floor.handle_media(self.now, p(id));
        assert!(self.floor.poll_event().is_none(), "media emits nothing");
        forwarded
    }

    pub(crate) fn clear(&mut self, by: u32) -> Result<Vec<String>, ClearEmergencyError> {
        let r = self.floor.handle_clear_emergency(self.now, p(by));
        let events = self.drain();
        match r {
            Ok(()) => Ok(lines(&events)),
            Err(e) => {
                assert!(events.is_empty(), "a refused clear emits nothing");
                Err(e)
            }
        }
    }

    /// Advances the clock by `d`, firing every timer that falls due on the
    /// way at its own instant, in order.
    pub(crate) fn step_events(&mut self, d: Duration) -> Vec<Event> {
        let target = self.now + d;
        let mut out = Vec::new();
        for _ in 0..MAX_FIRES {
            match self.floor.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.floor.handle_timeout(self.now);
                    out.extend(self.drain());
                }
                _ => {
                    self.now = target;
                    return out;
                }
            }
        }
        panic!("livelock: more than {MAX_FIRES} timer firings in one step");
    }

    /// [`step_events`](Self::step_events), rendered.
    pub(crate) fn step(&mut self, d: Duration) -> Vec<String> {
        let events = self.step_events(d);
        lines(&events)
    }

    /// Advances `total` in `tick` steps, sending a voice frame from `talker`
    /// after each tick; returns what the timers did on the way.
    pub(crate) fn talk(&mut self, talker: u32, total: Duration, tick: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let end = self.now + total;
        while self.now < end {
            let d = tick.min(end - self.now);
            out.extend(self.step_events(d));
            self.media(talker);
        }
        lines(&out)
    }

    /// Fires timers until none is armed.
    pub(crate) fn drive(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        for _ in 0..MAX_FIRES {
            let Some(at) = self.floor.poll_timeout() else {
                return out;
            };
            self.now = self.now.max(at);
            self.floor.handle_timeout(self.now);
            out.extend(self.drain());
        }
        panic!("livelock: more than {MAX_FIRES} timer firings in drive");
    }

    /// Participants in queue order.
    pub(crate) fn queue(&self) -> Vec<u32> {
        self.floor.queue().map(|q| q.who.0).collect()
    }

    pub(crate) fn holder(&self) -> Option<u32> {
        self.floor.holder().map(|h| h.0)
    }
}

/// Renders events as short lines.
pub(crate) fn lines(events: &[Event]) -> Vec<String> {
    events.iter().map(line).collect()
}

/// One event as a short line, e.g. `granted 2 #3 dispatcher/normal`.
pub(crate) fn line(e: &Event) -> String {
    match *e {
        Event::Granted {
            to,
            burst,
            priority,
            kind,
            ..
        } => format!("granted {} #{} {}/{}", to, burst, priority, kind.as_str()),
        Event::Queued {
            who,
            position,
            queue_len,
        } => format!("queued {who} @{position}/{queue_len}"),
        Event::QueuePosition { who, position } => format!("pos {who} @{position}"),
        Event::Denied { who, reason } => format!("denied {who} {}", deny(reason)),
        Event::Withdrawn { who } => format!("withdrawn {who}"),
        Event::Expired { who } => format!("expired {who}"),
        Event::Revoked { who, reason } => format!("revoked {who} {}", revoke(reason)),
        Event::Taken { holder, burst, .. } => format!("taken {holder} #{burst}"),
        Event::Idle { last_burst, ended } => format!("idle #{last_burst} {}", end(ended)),
        Event::BurstEnded {
            burst,
            holder,
            outcome,
            ..
        } => format!("ended #{burst} {holder} {}", end(outcome)),
        Event::EmergencyStarted { by } => format!("emergency {by}"),
        Event::EmergencyCleared { by } => format!("cleared {by}"),
    }
}

pub(crate) fn deny(r: DenyReason) -> &'static str {
    match r {
        DenyReason::NotMember => "not-member",
        DenyReason::ListenOnly => "listen-only",
        DenyReason::QueueFull => "queue-full",
        DenyReason::BroadcastInProgress => "broadcast",
        DenyReason::PriorityNotAllowed => "priority-not-allowed",
        DenyReason::AlreadyHolder => "already-holder",
        DenyReason::AlreadyQueued => "already-queued",
        DenyReason::EmergencyCleared => "emergency-cleared",
    }
}

pub(crate) fn revoke(r: RevokeReason) -> String {
    match r {
        RevokeReason::Preempted { by } => format!("preempted-by-{by}"),
        RevokeReason::TalkLimit => "talk-limit".into(),
        RevokeReason::MediaInactivity => "inactive".into(),
        RevokeReason::EmergencyCleared => "emergency-cleared".into(),
    }
}

pub(crate) fn end(e: BurstEnd) -> String {
    match e {
        BurstEnd::Released => "released".into(),
        BurstEnd::Left => "left".into(),
        BurstEnd::Revoked(r) => revoke(r),
    }
}

/// Every participant an event names.
pub(crate) fn named(e: &Event) -> impl Iterator<Item = ParticipantId> {
    let (a, b) = match *e {
        Event::Granted { to, .. } => (Some(to), None),
        Event::Queued { who, .. }
        | Event::QueuePosition { who, .. }
        | Event::Denied { who, .. }
        | Event::Withdrawn { who }
        | Event::Expired { who } => (Some(who), None),
        Event::Revoked { who, reason } => match reason {
            RevokeReason::Preempted { by } => (Some(who), Some(by)),
            _ => (Some(who), None),
        },
        Event::Taken { holder, .. } => (Some(holder), None),
        Event::BurstEnded {
            holder, outcome, ..
        } => match outcome {
            BurstEnd::Revoked(RevokeReason::Preempted { by }) => (Some(holder), Some(by)),
            _ => (Some(holder), None),
        },
        Event::Idle { ended, .. } => match ended {
            BurstEnd::Revoked(RevokeReason::Preempted { by }) => (Some(by), None),
            _ => (None, None),
        },
        Event::EmergencyStarted { by } | Event::EmergencyCleared { by } => (Some(by), None),
    };
    a.into_iter().chain(b)
}

/// Rights used across tests.
pub(crate) const TALKER: MemberRights = MemberRights::TALKER;
pub(crate) const LISTENER: MemberRights = MemberRights::LISTEN_ONLY;
pub(crate) const DISPATCHER: MemberRights = MemberRights::DISPATCHER;
pub(crate) const ELEVATED: MemberRights = MemberRights::talker(Priority::Elevated, false);
pub(crate) const ELEVATED_PREEMPTIVE: MemberRights = MemberRights::talker(Priority::Elevated, true);
