//! The computation: personalised PageRank over the evidence graph, the negative-evidence
//! penalty, normalisation, levels and gates; and the snapshot that serves reads.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::graph::{EvidenceGraph, EvidenceKind, Severity};
use crate::{TrustConfig, TrustError};

/// The level names, 0 to 4.
pub fn level_name(level: u8) -> &'static str {
    atp_core::trust_proof::level_name(level).unwrap_or("UNKNOWN")
}

/// A hard gate that capped a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Gate {
    /// Level 2 or higher needs a valid credential from an issuer that the anchors trust; the
    /// level was capped at 1.
    NoTrustedCredential,
    /// The DID is deactivated: level 0, score 0.
    Deactivated,
    /// An open high-severity incident by a trusted reporter caps the level at 1 (reported
    /// whenever it applies).
    OpenHighSeverityIncident,
    /// The DID's key event log forked (two validly signed events for one sequence number are
    /// on record): its key history is ambiguous, so it is treated like a deactivated DID:
    /// level 0, score 0, and its evidence counts for nothing.
    KelFork,
}

impl Gate {
    const ALL: [Gate; 4] = [
        Gate::NoTrustedCredential,
        Gate::Deactivated,
        Gate::OpenHighSeverityIncident,
        Gate::KelFork,
    ];

    fn bit(self) -> u8 {
        match self {
            Gate::NoTrustedCredential => 1,
            Gate::Deactivated => 2,
            Gate::OpenHighSeverityIncident => 4,
            Gate::KelFork => 8,
        }
    }

    /// The stable name (`NO_TRUSTED_CREDENTIAL`, `DEACTIVATED`, `OPEN_HIGH_SEVERITY_INCIDENT`,
    /// `KEL_FORK`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Gate::NoTrustedCredential => "NO_TRUSTED_CREDENTIAL",
            Gate::Deactivated => "DEACTIVATED",
            Gate::OpenHighSeverityIncident => "OPEN_HIGH_SEVERITY_INCIDENT",
            Gate::KelFork => "KEL_FORK",
        }
    }
}

/// The trust of one DID in a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustResult {
    /// The DID.
    pub did: String,
    /// The normalised score in [0, 1].
    pub score: f64,
    /// The level after the gates, 0 to 4.
    pub level: u8,
    /// The raw score: personalised PageRank mass minus the negative-evidence penalty.
    pub raw_score: f64,
    /// The penalty that negative evidence subtracted.
    pub penalty: f64,
    /// Live evidence about the DID (signed evidence and valid credentials).
    pub evidence_count: u64,
    /// The gates that capped the level.
    pub gates: Vec<Gate>,
    /// Whether the DID is a trust anchor.
    pub is_anchor: bool,
}

/// One edge of an explanation path.
#[derive(Clone, Debug, PartialEq)]
pub struct PathEdge {
    /// The issuer.
    pub from: String,
    /// The subject.
    pub to: String,
    /// The share of the issuer's trust that the edge carries, in [0, 1].
    pub weight: f64,
}

/// A path from an anchor to the subject.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustPath {
    /// The edges, from the anchor to the subject.
    pub edges: Vec<PathEdge>,
    /// The path's contribution to the subject's raw score:
    /// `(1 - d) / |anchors| * Π (d * weight)`.
    pub contribution: f64,
}

/// The top contributing paths of a DID.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The DID's result.
    pub result: TrustResult,
    /// The paths, strongest first.
    pub paths: Vec<TrustPath>,
}

/// An immutable result of [`compute`]: reads and explanations are served from it until the next
/// computation replaces it.
#[derive(Clone, Debug)]
pub struct Snapshot {
    computed_at_ms: i64,
    damping: f64,
    explain_max_depth: usize,
    explain_max_steps: usize,
    seed: f64,
    dids: Vec<Box<str>>,
    is_anchor: Vec<bool>,
    in_offsets: Vec<usize>,
    in_srcs: Vec<u32>,
    in_weights: Vec<f32>,
    score: Vec<f64>,
    raw: Vec<f64>,
    penalty: Vec<f64>,
    level: Vec<u8>,
    gates: Vec<u8>,
    evidence_count: Vec<u32>,
    iterations: u32,
    residual: f64,
}

