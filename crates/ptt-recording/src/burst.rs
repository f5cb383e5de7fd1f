//! One recording being written: the Ogg Opus stream of one talk burst, from
//! its first frame until it is closed under its final name.
//!
//! Frames arrive as the relay forwarded them: usually in order, sometimes
//! reordered by the network, sometimes missing. A small reorder window puts
//! them back in sequence order; a frame older than what was already written
//! is left out. A gap in the sequence numbers is filled with packets that
//! make the decoder conceal the lost frames (RFC 7845 §4.1), so the granule
//! positions keep counting real time and the recording lasts as long as the
//! burst did. Ogg Opus cannot express a jump in granule position, so filling
//! is the only way to keep the timeline.
//!
//! What a crash may cost is bounded: every [`SYNC_EVERY`] of audio the
//! page being filled is written, as it is so far, where the finished page
//! will later overwrite it, and the file's data is synced; at the burst's
//! end ([`OpenRecording::flush`]) the frames held for reordering are written
//! and synced too. A `kill -9` or a power cut therefore loses at most the
//! audio pushed since the last sync (under [`SYNC_EVERY`]) and the frames
//! still held for reordering (60 ms) of a burst in flight, and nothing the
//! writer had of a burst whose end it was told. Pages keep their one-second
//! layout: only the last page of the file is ever rewritten, always at the
//! same place and only ever longer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use ptt_proto::opus;
use ptt_proto::voice;

use super::ogg::{self, PageBuilder};
use super::time;

/// Frames held back to restore order: 60 ms of 20 ms frames.
const REORDER_DEPTH: usize = 3;

/// Audio packets per page: one second of 20 ms frames, a common seek
/// granularity that keeps pages around 3 kB.
const PACKETS_PER_PAGE: usize = 50;

/// How much audio a recording being written holds at most beyond what is
/// synced to disk (besides the frames held for reordering): the most of a
/// burst in flight that a crash loses. Each sync costs one `fdatasync` per
/// recording, five a second for each burst being recorded.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);

/// [`SYNC_EVERY`] in 48 kHz samples, the unit of granule positions.
const SYNC_EVERY_SAMPLES: i64 = SYNC_EVERY.as_millis() as i64 * 48;

/// Longest gap (in lost frames) filled with concealment: 5 s. A longer jump
/// of the sequence number is not loss but a confused sender; it is not
/// filled, so a bogus sequence number cannot make the relay write minutes of
/// concealment.
const MAX_FILLED_FRAMES: i64 = 250;

/// Longest value of a name tag, in bytes: the comment header must fit one
/// page.
const MAX_TAG_VALUE: usize = 512;

/// What the comment header says about a burst.
#[derive(Debug, Clone)]
pub(super) struct Tags {
    /// Talker's terminal id.
    pub talker: u32,
    /// Talker's display name.
    pub talker_name: String,
    /// Group id.
    pub group: u32,
    /// Group display name.
    pub group_name: String,
    /// Burst id.
    pub burst: u32,
    /// Unix ms written as `STARTED` when the file is opened; replaced by the
    /// burst's logged start when the burst finishes.
    pub started_at_ms: i64,
}

