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
//!
//! With several shards ([`crate::shard`]) the talker's shard serves its own
//! listeners and posts the stamped frame once to each other shard that has
//! listeners of the group; [`deliver_handovers`] serves them there. A
//! listener is only ever handed voice by its own shard's thread, so no
//! connection is woken from another core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use ptt_proto::voice::{self, Kind, VoiceDatagram, VoiceError};
use ptt_recording::Recorder;

use crate::clock::Clock;
use crate::cluster::ClusterLink;
use crate::group::{GroupShared, Groups};
use crate::link::Link;
use crate::metrics::{DropReason, Metrics};
use crate::shard::post::{Handover, ShardPosts};
use crate::shard::wire::WireProbe;

/// What happened to one forwarded datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Handed to this many listeners on the talker's shard (other shards
    /// count their own as they serve them).
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
    /// The other shards' inboxes, for their listeners.
    pub shards: ShardPosts,
    /// Each shard's probe of its latency to the wire, by shard index.
    pub wire: Arc<[WireProbe]>,
    /// The cluster the relay is in, if any: each talker's frame is offered
    /// to the other relays once.
    pub cluster: Option<Arc<ClusterLink>>,
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

    let sent = fan_out(shared, group, &frame, from, None, started);
    if let Some(cluster) = &shared.cluster
        && !group.local_only()
    {
        cluster.offer_voice(group.id, &frame);
    }
    // One non-blocking queue push per frame, tail frames included; in a
    // cluster, only the relay that decides the group's floor records it.
    if group.decides_here() {
        shared
            .recorder
            .offer(group.id, burst, from.terminal, header.sequence, &frame);
    }
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
/// datagram reached [`forward`], for the forward latency. In a cluster the
/// other relays get the frame once, as it came (group 0), stamped with its
/// talker, and rewrite it for their listeners the same way
/// ([`forward_remote_all_call`]).
fn forward_all_call(
    shared: &Fanout,
    from: &Link,
    datagram: Bytes,
    sequence: u16,
    started: Instant,
) -> Result<Forwarded, DropReason> {
    let token = from.next_all_call_token();
    let sent = all_call_to_groups(
        shared,
        from.terminal,
        &datagram,
        sequence,
        token,
        Some(from),
        started,
    )?
    .ok_or(DropReason::NotHolder)?;
    if let Some(cluster) = &shared.cluster {
        let mut buf = voice::into_stampable(datagram);
        if voice::stamp(&mut buf, from.terminal, 0).is_ok() {
            cluster.offer_voice(ALL_CALL_GROUP, &buf.freeze());
        }
    }
    shared.metrics.forwarded.add(sent as u64);
    shared.metrics.forward_latency.observe(started.elapsed());
    Ok(Forwarded::Voice(sent))
}

/// What sets the all-call tokens of other relays' frames apart from this
/// relay's own (a session id and a frame count, well below it).
const REMOTE_ALL_CALL: u64 = 1 << 63;

/// Counts other relays' all-call frames, for their tokens.
static REMOTE_ALL_CALL_FRAMES: AtomicU64 = AtomicU64::new(0);

/// Fans out another relay's talker's all-call frame (group 0, stamped with
/// its talker, `received` when it came) to this relay's listeners of every
/// all-call group that talker holds, each listener once; `None` if it holds
/// none here (its grants not mirrored yet, or ended).
pub fn forward_remote_all_call(
    shared: &Fanout,
    datagram: &Bytes,
    received: Instant,
) -> Result<Option<usize>, DropReason> {
    let header = match VoiceDatagram::parse(datagram.clone()) {
        Ok(parsed) => parsed.header,
        Err(error) => return Err(classify(error)),
    };
    if header.group_id != ALL_CALL_GROUP || header.kind == Kind::KeepAlive {
        return Err(DropReason::BadHeader);
    }
    let token = REMOTE_ALL_CALL | REMOTE_ALL_CALL_FRAMES.fetch_add(1, Ordering::Relaxed);
    all_call_to_groups(
        shared,
        header.talker_id,
        datagram,
        header.sequence,
        token,
        None,
        received,
    )
}

