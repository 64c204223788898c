//! The trust model's promises, as tests that can fail: Sybil resistance with an asserted bound,
//! honest growth and its fall after incidents, decay by the configured half-life, no
//! self-inflation, revocation, deactivation, and idempotent evidence.
#![allow(clippy::unwrap_used)]

use atp_core::envelope::KeyValidity;
use atp_core::evidence::{self, EvidenceBody, EvidenceVerifyContext, Outcome};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_trust::{
    CredentialEvidence, Evidence, EvidenceGraph, EvidenceKind, Gate, Severity, Snapshot,
    TrustConfig, compute,
};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const ANCHOR: &str = "did:atp:zQmAnchor";

struct Builder {
    graph: EvidenceGraph,
    counter: u64,
}

impl Builder {
    fn new() -> Self {
        Builder { graph: EvidenceGraph::new(), counter: 0 }
    }

    fn add(&mut self, issuer: &str, subject: &str, kind: EvidenceKind, created_ms: i64) -> bool {
        self.counter += 1;
        let hash = atp_crypto::sha256(format!("evidence {}", self.counter).as_bytes());
        self.graph
            .insert(&Evidence {
                content_hash: hash,
                issuer: issuer.into(),
                subject: subject.into(),
                kind,
                created_ms,
            })
            .unwrap()
    }

    fn credential(&mut self, id: &str, issuer: &str, subject: &str) {
        self.graph
            .set_credential(&CredentialEvidence {
                id: id.into(),
                issuer: issuer.into(),
                subject: subject.into(),
                valid_from_ms: NOW - DAY,
                valid_until_ms: Some(NOW + 365 * DAY),
                revoked: false,
            })
            .unwrap();
    }

    fn snapshot(&self, anchors: &[&str]) -> Snapshot {
        let anchors: Vec<String> = anchors.iter().map(|a| a.to_string()).collect();
        compute(&self.graph, &anchors, &TrustConfig::default(), NOW).unwrap()
    }
}

fn did(prefix: &str, i: usize) -> String {
    format!("did:atp:zQm{prefix}{i:05}")
}

/// A small honest community: the anchor endorses five agents, which endorse each other.
fn honest_community(b: &mut Builder) {
    for i in 0..5 {
        b.add(ANCHOR, &did("Honest", i), EvidenceKind::Endorsement, NOW - DAY);
        b.add(&did("Honest", i), &did("Honest", (i + 1) % 5), EvidenceKind::Endorsement, NOW);
    }
}

/// A SplitMix64 generator for seeded graphs.
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

#[test]
fn a_sybil_ring_without_an_anchor_path_stays_at_level_0_and_one_edge_bounds_it() {
    const SYBILS: usize = 5_000;
    const DEGREE: usize = 20;
    let mut b = Builder::new();
    honest_community(&mut b);
    let mut rng = SplitMix(7);
    for i in 0..SYBILS {
        for _ in 0..DEGREE {
            let j = (rng.next() % SYBILS as u64) as usize;
            if j != i {
                b.add(&did("Sybil", i), &did("Sybil", j), EvidenceKind::Endorsement, NOW);
                b.add(&did("Sybil", i), &did("Sybil", j), EvidenceKind::ReceiptSuccess, NOW);
            }
        }
        // The ring also credentials itself and reports the honest agents.
        b.credential(&format!("sybil-cred-{i}"), &did("Sybil", (i + 1) % SYBILS), &did("Sybil", i));
        b.add(&did("Sybil", i), &did("Honest", i % 5), EvidenceKind::Incident(Severity::High), NOW);
    }
    let before = b.snapshot(&[ANCHOR]);
    for i in 0..SYBILS {
        let r = before.get(&did("Sybil", i));
        assert_eq!(r.level, 0, "{r:?}");
        assert_eq!(r.score, 0.0, "{r:?}");
    }
    // Reports by untrusted DIDs weigh nothing and cap nobody.
    for i in 0..5 {
        let h = before.get(&did("Honest", i));
        assert_eq!(h.penalty, 0.0);
        assert!(!h.gates.contains(&Gate::OpenHighSeverityIncident), "{h:?}");
        assert!(h.level >= 1, "{h:?}");
    }

    // One anchor edge into the ring.
    b.add(ANCHOR, &did("Sybil", 0), EvidenceKind::Endorsement, NOW);
    let after = b.snapshot(&[ANCHOR]);
    let d = TrustConfig::default().damping;
    let edge_flow = after.raw_score(ANCHOR) * after.edge_weight(ANCHOR, &did("Sybil", 0));
    let bound = d / (1.0 - d) * edge_flow;
    let ring_mass: f64 = (0..SYBILS).map(|i| after.raw_score(&did("Sybil", i))).sum();
    assert!(ring_mass > 0.0, "the edge does carry trust into the ring");
    assert!(ring_mass <= bound * (1.0 + 1e-5), "ring mass {ring_mass} exceeds the bound {bound}");
    // Without a credential from an issuer the anchors trust, nobody in the ring passes level 1.
    for i in 0..SYBILS {
        assert!(after.get(&did("Sybil", i)).level <= 1);
    }
}

