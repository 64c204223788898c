//! Witnesses: the `add-checkpoint` body (C2SP tlog-witness), the rules before a cosignature,
//! and cosignature lines (C2SP tlog-cosignature v1 with an ATP ML-DSA-65 line), both required.
#![allow(clippy::unwrap_used)]

use atp_core::checkpoint::{Checkpoint, SignedNote, VerifierKey, sign_note};
use atp_core::tlog::{self, Hash};
use atp_core::witness::{
    AddCheckpoint, Cosigned, CosignerKey, MAX_PROOF_LINES, WitnessPolicy, check_add_checkpoint,
    cosign, verify_cosignature,
};
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

const ORIGIN: &str = "atp.example/log";
const WITNESS: &str = "witness.example/w1";

fn tree(n: usize) -> Vec<Hash> {
    (0..n).map(|i| tlog::leaf_hash(&i.to_be_bytes())).collect()
}

fn log_keys(key: &SigningKey) -> (VerifierKey, VerifierKey) {
    let (mldsa, ed) = key.components().unwrap();
    (
        VerifierKey::new(ORIGIN, ed.public_key()).unwrap(),
        VerifierKey::new(ORIGIN, mldsa.public_key()).unwrap(),
    )
}

fn checkpoint(leaves: &[Hash]) -> Checkpoint {
    Checkpoint::new(ORIGIN, leaves.len() as u64, tlog::root_from_leaf_hashes(leaves))
}

fn note(key: &SigningKey, leaves: &[Hash]) -> String {
    let (mldsa, ed) = key.components().unwrap();
    sign_note(&checkpoint(leaves), ORIGIN, ed, mldsa).unwrap()
}

#[test]
fn a_request_round_trips_and_malformed_bodies_are_refused() {
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let leaves = tree(20);
    let request = AddCheckpoint {
        old_size: 7,
        proof: tlog::consistency_proof(7, &leaves).unwrap(),
        note: note(&key, &leaves),
    };
    let body = request.to_body();
    assert!(body.starts_with("old 7\n"));
    assert_eq!(AddCheckpoint::parse(body.as_bytes()).unwrap(), request);

    let hash = STANDARD.encode([1u8; 32]);
    let long = format!("old 1\n{}\n{}", format!("{hash}\n").repeat(MAX_PROOF_LINES + 1), "x");
    let bad: Vec<(&str, String)> = vec![
        ("no old line", "\nnote".into()),
        ("leading zero", "old 07\n\nnote".into()),
        ("negative", "old -1\n\nnote".into()),
        ("not decimal", "old 1e3\n\nnote".into()),
        ("no blank line", format!("old 1\n{hash}\n")),
        ("31-byte hash", format!("old 1\n{}\n\nnote", STANDARD.encode([1u8; 31]))),
        ("not base64", "old 1\n!!!\n\nnote".into()),
        ("64 proof lines", long),
    ];
    for (what, body) in bad {
        let err = AddCheckpoint::parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "WITNESS_REQUEST_MALFORMED", "{what}");
    }
    assert_eq!(
        AddCheckpoint::parse(b"old 0\n\xff\n\n").unwrap_err().code(),
        "WITNESS_REQUEST_MALFORMED"
    );
    let ok = format!("old 1\n{}\n", format!("{hash}\n").repeat(MAX_PROOF_LINES));
    assert_eq!(AddCheckpoint::parse(ok.as_bytes()).unwrap().proof.len(), MAX_PROOF_LINES);
}

