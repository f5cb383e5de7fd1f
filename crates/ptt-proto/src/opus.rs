//! Opus packet structure (RFC 6716 §3): TOC byte, frame packing, and the
//! validity rules R1–R7 of §3.4.
//!
//! The relay never decodes audio, but it must not forward garbage: a packet
//! that breaks these rules is not Opus and every receiver's decoder would
//! reject it anyway. [`parse`] checks the framing in a few nanoseconds without
//! allocating and reports how much audio the packet carries, which the relay
//! uses for accounting and the client for its jitter buffer.

/// Largest size of one Opus frame (RFC 6716 §3.2.1, rule R2).
pub const MAX_FRAME_LEN: usize = 1275;

/// Most audio one packet may carry (rule R5): 120 ms = 5760 samples at 48 kHz.
pub const MAX_PACKET_SAMPLES_48K: u32 = 5760;

/// Most frames one packet may hold: 120 ms of 2.5 ms frames.
pub const MAX_FRAMES: usize = 48;

/// Coding mode of a packet (RFC 6716 §3.1, Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Linear-prediction speech codec; configs 0–11.
    Silk,
    /// SILK below 8 kHz plus CELT above; configs 12–15.
    Hybrid,
    /// MDCT codec for music and low delay; configs 16–31.
    Celt,
}

/// Audio bandwidth of a packet (RFC 6716 §2, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bandwidth {
    /// Narrowband, 4 kHz audio bandwidth (8 kHz sample rate).
    Narrowband,
    /// Medium-band, 6 kHz (12 kHz sample rate).
    Mediumband,
    /// Wideband, 8 kHz (16 kHz sample rate); what our terminals send.
    Wideband,
    /// Super-wideband, 12 kHz (24 kHz sample rate).
    SuperWideband,
    /// Fullband, 20 kHz (48 kHz sample rate).
    Fullband,
}

/// The table-of-contents byte that starts every Opus packet (RFC 6716 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Toc(u8);

impl Toc {
    /// Wraps a TOC byte; every byte value is a valid TOC.
    #[must_use]
    pub const fn new(byte: u8) -> Self {
        Self(byte)
    }

    /// The raw byte.
    #[must_use]
    pub const fn byte(self) -> u8 {
        self.0
    }

    /// Configuration number 0–31 (top 5 bits): mode, bandwidth, frame size.
    #[must_use]
    pub const fn config(self) -> u8 {
        self.0 >> 3
    }

    /// True for stereo, false for mono (bit `s`).
    #[must_use]
    pub const fn stereo(self) -> bool {
        self.0 & 0x04 != 0
    }

    /// Frame count code 0–3 (low 2 bits): one frame, two equal frames, two
    /// frames of different size, or an arbitrary number of frames.
    #[must_use]
    pub const fn code(self) -> u8 {
        self.0 & 0x03
    }

    /// Coding mode of the configuration.
    #[must_use]
    pub const fn mode(self) -> Mode {
        match self.config() {
            0..=11 => Mode::Silk,
            12..=15 => Mode::Hybrid,
            _ => Mode::Celt,
        }
    }

    /// Audio bandwidth of the configuration.
    #[must_use]
    pub const fn bandwidth(self) -> Bandwidth {
        match self.config() {
            0..=3 | 16..=19 => Bandwidth::Narrowband,
            4..=7 => Bandwidth::Mediumband,
            8..=11 | 20..=23 => Bandwidth::Wideband,
            12 | 13 | 24..=27 => Bandwidth::SuperWideband,
            _ => Bandwidth::Fullband,
        }
    }

    /// Duration of each frame, in samples at 48 kHz (120 = 2.5 ms,
    /// 2880 = 60 ms).
    #[must_use]
    pub const fn frame_samples_48k(self) -> u32 {
        let config = self.config();
        match self.mode() {
            // 10, 20, 40, 60 ms.
            Mode::Silk => [480, 960, 1920, 2880][(config & 3) as usize],
            // 10, 20 ms.
            Mode::Hybrid => [480, 960][(config & 1) as usize],
            // 2.5, 5, 10, 20 ms.
            Mode::Celt => [120, 240, 480, 960][(config & 3) as usize],
        }
    }

