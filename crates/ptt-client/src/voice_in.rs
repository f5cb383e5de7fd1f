//! The relay's voice as it arrives: datagrams (with the probe of a stalled
//! call) and, for a connection without datagrams, one stream per burst.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ptt_proto::voice::{Flags, HEADER_LEN, Kind, VoiceDatagram, VoiceHeader};
use ptt_proto::voice_stream::{MAX_RECORD_LEN, RecordReader, STREAM_ERROR_CODE};

use crate::clock::unix_us;
use crate::config::STALL_PROBE;
use crate::events::{Event, VoiceFrame};
use crate::link::Link;
use crate::shared::Shared;

/// Reads voice datagrams until the connection ends; bad ones are counted
/// and dropped.
///
/// A burst whose frames stop without its last frame (the talker's radio
/// lost its network, or the relay died) is followed, [`STALL_PROBE`] after
/// its latest frame, by one keep-alive datagram to the relay: a relay that
/// was restarted answers it with a stateless reset, so a terminal in a call
/// learns of a crash within a fraction of a second instead of at its next
/// keep-alive.
pub(crate) async fn read_voice(shared: Arc<Shared>, link: Arc<Link>) {
    // The latest frame of a burst not yet over. The timer is moved only
    // when it fires early, not at every frame.
    let mut unfinished: Option<Instant> = None;
    let probe = tokio::time::sleep(STALL_PROBE);
    tokio::pin!(probe);
    loop {
        let datagram = tokio::select! {
            datagram = link.conn.read_datagram() => datagram,
            () = &mut probe, if unfinished.is_some() => {
                let due = unfinished.unwrap_or_else(Instant::now) + STALL_PROBE;
                if due > Instant::now() {
                    probe.as_mut().reset(due.into());
                } else {
                    unfinished = None;
                    let _ = link.conn.send_datagram(keep_alive_datagram());
                }
                continue;
            }
        };
        let Ok(datagram) = datagram else { break };
        let received_at = Instant::now();
        let Some(last) = deliver(&shared, datagram, received_at) else {
            continue;
        };
        if last {
            unfinished = None;
        } else {
            if unfinished.is_none() {
                probe.as_mut().reset((received_at + STALL_PROBE).into());
            }
            unfinished = Some(received_at);
        }
    }
}

/// Reads the relay's voice streams (voice.md §4: one per burst) until the
/// connection ends; each is read by a task of its own. Only a connection
/// without datagrams gets them.
pub(crate) async fn read_voice_streams(shared: Arc<Shared>, link: Arc<Link>) {
    while let Ok(stream) = link.conn.accept_uni().await {
        tokio::spawn(read_voice_stream(shared.clone(), stream));
    }
}

/// Delivers each record of one voice stream as a datagram. A record length
/// out of bounds stops the stream (code 1) and drops the rest of the burst.
async fn read_voice_stream(shared: Arc<Shared>, mut stream: quinn::RecvStream) {
    let mut records = RecordReader::new();
    loop {
        loop {
            match records.next_record() {
                Ok(Some(datagram)) => {
                    deliver(&shared, datagram, Instant::now());
                }
                Ok(None) => break,
                Err(error) => {
                    shared.stats.bad_datagrams.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "voice stream stopped");
                    let _ = stream.stop(STREAM_ERROR_CODE.into());
                    return;
                }
            }
        }
        match stream.read_chunk(MAX_RECORD_LEN, true).await {
            Ok(Some(chunk)) => records.extend(&chunk.bytes),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Counts one voice datagram (however it arrived), feeds the quality
/// report and emits it as an event. `Some(last)` for a voice frame,
/// telling whether it ended its burst; `None` for anything else (dropped
/// and counted if bad).
fn deliver(shared: &Shared, datagram: Bytes, received_at: Instant) -> Option<bool> {
    let datagram = match VoiceDatagram::parse(datagram) {
        Ok(datagram) => datagram,
        Err(error) => {
            shared.stats.bad_datagrams.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(%error, "bad voice datagram dropped");
            return None;
        }
    };
    if datagram.header.kind != Kind::Voice {
        return None;
    }
    let h = datagram.header;
    shared.stats.voice_frames.fetch_add(1, Ordering::Relaxed);
    shared.quality.record_frame(
        h.group_id,
        h.burst_id,
        h.sequence,
        h.timestamp_us,
        unix_us(),
        shared.clock_offset_us(),
    );
    shared.emit(Event::Voice(VoiceFrame {
        group: h.group_id,
        talker: h.talker_id,
        burst: h.burst_id,
        sequence: h.sequence,
        sender_timestamp_us: h.timestamp_us,
        received_at,
        last: h.flags.last_frame(),
        payload: datagram.payload,
    }));
    Some(h.flags.last_frame())
}

/// A keep-alive datagram (kind 1, no payload): the relay drops it.
fn keep_alive_datagram() -> Bytes {
    let header = VoiceHeader {
        kind: Kind::KeepAlive,
        flags: Flags::default(),
        group_id: 0,
        talker_id: 0,
        burst_id: 0,
        sequence: 0,
        timestamp_us: unix_us(),
    };
    let mut datagram = BytesMut::with_capacity(HEADER_LEN);
    header.write(&mut datagram);
    datagram.freeze()
}
