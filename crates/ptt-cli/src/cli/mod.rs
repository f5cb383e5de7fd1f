//! Subcommands of `ptt` (talk, listen, monitor, alert, respond, status,
//! track, call, answer) and the argument parser.
//!
//! Each subcommand is a module with its clap `Args` and an async `run` that
//! takes a connected [`Client`](ptt_client::Client), so tests drive the same code against a relay
//! they started; [`main`] only parses, connects, and turns errors into one
//! line a person can act on ([`describe`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub mod alert;
pub mod answer;
mod args;
pub mod call;
pub mod clear;
mod describe;
pub mod lines;
pub mod listen;
pub mod locate;
pub mod monitor;
pub mod respond;
pub mod status;
mod stop;
pub mod talk;
pub mod track;

pub use args::ConnArgs;
pub use describe::describe;
pub use stop::ctrl_c;

/// Shown after `ptt --help`.
const EXAMPLES: &str = "\
Examples (against `pttd` started with no arguments, the demo district):
  export PTT_ID=101 PTT_SECRET=demo-101
  ptt talk --group 11 --tone 3            # 3 s of synthetic speech to group 11
  ptt listen --group 11 --wav heard.wav   # record what group 11 says, ctrl-c to stop
  ptt monitor                             # live view of this terminal's groups
  PTT_ID=1 PTT_SECRET=demo-1 ptt alert --all \"Report status\"   # dispatcher roll call
  ptt respond --alert 1718000000000000 --status 1   # answer it: responding, on scene
  ptt status --list                       # the district's status codes
  ptt status --code 3 --dispatchers       # tell the control room: need backup
  ptt track --file route3.csv --speed 10  # replay a patrol's GPS track
  ptt locate --lat 30.2546 --lon 120.1391 # report this terminal's position once
  PTT_ID=1 PTT_SECRET=demo-1 ptt clear --group 102   # clear an emergency
  ptt call 102 --tone 3                   # private call to terminal 102
  PTT_ID=102 PTT_SECRET=demo-102 ptt answer --wav call.wav   # take it
  ptt load --terminals 200                # load test against a relay of its own

The connection options (--server, --ca, --id, --secret) belong to each
subcommand and read PTT_SERVER, PTT_CA, PTT_ID and PTT_SECRET.";

/// `ptt`: talk, listen, call and watch on a `pttd` push-to-talk relay, report
/// status and location, or load-test it.
#[derive(Debug, Parser)]
#[command(name = "ptt", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (tracing `EnvFilter` syntax,
    /// e.g. `debug` or `ptt_client=trace`).
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Talk in a group: press, send a WAV file or synthetic speech, release.
    ///
    /// Prints the access time (press to grant) and the frames sent.
    ///
    /// Example: `PTT_SECRET=demo-101 ptt talk --id 101 --group 11 --wav hello.wav`
    Talk(talk::TalkArgs),
    /// Listen to a group: play voice through the jitter buffer into a WAV.
    ///
    /// Prints one line per talk burst (who, how long, frames, lost).
    ///
    /// Example: `PTT_SECRET=demo-102 ptt listen --id 102 --group 11 --wav out.wav --seconds 30`
    Listen(listen::ListenArgs),
    /// Live view of this terminal's groups: who talks, emergencies, RTT.
    ///
    /// Redraws every 500 ms until ctrl-c or `--seconds`.
    ///
    /// Example: `PTT_SECRET=demo-1 ptt monitor --id 1`
    Monitor(monitor::MonitorArgs),
    /// Dispatcher alert with roll call: every terminal of the groups is
    /// alerted and answers; the tally is shown live.
    ///
    /// Example: `PTT_SECRET=demo-1 ptt alert --id 1 --all "All units: report status"`
    Alert(alert::AlertArgs),
    /// Answer an alert (roll call): responding, or unable, with an optional
    /// status code. ("Delivered" is sent automatically on arrival.)
    ///
    /// Example: `PTT_SECRET=demo-101 ptt respond --id 101 --alert 1718000000000000 --status 1`
    Respond(respond::RespondArgs),
    /// Send a status message to a terminal, a group or the control room;
    /// `--list` shows the district's code table.
    ///
    /// Example: `PTT_SECRET=demo-101 ptt status --id 101 --code 1 --text "gate 2" --dispatchers`
    Status(status::StatusArgs),
    /// Replay a GPS track (CSV `seconds,lat,lon`) as location reports,
    /// interpolated between points; prints the regroupings it causes.
    ///
    /// Example: `PTT_SECRET=demo-201 ptt track --id 201 --file route3.csv --speed 10 --interval 1s`
    Track(track::TrackArgs),
    /// Report this terminal's position once (WGS-84 degrees).
    ///
    /// Example: `PTT_SECRET=demo-303 ptt locate --id 303 --lat 30.2546 --lon 120.1391`
    Locate(locate::LocateArgs),
    /// Clear a group's emergency (dispatchers): the guards a backup call
    /// pulled in leave the group.
    ///
    /// Example: `PTT_SECRET=demo-1 ptt clear --id 1 --group 102`
    Clear(clear::ClearArgs),
    /// Private call: set it up, wait for the answer, talk, hang up; prints
    /// setup, answer and floor access times.
    ///
    /// Example: `PTT_SECRET=demo-101 ptt call --id 101 102 --tone 3`
    Call(call::CallArgs),
    /// Wait for a private call, accept (or --reject) it, and hear it until
    /// the caller hangs up.
    ///
    /// Example: `PTT_SECRET=demo-102 ptt answer --id 102 --wav call.wav --seconds 60`
    Answer(answer::AnswerArgs),
    /// Load generator: many simulated terminals, MCPTT-style measurements.
    ///
    /// Without `--server` it starts a `pttd` of its own.
    ///
    /// Example: `ptt load --terminals 500 --groups 50 --duration 30`
    Load(crate::load::LoadArgs),
}

