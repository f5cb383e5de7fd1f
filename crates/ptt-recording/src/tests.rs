use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ptt_proto::voice::{self, Kind, VoiceHeader};

use super::burst::{OpenRecording, Tags};
use super::ogg::{self, PageBuilder};
use super::retention::Limits;
use super::*;
use ptt_directory::{HashParams, hash_secret};

/// One page read back from a file, checked as a demuxer would.
#[derive(Debug)]
pub(super) struct Page {
    pub flags: u8,
    pub granule: i64,
    pub serial: u32,
    pub sequence: u32,
    pub lacing: Vec<u8>,
    pub packets: Vec<Vec<u8>>,
}

/// Splits `data` into pages, asserting capture pattern and CRC of each, and
/// rebuilding packets from the lacing values (no packet spans pages).
pub(super) fn pages(data: &[u8]) -> Vec<Page> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        assert_eq!(&rest[..4], b"OggS", "capture pattern at {at}");
        assert_eq!(rest[4], 0, "version");
        let segments = usize::from(rest[26]);
        let lacing = rest[27..27 + segments].to_vec();
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let len = 27 + segments + body_len;
        let mut page = rest[..len].to_vec();
        let stored = u32::from_le_bytes(page[22..26].try_into().unwrap());
        page[22..26].fill(0);
        assert_eq!(ogg::crc32(&page), stored, "CRC of the page at {at}");
        let mut packets = Vec::new();
        let mut body = &rest[27 + segments..len];
        let mut current = Vec::new();
        for &l in &lacing {
            current.extend_from_slice(&body[..usize::from(l)]);
            body = &body[usize::from(l)..];
            if l < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        assert!(current.is_empty(), "a packet continues past the page");
        out.push(Page {
            flags: rest[5],
            granule: i64::from_le_bytes(rest[6..14].try_into().unwrap()),
            serial: u32::from_le_bytes(rest[14..18].try_into().unwrap()),
            sequence: u32::from_le_bytes(rest[18..22].try_into().unwrap()),
            lacing,
            packets,
        });
        at += len;
    }
    out
}

/// The comments of an OpusTags packet.
pub(super) fn comments(tags: &[u8]) -> (String, Vec<String>) {
    assert_eq!(&tags[..8], b"OpusTags");
    let u32_at = |i: usize| u32::from_le_bytes(tags[i..i + 4].try_into().unwrap()) as usize;
    let vendor_len = u32_at(8);
    let vendor = String::from_utf8(tags[12..12 + vendor_len].to_vec()).unwrap();
    let mut at = 12 + vendor_len;
    let count = u32_at(at);
    at += 4;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32_at(at);
        out.push(String::from_utf8(tags[at + 4..at + 4 + len].to_vec()).unwrap());
        at += 4 + len;
    }
    (vendor, out)
}

/// TOC config 9: SILK wideband 20 ms, mono, code 0.
const TOC: u8 = 9 << 3;

/// A voice datagram whose 20 ms Opus packet carries `tag`.
pub(super) fn datagram(seq: u16, tag: u16) -> Bytes {
    let header = VoiceHeader {
        kind: Kind::Voice,
        flags: voice::Flags(0),
        group_id: 10,
        talker_id: 301,
        burst_id: 7,
        sequence: seq,
        timestamp_us: 0,
    };
    let mut packet = BytesMut::new();
    packet.put_u8(TOC);
    packet.put_u16(tag);
    packet.put_bytes(0x5a, 40);
    let mut out = BytesMut::new();
    voice::encode(&header, &packet, &mut out).unwrap();
    out.freeze()
}

pub(super) fn tags() -> Tags {
    Tags {
        talker: 301,
        talker_name: "Guard 301".to_owned(),
        group: 10,
        group_name: "Compound".to_owned(),
        burst: 7,
        started_at_ms: 1_700_000_000_000,
    }
}

