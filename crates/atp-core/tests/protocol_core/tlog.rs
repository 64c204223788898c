//! RFC 9162 Merkle tree tests: a naive reference written straight from the RFC text, the RFC's
//! worked example, known answers from the Certificate Transparency test data, and tampering.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use atp_core::CoreError;
use atp_core::tlog::{
    EMPTY_ROOT, Hash, MAX_ACCUMULATOR_SIZE, MerkleAccumulator, consistency_proof,
    consistency_proof_ranges, inclusion_proof, inclusion_proof_ranges, leaf_hash, node_hash,
    root_from_inclusion_proof, root_from_leaf_hashes, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Naive reference, RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, on the entries themselves.
// ---------------------------------------------------------------------------------------------

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The largest power of two smaller than n (n > 1).
fn ref_k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
fn ref_mth(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => sha256(&[]),
        1 => sha256(&[&[0x00], &d[0]]),
        n => {
            let k = ref_k(n);
            sha256(&[&[0x01], &ref_mth(&d[..k]), &ref_mth(&d[k..])])
        }
    }
}

/// PATH(m, D[n]).
fn ref_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return vec![];
    }
    let k = ref_k(n);
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(ref_mth(&d[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b).
fn ref_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![ref_mth(d)] };
    }
    let k = ref_k(n);
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(ref_mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) for 0 < m < n.
fn ref_proof(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    ref_subproof(m, d, true)
}

fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

