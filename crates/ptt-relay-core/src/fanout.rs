//! The hot path: one voice datagram in, the same bytes out to every listener
//! of the group (ARCHITECTURE §2).
//!
//! Per datagram: parse and validate the header and the Opus packet, one
//! atomic load to check the sender holds the floor, stamp the authenticated
//! talker and the granted burst into the header once, then hand one shared
//! buffer to every listener's connection. No lock a listener can hold, no
//! allocation per recipient (cloning `Bytes` bumps a reference count), no
//! disk. A full listener queue drops that listener's oldest datagram inside
//! quinn; it never slows the others.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ptt_proto::voice::{self, Kind, VoiceDatagram, VoiceError};
use ptt_recording::Recorder;

use crate::clock::Clock;
use crate::group::{GroupShared, Groups};
use crate::link::Link;
use crate::metrics::{DropReason, Metrics};

/// What happened to one forwarded datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Handed to this many listeners.
    Voice(usize),
    /// A keep-alive probe; nothing to forward.
    KeepAlive,
}

/// What the hot path reads: the groups (floor gate and listeners), the clock, the
/// counters, and the recorder's queue. Cheap to share; nothing in it locks.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// Every group, fixed at start.
    pub groups: Arc<Groups>,
    /// The relay's clock.
    pub clock: Clock,
    /// Forwards, send failures, latency.
    pub metrics: Arc<Metrics>,
    /// Gets every forwarded frame, off the hot path.
    pub recorder: Recorder,
}

/// Forwards a datagram received from `from`, or says why it was dropped.
/// The caller counts the drop (so tests can see the reason too).
pub fn forward(shared: &Fanout, from: &Link, datagram: Bytes) -> Result<Forwarded, DropReason> {
    let started = Instant::now();
    // Beyond the limit this connection agreed to (voice.md §3.2).
    if datagram.len() > from.max_datagram {
        return Err(DropReason::TooLarge);
    }
    let header = match VoiceDatagram::parse(datagram.clone()) {
        Ok(parsed) => parsed.header,
        Err(error) => return Err(classify(error)),
    };
    if header.kind == Kind::KeepAlive {
        return Ok(Forwarded::KeepAlive);
    }
    if header.group_id == ALL_CALL_GROUP {
        return forward_all_call(shared, from, datagram, header.sequence, started);
    }
    let group = shared
        .groups
        .get(header.group_id)
        .ok_or(DropReason::UnknownGroup)?;
    let now_ms = shared.clock.now_ms();
    let (burst, live) = match group.burst_of(from.terminal) {
        // A client stamps each frame with the burst it was granted (0 if it
        // does not say); a frame naming another burst is a late frame of the
        // sender's previous burst, which must not land in the new one (as
        // audio, or as a colliding sequence number in its recording).
        Some(burst) if header.burst_id == 0 || header.burst_id == burst => (burst, true),
        _ if group.accepts_tail(from.terminal, header.burst_id, header.sequence, now_ms) => {
            (header.burst_id, false)
        }
        _ => return Err(DropReason::NotHolder),
    };

    let mut buf = voice::into_stampable(datagram);
    if voice::stamp(&mut buf, from.terminal, burst).is_err() {
        // Unreachable after a successful parse; counted, never a panic.
        return Err(DropReason::BadHeader);
    }
    let frame = buf.freeze();
    if live {
        group.note_media(now_ms);
    }

    let (mut sent, mut refused) = (0, 0);
    for listener in group.listeners().iter() {
        if listener.terminal == from.terminal {
            continue;
        }
        if listener.send_voice(frame.clone()) {
            sent += 1;
        } else {
            refused += 1;
        }
    }
    count_group(shared, group, sent, refused);
    // One non-blocking queue push per frame, tail frames included.
    shared
        .recorder
        .offer(group.id, burst, from.terminal, header.sequence, &frame);
    shared.metrics.forwarded.add(sent as u64);
    shared.metrics.forward_latency.observe(started.elapsed());
    Ok(Forwarded::Voice(sent))
}

/// The group id a dispatcher's all-call uses (proto/voice.md): voice for
/// every all-call group the dispatcher holds the floor of.
pub const ALL_CALL_GROUP: u32 = 0;

/// Forwards an all-call frame: one stamped copy per all-call group the sender
/// holds (each group has its own burst id), each listener served once even if
/// it is a member of several of those groups. `sequence` is the frame's, from
/// the header [`forward`] parsed (for the recordings); `started` is when the
/// datagram reached [`forward`], for the forward latency.
fn forward_all_call(
    shared: &Fanout,
    from: &Link,
    datagram: Bytes,
    sequence: u16,
    started: Instant,
) -> Result<Forwarded, DropReason> {
    let token = from.next_all_call_token();
    let mut sent = 0;
    let mut held_any = false;
    for group in shared.groups.all_call() {
        let Some(burst) = group.burst_of(from.terminal) else {
            continue;
        };
        held_any = true;
        let mut buf = bytes::BytesMut::from(&datagram[..]);
        let Some(group_field) = buf.get_mut(voice::offset::GROUP_ID..voice::offset::GROUP_ID + 4)
        else {
            return Err(DropReason::BadHeader);
        };
        group_field.copy_from_slice(&group.id.to_be_bytes());
        if voice::stamp(&mut buf, from.terminal, burst).is_err() {
            return Err(DropReason::BadHeader);
        }
        let frame = buf.freeze();
        group.note_media(shared.clock.now_ms());
        let (mut group_sent, mut group_refused) = (0, 0);
        for listener in group.listeners().iter() {
            if listener.terminal == from.terminal || !listener.claim_all_call_frame(token) {
                continue;
            }
            if listener.send_voice(frame.clone()) {
                group_sent += 1;
            } else {
                group_refused += 1;
            }
        }
        count_group(shared, group, group_sent, group_refused);
        sent += group_sent;
        // Each group's copy is its own burst, so its own recording.
        shared
            .recorder
            .offer(group.id, burst, from.terminal, sequence, &frame);
    }
    if !held_any {
        return Err(DropReason::NotHolder);
    }
    shared.metrics.forwarded.add(sent as u64);
    shared.metrics.forward_latency.observe(started.elapsed());
    Ok(Forwarded::Voice(sent))
}

/// Counts one frame of `group` handed to `sent` listeners and refused by
/// `refused`: relay-wide and in the group's own view.
#[inline]
fn count_group(shared: &Fanout, group: &GroupShared, sent: usize, refused: usize) {
    if refused > 0 {
        shared.metrics.send_failed.add(refused as u64);
    }
    group.count_frame(sent as u64, refused as u64);
}

fn classify(error: VoiceError) -> DropReason {
    match error {
        VoiceError::TooLarge(_) => DropReason::TooLarge,
        VoiceError::BadOpus(_) | VoiceError::EmptyPayload => DropReason::NotOpus,
        _ => DropReason::BadHeader,
    }
}
