//! `ptt track`: replay a GPS track as this terminal's location reports.
//!
//! This is how a patrol's lead is simulated: the relay regroups guards by
//! where the lead reports to be, so replaying the lead's route past the
//! compounds shows the relay patrol working, with the regroupings printed
//! as they happen. Reports go out every `--interval` of wall-clock time
//! whatever the `--speed`, as a real terminal's would, so the relay sees the
//! load of one terminal; `--speed 10` only moves the patrol ten times
//! faster along its track.

pub mod file;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use ptt_client::{Client, ClientError, Event};
use ptt_proto::pb;

use super::args::ConnArgs;
use super::lines;
use file::{Fix, Track};

/// Shortest report interval accepted: a bound on what one simulated
/// terminal may send.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Options of `ptt track`.
#[derive(Debug, Clone, Args)]
pub struct TrackArgs {
    /// Connection and identity (the terminal whose position this is).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The track: CSV lines `seconds,lat,lon` (seconds from the start,
    /// increasing; WGS-84 degrees); `#` comments and a header line allowed.
    #[arg(long, value_name = "TRACK")]
    pub file: PathBuf,
    /// Play the track this many times faster than real time.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    /// Wall-clock time between two reports (e.g. `1s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = ptt_directory::toml_text::parse_duration)]
    pub interval: Duration,
    /// Start again from the first point at the end of the track.
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Stop after this many seconds (default: at the end of the track, or
    /// at ctrl-c with --loop).
    #[arg(long, value_name = "N")]
    pub seconds: Option<f64>,
    /// Print every position sent.
    #[arg(long, short)]
    pub verbose: bool,
}

/// What one replay did.
#[derive(Debug, Clone, Default)]
pub struct TrackReport {
    /// Location reports the relay acknowledged.
    pub reports_sent: u64,
    /// Reports not sent (relay unreachable meanwhile, or refused).
    pub reports_failed: u64,
    /// The last position sent.
    pub last: Option<(f64, f64)>,
    /// The regroupings seen while replaying, as printed.
    pub regroupings: Vec<String>,
}

/// The location report for a fix.
fn report(fix: &Fix) -> pb::LocationReport {
    pb::LocationReport {
        terminal_id: 0,
        latitude_deg: fix.lat,
        longitude_deg: fix.lon,
        accuracy_m: 0.0,
        heading_deg: fix.heading_deg,
        speed_mps: fix.speed_mps,
        timestamp_us: unix_us(),
    }
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Where on the track the replay is after `wall` of real time; `None` once
/// a replay without `repeat` is past the end.
fn track_time(wall: Duration, speed: f64, duration: f64, repeat: bool) -> Option<f64> {
    let t = wall.as_secs_f64() * speed;
    if repeat {
        Some(if duration > 0.0 { t % duration } else { 0.0 })
    } else {
        (t <= duration).then_some(t)
    }
}

/// Replays `args.file` until its end (or `--seconds`, or `stop`), printing
/// regroupings, status messages and alerts seen meanwhile with `print`.
pub async fn run(
    client: &Client,
    args: &TrackArgs,
    stop: impl Future<Output = ()>,
    mut print: impl FnMut(&str),
) -> anyhow::Result<TrackReport> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed {}: give a positive factor", args.speed);
    }
    if args.interval < MIN_INTERVAL {
        bail!("--interval {:?}: at least {MIN_INTERVAL:?}", args.interval);
    }
    let track = Track::load(&args.file)?;
    let duration = track.duration();
    let codes = client.status_codes();
    let mut events = client.events();
    let mut out = TrackReport::default();
    // Track time follows the ticks' schedule, not when the task got to
    // run: the first report is the first point exactly, the next ones
    // `interval × speed` further.
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(started, args.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = super::stop::stop_after(args.seconds);
    tokio::pin!(stop, deadline);
    let mut finished = false;
    while !finished {
        tokio::select! {
            () = &mut stop => break,
            () = &mut deadline => break,
            event = events.recv() => match event {
                Some(event) => on_event(&event, &codes, &mut out, &mut print),
                None => return Err(super::describe::ended(&events)),
            },
            tick = ticks.tick() => {
                let wall = tick.duration_since(started);
                let t = match track_time(wall, args.speed, duration, args.repeat) {
                    Some(t) => t,
                    None => {
                        finished = true; // send the end point once, then stop
                        duration
                    }
                };
                let fix = track.at(t);
                match client.send_location(report(&fix)).await {
                    Ok(()) => {
                        out.reports_sent += 1;
                        out.last = Some((fix.lat, fix.lon));
                        if args.verbose {
                            print(&format!("{t:8.1} s  {:.6}, {:.6}", fix.lat, fix.lon));
                        }
                    }
                    Err(error @ (ClientError::Disconnected | ClientError::Timeout)) => {
                        out.reports_failed += 1;
                        tracing::debug!(%error, "location report not sent");
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    // Regroupings the last report caused arrive a moment later.
    let linger = tokio::time::sleep(Duration::from_millis(200));
    tokio::pin!(linger);
    loop {
        tokio::select! {
            () = &mut linger => break,
            Some(event) = events.recv() => on_event(&event, &codes, &mut out, &mut print),
            else => break,
        }
    }
    Ok(out)
}

/// Prints what a patrol's lead wants to see while moving.
fn on_event(
    event: &Event,
    codes: &[pb::StatusCodeInfo],
    out: &mut TrackReport,
    print: &mut impl FnMut(&str),
) {
    match event {
        Event::Regrouped(r) => {
            let line = lines::regrouped(r);
            print(&line);
            out.regroupings.push(line);
        }
        Event::Status(s) => print(&lines::status(s, codes)),
        Event::Alert(a) => print(&lines::alert(a)),
        Event::Disconnected { reason, .. } => print(&format!("lost the relay: {reason}")),
        Event::Reconnected { .. } => print("reconnected"),
        _ => {}
    }
}

/// `ptt track` from the command line.
pub(crate) async fn main(args: TrackArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, super::stop::ctrl_c(), |line| {
        println!("{line}")
    })
    .await;
    client.close().await;
    let report = result?;
    let at = report.last.map_or_else(
        || "-".to_owned(),
        |(lat, lon)| format!("{lat:.6}, {lon:.6}"),
    );
    println!(
        "sent {} location reports ({} failed), last at {at}",
        report.reports_sent, report.reports_failed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::track::*;

    #[test]
    fn speed_scales_track_time_and_loop_wraps_it() {
        let wall = Duration::from_secs(3);
        assert_eq!(track_time(wall, 10.0, 100.0, false), Some(30.0));
        assert_eq!(track_time(wall, 10.0, 20.0, false), None);
        assert_eq!(track_time(wall, 10.0, 20.0, true), Some(10.0));
        assert_eq!(track_time(wall, 1.0, 0.0, true), Some(0.0));
        assert_eq!(track_time(Duration::ZERO, 1.0, 0.0, false), Some(0.0));
    }
}
