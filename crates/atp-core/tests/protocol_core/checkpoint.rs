//! Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes with an Ed25519 line and
//! an ML-DSA-65 line, both required.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use atp_core::checkpoint::{
    Checkpoint, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteSignature, SignedNote, VerifierKey, key_id,
    sign_note, verify_note, verify_note_with,
};
use atp_core::tlog::{MerkleAccumulator, root_from_leaf_hashes};
use atp_crypto::{AlgorithmId, PublicKey, SigningContext, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const NAME: &str = "atp.example.com/log";

struct Keys {
    ed: SigningKey,
    ml: SigningKey,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        ed: SigningKey::from_seed(AlgorithmId::Ed25519, &[1u8; 32]).unwrap(),
        ml: SigningKey::from_seed(AlgorithmId::MlDsa65, &[2u8; 32]).unwrap(),
    })
}

fn sample() -> Checkpoint {
    let mut acc = MerkleAccumulator::new();
    for i in 0..42u32 {
        acc.push(&i.to_be_bytes());
    }
    Checkpoint::new(NAME, acc.size(), acc.root())
}

fn signed() -> &'static str {
    static N: OnceLock<String> = OnceLock::new();
    N.get_or_init(|| sign_note(&sample(), NAME, &keys().ed, &keys().ml).unwrap())
}

fn verify(note: &str) -> Result<Checkpoint, atp_core::CoreError> {
    let k = keys();
    verify_note(note, NAME, &k.ed.public_key(), &k.ml.public_key())
}

fn code(note: &str) -> &'static str {
    verify(note).unwrap_err().code()
}

#[test]
fn body_format() {
    let root = root_from_leaf_hashes(&[]);
    let cp = Checkpoint::new("example.com/log", 0, root);
    assert_eq!(
        cp.to_body().unwrap(),
        "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
    let mut cp = sample();
    cp.extensions = vec!["ext one".into(), "— ext two".into()];
    let body = cp.to_body().unwrap();
    assert_eq!(Checkpoint::parse_body(&body).unwrap(), cp);
}

#[test]
fn round_trip_and_shape() {
    let note = signed();
    let cp = verify(note).unwrap();
    assert_eq!(cp, sample());

    let parsed = SignedNote::parse(note).unwrap();
    assert_eq!(parsed.text, sample().to_body().unwrap());
    assert_eq!(parsed.to_string(), note);
    assert_eq!(parsed.signatures.len(), 2);
    for s in &parsed.signatures {
        assert_eq!(s.name, NAME);
    }
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 3 + 1 + 2);
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with("\u{2014} atp.example.com/log "));
    assert!(lines[5].starts_with("\u{2014} atp.example.com/log "));
    assert_eq!(parsed.signatures[0].signature.len(), 64);
    assert_eq!(parsed.signatures[1].signature.len(), 3309);
}

#[test]
fn ed25519_line_is_plain_signed_note_ed25519() {
    let k = keys();
    let note = signed();
    let parsed = SignedNote::parse(note).unwrap();
    let body = sample().to_body().unwrap();
    let ed_line = &parsed.signatures[0];

    // Key ID per signed-note: SHA-256(name || 0x0A || 0x01 || pk)[:4].
    let pk = k.ed.public_key();
    let mut h = Sha256::new();
    h.update(NAME.as_bytes());
    h.update([0x0a, 0x01]);
    h.update(pk.as_bytes());
    let want_id: [u8; 4] = h.finalize()[..4].try_into().unwrap();
    assert_eq!(ed_line.key_id, want_id);
    assert_eq!(key_id(NAME, &pk).unwrap(), want_id);

    // The signature is plain Ed25519 over the body bytes, with no context: deterministic, so
    // it equals a signature we compute ourselves, and verifies as such.
    let ours = k.ed.sign(body.as_bytes(), b"").unwrap();
    assert_eq!(ed_line.signature, ours);
    pk.verify(body.as_bytes(), b"", &ed_line.signature).unwrap();
    let mut raw = want_id.to_vec();
    raw.extend_from_slice(&ours);
    assert!(note.contains(&format!("\u{2014} {NAME} {}\n", STANDARD.encode(&raw))));

    // The ML-DSA line: ATP key ID and ctx = atp/checkpoint/v1.
    let ml_line = &parsed.signatures[1];
    let mpk = k.ml.public_key();
    let mut h = Sha256::new();
    h.update(NAME.as_bytes());
    h.update([0x0a, 0xff]);
    h.update(b"atp-mldsa65");
    h.update(mpk.as_bytes());
    assert_eq!(ml_line.key_id[..], h.finalize()[..4]);
    mpk.verify(body.as_bytes(), SigningContext::Checkpoint.as_bytes(), &ml_line.signature).unwrap();
    assert!(mpk.verify(body.as_bytes(), b"", &ml_line.signature).is_err());
}