/// The `ptt` command: parse, run, print errors as one line, exit non-zero
/// on failure.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ptt: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (result, conn) = runtime.block_on(run(cli.command));
    // Do not wait for background tasks (reconnect supervisors) at exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ptt: {}", describe(&error, conn.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand; returns its connection options for error messages.
async fn run(command: Command) -> (anyhow::Result<()>, Option<ConnArgs>) {
    match command {
        Command::Talk(args) => {
            let conn = args.conn.clone();
            (talk::main(args).await, Some(conn))
        }
        Command::Listen(args) => {
            let conn = args.conn.clone();
            (listen::main(args).await, Some(conn))
        }
        Command::Monitor(args) => {
            let conn = args.conn.clone();
            (monitor::main(args).await, Some(conn))
        }
        Command::Alert(args) => {
            let conn = args.conn.clone();
            (alert::main(args).await, Some(conn))
        }
        Command::Respond(args) => {
            let conn = args.conn.clone();
            (respond::main(args).await, Some(conn))
        }
        Command::Status(args) => {
            let conn = args.conn.clone();
            (status::main(args).await, Some(conn))
        }
        Command::Track(args) => {
            let conn = args.conn.clone();
            (track::main(args).await, Some(conn))
        }
        Command::Locate(args) => {
            let conn = args.conn.clone();
            (locate::main(args).await, Some(conn))
        }
        Command::Clear(args) => {
            let conn = args.conn.clone();
            (clear::main(args).await, Some(conn))
        }
        Command::Call(args) => {
            let conn = args.conn.clone();
            (call::main(args).await, Some(conn))
        }
        Command::Answer(args) => {
            let conn = args.conn.clone();
            (answer::main(args).await, Some(conn))
        }
        Command::Load(args) => (crate::load::run(args).await, None),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let mut all = vec!["ptt"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--id", "101", "--secret", "s"]);
        Cli::try_parse_from(all).map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dispatch_commands_parse_as_documented() {
        let Ok(Command::Call(call)) = parse(&["call", "102", "--tone", "3", "--emergency"]) else {
            panic!("call");
        };
        assert_eq!(
            (call.callee, call.tone, call.emergency),
            (102, Some(3.0), true)
        );
        assert_eq!(call.answer_timeout, 30.0);
        assert!(parse(&["call", "102"]).is_err(), "needs --tone or --wav");
        let Ok(Command::Track(track)) = parse(&[
            "track",
            "--file",
            "r.csv",
            "--speed",
            "10",
            "--interval",
            "500ms",
            "--loop",
        ]) else {
            panic!("track");
        };
        assert_eq!(track.interval, Duration::from_millis(500));
        assert!(track.repeat);
        assert!(parse(&["track", "--file", "r.csv", "--interval", "soon"]).is_err());
        assert!(matches!(
            parse(&["status", "--code", "3", "--dispatchers"]),
            Ok(Command::Status(_))
        ));
        assert!(parse(&["status", "--list", "--code", "3"]).is_err());
        assert!(parse(&["status", "--code", "3", "--to", "102", "--dispatchers"]).is_err());
        assert!(matches!(
            parse(&["respond", "--alert", "17", "--unable"]),
            Ok(Command::Respond(r)) if r.alert == 17 && r.unable
        ));
        assert!(matches!(
            parse(&["answer", "--reject"]),
            Ok(Command::Answer(a)) if a.reject
        ));
    }
}