    /// Duration of each frame in microseconds.
    #[must_use]
    pub const fn frame_duration_us(self) -> u32 {
        samples_to_us(self.frame_samples_48k())
    }
}

const fn samples_to_us(samples_48k: u32) -> u32 {
    // 48 samples per millisecond; every Opus frame size is a multiple of 6.
    samples_48k * 1000 / 48
}

/// Why a packet is not valid Opus. Whatever the variant, the caller's answer is
/// the same: drop the packet (and count it); the variants say which rule of
/// RFC 6716 §3.4 was broken, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    /// R1: the packet is empty; there is no TOC byte.
    #[error("empty packet (R1)")]
    Empty,
    /// R2: a frame is longer than 1275 bytes.
    #[error("frame of {0} bytes exceeds 1275 (R2)")]
    FrameTooLong(usize),
    /// R3: a code 1 packet (two equal frames) has an odd number of bytes after
    /// the TOC.
    #[error("code 1 packet has an odd payload length (R3)")]
    UnevenFrames,
    /// R4/R7: the packet ends inside a frame length, a frame count byte,
    /// padding length bytes, or before the data the lengths announce.
    #[error("packet truncated (R4/R7)")]
    Truncated,
    /// R5: a code 3 packet announces zero frames.
    #[error("code 3 packet with zero frames (R5)")]
    NoFrames,
    /// R5: the packet carries more than 120 ms of audio.
    #[error("packet of {0} samples at 48 kHz exceeds 120 ms (R5)")]
    TooLong(u32),
    /// R6: the bytes of a constant-bitrate code 3 packet do not divide evenly
    /// among its frames.
    #[error("CBR code 3 packet does not split into equal frames (R6)")]
    UnevenCbr,
    /// R6/R7: the padding is larger than the room left in the packet.
    #[error("padding exceeds the packet (R6/R7)")]
    PaddingTooLong,
}

/// What a valid Opus packet holds, as found by [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// The TOC byte: mode, bandwidth, frame size, stereo.
    pub toc: Toc,
    /// Number of frames, 1–48.
    pub frame_count: u8,
    /// Trailing padding bytes (code 3 only; 0 otherwise), not counting the
    /// padding length bytes.
    pub padding: usize,
    frame_lens: [u16; MAX_FRAMES],
}

impl PacketInfo {
    /// Total audio duration in samples at 48 kHz (≤ 5760).
    #[must_use]
    pub fn samples_48k(&self) -> u32 {
        u32::from(self.frame_count) * self.toc.frame_samples_48k()
    }

    /// Total audio duration in microseconds (≤ 120 000).
    #[must_use]
    pub fn duration_us(&self) -> u32 {
        samples_to_us(self.samples_48k())
    }

    /// Length in bytes of each frame, in order. A length of 0 is a valid
    /// frame: the decoder treats it as lost/DTX (RFC 6716 §3.2.1).
    #[must_use]
    pub fn frame_lens(&self) -> &[u16] {
        &self.frame_lens[..usize::from(self.frame_count)]
    }
}

/// Reads a frame length (RFC 6716 §3.2.1) from the front of `data`:
/// `(length, bytes used)`.
fn frame_len(data: &[u8]) -> Result<(usize, usize), OpusError> {
    match data {
        [] => Err(OpusError::Truncated),
        [b0 @ 0..=251, ..] => Ok((usize::from(*b0), 1)),
        [_] => Err(OpusError::Truncated),
        [b0, b1, ..] => Ok((usize::from(*b1) * 4 + usize::from(*b0), 2)),
    }
}

fn check_frame(len: usize) -> Result<u16, OpusError> {
    if len > MAX_FRAME_LEN {
        return Err(OpusError::FrameTooLong(len));
    }
    // len <= 1275 fits in u16.
    Ok(len as u16)
}

