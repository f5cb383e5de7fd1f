//! `ptt locate`: report this terminal's position once, as a handheld's GPS
//! does, e.g. a guard at a gate before it presses emergency (the relay pulls
//! in the guards around the last reported position).

use anyhow::ensure;
use clap::Args;
use ptt_client::Client;
use ptt_proto::pb;

use super::args::ConnArgs;

/// Options of `ptt locate`.
#[derive(Debug, Clone, Args)]
pub struct LocateArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Latitude in degrees (WGS-84), -90..90.
    #[arg(long, allow_hyphen_values = true)]
    pub lat: f64,
    /// Longitude in degrees (WGS-84), -180..180.
    #[arg(long, allow_hyphen_values = true)]
    pub lon: f64,
    /// Horizontal accuracy in metres; 0 for unknown.
    #[arg(long, value_name = "METRES", default_value_t = 5.0)]
    pub accuracy: f32,
}

/// Sends the report; returns the line saying what was reported.
pub async fn run(client: &Client, args: &LocateArgs) -> anyhow::Result<String> {
    ensure!(
        (-90.0..=90.0).contains(&args.lat) && (-180.0..=180.0).contains(&args.lon),
        "latitude must be within -90..90 and longitude within -180..180"
    );
    client
        .send_location(pb::LocationReport {
            latitude_deg: args.lat,
            longitude_deg: args.lon,
            accuracy_m: args.accuracy,
            timestamp_us: unix_us(),
            ..Default::default()
        })
        .await?;
    Ok(format!(
        "terminal {} at {:.6}, {:.6}",
        client.terminal_id(),
        args.lat,
        args.lon
    ))
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `ptt locate` from the command line.
pub(crate) async fn main(args: LocateArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args).await;
    client.close().await;
    println!("{}", result?);
    Ok(())
}
