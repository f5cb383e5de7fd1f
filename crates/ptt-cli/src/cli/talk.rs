//! `ptt talk`: press, send audio in real time, release.
//!
//! The audio (a WAV file or generated speech) is encoded up front, then
//! pushed one 20 ms frame per tick from the moment of the press: the client
//! library holds the frames until the grant, so nothing is clipped, and the
//! access time (press to grant) is what a user would wait.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use ptt_client::codec::{Backend, CodecConfig, FRAME_DURATION, FRAME_SAMPLES, MAX_PACKET_LEN};
use ptt_client::codec::{SAMPLE_RATE, signal};
use ptt_client::{Client, TalkEnd, TalkError};
use ptt_proto::pb;

use super::args::ConnArgs;

/// Options of `ptt talk`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["wav", "tone"])))]
pub struct TalkArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The group to talk in.
    #[arg(long, value_name = "G")]
    pub group: u32,
    /// Send this WAV file (best: 16 kHz mono 16-bit PCM; other rates,
    /// channel counts and sample formats are converted).
    #[arg(long, value_name = "FILE")]
    pub wav: Option<PathBuf>,
    /// Send this many seconds of synthetic speech instead of a file.
    #[arg(long, value_name = "SECONDS")]
    pub tone: Option<f32>,
    /// Priority of the floor request (up to what the directory allows).
    #[arg(long, value_enum, default_value_t = TalkPriority::Normal)]
    pub priority: TalkPriority,
    /// Make it an emergency call: pre-empts the holder and declares an
    /// emergency in the group.
    #[arg(long)]
    pub emergency: bool,
}

/// Priorities a user may ask for (emergency has its own flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TalkPriority {
    /// Ordinary talk.
    Normal,
    /// Supervisors, patrol leaders.
    Elevated,
    /// Control-room dispatchers.
    Dispatcher,
}

impl From<TalkPriority> for pb::Priority {
    fn from(p: TalkPriority) -> Self {
        match p {
            TalkPriority::Normal => pb::Priority::Normal,
            TalkPriority::Elevated => pb::Priority::Elevated,
            TalkPriority::Dispatcher => pb::Priority::Dispatcher,
        }
    }
}

/// What one talk did.
#[derive(Debug, Clone)]
pub struct TalkReport {
    /// Press to grant; `None` if the floor was never granted.
    pub access_time: Option<Duration>,
    /// Frames the relay was sent.
    pub frames_sent: u64,
    /// Frames encoded from the audio.
    pub frames_encoded: usize,
    /// Frames dropped (buffer full while queued, send refused).
    pub frames_dropped: u64,
    /// How the talk ended.
    pub end: TalkEnd,
}

/// Reads a WAV file as 16 kHz mono 16-bit PCM, converting other formats:
/// channels are averaged, integer and float samples scaled to 16 bits, and
/// other rates resampled (box-filtered when downsampling, then linearly
/// interpolated: fine for speech, not for music).
pub fn read_wav(path: &Path) -> anyhow::Result<Vec<i16>> {
    let shown = path.display();
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("{shown}: not a WAV file"))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 || spec.sample_rate == 0 {
        bail!("{shown}: no channels or a sample rate of 0");
    }
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .with_context(|| format!("{shown}: unreadable samples"))?,
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
                .with_context(|| format!("{shown}: unreadable samples"))?
        }
        (format, bits) => bail!(
            "{shown}: {bits}-bit {format:?} samples are not supported; give 16 kHz mono 16-bit \
             PCM (e.g. `sox in.wav -r 16000 -c 1 -b 16 out.wav`)"
        ),
    };
    let mono: Vec<f32> = samples
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    let resampled = resample(&mono, spec.sample_rate, SAMPLE_RATE);
    if spec.sample_rate != SAMPLE_RATE || channels != 1 || spec.bits_per_sample != 16 {
        tracing::info!(
            rate = spec.sample_rate,
            channels,
            bits = spec.bits_per_sample,
            "converted to 16 kHz mono 16-bit"
        );
    }
    Ok(resampled
        .into_iter()
        .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// Resamples `input` from `from` Hz to `to` Hz: a moving average over one
/// output period when downsampling (a crude anti-alias filter), then linear
/// interpolation.
#[must_use]
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let ratio = f64::from(from) / f64::from(to);
    let smoothed: Vec<f32> = if ratio > 1.0 {
        let width = ratio.round().max(1.0) as usize;
        let mut sum = 0.0f32;
        let mut out = Vec::with_capacity(input.len());
        for (i, &x) in input.iter().enumerate() {
            sum += x;
            if i >= width {
                sum -= input[i - width];
            }
            out.push(sum / (i + 1).min(width) as f32);
        }
        // The moving average delays by (width - 1) / 2 samples; shift back.
        out.drain(..(width - 1) / 2);
        out
    } else {
        input.to_vec()
    };
    let len = ((input.len() as f64) / ratio).floor() as usize;
    (0..len)
        .map(|i| {
            let t = i as f64 * ratio;
            let k = t.floor() as usize;
            let frac = (t - k as f64) as f32;
            let a = smoothed.get(k).copied().unwrap_or(0.0);
            let b = smoothed.get(k + 1).copied().unwrap_or(a);
            a + (b - a) * frac
        })
        .collect()
}