#[test]
fn honest_growth_then_incidents() {
    let agent = "did:atp:zQmGrowing";
    let mut b = Builder::new();
    honest_community(&mut b);
    b.credential("cred-1", ANCHOR, agent);
    for k in 0..50 {
        let counterparty = did("Honest", k % 5);
        b.add(&counterparty, agent, EvidenceKind::ReceiptSuccess, NOW - (k as i64) * 3_600_000);
    }
    let grown = b.snapshot(&[ANCHOR]).get(agent);
    assert!(grown.level >= 2, "{grown:?}");
    assert_eq!(grown.evidence_count, 51);

    for k in 0..3 {
        b.add(ANCHOR, agent, EvidenceKind::Incident(Severity::High), NOW - k * 60_000);
    }
    let fallen = b.snapshot(&[ANCHOR]).get(agent);
    assert!(fallen.level <= 1, "{fallen:?}");
    assert!(fallen.score < grown.score, "{fallen:?} vs {grown:?}");
    assert!(fallen.penalty > 0.0);
    assert!(fallen.gates.contains(&Gate::OpenHighSeverityIncident));
}

#[test]
fn evidence_decays_as_the_half_life_says() {
    let config = TrustConfig::default();
    let (d, prior, w) = (config.damping, config.issuer_prior_weight, config.endorsement_weight);
    let mut previous = f64::INFINITY;
    for half_lives in 0..4 {
        let mut g = EvidenceGraph::new();
        let age = half_lives * config.half_life_ms;
        g.insert(&Evidence {
            content_hash: [1; 32],
            issuer: ANCHOR.into(),
            subject: "did:atp:zQmB".into(),
            kind: EvidenceKind::Endorsement,
            created_ms: NOW - age,
        })
        .unwrap();
        let snap = compute(&g, &[ANCHOR.to_string()], &config, NOW).unwrap();
        // Closed form for anchor A -> B: p = w' / (w' + prior) with w' = w * 2^-age/half_life;
        // r(B) = d p r(A), and the mass B and the prior hand back restarts at A, so
        // r(A) + r(B) = 1.
        let weight = w * 0.5f64.powi(half_lives as i32);
        let p = weight / (weight + prior);
        let expected = d * p / (1.0 + d * p);
        let raw = snap.raw_score("did:atp:zQmB");
        assert!(
            (raw - expected).abs() < 1e-6,
            "after {half_lives} half-lives: {raw} != {expected}"
        );
        assert!((snap.edge_weight(ANCHOR, "did:atp:zQmB") - p).abs() < 1e-6);
        let score = snap.get("did:atp:zQmB").score;
        assert!(score < previous, "the score falls with age");
        previous = score;
    }
}

fn lookup_for(
    dids: &[(&'static str, &'static SigningKey)],
) -> impl Fn(&str, u64) -> Option<KeyValidity> + use<> {
    let table: Vec<(&str, KeyValidity)> = dids
        .iter()
        .map(|(d, k)| (*d, KeyValidity { key: k.public_key(), valid_from: 0, valid_until: None }))
        .collect();
    move |did: &str, seq: u64| {
        table.iter().find(|(d, _)| *d == did && seq == 0).map(|(_, v)| v.clone())
    }
}

