//! `ptt status`: send a status message ("on scene", "need backup") to a
//! terminal, a group or the control room, or list the deployment's codes.
//!
//! Codes are checked against the relay's table (from `HelloOk`) before
//! sending: a mistyped code would reach the control room as a number
//! nobody can read.

use anyhow::bail;
use clap::Args;
use ptt_client::Client;
use ptt_proto::pb;

use super::args::ConnArgs;
use super::lines;

/// Options of `ptt status`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").args(["to", "group", "dispatchers"])))]
pub struct StatusArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print the relay's status code table and exit.
    #[arg(long, conflicts_with_all = ["code", "text", "target"])]
    pub list: bool,
    /// The status code (see --list).
    #[arg(long, value_name = "N")]
    pub code: Option<u32>,
    /// Free text, with or without a code.
    #[arg(long, value_name = "T")]
    pub text: Option<String>,
    /// Send to this terminal.
    #[arg(long, value_name = "TERMINAL")]
    pub to: Option<u32>,
    /// Send to every joined member of this group.
    #[arg(long, value_name = "G")]
    pub group: Option<u32>,
    /// Send to the control room (every dispatcher).
    #[arg(long)]
    pub dispatchers: bool,
}

/// The code table, one `code  label` line each.
#[must_use]
pub fn table(codes: &[pb::StatusCodeInfo]) -> Vec<String> {
    if codes.is_empty() {
        return vec!["(the relay has no status codes; send --text)".to_owned()];
    }
    codes
        .iter()
        .map(|c| format!("{:>4}  {}", c.code, c.label))
        .collect()
}

/// The message `args` describe, checked against `codes`.
pub fn message(
    args: &StatusArgs,
    codes: &[pb::StatusCodeInfo],
) -> anyhow::Result<pb::StatusMessage> {
    use pb::status_message::Target;
    let target = match (args.to, args.group, args.dispatchers) {
        (Some(terminal), _, _) => Target::TerminalId(terminal),
        (None, Some(group), _) => Target::GroupId(group),
        (None, None, true) => Target::Dispatchers(true),
        (None, None, false) => bail!("say who gets it: --to TERMINAL, --group G or --dispatchers"),
    };
    let code = args.code.unwrap_or(0);
    let text = args.text.clone().unwrap_or_default();
    if code == 0 && text.is_empty() {
        bail!("give --code N (see ptt status --list) or --text T");
    }
    if code != 0 && !codes.is_empty() && !codes.iter().any(|c| c.code == code) {
        let known: Vec<String> = codes.iter().map(|c| c.code.to_string()).collect();
        bail!(
            "status code {code} is not in the relay's table (known: {}; see ptt status --list)",
            known.join(", ")
        );
    }
    Ok(pb::StatusMessage {
        from_terminal_id: 0,
        code,
        text,
        target: Some(target),
    })
}

/// Sends the status message (or lists the codes), printing what was done.
pub async fn run(
    client: &Client,
    args: &StatusArgs,
    mut print: impl FnMut(&str),
) -> anyhow::Result<()> {
    let codes = client.status_codes();
    if args.list {
        for line in table(&codes) {
            print(&line);
        }
        return Ok(());
    }
    let status = message(args, &codes)?;
    let to = lines::status_target(status.target.as_ref());
    let what = match (lines::code(status.code, &codes), status.text.as_str()) {
        (code, "") => code,
        (code, text) if code.is_empty() => format!("{text:?}"),
        (code, text) => format!("{code} {text:?}"),
    };
    client.send_status(status).await?;
    print(&format!("sent status {what} to {to}"));
    Ok(())
}

/// `ptt status` from the command line.
pub(crate) async fn main(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, |line| println!("{line}")).await;
    client.close().await;
    result
}

#[cfg(test)]
mod tests {
    use crate::cli::status::*;

    fn args(code: Option<u32>, text: Option<&str>) -> StatusArgs {
        StatusArgs {
            conn: ConnArgs {
                server: "127.0.0.1:7700".into(),
                ca: "cert.pem".into(),
                id: 301,
                secret: String::new(),
                connect_timeout: 1.0,
                voice_streams: false,
            },
            list: false,
            code,
            text: text.map(str::to_owned),
            to: None,
            group: Some(11),
            dispatchers: false,
        }
    }

    #[test]
    fn codes_are_checked_against_the_table() {
        let codes = vec![pb::StatusCodeInfo {
            code: 1,
            label: "On scene".into(),
        }];
        let ok = message(&args(Some(1), None), &codes).expect("valid");
        assert_eq!(ok.target, Some(pb::status_message::Target::GroupId(11)));
        let error = message(&args(Some(7), None), &codes).expect_err("unknown code");
        assert!(error.to_string().contains("known: 1"), "{error}");
        assert!(message(&args(None, None), &codes).is_err());
        assert!(message(&args(None, Some("at the gate")), &codes).is_ok());
        // Without a table any code goes.
        assert!(message(&args(Some(7), None), &[]).is_ok());
        let mut nobody = args(Some(1), None);
        nobody.group = None;
        assert!(message(&nobody, &codes).is_err());
    }
}