impl Tags {
    fn comments(&self) -> Vec<String> {
        vec![
            format!("TALKER={}", self.talker),
            format!("TALKER_NAME={}", clip(&self.talker_name)),
            format!("GROUP={}", self.group),
            format!("GROUP_NAME={}", clip(&self.group_name)),
            format!("BURST={}", self.burst),
            // Last, fixed width: patched in place when the burst finishes.
            format!("STARTED={}", time::rfc3339_ms(self.started_at_ms)),
        ]
    }
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(MAX_TAG_VALUE);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A recording whose file is open under its temporary name.
#[derive(Debug)]
pub(super) struct OpenRecording {
    file: File,
    temp: PathBuf,
    pages: PageBuilder,
    /// The comment header page as written and where, for patching `STARTED`.
    tags_page: Vec<u8>,
    tags_offset: u64,
    /// Granule position after the last packet pushed (48 kHz samples).
    granule: i64,
    /// Granule position up to which the file is synced.
    synced_granule: i64,
    /// Frames waiting to be written, by sequence position.
    waiting: BTreeMap<i64, Bytes>,
    /// The last frame accepted: (sequence number, its position), so later
    /// sequence numbers map to positions across wrap-around.
    anchor: Option<(u16, i64)>,
    /// Position of the next frame to write; `None` before the first.
    next: Option<i64>,
    /// TOC byte and duration (48 kHz samples) of the last packet written:
    /// what concealment packets for a gap imitate.
    last: Option<(u8, u32)>,
    /// Bytes of the finished pages written so far: where the page being
    /// filled goes.
    len: u64,
    /// Unix ms the `STARTED` tag says (and the final name gets).
    started_at_ms: i64,
    /// Frames filled with concealment, frames left out (late, duplicate,
    /// not Opus).
    pub(super) concealed: u64,
    pub(super) skipped: u64,
}

impl OpenRecording {
    /// Creates `temp` and writes the two header pages.
    pub(super) fn create(temp: PathBuf, serial: u32, tags: &Tags) -> io::Result<Self> {
        let invalid = |e: ogg::PageError| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut file = File::create_new(&temp)?;
        let mut pages = PageBuilder::new(serial);
        // RFC 7845 §3: the identification header alone on the first page,
        // the comment header ending the second; audio starts on a new page.
        // Header packets have granule position 0.
        pages.push(&ogg::opus_head(), 0).map_err(invalid)?;
        let head_page = pages.finish_page(false);
        file.write_all(&head_page)?;
        pages
            .push(&ogg::opus_tags(&tags.comments()), 0)
            .map_err(invalid)?;
        let tags_page = pages.finish_page(false);
        file.write_all(&tags_page)?;
        Ok(Self {
            file,
            temp,
            pages,
            tags_offset: head_page.len() as u64,
            len: (head_page.len() + tags_page.len()) as u64,
            started_at_ms: tags.started_at_ms,
            tags_page,
            granule: 0,
            synced_granule: 0,
            waiting: BTreeMap::new(),
            anchor: None,
            next: None,
            last: None,
            concealed: 0,
            skipped: 0,
        })
    }

    /// The temporary file.
    pub(super) fn temp(&self) -> &Path {
        &self.temp
    }

    /// Sets `STARTED` to `started_at_ms` (the call log's start of the burst)
    /// in place, as soon as the burst's end says it, so that a recording
    /// recovered after a crash gets the name its call-log row names. Not
    /// synced: [`Self::flush`] and [`Self::finish`] sync.
    pub(super) fn set_started(&mut self, started_at_ms: i64) -> io::Result<()> {
        let value = time::rfc3339_ms(started_at_ms);
        let len = self.tags_page.len();
        self.tags_page[len - time::RFC3339_MS_LEN..].copy_from_slice(value.as_bytes());
        ogg::set_crc(&mut self.tags_page);
        self.file.write_all_at(&self.tags_page, self.tags_offset)?;
        self.started_at_ms = started_at_ms;
        Ok(())
    }

    /// Takes one forwarded datagram (header and Opus packet) with its
    /// sequence number; writes whatever leaves the reorder window.
    pub(super) fn add(&mut self, seq: u16, datagram: Bytes) -> io::Result<()> {
        let position = match self.anchor {
            None => 0,
            Some((anchor_seq, anchor_pos)) => {
                anchor_pos + i64::from(voice::seq_cmp(seq, anchor_seq))
            }
        };
        if self.next.is_some_and(|next| position < next) || self.waiting.contains_key(&position) {
            self.skipped += 1; // late or duplicate
            return Ok(());
        }
        self.anchor = Some((seq, position));
        self.waiting.insert(position, datagram);
        while self.waiting.len() > REORDER_DEPTH {
            self.write_first()?;
        }
        Ok(())
    }

