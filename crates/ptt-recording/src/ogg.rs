//! A minimal Ogg page writer (RFC 3533) and the two Opus header packets of
//! RFC 7845, written by hand rather than with the `ogg` crate.
//!
//! Why not the crate: its `PacketWriter` is documented upstream as less
//! tested than its reader, takes each packet as an owned boxed copy, and
//! gives no way to patch a finished page; what a recording needs is one page
//! layout, written in order — about a hundred lines that the unit tests (and
//! `opusinfo` in the end-to-end test) check byte by byte.
//!
//! Pages are assembled in memory and handed back as bytes; the caller owns
//! the file. A packet never spans pages here: every packet the relay records
//! fits one page (voice datagrams are at most 1100 bytes, a page holds up to
//! 255 × 255 bytes), so continued packets are neither written nor needed.

/// Most segments (lacing values) one page may hold.
pub const MAX_SEGMENTS: usize = 255;

/// Largest packet that fits one page: 254 full segments and a final one
/// shorter than 255 (a packet of exactly 255 × 255 bytes would need a 256th,
/// empty, lacing value).
pub const MAX_PACKET: usize = MAX_SEGMENTS * 255 - 1;

/// Page header flag: this page continues a packet from the previous page.
pub const FLAG_CONTINUED: u8 = 0x01;
/// Page header flag: first page of the logical stream.
pub const FLAG_BOS: u8 = 0x02;
/// Page header flag: last page of the logical stream.
pub const FLAG_EOS: u8 = 0x04;

/// Length of a page header without its segment table.
pub const HEADER_LEN: usize = 27;

/// Offset of the CRC field in a page.
const CRC_OFFSET: usize = 22;

/// The Ogg CRC-32: polynomial 0x04c11db7, not reflected, initial value 0, no
/// final xor (RFC 3533 §6), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    data.iter().fold(crc, |crc, &byte| {
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ byte)]
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

/// A packet that cannot be written as one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The packet is larger than [`MAX_PACKET`]; such a packet is not a
    /// voice frame and is left out of the recording.
    #[error("packet of {0} bytes does not fit one Ogg page")]
    PacketTooLarge(usize),
}

/// Packets gathered for the next page of one logical stream.
#[derive(Debug)]
pub struct PageBuilder {
    serial: u32,
    sequence: u32,
    lacing: Vec<u8>,
    body: Vec<u8>,
    packets: usize,
    /// Granule position after the last packet added (what the page gets).
    granule: i64,
}

impl PageBuilder {
    /// A stream with serial number `serial`; its first page gets BOS.
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            sequence: 0,
            lacing: Vec::with_capacity(MAX_SEGMENTS),
            body: Vec::new(),
            packets: 0,
            granule: 0,
        }
    }

    /// Packets waiting for the next page.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Pages emitted so far.
    pub fn pages(&self) -> u32 {
        self.sequence
    }

    /// Whether `len` more bytes of packet still fit the current page.
    pub fn fits(&self, len: usize) -> bool {
        // A packet takes `len / 255` full segments and one final one.
        self.lacing.len() + len / 255 < MAX_SEGMENTS
    }

    /// Adds a whole packet to the current page; `granule` is the stream's
    /// granule position once this packet is decoded. The caller checks
    /// [`fits`](Self::fits) first and emits the page when it does not.
    pub fn push(&mut self, packet: &[u8], granule: i64) -> Result<(), PageError> {
        if packet.len() > MAX_PACKET || !self.fits(packet.len()) {
            return Err(PageError::PacketTooLarge(packet.len()));
        }
        // Lacing: one 255 per full 255-byte run, then the remainder (0–254);
        // a packet whose length is a multiple of 255 ends with a 0.
        self.lacing
            .extend(std::iter::repeat_n(255u8, packet.len() / 255));
        self.lacing.push((packet.len() % 255) as u8);
        self.body.extend_from_slice(packet);
        self.packets += 1;
        self.granule = granule;
        Ok(())
    }

    /// The finished page holding the packets pushed since the last one, with
    /// BOS on the stream's first page and EOS if `last`; resets for the next
    /// page. A page of no packets (possible only for an EOS-only page) has
    /// granule position -1, as RFC 3533 asks of pages where no packet ends.
    pub fn finish_page(&mut self, last: bool) -> Vec<u8> {
        let page = self.page(last);
        self.sequence += 1;
        self.lacing.clear();
        self.body.clear();
        self.packets = 0;
        page
    }

    /// The page the packets pushed so far would make, without finishing it:
    /// more packets may still join it. What a sync writes of the page being
    /// filled, where the finished page will later overwrite it.
    pub fn page(&self, last: bool) -> Vec<u8> {
        let mut flags = 0;
        if self.sequence == 0 {
            flags |= FLAG_BOS;
        }
        if last {
            flags |= FLAG_EOS;
        }
        let granule = if self.packets == 0 { -1 } else { self.granule };
        let mut page = Vec::with_capacity(HEADER_LEN + self.lacing.len() + self.body.len());
        page.extend_from_slice(b"OggS");
        page.push(0); // stream structure version
        page.push(flags);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&self.serial.to_le_bytes());
        page.extend_from_slice(&self.sequence.to_le_bytes());
        page.extend_from_slice(&[0; 4]); // CRC, filled below
        page.push(self.lacing.len() as u8); // at most MAX_SEGMENTS
        page.extend_from_slice(&self.lacing);
        page.extend_from_slice(&self.body);
        set_crc(&mut page);
        page
    }
}