/// Writes the frames of `seqs` (tagged with their own number) and finishes.
fn record(dir: &Path, seqs: impl IntoIterator<Item = u16>, started: Option<i64>) -> Vec<Page> {
    let temp = dir.join("burst.opus.part");
    let mut rec = OpenRecording::create(temp, 0x1234_5678, &tags()).unwrap();
    for seq in seqs {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    if let Some(ms) = started {
        rec.set_started(ms).unwrap();
    }
    let finished = rec.finish().unwrap().expect("frames were recorded");
    let data = std::fs::read(&finished.temp).unwrap();
    assert_eq!(
        finished.len,
        data.len() as u64,
        "the length the ledger gets"
    );
    std::fs::remove_file(finished.temp).unwrap();
    pages(&data)
}

pub(super) fn audio_packets(pages: &[Page]) -> Vec<Vec<u8>> {
    pages[2..].iter().flat_map(|p| p.packets.clone()).collect()
}

/// The tag of a test packet, `None` for a concealment packet.
fn tag(packet: &[u8]) -> Option<u16> {
    (packet[0] & 3 == 0).then(|| u16::from_be_bytes([packet[1], packet[2]]))
}

#[test]
fn crc_is_the_ogg_crc() {
    // The check value of CRC-32 with polynomial 0x04c11db7, init 0,
    // unreflected, no final xor.
    assert_eq!(ogg::crc32(b"123456789"), 0x89a1_897f);
    assert_eq!(ogg::crc32(b""), 0);
}

#[test]
fn identification_page_is_byte_for_byte_what_opusenc_writes() {
    // The first page of a mono 16 kHz file made by opusenc (opus-tools 0.2,
    // libopusenc 0.2.1), serial 0x6bceed95: header fields, BOS, lacing, CRC.
    const OPUSENC: [u8; 47] = [
        0x4f, 0x67, 0x67, 0x53, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x95,
        0xed, 0xce, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x11, 0x4b, 0xea, 0x08, 0x01, 0x13, 0x4f, 0x70,
        0x75, 0x73, 0x48, 0x65, 0x61, 0x64, 0x01, 0x01, 0x38, 0x01, 0x80, 0x3e, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ];
    let mut pages = PageBuilder::new(0x6bce_ed95);
    pages.push(&ogg::opus_head(), 0).unwrap();
    assert_eq!(pages.finish_page(false), OPUSENC);
}

#[test]
fn packets_of_255_bytes_and_more_are_laced_in_runs_of_255() {
    let mut builder = PageBuilder::new(1);
    for len in [0, 1, 254, 255, 510, 600] {
        builder.push(&vec![len as u8; len], 1).unwrap();
    }
    let page = builder.finish_page(true);
    let parsed = &pages(&page)[0];
    assert_eq!(
        parsed.lacing,
        [0, 1, 254, 255, 0, 255, 255, 0, 255, 255, 90]
    );
    let lens: Vec<usize> = parsed.packets.iter().map(Vec::len).collect();
    assert_eq!(lens, [0, 1, 254, 255, 510, 600]);
    assert_eq!(parsed.packets[5], vec![600usize as u8; 600]);
    assert_eq!(parsed.flags, ogg::FLAG_BOS | ogg::FLAG_EOS);

    // A page holds 255 lacing values: the largest packet fills it exactly.
    let mut full = PageBuilder::new(1);
    assert!(full.fits(ogg::MAX_PACKET));
    full.push(&vec![7; ogg::MAX_PACKET], 960).unwrap();
    assert!(!full.fits(0));
    assert_eq!(full.push(&[1], 960), Err(ogg::PageError::PacketTooLarge(1)));
    let page = full.finish_page(false);
    assert_eq!(pages(&page)[0].packets[0].len(), ogg::MAX_PACKET);
    assert_eq!(
        PageBuilder::new(1).push(&vec![0; ogg::MAX_PACKET + 1], 0),
        Err(ogg::PageError::PacketTooLarge(ogg::MAX_PACKET + 1))
    );
    // A page where no packet ends says so with granule -1.
    assert_eq!(pages(&full.finish_page(true))[0].granule, -1);
}

#[test]
fn a_burst_file_has_the_headers_granules_and_pages_of_rfc_7845() {
    let dir = tempfile::tempdir().unwrap();
    let pages = record(dir.path(), 0..120, Some(1_738_311_300_250));

    // Page 0: OpusHead alone, BOS, granule 0.
    assert_eq!(pages[0].flags, ogg::FLAG_BOS);
    assert_eq!(pages[0].packets, [ogg::opus_head()]);
    let head = &pages[0].packets[0];
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(head[8], 1, "version");
    assert_eq!(head[9], 1, "mono");
    assert_eq!(u16::from_le_bytes([head[10], head[11]]), ogg::PRE_SKIP);
    assert_eq!(
        u32::from_le_bytes(head[12..16].try_into().unwrap()),
        16_000,
        "input sample rate"
    );
    assert_eq!(head[18], 0, "mapping family");
    // Page 1: OpusTags alone, granule 0, STARTED set to the burst's start.
    assert_eq!((pages[1].flags, pages[1].granule), (0, 0));
    assert_eq!(pages[1].packets.len(), 1);
    let (vendor, tags) = comments(&pages[1].packets[0]);
    assert_eq!(vendor, "pttd");
    assert_eq!(
        tags,
        [
            "TALKER=301",
            "TALKER_NAME=Guard 301",
            "GROUP=10",
            "GROUP_NAME=Compound",
            "BURST=7",
            "STARTED=2025-01-31T08:15:00.250Z",
        ]
    );
    // Audio: 50 packets a page, granule = 48 kHz samples up to the page's
    // last packet, EOS on the last page only, sequence numbers in order.
    let audio: Vec<(usize, i64, u8)> = pages[2..]
        .iter()
        .map(|p| (p.packets.len(), p.granule, p.flags))
        .collect();
    assert_eq!(
        audio,
        [
            (50, 48_000, 0),
            (50, 96_000, 0),
            (20, 115_200, ogg::FLAG_EOS)
        ]
    );
    for (i, page) in pages.iter().enumerate() {
        assert_eq!(page.sequence, i as u32);
        assert_eq!(page.serial, 0x1234_5678);
    }
    let tags: Vec<Option<u16>> = audio_packets(&pages).iter().map(|p| tag(p)).collect();
    assert_eq!(tags, (0..120).map(Some).collect::<Vec<_>>());
}

#[test]
fn lost_frames_are_filled_with_concealment_so_time_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // 11..=14 and 30..=39 never arrive.
    let seqs = (0..=10).chain(15..30).chain(40..50);
    let pages = record(dir.path(), seqs, None);
    let packets = audio_packets(&pages);
    let last = pages.last().unwrap();
    assert_eq!(
        last.granule,
        50 * 960,
        "the recording lasts the whole burst"
    );
    let plc: Vec<&Vec<u8>> = packets.iter().filter(|p| tag(p).is_none()).collect();
    // 4 lost frames → one packet of 4; 10 → 6 + 4 (120 ms per packet at most).
    let counts: Vec<u8> = plc.iter().map(|p| p[1]).collect();
    assert_eq!(counts, [4, 6, 4]);
    for packet in plc {
        let info = ptt_proto::opus::parse(packet).expect("valid Opus");
        assert_eq!(info.toc.config(), 9, "same configuration as the speech");
        assert!(info.frame_lens().iter().all(|&l| l == 0), "lost frames");
    }
    let heard: Vec<u16> = packets.iter().filter_map(|p| tag(p)).collect();
    let sent: Vec<u16> = (0..=10).chain(15..30).chain(40..50).collect();
    assert_eq!(heard, sent);
}