fn leaves(d: &[Vec<u8>]) -> Vec<Hash> {
    d.iter().map(|e| leaf_hash(e)).collect()
}

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Known answers.
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_tree_and_empty_leaf_hashes() {
    assert_eq!(
        hex::encode(EMPTY_ROOT),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(root_from_leaf_hashes(&[]), EMPTY_ROOT);
    assert_eq!(MerkleAccumulator::new().root(), EMPTY_ROOT);
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
}

/// The Certificate Transparency reference leaves and roots (transparency-dev/merkle
/// `testonly`, certificate-transparency-go), used as data.
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn ct_leaf_hashes() -> Vec<Hash> {
    CT_LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect()
}

#[test]
fn ct_reference_roots() {
    let lh = ct_leaf_hashes();
    let mut acc = MerkleAccumulator::new();
    for n in 1..=8 {
        acc.push(&hex::decode(CT_LEAVES[n - 1]).unwrap());
        assert_eq!(hex::encode(root_from_leaf_hashes(&lh[..n])), CT_ROOTS[n - 1], "size {n}");
        assert_eq!(hex::encode(acc.root()), CT_ROOTS[n - 1], "accumulator size {n}");
    }
}

#[test]
fn ct_reference_proofs() {
    let lh = ct_leaf_hashes();
    let root8 = h(CT_ROOTS[7]);
    let cases: [(u64, &[&str]); 2] = [
        (
            0,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (index, want) in cases {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(inclusion_proof(index, &lh).unwrap(), want, "inclusion {index}");
        verify_inclusion(index, 8, &lh[index as usize], &want, &root8).unwrap();
    }
    let cons: [(u64, u64, &[&str]); 3] = [
        (
            2,
            8,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, want) in cons {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        let got = consistency_proof(old, &lh[..new as usize]).unwrap();
        assert_eq!(got, want, "consistency {old} -> {new}");
        verify_consistency(
            old,
            new,
            &h(CT_ROOTS[old as usize - 1]),
            &h(CT_ROOTS[new as usize - 1]),
            &want,
        )
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The worked example of RFC 6962 §2.1.3 / RFC 9162 §2.1.5: seven leaves d0..d6.
//
//             hash
//            /    \
//           k      l
//          / \    / \
//         g   h  i   j
//        / \ / \ / \  |
//        a b c d e f  d6
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc_worked_example_seven_leaves() {
    let d = entries(7);
    let lh = leaves(&d);
    let [a, b, c, dd, e, f, j] = lh.clone().try_into().unwrap();
    let g = node_hash(&a, &b);
    let hh = node_hash(&c, &dd);
    let i = node_hash(&e, &f);
    let k = node_hash(&g, &hh);
    let l = node_hash(&i, &j);
    let root = node_hash(&k, &l);
    assert_eq!(root_from_leaf_hashes(&lh), root);
    assert_eq!(ref_mth(&d), root);

    // Inclusion proofs listed by the RFC.
    assert_eq!(inclusion_proof(0, &lh).unwrap(), vec![b, hh, l]);
    assert_eq!(inclusion_proof(1, &lh).unwrap(), vec![a, hh, l]);
    assert_eq!(inclusion_proof(3, &lh).unwrap(), vec![c, g, l]);
    assert_eq!(inclusion_proof(4, &lh).unwrap(), vec![f, j, k]);
    assert_eq!(inclusion_proof(6, &lh).unwrap(), vec![i, k]);

    // Consistency proofs listed by the RFC: hash0 = 3 leaves, hash1 = 4, hash2 = 6.
    assert_eq!(consistency_proof(3, &lh).unwrap(), vec![c, dd, g, l]);
    assert_eq!(consistency_proof(4, &lh).unwrap(), vec![l]);
    assert_eq!(consistency_proof(6, &lh).unwrap(), vec![i, j, k]);

    let hash0 = root_from_leaf_hashes(&lh[..3]);
    let hash1 = root_from_leaf_hashes(&lh[..4]);
    let hash2 = root_from_leaf_hashes(&lh[..6]);
    assert_eq!(hash1, k);
    assert_eq!(hash2, node_hash(&k, &i));
    verify_consistency(3, 7, &hash0, &root, &[c, dd, g, l]).unwrap();
    verify_consistency(4, 7, &hash1, &root, &[l]).unwrap();
    verify_consistency(6, 7, &hash2, &root, &[i, j, k]).unwrap();
    verify_inclusion(1, 7, &b, &[a, hh, l], &root).unwrap();

    // The ranges behind them.
    assert_eq!(inclusion_proof_ranges(0, 7).unwrap(), vec![1..2, 2..4, 4..7]);
    assert_eq!(consistency_proof_ranges(3, 7).unwrap(), vec![2..3, 3..4, 0..2, 4..7]);
}

// ---------------------------------------------------------------------------------------------
// Against the reference for every size 1..=64.
// ---------------------------------------------------------------------------------------------

#[test]
fn roots_and_accumulator_match_reference() {
    let d = entries(64);
    let lh = leaves(&d);
    let mut acc = MerkleAccumulator::new();
    for n in 1..=64 {
        acc.push_leaf_hash(lh[n - 1]);
        let want = ref_mth(&d[..n]);
        assert_eq!(root_from_leaf_hashes(&lh[..n]), want, "size {n}");
        assert_eq!(acc.root(), want, "accumulator size {n}");
        assert_eq!(acc.size(), n as u64);
        assert_eq!(acc.peaks().len(), n.count_ones() as usize);
        // A rebuilt accumulator continues identically.
        let again = MerkleAccumulator::from_parts(acc.size(), acc.peaks().to_vec()).unwrap();
        assert_eq!(again, acc);
    }
}

#[test]
fn inclusion_matches_reference_for_all_sizes_and_indices() {
    let d = entries(64);
    let lh = leaves(&d);
    for n in 1..=64usize {
        let tree = &lh[..n];
        let root = ref_mth(&d[..n]);
        for m in 0..n {
            let want = ref_path(m, &d[..n]);
            let got = inclusion_proof(m as u64, tree).unwrap();
            assert_eq!(got, want, "PATH({m}, D[{n}])");
            verify_inclusion(m as u64, n as u64, &lh[m], &got, &root).unwrap();
            assert_eq!(root_from_inclusion_proof(m as u64, n as u64, &lh[m], &got).unwrap(), root);
            // Every other index fails (or is rejected for its shape).
            for other in 0..n {
                if other != m {
                    assert!(verify_inclusion(other as u64, n as u64, &lh[m], &got, &root).is_err());
                }
            }
        }
    }
}

#[test]
fn consistency_matches_reference_for_all_pairs() {
    let d = entries(64);
    let lh = leaves(&d);
    let roots: Vec<Hash> = (0..=64).map(|n| ref_mth(&d[..n])).collect();
    for new in 1..=64usize {
        for old in 1..=new {
            let got = consistency_proof(old as u64, &lh[..new]).unwrap();
            if old < new {
                assert_eq!(got, ref_proof(old, &d[..new]), "PROOF({old}, D[{new}])");
            } else {
                assert!(got.is_empty());
            }
            verify_consistency(old as u64, new as u64, &roots[old], &roots[new], &got)
                .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
            if old < new {
                // Swapped roots, or a wrong old size, fail.
                assert!(
                    verify_consistency(old as u64, new as u64, &roots[new], &roots[old], &got)
                        .is_err()
                );
                if old > 1 {
                    assert!(
                        verify_consistency(
                            old as u64 - 1,
                            new as u64,
                            &roots[old - 1],
                            &roots[new],
                            &got
                        )
                        .is_err()
                    );
                }
            }
        }
        // From the empty tree.
        assert!(consistency_proof(0, &lh[..new]).unwrap().is_empty());
        verify_consistency(0, new as u64, &EMPTY_ROOT, &roots[new], &[]).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Precise errors.
// ---------------------------------------------------------------------------------------------

#[test]
fn precise_errors_and_codes() {
    let lh = leaves(&entries(10));
    let root = root_from_leaf_hashes(&lh);
    let proof = inclusion_proof(3, &lh).unwrap();

    let e = inclusion_proof(10, &lh).unwrap_err();
    assert!(matches!(e, CoreError::TlogIndexOutOfRange { index: 10, tree_size: 10 }));
    assert_eq!(e.code(), "TLOG_INDEX_OUT_OF_RANGE");
    let e = verify_inclusion(10, 10, &lh[3], &proof, &root).unwrap_err();
    assert_eq!(e.code(), "TLOG_INDEX_OUT_OF_RANGE");
    let e = verify_inclusion(0, 0, &lh[3], &[], &EMPTY_ROOT).unwrap_err();
    assert_eq!(e.code(), "TLOG_INDEX_OUT_OF_RANGE");

    let mut long = proof.clone();
    long.push([0; 32]);
    let e = verify_inclusion(3, 10, &lh[3], &long, &root).unwrap_err();
    assert!(matches!(e, CoreError::TlogInclusionProofLength { expected: 4, actual: 5 }));
    assert_eq!(e.code(), "TLOG_INCLUSION_PROOF_LENGTH");
    let e = verify_inclusion(3, 10, &lh[3], &proof[..3], &root).unwrap_err();
    assert_eq!(e.code(), "TLOG_INCLUSION_PROOF_LENGTH");

    let e = verify_inclusion(3, 10, &lh[4], &proof, &root).unwrap_err();
    assert_eq!(e.code(), "TLOG_INCLUSION_ROOT_MISMATCH");

    let r4 = root_from_leaf_hashes(&lh[..4]);
    let r7 = root_from_leaf_hashes(&lh[..7]);
    let cp = consistency_proof(7, &lh).unwrap();

    let e = consistency_proof(11, &lh).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_SIZE_ORDER");
    let e = verify_consistency(10, 7, &root, &r7, &cp).unwrap_err();
    assert!(matches!(e, CoreError::TlogConsistencySizeOrder { old_size: 10, new_size: 7 }));
    assert_eq!(e.code(), "TLOG_CONSISTENCY_SIZE_ORDER");

    let e = verify_consistency(7, 10, &r7, &root, &cp[1..]).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_PROOF_LENGTH");
    let e = verify_consistency(7, 10, &r7, &root, &[]).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_PROOF_LENGTH");
    let e = verify_consistency(10, 10, &root, &root, &cp).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_PROOF_LENGTH");
    let e = verify_consistency(0, 10, &EMPTY_ROOT, &root, &cp).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_PROOF_LENGTH");

    let e = verify_consistency(7, 10, &r4, &root, &cp).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_OLD_ROOT_MISMATCH");
    let e = verify_consistency(0, 10, &r4, &root, &[]).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_OLD_ROOT_MISMATCH");
    let e = verify_consistency(7, 10, &r7, &r4, &cp).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_NEW_ROOT_MISMATCH");
    let e = verify_consistency(10, 10, &root, &r7, &[]).unwrap_err();
    assert_eq!(e.code(), "TLOG_CONSISTENCY_NEW_ROOT_MISMATCH");
    verify_consistency(10, 10, &root, &root, &[]).unwrap();

    let e = MerkleAccumulator::from_parts(3, vec![[0; 32]]).unwrap_err();
    assert_eq!(e.code(), "TLOG_ACCUMULATOR_SHAPE");
}

/// Regression: an accumulator rebuilt at the largest sizes used to accept the next leaf by
/// overflowing its `u64` leaf count (a panic in debug builds, a silent wrap to an empty tree
/// with stale peaks in release builds).
#[test]
fn accumulator_refuses_sizes_that_could_overflow() {
    let x = [7u8; 32];
    for size in [u64::MAX, u64::MAX - 1, MAX_ACCUMULATOR_SIZE] {
        let peaks = vec![x; size.count_ones() as usize];
        let e = MerkleAccumulator::from_parts(size, peaks).unwrap_err();
        assert_eq!(e.code(), "TLOG_ACCUMULATOR_SHAPE");
    }
    let below = MAX_ACCUMULATOR_SIZE - 1;
    let mut acc = MerkleAccumulator::from_parts(below, vec![x; 63]).unwrap();
    acc.push_leaf_hash(x);
    assert_eq!(acc.size(), MAX_ACCUMULATOR_SIZE);
    assert_eq!(acc.peaks().len(), 1);
}

#[test]
fn huge_sizes_do_not_panic() {
    let x = [7u8; 32];
    for (i, n) in [(0, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 62, u64::MAX), (5, 1 << 63)] {
        let ranges = inclusion_proof_ranges(i, n).unwrap();
        let proof = vec![x; ranges.len()];
        assert!(verify_inclusion(i, n, &x, &proof, &x).is_err());
    }
    for (m, n) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX), (3, 1 << 63)] {
        let ranges = consistency_proof_ranges(m, n).unwrap();
        let proof = vec![x; ranges.len()];
        assert!(verify_consistency(m, n, &x, &x, &proof).is_err());
        assert!(verify_consistency(m, n, &x, &x, &[]).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Tampering: any bit flip in a proof, leaf or root, or a wrong index, fails.
// ---------------------------------------------------------------------------------------------

fn flip(h: &mut Hash, bit: usize) {
    h[(bit / 8) % 32] ^= 1 << (bit % 8);
}

proptest! {
    #[test]
    fn inclusion_tamper_fails(n in 1usize..200, m_seed: usize, target in 0usize..3, bit in 0usize..256,
                              which: usize, wrong: usize) {
        let lh = leaves(&entries(n));
        let m = m_seed % n;
        let root = root_from_leaf_hashes(&lh);
        let proof = inclusion_proof(m as u64, &lh).unwrap();
        prop_assert!(verify_inclusion(m as u64, n as u64, &lh[m], &proof, &root).is_ok());

        let (mut leaf, mut root2, mut proof2) = (lh[m], root, proof.clone());
        match target {
            0 => flip(&mut leaf, bit),
            1 => flip(&mut root2, bit),
            _ if !proof2.is_empty() => { let len = proof2.len(); flip(&mut proof2[which % len], bit) }
            _ => flip(&mut leaf, bit),
        }
        prop_assert!(verify_inclusion(m as u64, n as u64, &leaf, &proof2, &root2).is_err());

        let other = wrong % (n + 2);
        if other != m {
            prop_assert!(verify_inclusion(other as u64, n as u64, &lh[m], &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_tamper_fails(new in 2usize..200, old_seed: usize, target in 0usize..3,
                                bit in 0usize..256, which: usize) {
        let lh = leaves(&entries(new));
        let old = 1 + old_seed % (new - 1);
        let (r1, r2) = (root_from_leaf_hashes(&lh[..old]), root_from_leaf_hashes(&lh));
        let proof = consistency_proof(old as u64, &lh).unwrap();
        prop_assert!(verify_consistency(old as u64, new as u64, &r1, &r2, &proof).is_ok());

        let (mut a, mut b, mut p) = (r1, r2, proof.clone());
        match target {
            0 => flip(&mut a, bit),
            1 => flip(&mut b, bit),
            _ => { let len = p.len(); flip(&mut p[which % len], bit) }
        }
        prop_assert!(verify_consistency(old as u64, new as u64, &a, &b, &p).is_err());
    }

    #[test]
    fn accumulator_matches_batch(n in 0usize..300) {
        let lh = leaves(&entries(n));
        let mut acc = MerkleAccumulator::new();
        for x in &lh {
            acc.push_leaf_hash(*x);
        }
        prop_assert_eq!(acc.root(), root_from_leaf_hashes(&lh));
    }
}