#[test]
fn vkey_strings() {
    let k = keys();
    let pk = k.ed.public_key();
    let vk = VerifierKey::new(NAME, pk.clone()).unwrap();
    let s = vk.to_vkey();
    let mut raw = vec![0x01];
    raw.extend_from_slice(pk.as_bytes());
    assert_eq!(
        s,
        format!("{NAME}+{}+{}", hex::encode(key_id(NAME, &pk).unwrap()), STANDARD.encode(&raw))
    );
    assert_eq!(VerifierKey::from_vkey(&s).unwrap(), vk);

    let mvk = VerifierKey::new(NAME, k.ml.public_key()).unwrap();
    let ms = mvk.to_vkey();
    assert_eq!(VerifierKey::from_vkey(&ms).unwrap(), mvk);
    verify_note_with(signed(), &VerifierKey::from_vkey(&s).unwrap(), &mvk).unwrap();

    // Wrong key ID, bad shapes.
    let wrong_id = format!("{NAME}+00000000+{}", STANDARD.encode(&raw));
    for bad in [
        wrong_id.as_str(),
        "name+abcd+AQ==",
        "name",
        "a+b+c+d",
        &s.replace(NAME, "bad name"),
        &s.to_uppercase(),
    ] {
        assert!(VerifierKey::from_vkey(bad).is_err(), "{bad}");
    }
    assert_eq!(
        VerifierKey::from_vkey(&wrong_id).unwrap_err().code(),
        "CHECKPOINT_VERIFIER_KEY_MALFORMED"
    );
    // Composite keys have no note encoding.
    let comp = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[3u8; 64]).unwrap();
    assert_eq!(
        VerifierKey::new(NAME, comp.public_key()).unwrap_err().code(),
        "CHECKPOINT_KEY_ALGORITHM"
    );
}

#[test]
fn both_lines_are_required() {
    let note = signed();
    let lines: Vec<&str> = note.split_inclusive('\n').collect();
    let (body, ed, ml) = (lines[..4].concat(), lines[4], lines[5]);

    // Missing ML-DSA line.
    let only_ed = format!("{body}{ed}");
    assert_eq!(code(&only_ed), "CHECKPOINT_SIGNATURE_MISSING");
    assert!(verify(&only_ed).unwrap_err().to_string().contains("ML-DSA-65"));
    // Missing Ed25519 line.
    let only_ml = format!("{body}{ml}");
    assert_eq!(code(&only_ml), "CHECKPOINT_SIGNATURE_MISSING");
    assert!(verify(&only_ml).unwrap_err().to_string().contains("Ed25519"));
    // Order does not matter.
    verify(&format!("{body}{ml}{ed}")).unwrap();

    // A cosigner's line is ignored, valid or not.
    let cosigner = NoteSignature {
        name: "witness.example".into(),
        key_id: [1, 2, 3, 4],
        signature: vec![9; 64],
    };
    verify(&format!("{body}{ed}{}{ml}", cosigner.to_line())).unwrap();
    // Same name, unknown key ID: ignored too (e.g. a rotated key).
    let rotated = NoteSignature { name: NAME.into(), key_id: [0, 0, 0, 0], signature: vec![9; 64] };
    verify(&format!("{body}{ed}{ml}{}", rotated.to_line())).unwrap();
    assert_eq!(code(&format!("{body}{ed}{}", rotated.to_line())), "CHECKPOINT_SIGNATURE_MISSING");

    // A line from the log key that does not verify fails the note.
    let parsed = SignedNote::parse(note).unwrap();
    let mut bad_ed = parsed.signatures[0].clone();
    bad_ed.signature[0] ^= 1;
    assert_eq!(code(&format!("{body}{}{ml}", bad_ed.to_line())), "CHECKPOINT_SIGNATURE_INVALID");
    let mut bad_ml = parsed.signatures[1].clone();
    bad_ml.signature.truncate(100);
    assert_eq!(code(&format!("{body}{ed}{}", bad_ml.to_line())), "CHECKPOINT_SIGNATURE_INVALID");

    // An ML-DSA signature made without the checkpoint context does not count.
    let text = sample().to_body().unwrap();
    let no_ctx = keys().ml.sign(text.as_bytes(), b"").unwrap();
    let line =
        NoteSignature { name: NAME.into(), key_id: parsed.signatures[1].key_id, signature: no_ctx };
    assert_eq!(code(&format!("{body}{ed}{}", line.to_line())), "CHECKPOINT_SIGNATURE_INVALID");
}

