//! Real Opus packets of speech-like audio for the recording tests, so what a
//! recording holds can be played and checked by an independent decoder.

use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN, signal};

/// `frames` real Opus packets of speech-like audio, 20 ms each.
pub(crate) fn speech(frames: usize, seed: u64) -> Vec<Vec<u8>> {
    let pcm = signal::speech_like(frames as f32 * 0.02, seed);
    let mut encoder = Backend::OpusRs
        .encoder(CodecConfig::default())
        .expect("encoder");
    let mut out = [0u8; MAX_PACKET_LEN];
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let len = encoder.encode(frame, &mut out).expect("encode");
            out[..len].to_vec()
        })
        .collect()
}