/// Hands an all-call frame of `talker` to the listeners of every all-call
/// group it holds, rewritten to that group and its burst, each listener
/// once (`token`): from this relay's terminal `from` (its shard first), or
/// from another relay's (`None`, every shard through its inbox). Only the
/// relay deciding a group's floor counts the frame as the holder's media
/// and records it, except for this relay's own talker (its frames keep a
/// followed floor's timers too). Returns how many listeners took it, or
/// `None` if the talker holds no all-call group.
fn all_call_to_groups(
    shared: &Fanout,
    talker: u32,
    datagram: &Bytes,
    sequence: u16,
    token: u64,
    from: Option<&Link>,
    started: Instant,
) -> Result<Option<usize>, DropReason> {
    let mut sent = 0;
    let mut held_any = false;
    for group in shared.groups.all_call() {
        let Some(burst) = group.burst_of(talker) else {
            continue;
        };
        held_any = true;
        let mut buf = bytes::BytesMut::from(&datagram[..]);
        let Some(group_field) = buf.get_mut(voice::offset::GROUP_ID..voice::offset::GROUP_ID + 4)
        else {
            return Err(DropReason::BadHeader);
        };
        group_field.copy_from_slice(&group.id.to_be_bytes());
        if voice::stamp(&mut buf, talker, burst).is_err() {
            return Err(DropReason::BadHeader);
        }
        let frame = buf.freeze();
        let decides = group.decides_here();
        if from.is_some() || decides {
            group.note_media(shared.clock.now_ms());
        }
        match from {
            Some(from) => sent += fan_out(shared, group, &frame, from, Some(token), started),
            None => hand_over_to_listeners(shared, group, &frame, talker, Some(token), started),
        }
        // Each group's copy is its own burst, so its own recording, made
        // where the group's floor is decided.
        if decides {
            shared
                .recorder
                .offer(group.id, burst, talker, sequence, &frame);
        }
    }
    Ok(held_any.then_some(sent))
}

/// Hands `frame` to every listener of `group` but its talker: those on the
/// talker's shard at once, the others through their shards' inboxes; with
/// `all_call`, each listener once across the all-call groups. Counts the
/// frame and returns how many listeners here took it.
fn fan_out(
    shared: &Fanout,
    group: &Arc<GroupShared>,
    frame: &Bytes,
    from: &Link,
    all_call: Option<u64>,
    started: Instant,
) -> usize {
    let served = serve_here(group, frame, from.terminal, all_call, from.shard);
    let elsewhere = served.elsewhere;
    hand_over(
        shared,
        group,
        frame,
        from.terminal,
        all_call,
        elsewhere,
        started,
    );
    count_group(shared, group, &served, true);
    if served.sent > 0 {
        time_to_wire(shared, from.shard, started);
    }
    served.sent
}

/// Times the frame received at `received` to the wire on shard `shard`
/// (see [`crate::shard::wire`]).
#[inline]
fn time_to_wire(shared: &Fanout, shard: u8, received: Instant) {
    if let Some(probe) = shared.wire.get(usize::from(shard)) {
        probe.fanned_out(received);
    }
}

/// What [`serve_here`] did with one frame.
struct Served {
    /// Listeners whose connection took it.
    sent: usize,
    /// Listeners whose connection refused it.
    refused: usize,
    /// The other shards with listeners of the group, one bit each.
    elsewhere: u64,
}

/// Hands `frame` to every listener of `group` on shard `here` except the
/// talker; with `all_call`, only to those that have not had this all-call
/// frame through another group. Notes which other shards have listeners.
#[inline]
fn serve_here(
    group: &GroupShared,
    frame: &Bytes,
    talker: u32,
    all_call: Option<u64>,
    here: u8,
) -> Served {
    let mut served = Served {
        sent: 0,
        refused: 0,
        elsewhere: 0,
    };
    for listener in group.listeners().iter() {
        if listener.terminal == talker {
            continue;
        }
        if listener.shard != here {
            served.elsewhere |= 1 << (listener.shard % 64);
            continue;
        }
        if all_call.is_some_and(|token| !listener.claim_all_call_frame(token)) {
            continue;
        }
        if listener.send_voice(frame.clone()) {
            served.sent += 1;
        } else {
            served.refused += 1;
        }
    }
    served
}

