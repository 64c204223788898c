//! Smoke run of the load generator against a real node started in this process (SQLite store in
//! a temporary directory, gRPC on 127.0.0.1:0, the per-peer rate limit off as for a benchmark).
//!
//! This is not a timed test: it asserts that each scenario runs and that the output is sane
//! (calls succeed, no errors, percentiles in order, the open-loop schedule is kept to the
//! request), and that failures are counted by code. Every run is bounded (a few seconds).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use atp_bench::load::{self, LoadConfig, LoadMode};
use atp_bench::raw::{self, RawOperation};
use atp_bench::{Report, Scenario, ScenarioOptions, Workload, run_load};
use atp_server::{Limits, ServerSettings};

use atp_test_node::{ADMIN_TOKEN, NodeOptions, TestNode};

/// A node as a benchmark runs it: the per-peer rate limit off, no checkpointer.
async fn start_node() -> TestNode {
    let inception_time =
        atp_core::vc::DateTimeStamp::from_unix(atp_bench::now_unix_ms() / 1000 - 3600);
    TestNode::start_with(NodeOptions {
        settings: ServerSettings {
            limits: Limits { rate_limit_per_second: 0, ..Limits::default() },
            ..ServerSettings::default()
        },
        checkpointer: false,
        inception_time: inception_time.to_string(),
        ..NodeOptions::default()
    })
    .await
}

fn assert_sane(report: &Report) {
    assert!(report.successes > 0, "no successful call: {report}");
    assert_eq!(report.errors, 0, "errors: {report}");
    assert!(report.errors_by_code.is_empty(), "{report}");
    assert!(report.duration_s > 0.0, "{report}");
    assert!(report.throughput_per_s > 0.0, "{report}");
    assert!(report.latency_us.p50 > 0, "{report}");
    assert!(report.percentiles_ordered(), "percentiles out of order: {report}");
    let json = serde_json::to_value(report).expect("report as JSON");
    assert!(json["latency_us"]["p999"].as_u64().is_some(), "{json}");
}

fn closed(concurrency: usize) -> LoadConfig {
    LoadConfig {
        mode: LoadMode::Closed { concurrency },
        warmup: Duration::from_millis(300),
        duration: Duration::from_secs(2),
    }
}

fn options(pool: usize) -> ScenarioOptions {
    ScenarioOptions {
        agents: 4,
        pool,
        hot_set: 8,
        resolve_sample: 1000,
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        ..ScenarioOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_a_real_node_with_sane_output() {
    let node = start_node().await;
    let channels = load::connect(std::slice::from_ref(&node.url), 2).await.expect("connect");

    for scenario in [
        Scenario::VerifyEnvelope,
        Scenario::SubmitInception,
        Scenario::ResolveCached,
        Scenario::ResolveUncached,
        Scenario::VerifyCredential,
        Scenario::IssueCredential,
    ] {
        let workload =
            Workload::prepare(scenario, &channels[0], &options(2000)).await.expect("prepare");
        // A pre-signed pool is used up at the node's speed, which depends on the machine: no
        // warm-up for those scenarios, so the pool can never run out before the window (the
        // report then notes when it ran out and measures up to there).
        let mut load = closed(4);
        if matches!(scenario, Scenario::VerifyEnvelope | Scenario::SubmitInception) {
            load.warmup = Duration::ZERO;
        }
        let report = run_load(&workload, &channels, &load).await.expect("run");
        eprintln!("{report}");
        assert_eq!(report.scenario, scenario.name());
        assert_sane(&report);
    }

    // Open loop: the schedule is kept to the request, late or not: 100 req/s for 1 s is 100
    // requests in the window, every one answered.
    let workload = Workload::prepare(Scenario::VerifyEnvelope, &channels[0], &options(200))
        .await
        .expect("prepare");
    let config = LoadConfig {
        mode: LoadMode::Open { rate: 100.0, max_in_flight: 64 },
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
    };
    let report = run_load(&workload, &channels, &config).await.expect("open loop");
    eprintln!("{report}");
    assert_sane(&report);
    assert!((99..=101).contains(&report.successes), "{report}");

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_are_counted_by_code_and_reason() {
    let node = start_node().await;
    let channels = load::connect(std::slice::from_ref(&node.url), 1).await.expect("connect");
    let workload = Workload::prepare(Scenario::SubmitInception, &channels[0], &options(50))
        .await
        .expect("prepare");
    let config = LoadConfig {
        mode: LoadMode::Closed { concurrency: 2 },
        warmup: Duration::ZERO,
        duration: Duration::from_secs(2),
    };
    let first = run_load(&workload, &channels, &config).await.expect("first run");
    assert_eq!(first.successes, 50, "{first}");
    assert!(first.notes.iter().any(|n| n.contains("pool ran out")), "{first}");
    // The same inceptions again: each is now a duplicate, counted as an error.
    let second = run_load(&workload, &channels, &config).await.expect("second run");
    assert_eq!(second.successes, 0, "{second}");
    assert_eq!(second.errors, 50, "{second}");
    assert_eq!(second.errors_by_code.keys().collect::<Vec<_>>(), ["AlreadyExists"], "{second}");

    // Closed loop with zero callers and open loop with a silly rate are refused.
    let zero = LoadConfig { mode: LoadMode::Closed { concurrency: 0 }, ..config.clone() };
    assert!(run_load(&workload, &channels, &zero).await.is_err());
    let nan = LoadConfig { mode: LoadMode::Open { rate: f64::NAN, max_in_flight: 1 }, ..config };
    assert!(run_load(&workload, &channels, &nan).await.is_err());
    node.stop().await;
}

#[test]
fn raw_measurements_count_operations() {
    for op in
        [RawOperation::CompositeSign, RawOperation::CompositeVerify, RawOperation::EnvelopeVerify]
    {
        let r = raw::measure(op, 2, Duration::from_millis(50), Duration::from_millis(300))
            .expect("raw measurement");
        assert_eq!(r.threads, 2);
        assert!(r.operations > 0, "{r}");
        assert!(r.throughput_per_s > 0.0 && r.mean_us > 0.0, "{r}");
    }
    assert!(
        raw::measure(RawOperation::CompositeVerify, 0, Duration::ZERO, Duration::ZERO).is_err()
    );
}
