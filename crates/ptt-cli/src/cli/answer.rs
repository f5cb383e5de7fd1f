//! `ptt answer`: wait for a private call, accept it (or reject it), and
//! hear it like `ptt listen` until the caller hangs up or `--seconds` pass.

use std::future::Future;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use ptt_client::{Client, ClientError, Event};
use ptt_proto::pb;

use super::args::ConnArgs;
use super::lines;
use super::listen::{self, ListenReport};

/// Options of `ptt answer`.
#[derive(Debug, Clone, Args)]
pub struct AnswerArgs {
    /// Connection and identity (the callee).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Give up after this many seconds, waiting or in the call (default:
    /// at ctrl-c or when the caller hangs up).
    #[arg(long, value_name = "N")]
    pub seconds: Option<f64>,
    /// Write what was heard here (16 kHz mono 16-bit WAV).
    #[arg(long, value_name = "OUT")]
    pub wav: Option<PathBuf>,
    /// Reject the call (DECLINED) instead of accepting it.
    #[arg(long)]
    pub reject: bool,
}

/// What `ptt answer` did.
#[derive(Debug, Clone)]
pub struct AnswerReport {
    /// The call as it came in (caller, call id, group).
    pub call: pb::PrivateCallSetup,
    /// It was rejected.
    pub rejected: bool,
    /// Why it ended, when the caller (or the relay) ended it; `None` when
    /// this side hung up (time up, ctrl-c) or rejected.
    pub ended: Option<pb::PrivateCallEndReason>,
    /// What was heard.
    pub heard: ListenReport,
}

/// Waits for a call, answers it, hears it; `stop` (ctrl-c) or `--seconds`
/// ends the wait or the call.
pub async fn run(
    client: &Client,
    args: &AnswerArgs,
    stop: impl Future<Output = ()>,
    mut print: impl FnMut(&str),
) -> anyhow::Result<AnswerReport> {
    let mut events = client.events();
    let stop = async {
        tokio::select! {
            () = stop => {}
            () = super::stop::stop_after(args.seconds) => {}
        }
    };
    tokio::pin!(stop);
    let call = loop {
        tokio::select! {
            () = &mut stop => bail!("no call came"),
            event = events.recv() => match event {
                Some(Event::CallIncoming(call)) => break call,
                Some(_) => {}
                None => return Err(super::describe::ended(&events)),
            },
        }
    };
    let id = call.call_id;
    if let Some(line) = lines::call(&Event::CallIncoming(call.clone())) {
        print(&line);
    }
    if args.reject {
        client
            .reject_call(id, pb::PrivateCallRejectReason::Declined)
            .await?;
        print(&format!("call {id}: rejected"));
        return Ok(AnswerReport {
            call,
            rejected: true,
            ended: None,
            heard: ListenReport::default(),
        });
    }
    client.accept_call(id).await?;
    print(&format!(
        "call {id}: accepted, listening in group {}",
        call.group_id
    ));
    let ends = |event: &Event| matches!(event, Event::CallEnded { call_id, .. } if *call_id == id);
    let (heard, ended_by) = listen::hear(&mut events, call.group_id, stop, None, ends).await?;
    let ended = match ended_by {
        Some(Event::CallEnded { reason, .. }) => {
            print(&format!("call {id}: the caller ended it ({reason:?})"));
            Some(reason)
        }
        _ => {
            match client.end_call(id).await {
                Ok(())
                | Err(ClientError::Refused {
                    reason: pb::ErrorReason::UnknownCall,
                    ..
                }) => {}
                Err(error) => tracing::warn!(call = id, %error, "could not hang up"),
            }
            print(&format!("call {id}: hung up"));
            None
        }
    };
    if let Some(path) = &args.wav {
        listen::write_wav(path, &heard.pcm)?;
    }
    Ok(AnswerReport {
        call,
        rejected: false,
        ended,
        heard,
    })
}

/// `ptt answer` from the command line.
pub(crate) async fn main(args: AnswerArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, super::stop::ctrl_c(), |line| {
        println!("{line}")
    })
    .await;
    if let (Ok(report), Some(path)) = (&result, &args.wav) {
        eprintln!(
            "wrote {:.2} s of audio to {}",
            report.heard.pcm.len() as f64 / f64::from(ptt_client::codec::SAMPLE_RATE),
            path.display()
        );
    }
    client.close().await;
    result.map(|_| ())
}
