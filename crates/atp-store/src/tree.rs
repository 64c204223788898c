//! Addressing of the stored Merkle subtree hashes.
//!
//! The store keeps the hash of every **complete perfect subtree** of the log: node
//! `(level, index)` is the RFC 9162 Merkle Tree Hash of leaves
//! `[index * 2^level, (index + 1) * 2^level)`, and level 0 holds the leaf hashes. A node is
//! written in the transaction that appends its last leaf and never changes afterwards, so an
//! append writes `1 + trailing_ones(size)` rows (amortised 2, at most 64), and any node that
//! exists at all already has its final value.
//!
//! Every hash that the log serves (a root, an inclusion proof, a consistency proof) is the
//! Merkle Tree Hash of a leaf range that `atp_core::tlog` names, and every such range
//! `[lo, hi)` is aligned: `lo` is a multiple of the smallest power of two `>= hi - lo`. Such a
//! range is the concatenation of at most 64 stored perfect subtrees (one per set bit of
//! `hi - lo`), so each answer costs `O(log n)` node reads in one query, never a tree rebuild.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use atp_core::tlog::{EMPTY_ROOT, Hash, node_hash};

use crate::error::{Result, StoreError};

/// The address of a stored node: `(level, index)`.
pub type NodeKey = (u32, u64);

/// The most nodes one answer may need: a root or proof over aligned ranges needs at most
/// 64 per range and a proof has at most two non-perfect ranges, so this is never reached by a
/// well-formed request; it bounds a malformed one.
const MAX_NODES_PER_ANSWER: usize = 4 * 64;

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees that make up a tree of `size` leaves, largest (leftmost) first.
pub fn peak_keys(size: u64) -> Vec<NodeKey> {
    let mut out = Vec::with_capacity(size.count_ones() as usize);
    let mut start = 0u64;
    for level in (0..64u32).rev() {
        if (size >> level) & 1 == 1 {
            out.push((level, start >> level));
            start += 1u64 << level;
        }
    }
    out
}

/// The stored nodes whose hashes determine the Merkle Tree Hash of leaves `range`, added to
/// `out`.
fn collect_range(range: &Range<u64>, out: &mut BTreeSet<NodeKey>) {
    let n = range.end - range.start;
    if n == 0 {
        return;
    }
    if n.is_power_of_two() && range.start & (n - 1) == 0 {
        out.insert((n.trailing_zeros(), range.start / n));
        return;
    }
    if n == 1 {
        // Unreachable: a single leaf is always a perfect, aligned subtree.
        out.insert((0, range.start));
        return;
    }
    let k = split_point(n);
    collect_range(&(range.start..range.start + k), out);
    collect_range(&(range.start + k..range.end), out);
}

/// The Merkle Tree Hash of leaves `range` from the fetched nodes.
fn range_hash(range: &Range<u64>, nodes: &HashMap<NodeKey, Hash>) -> Result<Hash> {
    let n = range.end - range.start;
    if n == 0 {
        return Ok(EMPTY_ROOT);
    }
    if n.is_power_of_two() && range.start & (n - 1) == 0 {
        let key = (n.trailing_zeros(), range.start / n);
        return nodes
            .get(&key)
            .copied()
            .ok_or_else(|| StoreError::corrupt(format!("missing tree node {key:?}")));
    }
    let k = split_point(n);
    let left = range_hash(&(range.start..range.start + k), nodes)?;
    let right = range_hash(&(range.start + k..range.end), nodes)?;
    Ok(node_hash(&left, &right))
}

/// A plan for answering a request: the ranges whose hashes make up the answer and the stored
/// nodes needed to compute them.
pub struct Plan {
    ranges: Vec<Range<u64>>,
    keys: BTreeSet<NodeKey>,
}

impl Plan {
    /// A plan for the hashes of `ranges`, in order.
    pub fn new(ranges: Vec<Range<u64>>) -> Result<Self> {
        let mut keys = BTreeSet::new();
        for r in &ranges {
            collect_range(r, &mut keys);
            if keys.len() > MAX_NODES_PER_ANSWER {
                return Err(StoreError::invalid("request needs too many tree nodes"));
            }
        }
        Ok(Self { ranges, keys })
    }

