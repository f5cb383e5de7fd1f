//! `ptt`: talk, listen, monitor, alert and load-test against a `pttd` relay.

fn main() -> std::process::ExitCode {
    ptt_cli::cli::main()
}
