//! `ptt listen`: hear a group through the jitter buffer and the decoder.
//!
//! Voice frames go into a [`JitterBuffer`]; whatever it plays out (frames,
//! FEC-rebuilt or concealed losses) is decoded and appended to the
//! recording, burst after burst without the silence between them. A burst
//! ends when its last frame has played (or the floor went idle and the
//! buffer ran dry); then one line says who talked and how it went.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ptt_client::codec::{Backend, FRAME_DURATION, MAX_DECODE_SAMPLES, SAMPLE_RATE, VoiceDecoder};
use ptt_client::jitter::{JitterBuffer, JitterConfig, JitterStats};
use ptt_client::{Client, Event, Events};

use super::args::ConnArgs;

/// A burst with no frame for this long and nothing buffered is over, even
/// without its last frame or a `FloorIdle`.
const SILENCE_ENDS_BURST: Duration = Duration::from_secs(1);

/// Options of `ptt listen`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The group to listen to (joined if needed).
    #[arg(long, value_name = "G")]
    pub group: u32,
    /// Write what was heard here (16 kHz mono 16-bit WAV).
    #[arg(long, value_name = "OUT")]
    pub wav: Option<PathBuf>,
    /// Stop after this many seconds (default: at ctrl-c).
    #[arg(long, value_name = "N")]
    pub seconds: Option<f64>,
    /// Stop once this many bursts were heard to their end (e.g. `--bursts 1`
    /// in a script that waits for the next call).
    #[arg(long, value_name = "N")]
    pub bursts: Option<usize>,
}

/// One talk burst heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstReport {
    /// Who talked.
    pub talker: u32,
    /// Their display name, if the relay said it.
    pub name: Option<String>,
    /// The burst id.
    pub burst: u32,
    /// Frames played (received, rebuilt or concealed): 20 ms each.
    pub frames_played: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frames lost or late (played as FEC or concealment).
    pub frames_lost: u64,
}

impl BurstReport {
    /// Audio played for this burst.
    #[must_use]
    pub fn duration(&self) -> Duration {
        FRAME_DURATION * u32::try_from(self.frames_played).unwrap_or(u32::MAX)
    }
}

impl std::fmt::Display for BurstReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.talker)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        write!(
            f,
            ": {:.2} s, {} frames, {} lost",
            self.duration().as_secs_f64(),
            self.frames_received,
            self.frames_lost
        )
    }
}

/// What `ptt listen` heard.
#[derive(Debug, Clone, Default)]
pub struct ListenReport {
    /// Bursts in the order they ended.
    pub bursts: Vec<BurstReport>,
    /// The played-out audio, 16 kHz mono.
    pub pcm: Vec<i16>,
}

/// The burst being played.
struct Current {
    talker: u32,
    burst: u32,
    decoder: Box<dyn VoiceDecoder>,
    start: JitterStats,
    played: u64,
    /// Its last frame arrived or the floor went idle: end once dry.
    ending: bool,
    last_arrival: Instant,
}

/// Plays one group's voice.
struct Player {
    group: u32,
    jitter: JitterBuffer,
    current: Option<Current>,
    names: HashMap<u32, String>,
    report: ListenReport,
    out: Vec<i16>,
}

impl Player {
    fn new(group: u32) -> Self {
        Self {
            group,
            jitter: JitterBuffer::new(JitterConfig::default()),
            current: None,
            names: HashMap::new(),
            report: ListenReport::default(),
            out: vec![0; MAX_DECODE_SAMPLES],
        }
    }

