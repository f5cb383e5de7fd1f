//! `ptt clear`: a dispatcher clears a group's emergency. The relay ends the
//! emergency burst's priority and lets go of the guards a backup call
//! pulled in.

use clap::Args;
use ptt_client::Client;

use super::args::ConnArgs;

/// Options of `ptt clear`.
#[derive(Debug, Clone, Args)]
pub struct ClearArgs {
    /// Connection and identity (a dispatcher's).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The group in emergency.
    #[arg(long, value_name = "G")]
    pub group: u32,
}

/// Clears the emergency; returns the line saying what was cleared.
pub async fn run(client: &Client, args: &ClearArgs) -> anyhow::Result<String> {
    let state = client.clear_emergency(args.group).await?;
    Ok(if state.declared_by == 0 {
        format!("group {}: no emergency to clear", args.group)
    } else {
        format!(
            "group {}: emergency of {} ({}) cleared",
            args.group, state.declared_by, state.declared_by_name
        )
    })
}

/// `ptt clear` from the command line.
pub(crate) async fn main(args: ClearArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args).await;
    client.close().await;
    println!("{}", result?);
    Ok(())
}
