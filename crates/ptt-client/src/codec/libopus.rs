//! The reference backend: libopus through the `opus` crate (feature
//! `libopus`, needs cmake to build libopus from source).
//!
//! Why have it: it is the implementation every other Opus terminal runs, so
//! packets from opus-rs decoding here (and back) is the interoperability
//! check, and a terminal that prefers the battle-tested C code can switch to
//! it. libopus validates packets itself and does not unwind into Rust, so no
//! panic guard is needed; packets are still checked with
//! `ptt_proto::opus::parse` first so both backends reject the same inputs.

use opus::{Application, Bitrate, Channels, Decoder, Encoder};

use super::config::CodecConfig;
use super::error::CodecError;
use super::frame::{
    FRAME_SAMPLES, MAX_PACKET_LEN, SAMPLE_RATE, check_frame, check_out, packet_samples,
};
use super::traits::{VoiceDecoder, VoiceEncoder};

fn backend(e: opus::Error) -> CodecError {
    CodecError::Backend(e.to_string())
}

/// libopus encoder configured for the terminal profile.
pub struct LibopusEncoder {
    inner: Encoder,
    config: CodecConfig,
}

impl std::fmt::Debug for LibopusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibopusEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LibopusEncoder {
    /// A new encoder with `config`.
    pub fn new(config: CodecConfig) -> Result<Self, CodecError> {
        let init = |e: opus::Error| CodecError::Init(e.to_string());
        let mut inner =
            Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip).map_err(init)?;
        // All values are within small validated ranges, so the casts are exact.
        inner
            .set_bitrate(Bitrate::Bits(config.bitrate_bps() as i32))
            .map_err(init)?;
        inner
            .set_complexity(i32::from(config.complexity()))
            .map_err(init)?;
        inner.set_inband_fec(config.fec()).map_err(init)?;
        inner
            .set_packet_loss_perc(i32::from(config.expected_loss_percent()))
            .map_err(init)?;
        inner.set_vbr(true).map_err(init)?;
        Ok(Self { inner, config })
    }
}

impl VoiceEncoder for LibopusEncoder {
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        check_frame(pcm)?;
        let limit = out.len().min(MAX_PACKET_LEN);
        self.inner.encode(pcm, &mut out[..limit]).map_err(backend)
    }

    fn config(&self) -> &CodecConfig {
        &self.config
    }
}

/// libopus decoder producing 16 kHz mono.
pub struct LibopusDecoder {
    inner: Decoder,
}

impl std::fmt::Debug for LibopusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibopusDecoder").finish_non_exhaustive()
    }
}

impl LibopusDecoder {
    /// A new decoder.
    pub fn new() -> Result<Self, CodecError> {
        let inner = Decoder::new(SAMPLE_RATE, Channels::Mono)
            .map_err(|e| CodecError::Init(e.to_string()))?;
        Ok(Self { inner })
    }
}

impl VoiceDecoder for LibopusDecoder {
    fn decode(
        &mut self,
        packet: Option<&[u8]>,
        fec: bool,
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        match packet {
            // libopus conceals as many samples as the buffer holds: exactly
            // one frame.
            None => {
                check_out(out.len(), FRAME_SAMPLES)?;
                self.inner
                    .decode(&[], &mut out[..FRAME_SAMPLES], false)
                    .map_err(backend)
            }
            Some(packet) => {
                let samples = packet_samples(packet, out.len())?;
                if fec {
                    check_out(out.len(), FRAME_SAMPLES)?;
                    self.inner
                        .decode(packet, &mut out[..FRAME_SAMPLES], true)
                        .map_err(backend)
                } else {
                    self.inner
                        .decode(packet, &mut out[..samples], false)
                        .map_err(backend)
                }
            }
        }
    }
}
