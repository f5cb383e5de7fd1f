//! A deterministic, speech-like test signal.
//!
//! Opus's voice mode (SILK) models speech: a pitch excitation through a
//! vocal-tract filter. Sine waves or white noise exercise it badly (a sine is
//! too easy, noise is not speech and falls out of the model), so codec tests,
//! benches and the load generator use this synthetic "voice" instead of
//! shipping recordings:
//!
//! - a glottal source: harmonics of a pitch between 100 and 250 Hz that glides
//!   through each syllable, with a 1/k spectral tilt, up to 6 kHz;
//! - shaped by three formant resonances (two-pole filters) chosen per
//!   syllable from five vowels;
//! - amplitude-modulated at syllable rate (~4 Hz, 180–300 ms syllables) with
//!   pauses between phrases (200–500 ms);
//! - plus a little breath noise while voiced and a very low noise floor.
//!
//! The same `(seconds, seed)` always gives the same samples: a tiny
//! SplitMix64 generator drives every choice, no external randomness.

use std::f64::consts::TAU;

use super::frame::SAMPLE_RATE;

/// Formants (Hz) of five vowels, roughly /a/ /e/ /i/ /o/ /u/ of an adult
/// voice.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [530.0, 1840.0, 2480.0],
    [270.0, 2290.0, 3010.0],
    [570.0, 840.0, 2410.0],
    [300.0, 870.0, 2240.0],
];

/// Bandwidths (Hz) of the three formants.
const BANDWIDTHS: [f64; 3] = [80.0, 100.0, 140.0];

/// Highest harmonic frequency synthesised, Hz.
const MAX_HARMONIC_HZ: f64 = 6_000.0;

/// Peak level of the output, relative to full scale (about −6 dBFS).
const PEAK: f64 = 0.5;

/// SplitMix64: tiny, fast and fully deterministic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// A two-pole resonator with unity gain at its centre frequency.
#[derive(Clone, Copy, Default)]
struct Resonator {
    a1: f64,
    a2: f64,
    gain: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn tune(&mut self, freq: f64, bandwidth: f64) {
        let fs = f64::from(SAMPLE_RATE);
        let r = (-std::f64::consts::PI * bandwidth / fs).exp();
        let theta = TAU * freq / fs;
        self.a1 = 2.0 * r * theta.cos();
        self.a2 = -r * r;
        // Gain at the centre frequency is about 1 / ((1 - r) * sqrt(1 - 2r cos 2θ + r²)).
        self.gain = (1.0 - r) * (1.0 - 2.0 * r * (2.0 * theta).cos() + r * r).sqrt();
    }