#[test]
fn reordered_frames_are_put_back_late_and_duplicate_ones_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("r.opus.part");
    let mut rec = OpenRecording::create(temp, 1, &tags()).unwrap();
    // Within the window: 1 before 0, 4 before 3; a duplicate 2.
    for seq in [1, 0, 2, 2, 4, 3, 5, 6, 7, 8] {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    // 2 again, long after it was written: too late.
    rec.add(2, datagram(2, 99)).unwrap();
    assert_eq!(rec.skipped, 2);
    let path = rec.finish().unwrap().unwrap().temp;
    let pages = pages(&std::fs::read(path).unwrap());
    let heard: Vec<Option<u16>> = audio_packets(&pages).iter().map(|p| tag(p)).collect();
    assert_eq!(heard, (0..=8).map(Some).collect::<Vec<_>>());
    assert_eq!(pages.last().unwrap().granule, 9 * 960);
}

#[test]
fn sequence_numbers_wrap_and_wild_jumps_are_not_filled() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("w.opus.part");
    let mut rec = OpenRecording::create(temp, 1, &tags()).unwrap();
    for seq in [65_534, 65_535, 0, 1] {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    // A jump of 20 000 frames is a confused sender, not 400 s of loss.
    for seq in 20_000..20_004 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    let path = rec.finish().unwrap().unwrap().temp;
    let pages = pages(&std::fs::read(path).unwrap());
    assert_eq!(pages.last().unwrap().granule, 8 * 960);
    let heard: Vec<Option<u16>> = audio_packets(&pages).iter().map(|p| tag(p)).collect();
    let sent = [65_534, 65_535, 0, 1, 20_000, 20_001, 20_002, 20_003];
    assert_eq!(heard, sent.map(Some));
}