#[test]
fn self_inflation_changes_nothing() {
    let agent = "did:atp:zQmSelfish";
    let partner = "did:atp:zQmPartner";
    let mut b = Builder::new();
    honest_community(&mut b);
    b.add(&did("Honest", 0), agent, EvidenceKind::Endorsement, NOW);
    let before = b.snapshot(&[ANCHOR]).get(agent);
    assert!(before.score > 0.0);

    // Endorsing or reporting itself is refused by the graph and leaves nothing behind.
    for kind in [EvidenceKind::Endorsement, EvidenceKind::ReceiptSuccess] {
        let err = b.graph.insert(&Evidence {
            content_hash: [9; 32],
            issuer: agent.into(),
            subject: agent.into(),
            kind,
            created_ms: NOW,
        });
        assert_eq!(err.unwrap_err().code(), "EVIDENCE_SELF");
    }
    let self_cred = CredentialEvidence {
        id: "self".into(),
        issuer: agent.into(),
        subject: agent.into(),
        valid_from_ms: 0,
        valid_until_ms: None,
        revoked: false,
    };
    assert!(b.graph.set_credential(&self_cred).is_err());

    // A receipt signed by the agent alone never verifies, so it never reaches the graph.
    static KEYS: std::sync::OnceLock<(SigningKey, SigningKey)> = std::sync::OnceLock::new();
    let (agent_key, partner_key) = KEYS.get_or_init(|| {
        (
            SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[1; 64]).unwrap(),
            SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[2; 64]).unwrap(),
        )
    });
    let lookup = lookup_for(&[(agent, agent_key), (partner, partner_key)]);
    let ctx = EvidenceVerifyContext { key_lookup: &lookup, now_ms: NOW, max_skew_ms: 0 };
    let body =
        EvidenceBody::receipt(partner, 0, agent, 0, "2025-12-31T00:00:00Z", "x", Outcome::Success);
    let forged = body.sign(agent_key).unwrap().countersign(agent_key).unwrap();
    assert_eq!(evidence::verify(&forged, &ctx).unwrap_err().code(), "EVIDENCE_BAD_SIGNATURE");
    let alone =
        EvidenceBody::receipt(agent, 0, partner, 0, "2025-12-31T00:00:00Z", "x", Outcome::Success)
            .sign(agent_key)
            .unwrap();
    assert_eq!(evidence::verify(&alone, &ctx).unwrap_err().code(), "EVIDENCE_BAD_SIGNATURE");

    let after = b.snapshot(&[ANCHOR]).get(agent);
    assert_eq!(after, before);
}

#[test]
fn revoking_the_gating_credential_drops_the_level_at_the_next_computation() {
    let agent = "did:atp:zQmCredentialed";
    let mut b = Builder::new();
    honest_community(&mut b);
    for i in 0..5 {
        b.add(&did("Honest", i), agent, EvidenceKind::Endorsement, NOW);
    }
    let uncredentialed = b.snapshot(&[ANCHOR]).get(agent);
    assert_eq!(uncredentialed.level, 1, "{uncredentialed:?}");
    assert!(uncredentialed.gates.contains(&Gate::NoTrustedCredential));

    b.credential("cred-7", ANCHOR, agent);
    let credentialed = b.snapshot(&[ANCHOR]).get(agent);
    assert!(credentialed.level >= 2, "{credentialed:?}");

    assert!(b.graph.revoke_credential("cred-7"));
    let revoked = b.snapshot(&[ANCHOR]).get(agent);
    assert!(revoked.level <= 1, "{revoked:?}");
    assert!(revoked.gates.contains(&Gate::NoTrustedCredential));

    // An expired credential drops out the same way.
    b.graph
        .set_credential(&CredentialEvidence {
            id: "cred-8".into(),
            issuer: ANCHOR.into(),
            subject: agent.into(),
            valid_from_ms: NOW - 10 * DAY,
            valid_until_ms: Some(NOW - DAY),
            revoked: false,
        })
        .unwrap();
    assert!(b.snapshot(&[ANCHOR]).get(agent).level <= 1);

    // A credential from an issuer the anchors endorsed as an issuer does count.
    let issuer = did("Honest", 3);
    b.add(ANCHOR, &issuer, EvidenceKind::IssuerEndorsement, NOW);
    b.credential("cred-9", &issuer, agent);
    assert!(b.snapshot(&[ANCHOR]).get(agent).level >= 2);
}