    fn run(&mut self, x: f64) -> f64 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// One syllable or pause of the script.
struct Segment {
    samples: usize,
    /// Pitch at the start and end of the segment (Hz); 0 for a pause.
    pitch: (f64, f64),
    vowel: usize,
}

/// Generates `seconds` of speech-like 16 kHz mono PCM, deterministic in
/// `seed`. Non-finite or negative durations give an empty signal; durations
/// are capped at one hour so a typo cannot exhaust memory.
#[must_use]
pub fn speech_like(seconds: f32, seed: u64) -> Vec<i16> {
    let seconds = if seconds.is_finite() {
        f64::from(seconds).clamp(0.0, 3600.0)
    } else {
        0.0
    };
    let fs = f64::from(SAMPLE_RATE);
    let total = (seconds * fs) as usize;
    let mut rng = Rng(seed ^ 0x5eed_0f5b_eec4);
    let script = script(total, &mut rng);

    let mut formants = [Resonator::default(); 3];
    let mut out = Vec::with_capacity(total);
    let mut phase = 0.0f64;
    let mut vibrato_phase = 0.0f64;
    for seg in &script {
        let [f1, f2, f3] = VOWELS[seg.vowel];
        for (r, (f, bw)) in formants.iter_mut().zip([f1, f2, f3].iter().zip(BANDWIDTHS)) {
            r.tune(*f, bw);
        }
        for i in 0..seg.samples {
            let t = i as f64 / seg.samples.max(1) as f64;
            let voiced = seg.pitch.0 > 0.0;
            let mut sample = 0.0;
            if voiced {
                // Pitch glides through the syllable, with a slight 5 Hz vibrato.
                vibrato_phase += TAU * 5.0 / fs;
                let f0 = seg.pitch.0 + (seg.pitch.1 - seg.pitch.0) * t + 2.0 * vibrato_phase.sin();
                phase = (phase + TAU * f0 / fs) % TAU;
                let harmonics = (MAX_HARMONIC_HZ / f0) as usize;
                let mut source = 0.0;
                for k in 1..=harmonics {
                    source += (k as f64 * phase).sin() / k as f64;
                }
                // Breath noise rides on the voice.
                source += 0.05 * (rng.unit() - 0.5);
                // Parallel formants, weighted like a natural spectral tilt.
                sample = formants[0].run(source)
                    + 0.5 * formants[1].run(source)
                    + 0.25 * formants[2].run(source);
                // Syllable envelope: smooth rise and fall (sin²).
                let env = (std::f64::consts::PI * t).sin();
                sample *= env * env;
            } else {
                for r in &mut formants {
                    r.run(0.0);
                }
            }
            // Noise floor, about −70 dBFS.
            sample += 0.0006 * (rng.unit() - 0.5);
            out.push(sample);
        }
    }
    normalise(&out)
}

/// Cuts `total` samples into syllables and pauses.
fn script(total: usize, rng: &mut Rng) -> Vec<Segment> {
    let fs = f64::from(SAMPLE_RATE);
    let mut segments = Vec::new();
    let mut done = 0usize;
    // Each voice has its own register.
    let register = rng.range(100.0, 180.0);
    while done < total {
        let pause = rng.unit() < 0.2;
        let seconds = if pause {
            rng.range(0.2, 0.5)
        } else {
            rng.range(0.18, 0.3)
        };
        let samples = ((seconds * fs) as usize).min(total - done);
        let pitch = if pause {
            (0.0, 0.0)
        } else {
            let start = (register + rng.range(0.0, 70.0)).min(250.0);
            let end = (start + rng.range(-40.0, 40.0)).clamp(100.0, 250.0);
            (start, end)
        };
        segments.push(Segment {
            samples,
            pitch,
            vowel: (rng.next_u64() % VOWELS.len() as u64) as usize,
        });
        done += samples;
    }
    segments
}

/// Scales to [`PEAK`] of full scale and converts to PCM16.
fn normalise(signal: &[f64]) -> Vec<i16> {
    let peak = signal.iter().fold(0.0f64, |m, s| m.max(s.abs()));
    let scale = if peak > 0.0 { PEAK / peak } else { 0.0 };
    signal
        .iter()
        .map(|s| (s * scale * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::codec::signal::*;

    #[test]
    fn deterministic_and_sized() {
        let a = speech_like(1.0, 7);
        assert_eq!(a.len(), 16_000);
        assert_eq!(a, speech_like(1.0, 7));
        assert_ne!(a, speech_like(1.0, 8));
        assert!(speech_like(f32::NAN, 1).is_empty());
        assert!(speech_like(-1.0, 1).is_empty());
    }

    #[test]
    fn has_syllables_and_pauses() {
        let s = speech_like(5.0, 3);
        let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!(peak > 15_000, "peak {peak}");
        // Some 20 ms frames are near silence (pauses, syllable edges), most
        // carry voice.
        let rms: Vec<f64> = s
            .chunks(320)
            .map(|c| (c.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 320.0).sqrt())
            .collect();
        let quiet = rms.iter().filter(|&&r| r < 100.0).count();
        let loud = rms.iter().filter(|&&r| r > 1_000.0).count();
        assert!(quiet > 10 && loud > rms.len() / 3, "{quiet} {loud}");
    }
}