/// Validates an Opus packet against RFC 6716 §3.1–§3.4 (rules R1–R7) and
/// returns its frame count and duration. Never panics, never allocates.
///
/// ```
/// use ptt_proto::opus;
/// // Config 9 (SILK wideband 20 ms), mono, code 0, 3 bytes of frame data.
/// let info = opus::parse(&[9 << 3, 1, 2, 3]).unwrap();
/// assert_eq!((info.frame_count, info.duration_us()), (1, 20_000));
/// ```
pub fn parse(packet: &[u8]) -> Result<PacketInfo, OpusError> {
    let (&toc_byte, rest) = packet.split_first().ok_or(OpusError::Empty)?;
    let toc = Toc::new(toc_byte);
    let mut info = PacketInfo {
        toc,
        frame_count: 0,
        padding: 0,
        frame_lens: [0; MAX_FRAMES],
    };
    match toc.code() {
        0 => {
            info.frame_lens[0] = check_frame(rest.len())?;
            info.frame_count = 1;
        }
        1 => {
            if rest.len() % 2 != 0 {
                return Err(OpusError::UnevenFrames);
            }
            let len = check_frame(rest.len() / 2)?;
            info.frame_lens[..2].copy_from_slice(&[len, len]);
            info.frame_count = 2;
        }
        2 => {
            let (first, used) = frame_len(rest)?;
            let remaining = rest.len() - used;
            let second = remaining.checked_sub(first).ok_or(OpusError::Truncated)?;
            info.frame_lens[0] = check_frame(first)?;
            info.frame_lens[1] = check_frame(second)?;
            info.frame_count = 2;
        }
        _ => parse_code3(rest, &mut info)?,
    }
    Ok(info)
}