#[test]
fn the_rules_accept_growth_and_refuse_each_lie() {
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let (ed, ml) = log_keys(&key);
    let leaves = tree(40);
    let at = |n: usize| Cosigned { size: n as u64, root_hash: checkpoint(&leaves[..n]).root_hash };
    let req = |old: usize, new: &[Hash], proof: Vec<Hash>| AddCheckpoint {
        old_size: old as u64,
        proof,
        note: note(&key, new),
    };
    let proof =
        |old: usize, new: usize| tlog::consistency_proof(old as u64, &leaves[..new]).unwrap();
    // Accepted: first contact, growth with its proof, the same tree again.
    assert_eq!(
        check_add_checkpoint(&req(0, &leaves[..9], vec![]), &ed, &ml, None).unwrap().size,
        9
    );
    for (old, new) in [(9, 10), (9, 40), (1, 2), (5, 8)] {
        let r = req(old, &leaves[..new], proof(old, new));
        assert_eq!(check_add_checkpoint(&r, &ed, &ml, Some(at(old))).unwrap().size, new as u64);
    }
    assert!(check_add_checkpoint(&req(9, &leaves[..9], vec![]), &ed, &ml, Some(at(9))).is_ok());
    let empty = req(0, &[], vec![]);
    assert!(check_add_checkpoint(&empty, &ed, &ml, None).is_ok());

    let mut fork = leaves[..9].to_vec();
    fork.extend(tree(5).iter().map(|h| -> Hash { Sha256::digest(h).into() }));
    let mut bad_proof = proof(9, 20);
    bad_proof[0][31] ^= 0x80;
    let foreign = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let cases: Vec<(&str, AddCheckpoint, Option<Cosigned>, &str)> = vec![
        (
            "old size above new",
            req(20, &leaves[..9], vec![]),
            Some(at(20)),
            "WITNESS_REQUEST_MALFORMED",
        ),
        (
            "old size not the last cosigned",
            req(5, &leaves[..20], proof(5, 20)),
            Some(at(9)),
            "WITNESS_OLD_SIZE_MISMATCH",
        ),
        (
            "first contact claiming an old size",
            req(9, &leaves[..20], proof(9, 20)),
            None,
            "WITNESS_OLD_SIZE_MISMATCH",
        ),
        (
            "size 0 seen, now old 0 again",
            req(0, &leaves[..20], vec![]),
            Some(at(9)),
            "WITNESS_OLD_SIZE_MISMATCH",
        ),
        (
            "a proof from size 0",
            req(0, &leaves[..9], vec![[0u8; 32]]),
            None,
            "WITNESS_INCONSISTENT",
        ),
        ("a wrong proof", req(9, &leaves[..20], bad_proof), Some(at(9)), "WITNESS_INCONSISTENT"),
        ("a missing proof", req(9, &leaves[..20], vec![]), Some(at(9)), "WITNESS_INCONSISTENT"),
        (
            "a fork (it shares 9 leaves, the witness cosigned 12)",
            req(12, &fork, tlog::consistency_proof(12, &fork).unwrap()),
            Some(at(12)),
            "WITNESS_INCONSISTENT",
        ),
        (
            "two roots for one size",
            req(12, &fork[..12], vec![]),
            Some(at(12)),
            "WITNESS_INCONSISTENT",
        ),
        (
            "another key",
            AddCheckpoint { old_size: 9, proof: proof(9, 20), note: note(&foreign, &leaves[..20]) },
            Some(at(9)),
            "CHECKPOINT_SIGNATURE_MISSING",
        ),
    ];
    for (what, request, last, code) in cases {
        let err = check_add_checkpoint(&request, &ed, &ml, last).unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err}");
    }
    // Size 0 with a root other than the empty tree's.
    let (mldsa, ed_key) = key.components().unwrap();
    let zero = sign_note(&Checkpoint::new(ORIGIN, 0, [9; 32]), ORIGIN, ed_key, mldsa).unwrap();
    let r = AddCheckpoint { old_size: 0, proof: vec![], note: zero };
    assert_eq!(
        check_add_checkpoint(&r, &ed, &ml, None).unwrap_err().code(),
        "WITNESS_INCONSISTENT"
    );
    // A note with only the Ed25519 line (a stock C2SP log) is refused: both lines are required.
    let full = note(&key, &leaves[..10]);
    let mut parsed = SignedNote::parse(&full).unwrap();
    parsed.signatures.retain(|s| s.key_id == ed.key_id());
    let r = AddCheckpoint { old_size: 9, proof: proof(9, 10), note: parsed.to_string() };
    assert_eq!(
        check_add_checkpoint(&r, &ed, &ml, Some(at(9))).unwrap_err().code(),
        "CHECKPOINT_SIGNATURE_MISSING"
    );
}

