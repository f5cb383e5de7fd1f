//! What a load run does: the scenario's knobs, and the synthetic speech
//! every talker replays.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN, signal};

/// Seconds of speech encoded once and replayed by every talker.
const SPEECH_SECONDS: f32 = 4.0;

/// The scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) talkers_per_group: usize,
    pub(crate) duration: Duration,
    pub(crate) fps: u32,
    pub(crate) seed: u64,
    pub(crate) progress: bool,
    /// One dispatcher all-calls (group 0) in bursts; everyone else listens.
    pub(crate) all_call: bool,
    /// The relay's process, when it is ours: its CPU time is sampled
    /// around the talking phase.
    pub(crate) relay_pid: Option<u32>,
}

/// Encodes [`SPEECH_SECONDS`] of the synthetic voice once: the Opus packets
/// every simulated talker replays (and the fan-out bench sends over raw UDP).
pub fn speech_packets(seed: u64) -> anyhow::Result<Arc<Vec<Bytes>>> {
    let pcm = signal::speech_like(SPEECH_SECONDS, seed);
    let mut encoder = Backend::default()
        .encoder(CodecConfig::default())
        .context("cannot create the Opus encoder")?;
    let mut packets = Vec::new();
    let mut out = [0u8; MAX_PACKET_LEN];
    for chunk in pcm.chunks_exact(FRAME_SAMPLES) {
        let len = encoder
            .encode(chunk, &mut out)
            .context("Opus encode failed")?;
        packets.push(Bytes::copy_from_slice(&out[..len]));
    }
    if packets.is_empty() {
        bail!("no speech encoded");
    }
    Ok(Arc::new(packets))
}
