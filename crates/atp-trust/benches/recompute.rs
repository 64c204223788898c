//! Recompute time of the trust engine on seeded random graphs (small sizes; the 1M-agent /
//! 10M-edge figure comes from `examples/scale.rs`, see docs/benchmarks.md).
#![allow(clippy::unwrap_used, missing_docs)]

use atp_trust::{EvidenceGraph, EvidenceKind, TrustConfig, compute};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// A SplitMix64 generator: deterministic graphs without a dependency.
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

const NOW: i64 = 1_767_225_600_000;

fn graph(agents: u32, edges: u64) -> EvidenceGraph {
    let mut g = EvidenceGraph::with_capacity(agents as usize, edges as usize);
    for i in 0..agents {
        g.intern(&format!("did:atp:agent{i:08}")).unwrap();
    }
    let mut rng = SplitMix(42);
    let mut i = 0u64;
    while i < edges {
        let src = (rng.next() % u64::from(agents)) as u32;
        let dst = (rng.next() % u64::from(agents)) as u32;
        if src == dst {
            continue;
        }
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&i.to_be_bytes());
        let kind = match rng.next() % 10 {
            0..=5 => EvidenceKind::ReceiptSuccess,
            6..=8 => EvidenceKind::Endorsement,
            _ => EvidenceKind::ReceiptFailure,
        };
        let age = (rng.next() % (365 * 86_400_000)) as i64;
        g.insert_ids(hash, src, dst, kind, NOW - age).unwrap();
        i += 1;
    }
    g
}

fn recompute(c: &mut Criterion) {
    let mut group = c.benchmark_group("trust_recompute");
    group.sample_size(10);
    for (agents, edges) in [(10_000u32, 100_000u64), (100_000, 1_000_000)] {
        let g = graph(agents, edges);
        let anchors: Vec<String> = (0..10).map(|i| format!("did:atp:agent{i:08}")).collect();
        let config = TrustConfig::default();
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{agents}x{edges}")),
            &g,
            |b, g| b.iter(|| compute(g, &anchors, &config, NOW).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, recompute);
criterion_main!(benches);
