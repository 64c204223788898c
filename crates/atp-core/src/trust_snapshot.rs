//! The stored form of a trust snapshot (docs/protocol.md, "Trust snapshots"): how the one node
//! of a cluster that computes trust hands its result to the others through the store
//! (docs/ha.md, "Trust recomputation").
//!
//! The bytes are not signed: they travel only between a node and its own database. The parser
//! still trusts nothing. It checks every length, every index and every number against the
//! layout, and a SHA-256 digest of the whole, so that a row damaged in the database, or
//! written by a different version, is refused with `TRUST_SNAPSHOT_INVALID` rather than
//! served as scores.
//!
//! Layout, big-endian, `n` DIDs and `m` edges:
//!
//! | Field | Bytes |
//! |---|---|
//! | magic `ATPTSN1` and a zero byte | 8 |
//! | `computed_at_ms` (i64) | 8 |
//! | `damping`, `seed`, `residual` (IEEE 754 f64) | 24 |
//! | `explain_max_depth`, `explain_max_steps`, `iterations` (u32) | 12 |
//! | `n`, `m` (u32) | 8 |
//! | per DID: length (u16), then the DID's bytes; strictly ascending | n × (2 + len) |
//! | per DID: anchor flag (0 or 1), level (0 to 4), gate bits | 3n |
//! | per DID: evidence count (u32) | 4n |
//! | per DID: score, raw score, penalty (f64) | 24n |
//! | in-edge offsets (u32), from 0 to `m`, never decreasing | 4(n + 1) |
//! | per edge: source index (u32, below `n`), weight (f32, in \[0, 1\]) | 8m |
//! | SHA-256 of every byte before it | 32 |

use atp_crypto::sha256;

use crate::CoreError;
use crate::wire::Reader;

/// The first 8 bytes of every snapshot: `ATPTSN1` and a zero byte.
pub const MAGIC: [u8; 8] = *b"ATPTSN1\0";
/// The largest snapshot a node writes or reads, in bytes (about 5M DIDs with a few edges
/// each). A graph beyond it is served from each node's own computation (docs/ha.md).
pub const MAX_SNAPSHOT_BYTES: usize = 512 * 1024 * 1024;
/// The longest DID in a snapshot, in bytes.
pub const MAX_SNAPSHOT_DID_BYTES: usize = u16::MAX as usize;
/// The highest trust level.
const MAX_LEVEL: u8 = 4;
const HEADER_BYTES: usize = 8 + 8 + 24 + 12 + 8;
const DIGEST_BYTES: usize = 32;

/// A snapshot's parts, borrowed, to encode. The trust engine's `Snapshot` lends them.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotRef<'a> {
    /// When it was computed (Unix milliseconds).
    pub computed_at_ms: i64,
    /// The damping factor.
    pub damping: f64,
    /// The seed mass of each anchor.
    pub seed: f64,
    /// The L1 change of the last power-iteration round.
    pub residual: f64,
    /// The explanation search's depth limit.
    pub explain_max_depth: u32,
    /// The explanation search's step limit.
    pub explain_max_steps: u32,
    /// Power-iteration rounds taken.
    pub iterations: u32,
    /// The DIDs, strictly ascending.
    pub dids: &'a [Box<str>],
    /// Per DID: whether it is an anchor.
    pub is_anchor: &'a [bool],
    /// Per DID: its level, 0 to 4.
    pub level: &'a [u8],
    /// Per DID: the gates that capped it (bits the engine defines).
    pub gates: &'a [u8],
    /// Per DID: its live evidence.
    pub evidence_count: &'a [u32],
    /// Per DID: the normalised score.
    pub score: &'a [f64],
    /// Per DID: the raw score.
    pub raw: &'a [f64],
    /// Per DID: the negative-evidence penalty.
    pub penalty: &'a [f64],
    /// Per DID and one more: where its in-edges start in `in_srcs`.
    pub in_offsets: &'a [usize],
    /// Per edge: the source DID's index.
    pub in_srcs: &'a [u32],
    /// Per edge: the share of the source's trust it carries.
    pub in_weights: &'a [f32],
}

