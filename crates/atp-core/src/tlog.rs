//! RFC 9162 (Certificate Transparency v2.0) Merkle tree hashing, inclusion and consistency
//! proofs, and a compact append-only accumulator.
//!
//! # Format choices
//!
//! The transparency log of ATP is a plain RFC 9162 §2.1 Merkle tree over SHA-256, the same
//! hashing that RFC 6962 specified, so that any Certificate Transparency or C2SP tlog tooling can
//! check an ATP log:
//!
//! - the hash of the empty tree is `SHA-256("")`;
//! - a leaf hash is `SHA-256(0x00 || entry)`;
//! - an interior node is `SHA-256(0x01 || left || right)`;
//! - a tree of `n > 1` leaves is split at `k`, the largest power of two *strictly* smaller than
//!   `n`, never at the midpoint.
//!
//! Proofs are lists of 32-byte hashes ordered from the leaf (or the old tree) upwards, exactly as
//! `PATH` and `PROOF` of RFC 9162 §2.1.3.1 and §2.1.4.1 produce them. The verifiers implement the
//! algorithms of §2.1.3.2 and §2.1.4.2 step by step, after an up-front check that the proof has
//! the one length that the tree shape allows, so that a malformed proof is reported as such and
//! not as a hash mismatch.
//!
//! The log stores only hashes of its entries (see the design notes on personal data), so every
//! function here works on leaf *hashes*; [`leaf_hash`] turns an entry into one.
//!
//! Proof generation comes in two forms. The slice functions ([`inclusion_proof`],
//! [`consistency_proof`]) take every leaf hash and suit tests and small logs. The range
//! functions ([`inclusion_proof_ranges`], [`consistency_proof_ranges`]) return the leaf ranges
//! whose subtree hashes make up the proof, so that a node can answer from stored subtree hashes
//! without loading the whole log.
//!
//! [`MerkleAccumulator`] keeps the roots of the `O(log n)` perfect subtrees that make up a tree
//! (a "compact range" starting at leaf 0) and gives the root after each append in `O(log n)`.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::CoreError;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`
/// (`e3b0c442 98fc1c14 9afbf4c8 996fb924 27ae41e4 649b934c a495991b 7852b855`).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Domain-separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// The hash of one log entry: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash (`MTH`) of a list of leaf hashes; [`EMPTY_ROOT`] for the empty list.
///
/// Runs in `O(n)` time and `O(log n)` memory.
pub fn root_from_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    let mut acc = MerkleAccumulator::new();
    for h in leaf_hashes {
        acc.push_leaf_hash(*h);
    }
    acc.root()
}

/// Leaf counts travel as `u64` in the protocol; slices are indexed by `usize`.
fn len_u64(n: usize) -> u64 {
    // usize is at most 64 bits on every supported target.
    n as u64
}

/// Root of `leaf_hashes[range]`, with the range already checked against the slice.
fn range_root(leaf_hashes: &[Hash], range: &Range<u64>) -> Hash {
    // Ranges come from the proof-shape functions, which only produce ranges within the tree,
    // and the tree size was checked against the slice length.
    let start = usize::try_from(range.start).unwrap_or(usize::MAX);
    let end = usize::try_from(range.end).unwrap_or(usize::MAX);
    root_from_leaf_hashes(leaf_hashes.get(start..end).unwrap_or(&[]))
}

