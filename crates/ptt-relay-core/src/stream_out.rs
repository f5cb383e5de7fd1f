//! Voice to a listener without QUIC datagrams (proto/voice.md §4): each burst
//! on a unidirectional stream of its own, as length-prefixed records.
//!
//! The fan-out must never wait on a listener, and a stream write can wait
//! (flow control, congestion). So the fan-out only offers each frame to the
//! listener's [`StreamFeed`], a bounded queue, and the listener's own
//! [`StreamWriter`] task writes the streams. Live voice is newest-wins: when
//! the queue overflows, the writer resets the burst's stream, discards what
//! is queued (counted as `listener_queue_dropped`, like a datagram queue's
//! oldest) and goes on with the next frame on a fresh stream. What a stream
//! holds in flight beyond the queue is bounded by the listener's own
//! flow-control window.

use std::sync::Arc;

use bytes::Bytes;
use ptt_proto::voice::VoiceHeader;
use ptt_proto::voice_stream::{STREAM_ERROR_CODE, record_prefix};
use quinn::SendStream;
use tokio::sync::{Notify, mpsc};

use crate::metrics::Metrics;

/// Frames queued for one stream listener before it counts as behind: one
/// second of voice at 50 frames/s.
pub const STREAM_QUEUE: usize = 50;

/// Application code of a burst stream the relay resets because the listener
/// fell behind (newest wins). Not an error of the listener's: it simply
/// missed part of the burst.
pub const RESET_BEHIND: u32 = 0;

/// The fan-out's side: where a stream listener's frames are offered.
#[derive(Debug)]
pub struct StreamFeed {
    frames: mpsc::Sender<Bytes>,
    overflowed: Arc<Notify>,
}

/// The writer's side, run as one task per stream listener by its session.
#[derive(Debug)]
pub struct StreamWriter {
    conn: quinn::Connection,
    frames: mpsc::Receiver<Bytes>,
    overflowed: Arc<Notify>,
    metrics: Arc<Metrics>,
}

/// A feed and the writer that drains it onto `conn`'s streams.
pub fn stream_feed(conn: quinn::Connection, metrics: Arc<Metrics>) -> (StreamFeed, StreamWriter) {
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let overflowed = Arc::new(Notify::new());
    let feed = StreamFeed {
        frames: tx,
        overflowed: overflowed.clone(),
    };
    let writer = StreamWriter {
        conn,
        frames: rx,
        overflowed,
        metrics,
    };
    (feed, writer)
}

impl StreamFeed {
    /// Offers a stamped frame without waiting; false if the queue was full
    /// (the writer is then told to skip ahead) or the writer is gone.
    #[inline]
    pub fn offer(&self, frame: Bytes) -> bool {
        match self.frames.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The burst stream being written: which burst it carries.
struct BurstStream {
    group: u32,
    burst: u32,
    stream: SendStream,
}

impl StreamWriter {
    /// Writes offered frames until the feed is dropped (the session ended)
    /// or the connection is gone. Each burst has its stream: a listener of
    /// several groups hears several bursts at once. A burst's last frame
    /// finishes its stream, and so does a new burst in the same group (the
    /// old one's last frame was lost with its talker).
    pub async fn run(mut self) {
        let mut open: Vec<BurstStream> = Vec::new();
        loop {
            let frame = tokio::select! {
                biased;
                () = self.overflowed.notified() => {
                    self.skip_ahead(&mut open);
                    continue;
                }
                frame = self.frames.recv() => match frame {
                    Some(frame) => frame,
                    None => break,
                },
            };
            // Stamped by the fan-out, so it parses; anything else is skipped.
            let Ok(header) = VoiceHeader::parse(&frame) else {
                continue;
            };
            let (group, burst) = (header.group_id, header.burst_id);
            open.retain_mut(|s| {
                let superseded = s.group == group && s.burst != burst;
                if superseded {
                    let _ = s.stream.finish();
                }
                !superseded
            });
            let mut stream = match open
                .iter()
                .position(|s| s.burst == burst && s.group == group)
            {
                Some(index) => open.swap_remove(index).stream,
                None => {
                    let opened = tokio::select! {
                        biased;
                        () = self.overflowed.notified() => None,
                        opened = self.conn.open_uni() => opened.ok(),
                    };
                    match opened {
                        Some(stream) => stream,
                        None if self.conn.close_reason().is_some() => return,
                        // Behind before the stream could even open (the
                        // listener gives no stream credit): newest wins.
                        None => {
                            self.skip_ahead(&mut open);
                            continue;
                        }
                    }
                }
            };
            let written = tokio::select! {
                biased;
                () = self.overflowed.notified() => {
                    let _ = stream.reset(RESET_BEHIND.into());
                    self.skip_ahead(&mut open);
                    continue;
                }
                written = write_record(&mut stream, frame) => written,
            };
            match written {
                Ok(()) if header.flags.last_frame() => {
                    let _ = stream.finish();
                }
                Ok(()) => open.push(BurstStream {
                    group,
                    burst,
                    stream,
                }),
                // Stopped by the listener (it gave the burst up) or the
                // connection is closing; the next frame opens a new one.
                Err(_) => {}
            }
        }
        for mut burst in open {
            let _ = burst.stream.finish();
        }
    }

    /// The listener fell behind: reset the open streams, discard the queue.
    fn skip_ahead(&mut self, open: &mut Vec<BurstStream>) {
        for mut behind in open.drain(..) {
            let _ = behind.stream.reset(RESET_BEHIND.into());
        }
        let mut discarded = 0;
        while self.frames.try_recv().is_ok() {
            discarded += 1;
        }
        self.metrics.listener_queue_dropped.add(discarded);
    }
}

/// Writes one record: the length prefix, then the shared frame itself
/// (handed to quinn without copying).
async fn write_record(stream: &mut SendStream, frame: Bytes) -> Result<(), quinn::WriteError> {
    let Ok(prefix) = record_prefix(frame.len()) else {
        // Only frames within the bounds reach a listener; never a panic.
        let _ = stream.reset(STREAM_ERROR_CODE.into());
        return Err(quinn::WriteError::ClosedStream);
    };
    stream.write_all(&prefix).await?;
    stream.write_chunk(frame).await
}
