//! `ptt load` against an in-process relay on loopback: a small bounded run
//! that must lose nothing, duplicate nothing, and report ordered
//! percentiles in a JSON report with the documented fields.

use std::time::{Duration, Instant};

use ptt_cli::load::{LoadArgs, Report};
use ptt_relay::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_run_against_in_process_relay() -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let generated = ptt_directory::generate(30, 3, 7)?;
    let directory = dir.path().join("directory.toml");
    let secrets = dir.path().join("secrets.txt");
    std::fs::write(&directory, &generated.toml)?;
    std::fs::write(&secrets, &generated.secrets)?;
    let config = Config {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse()?,
        ops_listen: "127.0.0.1:0".parse()?,
        directory: Some(directory),
        ..Config::default()
    };
    let relay = ptt_relay::Relay::load(config).await?;
    let addr = relay.local_addr();
    let cert = relay.cert_path().to_owned();
    let token = relay.shutdown_token();
    let task = tokio::spawn(relay.run());

    let report_path = dir.path().join("report.json");
    let args = LoadArgs {
        server: Some(addr),
        ca: Some(cert),
        secrets: Some(secrets),
        terminals: 30,
        groups: 3,
        talkers_per_group: 2,
        duration: 3,
        report: Some(report_path.clone()),
        quiet: true,
        ..LoadArgs::default()
    };
    tokio::time::timeout(Duration::from_secs(30), ptt_cli::load::run(args)).await??;
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;

    let text = std::fs::read_to_string(&report_path)?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    for field in [
        "terminals",
        "groups",
        "bursts",
        "frames_sent",
        "frames_expected",
        "frames_received",
        "loss_ratio",
        "duplicates",
        "reordered",
        "access_ms",
        "one_way_ms",
        "mouth_to_ear_ms",
        "mouth_to_ear_approx_ms",
        "late_entry_ms",
        "relay_cpu_seconds",
        "relay_peak_rss_kib",
    ] {
        assert!(json.get(field).is_some(), "report lacks {field}: {text}");
    }
    let report: Report = serde_json::from_str(&text)?;
    println!("{}", report.table());
    assert_eq!(report.terminals, 30);
    assert_eq!(report.groups, 3);
    assert!(!report.own_relay);
    assert!(report.bursts > 0, "{text}");
    assert!(report.frames_sent > 0, "{text}");
    assert!(report.frames_expected >= report.frames_sent, "{text}");
    assert!(
        report.loss_ratio < 0.01,
        "loss {}: {text}",
        report.loss_ratio
    );
    assert!(report.frames_received <= report.frames_expected, "{text}");
    assert_eq!(report.duplicates, 0, "{text}");
    assert_eq!(report.decode_errors, 0, "{text}");
    for (name, p) in [
        ("access", report.access_ms),
        ("one-way", report.one_way_ms),
        ("mouth-to-ear", report.mouth_to_ear_ms),
        ("mouth-to-ear approx", report.mouth_to_ear_approx_ms),
        ("late entry", report.late_entry_ms),
    ] {
        let p = p.unwrap_or_else(|| panic!("no {name} samples: {text}"));
        assert!(p.count > 0);
        assert!(
            p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max,
            "{name} percentiles out of order: {p:?}"
        );
        assert!(p.p50 >= 0.0);
    }
    // Loopback: the relay path is far below the MCPTT budgets.
    assert!(report.access_ms.unwrap().p95 < 300.0, "{text}");
    assert!(report.late_entry_ms.unwrap().p95 < 1000.0, "{text}");
    assert!(report.relay_cpu_seconds.is_none());
    assert!(started.elapsed() < Duration::from_secs(40));
    Ok(())
}