struct Weighted {
    dst: u32,
    src: u32,
    weight: f32,
}

/// Compute a snapshot of every DID's trust at `now_ms` (Unix milliseconds), seeded at
/// `anchors`. Anchors absent from the graph or deactivated do not seed.
pub fn compute(
    graph: &EvidenceGraph,
    anchors: &[String],
    config: &TrustConfig,
    now_ms: i64,
) -> Result<Snapshot, TrustError> {
    config.validate()?;
    let n = graph.dids.len();
    let d = config.damping;

    // Canonical node order (by DID), so that no result depends on the insertion order.
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|a, b| graph.dids[*a as usize].cmp(&graph.dids[*b as usize]));
    let mut rank = vec![0u32; n];
    for (r, id) in order.iter().enumerate() {
        rank[*id as usize] = r as u32;
    }
    let dids: Vec<Box<str>> = order.iter().map(|id| graph.dids[*id as usize].clone()).collect();
    drop(order);

    // Dead: deactivated by now, or forked. Either way its evidence counts for nothing.
    let mut dead_gates = vec![0u8; n];
    for (id, at) in &graph.deactivated {
        if *at <= now_ms {
            dead_gates[rank[*id as usize] as usize] |= Gate::Deactivated.bit();
        }
    }
    for id in &graph.forked {
        dead_gates[rank[*id as usize] as usize] |= Gate::KelFork.bit();
    }
    let dead: Vec<bool> = dead_gates.iter().map(|g| *g != 0).collect();
    let mut is_anchor = vec![false; n];
    for a in anchors {
        if let Some(id) = graph.id(a) {
            let r = rank[id as usize] as usize;
            is_anchor[r] = !dead[r];
        }
    }
    let anchor_count = is_anchor.iter().filter(|a| **a).count();

    // Weighted entries: positive for trust, negative (already multiplied) for distrust.
    let decay_rate = std::f64::consts::LN_2 / config.half_life_ms as f64;
    let neg = config.negative_multiplier;
    let mut entries = Vec::with_capacity(graph.edges.len() + graph.credentials.len());
    let mut evidence_count = vec![0u32; n];
    let mut trusted_issuer = is_anchor.clone();
    let mut high_incidents: Vec<(u32, u32)> = Vec::new();
    for e in &graph.edges {
        if e.created_ms > now_ms {
            continue;
        }
        let (src, dst) = (rank[e.src as usize], rank[e.dst as usize]);
        if dead[src as usize] || dead[dst as usize] {
            continue;
        }
        let age = (now_ms - e.created_ms) as f64;
        let decay = (-age * decay_rate).exp();
        let base = match e.kind {
            EvidenceKind::Endorsement => config.endorsement_weight,
            EvidenceKind::IssuerEndorsement => {
                if is_anchor[src as usize] {
                    trusted_issuer[dst as usize] = true;
                }
                config.endorsement_weight
            }
            EvidenceKind::ReceiptSuccess => config.receipt_weight,
            EvidenceKind::ReceiptFailure => -config.receipt_weight * neg,
            EvidenceKind::Incident(severity) => {
                let i = match severity {
                    Severity::Low => 0,
                    Severity::Medium => 1,
                    Severity::High => {
                        if now_ms - e.created_ms < config.incident_open_ms {
                            high_incidents.push((dst, src));
                        }
                        2
                    }
                };
                -config.incident_weights[i] * neg
            }
        };
        evidence_count[dst as usize] = evidence_count[dst as usize].saturating_add(1);
        entries.push(Weighted { dst, src, weight: (base * decay) as f32 });
    }
    let mut has_trusted_credential = vec![false; n];
    let mut live_credentials = Vec::new();
    for c in graph.credentials.values() {
        let live = !c.revoked
            && c.valid_from_ms <= now_ms
            && c.valid_until_ms.is_none_or(|until| now_ms < until);
        let (src, dst) = (rank[c.issuer as usize], rank[c.subject as usize]);
        if !live || dead[src as usize] || dead[dst as usize] {
            continue;
        }
        evidence_count[dst as usize] = evidence_count[dst as usize].saturating_add(1);
        live_credentials.push((src, dst));
        entries.push(Weighted { dst, src, weight: config.credential_weight as f32 });
    }
    for (src, dst) in live_credentials {
        if trusted_issuer[src as usize] {
            has_trusted_credential[dst as usize] = true;
        }
    }
    drop(trusted_issuer);

    // Merge per (subject, issuer) pair into a compressed in-edge matrix. The sort key covers
    // every weight, so the sums below are taken in one canonical order.
    entries.sort_unstable_by(|a, b| {
        (a.dst, a.src).cmp(&(b.dst, b.src)).then(a.weight.total_cmp(&b.weight))
    });
    let mut in_offsets = vec![0usize; n + 1];
    let mut in_srcs = Vec::new();
    let mut in_weights: Vec<f32> = Vec::new();
    let mut negatives: Vec<(u32, u32, f64)> = Vec::new();
    let mut out_positive = vec![0f64; n];
    let mut out_negative = vec![0f64; n];
    let mut i = 0;
    while i < entries.len() {
        let (dst, src) = (entries[i].dst, entries[i].src);
        let (mut pos, mut minus) = (0f64, 0f64);
        while i < entries.len() && entries[i].dst == dst && entries[i].src == src {
            let w = f64::from(entries[i].weight);
            if w >= 0.0 {
                pos += w;
            } else {
                minus -= w;
            }
            i += 1;
        }
        let trust = pos - minus;
        if trust > 0.0 {
            in_srcs.push(src);
            in_weights.push(trust as f32);
            out_positive[src as usize] += trust;
        } else if trust < 0.0 {
            negatives.push((dst, src, -trust));
            out_negative[src as usize] += -trust;
        }
        in_offsets[dst as usize + 1] = in_srcs.len();
    }
    drop(entries);
    for v in 0..n {
        in_offsets[v + 1] = in_offsets[v + 1].max(in_offsets[v]);
    }
    let prior = config.issuer_prior_weight;
    for v in 0..n {
        for k in in_offsets[v]..in_offsets[v + 1] {
            let src = in_srcs[k] as usize;
            in_weights[k] = (f64::from(in_weights[k]) / (out_positive[src] + prior)) as f32;
        }
    }
    // The share of each node's mass that is not passed on (prior, or no evidence at all): it
    // restarts at the anchors.
    let returned: Vec<f64> = out_positive
        .iter()
        .map(|c| if c + prior > 0.0 { prior / (c + prior) } else { 1.0 })
        .collect();

    // Power iteration: r = d * P^T r + ((1 - d) + d * returned(r)) * seed.
    let seed = if anchor_count > 0 { 1.0 / anchor_count as f64 } else { 0.0 };
    let mut r: Vec<f64> = is_anchor.iter().map(|a| if *a { seed } else { 0.0 }).collect();
    let mut next = vec![0f64; n];
    let (mut iterations, mut residual) = (0, 0.0);
    if anchor_count > 0 {
        for _ in 0..config.max_iterations {
            iterations += 1;
            let back: f64 = r.iter().zip(&returned).map(|(x, q)| x * q).sum();
            let restart = ((1.0 - d) + d * back) * seed;
            let mut diff = 0.0;
            for v in 0..n {
                let mut acc = 0.0;
                for k in in_offsets[v]..in_offsets[v + 1] {
                    acc += r[in_srcs[k] as usize] * f64::from(in_weights[k]);
                }
                let mut value = d * acc;
                if is_anchor[v] {
                    value += restart;
                }
                diff += (value - r[v]).abs();
                next[v] = value;
            }
            std::mem::swap(&mut r, &mut next);
            residual = diff;
            if diff < config.tolerance {
                break;
            }
        }
    }
    drop(next);
    drop(returned);

    // Distrust does not propagate: each negative edge subtracts from its subject in proportion
    // to the reporter's own trust, so reports by untrusted DIDs weigh nothing.
    let mut penalty = vec![0f64; n];
    for (dst, src, e) in &negatives {
        let s = *src as usize;
        let voice = out_positive[s] + out_negative[s] + prior;
        if voice > 0.0 {
            penalty[*dst as usize] += d * r[s] * e / voice;
        }
    }
    let unit = if anchor_count > 0 { (1.0 - d) / anchor_count as f64 } else { 1.0 };
    let mut raw = vec![0f64; n];
    let mut score = vec![0f64; n];
    let mut level = vec![0u8; n];
    let mut gates = vec![0u8; n];
    for v in 0..n {
        if dead[v] {
            gates[v] = dead_gates[v];
            penalty[v] = 0.0;
            continue;
        }
        raw[v] = (r[v] - penalty[v]).max(0.0);
        let x = raw[v] / unit;
        score[v] = (x / (x + config.score_half_units)).clamp(0.0, 1.0);
        level[v] = config.level_of(score[v]);
    }
    let reporter_ok = |s: usize| is_anchor[s] || level[s] >= config.incident_reporter_min_level;
    let mut incident_capped = vec![false; n];
    for (dst, src) in &high_incidents {
        if reporter_ok(*src as usize) {
            incident_capped[*dst as usize] = true;
        }
    }
    for v in 0..n {
        if dead[v] {
            continue;
        }
        if level[v] >= 2 && !is_anchor[v] && !has_trusted_credential[v] {
            level[v] = 1;
            gates[v] |= Gate::NoTrustedCredential.bit();
        }
        // Reported whenever it applies, so that a relying party sees the open incident even
        // when the score alone already keeps the level low.
        if incident_capped[v] {
            level[v] = level[v].min(1);
            gates[v] |= Gate::OpenHighSeverityIncident.bit();
        }
    }

    Ok(Snapshot {
        computed_at_ms: now_ms,
        damping: d,
        explain_max_depth: config.explain_max_depth,
        explain_max_steps: config.explain_max_steps,
        seed,
        dids,
        is_anchor,
        in_offsets,
        in_srcs,
        in_weights,
        score,
        raw,
        penalty,
        level,
        gates,
        evidence_count,
        iterations,
        residual,
    })
}