#[test]
fn deactivation_stops_evidence_from_and_about_the_did() {
    let agent = did("Honest", 1);
    let mut b = Builder::new();
    honest_community(&mut b);
    let before = b.snapshot(&[ANCHOR]);
    assert!(before.get(&agent).score > 0.0);
    let downstream = did("Honest", 2);
    let downstream_before = before.get(&downstream).score;

    // Deactivated in the future: still counts now.
    b.graph.deactivate(&agent, NOW + DAY).unwrap();
    assert_eq!(b.snapshot(&[ANCHOR]).get(&agent).score, before.get(&agent).score);

    b.graph.deactivate(&agent, NOW - 1).unwrap();
    let after = b.snapshot(&[ANCHOR]);
    let r = after.get(&agent);
    assert_eq!((r.level, r.score), (0, 0.0));
    assert_eq!(r.gates, vec![Gate::Deactivated]);
    assert!(after.get(&downstream).score < downstream_before, "its endorsements stop counting");
}

#[test]
fn a_forked_did_is_level_0_and_its_evidence_stops_counting() {
    let agent = did("Honest", 1);
    let mut b = Builder::new();
    honest_community(&mut b);
    let before = b.snapshot(&[ANCHOR]);
    assert!(before.get(&agent).score > 0.0);
    assert!(!before.get(&agent).gates.contains(&Gate::KelFork));
    let downstream = did("Honest", 2);
    let downstream_before = before.get(&downstream).score;

    b.graph.record_fork(&agent).unwrap();
    let after = b.snapshot(&[ANCHOR]);
    let r = after.get(&agent);
    assert_eq!((r.level, r.score), (0, 0.0));
    assert_eq!(r.gates, vec![Gate::KelFork]);
    assert!(after.get(&downstream).score < downstream_before, "its endorsements stop counting");

    // Forked and deactivated: both gates are reported.
    b.graph.deactivate(&agent, NOW - 1).unwrap();
    assert_eq!(b.snapshot(&[ANCHOR]).get(&agent).gates, vec![Gate::Deactivated, Gate::KelFork]);
}

#[test]
fn duplicate_evidence_is_idempotent_and_unknown_dids_are_level_0() {
    let mut g = EvidenceGraph::new();
    let e = Evidence {
        content_hash: [5; 32],
        issuer: ANCHOR.into(),
        subject: "did:atp:zQmX".into(),
        kind: EvidenceKind::Endorsement,
        created_ms: NOW,
    };
    assert!(g.insert(&e).unwrap());
    let once = compute(&g, &[ANCHOR.into()], &TrustConfig::default(), NOW).unwrap();
    assert!(!g.insert(&e).unwrap());
    assert_eq!(g.evidence_count(), 1);
    let twice = compute(&g, &[ANCHOR.into()], &TrustConfig::default(), NOW).unwrap();
    assert_eq!(once.get("did:atp:zQmX"), twice.get("did:atp:zQmX"));
    let unknown = twice.get("did:atp:zQmNobody");
    assert_eq!((unknown.level, unknown.score, unknown.evidence_count), (0, 0.0, 0));
}

#[test]
fn explanations_name_the_strongest_paths_from_the_anchors() {
    let agent = "did:atp:zQmExplained";
    let mut b = Builder::new();
    honest_community(&mut b);
    b.add(&did("Honest", 0), agent, EvidenceKind::Endorsement, NOW);
    b.add(&did("Honest", 1), agent, EvidenceKind::ReceiptSuccess, NOW);
    let snap = b.snapshot(&[ANCHOR]);
    let ex = snap.explain(agent, 5);
    assert!(!ex.paths.is_empty());
    for w in ex.paths.windows(2) {
        assert!(w[0].contribution >= w[1].contribution);
    }
    let best = &ex.paths[0];
    assert_eq!(best.edges.first().unwrap().from, ANCHOR);
    assert_eq!(best.edges.last().unwrap().to, agent);
    assert_eq!(best.edges[0].to, did("Honest", 0), "the endorsement outweighs one receipt");
    let total: f64 = ex.paths.iter().map(|p| p.contribution).sum();
    assert!(total <= snap.raw_score(agent) * (1.0 + 1e-6), "paths are part of the score");
    assert!(snap.explain("did:atp:zQmNobody", 5).paths.is_empty());
}

