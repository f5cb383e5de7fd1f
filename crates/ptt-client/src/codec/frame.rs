//! The voice frame of the terminal profile: its rate, length and duration,
//! the packet and decode bounds, and the checks of frame and buffer sizes
//! every backend makes.

use std::time::Duration;

use super::error::CodecError;

/// Sample rate of every voice frame, Hz. Wideband: speech intelligibility
/// needs the 4–8 kHz band that narrowband drops, and it is the highest rate at
/// which opus-rs's FEC is known to work.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples in one 20 ms mono frame at [`SAMPLE_RATE`]; the unit every encode
/// call consumes and every decode call produces.
pub const FRAME_SAMPLES: usize = 320;

/// Duration of one frame: the cadence of sending and of playout.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Largest Opus packet an encoder may produce: what fits in one voice
/// datagram after the 24-byte header (`ptt_proto::voice::MAX_PAYLOAD_LEN`).
/// Real packets at 24 kbit/s are about 60 bytes.
pub const MAX_PACKET_LEN: usize = ptt_proto::voice::MAX_PAYLOAD_LEN;

/// Most samples one decode call can produce: a 120 ms packet (the Opus
/// maximum) at 16 kHz. Our encoders only make 20 ms packets, but a decoder
/// must not fail on a longer, valid packet from another implementation when
/// the caller gave it room.
pub const MAX_DECODE_SAMPLES: usize = 1920;

/// Checks an encoder's input: exactly one frame.
pub(super) fn check_frame(pcm: &[i16]) -> Result<(), CodecError> {
    if pcm.len() == FRAME_SAMPLES {
        Ok(())
    } else {
        Err(CodecError::FrameSize(pcm.len()))
    }
}

/// Validates an untrusted packet and returns how many 16 kHz samples it
/// decodes to, checking that `out_len` has room for them.
pub(super) fn packet_samples(packet: &[u8], out_len: usize) -> Result<usize, CodecError> {
    let info = ptt_proto::opus::parse(packet)?;
    // 48 kHz samples / 3 = 16 kHz samples; at most 5760 / 3 = 1920.
    let samples = info.samples_48k() as usize / 3;
    check_out(out_len, samples)?;
    Ok(samples)
}

/// Checks that a decode buffer holds `need` samples.
pub(super) fn check_out(got: usize, need: usize) -> Result<(), CodecError> {
    if got < need {
        Err(CodecError::OutputTooSmall { got, need })
    } else {
        Ok(())
    }
}
