//! `pttd`: the push-to-talk relay. With no arguments it serves the built-in
//! demo district on 127.0.0.1:7700 with a generated certificate in `./data`.

use std::process::ExitCode;

use anyhow::Context;
use ptt_relay::Relay;
use ptt_relay::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// The relay's allocator. Ten thousand connections are many small, long-lived
/// allocations made and freed on several threads (the runtime's workers and
/// the login pool): glibc's per-thread arenas kept freed memory resident,
/// 73 KiB per idle terminal at 10,000 terminals (44 KiB with the arenas
/// capped at two, 34 KiB with mimalloc; `cargo bench --bench fanout`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::load() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("pttd: {error}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pttd: {}", causes(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", each said once. Many of the
/// relay's errors already name their cause in their own message ("binding
/// 127.0.0.1:7700: Address already in use"), so anyhow's `{:#}` alone would
/// print the cause twice.
fn causes(error: &anyhow::Error) -> String {
    let mut said = error.to_string();
    for cause in error.chain().skip(1).map(ToString::to_string) {
        if !said.contains(&cause) {
            said = format!("{said}: {cause}");
        }
    }
    said
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::GenDirectory(args)) = &cli.command {
        let generated = ptt_directory::write_generated(
            args.terminals,
            args.groups,
            args.seed,
            &args.out,
            &args.secrets,
        )?;
        println!("{generated}");
        return Ok(());
    }
    let config = cli.config;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&config.log)
                .with_context(|| format!("bad --log filter {:?}", config.log))?,
        )
        // Colours for a terminal only, not into a log file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pttd")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let relay = Relay::load(config).await?;
        // Printed whatever the log level: operators need it to set up clients.
        println!(
            "pttd listening on {} (QUIC, ALPN ptt/1); clients pin {}",
            relay.local_addr(),
            relay.cert_path().display()
        );
        println!(
            "dashboard, metrics and the ops API on http://{}/",
            relay.ops_addr()
        );
        println!(
            "dispatchers' console on http://{}/console (WebTransport on UDP {})",
            relay.ops_addr(),
            relay.console_addr()
        );
        let shutdown = relay.shutdown_token();
        let signalled = signals();
        tokio::spawn(async move {
            signalled.await;
            tracing::info!("signal received");
            shutdown.cancel();
        });
        relay.run().await?;
        anyhow::Ok(())
    })?;
    // Do not wait for idle group tasks: everything durable is flushed.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}

/// A future that resolves on ctrl-c or SIGTERM (what systemd and docker
/// send); the handlers are installed by this call, not at the first poll.
fn signals() -> impl std::future::Future<Output = ()> {
    // Registered now, before the relay accepts anyone: a SIGTERM that
    // arrives while the first terminal logs in must stop the relay
    // gracefully, not kill it.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[test]
    fn each_cause_is_said_once() {
        let in_use = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let named =
            anyhow::Error::new(in_use).context("binding 127.0.0.1:7700: Address already in use");
        assert_eq!(
            causes(&named),
            "binding 127.0.0.1:7700: Address already in use"
        );
        let unnamed = anyhow::anyhow!("disk full").context("writing the call log");
        assert_eq!(causes(&unnamed), "writing the call log: disk full");
    }
}