#[test]
fn cosignatures_verify_with_both_lines_and_fail_after_any_change() {
    let log = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let witness = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let cosigner = CosignerKey::from_composite(WITNESS, witness.public_key_ref()).unwrap();
    let leaves = tree(5);
    let signed = note(&log, &leaves);
    let lines = cosign(&checkpoint(&leaves), WITNESS, 1_700_000_000, &witness).unwrap();
    let cosigned = format!("{signed}{lines}");
    assert_eq!(verify_cosignature(&cosigned, &cosigner).unwrap(), 1_700_000_000);
    // The verifier keys round-trip, in either order.
    let [edv, mlv] = cosigner.vkeys();
    assert_eq!(CosignerKey::from_vkeys(&edv, &mlv).unwrap(), cosigner);
    assert_eq!(CosignerKey::from_vkeys(&mlv, &edv).unwrap(), cosigner);

    // The Ed25519 line is the standard C2SP type 0x04: key ID and message checked by hand.
    let (_, ed) = witness.components().unwrap();
    let mut h = Sha256::new();
    h.update(WITNESS.as_bytes());
    h.update([0x0a, 0x04]);
    h.update(ed.public_key().as_bytes());
    let id: [u8; 4] = h.finalize()[..4].try_into().unwrap();
    let parsed = SignedNote::parse(&cosigned).unwrap();
    let line = parsed.signatures.iter().find(|s| s.name == WITNESS && s.key_id == id).unwrap();
    assert_eq!(line.signature[..8], 1_700_000_000u64.to_be_bytes());
    let message =
        format!("cosignature/v1\ntime 1700000000\n{}", checkpoint(&leaves).to_body().unwrap());
    let pk = PublicKey::from_bytes(AlgorithmId::Ed25519, ed.public_key().as_bytes()).unwrap();
    pk.verify(message.as_bytes(), b"", &line.signature[8..]).unwrap();

    // Either line alone, a changed timestamp, another checkpoint, another witness: refused.
    let mut lines_only: Vec<&str> = lines.lines().collect();
    for dropped in 0..2 {
        let kept = lines_only.remove(dropped);
        let one = format!("{signed}{kept}\n");
        assert!(verify_cosignature(&one, &cosigner).is_err(), "line {dropped} alone");
        lines_only.insert(dropped, kept);
    }
    let other_time = cosign(&checkpoint(&leaves), WITNESS, 1_700_000_001, &witness).unwrap();
    let mixed = format!("{signed}{}\n{}\n", lines_only[0], other_time.lines().nth(1).unwrap());
    assert!(verify_cosignature(&mixed, &cosigner).is_err(), "two timestamps");
    let moved = format!("{}{lines}", note(&log, &tree(6)));
    assert!(verify_cosignature(&moved, &cosigner).is_err(), "another checkpoint");
    let stranger = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let stranger = CosignerKey::from_composite(WITNESS, stranger.public_key_ref()).unwrap();
    assert!(verify_cosignature(&cosigned, &stranger).is_err(), "another witness's keys");
    let mut raw =
        STANDARD.decode(lines.lines().next().unwrap().rsplit(' ').next().unwrap()).unwrap();
    raw[12] ^= 1;
    let flipped =
        format!("{signed}\u{2014} {WITNESS} {}\n{}\n", STANDARD.encode(raw), lines_only[1]);
    assert!(verify_cosignature(&flipped, &cosigner).is_err(), "one flipped signature bit");
    assert!(cosign(&checkpoint(&leaves), WITNESS, 0, &witness).is_err(), "time 0");
}

/// Both cosignature lines checked by an independent implementation: Python `cryptography`
/// (OpenSSL) recomputes the key IDs and the signed message from the spec and verifies the
/// Ed25519 signature and the ML-DSA-65 one with its context.
#[test]
fn python_cryptography_verifies_both_cosignature_lines() {
    let Some(python) = atp_test_vectors::python_with(
        "from cryptography.hazmat.primitives.asymmetric import mldsa",
        "`cryptography` (ML-DSA)",
    ) else {
        return;
    };
    let witness = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let (mldsa, ed) = witness.components().unwrap();
    let leaves = tree(3);
    let lines = cosign(&checkpoint(&leaves), WITNESS, 1_765_000_000, &witness).unwrap();
    let script = r#"
import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
name, ed_pk, ml_pk, body, lines = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), sys.argv[4], sys.argv[5]
def key_id(ty, pk):
    return hashlib.sha256(name.encode() + b"\n" + ty + pk).digest()[:4]
ids = {key_id(b"\x04", ed_pk): "ed25519", key_id(b"\xffatp-mldsa65-cosignature", ml_pk): "mldsa65"}
seen = set()
for line in lines.splitlines():
    prefix = "\u2014 " + name + " "
    assert line.startswith(prefix), line
    raw = base64.b64decode(line[len(prefix):], validate=True)
    kind = ids[raw[:4]]
    stamp = int.from_bytes(raw[4:12], "big")
    message = b"cosignature/v1\ntime %d\n" % stamp + body.encode()
    if kind == "ed25519":
        ed25519.Ed25519PublicKey.from_public_bytes(ed_pk).verify(raw[12:], message)
    else:
        mldsa.MLDSA65PublicKey.from_public_bytes(ml_pk).verify(raw[12:], message, b"atp/cosignature/v1")
    seen.add(kind)
