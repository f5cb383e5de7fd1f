//! Validates arbitrary bytes as an Opus packet and checks the invariants of
//! what it reports: 1–48 frames, at most 120 ms, frame lengths and padding
//! that fit in the packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptt_proto::opus;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = opus::parse(data) {
        assert!((1..=48).contains(&info.frame_count));
        assert!(info.duration_us() <= 120_000);
        let frames: usize = info.frame_lens().iter().map(|&l| usize::from(l)).sum();
        assert!(
            info.frame_lens()
                .iter()
                .all(|&l| usize::from(l) <= opus::MAX_FRAME_LEN)
        );
        assert!(frames + info.padding < data.len());
    }
});