/// Regression: a note may carry up to `MAX_SIGNATURES` lines, and every line naming a log key
/// used to be verified, so one note could cost a hundred ML-DSA verifications. A log key signs
/// a note once: a second line from it (valid or not, next to a good one or not) is refused
/// before any signature is checked.
#[test]
fn duplicate_log_key_lines_are_refused() {
    let note = signed();
    let lines: Vec<&str> = note.split_inclusive('\n').collect();
    let (body, ed, ml) = (lines[..4].concat(), lines[4], lines[5]);
    let dup = "CHECKPOINT_SIGNATURE_LINE_MALFORMED";
    assert_eq!(code(&format!("{body}{ed}{ml}{ed}")), dup);
    assert_eq!(code(&format!("{body}{ed}{ml}{ml}")), dup);
    let many = format!("{body}{ed}{}", ml.repeat(MAX_SIGNATURES - 1));
    assert!(SignedNote::parse(&many).is_ok());
    assert_eq!(code(&many), dup);
    let mut bad_ml = SignedNote::parse(note).unwrap().signatures[1].clone();
    bad_ml.signature[0] ^= 1;
    assert_eq!(code(&format!("{body}{ed}{}{ml}", bad_ml.to_line())), dup);
}

#[test]
fn tampering_and_wrong_keys() {
    let k = keys();
    let note = signed();
    // Tampered body: size, origin, root.
    let cp = sample();
    let tampered = note.replacen(&format!("\n{}\n", cp.size), &format!("\n{}\n", cp.size + 1), 1);
    assert_ne!(tampered, note);
    assert_eq!(code(&tampered), "CHECKPOINT_SIGNATURE_INVALID");
    let tampered = note.replacen("atp.example.com/log\n", "atp.example.org/log\n", 1);
    assert_eq!(code(&tampered), "CHECKPOINT_SIGNATURE_INVALID");

    // Swapped key name: no line is from the expected key.
    let e = verify_note(note, "other.example/log", &k.ed.public_key(), &k.ml.public_key());
    assert_eq!(e.unwrap_err().code(), "CHECKPOINT_SIGNATURE_MISSING");
    let renamed = note.replace("\u{2014} atp.example.com/log ", "\u{2014} other.example/log ");
    let e = verify_note(&renamed, "other.example/log", &k.ed.public_key(), &k.ml.public_key());
    assert_eq!(e.unwrap_err().code(), "CHECKPOINT_SIGNATURE_MISSING");

    // Other keys.
    let ed2 = SigningKey::from_seed(AlgorithmId::Ed25519, &[7u8; 32]).unwrap();
    let ml2 = SigningKey::from_seed(AlgorithmId::MlDsa65, &[8u8; 32]).unwrap();
    let e = verify_note(note, NAME, &ed2.public_key(), &k.ml.public_key()).unwrap_err();
    assert_eq!(e.code(), "CHECKPOINT_SIGNATURE_MISSING");
    let e = verify_note(note, NAME, &k.ed.public_key(), &ml2.public_key()).unwrap_err();
    assert_eq!(e.code(), "CHECKPOINT_SIGNATURE_MISSING");
    // Keys of the wrong algorithm, or in the wrong slots.
    let e = verify_note(note, NAME, &k.ml.public_key(), &k.ed.public_key()).unwrap_err();
    assert_eq!(e.code(), "CHECKPOINT_KEY_ALGORITHM");
    let e = sign_note(&sample(), NAME, &k.ml, &k.ed).unwrap_err();
    assert_eq!(e.code(), "CHECKPOINT_KEY_ALGORITHM");
    let ml44 = SigningKey::from_seed(AlgorithmId::MlDsa44, &[9u8; 32]).unwrap();
    let e = sign_note(&sample(), NAME, &k.ed, &ml44).unwrap_err();
    assert_eq!(e.code(), "CHECKPOINT_KEY_ALGORITHM");
    // Bad key names.
    for bad in ["", "a b", "a+b", "a\tb", "a\u{00a0}b"] {
        assert_eq!(
            sign_note(&sample(), bad, &k.ed, &k.ml).unwrap_err().code(),
            "CHECKPOINT_KEY_NAME_INVALID"
        );
    }
}

