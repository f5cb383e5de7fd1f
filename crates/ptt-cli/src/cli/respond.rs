//! `ptt respond`: answer a dispatcher's alert (roll call) "responding" or
//! "unable", optionally with a status code.
//!
//! "Delivered" needs no command: every client sends it by itself when the
//! alert arrives. This is the user's own answer, which the dispatcher's
//! tally counts as responding or unable.

use anyhow::bail;
use clap::Args;
use ptt_client::{Client, ClientError};
use ptt_proto::pb;

use super::args::ConnArgs;
use super::lines;

/// Options of `ptt respond`.
#[derive(Debug, Clone, Args)]
pub struct RespondArgs {
    /// Connection and identity (a recipient of the alert).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The alert to answer (its id is shown with the alert, e.g. in
    /// `ptt monitor`).
    #[arg(long, value_name = "ID")]
    pub alert: u64,
    /// Add a status code (see `ptt status --list`), e.g. "on scene".
    #[arg(long, value_name = "CODE")]
    pub status: Option<u32>,
    /// Answer "unable to respond" instead of "responding".
    #[arg(long)]
    pub unable: bool,
}

/// Sends the answer; returns the line saying what was answered.
pub async fn run(client: &Client, args: &RespondArgs) -> anyhow::Result<String> {
    let codes = client.status_codes();
    if let Some(code) = args.status
        && !codes.is_empty()
        && !codes.iter().any(|c| c.code == code)
    {
        bail!("status code {code} is not in the relay's table (see ptt status --list)");
    }
    let kind = if args.unable {
        pb::AlertAckKind::Unable
    } else {
        pb::AlertAckKind::Responding
    };
    match client.ack_alert(args.alert, kind, args.status).await {
        Ok(()) => {}
        Err(ClientError::NotAllowed { .. }) => bail!(
            "alert {} was not addressed to terminal {}",
            args.alert,
            client.terminal_id()
        ),
        Err(ClientError::Refused {
            reason: pb::ErrorReason::UnknownAlert,
            ..
        }) => bail!("no alert {} (or it has expired)", args.alert),
        Err(error) => return Err(error.into()),
    }
    let mut line = format!("answered alert {}: {kind:?}", args.alert);
    if let Some(code) = args.status {
        line.push_str(&format!(" with status {}", lines::code(code, &codes)));
    }
    Ok(line)
}

/// `ptt respond` from the command line.
pub(crate) async fn main(args: RespondArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args).await;
    client.close().await;
    println!("{}", result?);
    Ok(())
}