#[test]
fn started_is_kept_from_the_first_frame_when_the_burst_end_never_came() {
    let dir = tempfile::tempdir().unwrap();
    let pages = record(dir.path(), 0..3, None);
    let (_, tags) = comments(&pages[1].packets[0]);
    assert_eq!(tags[5], "STARTED=2023-11-14T22:13:20.000Z");
}

#[test]
fn a_recording_without_a_usable_frame_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("e.opus.part");
    let mut rec = OpenRecording::create(temp.clone(), 1, &tags()).unwrap();
    // A datagram cut short of its Opus packet: not playable.
    rec.add(0, datagram(0, 0).slice(..voice::HEADER_LEN))
        .unwrap();
    assert!(rec.finish().unwrap().is_none());
    assert!(
        !temp.exists(),
        "headers and an empty page are not a recording"
    );
}

#[test]
fn relative_paths_are_deterministic_and_resolve_only_inside() {
    assert_eq!(
        relative_path(10, 1_738_311_300_250, 7, 301),
        "2025-01-31/1738311300250-g10-b7-t301.opus"
    );
    let root = Path::new("/srv/rec");
    assert_eq!(
        resolve(root, "2025-01-31/1738311300250-g10-b7-t301.opus"),
        Some(root.join("2025-01-31/1738311300250-g10-b7-t301.opus"))
    );
    for bad in [
        "../etc/passwd.opus",
        "/etc/x.opus",
        "2025-01-31/../../x.opus",
        ".partial/x.opus",
        "2025-01-31/x.opus.part",
        "",
    ] {
        assert_eq!(resolve(root, bad), None, "{bad}");
    }
}

pub(super) fn directory() -> Arc<Directory> {
    let hash = hash_secret(b"x", HashParams::LIGHT).unwrap();
    let text = format!(
        "[[terminal]]\nid = 301\nname = \"Guard 301\"\nrole = \"guard\"\nsecret-hash = \"{hash}\"\n\n\
         [[group]]\nid = 10\nname = \"Compound\"\nkind = \"enterprise\"\nmembers = [{{ terminal = 301 }}]\n"
    );
    Arc::new(Directory::from_toml_str(&text, "test").unwrap())
}

pub(super) fn settings(dir: &Path, queue: usize) -> Settings {
    Settings {
        dir: dir.to_owned(),
        queue,
        limits: Limits::default(),
    }
}

