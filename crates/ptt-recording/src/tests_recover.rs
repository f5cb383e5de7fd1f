//! Crash recovery and a recording thread that dies.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::burst::OpenRecording;
use super::tests::{audio_packets, comments, datagram, directory, pages, settings, tags};
use super::*;

/// Leaves what a crash leaves: a temporary file written up to its last
/// sync (the frames pushed since and those held for reordering are lost),
/// named as the writer names it.
fn crashed(root: &Path, burst: u32, frames: u16, started: Option<i64>) -> PathBuf {
    let temp = root
        .join(PARTIAL_DIR)
        .join(format!("1700000000000-g10-b{burst}-t301.opus.part"));
    std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags()).unwrap();
    for seq in 0..frames {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    if let Some(ms) = started {
        rec.set_started(ms).unwrap();
    }
    drop(rec);
    temp
}

#[test]
fn a_recording_cut_by_a_crash_is_finished_at_start_up_to_its_last_intact_page() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // 120 frames: 117 pushed (3 held for reordering), synced every 10:
    // two full pages of 50 and the page being filled as it was at 110 are
    // on disk, the rest in memory. The burst had ended (STARTED set from
    // the call log) before the crash.
    let started = 1_738_311_300_250;
    let cut = crashed(r, 7, 120, Some(started));
    // A torn page behind the intact ones.
    let mut file = std::fs::OpenOptions::new().append(true).open(&cut).unwrap();
    file.write_all(b"OggS\0\0\x01\x02\x03 torn").unwrap();
    drop(file);
    // Nothing but headers: nothing to play.
    let empty = crashed(r, 8, 2, None);
    let stranger = r.join(PARTIAL_DIR).join("notes.txt");
    std::fs::write(&stranger, b"not ours").unwrap();

    let metrics = Arc::new(Counters::default());
    let recorder = Recorder::start(settings(r, 16), directory(), metrics.clone()).unwrap();
    recorder.close();

    let path = r.join(relative_path(10, started, 7, 301));
    let pages = pages(&std::fs::read(&path).expect("renamed to the call log's name"));
    assert_eq!(pages.len(), 5, "headers and the three intact audio pages");
    let last = pages.last().unwrap();
    assert_eq!((last.flags, last.granule), (ogg::FLAG_EOS, 110 * 960));
    let heard: Vec<u16> = audio_packets(&pages)
        .iter()
        .map(|p| u16::from_be_bytes([p[1], p[2]]))
        .collect();
    assert_eq!(heard, (0..110).collect::<Vec<_>>());
    let (_, tags) = comments(&pages[1].packets[0]);
    assert_eq!(tags[5], "STARTED=2025-01-31T08:15:00.250Z");
    assert!(!cut.exists() && !empty.exists());
    assert!(stranger.exists(), "only temporary recordings are touched");
    assert_eq!(metrics.errors(), 0);
}

#[test]
fn a_closed_part_is_renamed_as_it_is_and_a_misnamed_one_deleted() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // Closed (EOS written, synced) without its burst end, as the writer did
    // before: named from the first frame, which the tag holds.
    let temp = r.join(PARTIAL_DIR).join("5-g10-b7-t301.opus.part");
    std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags()).unwrap();
    for seq in 0..10 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    let finished = rec.finish().unwrap().unwrap();
    let bytes = std::fs::read(&finished.temp).unwrap();
    let misnamed = r.join(PARTIAL_DIR).join("x-g10.opus.part");
    std::fs::copy(&temp, &misnamed).unwrap();

    let done = recover::orphans(r);
    assert_eq!((done.finished, done.deleted, done.errors), (1, 1, 0));
    let path = r.join(relative_path(10, tags().started_at_ms, 7, 301));
    assert_eq!(std::fs::read(path).unwrap(), bytes, "unchanged");
    assert!(!misnamed.exists());
    assert_eq!(recover::orphans(r), recover::Recovered::default());
}

#[test]
fn a_recording_thread_that_panics_is_logged_and_counted() {
    let metrics = Counters::default();
    supervised("test", &metrics, || {});
    assert_eq!(metrics.errors(), 0);
    supervised("test", &metrics, || panic!("disk on fire"));
    assert_eq!(metrics.errors(), 1);
}
