//! What a crash left of one temporary recording: its intact prefix of pages,
//! found by their CRCs and sequence numbers, and the repair that makes that
//! prefix a finished file (cut after the last intact page, that page marked
//! end of stream, `STARTED` set to the name the file gets).

use std::fs::OpenOptions;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::ogg::{self, FLAG_EOS};
use super::time;

/// The intact part of a temporary file.
#[derive(Debug)]
pub(super) struct Intact {
    /// Byte range of the comment header's page (page 1), and of its body.
    tags_page: Range<usize>,
    tags: Range<usize>,
    /// Where the last intact page starts and ends, and its flags.
    last: usize,
    end: usize,
    last_flags: u8,
}

impl Intact {
    /// The unix ms of the file's `STARTED` comment.
    pub(super) fn started(&self, data: &[u8]) -> Option<i64> {
        started_at(&data[self.tags.clone()]).and_then(|at| {
            let value =
                data.get(self.tags.start + at..self.tags.start + at + time::RFC3339_MS_LEN)?;
            time::parse_rfc3339_ms(std::str::from_utf8(value).ok()?)
        })
    }
}

/// Walks the pages from the start while they are whole, have the right
/// CRC and follow in sequence; `None` unless both header pages and at least
/// one audio page ending a packet are among them: a file without audio plays
/// nothing. One intact audio page is enough, however short.
pub(super) fn intact_pages(data: &[u8]) -> Option<Intact> {
    let mut at = 0;
    let mut tags = None;
    let mut audio_end = None;
    let mut sequence = 0u32;
    while let Some(page) = data.get(at..).and_then(ogg::read_page) {
        if page.sequence != sequence || page.flags & ogg::FLAG_CONTINUED != 0 {
            break;
        }
        let body = at + page.body_at..at + page.len;
        match sequence {
            0 if data[body.clone()].starts_with(b"OpusHead") => {}
            1 if data[body.clone()].starts_with(b"OpusTags") => {
                tags = Some((at..at + page.len, body));
            }
            0 | 1 => return None,
            // Audio: the writer never splits a packet, so every audio page
            // ends one and has a granule position of its last packet.
            _ if page.ends_packet && page.granule > 0 => {
                audio_end = Some((at, at + page.len, page.flags));
            }
            _ => break,
        }
        at += page.len;
        sequence += 1;
        if page.flags & FLAG_EOS != 0 {
            break;
        }
    }
    let (last, end, last_flags) = audio_end?;
    let (tags_page, tags) = tags?;
    Some(Intact {
        tags_page,
        tags,
        last,
        end,
        last_flags,
    })
}

/// Makes the intact prefix of the file at `path` (whose bytes are `data`)
/// a finished recording: cut after the last intact page, that page marked
/// end of stream, `STARTED` set to `started_at_ms` if it says otherwise,
/// synced.
pub(super) fn repair(
    path: &Path,
    data: &[u8],
    intact: &Intact,
    started_at_ms: i64,
) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(intact.end as u64)?;
    if intact.last_flags & FLAG_EOS == 0 {
        let mut page = data[intact.last..intact.end].to_vec();
        page[5] |= FLAG_EOS;
        ogg::set_crc(&mut page);
        file.write_all_at(&page, intact.last as u64)?;
    }
    if intact.started(data) != Some(started_at_ms)
        && let Some(at) = started_at(&data[intact.tags.clone()])
    {
        let mut page = data[intact.tags_page.clone()].to_vec();
        let value = intact.tags.start - intact.tags_page.start + at;
        if let Some(slot) = page.get_mut(value..value + time::RFC3339_MS_LEN) {
            slot.copy_from_slice(time::rfc3339_ms(started_at_ms).as_bytes());
            ogg::set_crc(&mut page);
            file.write_all_at(&page, intact.tags_page.start as u64)?;
        }
    }
    file.sync_all()
}

/// Where the value of the (last) `STARTED=` comment starts in an OpusTags
/// packet.
fn started_at(tags: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"STARTED=";
    let at = tags
        .windows(KEY.len())
        .rposition(|w| w == KEY)
        .map(|at| at + KEY.len())?;
    (at + time::RFC3339_MS_LEN <= tags.len()).then_some(at)
}
