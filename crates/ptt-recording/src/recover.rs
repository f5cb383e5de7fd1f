//! Crash recovery: the temporary files a crash (or a kill) left in the
//! partial folder are finished at start, before any new recording opens.
//!
//! The writer appends whole pages and syncs only when a burst is closed, so
//! after a crash a temporary file is its header pages, some audio pages and
//! possibly a torn page or zeros at the end. Every page carries a CRC, so
//! the intact prefix is known exactly: the file is cut after its last
//! intact page, that page is marked end of stream, and the file is renamed
//! into its day folder like any finished recording. The audio up to the
//! crash is what an investigation after an incident needs most, so it is
//! kept rather than thrown away. A file without both header pages and at
//! least one intact audio page plays nothing and is deleted.
//!
//! The final name takes its start from the `STARTED` tag: the writer sets
//! it to the call log's start as soon as the burst ends, so a burst whose
//! row was written before the crash gets the name its row names; otherwise
//! the tag holds the first frame's time, as the temporary name does.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::ogg::{self, FLAG_EOS};
use super::{Key, PARTIAL_DIR, parse_file_name, relative_path, sync_dir, time};

/// Suffix of a temporary recording.
pub(super) const PART_SUFFIX: &str = ".opus.part";

/// What recovery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Temporary files finished and renamed into their day folders.
    pub finished: u64,
    /// Temporary files deleted because nothing in them could be played.
    pub deleted: u64,
    /// Files that could not be read, fixed, renamed or deleted (logged).
    pub errors: u64,
}

/// Finishes or deletes every `*.opus.part` in `root`'s partial folder. Call
/// before the writer starts: every such file is then an orphan.
pub fn orphans(root: &Path) -> Recovered {
    let mut done = Recovered::default();
    let Ok(entries) = std::fs::read_dir(root.join(PARTIAL_DIR)) else {
        return done;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.ends_with(PART_SUFFIX) {
            continue;
        }
        match recover(root, &path, &name) {
            Ok(Some(final_path)) => {
                tracing::info!(from = %path.display(), to = %final_path.display(), "recovered a recording left by a crash");
                done.finished += 1;
            }
            Ok(None) => done.deleted += 1,
            Err(error) => {
                tracing::error!(%error, file = %path.display(), "cannot recover a recording left by a crash");
                done.errors += 1;
            }
        }
    }
    done
}

/// Recovers one temporary file: `Some(final path)` if it was finished,
/// `None` if it was deleted.
fn recover(root: &Path, path: &Path, name: &str) -> io::Result<Option<PathBuf>> {
    let Some((first_ms, key)) = parse_file_name(name, PART_SUFFIX) else {
        return discard(path, "its name is not a recording's");
    };
    let data = std::fs::read(path)?;
    let Some(intact) = intact_pages(&data) else {
        return discard(path, "no intact audio page");
    };
    let started = started_tag(&data[intact.tags.clone()]).unwrap_or(first_ms);
    let final_path = root.join(relative_path(key.group, started, key.burst, key.talker));
    if final_path.exists() {
        // Renaming would replace a finished recording of the same burst.
        return discard(path, "a finished recording of the burst exists");
    }
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(intact.end as u64)?;
    if intact.last_flags & FLAG_EOS == 0 {
        let mut page = data[intact.last..intact.end].to_vec();
        page[5] |= FLAG_EOS;
        ogg::set_crc(&mut page);
        file.write_all_at(&page, intact.last as u64)?;
    }
    file.sync_all()?;
    drop(file);
    finalise(path, &final_path, key)?;
    Ok(Some(final_path))
}

fn discard(path: &Path, why: &str) -> io::Result<Option<PathBuf>> {
    tracing::warn!(file = %path.display(), why, "deleting a recording left by a crash");
    std::fs::remove_file(path)?;
    Ok(None)
}

/// Renames a synced recording into its day folder and syncs the folder, so
/// the name survives a crash too.
fn finalise(temp: &Path, final_path: &Path, key: Key) -> io::Result<()> {
    let Some(day) = final_path.parent() else {
        return Err(io::Error::other(format!("no day folder for {key:?}")));
    };
    std::fs::create_dir_all(day)?;
    std::fs::rename(temp, final_path)?;
    sync_dir(day)
}

/// The intact part of a temporary file.
#[derive(Debug)]
struct Intact {
    /// Byte range of the comment header's body (page 1).
    tags: std::ops::Range<usize>,
    /// Where the last intact page starts and ends, and its flags.
    last: usize,
    end: usize,
    last_flags: u8,
}

/// Walks the pages from the start while they are whole, have the right
/// CRC and follow in sequence; `None` unless both header pages and at least
/// one audio page ending a packet are among them.
fn intact_pages(data: &[u8]) -> Option<Intact> {
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
            1 if data[body.clone()].starts_with(b"OpusTags") => tags = Some(body),
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
    Some(Intact {
        tags: tags?,
        last,
        end,
        last_flags,
    })
}

/// The unix ms of the `STARTED=` comment of an OpusTags packet.
fn started_tag(tags: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"STARTED=";
    let at = tags
        .windows(KEY.len())
        .rposition(|w| w == KEY)
        .map(|at| at + KEY.len())?;
    let value = tags.get(at..at + time::RFC3339_MS_LEN)?;
    time::parse_rfc3339_ms(std::str::from_utf8(value).ok()?)
}
