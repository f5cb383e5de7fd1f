//! Debian's headless Chromium driven through chromedriver (WebDriver) for
//! the dashboard tests: started on a loopback port, scripts run in the page,
//! waits on what the page shows, and screenshots left in
//! `target/artifacts/`.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fantoccini::{Client as Browser, ClientBuilder};
use ptt_tests::PATIENCE;
use serde_json::{Value, json};

/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver for it.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The dashboard tests share two cores; a browser and a thousand logins at
/// once would make each other's time limits meaningless. (This serialises the
/// tests of one binary; cargo runs the test binaries one after another.)
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where test artifacts go: `target/artifacts/` of the workspace.
fn artifacts() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// chromedriver on a loopback port with a Chromium session; both end when
/// this is closed (or, on a failed test, dropped).
pub(crate) struct Chromium {
    driver: Child,
    browser: Option<Browser>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver and a headless Chromium session (1920×1080)
    /// that speaks no QUIC: the dashboard needs none.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        Self::start_with(&["--disable-quic".to_owned()]).await
    }

    /// Starts a session for the dispatchers' console: QUIC on (WebTransport
    /// runs on it), and a microphone that plays `wav` (16-bit PCM) in a
    /// loop, allowed without asking (Chromium's fake capture device).
    pub(crate) async fn start_with_microphone(wav: &Path) -> anyhow::Result<Self> {
        Self::start_with(&[
            "--use-fake-ui-for-media-stream".to_owned(),
            "--use-fake-device-for-media-stream".to_owned(),
            format!("--use-file-for-fake-audio-capture={}", wav.display()),
        ])
        .await
    }

    /// Starts chromedriver and a headless Chromium session (1920×1080) with
    /// `extra` arguments.
    async fn start_with(extra: &[String]) -> anyhow::Result<Self> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            ensure!(
                Path::new(tool).exists(),
                "{tool} is missing: the dashboard test needs Debian's Chromium \
                 (`apt-get install chromium chromium-driver`, which .ci/run does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // In a process group of its own, which Chromium joins: see `Drop`.
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                let _ = driver.kill();
                bail!("chromedriver did not listen on port {port} within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir()?;
        let common = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1920,1080",
            "--hide-scrollbars",
        ];
        let mut args: Vec<String> = common.iter().map(|&arg| arg.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend_from_slice(extra);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let connected =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&url)
                .await;
        let browser = match connected {
            Ok(browser) => browser,
            Err(error) => {
                let _ = driver.kill();
                bail!("chromedriver could not start Chromium: {error}");
            }
        };
        Ok(Self {
            driver,
            browser: Some(browser),
            _profile: profile,
        })
    }

    /// The WebDriver session.
    pub(crate) fn browser(&self) -> &Browser {
        self.browser.as_ref().expect("open until closed")
    }

    /// Runs `script` (a function body) and returns what it returns.
    pub(crate) async fn js(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.browser().execute(script, Vec::new()).await?)
    }

    /// Evaluates `script` every 200 ms until `done` accepts its value, for
    /// at most `within`; the error shows the last value (and a screenshot
    /// of the page is saved for the post-mortem).
    pub(crate) async fn until(
        &self,
        what: &str,
        within: Duration,
        script: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.js(script).await?;
            if done(&value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("dashboard-failure.png").await;
                bail!(
                    "the page never showed {what} within {within:?}; last seen {value}; screenshot {shot:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a screenshot of the page under `target/artifacts/`.
    pub(crate) async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.browser().screenshot().await?;
        let path = artifacts()?.join(name);
        std::fs::write(&path, png)?;
        Ok(path.canonicalize().unwrap_or(path))
    }

    /// Ends the Chromium session (chromedriver ends when this is dropped).
    pub(crate) async fn close(mut self) -> anyhow::Result<()> {
        if let Some(browser) = self.browser.take() {
            browser.close().await?;
        }
        Ok(())
    }
}

impl Drop for Chromium {
    /// Ends chromedriver's process group: chromedriver and the Chromium it
    /// started, even when a failed test never closed the session (killing
    /// chromedriver alone would leave Chromium running).
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