/// Code 3: frame count byte, optional padding, optional VBR lengths
/// (RFC 6716 §3.2.5).
fn parse_code3(rest: &[u8], info: &mut PacketInfo) -> Result<(), OpusError> {
    let (&count_byte, mut rest) = rest.split_first().ok_or(OpusError::Truncated)?;
    let vbr = count_byte & 0x80 != 0;
    let has_padding = count_byte & 0x40 != 0;
    let count = count_byte & 0x3f;
    if count == 0 {
        return Err(OpusError::NoFrames);
    }
    let samples = u32::from(count) * info.toc.frame_samples_48k();
    if samples > MAX_PACKET_SAMPLES_48K {
        return Err(OpusError::TooLong(samples));
    }
    // 120 ms / 2.5 ms = 48 frames at most, so `count` indexes frame_lens.
    let count = usize::from(count);

    let mut padding = 0usize;
    if has_padding {
        loop {
            let (&b, tail) = rest.split_first().ok_or(OpusError::Truncated)?;
            rest = tail;
            if b == 255 {
                padding += 254;
            } else {
                padding += usize::from(b);
                break;
            }
        }
    }
    // Frame data lies between the headers and the trailing padding.
    let data_len = rest
        .len()
        .checked_sub(padding)
        .ok_or(OpusError::PaddingTooLong)?;

    if vbr {
        let mut used = 0usize;
        let mut sum = 0usize;
        for slot in info.frame_lens.iter_mut().take(count - 1) {
            let (len, n) = frame_len(rest.get(used..).unwrap_or_default())?;
            used += n;
            sum += len;
            *slot = check_frame(len)?;
        }
        let last = data_len
            .checked_sub(used)
            .and_then(|d| d.checked_sub(sum))
            .ok_or(OpusError::Truncated)?;
        info.frame_lens[count - 1] = check_frame(last)?;
    } else {
        if data_len % count != 0 {
            return Err(OpusError::UnevenCbr);
        }
        let len = check_frame(data_len / count)?;
        info.frame_lens[..count].fill(len);
    }
    info.padding = padding;
    // count <= 48.
    info.frame_count = count as u8;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toc(config: u8, stereo: bool, code: u8) -> u8 {
        config << 3 | u8::from(stereo) << 2 | code
    }

    #[test]
    fn toc_table() {
        let cases: [(u8, Mode, Bandwidth, u32); 12] = [
            (0, Mode::Silk, Bandwidth::Narrowband, 480),
            (3, Mode::Silk, Bandwidth::Narrowband, 2880),
            (5, Mode::Silk, Bandwidth::Mediumband, 960),
            (9, Mode::Silk, Bandwidth::Wideband, 960),
            (11, Mode::Silk, Bandwidth::Wideband, 2880),
            (12, Mode::Hybrid, Bandwidth::SuperWideband, 480),
            (15, Mode::Hybrid, Bandwidth::Fullband, 960),
            (16, Mode::Celt, Bandwidth::Narrowband, 120),
            (21, Mode::Celt, Bandwidth::Wideband, 240),
            (26, Mode::Celt, Bandwidth::SuperWideband, 480),
            (31, Mode::Celt, Bandwidth::Fullband, 960),
            (28, Mode::Celt, Bandwidth::Fullband, 120),
        ];
        for (config, mode, bw, samples) in cases {
            let t = Toc::new(toc(config, true, 2));
            assert_eq!(t.config(), config);
            assert_eq!(
                (t.mode(), t.bandwidth(), t.frame_samples_48k()),
                (mode, bw, samples)
            );
            assert!(t.stereo());
            assert_eq!(t.code(), 2);
        }
        assert_eq!(Toc::new(toc(16, false, 0)).frame_duration_us(), 2500);
    }

    #[test]
    fn r1_empty() {
        assert_eq!(parse(&[]), Err(OpusError::Empty));
    }

    #[test]
    fn code0() {
        // A TOC alone is a valid code 0 packet: one zero-length (DTX) frame.
        let info = parse(&[toc(9, false, 0)]).unwrap();
        assert_eq!(info.frame_lens(), &[0]);
        let mut p = vec![toc(9, false, 0)];
        p.extend_from_slice(&[0xaa; 1275]);
        assert_eq!(parse(&p).unwrap().frame_lens(), &[1275]);
        p.push(0);
        assert_eq!(parse(&p), Err(OpusError::FrameTooLong(1276)), "R2");
    }

    #[test]
    fn code1() {
        let info = parse(&[toc(9, false, 1), 1, 2, 3, 4]).unwrap();
        assert_eq!(info.frame_lens(), &[2, 2]);
        assert_eq!(info.duration_us(), 40_000);
        assert_eq!(
            parse(&[toc(9, false, 1), 1, 2, 3]),
            Err(OpusError::UnevenFrames),
            "R3"
        );
        // Two empty frames.
        assert_eq!(parse(&[toc(9, false, 1)]).unwrap().frame_lens(), &[0, 0]);
    }

    #[test]
    fn code2() {
        // First frame 1 byte, second frame 2 bytes.
        let info = parse(&[toc(1, false, 2), 1, 0xa, 0xb, 0xc]).unwrap();
        assert_eq!(info.frame_lens(), &[1, 2]);
        // Two-byte length: 252 + 4*1 = 256.
        let mut p = vec![toc(1, false, 2), 252, 1];
        p.extend_from_slice(&[0; 256 + 3]);
        assert_eq!(parse(&p).unwrap().frame_lens(), &[256, 3]);
        // R4: missing second length byte, length beyond the packet.
        assert_eq!(parse(&[toc(1, false, 2)]), Err(OpusError::Truncated));
        assert_eq!(parse(&[toc(1, false, 2), 252]), Err(OpusError::Truncated));
        assert_eq!(
            parse(&[toc(1, false, 2), 3, 0, 0]),
            Err(OpusError::Truncated)
        );
        // Max encodable first length 255*4+255 = 1275.
        let mut p = vec![toc(1, false, 2), 255, 255];
        p.extend_from_slice(&[0; 1275]);
        assert_eq!(parse(&p).unwrap().frame_lens(), &[1275, 0]);
        // R2 on the implicit second frame.
        let mut p = vec![toc(1, false, 2), 0];
        p.extend_from_slice(&[0; 1276]);
        assert_eq!(parse(&p), Err(OpusError::FrameTooLong(1276)));
    }

    #[test]
    fn code3_cbr() {
        // 3 frames of 2 bytes, no padding.
        let info = parse(&[toc(16, false, 3), 3, 1, 1, 2, 2, 3, 3]).unwrap();
        assert_eq!(info.frame_lens(), &[2, 2, 2]);
        assert_eq!(info.duration_us(), 7_500);
        // R6: 5 bytes into 3 frames.
        assert_eq!(
            parse(&[toc(16, false, 3), 3, 1, 1, 2, 2, 3]),
            Err(OpusError::UnevenCbr)
        );
        // Padding: p flag, padding length 2, 2 frames of 1 byte, 2 padding bytes.
        let info = parse(&[toc(16, false, 3), 0x40 | 2, 2, 7, 8, 0, 0]).unwrap();
        assert_eq!((info.frame_lens(), info.padding), (&[1u16, 1][..], 2));
        // Padding 255 chain: 254 + 1 = 255 padding bytes.
        let mut p = vec![toc(16, false, 3), 0x40 | 1, 255, 1, 9];
        p.extend_from_slice(&[0; 255]);
        let info = parse(&p).unwrap();
        assert_eq!((info.frame_lens(), info.padding), (&[1u16][..], 255));
        // R6/R7: padding longer than the packet.
        assert_eq!(
            parse(&[toc(16, false, 3), 0x41, 5, 0]),
            Err(OpusError::PaddingTooLong)
        );
        assert_eq!(parse(&[toc(16, false, 3), 0x41]), Err(OpusError::Truncated));
        // Missing frame count byte.
        assert_eq!(parse(&[toc(16, false, 3)]), Err(OpusError::Truncated));
    }

    #[test]
    fn code3_r5() {
        assert_eq!(parse(&[toc(16, false, 3), 0]), Err(OpusError::NoFrames));
        // 48 frames of 2.5 ms = 120 ms: allowed (all empty).
        let info = parse(&[toc(16, false, 3), 48]).unwrap();
        assert_eq!((info.frame_count, info.duration_us()), (48, 120_000));
        // 49 frames: too long.
        assert_eq!(
            parse(&[toc(16, false, 3), 49]),
            Err(OpusError::TooLong(49 * 120))
        );
        // 3 SILK 60 ms frames = 180 ms.
        assert_eq!(parse(&[toc(3, false, 3), 3]), Err(OpusError::TooLong(8640)));
        // 2 × 60 ms = 120 ms is fine.
        assert_eq!(
            parse(&[toc(3, false, 3), 2]).unwrap().duration_us(),
            120_000
        );
    }

    #[test]
    fn code3_vbr() {
        // 3 frames: lengths 1, 2 given; last = rest (3).
        let info = parse(&[
            toc(9, true, 3),
            0x80 | 3,
            1,
            2,
            0xa,
            0xb,
            0xb,
            0xc,
            0xc,
            0xc,
        ])
        .unwrap();
        assert_eq!(info.frame_lens(), &[1, 2, 3]);
        assert_eq!(info.duration_us(), 60_000);
        // With padding 1: last frame shrinks by 1.
        let info = parse(&[toc(9, true, 3), 0xc0 | 2, 1, 1, 0xa, 0xb, 0]).unwrap();
        assert_eq!((info.frame_lens(), info.padding), (&[1u16, 1][..], 1));
        // R7: announced lengths exceed the packet.
        assert_eq!(
            parse(&[toc(9, true, 3), 0x80 | 2, 5, 1]),
            Err(OpusError::Truncated)
        );
        // R7: length bytes missing.
        assert_eq!(
            parse(&[toc(9, true, 3), 0x80 | 3, 0]),
            Err(OpusError::Truncated)
        );
        // One VBR frame: no length bytes at all.
        assert_eq!(
            parse(&[toc(9, true, 3), 0x81, 1, 2]).unwrap().frame_lens(),
            &[2]
        );
    }
}