#[test]
fn every_constant_is_checked() {
    let bad = [
        TrustConfig { damping: 1.0, ..TrustConfig::default() },
        TrustConfig { negative_multiplier: 0.5, ..TrustConfig::default() },
        TrustConfig { half_life_ms: 0, ..TrustConfig::default() },
        TrustConfig { level_thresholds: [0.3, 0.2, 0.5, 0.8], ..TrustConfig::default() },
        TrustConfig { receipt_weight: f64::NAN, ..TrustConfig::default() },
    ];
    for config in bad {
        assert_eq!(config.validate().unwrap_err().code(), "TRUST_CONFIG_INVALID", "{config:?}");
        assert!(compute(&EvidenceGraph::new(), &[], &config, NOW).is_err());
    }
    TrustConfig::default().validate().unwrap();
}

#[test]
fn without_live_anchors_nobody_has_trust() {
    let mut b = Builder::new();
    honest_community(&mut b);
    for anchors in [&[][..], &["did:atp:zQmNotInTheGraph"][..]] {
        let snap = b.snapshot(anchors);
        assert!(snap.iter().all(|r| r.score == 0.0 && r.level == 0), "{anchors:?}");
        assert_eq!(snap.iterations(), 0);
    }
    b.graph.deactivate(ANCHOR, NOW - DAY).unwrap();
    let snap = b.snapshot(&[ANCHOR]);
    assert!(snap.iter().all(|r| r.score == 0.0 && r.level == 0));
    let empty = compute(&EvidenceGraph::new(), &[ANCHOR.into()], &TrustConfig::default(), NOW);
    assert_eq!(empty.unwrap().node_count(), 0);
}

#[test]
fn evidence_from_the_future_does_not_count_yet() {
    let mut b = Builder::new();
    b.add(ANCHOR, "did:atp:zQmLater", EvidenceKind::Endorsement, NOW + DAY);
    let r = b.snapshot(&[ANCHOR]).get("did:atp:zQmLater");
    assert_eq!((r.score, r.evidence_count), (0.0, 0));
}

/// A snapshot handed to another node through the store answers exactly as the one computed:
/// every DID's result and explanation, over a graph with gates, incidents and credentials.
#[test]
fn a_stored_snapshot_answers_as_the_computed_one() {
    let mut b = Builder::new();
    honest_community(&mut b);
    b.credential("cred-h0", ANCHOR, &did("Honest", 0));
    b.add(ANCHOR, &did("Honest", 1), EvidenceKind::Incident(Severity::High), NOW);
    let mut rng = SplitMix(11);
    for i in 0..200 {
        let j = (rng.next() % 200) as usize;
        if i != j {
            b.add(&did("Honest", i % 5), &did("Member", j), EvidenceKind::ReceiptSuccess, NOW);
        }
    }
    let computed = b.snapshot(&[ANCHOR]);
    let bytes = computed.encode().unwrap();
    let stored = Snapshot::decode(&bytes).unwrap();
    assert_eq!(stored.computed_at_ms(), computed.computed_at_ms());
    assert_eq!(
        (stored.node_count(), stored.edge_count()),
        (computed.node_count(), computed.edge_count())
    );
    assert!(computed.node_count() > 100 && computed.edge_count() > 100);
    assert_eq!(stored.iter().collect::<Vec<_>>(), computed.iter().collect::<Vec<_>>());
    for r in computed.iter() {
        assert_eq!(stored.explain(&r.did, 5), computed.explain(&r.did, 5), "{}", r.did);
    }
    assert!(computed.iter().any(|r| !r.gates.is_empty()), "the graph exercises the gates");
    // One flipped byte anywhere is refused, never served.
    let mut damaged = bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x80;
    assert_eq!(Snapshot::decode(&damaged).unwrap_err().code(), "TRUST_SNAPSHOT_INVALID");
}