/// A snapshot's parts, parsed and checked against the layout.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotParts {
    /// When it was computed (Unix milliseconds).
    pub computed_at_ms: i64,
    /// The damping factor.
    pub damping: f64,
    /// The seed mass of each anchor.
    pub seed: f64,
    /// The L1 change of the last power-iteration round.
    pub residual: f64,
    /// The explanation search's depth limit.
    pub explain_max_depth: u32,
    /// The explanation search's step limit.
    pub explain_max_steps: u32,
    /// Power-iteration rounds taken.
    pub iterations: u32,
    /// The DIDs, strictly ascending.
    pub dids: Vec<Box<str>>,
    /// Per DID: whether it is an anchor.
    pub is_anchor: Vec<bool>,
    /// Per DID: its level, 0 to 4.
    pub level: Vec<u8>,
    /// Per DID: the gates that capped it.
    pub gates: Vec<u8>,
    /// Per DID: its live evidence.
    pub evidence_count: Vec<u32>,
    /// Per DID: the normalised score, in \[0, 1\].
    pub score: Vec<f64>,
    /// Per DID: the raw score (finite).
    pub raw: Vec<f64>,
    /// Per DID: the penalty (finite, not negative).
    pub penalty: Vec<f64>,
    /// Per DID and one more: where its in-edges start in `in_srcs`.
    pub in_offsets: Vec<usize>,
    /// Per edge: the source DID's index, below the DID count.
    pub in_srcs: Vec<u32>,
    /// Per edge: the weight, in \[0, 1\].
    pub in_weights: Vec<f32>,
}

fn invalid(reason: impl Into<String>) -> CoreError {
    CoreError::TrustSnapshotInvalid(reason.into())
}

fn count(n: usize, what: &str) -> Result<u32, CoreError> {
    u32::try_from(n).map_err(|_| invalid(format!("{n} {what} do not fit the layout")))
}

