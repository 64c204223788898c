//! Group-commit throughput: KEL inceptions (and evidence appends) per second through
//! `SqliteStore`, one transaction (one `fsync`) per write versus batches, at several numbers of
//! concurrent writers.
//!
//! `cargo bench -p atp-store --bench group_commit` prints a table. Under `cargo test` (no
//! `--bench` argument) it runs a tiny smoke version. The events are signed before timing
//! starts, so the figures are the store's alone (the node's signature verification comes on
//! top).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atp_core::accepted::AcceptedEvent;
use atp_store::{SqliteConfig, SqliteStore, Store};

/// Appends every event (each a fresh DID) with `writers` concurrent tasks; returns the time.
async fn run(config: SqliteConfig, events: &[AcceptedEvent], writers: usize) -> Duration {
    let dir = common::TestDir::new("bench");
    let store = Arc::new(SqliteStore::open_with(dir.path(), config).await.unwrap());
    let queue = Arc::new(Mutex::new(events.to_vec()));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (store, queue) = (store.clone(), queue.clone());
        set.spawn(async move {
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(event) = next else { break };
                store.append_kel_event(event).await.unwrap();
            }
        });
    }
    set.join_all().await;
    let elapsed = start.elapsed();
    assert_eq!(store.identity_count().await.unwrap(), events.len() as u64);
    store.close().await.unwrap();
    elapsed
}

async fn run_evidence(config: SqliteConfig, n: usize, writers: usize) -> Duration {
    let dir = common::TestDir::new("bench");
    let store = Arc::new(SqliteStore::open_with(dir.path(), config).await.unwrap());
    let queue = Arc::new(Mutex::new((0..n).collect::<Vec<_>>()));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (store, queue) = (store.clone(), queue.clone());
        set.spawn(async move {
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(i) = next else { break };
                let ev = atp_store::NewEvidence {
                    subject: "did:atp:x".into(),
                    evidence_type: "receipt".into(),
                    body: format!("{i:064}").into_bytes(),
                };
                store.append_evidence(ev).await.unwrap();
            }
        });
    }
    set.join_all().await;
    let elapsed = start.elapsed();
    store.close().await.unwrap();
    elapsed
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 2000 } else { 40 };
    let k = common::keys(2);
    let t = Instant::now();
    let events: Vec<AcceptedEvent> =
        (0..n).map(|i| common::incept(&k, &format!("bench{i}")).inception()).collect();
    println!("signed and accepted {n} inception events in {:.1?} (not timed below)", t.elapsed());
    let rt = common::runtime();
    let configs: &[(&str, usize, Duration)] = &[
        ("no group commit (max_batch 1)", 1, Duration::ZERO),
        ("group commit (max_batch 256)", 256, Duration::ZERO),
        ("group commit + 2 ms linger", 256, Duration::from_millis(2)),
    ];
    let writer_counts: &[usize] = if full { &[1, 4, 16, 64] } else { &[1, 8] };
    // Warm the disk and the page cache; not reported.
    rt.block_on(run(SqliteConfig::default(), &events, 8));
    println!("{:<32} {:>8} {:>12} {:>14}", "configuration", "writers", "appends/s", "mean latency");
    for (name, max_batch, linger) in configs {
        for &writers in writer_counts {
            let config =
                SqliteConfig { max_batch: *max_batch, batch_linger: *linger, ..Default::default() };
            let elapsed = rt.block_on(run(config, &events, writers));
            let rate = n as f64 / elapsed.as_secs_f64();
            let latency = elapsed.as_secs_f64() * writers as f64 / n as f64;
            println!("{name:<32} {writers:>8} {rate:>12.0} {:>11.2} ms", latency * 1000.0);
        }
    }
    println!("\nevidence appends (64-byte bodies, no KEL row work):");
    for (name, max_batch, linger) in configs {
        for &writers in writer_counts {
            let config =
                SqliteConfig { max_batch: *max_batch, batch_linger: *linger, ..Default::default() };
            let elapsed = rt.block_on(run_evidence(config, n, writers));
            let rate = n as f64 / elapsed.as_secs_f64();
            println!("{name:<32} {writers:>8} {rate:>12.0}");
        }
    }
}