#[derive(PartialEq)]
struct Candidate {
    priority: f64,
    index: usize,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.total_cmp(&other.priority).then_with(|| other.index.cmp(&self.index))
    }
}

/// How many incoming edges an explanation step considers (the strongest ones).
const EXPLAIN_FAN_IN: usize = 64;

impl Snapshot {
    /// The snapshot in its stored form (`atp_core::trust_snapshot`), for the other nodes of a
    /// cluster (docs/ha.md, "Trust recomputation").
    pub fn encode(&self) -> Result<Vec<u8>, TrustError> {
        let as_u32 = |n: usize, what: &str| {
            u32::try_from(n)
                .map_err(|_| TrustError::SnapshotInvalid(format!("{what} {n} too large")))
        };
        atp_core::trust_snapshot::encode(&atp_core::trust_snapshot::SnapshotRef {
            computed_at_ms: self.computed_at_ms,
            damping: self.damping,
            seed: self.seed,
            residual: self.residual,
            explain_max_depth: as_u32(self.explain_max_depth, "explain_max_depth")?,
            explain_max_steps: as_u32(self.explain_max_steps, "explain_max_steps")?,
            iterations: self.iterations,
            dids: &self.dids,
            is_anchor: &self.is_anchor,
            level: &self.level,
            gates: &self.gates,
            evidence_count: &self.evidence_count,
            score: &self.score,
            raw: &self.raw,
            penalty: &self.penalty,
            in_offsets: &self.in_offsets,
            in_srcs: &self.in_srcs,
            in_weights: &self.in_weights,
        })
        .map_err(|e| TrustError::SnapshotInvalid(e.to_string()))
    }