    /// Writes the earliest waiting frame, after concealment for any frames
    /// missing before it.
    fn write_first(&mut self) -> io::Result<()> {
        let Some((position, datagram)) = self.waiting.pop_first() else {
            return Ok(());
        };
        let Some(packet) = datagram.get(voice::HEADER_LEN..) else {
            self.skipped += 1;
            return Ok(());
        };
        let Ok(info) = opus::parse(packet) else {
            // The hot path validated it; never trust that twice.
            self.skipped += 1;
            return Ok(());
        };
        if let (Some(next), Some((toc, samples))) = (self.next, self.last) {
            let lost = position - next;
            if (1..=MAX_FILLED_FRAMES).contains(&lost) {
                self.conceal(toc, u64::from(samples) * lost as u64)?;
                self.concealed += lost as u64;
            }
        }
        self.push(packet, info.samples_48k())?;
        self.last = Some((info.toc.byte(), info.samples_48k()));
        self.next = Some(position + 1);
        Ok(())
    }

    /// Writes concealment packets covering `samples` (48 kHz) in frames of
    /// the configuration of `toc`.
    fn conceal(&mut self, toc: u8, mut samples: u64) -> io::Result<()> {
        let frame = u64::from(opus::Toc::new(toc).frame_samples_48k());
        let per_packet = u64::from(opus::MAX_PACKET_SAMPLES_48K) / frame;
        while samples >= frame {
            let frames = (samples / frame).min(per_packet);
            let packet = ogg::plc_packet(toc & !0x03, frames as u8);
            self.push(&packet, (frames * frame) as u32)?;
            samples -= frames * frame;
        }
        Ok(())
    }

    /// Appends one audio packet, first writing the page that is full; syncs
    /// once [`SYNC_EVERY`] of audio was pushed since the last sync.
    fn push(&mut self, packet: &[u8], samples: u32) -> io::Result<()> {
        if self.pages.packets() >= PACKETS_PER_PAGE || !self.pages.fits(packet.len()) {
            let page = self.pages.finish_page(false);
            self.write_page(&page)?;
        }
        self.granule += i64::from(samples);
        self.pages
            .push(packet, self.granule)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if self.granule - self.synced_granule >= SYNC_EVERY_SAMPLES {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes a finished page after the others.
    fn write_page(&mut self, page: &[u8]) -> io::Result<()> {
        self.file.write_all_at(page, self.len)?;
        self.len += page.len() as u64;
        Ok(())
    }

    /// Puts what was pushed on disk: the page being filled is written as it
    /// is so far (a valid page, its granule position that of its last
    /// packet) where the finished page will overwrite it, then the file's
    /// data is synced. Crash recovery finds it intact.
    fn sync(&mut self) -> io::Result<()> {
        if self.pages.packets() > 0 {
            let page = self.pages.page(false);
            self.file.write_all_at(&page, self.len)?;
        }
        self.file.sync_data()?;
        self.synced_granule = self.granule;
        Ok(())
    }

    /// At the burst's end: writes the frames held for reordering and syncs,
    /// so that all the audio the writer had of the burst survives a crash.
    /// Tail frames that come later are still appended; one older than a
    /// frame written here is left out as late.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        while !self.waiting.is_empty() {
            self.write_first()?;
        }
        self.sync()
    }

    /// Writes the waiting frames and the last page (EOS) and syncs the file
    /// to disk; the file keeps its temporary name and the caller renames it.
    /// A recording without a single usable frame would be headers and an
    /// empty page that plays nothing: its file is deleted and the answer is
    /// `None`. On an error the file is left for the caller to delete.
    pub(super) fn finish(mut self) -> io::Result<Option<Finished>> {
        while !self.waiting.is_empty() {
            self.write_first()?;
        }
        if self.granule == 0 {
            drop(self.file);
            std::fs::remove_file(&self.temp)?;
            return Ok(None);
        }
        let page = self.pages.finish_page(true);
        self.write_page(&page)?;
        self.file.sync_data()?;
        Ok(Some(Finished {
            temp: self.temp,
            len: self.len,
            started_at_ms: self.started_at_ms,
        }))
    }
}

/// A recording written to the end and synced, still under its temporary
/// name.
#[derive(Debug)]
pub(super) struct Finished {
    /// The temporary file.
    pub temp: PathBuf,
    /// Its size in bytes, for the retention ledger.
    pub len: u64,
    /// What its `STARTED` tag says: the start its final name gets.
    pub started_at_ms: i64,
}