assert seen == {"ed25519", "mldsa65"}, seen
print("ok")
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, WITNESS])
        .arg(hex::encode(ed.public_key().as_bytes()))
        .arg(hex::encode(mldsa.public_key().as_bytes()))
        .arg(checkpoint(&leaves).to_body().unwrap())
        .arg(&lines)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "python refused the cosignature:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_policy_counts_distinct_witnesses_with_both_valid_lines() {
    let log = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let keys: Vec<SigningKey> =
        (0..3).map(|_| SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap()).collect();
    let names = ["w.example/0", "w.example/1", "w.example/2"];
    let cosigners: Vec<CosignerKey> = keys
        .iter()
        .zip(names)
        .map(|(k, n)| CosignerKey::from_composite(n, k.public_key_ref()).unwrap())
        .collect();
    let text = format!(
        "# three witnesses, any two\nquorum 2\n\n{}",
        cosigners
            .iter()
            .map(|c| {
                let [ed, ml] = c.vkeys();
                format!("witness {ed} {ml}\n")
            })
            .collect::<String>()
    );
    let policy = WitnessPolicy::parse(&text).unwrap();
    assert_eq!((policy.quorum(), policy.witnesses().len()), (2, 3));

    let leaves = tree(4);
    let signed = note(&log, &leaves);
    let lines = |i: usize| cosign(&checkpoint(&leaves), names[i], 1_765_000_000, &keys[i]).unwrap();
    let check = |note: String| policy.check(&note).map_err(|e| e.code().to_owned());
    assert_eq!(check(signed.clone()), Err("WITNESS_QUORUM_NOT_MET".into()));
    assert_eq!(check(format!("{signed}{}", lines(0))), Err("WITNESS_QUORUM_NOT_MET".into()));
    assert_eq!(check(format!("{signed}{}{}", lines(0), lines(2))), Ok(2));
    assert_eq!(check(format!("{signed}{}{}{}", lines(0), lines(1), lines(2))), Ok(3));
    // One witness twice is one witness (and a repeated key makes its lines ambiguous).
    assert_eq!(
        check(format!("{signed}{}{}", lines(0), lines(0))),
        Err("WITNESS_QUORUM_NOT_MET".into())
    );
    // Lines under witness 1's name by another key do not count for witness 1.
    let impostor = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let forged = cosign(&checkpoint(&leaves), names[1], 1_765_000_000, &impostor).unwrap();
    assert_eq!(
        check(format!("{signed}{}{forged}", lines(0))),
        Err("WITNESS_QUORUM_NOT_MET".into())
    );

    let [ed0, ml0] = cosigners[0].vkeys();
    for (what, bad) in [
        ("no quorum line", format!("witness {ed0} {ml0}\n")),
        ("quorum 0", format!("quorum 0\nwitness {ed0} {ml0}\n")),
        ("quorum above the witnesses", format!("quorum 2\nwitness {ed0} {ml0}\n")),
        ("a witness twice", format!("quorum 1\nwitness {ed0} {ml0}\nwitness {ml0} {ed0}\n")),
        ("two quorum lines", format!("quorum 1\nquorum 1\nwitness {ed0} {ml0}\n")),
        ("a checkpoint key, not a cosigner key", {
            let (_, ed) = log.components().unwrap();
            let vk = VerifierKey::new("w.example/0", ed.public_key()).unwrap().to_vkey();
            format!("quorum 1\nwitness {vk} {ml0}\n")
        }),
        ("an unknown word", "quorum 1\nwitnesses a b\n".to_owned()),
    ] {
        let err = WitnessPolicy::parse(&bad).unwrap_err();
        assert_eq!(err.code(), "WITNESS_POLICY_INVALID", "{what}: {err}");
    }
}

#[test]
fn only_a_witness_s_own_two_lines_are_taken_from_its_answer() {
    use atp_core::witness::cosignature_lines;
    let log = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let witness = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let cosigner = CosignerKey::from_composite(WITNESS, witness.public_key_ref()).unwrap();
    let leaves = tree(6);
    let signed = note(&log, &leaves);
    let lines = cosign(&checkpoint(&leaves), WITNESS, 1_765_000_000, &witness).unwrap();
    // Extra lines around the witness's own: a copy of a log line and another "witness".
    let log_line = signed.lines().last().unwrap();
    let other = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let other = cosign(&checkpoint(&leaves), "other.example/w", 1_765_000_000, &other).unwrap();
    let answer = format!("{log_line}\n{lines}{other}");
    let kept = cosignature_lines(&signed, &answer, &cosigner).unwrap();
    assert_eq!(kept, lines, "exactly the witness's two lines, nothing else");
    // One line missing, or one line twice: refused.
    let first = lines.lines().next().unwrap();
    assert!(cosignature_lines(&signed, &format!("{first}\n"), &cosigner).is_err());
    assert!(cosignature_lines(&signed, &format!("{lines}{first}\n"), &cosigner).is_err());
    // Lines for another checkpoint: refused.
    assert!(cosignature_lines(&note(&log, &tree(7)), &lines, &cosigner).is_err());
    // One key under two names in a policy: refused (the message does not name the witness).
    let renamed = CosignerKey::from_composite("w.example/alias", witness.public_key_ref()).unwrap();
    let err = WitnessPolicy::new(1, vec![cosigner, renamed]).unwrap_err();
    assert_eq!(err.code(), "WITNESS_POLICY_INVALID");
}
