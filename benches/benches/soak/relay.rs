//! The relay under soak: a release `pttd` child process on the demo
//! district, and what one sample reads of it — its own `/proc` entries
//! (RSS, fds, threads, CPU), its `/metrics`, its SQLite call log (read-only,
//! a fresh connection per sample so the bench never pins the WAL) and its
//! recordings directory.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long `pttd` may take to bind and write its certificate.
const START_PATIENCE: Duration = Duration::from_secs(20);

/// A `pttd` child on 127.0.0.1, its data in a temporary directory; killed on
/// drop if [`Relay::stop`] was not called.
pub(crate) struct Relay {
    child: Child,
    /// Its QUIC port.
    pub(crate) addr: SocketAddr,
    /// Its ops port (`/metrics`).
    pub(crate) ops: SocketAddr,
    /// Its self-signed certificate, for the terminals to pin.
    pub(crate) cert: PathBuf,
    /// Its data dir (call log, recordings, stderr log).
    pub(crate) data: PathBuf,
    _dir: tempfile::TempDir,
}

/// Where the release `pttd` is: `$PTTD`, else beside this bench's
/// `target/release/deps/` directory.
fn pttd_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PTTD") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("bench executable without a target dir")?;
    let pttd = release.join("pttd");
    if !pttd.is_file() {
        bail!("no {}: build it or set PTTD", pttd.display());
    }
    Ok(pttd)
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

impl Relay {
    /// Starts `pttd` on the built-in demo district with `extra` arguments
    /// and waits until its certificate is written (it serves by then). Its
    /// stderr goes to `<data>/pttd.log`.
    pub(crate) async fn start(extra: &[String]) -> anyhow::Result<Self> {
        let pttd = pttd_path()?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
        let ops = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
        let log = std::fs::File::create(data.join("pttd.log"))?;
        let child = Command::new(&pttd)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--ops-listen")
            .arg(ops.to_string())
            .arg("--console-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data)
            .arg("--log")
            .arg("warn")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", pttd.display()))?;
        let mut relay = Self {
            child,
            addr,
            ops,
            cert: data.join("pttd-cert.pem"),
            data,
            _dir: dir,
        };
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(status) = relay.child.try_wait()? {
                bail!("pttd exited at start-up ({status}): {}", relay.log_tail(5));
            }
            if std::fs::metadata(&relay.cert).is_ok_and(|m| m.len() > 0) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok(relay);
            }
            if Instant::now() > deadline {
                bail!("pttd did not start within {START_PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `n` lines of its stderr and how many lines it wrote.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.data.join("pttd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].join("\n  ");
        format!("{} lines on stderr; last:\n  {tail}", lines.len())
    }

    /// Stops it gracefully (SIGTERM), killing it after 10 s; its exit
    /// status as text.
    pub(crate) async fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "killed after 10 s".to_owned()
    }

    /// Everything one sample reads of the relay.
    pub(crate) async fn probe(&self) -> Probe {
        let pid = self.pid();
        let metrics = scrape(self.ops).await.unwrap_or_default();
        let data = self.data.clone();
        let (log, recordings, db_bytes) = tokio::task::spawn_blocking(move || {
            (
                calllog_rows(&data.join("pttd.sqlite")),
                dir_usage(&data.join("recordings")),
                file_len(&data.join("pttd.sqlite")) + file_len(&data.join("pttd.sqlite-wal")),
            )
        })
        .await
        .unwrap_or_default();
        Probe {
            rss_kib: status_field(pid, "VmRSS:").unwrap_or_default(),
            threads: status_field(pid, "Threads:").unwrap_or_default(),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count) as u64,
            cpu_s: cpu_seconds(pid).unwrap_or_default(),
            sessions: metric(&metrics, "pttd_terminals_connected"),
            unauthenticated: metric(&metrics, "pttd_unauthenticated_connections"),
            forwarded: metric(&metrics, "pttd_voice_datagrams_forwarded"),
            dropped: metric(&metrics, "pttd_voice_datagrams_dropped"),
            malformed_control: metric(&metrics, "pttd_control_malformed"),
            calllog_queue: metric(&metrics, "pttd_calllog_queue_depth"),
            log,
            recording_files: recordings.0,
            recording_bytes: recordings.1,
            db_bytes,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One reading of the relay.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    pub(crate) rss_kib: u64,
    pub(crate) threads: u64,
    pub(crate) fds: u64,
    /// User + system CPU seconds so far.
    pub(crate) cpu_s: f64,
    /// `pttd_terminals_connected`, all roles.
    pub(crate) sessions: f64,
    pub(crate) unauthenticated: f64,
    /// Voice datagrams handed to listeners so far.
    pub(crate) forwarded: f64,
    /// Voice datagrams dropped so far, every reason.
    pub(crate) dropped: f64,
    pub(crate) malformed_control: f64,
    pub(crate) calllog_queue: f64,
    pub(crate) log: LogRows,
    pub(crate) recording_files: u64,
    pub(crate) recording_bytes: u64,
    /// The call log's database and WAL file.
    pub(crate) db_bytes: u64,
}

/// Row counts of the call log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogRows {
    pub(crate) bursts: u64,
    pub(crate) sessions: u64,
    pub(crate) regroups: u64,
    pub(crate) alerts: u64,
    pub(crate) alert_acks: u64,
    /// Every table.
    pub(crate) all: u64,
}

/// Counts the call log's rows; zeros if it cannot be read.
fn calllog_rows(path: &Path) -> LogRows {
    let read = || -> rusqlite::Result<LogRows> {
        let db = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        db.busy_timeout(Duration::from_secs(2))?;
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut rows = LogRows::default();
        for table in tables {
            let n: i64 = db.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })?;
            let n = u64::try_from(n).unwrap_or_default();
            rows.all += n;
            match table.as_str() {
                "bursts" => rows.bursts = n,
                "sessions" => rows.sessions = n,
                "regroups" => rows.regroups = n,
                "alerts" => rows.alerts = n,
                "alert_acks" => rows.alert_acks = n,
                _ => {}
            }
        }
        Ok(rows)
    };
    read().unwrap_or_default()
}

/// Files under `dir` (recursively) and their bytes.
fn dir_usage(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) => {
                    files += 1;
                    bytes += meta.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// A numeric field of `/proc/<pid>/status` (`VmRSS:` in KiB, `Threads:`).
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds of `pid` (or of this process for `self`),
/// from `/proc/<pid>/stat` at 100 ticks a second (Linux's USER_HZ).
pub(crate) fn cpu_seconds(pid: impl std::fmt::Display) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, may hold spaces):
    // utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `GET /metrics` over plain HTTP/1.0, bounded to 5 s.
async fn scrape(ops: SocketAddr) -> Option<String> {
    let get = async {
        let mut stream = TcpStream::connect(ops).await.ok()?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {ops}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), get)
        .await
        .ok()?
}

/// The sum of every series of `family` (a counter's `_total` included) in a
/// Prometheus exposition.
pub(crate) fn metric(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let name_end = line.find(['{', ' '])?;
            let name = &line[..name_end];
            let wanted = name == family
                || name
                    .strip_prefix(family)
                    .is_some_and(|rest| rest == "_total");
            wanted.then(|| line.rsplit(' ').next()?.parse::<f64>().ok())?
        })
        .sum()
}
