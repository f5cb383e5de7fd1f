//! The sync window: what a crash leaves of a recording being written, and
//! what syncing costs the writer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::burst::OpenRecording;
use super::tests::{audio_packets, datagram, directory, pages, settings, tags};
use super::*;

/// What a `kill -9` leaves of the recording being written at `temp`: its
/// bytes as they are now, copied to a temporary name in `root`'s partial
/// folder while the writer still holds the file open.
fn killed_copy(temp: &Path, root: &Path) -> PathBuf {
    let copy = root
        .join(PARTIAL_DIR)
        .join("1700000000000-g10-b7-t301.opus.part");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(temp, &copy).unwrap();
    copy
}

/// The frames (by their tag) a recovered recording plays.
fn heard(path: &Path) -> Vec<u16> {
    audio_packets(&pages(&std::fs::read(path).unwrap()))
        .iter()
        .map(|p| u16::from_be_bytes([p[1], p[2]]))
        .collect()
}

#[test]
fn a_crash_loses_at_most_the_audio_since_the_last_sync() {
    let scratch = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let temp = scratch.path().join("open.opus.part");
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags()).unwrap();
    // 10 frames of 20 ms are one sync window.
    assert_eq!(SYNC_EVERY, Duration::from_millis(200));
    // 37 frames: 34 pushed (3 held for reordering), synced at 10, 20, 30.
    for seq in 0..37 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    killed_copy(&temp, root.path());
    let done = recover::orphans(root.path());
    assert_eq!((done.finished, done.deleted, done.errors), (1, 0, 0));
    let path = root
        .path()
        .join(relative_path(10, tags().started_at_ms, 7, 301));
    let kept = heard(&path);
    assert_eq!(kept, (0..30).collect::<Vec<_>>(), "up to the last sync");
    // Lost: the 4 frames pushed since the sync and the 3 held back — under
    // one sync window and the reorder window.
    let lost_ms = (37 - kept.len() as u64) * 20;
    assert!(
        lost_ms <= SYNC_EVERY.as_millis() as u64 + 60,
        "{lost_ms} ms lost"
    );
    drop(rec);
}

#[test]
fn a_crash_before_the_first_sync_leaves_nothing_to_play_and_the_file_goes() {
    let scratch = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let temp = scratch.path().join("open.opus.part");
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags()).unwrap();
    // 12 frames: 9 pushed, less than one sync window: only the headers are
    // on disk.
    for seq in 0..12 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    let copy = killed_copy(&temp, root.path());
    let done = recover::orphans(root.path());
    assert_eq!((done.finished, done.deleted), (0, 1));
    assert!(!copy.exists());
    drop(rec);
}

#[test]
fn at_the_burst_end_every_frame_the_writer_has_is_synced() {
    let scratch = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let temp = scratch.path().join("open.opus.part");
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags()).unwrap();
    // A short burst: 4 frames, less than a sync window, one of them held
    // for reordering; its end came.
    for seq in 0..4 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    rec.set_started(1_738_311_300_250).unwrap();
    rec.flush().unwrap();
    killed_copy(&temp, root.path());
    // A tail frame after the end is still appended, in order.
    rec.add(4, datagram(4, 4)).unwrap();
    let done = recover::orphans(root.path());
    assert_eq!(done.finished, 1);
    let path = root
        .path()
        .join(relative_path(10, 1_738_311_300_250, 7, 301));
    assert_eq!(heard(&path), [0, 1, 2, 3], "all of the burst");
    let finished = rec.finish().unwrap().unwrap();
    let whole = pages(&std::fs::read(finished.temp).unwrap());
    assert_eq!(whole.last().unwrap().granule, 5 * 960);
    assert_eq!(whole.last().unwrap().flags, ogg::FLAG_EOS);
}

#[test]
fn the_page_being_filled_is_rewritten_in_place_so_the_finished_file_keeps_its_pages() {
    let scratch = tempfile::tempdir().unwrap();
    let temp = scratch.path().join("open.opus.part");
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags()).unwrap();
    for seq in 0..75 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    let finished = rec.finish().unwrap().unwrap();
    let data = std::fs::read(&finished.temp).unwrap();
    assert_eq!(finished.len, data.len() as u64, "no stale bytes behind");
    let audio: Vec<usize> = pages(&data)[2..].iter().map(|p| p.packets.len()).collect();
    assert_eq!(audio, [50, 25], "pages of a second, however often synced");
}

/// Frames per second the writer thread sustains: `bursts` recordings
/// written at once, `frames` each, every frame queued before the writer
/// could take it, timed until every file is closed. A measurement, not a
/// check: run with `cargo test -p ptt-recording --release -- --ignored
/// --nocapture writer_throughput`.
#[test]
#[ignore = "a measurement; prints frames/s"]
fn writer_throughput() {
    for bursts in [1u32, 10, 50] {
        let frames = 1_500u16;
        let root = tempfile::tempdir().unwrap();
        let total = usize::from(frames) * bursts as usize;
        let metrics = Arc::new(Counters::default());
        let recorder =
            Recorder::start(settings(root.path(), total), directory(), metrics.clone()).unwrap();
        let packets: Vec<_> = (0..frames).map(|seq| datagram(seq, seq)).collect();
        let start = Instant::now();
        for (seq, packet) in (0..frames).zip(&packets) {
            for burst in 0..bursts {
                assert!(recorder.offer(10, burst + 1, 301, seq, packet));
            }
        }
        recorder.close();
        let took = start.elapsed();
        assert_eq!(metrics.frames_dropped(), 0);
        println!(
            "{bursts} bursts x {frames} frames: {:.0} frames/s ({took:?})",
            total as f64 / took.as_secs_f64()
        );
    }
}

#[test]
fn once_the_recorder_confirms_a_burst_end_its_audio_is_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let recorder =
        Recorder::start(settings(r, 64), directory(), Arc::new(Counters::default())).unwrap();
    // Four frames: less than a sync window, one held for reordering.
    for seq in 0..4 {
        assert!(recorder.offer(10, 7, 301, seq, &datagram(seq, seq)));
    }
    let started = 1_738_311_300_250;
    recorder.finish(10, 7, 301, started, 4).unwrap();
    assert!(recorder.wait_for_burst_ends());
    // The file is still open (closed after the tail grace): what a kill
    // now leaves of it is the whole burst.
    let temp = std::fs::read_dir(r.join(PARTIAL_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".opus.part"))
        .expect("still being written");
    let crash = tempfile::tempdir().unwrap();
    killed_copy(&temp, crash.path());
    recorder.close();
    recover::orphans(crash.path());
    let path = crash.path().join(relative_path(10, started, 7, 301));
    assert_eq!(heard(&path), [0, 1, 2, 3]);
    assert!(Recorder::disabled().wait_for_burst_ends());
}
