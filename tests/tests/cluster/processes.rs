//! Relays of one cluster as `pttd` processes of their own (`ptt_tests::pttd`),
//! sharing the first one's certificate as a cluster's relays do.

use std::path::PathBuf;

use ptt_relay_core::tls::{GENERATED_CERT, GENERATED_KEY};
use ptt_tests::TestDirectory;
use ptt_tests::nats::NatsServer;
use ptt_tests::pttd::{self, PttdProcess};

/// The test of this binary that runs a relay process.
const CHILD_TEST: &str = "processes::pttd_child";

/// Not a test of its own: the relay processes of the cluster's tests.
#[test]
#[ignore = "run as a child process by the cluster's tests"]
fn pttd_child() {
    pttd::serve_child();
}

/// Relays of one cluster, `relay-a`, `relay-b`, …, with their data
/// directories (removed when dropped, after the processes are killed).
pub(crate) struct Relays {
    pub(crate) processes: Vec<PttdProcess>,
    data: Vec<tempfile::TempDir>,
    args: Vec<Vec<String>>,
}

impl Relays {
    /// The call log of relay `index` (its SQLite file, readable while it
    /// runs and after it died).
    pub(crate) fn calllog(&self, index: usize) -> PathBuf {
        self.data[index].path().join("pttd.sqlite")
    }

    /// Kills relay `index` with SIGKILL and starts it again at once, with
    /// its id, data and certificate (on a new port), as a supervisor would.
    pub(crate) async fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.processes[index].kill()?;
        let args = self.args[index].clone();
        self.processes[index] =
            tokio::task::spawn_blocking(move || PttdProcess::start(CHILD_TEST, &args)).await??;
        Ok(())
    }
}

/// Starts `count` relays of one cluster on `nats`, each serving `directory`.
pub(crate) async fn start_relays(
    nats: &NatsServer,
    directory: &TestDirectory,
    count: usize,
) -> anyhow::Result<Relays> {
    let mut processes = Vec::new();
    let mut data = Vec::new();
    let mut every_args = Vec::new();
    let mut certificate: Option<(PathBuf, PathBuf)> = None;
    for index in 0..count {
        let id = format!("relay-{}", char::from(b'a' + u8::try_from(index)?));
        let dir = tempfile::tempdir()?;
        let directory_path = dir.path().join("directory.toml");
        std::fs::write(&directory_path, directory.to_toml())?;
        let localhost = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut args = pttd::base_args(dir.path(), &directory_path, localhost);
        args.extend([
            "--cluster".to_owned(),
            nats.url(),
            "--relay-id".to_owned(),
            id,
        ]);
        if let Some((cert, key)) = &certificate {
            for (flag, path) in [("--cert", cert), ("--key", key)] {
                args.push(flag.to_owned());
                args.push(path.display().to_string());
            }
        }
        every_args.push(args.clone());
        let process =
            tokio::task::spawn_blocking(move || PttdProcess::start(CHILD_TEST, &args)).await??;
        certificate.get_or_insert_with(|| {
            (
                dir.path().join(GENERATED_CERT),
                dir.path().join(GENERATED_KEY),
            )
        });
        processes.push(process);
        data.push(dir);
    }
    Ok(Relays {
        processes,
        data,
        args: every_args,
    })
}
