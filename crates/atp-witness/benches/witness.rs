//! What a witness costs (docs/benchmarks.md, "Witness"): one `add-checkpoint` end to end in
//! process (parse, both log signatures verified, the consistency proof, the state fsynced,
//! two cosignature lines signed), the same rules and signing without the disk, and what a
//! client spends to check a checkpoint with a 2-of-3 quorum of witnesses (the node's two lines
//! and two witnesses' two lines each).

use std::time::{Duration, Instant};

use atp_core::checkpoint::{Checkpoint, VerifierKey, sign_note, verify_note_with};
use atp_core::tlog::{self, Hash};
use atp_core::witness::{
    AddCheckpoint, Cosigned, CosignerKey, check_add_checkpoint, cosign, verify_cosignature,
};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_witness::{LogConfig, Witness, WitnessConfig};
use criterion::{Criterion, criterion_group, criterion_main};

const ORIGIN: &str = "atp-node/bench";

fn signed(key: &SigningKey, leaves: &[Hash]) -> String {
    let (mldsa, ed) = key.components().expect("composite");
    let cp = Checkpoint::new(ORIGIN, leaves.len() as u64, tlog::root_from_leaf_hashes(leaves));
    sign_note(&cp, ORIGIN, ed, mldsa).expect("sign")
}

/// Requests that grow the log one leaf at a time from `start` leaves, signed in advance.
fn growth(key: &SigningKey, leaves: &[Hash], start: usize, count: usize) -> Vec<String> {
    (start..start + count)
        .map(|old| {
            let proof = tlog::consistency_proof(old as u64, &leaves[..=old]).expect("proof");
            AddCheckpoint { old_size: old as u64, proof, note: signed(key, &leaves[..=old]) }
                .to_body()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let log = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key");
    let (mldsa, ed) = log.components().expect("composite");
    let ed_vk = VerifierKey::new(ORIGIN, ed.public_key()).expect("vkey");
    let ml_vk = VerifierKey::new(ORIGIN, mldsa.public_key()).expect("vkey");
    let leaves: Vec<Hash> = (0u32..200_000).map(|i| tlog::leaf_hash(&i.to_be_bytes())).collect();

    // End to end, with the fsync: a fresh witness, then requests growing the log by one leaf.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WitnessConfig {
        name: "witness.bench/w1".into(),
        logs: vec![LogConfig {
            origin: ORIGIN.into(),
            ed25519: ed_vk.to_vkey(),
            mldsa65: ml_vk.to_vkey(),
        }],
    };
    let witness = Witness::open(&config, dir.path()).expect("witness");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let first = AddCheckpoint { old_size: 0, proof: vec![], note: signed(&log, &leaves[..1000]) };
    runtime.block_on(witness.add_checkpoint_at(first.to_body().as_bytes(), || 1)).expect("first");
    let mut next = 1000;
    c.bench_function("witness/add_checkpoint (fsync)", |b| {
        b.iter_custom(|iters| {
            let iters = usize::try_from(iters).expect("iterations");
            let bodies = growth(&log, &leaves, next, iters);
            next += iters;
            let start = Instant::now();
            for body in &bodies {
                runtime
                    .block_on(witness.add_checkpoint_at(body.as_bytes(), || 1))
                    .expect("cosigned");
            }
            start.elapsed()
        });
    });

    // The rules and the cosignature alone (no disk).
    let witness_key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key");
    let body = growth(&log, &leaves, 150_000, 1).remove(0);
    let last =
        Cosigned { size: 150_000, root_hash: tlog::root_from_leaf_hashes(&leaves[..150_000]) };
    c.bench_function("witness/check + cosign (no disk)", |b| {
        b.iter(|| {
            let request = AddCheckpoint::parse(body.as_bytes()).expect("parse");
            let cp = check_add_checkpoint(&request, &ed_vk, &ml_vk, Some(last)).expect("check");
            cosign(&cp, "witness.bench/w1", 1, &witness_key).expect("cosign")
        });
    });

    // A client's check of a checkpoint with a 2-of-3 quorum: the node's note and two
    // witnesses' cosignatures (each both lines).
    let note = signed(&log, &leaves[..150_001]);
    let cp = verify_note_with(&note, &ed_vk, &ml_vk).expect("note");
    let witnesses: Vec<SigningKey> =
        (0..2).map(|_| SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key")).collect();
    let mut cosigned = note.clone();
    let mut cosigners = Vec::new();
    for (i, w) in witnesses.iter().enumerate() {
        let name = format!("witness.bench/w{i}");
        cosigned.push_str(&cosign(&cp, &name, 1, w).expect("cosign"));
        cosigners.push(CosignerKey::from_composite(&name, w.public_key_ref()).expect("cosigner"));
    }
    c.bench_function("client/checkpoint with a 2-of-3 quorum", |b| {
        b.iter(|| {
            verify_note_with(&cosigned, &ed_vk, &ml_vk).expect("note");
            cosigners.iter().map(|k| verify_cosignature(&cosigned, k).expect("cosig")).sum::<u64>()
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