/// Recomputes the CRC of a complete page in place (after the page was
/// patched).
pub fn set_crc(page: &mut [u8]) {
    if page.len() < HEADER_LEN {
        return;
    }
    page[CRC_OFFSET..CRC_OFFSET + 4].fill(0);
    let crc = crc32(page);
    page[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A page read back from a file (crash recovery): where it ends and the
/// header fields that say what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageView {
    /// Header flags ([`FLAG_BOS`], [`FLAG_EOS`], [`FLAG_CONTINUED`]).
    pub flags: u8,
    /// Granule position; -1 when no packet ends on the page.
    pub granule: i64,
    /// Page sequence number.
    pub sequence: u32,
    /// Length of the whole page in bytes.
    pub len: usize,
    /// Where the page body (the packet data) starts within the page.
    pub body_at: usize,
    /// Whether the page's last packet ends on it (last lacing value < 255,
    /// or no lacing at all).
    pub ends_packet: bool,
}

/// Reads the page at the start of `data` if it is whole and its CRC is
/// right; `None` for anything else (a torn write, zeros left by a crash,
/// not a page). Never panics.
pub fn read_page(data: &[u8]) -> Option<PageView> {
    let header = data.get(..HEADER_LEN)?;
    if &header[..4] != b"OggS" || header[4] != 0 {
        return None;
    }
    let segments = usize::from(header[26]);
    let lacing = data.get(HEADER_LEN..HEADER_LEN + segments)?;
    let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let len = HEADER_LEN + segments + body_len;
    let page = data.get(..len)?;
    let field = |at: usize| -> [u8; 4] { [page[at], page[at + 1], page[at + 2], page[at + 3]] };
    let stored = u32::from_le_bytes(field(CRC_OFFSET));
    let crc = crc32_update(
        crc32_update(crc32(&page[..CRC_OFFSET]), &[0; 4]),
        &page[CRC_OFFSET + 4..],
    );
    if crc != stored {
        return None;
    }
    let mut granule = [0u8; 8];
    granule.copy_from_slice(&page[6..14]);
    Some(PageView {
        flags: page[5],
        granule: i64::from_le_bytes(granule),
        sequence: u32::from_le_bytes(field(18)),
        len,
        body_at: HEADER_LEN + segments,
        ends_packet: lacing.last().is_none_or(|&l| l < 255),
    })
}

/// Samples at 48 kHz a decoder discards at the start (RFC 7845 §4.2): the
/// look-ahead of a libopus encoder (6.5 ms), what `opusenc` writes too. The
/// relay never sees the terminal's encoder, so it uses the reference value.
pub const PRE_SKIP: u16 = 312;

/// Sample rate the terminals captured at (the profile's 16 kHz), written as
/// the "input sample rate" of the identification header: decoders such as
/// `opusdec` play back at this rate by default.
pub const INPUT_SAMPLE_RATE: u32 = 16_000;

/// The identification header (RFC 7845 §5.1): version 1, one channel,
/// [`PRE_SKIP`], [`INPUT_SAMPLE_RATE`], no gain, channel mapping family 0.
pub fn opus_head() -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(1); // channel count: mono
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&INPUT_SAMPLE_RATE.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family 0: mono/stereo, no table
    head
}

/// Vendor string of the comment header.
pub const VENDOR: &str = "pttd";

/// The comment header (RFC 7845 §5.2): vendor [`VENDOR`] and `comments`, each
/// `KEY=value` in UTF-8.
pub fn opus_tags(comments: &[String]) -> Vec<u8> {
    let len = 8 + 4 + VENDOR.len() + 4 + comments.iter().map(|c| 4 + c.len()).sum::<usize>();
    let mut tags = Vec::with_capacity(len);
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    tags.extend_from_slice(VENDOR.as_bytes());
    tags.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for comment in comments {
        tags.extend_from_slice(&(comment.len() as u32).to_le_bytes());
        tags.extend_from_slice(comment.as_bytes());
    }
    tags
}

/// A packet that makes the decoder conceal `frames` lost frames of the
/// configuration of `toc` (RFC 7845 §4.1, "Repairing Gaps"): same mode,
/// bandwidth, frame size and channels, code 3 (constant bitrate), every frame
/// zero bytes long, which RFC 6716 §3.2.1 defines as a lost frame.
/// `frames` is 1 up to what fits 120 ms.
pub fn plc_packet(toc: u8, frames: u8) -> [u8; 2] {
    [toc | 0x03, frames & 0x3f]
}