    /// Parses a stored snapshot: the layout's checks (`atp_core::trust_snapshot::decode`) and
    /// the engine's own (the constants within [`TrustConfig`]'s ranges, known gate bits). A
    /// snapshot that fails any of them is refused, never served.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, TrustError> {
        let p = atp_core::trust_snapshot::decode(bytes)
            .map_err(|e| TrustError::SnapshotInvalid(e.to_string()))?;
        let invalid = |what: &str| Err(TrustError::SnapshotInvalid(what.to_owned()));
        if !(p.damping > 0.0 && p.damping < 1.0) {
            return invalid("damping is outside (0, 1)");
        }
        if !(p.seed >= 0.0 && p.seed <= 1.0) {
            return invalid("the seed is outside [0, 1]");
        }
        if !(1..=16).contains(&p.explain_max_depth)
            || !(1..=1_000_000).contains(&p.explain_max_steps)
        {
            return invalid("the explanation limits are outside their ranges");
        }
        let known = Gate::ALL.iter().fold(0u8, |bits, g| bits | g.bit());
        if p.gates.iter().any(|g| g & !known != 0) {
            return invalid("a gate bit is unknown");
        }
        Ok(Snapshot {
            computed_at_ms: p.computed_at_ms,
            damping: p.damping,
            explain_max_depth: p.explain_max_depth as usize,
            explain_max_steps: p.explain_max_steps as usize,
            seed: p.seed,
            dids: p.dids,
            is_anchor: p.is_anchor,
            in_offsets: p.in_offsets,
            in_srcs: p.in_srcs,
            in_weights: p.in_weights,
            score: p.score,
            raw: p.raw,
            penalty: p.penalty,
            level: p.level,
            gates: p.gates,
            evidence_count: p.evidence_count,
            iterations: p.iterations,
            residual: p.residual,
        })
    }
}

