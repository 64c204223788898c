//! The scale benchmark of issue 4: 1,000,000 agents and 10,000,000 evidence edges, recomputed on
//! one thread. Prints the load time, the recompute time, the iterations and the peak resident
//! memory (`VmHWM` of /proc/self/status).
//!
//! `cargo run --release -p atp-trust --example scale [agents] [edges]`
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use atp_trust::{CredentialEvidence, EvidenceGraph, EvidenceKind, Severity, TrustConfig, compute};

const NOW: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

/// A SplitMix64 generator: a seeded, reproducible graph without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let agents: u32 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let edges: u64 = args.next().map_or(10_000_000, |a| a.parse().unwrap());

    let load = Instant::now();
    let mut graph = EvidenceGraph::with_capacity(agents as usize, edges as usize);
    for i in 0..agents {
        graph.intern(&format!("did:atp:zQmAgent{i:09}")).unwrap();
    }
    let mut rng = SplitMix(2026);
    let mut inserted = 0u64;
    while inserted < edges {
        // Preferential-ish attachment: half the subjects come from the first 1% of agents, so
        // that some agents have very large in-degrees, as popular services would.
        let src = (rng.next() % u64::from(agents)) as u32;
        let dst = if rng.next() & 1 == 0 {
            (rng.next() % u64::from(agents.div_ceil(100))) as u32
        } else {
            (rng.next() % u64::from(agents)) as u32
        };
        if src == dst {
            continue;
        }
        let kind = match rng.next() % 100 {
            0..=59 => EvidenceKind::ReceiptSuccess,
            60..=89 => EvidenceKind::Endorsement,
            90..=96 => EvidenceKind::ReceiptFailure,
            97..=98 => EvidenceKind::Incident(Severity::Low),
            _ => EvidenceKind::Incident(Severity::High),
        };
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&inserted.to_be_bytes());
        hash[8..16].copy_from_slice(&rng.next().to_be_bytes());
        let age = (rng.next() % (730 * DAY as u64)) as i64;
        graph.insert_ids(hash, src, dst, kind, NOW - age).unwrap();
        inserted += 1;
    }
    let anchors: Vec<String> = (0..100).map(|i| format!("did:atp:zQmAgent{i:09}")).collect();
    for i in 0..10_000u32 {
        let subject = 100 + (rng.next() % u64::from(agents - 100)) as u32;
        graph
            .set_credential(&CredentialEvidence {
                id: format!("cred-{i}"),
                issuer: anchors[(i % 100) as usize].clone(),
                subject: format!("did:atp:zQmAgent{subject:09}"),
                valid_from_ms: NOW - 30 * DAY,
                valid_until_ms: Some(NOW + 365 * DAY),
                revoked: false,
            })
            .unwrap();
    }
    let load_s = load.elapsed().as_secs_f64();
    let rss_loaded = peak_rss_mib().unwrap_or(f64::NAN);

    let start = Instant::now();
    let snapshot = compute(&graph, &anchors, &TrustConfig::default(), NOW).unwrap();
    let recompute_s = start.elapsed().as_secs_f64();
    let peak = peak_rss_mib().unwrap_or(f64::NAN);

    let levels = snapshot.iter().fold([0u64; 5], |mut acc, r| {
        acc[usize::from(r.level)] += 1;
        acc
    });
    let explain = Instant::now();
    let ex = snapshot.explain("did:atp:zQmAgent000000500", 10);
    let explain_ms = explain.elapsed().as_secs_f64() * 1000.0;

    println!("agents                {agents}");
    println!("evidence edges        {inserted} (+10000 credentials)");
    println!("matrix edges          {}", snapshot.edge_count());
    println!("load                  {load_s:.2} s (peak RSS so far {rss_loaded:.0} MiB)");
    println!(
        "recompute             {recompute_s:.2} s, {} iterations, residual {:.2e}",
        snapshot.iterations(),
        snapshot.residual()
    );
    println!("peak RSS (VmHWM)      {peak:.0} MiB");
    println!("levels 0..4           {levels:?}");
    println!("explain (10 paths)    {explain_ms:.1} ms, {} paths", ex.paths.len());
}