/// The leaf ranges whose subtree hashes form the inclusion proof (`PATH`, RFC 9162 §2.1.3.1) of
/// leaf `leaf_index` in a tree of `tree_size` leaves, ordered from the leaf upwards.
///
/// A node answers an inclusion-proof request by looking up the Merkle Tree Hash of each range.
pub fn inclusion_proof_ranges(
    leaf_index: u64,
    tree_size: u64,
) -> Result<Vec<Range<u64>>, CoreError> {
    if leaf_index >= tree_size {
        return Err(CoreError::TlogIndexOutOfRange { index: leaf_index, tree_size });
    }
    // Walk from the root down, collecting the sibling of each step, then reverse.
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0u64, tree_size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if leaf_index - lo < k {
            out.push(lo + k..hi);
            hi = lo + k;
        } else {
            out.push(lo..lo + k);
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The inclusion proof (`PATH`, RFC 9162 §2.1.3.1) of leaf `leaf_index` in the tree made of all
/// of `leaf_hashes`.
pub fn inclusion_proof(leaf_index: u64, leaf_hashes: &[Hash]) -> Result<Vec<Hash>, CoreError> {
    let ranges = inclusion_proof_ranges(leaf_index, len_u64(leaf_hashes.len()))?;
    Ok(ranges.iter().map(|r| range_root(leaf_hashes, r)).collect())
}

/// The leaf ranges whose subtree hashes form the consistency proof (`PROOF`, RFC 9162 §2.1.4.1)
/// between the tree of the first `old_size` leaves and the tree of `new_size` leaves.
///
/// The proof is empty when `old_size` is 0 or equal to `new_size`.
pub fn consistency_proof_ranges(
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Range<u64>>, CoreError> {
    if old_size > new_size {
        return Err(CoreError::TlogConsistencySizeOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled from the root down; the pushed hashes come out in
    // reverse order of the RFC's concatenation.
    let mut out = Vec::new();
    let (mut m, mut lo, mut hi, mut b) = (old_size, 0u64, new_size, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !b {
                out.push(lo..hi);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push(lo + k..hi);
            hi = lo + k;
        } else {
            out.push(lo..lo + k);
            m -= k;
            lo += k;
            b = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// The consistency proof (`PROOF`, RFC 9162 §2.1.4.1) between the tree of the first `old_size`
/// leaves and the tree made of all of `leaf_hashes`.
pub fn consistency_proof(old_size: u64, leaf_hashes: &[Hash]) -> Result<Vec<Hash>, CoreError> {
    let ranges = consistency_proof_ranges(old_size, len_u64(leaf_hashes.len()))?;
    Ok(ranges.iter().map(|r| range_root(leaf_hashes, r)).collect())
}

/// The number of hashes in the inclusion proof of `leaf_index` in a tree of `tree_size` leaves,
/// split into the part below the point where the paths to the leaf and to the last leaf meet
/// (`inner`) and the part along the right border of the tree (`border`).
fn decompose_inclusion(leaf_index: u64, tree_size: u64) -> (u32, u32) {
    let inner = 64 - (leaf_index ^ (tree_size - 1)).leading_zeros();
    let border = if inner >= 64 { 0 } else { (leaf_index >> inner).count_ones() };
    (inner, border)
}

/// The number of hashes in a well-formed inclusion proof.
fn inclusion_proof_len(leaf_index: u64, tree_size: u64) -> usize {
    let (inner, border) = decompose_inclusion(leaf_index, tree_size);
    (inner + border) as usize
}

/// Recomputes the root of a `tree_size`-leaf tree from a leaf hash and its inclusion proof,
/// following RFC 9162 §2.1.3.2. The result still has to be compared with a trusted root; use
/// [`verify_inclusion`] for that.
pub fn root_from_inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, CoreError> {
    // Step 1.
    if leaf_index >= tree_size {
        return Err(CoreError::TlogIndexOutOfRange { index: leaf_index, tree_size });
    }
    let expected = inclusion_proof_len(leaf_index, tree_size);
    if proof.len() != expected {
        return Err(CoreError::TlogInclusionProofLength { expected, actual: proof.len() });
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(CoreError::TlogInclusionProofLength { expected, actual: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5, first half.
    if sn != 0 {
        return Err(CoreError::TlogInclusionProofLength { expected, actual: proof.len() });
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is the leaf at `leaf_index` of the `tree_size`-leaf tree whose root
/// is `root`, given its inclusion proof (RFC 9162 §2.1.3.2).
///
/// Errors: [`CoreError::TlogIndexOutOfRange`] when `leaf_index >= tree_size`,
/// [`CoreError::TlogInclusionProofLength`] when the proof has the wrong number of hashes for the
/// tree shape, [`CoreError::TlogInclusionRootMismatch`] when the recomputed root differs.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), CoreError> {
    let computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)?;
    if &computed != root {
        return Err(CoreError::TlogInclusionRootMismatch);
    }
    Ok(())
}

/// The number of hashes in a well-formed consistency proof for `0 < old_size < new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let (inner, border) = decompose_inclusion(old_size - 1, new_size);
    let shift = old_size.trailing_zeros();
    // inner > shift whenever old_size < new_size.
    let inner = inner.saturating_sub(shift);
    let seed_in_proof = usize::from(!old_size.is_power_of_two());
    seed_in_proof + (inner + border) as usize
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`, given a consistency proof (RFC 9162 §2.1.4.2).
///
/// Beyond the RFC (which covers `0 < old_size < new_size`): equal sizes need an empty proof and
/// equal roots; an old size of 0 needs an empty proof and `old_root` equal to [`EMPTY_ROOT`].
///
/// Errors: [`CoreError::TlogConsistencySizeOrder`] when `old_size > new_size`,
/// [`CoreError::TlogConsistencyProofLength`] when the proof has the wrong number of hashes,
/// [`CoreError::TlogConsistencyOldRootMismatch`] / [`CoreError::TlogConsistencyNewRootMismatch`]
/// when the recomputed roots differ from the given ones.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), CoreError> {
    if old_size > new_size {
        return Err(CoreError::TlogConsistencySizeOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(CoreError::TlogConsistencyProofLength { expected: 0, actual: proof.len() });
        }
        if old_size == 0 && old_root != &EMPTY_ROOT {
            return Err(CoreError::TlogConsistencyOldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(CoreError::TlogConsistencyNewRootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    // Step 1 (an empty proof) is covered: expected is never 0 here.
    if proof.len() != expected {
        return Err(CoreError::TlogConsistencyProofLength { expected, actual: proof.len() });
    }
    let length_error = CoreError::TlogConsistencyProofLength { expected, actual: proof.len() };
    // Step 2: if old_size is a power of two, the old root is the first node of the path.
    let (first, rest): (Hash, &[Hash]) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((f, r)) => (*f, r),
            None => return Err(length_error),
        }
    };
    // Step 3.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (first, first);
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(length_error);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(length_error);
    }
    if &fr != old_root {
        return Err(CoreError::TlogConsistencyOldRootMismatch);
    }
    if &sr != new_root {
        return Err(CoreError::TlogConsistencyNewRootMismatch);
    }
    Ok(())
}

/// The bound on the size of a rebuilt [`MerkleAccumulator`] (2^63 leaves). Appending one leaf
/// at a time from below it can never overflow the `u64` leaf count.
pub const MAX_ACCUMULATOR_SIZE: u64 = 1 << 63;

/// An append-only Merkle accumulator: the roots of the perfect subtrees that make up the tree
/// (one per set bit of the size, largest first), from which the root follows in `O(log n)`.
///
/// This is what a log needs to keep in memory to compute each new root as entries are appended;
/// the proofs themselves need the stored subtree hashes (see [`inclusion_proof_ranges`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleAccumulator {
    size: u64,
    peaks: Vec<Hash>,
}

impl MerkleAccumulator {
    /// The accumulator of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds an accumulator from a size and its subtree roots (as returned by
    /// [`MerkleAccumulator::peaks`]), for example after a restart.
    ///
    /// Fails with [`CoreError::TlogAccumulatorShape`] unless there is exactly one root per set
    /// bit of `size`, and for sizes of [`MAX_ACCUMULATOR_SIZE`] or more: no log reaches them,
    /// and appending to them could overflow the leaf count.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<Self, CoreError> {
        if size >= MAX_ACCUMULATOR_SIZE || peaks.len() != size.count_ones() as usize {
            return Err(CoreError::TlogAccumulatorShape { size, peaks: peaks.len() });
        }
        Ok(Self { size, peaks })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees covering leaves `0..size`, largest (leftmost) first.
    /// Their sizes are the set bits of [`MerkleAccumulator::size`], from the highest.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends an entry and returns its leaf hash.
    pub fn push(&mut self, entry: &[u8]) -> Hash {
        let h = leaf_hash(entry);
        self.push_leaf_hash(h);
        h
    }

    /// Appends a leaf hash.
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        // Every trailing one bit of the old size is a perfect subtree of the same height as the
        // one being built: merge them, smallest first.
        while s & 1 == 1 {
            match self.peaks.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break, // unreachable while the invariant holds
            }
            s >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The Merkle Tree Hash of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(last) = it.next() else {
            return EMPTY_ROOT;
        };
        it.fold(*last, |right, left| node_hash(left, &right))
    }
}