impl Snapshot {
    /// When the snapshot was computed (the `now_ms` passed to [`compute`]).
    pub fn computed_at_ms(&self) -> i64 {
        self.computed_at_ms
    }

    /// Power-iteration rounds taken.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The L1 change of the last round (below the tolerance when it converged).
    pub fn residual(&self) -> f64 {
        self.residual
    }

    /// DIDs in the snapshot.
    pub fn node_count(&self) -> usize {
        self.dids.len()
    }

    /// Positive (issuer, subject) edges in the matrix.
    pub fn edge_count(&self) -> usize {
        self.in_srcs.len()
    }

    fn index(&self, did: &str) -> Option<usize> {
        self.dids.binary_search_by(|probe| probe.as_ref().cmp(did)).ok()
    }

    /// The trust of `did`. A DID without evidence has score 0, level 0.
    pub fn get(&self, did: &str) -> TrustResult {
        match self.index(did) {
            Some(v) => TrustResult {
                did: did.to_owned(),
                score: self.score[v],
                level: self.level[v],
                raw_score: self.raw[v],
                penalty: self.penalty[v],
                evidence_count: u64::from(self.evidence_count[v]),
                gates: Gate::ALL.into_iter().filter(|g| self.gates[v] & g.bit() != 0).collect(),
                is_anchor: self.is_anchor[v],
            },
            None => TrustResult {
                did: did.to_owned(),
                score: 0.0,
                level: 0,
                raw_score: 0.0,
                penalty: 0.0,
                evidence_count: 0,
                gates: Vec::new(),
                is_anchor: false,
            },
        }
    }