#[test]
fn the_recorder_writes_a_named_file_after_the_burst_ends() {
    let root = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Counters::default());
    let recorder =
        Recorder::start(settings(root.path(), 256), directory(), metrics.clone()).unwrap();
    for seq in 0..20 {
        assert!(recorder.offer(10, 7, 301, seq, &datagram(seq, seq)));
    }
    let started = 1_738_311_300_250;
    let relative = recorder.finish(10, 7, 301, started, 20).unwrap();
    assert_eq!(relative, relative_path(10, started, 7, 301));
    // A tail frame after the end still lands.
    assert!(recorder.offer(10, 7, 301, 20, &datagram(20, 20)));
    let path = root.path().join(&relative);
    // The writer counts a recording once its name and folder are synced,
    // after the rename makes the file visible: wait for the count.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.written() == 0 {
        assert!(Instant::now() < deadline, "recording never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pages = pages(&std::fs::read(&path).unwrap());
    assert_eq!(pages.last().unwrap().granule, 21 * 960);
    assert_eq!(pages.last().unwrap().flags, ogg::FLAG_EOS);
    let (_, tags) = comments(&pages[1].packets[0]);
    assert!(
        tags.contains(&"TALKER_NAME=Guard 301".to_owned()),
        "{tags:?}"
    );
    assert!(tags.contains(&"GROUP_NAME=Compound".to_owned()), "{tags:?}");
    assert!(tags.contains(&"STARTED=2025-01-31T08:15:00.250Z".to_owned()));
    assert_eq!(metrics.written(), 1);
    assert_eq!(metrics.errors(), 0);
    let partial: Vec<_> = std::fs::read_dir(root.path().join(PARTIAL_DIR))
        .unwrap()
        .collect();
    assert!(partial.is_empty(), "the temporary file was renamed");
    // A burst without frames has no recording; after close, offers count as
    // drops.
    assert_eq!(recorder.finish(10, 8, 301, started, 0), None);
    recorder.close();
    assert!(!recorder.offer(10, 9, 301, 0, &datagram(0, 0)));
    assert_eq!(metrics.frames_dropped(), 1);
    assert_eq!(Recorder::disabled().finish(10, 7, 301, started, 20), None);
    assert!(Recorder::disabled().dir().is_none());
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Counters::default());
    let recorder = Recorder::start(settings(root.path(), 8), directory(), metrics.clone()).unwrap();
    let frame = datagram(0, 0);
    let started = Instant::now();
    let mut refused = 0u64;
    for seq in 0..10_000u16 {
        if !recorder.offer(10, 7, 301, seq, &frame) {
            refused += 1;
        }
    }
    let took = started.elapsed();
    // The writer drains every 20 ms; 10 000 offers take well under that,
    // so nearly all of them met a full queue of 8 and were dropped.
    assert!(refused > 0, "nothing was dropped");
    assert_eq!(metrics.frames_dropped(), refused);
    assert!(took < Duration::from_secs(1), "offers blocked: {took:?}");
    recorder.close();
}

#[test]
fn a_disk_error_is_counted_and_recording_goes_on_for_other_bursts() {
    let root = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Counters::default());
    let recorder =
        Recorder::start(settings(root.path(), 64), directory(), metrics.clone()).unwrap();
    // The partial folder becomes a file: creating recordings fails.
    let partial = root.path().join(PARTIAL_DIR);
    std::fs::remove_dir(&partial).unwrap();
    std::fs::write(&partial, b"in the way").unwrap();
    recorder.offer(10, 7, 301, 0, &datagram(0, 0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.errors() == 0 {
        assert!(Instant::now() < deadline, "the error was not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_file(&partial).unwrap();
    recorder.offer(10, 8, 301, 0, &datagram(0, 0));
    let relative = recorder.finish(10, 8, 301, 5_000, 1).unwrap();
    recorder.close();
    assert!(root.path().join(relative).exists());
    assert_eq!(metrics.errors(), 1);
    assert_eq!(metrics.written(), 1);
}

#[test]
fn a_file_name_says_which_burst_it_is() {
    let name = relative_path(10, 1_738_311_300_250, 7, 301);
    let file = name.rsplit('/').next().expect("a file name");
    assert_eq!(burst_of_file(file), Some((1_738_311_300_250, 10, 7, 301)));
    assert_eq!(
        burst_of_file(&format!("{file}.part")),
        Some((1_738_311_300_250, 10, 7, 301)),
        "half-written"
    );
    assert_eq!(burst_of_file("notes.opus"), None);
    assert_eq!(burst_of_file("12-g1-b2-tX.opus"), None);
}