/// The audio to send: the WAV file or synthetic speech.
pub fn audio(args: &TalkArgs) -> anyhow::Result<Vec<i16>> {
    audio_from(args.wav.as_deref(), args.tone)
}

/// The audio of `--wav FILE` or `--tone SECONDS` (the file wins), for every
/// command that talks.
pub fn audio_from(wav: Option<&Path>, tone: Option<f32>) -> anyhow::Result<Vec<i16>> {
    match (wav, tone) {
        (Some(path), _) => read_wav(path),
        (None, Some(seconds)) if seconds.is_finite() && seconds > 0.0 => {
            Ok(signal::speech_like(seconds, 1))
        }
        (None, Some(seconds)) => bail!("--tone {seconds}: give a positive number of seconds"),
        (None, None) => bail!("give --wav FILE or --tone SECONDS"),
    }
}

/// Encodes PCM into 20 ms Opus packets (the last frame padded with silence).
pub fn encode(pcm: &[i16]) -> anyhow::Result<Vec<Bytes>> {
    let mut encoder = Backend::OpusRs.encoder(CodecConfig::default())?;
    let mut packet = [0u8; MAX_PACKET_LEN];
    let mut frame = [0i16; FRAME_SAMPLES];
    pcm.chunks(FRAME_SAMPLES)
        .map(|chunk| {
            frame.fill(0);
            frame[..chunk.len()].copy_from_slice(chunk);
            let len = encoder.encode(&frame, &mut packet)?;
            Ok(Bytes::copy_from_slice(&packet[..len]))
        })
        .collect()
}

/// Presses in `args.group`, sends the audio paced in real time, releases
/// at its end (or as soon as `stop` resolves: ctrl-c). A talk that did not
/// end by its own release is an error.
pub async fn run(
    client: &Client,
    args: &TalkArgs,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<TalkReport> {
    let frames = encode(&audio(args)?)?;
    let (priority, kind) = if args.emergency {
        (pb::Priority::Emergency, pb::FloorKind::Emergency)
    } else {
        (args.priority.into(), pb::FloorKind::Normal)
    };
    let report = send(client, args.group, priority, kind, &frames, stop).await;
    match &report.end {
        TalkEnd::Failed(error) => return Err(error.clone().into()),
        TalkEnd::Denied(reason) => bail!("floor denied in group {}: {reason:?}", args.group),
        TalkEnd::Disconnected => bail!("lost the relay while talking in group {}", args.group),
        _ => {}
    }
    Ok(report)
}

/// Presses in `group`, pushes `frames` one per 20 ms from the moment of the
/// press, releases after the last (or when `stop` resolves). How it ended
/// is in the report, for the caller to judge.
pub async fn send(
    client: &Client,
    group: u32,
    priority: pb::Priority,
    kind: pb::FloorKind,
    frames: &[Bytes],
    stop: impl Future<Output = ()>,
) -> TalkReport {
    let mut ticks = tokio::time::interval(FRAME_DURATION);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let pressed = Instant::now();
    let talk = client.press(group, priority, kind);
    let mut access_time = None;
    let mut next = frames.iter();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            grant = talk.granted(), if access_time.is_none() => match grant {
                Ok(_) => access_time = Some(pressed.elapsed()),
                Err(TalkError::Ended(_)) => break,
                Err(_) => {}
            },
            _ = ticks.tick() => {
                let Some(frame) = next.next() else { break };
                match talk.push_frame(frame.clone()) {
                    Ok(()) => {}
                    Err(TalkError::Ended(_)) => break,
                    Err(error) => tracing::debug!(%error, "frame not queued"),
                }
            }
        }
    }
    let summary = talk.release().await;
    TalkReport {
        access_time,
        frames_sent: summary.frames_sent,
        frames_encoded: frames.len(),
        frames_dropped: summary.frames_dropped,
        end: summary.end,
    }
}

/// The lines `ptt talk` prints about a talk: access time, frames.
#[must_use]
pub fn summary(report: &TalkReport) -> [String; 2] {
    let access = match report.access_time {
        Some(t) => format!("access time {:.1} ms", t.as_secs_f64() * 1e3),
        None => "access time: never granted".to_owned(),
    };
    // The client marks the burst's end with one more (empty) frame when the
    // last audio frame went out unmarked: say so rather than "51 of 50".
    let audio = report.frames_sent.min(report.frames_encoded as u64);
    let marker = if report.frames_sent > audio {
        " + end-of-burst marker"
    } else {
        ""
    };
    let end = match &report.end {
        TalkEnd::Released => "released".to_owned(),
        other => format!("{other:?}"),
    };
    let frames = format!(
        "sent {audio} of {} frames{marker} ({} dropped), {end}",
        report.frames_encoded, report.frames_dropped
    );
    [access, frames]
}

/// `ptt talk` from the command line.
pub(crate) async fn main(args: TalkArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, super::stop::ctrl_c()).await;
    // Closed on error too: the relay would keep the session until its idle
    // timeout, showing the terminal online.
    client.close().await;
    let report = result?;
    if args.emergency && report.access_time.is_some() {
        println!(
            "EMERGENCY declared in group {group}: the control room was alerted; it stays \
             active until a dispatcher clears it (ptt clear --group {group})",
            group = args.group
        );
    }
    for line in summary(&report) {
        println!("{line}");
    }
    Ok(())
}
