//! `ptt call`: a private call to one terminal: set it up, wait for the
//! callee to answer, talk (synthetic speech or a WAV, as `ptt talk`), hang
//! up. Prints the times a user waits: setup (the relay's answer), answer
//! (until the callee accepted) and floor access in the call.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use ptt_client::{Client, ClientError, Event, Events, TalkEnd};
use ptt_proto::pb;

use super::args::ConnArgs;
use super::talk::{self, TalkReport};

/// Options of `ptt call`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["wav", "tone"])))]
pub struct CallArgs {
    /// Connection and identity (the caller).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The terminal to call.
    #[arg(value_name = "CALLEE")]
    pub callee: u32,
    /// Send this many seconds of synthetic speech.
    #[arg(long, value_name = "SECONDS")]
    pub tone: Option<f32>,
    /// Send this WAV file (converted to 16 kHz mono as by `ptt talk`).
    #[arg(long, value_name = "FILE")]
    pub wav: Option<PathBuf>,
    /// An emergency private call: pre-empts the callee's other calls.
    #[arg(long)]
    pub emergency: bool,
    /// Give up (and hang up) if the callee has not answered after this many
    /// seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub answer_timeout: f64,
}

/// What one call did.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// The relay's call id.
    pub call_id: u64,
    /// The call's temporary group.
    pub group: u32,
    /// From the setup request to the relay's answer.
    pub setup_time: Duration,
    /// From the setup request to the callee's acceptance.
    pub answer_time: Duration,
    /// The talk in the call (its access time is the floor's).
    pub talk: TalkReport,
    /// Set when the callee ended the call first (or the relay did).
    pub ended_by_peer: Option<pb::PrivateCallEndReason>,
}

/// How the wait for the callee ended.
enum Answer {
    Accepted(u32),
    Rejected(pb::PrivateCallRejectReason),
    Ended(pb::PrivateCallEndReason),
}

/// Waits for the callee's answer to call `call_id`.
async fn answer(events: &mut Events, call_id: u64) -> anyhow::Result<Answer> {
    loop {
        match events.recv().await {
            Some(Event::CallAccepted { call_id: id, group }) if id == call_id => {
                return Ok(Answer::Accepted(group));
            }
            Some(Event::CallRejected {
                call_id: id,
                reason,
            }) if id == call_id => {
                return Ok(Answer::Rejected(reason));
            }
            Some(Event::CallEnded {
                call_id: id,
                reason,
            }) if id == call_id => {
                return Ok(Answer::Ended(reason));
            }
            Some(Event::Disconnected { reason, .. }) => {
                bail!("lost the relay while calling: {reason}")
            }
            Some(_) => {}
            None => return Err(super::describe::ended(events)),
        }
    }
}

/// Resolves with the reason when the other party (or the relay) ends call
/// `call_id`.
async fn peer_hang_up(mut events: Events, call_id: u64) -> pb::PrivateCallEndReason {
    loop {
        match events.recv().await {
            Some(Event::CallEnded {
                call_id: id,
                reason,
            }) if id == call_id => return reason,
            Some(_) => {}
            None => return pb::PrivateCallEndReason::PeerDisconnected,
        }
    }
}

/// Calls `args.callee`, talks once it answered, hangs up. `stop` (ctrl-c)
/// ends the wait or the talk early, and the call with it.
pub async fn run(
    client: &Client,
    args: &CallArgs,
    stop: impl Future<Output = ()>,
    mut print: impl FnMut(&str),
) -> anyhow::Result<CallReport> {
    let frames = talk::encode(&talk::audio_from(args.wav.as_deref(), args.tone)?)?;
    let timeout = Duration::from_secs_f64(args.answer_timeout.clamp(0.0, 3600.0));
    let mut events = client.events();
    let started = Instant::now();
    let setup = client.call(args.callee, args.emergency).await?;
    let setup_time = started.elapsed();
    let call_id = setup.call_id;
    print(&format!(
        "calling {}: call {call_id}, group {}",
        args.callee, setup.group_id
    ));
    tokio::pin!(stop);
    let answered = tokio::select! {
        answered = answer(&mut events, call_id) => answered,
        () = tokio::time::sleep(timeout) => {
            hang_up(client, call_id).await;
            bail!("no answer from {} within {timeout:?}; hung up", args.callee);
        }
        () = &mut stop => {
            hang_up(client, call_id).await;
            bail!("stopped before {} answered; hung up", args.callee);
        }
    };
    let group = match answered {
        Err(error) => {
            hang_up(client, call_id).await;
            return Err(error);
        }
        Ok(Answer::Accepted(0)) => setup.group_id,
        Ok(Answer::Accepted(group)) => group,
        Ok(Answer::Rejected(reason)) => bail!("{} rejected the call: {reason:?}", args.callee),
        Ok(Answer::Ended(reason)) => bail!("the call ended before it was answered: {reason:?}"),
    };
    let answer_time = started.elapsed();
    print(&format!(
        "{} answered; talking in group {group}",
        args.callee
    ));

    let peer = peer_hang_up(events, call_id);
    tokio::pin!(peer);
    let mut ended_by_peer = None;
    let stop_talk = async {
        tokio::select! {
            reason = &mut peer => ended_by_peer = Some(reason),
            () = &mut stop => {}
        }
    };
    let talk = talk::send(
        client,
        group,
        pb::Priority::Normal,
        pb::FloorKind::Normal,
        &frames,
        stop_talk,
    )
    .await;
    // The peer may have hung up while the release was under way: an end
    // already received is ready at once (timeout polls the future first).
    if ended_by_peer.is_none()
        && let Ok(reason) = tokio::time::timeout(Duration::ZERO, &mut peer).await
    {
        ended_by_peer = Some(reason);
    }
    match ended_by_peer {
        Some(reason) => print(&format!("{} ended the call: {reason:?}", args.callee)),
        None => {
            hang_up(client, call_id).await;
            print("hung up");
        }
    }
    match (&talk.end, ended_by_peer) {
        (TalkEnd::Failed(error), None) => return Err(error.clone().into()),
        (TalkEnd::Denied(reason), None) => bail!("floor denied in the call: {reason:?}"),
        (TalkEnd::Disconnected, _) => bail!("lost the relay during the call"),
        _ => {}
    }
    Ok(CallReport {
        call_id,
        group,
        setup_time,
        answer_time,
        talk,
        ended_by_peer,
    })
}

/// Ends the call; an already ended call is fine.
async fn hang_up(client: &Client, call_id: u64) {
    match client.end_call(call_id).await {
        Ok(())
        | Err(ClientError::Refused {
            reason: pb::ErrorReason::UnknownCall,
            ..
        }) => {}
        Err(error) => tracing::warn!(call_id, %error, "could not hang up"),
    }
}

/// `ptt call` from the command line.
pub(crate) async fn main(args: CallArgs) -> anyhow::Result<()> {
    let client = args.conn.connect().await?;
    let result = run(&client, &args, super::stop::ctrl_c(), |line| {
        println!("{line}")
    })
    .await;
    if let Ok(report) = &result {
        println!(
            "call setup {:.1} ms, answered after {:.2} s",
            report.setup_time.as_secs_f64() * 1e3,
            report.answer_time.as_secs_f64()
        );
        for line in talk::summary(&report.talk) {
            println!("{line}");
        }
    }
    client.close().await;
    result.map(|_| ())
}
