//! `ptt`: talk, listen, call, monitor, alert, status, track and load-test
//! against a `pttd` relay.

fn main() -> std::process::ExitCode {
    ptt_cli::cli::main()
}