/// Hands a frame another relay's talker sent to every shard of this relay
/// with listeners of `group` (this relay's shards all count as "other"
/// shards: the frame was counted by the talker's relay); with `all_call`,
/// each listener once across the all-call groups.
pub fn hand_over_to_listeners(
    shared: &Fanout,
    group: &Arc<GroupShared>,
    frame: &Bytes,
    talker: u32,
    all_call: Option<u64>,
    received: Instant,
) {
    let mut shards = 0u64;
    for listener in group.listeners().iter() {
        if listener.terminal != talker {
            shards |= 1 << (listener.shard % 64);
        }
    }
    hand_over(shared, group, frame, talker, all_call, shards, received);
}

/// Posts `frame` once to each shard in `shards` (a bit per shard), for its
/// listeners of `group`. A full inbox drops it for that shard, counted.
fn hand_over(
    shared: &Fanout,
    group: &Arc<GroupShared>,
    frame: &Bytes,
    talker: u32,
    all_call: Option<u64>,
    mut shards: u64,
    received: Instant,
) {
    while shards != 0 {
        let shard = shards.trailing_zeros() as usize;
        shards &= shards - 1;
        let handover = Handover {
            group: group.clone(),
            frame: frame.clone(),
            talker,
            all_call,
            received,
        };
        if shared.shards.post(shard, handover) {
            shared.metrics.shard_handovers.inc();
        } else {
            shared.metrics.shard_handover_dropped.inc();
        }
    }
}

/// Frames a shard serves from its inbox before it yields to its other
/// tasks (its connections' drivers, which send what it handed them).
const HANDOVER_BATCH: usize = 64;

/// Serves the frames other shards post to shard `here` until every sender
/// is gone: each to the shard's own listeners of its group, its datagrams
/// counted as the talker's shard counts its own (the frame itself, and its
/// forward latency, were counted there; its time to the wire here is timed
/// by this shard's probe). Runs on that shard's thread.
pub async fn deliver_handovers(
    shared: Fanout,
    here: u8,
    mut inbox: tokio::sync::mpsc::Receiver<Handover>,
) {
    let mut batch = Vec::with_capacity(HANDOVER_BATCH);
    while inbox.recv_many(&mut batch, HANDOVER_BATCH).await > 0 {
        for handover in batch.drain(..) {
            let group = &handover.group;
            let served = serve_here(
                group,
                &handover.frame,
                handover.talker,
                handover.all_call,
                here,
            );
            count_group(&shared, group, &served, false);
            shared.metrics.forwarded.add(served.sent as u64);
            if served.sent > 0 {
                time_to_wire(&shared, here, handover.received);
            }
        }
    }
}

/// Counts what one shard did with a frame of `group` (`served`): refusals
/// relay-wide, and in the group's own view the datagrams, plus the frame
/// itself on the talker's shard only.
#[inline]
fn count_group(shared: &Fanout, group: &GroupShared, served: &Served, talker_shard: bool) {
    let (sent, refused) = (served.sent as u64, served.refused as u64);
    if refused > 0 {
        shared.metrics.send_failed.add(refused);
    }
    if talker_shard {
        group.count_frame(sent, refused);
    } else {
        // The talker's shard counted the frame itself.
        group.count_handed(sent, refused);
    }
}

fn classify(error: VoiceError) -> DropReason {
    match error {
        VoiceError::TooLarge(_) => DropReason::TooLarge,
        VoiceError::BadOpus(_) | VoiceError::EmptyPayload => DropReason::NotOpus,
        _ => DropReason::BadHeader,
    }
}