/// Encodes `s`. Refuses parts that the parser would refuse (so nothing unreadable is ever
/// stored), and a result above [`MAX_SNAPSHOT_BYTES`].
pub fn encode(s: &SnapshotRef<'_>) -> Result<Vec<u8>, CoreError> {
    let n = s.dids.len();
    let m = s.in_srcs.len();
    let per_did = [
        s.is_anchor.len(),
        s.level.len(),
        s.gates.len(),
        s.evidence_count.len(),
        s.score.len(),
        s.raw.len(),
        s.penalty.len(),
    ];
    if per_did.iter().any(|len| *len != n) || s.in_offsets.len() != n + 1 {
        return Err(invalid("the per-DID columns differ in length"));
    }
    if s.in_weights.len() != m {
        return Err(invalid("the edge columns differ in length"));
    }
    let did_bytes: usize = s.dids.iter().map(|d| 2 + d.len()).sum();
    let total = HEADER_BYTES + did_bytes + 31 * n + 4 * (n + 1) + 8 * m + DIGEST_BYTES;
    if total > MAX_SNAPSHOT_BYTES {
        return Err(invalid(format!("{total} bytes, above {MAX_SNAPSHOT_BYTES}")));
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&s.computed_at_ms.to_be_bytes());
    for x in [s.damping, s.seed, s.residual] {
        out.extend_from_slice(&x.to_be_bytes());
    }
    for x in [s.explain_max_depth, s.explain_max_steps, s.iterations, count(n, "DIDs")?] {
        out.extend_from_slice(&x.to_be_bytes());
    }
    out.extend_from_slice(&count(m, "edges")?.to_be_bytes());
    for did in s.dids {
        let len = u16::try_from(did.len()).map_err(|_| invalid("a DID is too long"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(did.as_bytes());
    }
    for v in 0..n {
        out.extend_from_slice(&[u8::from(s.is_anchor[v]), s.level[v], s.gates[v]]);
    }
    for c in s.evidence_count {
        out.extend_from_slice(&c.to_be_bytes());
    }
    for column in [s.score, s.raw, s.penalty] {
        for x in column {
            out.extend_from_slice(&x.to_be_bytes());
        }
    }
    for offset in s.in_offsets {
        out.extend_from_slice(&count(*offset, "edges")?.to_be_bytes());
    }
    for (src, weight) in s.in_srcs.iter().zip(s.in_weights) {
        out.extend_from_slice(&src.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
    }
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    // The encoder's own output must parse: a rule broken by the caller (an unsorted DID, a
    // NaN score) is refused here, before it reaches the database.
    decode(&out)?;
    Ok(out)
}

/// Parses a stored snapshot, exactly: any deviation from the layout, a digest that does not
/// match, a limit broken or a byte left over is `TRUST_SNAPSHOT_INVALID`.
pub fn decode(bytes: &[u8]) -> Result<SnapshotParts, CoreError> {
    if bytes.len() > MAX_SNAPSHOT_BYTES {
        return Err(invalid(format!("{} bytes, above {MAX_SNAPSHOT_BYTES}", bytes.len())));
    }
    let body_len =
        bytes.len().checked_sub(DIGEST_BYTES).ok_or_else(|| invalid("shorter than its digest"))?;
    let (body, digest) = bytes.split_at(body_len);
    if sha256(body).as_slice() != digest {
        return Err(invalid("the digest does not match the bytes"));
    }
    let mut r = Reader::new(body, truncated);
    if r.take(8, "magic")? != MAGIC {
        return Err(invalid("wrong magic (expected ATPTSN1 and a zero byte)"));
    }
    let computed_at_ms = r.i64("computed_at_ms")?;
    let damping = finite_f64(&mut r, "damping")?;
    let seed = finite_f64(&mut r, "seed")?;
    let residual = finite_f64(&mut r, "residual")?;
    let explain_max_depth = r.u32("explain_max_depth")?;
    let explain_max_steps = r.u32("explain_max_steps")?;
    let iterations = r.u32("iterations")?;
    let n = r.len("DID count")?;
    let m = r.len("edge count")?;
    // Each DID takes at least 37 bytes and each edge 8: counts that the bytes cannot hold are
    // refused before anything is allocated for them.
    if n.saturating_mul(37).saturating_add(m.saturating_mul(8)) > r.rest().len() {
        return Err(invalid(format!("{n} DIDs and {m} edges do not fit {} bytes", r.rest().len())));
    }
    let mut dids: Vec<Box<str>> = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(r.u16("DID length")?);
        let did =
            std::str::from_utf8(r.take(len, "DID")?).map_err(|_| invalid("a DID is not UTF-8"))?;
        if did.is_empty() || did.chars().any(char::is_control) {
            return Err(invalid("a DID is empty or holds control characters"));
        }
        if dids.last().is_some_and(|last| **last >= *did) {
            return Err(invalid("the DIDs are not strictly ascending"));
        }
        dids.push(did.into());
    }
    let mut is_anchor = Vec::with_capacity(n);
    let mut level = Vec::with_capacity(n);
    let mut gates = Vec::with_capacity(n);
    for chunk in r.take(3 * n, "flags")?.chunks_exact(3) {
        is_anchor.push(match chunk[0] {
            0 => false,
            1 => true,
            other => return Err(invalid(format!("anchor flag {other} is not 0 or 1"))),
        });
        if chunk[1] > MAX_LEVEL {
            return Err(invalid(format!("level {} is above {MAX_LEVEL}", chunk[1])));
        }
        level.push(chunk[1]);
        gates.push(chunk[2]);
    }
    let evidence_count = (0..n).map(|_| r.u32("evidence count")).collect::<Result<Vec<_>, _>>()?;
    let score = f64_column(&mut r, n, "score", |x| (0.0..=1.0).contains(&x))?;
    let raw = f64_column(&mut r, n, "raw score", f64::is_finite)?;
    let penalty = f64_column(&mut r, n, "penalty", |x| x.is_finite() && x >= 0.0)?;
    let mut in_offsets = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        let offset = r.len("edge offset")?;
        if in_offsets.last().is_some_and(|last| *last > offset) || offset > m {
            return Err(invalid("the edge offsets decrease or pass the edge count"));
        }
        in_offsets.push(offset);
    }
    if in_offsets.first() != Some(&0) || in_offsets.last() != Some(&m) {
        return Err(invalid("the edge offsets do not run from 0 to the edge count"));
    }
    let mut in_srcs = Vec::with_capacity(m);
    let mut in_weights = Vec::with_capacity(m);
    for _ in 0..m {
        let src = r.u32("edge source")?;
        if src as usize >= n {
            return Err(invalid(format!("edge source {src} is not below {n}")));
        }
        let weight = f32::from_be_bytes(r.array("edge weight")?);
        if !(0.0..=1.0).contains(&weight) {
            return Err(invalid("an edge weight is outside [0, 1]"));
        }
        in_srcs.push(src);
        in_weights.push(weight);
    }
    if !r.rest().is_empty() {
        return Err(invalid(format!("{} bytes after the last edge", r.rest().len())));
    }
    Ok(SnapshotParts {
        computed_at_ms,
        damping,
        seed,
        residual,
        explain_max_depth,
        explain_max_steps,
        iterations,
        dids,
        is_anchor,
        level,
        gates,
        evidence_count,
        score,
        raw,
        penalty,
        in_offsets,
        in_srcs,
        in_weights,
    })
}

/// A read past the end of the body.
fn truncated(what: &str) -> CoreError {
    invalid(format!("truncated at {what}"))
}

/// A finite f64.
fn finite_f64(r: &mut Reader<'_>, what: &str) -> Result<f64, CoreError> {
    let x = f64::from_be_bytes(r.array(what)?);
    if x.is_finite() { Ok(x) } else { Err(invalid(format!("{what} is not finite"))) }
}

/// `n` f64s, each of which must pass `valid`.
fn f64_column(
    r: &mut Reader<'_>,
    n: usize,
    what: &str,
    valid: impl Fn(f64) -> bool,
) -> Result<Vec<f64>, CoreError> {
    (0..n)
        .map(|_| {
            let x = f64::from_be_bytes(r.array(what)?);
            if valid(x) { Ok(x) } else { Err(invalid(format!("a {what} is out of range"))) }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts() -> SnapshotParts {
        SnapshotParts {
            computed_at_ms: 1_700_000_000_000,
            damping: 0.85,
            seed: 0.5,
            residual: 1e-9,
            explain_max_depth: 6,
            explain_max_steps: 10_000,
            iterations: 12,
            dids: vec!["did:atp:a".into(), "did:atp:b".into(), "did:atp:c".into()],
            is_anchor: vec![true, false, false],
            level: vec![4, 2, 0],
            gates: vec![0, 0, 2],
            evidence_count: vec![0, 3, 1],
            score: vec![1.0, 0.4, 0.0],
            raw: vec![0.2, 0.08, 0.0],
            penalty: vec![0.0, 0.0, 0.5],
            in_offsets: vec![0, 0, 1, 2],
            in_srcs: vec![0, 1],
            in_weights: vec![1.0, 0.25],
        }
    }

    fn encoded(p: &SnapshotParts) -> Result<Vec<u8>, CoreError> {
        encode(&SnapshotRef {
            computed_at_ms: p.computed_at_ms,
            damping: p.damping,
            seed: p.seed,
            residual: p.residual,
            explain_max_depth: p.explain_max_depth,
            explain_max_steps: p.explain_max_steps,
            iterations: p.iterations,
            dids: &p.dids,
            is_anchor: &p.is_anchor,
            level: &p.level,
            gates: &p.gates,
            evidence_count: &p.evidence_count,
            score: &p.score,
            raw: &p.raw,
            penalty: &p.penalty,
            in_offsets: &p.in_offsets,
            in_srcs: &p.in_srcs,
            in_weights: &p.in_weights,
        })
    }

    /// Rewrites the trailing digest after a deliberate change, so that the layout check (not
    /// the digest) must refuse it.
    fn redigest(mut bytes: Vec<u8>) -> Vec<u8> {
        let body = bytes.len() - DIGEST_BYTES;
        let digest = sha256(&bytes[..body]);
        bytes[body..].copy_from_slice(&digest);
        bytes
    }

    fn code(r: Result<SnapshotParts, CoreError>) -> String {
        r.map(|_| ()).unwrap_err().code().to_owned()
    }

    #[test]
    fn round_trips_exactly() {
        let p = parts();
        let bytes = encoded(&p).unwrap();
        assert_eq!(&bytes[..8], b"ATPTSN1\0");
        let did_bytes: usize = p.dids.iter().map(|d| 2 + d.len()).sum();
        assert_eq!(bytes.len(), HEADER_BYTES + did_bytes + 31 * 3 + 4 * 4 + 8 * 2 + 32);
        assert_eq!(decode(&bytes).unwrap(), p);
    }

    #[test]
    fn every_damaged_byte_is_refused() {
        let bytes = encoded(&parts()).unwrap();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert_eq!(code(decode(&damaged)), "TRUST_SNAPSHOT_INVALID", "byte {i}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn layout_rules_are_checked_behind_a_valid_digest() {
        let good = encoded(&parts()).unwrap();
        // The first DID's length field sits right after the header.
        let level_at = HEADER_BYTES + 3 * (2 + "did:atp:a".len()) + 1;
        let mut bad_level = good.clone();
        bad_level[level_at] = 5;
        assert_eq!(code(decode(&redigest(bad_level))), "TRUST_SNAPSHOT_INVALID");
        let mut bad_anchor = good.clone();
        bad_anchor[level_at - 1] = 2;
        assert_eq!(code(decode(&redigest(bad_anchor))), "TRUST_SNAPSHOT_INVALID");
        let mut trailing = good[..good.len() - DIGEST_BYTES].to_vec();
        trailing.push(0);
        trailing.extend_from_slice(&[0; DIGEST_BYTES]);
        assert_eq!(code(decode(&redigest(trailing))), "TRUST_SNAPSHOT_INVALID");
        // A count the bytes cannot hold is refused before any allocation.
        let mut huge = good.clone();
        huge[HEADER_BYTES - 8..HEADER_BYTES - 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(code(decode(&redigest(huge))), "TRUST_SNAPSHOT_INVALID");
    }

    #[test]
    fn the_encoder_refuses_what_the_parser_would() {
        let mut unsorted = parts();
        unsorted.dids.swap(0, 1);
        assert!(encoded(&unsorted).is_err());
        let mut nan = parts();
        nan.score[1] = f64::NAN;
        assert!(encoded(&nan).is_err());
        let mut dangling = parts();
        dangling.in_srcs[0] = 3;
        assert!(encoded(&dangling).is_err());
        let mut offsets = parts();
        offsets.in_offsets = vec![0, 2, 1, 2];
        assert!(encoded(&offsets).is_err());
        let mut short = parts();
        short.level.pop();
        assert!(encoded(&short).is_err());
    }
}
