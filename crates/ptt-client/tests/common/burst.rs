//! One talk burst as the session tests send and hear it: tagged Opus
//! frames, what a listener heard, and the checks of a heard burst.

use bytes::{BufMut, Bytes, BytesMut};
use ptt_client::{Event, Events, VoiceFrame};
use ptt_proto::pb;

use super::expect;

/// A 20 ms SILK wideband Opus packet (TOC config 9, code 0) tagged with `n`.
pub(crate) fn opus_frame(n: u16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(9 << 3);
    buf.put_u16(n);
    buf.resize(60, 0x5a);
    buf.freeze()
}

/// The tag of a frame built by [`opus_frame`]; `None` for the end marker.
pub(crate) fn tag(frame: &VoiceFrame) -> Option<u16> {
    (frame.payload.len() >= 3).then(|| u16::from_be_bytes([frame.payload[1], frame.payload[2]]))
}

/// What a listener heard of one burst in a group.
#[derive(Debug, Default)]
pub(crate) struct Heard {
    /// `FloorTaken` events: (holder, burst).
    pub(crate) taken: Vec<(u32, u32)>,
    /// Voice frames, up to and including the one flagged last.
    pub(crate) frames: Vec<VoiceFrame>,
    /// The `FloorIdle` that ended the burst: (burst, reason).
    pub(crate) idle: Option<(u32, pb::FloorIdleReason)>,
}

/// Listens to `group` until `talker`'s last frame and the following
/// `FloorIdle` were heard. Voice (datagrams) and floor events (control
/// stream) travel separately, so frames may come before `FloorTaken`: both
/// are collected in one pass.
pub(crate) async fn listen_to_burst(
    events: &mut Events,
    group: u32,
    talker: u32,
) -> anyhow::Result<Heard> {
    let mut heard = Heard::default();
    while heard.idle.is_none() || !heard.frames.last().is_some_and(|f| f.last) {
        let event = expect(events, |e| match e {
            Event::Voice(f) if f.group == group && f.talker == talker => Some(e.clone()),
            Event::FloorTaken {
                group: g, holder, ..
            } if *g == group && *holder == talker => Some(e.clone()),
            Event::FloorIdle { group: g, .. } if *g == group => Some(e.clone()),
            _ => None,
        })
        .await?;
        match event {
            Event::Voice(frame) => heard.frames.push(frame),
            Event::FloorTaken { holder, burst, .. } => heard.taken.push((holder, burst)),
            // An idle before the talker's burst began ends someone else's.
            Event::FloorIdle { burst, reason, .. }
                if !heard.taken.is_empty() || !heard.frames.is_empty() =>
            {
                heard.idle = Some((burst, reason));
            }
            _ => {}
        }
    }
    Ok(heard)
}

/// Checks a heard burst: one talker, sequences 0.. in order, the tags of
/// the pushed frames in order, the last frame flagged.
pub(crate) fn assert_burst(frames: &[VoiceFrame], talker: u32, pushed: u16) {
    assert!(
        frames.iter().all(|f| f.talker == talker),
        "talker stamped by the relay"
    );
    let burst = frames[0].burst;
    assert!(frames.iter().all(|f| f.burst == burst), "one burst");
    let sequences: Vec<u16> = frames.iter().map(|f| f.sequence).collect();
    let expected: Vec<u16> = (0..u16::try_from(frames.len()).expect("short burst")).collect();
    assert_eq!(
        sequences, expected,
        "sequence from 0, in order, none missing"
    );
    let tags: Vec<u16> = frames.iter().filter_map(tag).collect();
    assert_eq!(
        tags,
        (0..pushed).collect::<Vec<_>>(),
        "every pushed frame, none clipped"
    );
    assert!(frames.last().is_some_and(|f| f.last), "last frame flagged");
    assert!(
        frames.len() <= usize::from(pushed) + 1,
        "at most one end marker"
    );
}
