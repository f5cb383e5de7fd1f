//! The files in `deploy/` stay true to the relay: every metric the alert
//! rules and the Grafana dashboard query is one the running relay exports,
//! and the dashboard is valid JSON whose queries all use the provisioned
//! data source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ptt_tests::{TestDirectory, TestRelay};
use serde_json::Value;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// Every `pttd_…` metric name in `text` (recording rules, `pttd:…`, are not
/// metrics of the relay and do not match).
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("pttd_") {
        let start = at + found;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |len| start + len);
        // Part of a longer identifier (e.g. `foo_pttd_x`) is not a name.
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            names.insert(text[start..end].to_owned());
        }
        at = end;
    }
    names
}

/// The series names a Prometheus scrape of `exposition` yields, including
/// families declared without a series yet (per-group gauges before any
/// report) and the `_bucket`/`_sum`/`_count` series of histograms.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            match kind {
                "counter" if !name.ends_with("_total") => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {}
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_use_is_exported() -> anyhow::Result<()> {
    let relay = TestRelay::start(&TestDirectory::new().guards([1]).group(10, [1])).await?;
    let exposition = reqwest::get(format!("http://{}/metrics", relay.ops))
        .await?
        .error_for_status()?
        .text()
        .await?;
    relay.stop().await?;
    let exported = exported(&exposition);
    assert!(
        exported.contains("pttd_build_info"),
        "not an exposition of the relay:\n{exposition}"
    );

    for file in ["prometheus/rules.yml", "grafana/dashboards/pttd.json"] {
        let text = std::fs::read_to_string(deploy(file))?;
        let used = referenced(&text);
        assert!(used.len() >= 5, "{file} names only {used:?}");
        let missing: Vec<_> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics the relay does not export: {missing:?}\n\
             exported: {exported:?}"
        );
    }
    Ok(())
}

#[test]
fn the_dashboard_is_valid_and_queries_the_provisioned_prometheus() -> anyhow::Result<()> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(deploy(
        "grafana/dashboards/pttd.json",
    ))?)?;
    assert_eq!(dashboard["uid"], "pttd");
    let provisioned =
        std::fs::read_to_string(deploy("grafana/provisioning/datasources/prometheus.yml"))?;
    assert!(provisioned.contains("uid: prometheus"), "{provisioned}");
    assert!(
        dashboard["templating"]["list"]
            .as_array()
            .is_some_and(|vars| vars.iter().any(|v| v["type"] == "datasource"
                && v["query"] == "prometheus"
                && v["current"]["value"] == "prometheus")),
        "the dashboard's data source variable does not default to the provisioned one"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            assert!(
                expr.contains("pttd_") || expr.contains("up{"),
                "{title}: {expr}"
            );
            queries += 1;
        }
    }
    assert!(queries >= 20, "only {queries} queries");
    Ok(())
}

#[test]
fn the_scrape_target_is_the_ops_port_and_the_rules_are_loaded() -> anyhow::Result<()> {
    let prometheus = std::fs::read_to_string(deploy("prometheus/prometheus.yml"))?;
    let ops_port = ptt_relay::config::Config::default().ops_listen.port();
    assert!(
        prometheus.contains(&format!("\"pttd:{ops_port}\"")),
        "{prometheus}"
    );
    assert!(prometheus.contains("- rules.yml"));
    assert!(prometheus.contains("job_name: pttd"));
    // The alerts select the job by that name.
    let rules = std::fs::read_to_string(deploy("prometheus/rules.yml"))?;
    assert!(rules.contains("up{job=\"pttd\"}"));
    Ok(())
}
