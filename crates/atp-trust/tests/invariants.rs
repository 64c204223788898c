//! Property tests on random evidence graphs: scores stay in [0, 1], adding positive evidence
//! from an anchor never lowers its subject's score, and the result does not depend on the order
//! in which evidence was inserted.
#![allow(clippy::unwrap_used)]

use atp_trust::{Evidence, EvidenceGraph, EvidenceKind, Severity, Snapshot, TrustConfig, compute};
use proptest::prelude::*;

const NOW: i64 = 1_767_225_600_000;
const NODES: u8 = 12;

fn name(i: u8) -> String {
    format!("did:atp:zQmNode{i:02}")
}

fn kind_of(k: u8) -> EvidenceKind {
    match k % 7 {
        0 | 1 => EvidenceKind::Endorsement,
        2 => EvidenceKind::IssuerEndorsement,
        3 => EvidenceKind::ReceiptSuccess,
        4 => EvidenceKind::ReceiptFailure,
        5 => EvidenceKind::Incident(Severity::Low),
        _ => EvidenceKind::Incident(Severity::High),
    }
}

/// (issuer, subject, kind, age in days)
type RawEdge = (u8, u8, u8, u16);

fn evidence(i: usize, e: &RawEdge) -> Option<Evidence> {
    let (src, dst) = (e.0 % NODES, e.1 % NODES);
    (src != dst).then(|| {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
        Evidence {
            content_hash: hash,
            issuer: name(src),
            subject: name(dst),
            kind: kind_of(e.2),
            created_ms: NOW - i64::from(e.3) * 86_400_000,
        }
    })
}

fn build(edges: &[RawEdge], order: &[usize]) -> EvidenceGraph {
    let mut g = EvidenceGraph::new();
    for &i in order {
        if let Some(ev) = evidence(i, &edges[i]) {
            g.insert(&ev).unwrap();
        }
    }
    g
}

fn snapshot(g: &EvidenceGraph, anchors: &[u8]) -> Snapshot {
    let anchors: Vec<String> = anchors.iter().map(|a| name(*a % NODES)).collect();
    compute(g, &anchors, &TrustConfig::default(), NOW).unwrap()
}

fn graphs() -> impl Strategy<Value = (Vec<RawEdge>, Vec<u8>)> {
    (
        prop::collection::vec((0..NODES, 0..NODES, any::<u8>(), 0u16..400), 0..60),
        prop::collection::vec(0..NODES, 1..3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scores_are_in_the_unit_interval((edges, anchors) in graphs()) {
        let order: Vec<usize> = (0..edges.len()).collect();
        let snap = snapshot(&build(&edges, &order), &anchors);
        let mut levels = [0u64; 5];
        for r in snap.iter() {
            prop_assert!((0.0..=1.0).contains(&r.score), "{r:?}");
            prop_assert!(r.raw_score >= 0.0 && r.raw_score <= 1.0 + 1e-9, "{r:?}");
            prop_assert!(r.level <= 4);
            levels[usize::from(r.level)] += 1;
        }
        prop_assert_eq!(snap.level_counts(), levels);
    }

    #[test]
    fn the_result_does_not_depend_on_insertion_order(
        (edges, anchors) in graphs(),
        seed in any::<u64>(),
    ) {
        let order: Vec<usize> = (0..edges.len()).collect();
        let mut shuffled = order.clone();
        // Fisher-Yates with a SplitMix64 stream.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let j = ((z ^ (z >> 31)) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let a = snapshot(&build(&edges, &order), &anchors);
        let mut reversed_anchors = anchors.clone();
        reversed_anchors.reverse();
        let b = snapshot(&build(&edges, &shuffled), &reversed_anchors);
        let ra: Vec<_> = a.iter().collect();
        let rb: Vec<_> = b.iter().collect();
        prop_assert_eq!(ra, rb);
    }

    #[test]
    fn positive_evidence_from_an_anchor_never_lowers_the_subject(
        (edges, anchors) in graphs(),
        subject in 0..NODES,
        endorse in any::<bool>(),
    ) {
        let anchor = anchors[0] % NODES;
        prop_assume!(anchor != subject);
        let order: Vec<usize> = (0..edges.len()).collect();
        let mut g = build(&edges, &order);
        let before = snapshot(&g, &anchors).get(&name(subject));
        g.insert(&Evidence {
            content_hash: [0xff; 32],
            issuer: name(anchor),
            subject: name(subject),
            kind: if endorse { EvidenceKind::Endorsement } else { EvidenceKind::ReceiptSuccess },
            created_ms: NOW,
        }).unwrap();
        let after = snapshot(&g, &anchors).get(&name(subject));
        prop_assert!(
            after.score >= before.score - 1e-6,
            "{:?} -> {:?}", before, after
        );
    }
}
