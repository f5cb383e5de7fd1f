//! The default backend: `opus-rs`, a pure-Rust port of libopus (pinned to
//! `=0.1.40`).
//!
//! Why the defensive wrapping: opus-rs is young and has had panics on
//! unusual inputs (its own test suite carries `panic_surface_repro` and
//! fuzz regressions, and it is known to panic with FEC at 24/48 kHz). A
//! listener decodes packets from the network, so a panic there would let any
//! peer that gets a packet through the relay kill the client. Every call into
//! opus-rs therefore runs under [`std::panic::catch_unwind`]; a panic becomes
//! [`CodecError::Panicked`] and the codec state is rebuilt, because a state
//! that was interrupted half-way cannot be trusted. Packets are also checked
//! with `ptt_proto::opus::parse` before they reach the decoder, which already
//! keeps most malformed input away from it.
//!
//! This only works where panics unwind: a build with `panic = "abort"` loses
//! the guard (the packet validation still applies).

use std::panic::{AssertUnwindSafe, catch_unwind};

use opus_rs::{Application, OpusDecoder, OpusEncoder};

use super::config::CodecConfig;
use super::error::CodecError;
use super::frame::{
    FRAME_SAMPLES, MAX_DECODE_SAMPLES, MAX_PACKET_LEN, SAMPLE_RATE, check_frame, check_out,
    packet_samples,
};
use super::traits::{VoiceDecoder, VoiceEncoder};

/// Runs `f`, turning a panic into [`CodecError::Panicked`].
fn guarded<T>(f: impl FnOnce() -> Result<T, &'static str>) -> Result<T, CodecError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(CodecError::Backend(message.to_owned())),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(CodecError::Panicked(message))
        }
    }
}

/// opus-rs encoder configured for the terminal profile.
pub struct OpusRsEncoder {
    inner: OpusEncoder,
    config: CodecConfig,
}

impl std::fmt::Debug for OpusRsEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusRsEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn new_encoder(config: &CodecConfig) -> Result<OpusEncoder, CodecError> {
    let mut enc = guarded(|| OpusEncoder::new(SAMPLE_RATE as i32, 1, Application::Voip))
        .map_err(|e| CodecError::Init(e.to_string()))?;
    // All values are within small validated ranges, so the casts are exact.
    enc.bitrate_bps = config.bitrate_bps() as i32;
    enc.complexity = i32::from(config.complexity());
    enc.use_inband_fec = config.fec();
    enc.packet_loss_perc = i32::from(config.expected_loss_percent());
    // VBR: speech pauses cost almost nothing, and FEC gets the bits it needs.
    enc.use_cbr = false;
    Ok(enc)
}

impl OpusRsEncoder {
    /// A new encoder with `config`.
    pub fn new(config: CodecConfig) -> Result<Self, CodecError> {
        Ok(Self {
            inner: new_encoder(&config)?,
            config,
        })
    }
}

impl VoiceEncoder for OpusRsEncoder {
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        check_frame(pcm)?;
        let limit = out.len().min(MAX_PACKET_LEN);
        let out = &mut out[..limit];
        let inner = &mut self.inner;
        let result = guarded(|| inner.encode_i16(pcm, FRAME_SAMPLES, out));
        if matches!(result, Err(CodecError::Panicked(_))) {
            self.inner = new_encoder(&self.config)?;
        }
        result
    }

    fn config(&self) -> &CodecConfig {
        &self.config
    }
}

/// opus-rs decoder producing 16 kHz mono.
pub struct OpusRsDecoder {
    inner: OpusDecoder,
    /// opus-rs decodes to `f32`; converted to `i16` from here.
    scratch: Box<[f32; MAX_DECODE_SAMPLES]>,
}

impl std::fmt::Debug for OpusRsDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusRsDecoder").finish_non_exhaustive()
    }
}

fn new_decoder() -> Result<OpusDecoder, CodecError> {
    guarded(|| OpusDecoder::new(SAMPLE_RATE as i32, 1)).map_err(|e| CodecError::Init(e.to_string()))
}

impl OpusRsDecoder {
    /// A new decoder.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            inner: new_decoder()?,
            scratch: Box::new([0.0; MAX_DECODE_SAMPLES]),
        })
    }
}

impl VoiceDecoder for OpusRsDecoder {
    fn decode(
        &mut self,
        packet: Option<&[u8]>,
        fec: bool,
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        let inner = &mut self.inner;
        let scratch = &mut self.scratch[..];
        let result = match packet {
            None => {
                check_out(out.len(), FRAME_SAMPLES)?;
                guarded(|| inner.decode(&[], FRAME_SAMPLES, &mut scratch[..FRAME_SAMPLES]))
            }
            Some(packet) => {
                let samples = packet_samples(packet, out.len())?;
                if fec {
                    // The lost frame is one of our 20 ms frames; opus-rs
                    // conceals what the FEC does not cover.
                    check_out(out.len(), FRAME_SAMPLES)?;
                    guarded(|| {
                        inner.decode_fec(packet, FRAME_SAMPLES, &mut scratch[..FRAME_SAMPLES])
                    })
                } else {
                    guarded(|| inner.decode(packet, samples, &mut scratch[..samples]))
                }
            }
        };
        match result {
            Ok(n) => {
                let n = n.min(out.len()).min(MAX_DECODE_SAMPLES);
                for (o, s) in out.iter_mut().zip(&self.scratch[..n]) {
                    *o = f32_to_i16(*s);
                }
                Ok(n)
            }
            Err(e) => {
                if matches!(e, CodecError::Panicked(_)) {
                    self.inner = new_decoder()?;
                }
                Err(e)
            }
        }
    }
}

/// Converts a sample in ±1.0 to PCM16, saturating (the decoder may overshoot
/// slightly on clipped input).
fn f32_to_i16(s: f32) -> i16 {
    // NaN maps to 0 through `as`; the clamp keeps the cast exact.
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}
