//! Is a recording complete? Its Ogg pages read back whole, in sequence, from
//! a beginning-of-stream page to an end-of-stream page that ends the file
//! (RFC 3533), and an independent reader, `opusinfo` of Debian's opus-tools,
//! accepts it without a complaint.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use ptt_recording::ogg::{self, FLAG_BOS, FLAG_EOS};

/// Checks that the Ogg file at `path` is whole and ends with its
/// end-of-stream page; returns how many pages it has.
pub(crate) fn check_ogg(path: &Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut at = 0;
    let mut pages = Vec::new();
    while at < bytes.len() {
        let Some(page) = ogg::read_page(&bytes[at..]) else {
            bail!(
                "{}: no whole page with a right CRC at byte {at} of {} (after {} pages)",
                path.display(),
                bytes.len(),
                pages.len()
            );
        };
        at += page.len;
        pages.push(page);
    }
    let (first, last) = match (pages.first(), pages.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => bail!("{} is empty", path.display()),
    };
    ensure!(first.flags & FLAG_BOS != 0, "first page without BOS");
    ensure!(
        last.flags & FLAG_EOS != 0,
        "{}: the last of {} pages has no end-of-stream flag: the stream was cut off",
        path.display(),
        pages.len()
    );
    for (n, page) in pages.iter().enumerate() {
        ensure!(
            page.sequence as usize == n,
            "page {n} has sequence {}",
            page.sequence
        );
        let eos = page.flags & FLAG_EOS != 0;
        ensure!(
            eos == (n + 1 == pages.len()),
            "end-of-stream flag on page {n}"
        );
    }
    Ok(pages.len())
}

/// The playback length `opusinfo` reports for the file, after checking it
/// reports no warning or error.
pub(crate) fn opusinfo_length(path: &Path) -> anyhow::Result<Duration> {
    let output = Command::new("opusinfo").arg(path).output().context(
        "running opusinfo: these tests need Debian's opus-tools (apt-get install opus-tools)",
    )?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(output.status.success(), "opusinfo failed:\n{report}");
    for complaint in ["WARNING", "ERROR", "Hole in data"] {
        ensure!(
            !report.contains(complaint),
            "opusinfo complains about {}:\n{report}",
            path.display()
        );
    }
    // "Playback length: 0m:01.993s"
    let length = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Playback length:"))
        .with_context(|| format!("no playback length in:\n{report}"))?;
    let (minutes, seconds) = length
        .trim()
        .trim_end_matches('s')
        .split_once("m:")
        .with_context(|| format!("playback length {length:?}"))?;
    let seconds = minutes.parse::<f64>()? * 60.0 + seconds.parse::<f64>()?;
    Ok(Duration::from_secs_f64(seconds))
}
