//! A relay in a process of its own, so a test can kill it for real (SIGKILL: no
//! shutdown, no flush) without touching the test process: this test binary
//! re-executed with only one ignored test selected, which serves the relay and
//! prints `READY <addr> <cert>`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ptt_relay::Relay;

/// The child process; killed if the test ends early.
pub(crate) struct ChildRelay {
    process: Child,
    /// Where the child relay listens.
    pub(crate) addr: SocketAddr,
    /// The certificate to pin.
    pub(crate) cert: PathBuf,
}

impl ChildRelay {
    /// Runs the ignored test `child_test` of `module` (as `module_path!()` gives it)
    /// in a child process with `env_key` set to `data`, and waits until its relay is
    /// ready.
    pub(crate) async fn start(
        module: &str,
        child_test: &str,
        env_key: &str,
        data: &Path,
    ) -> anyhow::Result<Self> {
        let mut process = Command::new(std::env::current_exe()?)
            .args([
                test_name(module, child_test).as_str(),
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(env_key, data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = process.stdout.take().expect("stdout");
        let mut child = Self {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert: PathBuf::new(),
        };
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| line.split_once("READY ").map(|(_, rest)| rest.to_owned()))
        })
        .await?
        .expect("child relay ready");
        let (addr, cert) = ready.split_once(' ').expect("addr and cert");
        (child.addr, child.cert) = (addr.parse()?, PathBuf::from(cert));
        Ok(child)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub(crate) fn kill(&mut self) -> std::io::Result<()> {
        self.process.kill()?;
        self.process.wait().map(drop)
    }
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The child's side: serves `relay` until killed, after telling the parent where.
pub(crate) fn serve(load: impl std::future::Future<Output = Relay>) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let relay = load.await;
        println!(
            "READY {} {}",
            relay.local_addr(),
            relay.cert_path().display()
        );
        relay.run().await.expect("run");
    });
}

/// The name libtest knows `test` of `module` by: the module path without the
/// crate's name, so the child runs it alone whichever binary the file is part of.
fn test_name(module: &str, test: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{test}"),
        None => test.to_owned(),
    }
}