    /// A plan for the root of the first `size` leaves.
    pub fn root(size: u64) -> Self {
        let mut keys = BTreeSet::new();
        collect_range(&(0..size), &mut keys);
        Self { ranges: std::iter::once(0..size).collect(), keys }
    }

    /// The stored nodes to fetch.
    pub fn keys(&self) -> &BTreeSet<NodeKey> {
        &self.keys
    }

    /// The hash of each range, given the fetched nodes.
    pub fn hashes(&self, nodes: &HashMap<NodeKey, Hash>) -> Result<Vec<Hash>> {
        self.ranges.iter().map(|r| range_hash(r, nodes)).collect()
    }
}

/// The right edge of the log inside a write transaction: its size and the hashes of its peaks,
/// from which each append derives the nodes it completes.
#[derive(Clone, Debug)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// A frontier from a size and its peak hashes (in [`peak_keys`] order).
    pub fn new(size: u64, peaks: Vec<Hash>) -> Result<Self> {
        if peaks.len() != size.count_ones() as usize {
            return Err(StoreError::corrupt("log peaks do not match the log size"));
        }
        Ok(Self { size, peaks })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns its index and the nodes it completes, leaf first.
    pub fn append(&mut self, leaf: Hash) -> (u64, Vec<(NodeKey, Hash)>) {
        let index = self.size;
        let mut nodes = vec![((0u32, index), leaf)];
        let (mut cur, mut level, mut idx) = (leaf, 0u32, index);
        while idx & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            cur = node_hash(&left, &cur);
            idx >>= 1;
            level += 1;
            nodes.push(((level, idx), cur));
        }
        self.peaks.push(cur);
        self.size += 1;
        (index, nodes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use atp_core::tlog::{MerkleAccumulator, consistency_proof_ranges, inclusion_proof_ranges};

    fn leaf(i: u64) -> Hash {
        atp_core::tlog::leaf_hash(&i.to_be_bytes())
    }

    /// Builds every node of a log of `n` leaves through the frontier.
    fn build(n: u64) -> HashMap<NodeKey, Hash> {
        let mut f = Frontier::new(0, vec![]).unwrap();
        let mut all = HashMap::new();
        for i in 0..n {
            let (idx, nodes) = f.append(leaf(i));
            assert_eq!(idx, i);
            all.extend(nodes);
        }
        all
    }

    #[test]
    fn frontier_nodes_give_roots_and_proofs() {
        let n = 70u64;
        let nodes = build(n);
        // Every complete perfect subtree is there, and nothing else.
        let expected: usize = (0..7).map(|l| (n >> l) as usize).sum();
        assert_eq!(nodes.len(), expected);
        let leaves: Vec<Hash> = (0..n).map(leaf).collect();
        let mut acc = MerkleAccumulator::new();
        for size in 0..=n {
            let plan = Plan::root(size);
            let root = plan.hashes(&nodes).unwrap()[0];
            assert_eq!(root, acc.root(), "size {size}");
            let peaks: Vec<Hash> = peak_keys(size).iter().map(|k| nodes[k]).collect();
            assert_eq!(peaks, acc.peaks());
            for i in 0..size {
                let plan = Plan::new(inclusion_proof_ranges(i, size).unwrap()).unwrap();
                assert!(plan.keys().len() <= 2 * 64);
                let proof = plan.hashes(&nodes).unwrap();
                let want = atp_core::tlog::inclusion_proof(i, &leaves[..size as usize]);
                assert_eq!(proof, want.unwrap());
            }
            for old in 0..=size {
                let plan = Plan::new(consistency_proof_ranges(old, size).unwrap()).unwrap();
                let proof = plan.hashes(&nodes).unwrap();
                let want = atp_core::tlog::consistency_proof(old, &leaves[..size as usize]);
                assert_eq!(proof, want.unwrap());
            }
            if size < n {
                acc.push_leaf_hash(leaves[size as usize]);
            }
        }
    }

    #[test]
    fn frontier_rejects_wrong_peak_count() {
        assert!(Frontier::new(3, vec![[0; 32]]).is_err());
        assert!(Frontier::new(3, vec![[0; 32], [1; 32]]).is_ok());
    }
}