    /// How many DIDs are at each level 0 to 4, after the gates (one pass over a byte per DID).
    pub fn level_counts(&self) -> [u64; 5] {
        let mut counts = [0u64; 5];
        for level in &self.level {
            counts[usize::from((*level).min(4))] += 1;
        }
        counts
    }

    /// Every DID with its result, in DID order (for tests and bulk export).
    pub fn iter(&self) -> impl Iterator<Item = TrustResult> + '_ {
        self.dids.iter().map(|d| self.get(d))
    }

    /// The share of `from`'s trust that its edge to `to` carries (0 when there is none).
    pub fn edge_weight(&self, from: &str, to: &str) -> f64 {
        let (Some(f), Some(t)) = (self.index(from), self.index(to)) else { return 0.0 };
        (self.in_offsets[t]..self.in_offsets[t + 1])
            .find(|k| self.in_srcs[*k] as usize == f)
            .map_or(0.0, |k| f64::from(self.in_weights[k]))
    }

    /// The raw score of `did` (0 when unknown).
    pub fn raw_score(&self, did: &str) -> f64 {
        self.index(did).map_or(0.0, |v| self.raw[v])
    }

    /// The top `max_paths` evidence paths from the anchors to `did`, strongest first.
    ///
    /// A best-first search backwards from `did` over the strongest incoming edges, at most
    /// `explain_max_depth` edges long and `explain_max_steps` steps, without revisiting a node on
    /// the same path. Because every anchor seeds the same mass, paths come out in order of
    /// contribution.
    pub fn explain(&self, did: &str, max_paths: usize) -> Explanation {
        let result = self.get(did);
        let mut paths = Vec::new();
        let Some(target) = self.index(did) else { return Explanation { result, paths } };
        let d = self.damping;
        // (node, parent index, weight of node -> parent, depth)
        let mut arena: Vec<(u32, usize, f32, usize)> = vec![(target as u32, usize::MAX, 1.0, 0)];
        let mut heap = BinaryHeap::new();
        heap.push(Candidate { priority: 1.0, index: 0 });
        let mut steps = 0;
        while let Some(Candidate { priority, index }) = heap.pop() {
            if paths.len() >= max_paths || steps >= self.explain_max_steps {
                break;
            }
            steps += 1;
            let (node, _, _, depth) = arena[index];
            if index != 0 && self.is_anchor[node as usize] {
                paths.push(self.path_from(&arena, index, (1.0 - d) * self.seed * priority));
                continue;
            }
            if depth >= self.explain_max_depth {
                continue;
            }
            let v = node as usize;
            let mut incoming: Vec<usize> = (self.in_offsets[v]..self.in_offsets[v + 1]).collect();
            incoming
                .sort_by(|a, b| self.in_weights[*b].total_cmp(&self.in_weights[*a]).then(a.cmp(b)));
            incoming.truncate(EXPLAIN_FAN_IN);
            for k in incoming {
                let src = self.in_srcs[k];
                if self.on_path(&arena, index, src) {
                    continue;
                }
                arena.push((src, index, self.in_weights[k], depth + 1));
                let p = priority * d * f64::from(self.in_weights[k]);
                heap.push(Candidate { priority: p, index: arena.len() - 1 });
            }
        }
        Explanation { result, paths }
    }

    fn on_path(&self, arena: &[(u32, usize, f32, usize)], mut index: usize, node: u32) -> bool {
        while index != usize::MAX {
            if arena[index].0 == node {
                return true;
            }
            index = arena[index].1;
        }
        false
    }

    fn path_from(
        &self,
        arena: &[(u32, usize, f32, usize)],
        mut index: usize,
        contribution: f64,
    ) -> TrustPath {
        let mut edges = Vec::new();
        while arena[index].1 != usize::MAX {
            let (node, parent, weight, _) = arena[index];
            edges.push(PathEdge {
                from: self.dids[node as usize].to_string(),
                to: self.dids[arena[parent].0 as usize].to_string(),
                weight: f64::from(weight),
            });
            index = parent;
        }
        TrustPath { edges, contribution }
    }
}