    fn on_event(&mut self, event: Event) -> anyhow::Result<()> {
        match event {
            Event::Voice(frame) if frame.group == self.group => {
                let now = Instant::now();
                if self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.burst != frame.burst)
                {
                    self.finish();
                }
                if self.current.is_none() {
                    self.current = Some(Current {
                        talker: frame.talker,
                        burst: frame.burst,
                        decoder: Backend::OpusRs.decoder()?,
                        start: self.jitter.stats(),
                        played: 0,
                        ending: false,
                        last_arrival: now,
                    });
                }
                if let Some(current) = self.current.as_mut() {
                    current.last_arrival = now;
                    current.ending |= frame.last;
                }
                let _ = self.jitter.push(
                    now,
                    frame.sequence,
                    frame.burst,
                    frame.sender_timestamp_us,
                    frame.payload,
                );
            }
            Event::FloorTaken {
                group,
                holder,
                holder_name,
                ..
            } if group == self.group => {
                self.names.insert(holder, holder_name);
            }
            Event::FloorIdle { group, .. } if group == self.group => {
                if let Some(current) = self.current.as_mut() {
                    current.ending = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Plays what is due; ends the burst once it is over and dry.
    fn play(&mut self, now: Instant) {
        while let Some(playout) = self.jitter.pop(now) {
            let Some(current) = self.current.as_mut() else {
                continue;
            };
            let decoder = current.decoder.as_mut();
            let n = match playout.decode(decoder, &mut self.out) {
                Ok(n) => n,
                Err(error) => {
                    tracing::debug!(%error, "frame not decodable; concealed");
                    decoder.decode(None, false, &mut self.out).unwrap_or(0)
                }
            };
            self.report.pcm.extend_from_slice(&self.out[..n]);
            current.played += 1;
        }
        let over = self.current.as_ref().is_some_and(|c| {
            self.jitter.buffered() == 0
                && (c.ending || now.duration_since(c.last_arrival) > SILENCE_ENDS_BURST)
        });
        if over {
            self.finish();
        }
    }

    /// Closes the current burst and prints its line.
    fn finish(&mut self) {
        let Some(current) = self.current.take() else {
            return;
        };
        self.jitter.end_burst();
        let stats = self.jitter.stats();
        let report = BurstReport {
            talker: current.talker,
            name: self.names.get(&current.talker).cloned(),
            burst: current.burst,
            frames_played: current.played,
            frames_received: stats.received - current.start.received,
            frames_lost: stats.lost - current.start.lost,
        };
        println!("{report}");
        self.report.bursts.push(report);
    }

    /// When to call [`Player::play`] next.
    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + Duration::from_millis(100);
        if let Some(due) = self.jitter.poll_timeout() {
            wake = wake.min(due);
        }
        wake
    }
}

/// Listens to `group` until `stop` resolves (or `seconds` pass); joins the
/// group first unless already joined. Prints one line per burst.
pub async fn run(
    client: &Client,
    args: &ListenArgs,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<ListenReport> {
    let mut events = client.events();
    if !client.joined().contains(&args.group) {
        client.join(args.group).await?;
    }
    let stop = async {
        tokio::select! {
            () = stop => {}
            () = super::stop::stop_after(args.seconds) => {}
        }
    };
    let (report, _) = hear(&mut events, args.group, stop, args.bursts, |_| false).await?;
    if let Some(path) = &args.wav {
        write_wav(path, &report.pcm)?;
    }
    Ok(report)
}

/// Plays `group`'s voice from `events` until `stop` resolves, `bursts`
/// bursts were played out to their end, or an event satisfies `until`
/// (returned with the report: e.g. the end of a private call). Prints one
/// line per burst.
pub async fn hear(
    events: &mut Events,
    group: u32,
    stop: impl Future<Output = ()>,
    bursts: Option<usize>,
    mut until: impl FnMut(&Event) -> bool,
) -> anyhow::Result<(ListenReport, Option<Event>)> {
    let mut player = Player::new(group);
    tokio::pin!(stop);
    let ended_by = loop {
        let wake = player.next_wake(Instant::now());
        tokio::select! {
            () = &mut stop => break None,
            event = events.recv() => match event {
                Some(event) if until(&event) => break Some(event),
                Some(event) => player.on_event(event)?,
                None => return Err(super::describe::ended(events)),
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        player.play(Instant::now());
        if bursts.is_some_and(|n| player.report.bursts.len() >= n) {
            break None;
        }
    };
    player.finish();
    Ok((player.report, ended_by))
}

/// Writes 16 kHz mono 16-bit PCM.
pub fn write_wav(path: &Path, pcm: &[i16]) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    for &s in pcm {
        writer.write_sample(s)?;
    }
    writer
        .finalize()
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// `ptt listen` from the command line.
pub(crate) async fn main(args: ListenArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, super::stop::ctrl_c()).await;
    client.close().await;
    let report = result?;
    if let Some(path) = &args.wav {
        eprintln!(
            "wrote {:.2} s of audio to {}",
            report.pcm.len() as f64 / f64::from(SAMPLE_RATE),
            path.display()
        );
    }
    Ok(())
}
