//! `deploy/prometheus/`: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and the scrape configuration passes `promtool check config`.
//!
//! Without `promtool` the test fails under `CI=true` and is skipped loudly otherwise.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("promtool")).find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "`promtool` is not installed (Debian package `prometheus`; scripts/test.sh)");
        eprintln!("\n!!! SKIPPED: `promtool` is not installed (apt-get install prometheus) !!!\n");
    }
    found
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus")
}

fn run(promtool: &Path, args: &[&str]) {
    let out =
        Command::new(promtool).current_dir(deploy_dir()).args(args).output().expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    run(&promtool, &["check", "rules", "alerts.yml"]);
    run(&promtool, &["test", "rules", "alerts_test.yml"]);
}

#[test]
fn scrape_config_passes_promtool() {
    let Some(promtool) = promtool() else { return };
    run(&promtool, &["check", "config", "prometheus.yml"]);
}

#[test]
fn every_alert_named_by_the_issue_exists() {
    let rules = std::fs::read_to_string(deploy_dir().join("alerts.yml")).unwrap();
    for alert in [
        "AtpNodeDown",
        "AtpGrpcErrorRatioHigh",
        "AtpCheckpointStale",
        "AtpGrpcLatencyP99High",
        "AtpStoreErrors",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "missing alert {alert}");
    }
}