#[test]
fn garbage_is_rejected() {
    let note = signed();
    let lines: Vec<&str> = note.split_inclusive('\n').collect();
    let (body, sigs) = (lines[..3].concat(), lines[4..].concat());
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "CHECKPOINT_MALFORMED"),
        ("\n".into(), "CHECKPOINT_MALFORMED"),
        (body.clone(), "CHECKPOINT_MALFORMED"),
        (format!("{body}\n"), "CHECKPOINT_MALFORMED"),
        (note.trim_end_matches('\n').to_owned(), "CHECKPOINT_MALFORMED"),
        (note.replace("\n\n", "\n"), "CHECKPOINT_MALFORMED"),
        (note.replacen('\n', "\r\n", 1), "CHECKPOINT_MALFORMED"),
        (note.replacen("atp.example", "atp\u{0}example", 1), "CHECKPOINT_MALFORMED"),
        (format!("{body}\ngarbage\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
        (format!("{body}\n{sigs}garbage\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
        (format!("{body}\n{sigs}\n"), "CHECKPOINT_MALFORMED"),
        (
            format!("{body}\n{}", sigs.replace('\u{2014}', "-")),
            "CHECKPOINT_SIGNATURE_LINE_MALFORMED",
        ),
        (format!("{body}\n{sigs}\u{2014} name\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
        (format!("{body}\n{sigs}\u{2014} name !!!!\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
        (format!("{body}\n{sigs}\u{2014} name AAAA\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
        (format!("{body}\n{sigs}\u{2014} name AAAAAAA\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
        (format!("{body}\n{sigs}\u{2014}  AAAAAAAA\n"), "CHECKPOINT_KEY_NAME_INVALID"),
        (format!("{body}\n{sigs}\u{2014} a+b AAAAAAAA\n"), "CHECKPOINT_KEY_NAME_INVALID"),
        // Non-canonical base64 (non-zero trailing bits) in a signature.
        (format!("{body}\n{sigs}\u{2014} name AAAAAAB=\n"), "CHECKPOINT_SIGNATURE_LINE_MALFORMED"),
    ];
    for (text, want) in &cases {
        assert_eq!(code(text), *want, "{text:?}");
    }

    // Limits.
    let line = NoteSignature { name: "w".into(), key_id: [1; 4], signature: vec![2; 8] }.to_line();
    let many = format!("{note}{}", line.repeat(MAX_SIGNATURES - 2));
    verify(&many).unwrap();
    let too_many = format!("{note}{}", line.repeat(MAX_SIGNATURES - 1));
    assert_eq!(code(&too_many), "CHECKPOINT_TOO_MANY_SIGNATURES");
    let huge = format!("{}{note}", "x".repeat(MAX_NOTE_BYTES));
    assert_eq!(code(&huge), "CHECKPOINT_TOO_LARGE");
}

#[test]
fn strict_body_parsing() {
    let good = sample().to_body().unwrap();
    let root_b64 = STANDARD.encode(sample().root_hash);
    let body = |origin: &str, size: &str, root: &str, ext: &str| {
        format!("{origin}\n{size}\n{root}\n{ext}")
    };
    let p = |s: &str| Checkpoint::parse_body(s).map_err(|e| e.code());
    assert!(p(&good).is_ok());
    assert_eq!(p(&body("o", "0", &root_b64, "")).unwrap().size, 0);
    assert_eq!(p(&body("o", "18446744073709551615", &root_b64, "")).unwrap().size, u64::MAX);
    assert_eq!(p(&body("o", "1", &root_b64, "x\ny\n")).unwrap().extensions, vec!["x", "y"]);

    assert_eq!(p(&body("", "1", &root_b64, "")), Err("CHECKPOINT_ORIGIN_INVALID"));
    assert_eq!(p(&body(" o", "1", &root_b64, "")), Err("CHECKPOINT_ORIGIN_INVALID"));
    assert_eq!(p(&body("o ", "1", &root_b64, "")), Err("CHECKPOINT_ORIGIN_INVALID"));
    for size in ["", "01", "00", "-1", "+1", " 1", "1.0", "0x1", "18446744073709551616", "١"] {
        assert_eq!(
            p(&body("o", size, &root_b64, "")),
            Err("CHECKPOINT_TREE_SIZE_INVALID"),
            "{size}"
        );
    }
    let short = STANDARD.encode([0u8; 31]);
    let long = STANDARD.encode([0u8; 33]);
    let unpadded = root_b64.trim_end_matches('=');
    let urlsafe = STANDARD.encode([0xffu8; 32]).replace('/', "_").replace('+', "-");
    for root in [short.as_str(), long.as_str(), unpadded, urlsafe.as_str(), "", "!!"] {
        assert_eq!(p(&body("o", "1", root, "")), Err("CHECKPOINT_ROOT_HASH_INVALID"), "{root}");
    }
    assert_eq!(p(&body("o", "1", &root_b64, "\n")), Err("CHECKPOINT_EXTENSION_INVALID"));
    assert_eq!(p(&body("o", "1", &root_b64, "x\n\n")), Err("CHECKPOINT_EXTENSION_INVALID"));
    assert_eq!(p("o\n1\n"), Err("CHECKPOINT_MALFORMED"));
    assert_eq!(p(good.trim_end()), Err("CHECKPOINT_MALFORMED"));

    // Invalid fields are refused when building, too.
    let mut cp = sample();
    cp.origin = "two\nlines".into();
    assert_eq!(cp.to_body().unwrap_err().code(), "CHECKPOINT_ORIGIN_INVALID");
    let mut cp = sample();
    cp.extensions = vec![String::new()];
    assert_eq!(cp.to_body().unwrap_err().code(), "CHECKPOINT_EXTENSION_INVALID");
    assert!(sign_note(&cp, NAME, &keys().ed, &keys().ml).is_err());
}

#[test]
fn key_id_rejects_other_algorithms() {
    let comp = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[5u8; 64]).unwrap();
    let pk: PublicKey = comp.public_key();
    assert_eq!(key_id(NAME, &pk).unwrap_err().code(), "CHECKPOINT_KEY_ALGORITHM");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any single bit flip anywhere in the note makes verification fail.
    #[test]
    fn any_bit_flip_fails(pos_seed: usize, bit in 0u8..8) {
        let mut bytes = signed().as_bytes().to_vec();
        let pos = pos_seed % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(text) = String::from_utf8(bytes) {
            prop_assert!(verify(&text).is_err(), "flip at byte {} bit {} verified", pos, bit);
        }
    }

    /// Arbitrary text never panics the parsers and never verifies.
    #[test]
    fn arbitrary_text_is_rejected(text in "(\\PC|\n|\u{2014} ){0,300}") {
        let _ = SignedNote::parse(&text);
        let _ = Checkpoint::parse_body(&text);
        prop_assert!(verify(&text).is_err());
    }

    /// Flips concentrated in the body and the Ed25519 line, which are the short parts.
    #[test]
    fn bit_flip_in_body_or_ed_line_fails(pos_seed: usize, bit in 0u8..8) {
        let note = signed();
        let ml_start = note.rfind('\u{2014}').unwrap();
        let mut bytes = note.as_bytes().to_vec();
        let pos = pos_seed % ml_start;
        bytes[pos] ^= 1 << bit;
        if let Ok(text) = String::from_utf8(bytes) {
            prop_assert!(verify(&text).is_err(), "flip at byte {} bit {} verified", pos, bit);
        }
    }
}
