//! Signed envelopes: the exact byte layout, wire round trips, every refusal code, tampering,
//! replay protection and the bounded replay cache.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use atp_core::CoreError;
use atp_core::envelope::{
    self, Envelope, InMemoryReplayCache, KeyValidity, MAX_CONTENT_TYPE_BYTES, MAX_DID_BYTES,
    MAX_PAYLOAD_BYTES, MAX_RECIPIENTS, ReplayCache, ReplayCheck, SealedEnvelope, VerifyContext,
};
use atp_core::kel::{self, KeyEventLog, SignedEvent};
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use proptest::prelude::*;

const ME: &str = "did:atp:zQmRecipient";
const OTHER: &str = "did:web:other.example";
const SENDER: &str = "did:atp:zQmSender";
const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn sender_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[7; 64]).unwrap())
}

fn envelope_at(issued_at: i64, lifetime: i64) -> Envelope {
    Envelope::new(
        SENDER,
        0,
        vec![ME.into(), OTHER.into()],
        issued_at,
        issued_at + lifetime,
        "application/json",
        br#"{"hello":"world"}"#.to_vec(),
    )
    .unwrap()
}

fn sealed() -> SealedEnvelope {
    envelope_at(NOW, 60_000).seal(sender_key()).unwrap()
}

/// A lookup that knows `SENDER` at sequence 0, valid from 2025 with no end.
fn lookup(did: &str, seq: u64) -> Result<KeyValidity, CoreError> {
    if did == SENDER && seq == 0 {
        Ok(KeyValidity {
            key: sender_key().public_key(),
            valid_from: NOW - 86_400_000,
            valid_until: None,
        })
    } else {
        Err(CoreError::EnvelopeUnknownSender { did: did.into(), seq })
    }
}

fn check(sealed: &SealedEnvelope, now: i64) -> Result<(), CoreError> {
    let cache = InMemoryReplayCache::new(16);
    envelope::verify(sealed, &VerifyContext::new(ME, now, &lookup, &cache))
}

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

#[test]
fn seal_verify_and_wire_round_trip() {
    let s = sealed();
    assert_eq!(s.signature.len(), 3309 + 64);
    check(&s, NOW).unwrap();
    let wire = s.to_bytes().unwrap();
    let back = SealedEnvelope::from_bytes(&wire).unwrap();
    assert_eq!(back, s);
    check(&back, NOW + 30_000).unwrap();
    // The wire is the signed bytes followed by the length-prefixed signature.
    let tbs = s.envelope.signed_bytes().unwrap();
    assert_eq!(&wire[..tbs.len()], &tbs[..]);
    assert_eq!(&wire[tbs.len()..tbs.len() + 4], &(s.signature.len() as u32).to_be_bytes());
    assert_eq!(&wire[tbs.len() + 4..], &s.signature[..]);
    // The signature is the composite signature over exactly these bytes with atp/envelope/v1.
    s_key_verifies(&tbs, &s.signature);
    // Nonces are random.
    assert_ne!(envelope_at(NOW, 1000).nonce, envelope_at(NOW, 1000).nonce);
}

fn s_key_verifies(msg: &[u8], sig: &[u8]) {
    sender_key().public_key().verify(msg, b"atp/envelope/v1", sig).unwrap();
    assert!(sender_key().public_key().verify(msg, b"atp/kel/v1", sig).is_err());
}

#[test]
fn exact_byte_layout() {
    let env = Envelope {
        sender: "did:x:a".into(),
        sender_key_seq: 0x0102_0304_0506_0708,
        recipients: vec!["did:y:b".into(), "did:z:cd".into()],
        issued_at: 1,
        expires_at: i64::MAX,
        nonce: *b"0123456789abcdef",
        content_type: "t/p".into(),
        payload: vec![0xff, 0x00],
    };
    let mut expected = Vec::new();
    expected.extend_from_slice(b"ATPENV1\0");
    expected.extend_from_slice(&[0, 0, 0, 7]);
    expected.extend_from_slice(b"did:x:a");
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    expected.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 7]);
    expected.extend_from_slice(b"did:y:b");
    expected.extend_from_slice(&[0, 0, 0, 8]);
    expected.extend_from_slice(b"did:z:cd");
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    expected.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expected.extend_from_slice(b"0123456789abcdef");
    expected.extend_from_slice(&[0, 0, 0, 3]);
    expected.extend_from_slice(b"t/p");
    expected.extend_from_slice(&[0, 0, 0, 2, 0xff, 0x00]);
    assert_eq!(env.signed_bytes().unwrap(), expected);
}

#[test]
fn malformed() {
    let base = sealed();
    let mut cases: Vec<(&str, SealedEnvelope)> = Vec::new();
    let mut e = base.clone();
    e.envelope.recipients.clear();
    cases.push(("no recipients", e));
    let mut e = base.clone();
    e.envelope.recipients.push(ME.into());
    cases.push(("duplicate recipient", e));
    let mut e = base.clone();
    e.envelope.sender = "not a did".into();
    cases.push(("bad sender", e));
    let mut e = base.clone();
    e.envelope.recipients[1] = "did:web:a#frag".into();
    cases.push(("recipient DID URL", e));
    let mut e = base.clone();
    e.envelope.expires_at = e.envelope.issued_at;
    cases.push(("zero lifetime", e));
    let mut e = base.clone();
    e.envelope.issued_at = -5;
    cases.push(("negative issued_at", e));
    let mut e = base.clone();
    e.envelope.content_type = String::new();
    cases.push(("empty content type", e));
    let mut e = base.clone();
    e.envelope.content_type = "text/plain; charset=é".into();
    cases.push(("non-ASCII content type", e));
    let mut e = base.clone();
    e.envelope.content_type = "text/\nplain".into();
    cases.push(("control in content type", e));
    let mut e = base.clone();
    e.signature.clear();
    cases.push(("empty signature", e));
    for (name, e) in cases {
        assert_eq!(code(check(&e, NOW)), "ENVELOPE_MALFORMED", "{name}");
        assert!(e.to_bytes().is_err(), "{name}");
    }

    let wire = base.to_bytes().unwrap();
    let mut bad = wire.clone();
    bad[0] = b'X';
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_MALFORMED");
    let mut bad = wire.clone();
    bad.push(0);
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_MALFORMED");
    for cut in [0, 7, 8, 11, 40, wire.len() - 1] {
        assert_eq!(
            code(SealedEnvelope::from_bytes(&wire[..cut])),
            "ENVELOPE_MALFORMED",
            "cut {cut}"
        );
    }
    // Invalid UTF-8 in the sender.
    let mut bad = wire.clone();
    bad[12] = 0xff;
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_MALFORMED");
    // Zero-length signature on the wire.
    let mut bad = base.envelope.signed_bytes().unwrap();
    bad.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_MALFORMED");
}

#[test]
fn too_large() {
    let mk = |f: &dyn Fn(&mut Envelope)| {
        let mut e = envelope_at(NOW, 1000);
        f(&mut e);
        e
    };
    let cases: Vec<(&str, Envelope)> = vec![
        ("payload", mk(&|e| e.payload = vec![0; MAX_PAYLOAD_BYTES + 1])),
        (
            "recipients",
            mk(&|e| e.recipients = (0..=MAX_RECIPIENTS).map(|i| format!("did:x:{i}")).collect()),
        ),
        ("content type", mk(&|e| e.content_type = "a".repeat(MAX_CONTENT_TYPE_BYTES + 1))),
        ("sender", mk(&|e| e.sender = format!("did:x:{}", "a".repeat(MAX_DID_BYTES)))),
        ("recipient", mk(&|e| e.recipients[1] = format!("did:x:{}", "a".repeat(MAX_DID_BYTES)))),
    ];
    for (name, e) in cases {
        assert_eq!(code(e.validate()), "ENVELOPE_TOO_LARGE", "{name}");
        assert_eq!(code(e.signed_bytes()), "ENVELOPE_TOO_LARGE", "{name}");
        let s = SealedEnvelope { envelope: e, signature: vec![1; 10] };
        assert_eq!(code(check(&s, NOW)), "ENVELOPE_TOO_LARGE", "{name}");
    }
    // Exactly at the limits is fine.
    let e = mk(&|e| {
        e.payload = vec![0; MAX_PAYLOAD_BYTES];
        e.recipients =
            (0..MAX_RECIPIENTS - 1).map(|i| format!("did:x:{i}")).chain([ME.into()]).collect();
        e.content_type = "a".repeat(MAX_CONTENT_TYPE_BYTES);
        e.sender = format!("did:x:{}", "a".repeat(MAX_DID_BYTES - 6));
    });
    let big = e.seal(sender_key()).unwrap();
    let wire = big.to_bytes().unwrap();
    assert!(wire.len() <= envelope::MAX_WIRE_BYTES);
    assert_eq!(SealedEnvelope::from_bytes(&wire).unwrap(), big);

    // Length fields beyond the limits are refused before reading.
    let wire = sealed().to_bytes().unwrap();
    let mut bad = wire.clone();
    bad[8..12].copy_from_slice(&(MAX_DID_BYTES as u32 + 1).to_be_bytes());
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_TOO_LARGE");
    let mut bad = wire.clone();
    bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_TOO_LARGE");
    let sender_len = SENDER.len();
    let mut bad = wire.clone();
    let at = 12 + sender_len + 8;
    bad[at..at + 4].copy_from_slice(&(MAX_RECIPIENTS as u32 + 1).to_be_bytes());
    assert_eq!(code(SealedEnvelope::from_bytes(&bad)), "ENVELOPE_TOO_LARGE");
    let huge = vec![0u8; envelope::MAX_WIRE_BYTES + 1];
    assert_eq!(code(SealedEnvelope::from_bytes(&huge)), "ENVELOPE_TOO_LARGE");
    let mut s = sealed();
    s.signature = vec![0; envelope::MAX_SIGNATURE_BYTES + 1];
    assert_eq!(code(check(&s, NOW)), "ENVELOPE_TOO_LARGE");
    assert_eq!(
        code(Envelope::new(
            SENDER,
            0,
            vec![ME.into()],
            NOW,
            NOW + 1,
            "a/b",
            vec![0; MAX_PAYLOAD_BYTES + 1]
        )),
        "ENVELOPE_TOO_LARGE"
    );
}

#[test]
fn time_window_and_lifetime() {
    let s = sealed(); // issued NOW, expires NOW + 60 s; default skew 60 s.
    check(&s, NOW - 60_000).unwrap();
    assert_eq!(code(check(&s, NOW - 60_001)), "ENVELOPE_NOT_YET_VALID");
    check(&s, NOW + 120_000).unwrap();
    assert_eq!(code(check(&s, NOW + 120_001)), "ENVELOPE_EXPIRED");
    // Lifetime cap (default 5 minutes), and a configured one.
    let long = envelope_at(NOW, envelope::DEFAULT_MAX_LIFETIME_MS + 1).seal(sender_key()).unwrap();
    assert_eq!(code(check(&long, NOW)), "ENVELOPE_LIFETIME_TOO_LONG");
    let ok = envelope_at(NOW, envelope::DEFAULT_MAX_LIFETIME_MS).seal(sender_key()).unwrap();
    check(&ok, NOW).unwrap();
    let cache = InMemoryReplayCache::new(4);
    let mut ctx = VerifyContext::new(ME, NOW, &lookup, &cache);
    ctx.max_lifetime_ms = 30_000;
    assert_eq!(code(envelope::verify(&s, &ctx)), "ENVELOPE_LIFETIME_TOO_LONG");
    ctx.max_lifetime_ms = 60_000;
    ctx.max_skew_ms = 0;
    ctx.now = NOW + 60_001;
    assert_eq!(code(envelope::verify(&s, &ctx)), "ENVELOPE_EXPIRED");
    ctx.now = NOW - 1;
    assert_eq!(code(envelope::verify(&s, &ctx)), "ENVELOPE_NOT_YET_VALID");
}

#[test]
fn audience_sender_and_key_validity() {
    let s = sealed();
    let cache = InMemoryReplayCache::new(4);
    let ctx = VerifyContext::new("did:atp:zQmSomeoneElse", NOW, &lookup, &cache);
    assert_eq!(code(envelope::verify(&s, &ctx)), "ENVELOPE_NOT_FOR_ME");
    let ctx = VerifyContext::new(OTHER, NOW, &lookup, &cache);
    envelope::verify(&s, &ctx).unwrap();

    let mut e = s.envelope.clone();
    e.sender_key_seq = 1;
    assert_eq!(code(check(&e.seal(sender_key()).unwrap(), NOW)), "ENVELOPE_UNKNOWN_SENDER");
    let mut e = s.envelope.clone();
    e.sender = "did:atp:zQmStranger".into();
    assert_eq!(code(check(&e.seal(sender_key()).unwrap(), NOW)), "ENVELOPE_UNKNOWN_SENDER");

    let window = |from: i64, until: Option<i64>| {
        move |_: &str, _: u64| {
            Ok::<_, CoreError>(KeyValidity {
                key: sender_key().public_key(),
                valid_from: from,
                valid_until: until,
            })
        }
    };
    let verify_with = |l: &dyn Fn(&str, u64) -> Result<KeyValidity, CoreError>| {
        let cache = InMemoryReplayCache::new(4);
        envelope::verify(&s, &VerifyContext::new(ME, NOW, l, &cache))
    };
    verify_with(&window(NOW, None)).unwrap();
    verify_with(&window(NOW - 10, Some(NOW + 1))).unwrap();
    assert_eq!(code(verify_with(&window(NOW + 1, None))), "ENVELOPE_KEY_NOT_VALID_AT_ISSUE");
    assert_eq!(code(verify_with(&window(0, Some(NOW)))), "ENVELOPE_KEY_NOT_VALID_AT_ISSUE");

    // Keys outside the composite policy.
    let ed = SigningKey::from_seed(AlgorithmId::Ed25519, &[1; 32]).unwrap();
    let ed_pub = ed.public_key();
    let ed_lookup = move |_: &str, _: u64| {
        Ok::<_, CoreError>(KeyValidity { key: ed_pub.clone(), valid_from: 0, valid_until: None })
    };
    assert_eq!(code(verify_with(&ed_lookup)), "ENVELOPE_ALGORITHM_NOT_ALLOWED");
    assert_eq!(code(envelope_at(NOW, 1000).seal(&ed)), "ENVELOPE_ALGORITHM_NOT_ALLOWED");
    let ml = SigningKey::from_seed(AlgorithmId::MlDsa65, &[1; 32]).unwrap();
    assert_eq!(code(envelope_at(NOW, 1000).seal(&ml)), "ENVELOPE_ALGORITHM_NOT_ALLOWED");
}

#[test]
fn bad_signature() {
    let s = sealed();
    let mut e = s.clone();
    e.signature[100] ^= 1;
    assert_eq!(code(check(&e, NOW)), "ENVELOPE_BAD_SIGNATURE");
    let mut e = s.clone();
    let last = e.signature.len() - 1;
    e.signature[last] ^= 0x80; // the Ed25519 component
    assert_eq!(code(check(&e, NOW)), "ENVELOPE_BAD_SIGNATURE");
    let mut e = s.clone();
    e.signature.truncate(100);
    assert_eq!(code(check(&e, NOW)), "ENVELOPE_BAD_SIGNATURE");
    // Signed by another key.
    let other = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[8; 64]).unwrap();
    assert_eq!(
        code(check(&s.envelope.clone().seal(&other).unwrap(), NOW)),
        "ENVELOPE_BAD_SIGNATURE"
    );
    // Signed with another context.
    let sig = sender_key().sign(&s.envelope.signed_bytes().unwrap(), b"atp/kel/v1").unwrap();
    let e = SealedEnvelope { envelope: s.envelope.clone(), signature: sig };
    assert_eq!(code(check(&e, NOW)), "ENVELOPE_BAD_SIGNATURE");
}

#[test]
fn any_bit_flip_in_the_signed_bytes_fails() {
    let s = sealed();
    let wire = s.to_bytes().unwrap();
    let tbs_len = s.envelope.signed_bytes().unwrap().len();
    let mut codes = std::collections::BTreeSet::new();
    for i in 0..tbs_len {
        for bit in [i % 8, (i + 3) % 8] {
            let mut bad = wire.clone();
            bad[i] ^= 1 << bit;
            let r = SealedEnvelope::from_bytes(&bad).and_then(|e| check(&e, NOW));
            let c = code(r);
            codes.insert(c);
        }
    }
    // Every refusal path that tampering can reach was reached, and nothing verified.
    assert!(codes.contains("ENVELOPE_BAD_SIGNATURE"), "{codes:?}");
    assert!(codes.contains("ENVELOPE_MALFORMED"), "{codes:?}");
}

#[test]
fn replay_is_rejected_and_only_recorded_after_the_signature() {
    let s = sealed();
    let cache = InMemoryReplayCache::new(16);
    let ctx = VerifyContext::new(ME, NOW, &lookup, &cache);
    // A forged copy with the same nonce does not burn it.
    let mut forged = s.clone();
    forged.signature[0] ^= 1;
    assert_eq!(code(envelope::verify(&forged, &ctx)), "ENVELOPE_BAD_SIGNATURE");
    assert!(cache.is_empty());
    envelope::verify(&s, &ctx).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(code(envelope::verify(&s, &ctx)), "ENVELOPE_REPLAY");
    // Via the wire, too.
    let again = SealedEnvelope::from_bytes(&s.to_bytes().unwrap()).unwrap();
    assert_eq!(code(envelope::verify(&again, &ctx)), "ENVELOPE_REPLAY");
    // Refusals before the signature never touch the cache.
    let cache2 = InMemoryReplayCache::new(16);
    let ctx2 = VerifyContext::new("did:atp:zQmSomeoneElse", NOW, &lookup, &cache2);
    assert!(envelope::verify(&s, &ctx2).is_err());
    assert!(cache2.is_empty());
}

#[test]
fn bounded_replay_cache_evicts_expired_and_fails_closed_when_full() {
    let c = InMemoryReplayCache::new(2);
    assert_eq!(c.capacity(), 2);
    let n = |i: u8| [i; 16];
    assert_eq!(c.check_and_insert("did:x:a", &n(1), 100, 0), ReplayCheck::Fresh);
    assert_eq!(c.check_and_insert("did:x:a", &n(1), 100, 0), ReplayCheck::Replayed);
    // The same nonce from another sender is a different entry.
    assert_eq!(c.check_and_insert("did:x:b", &n(1), 200, 0), ReplayCheck::Fresh);
    assert_eq!(c.len(), 2);
    // Full of unexpired entries: refuse rather than forget one.
    assert_eq!(c.check_and_insert("did:x:a", &n(2), 300, 50), ReplayCheck::Full);
    assert_eq!(c.check_and_insert("did:x:a", &n(1), 100, 100), ReplayCheck::Replayed);
    // At t = 101 the first entry has expired and is evicted.
    assert_eq!(c.check_and_insert("did:x:a", &n(2), 300, 101), ReplayCheck::Fresh);
    assert_eq!(c.len(), 2);
    assert_eq!(c.check_and_insert("did:x:a", &n(1), 400, 101), ReplayCheck::Full);
    // Much later everything has expired.
    assert_eq!(c.check_and_insert("did:x:c", &n(3), 1000, 500), ReplayCheck::Fresh);
    assert_eq!(c.len(), 1);
    // Never above capacity under many insertions.
    let c = InMemoryReplayCache::new(8);
    for i in 0..1000u32 {
        let mut nonce = [0u8; 16];
        nonce[..4].copy_from_slice(&i.to_be_bytes());
        c.check_and_insert("did:x:a", &nonce, i64::from(i) + 5, i64::from(i));
        assert!(c.len() <= 8);
    }

    // Through verify: a full cache refuses with its own code.
    let cache = InMemoryReplayCache::new(1);
    let ctx = VerifyContext::new(ME, NOW, &lookup, &cache);
    envelope::verify(&sealed(), &ctx).unwrap();
    assert_eq!(code(envelope::verify(&sealed(), &ctx)), "ENVELOPE_REPLAY_CACHE_FULL");
    // Once the first envelope can no longer be accepted (expiry + skew), its slot is reused.
    let later = envelope_at(NOW + 200_000, 60_000).seal(sender_key()).unwrap();
    let ctx = VerifyContext::new(ME, NOW + 200_000, &lookup, &cache);
    envelope::verify(&later, &ctx).unwrap();
}

/// The envelope checks against a real key event log: a superseded key cannot sign new envelopes.
#[test]
fn kel_backed_key_lookup() {
    let k0 = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x31; 64]).unwrap();
    let k1 = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x32; 64]).unwrap();
    let k2 = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x33; 64]).unwrap();
    let icp = kel::incept(&k0, k1.public_key_ref(), vec![], "2026-01-01T00:00:00Z").unwrap();
    let s0 = kel::verify_log(std::slice::from_ref(&icp)).unwrap();
    let rot = kel::rotate(&s0, &k1, k2.public_key_ref(), None, "2026-01-01T01:00:00Z").unwrap();
    let log: Vec<SignedEvent> = vec![icp, rot];
    let did = s0.did.clone();
    let rotated_at = kel::parse_timestamp("2026-01-01T01:00:00Z").unwrap();
    let lookup = |d: &str, seq: u64| -> Result<KeyValidity, CoreError> {
        if d != did {
            return Err(CoreError::EnvelopeUnknownSender { did: d.into(), seq });
        }
        KeyEventLog::new()
            .key_validity(d, &log, seq)?
            .ok_or(CoreError::EnvelopeUnknownSender { did: d.into(), seq })
    };
    let send = |key: &SigningKey, seq: u64, at: i64| {
        Envelope::new(&did, seq, vec![ME.into()], at, at + 1000, "text/plain", b"hi".to_vec())
            .unwrap()
            .seal(key)
            .unwrap()
    };
    let verify_at = |s: &SealedEnvelope, now: i64| {
        let cache = InMemoryReplayCache::new(4);
        envelope::verify(s, &VerifyContext::new(ME, now, &lookup, &cache))
    };
    // Before the rotation the old key is good.
    verify_at(&send(&k0, 0, rotated_at - 10_000), rotated_at - 10_000).unwrap();
    // After it, the old key is not valid at issue, and cannot pose as the new one.
    assert_eq!(
        code(verify_at(&send(&k0, 0, rotated_at), rotated_at)),
        "ENVELOPE_KEY_NOT_VALID_AT_ISSUE"
    );
    assert_eq!(code(verify_at(&send(&k0, 1, rotated_at), rotated_at)), "ENVELOPE_BAD_SIGNATURE");
    verify_at(&send(&k1, 1, rotated_at), rotated_at).unwrap();
    // The committed-but-unrevealed next key names no key yet.
    assert_eq!(code(verify_at(&send(&k2, 2, rotated_at), rotated_at)), "ENVELOPE_UNKNOWN_SENDER");
}

// ---------------------------------------------------------------------------------------------
// The worked example of docs/protocol.md §B5.
// ---------------------------------------------------------------------------------------------

const EXAMPLE_SIGNED_BYTES_HEX: &str = "415450454e563100000000376469643a6174703a7a516d62584c45766f74384c7534687850726e69503967617454596147685872506f6a6d4d764e3637464545796870000000000000000000000001000000386469643a6b65793a7a364d6b6954427a31796d75657041513448454859534631483871754735474c5656515233646a6458336d446f6f57700000019b76daa8000000019b76df3be0000102030405060708090a0b0c0d0e0f0000000a746578742f706c61696e0000000568656c6c6f";

fn example_envelope() -> Envelope {
    Envelope {
        sender: "did:atp:zQmbXLEvot8Lu4hxPrniP9gatTYaGhXrPojmMvN67FEEyhp".into(),
        sender_key_seq: 0,
        recipients: vec!["did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp".into()],
        issued_at: 1_767_225_600_000,
        expires_at: 1_767_225_900_000,
        nonce: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        content_type: "text/plain".into(),
        payload: b"hello".to_vec(),
    }
}

#[test]
fn worked_example_matches_the_published_bytes() {
    let env = example_envelope();
    let tbs = env.signed_bytes().unwrap();
    println!("signed bytes ({} bytes): {}", tbs.len(), hex::encode(&tbs));
    assert_eq!(hex::encode(&tbs), EXAMPLE_SIGNED_BYTES_HEX);
    // The example sender key (seed 0x01 × 64) signs it and the signature verifies.
    let key = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x01; 64]).unwrap();
    let sealed = env.seal(&key).unwrap();
    let pk: PublicKey = key.public_key();
    pk.verify(&tbs, b"atp/envelope/v1", &sealed.signature).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let docs: Vec<String> = ["protocol.md"]
        .iter()
        .filter_map(|n| std::fs::read_to_string(root.join(n)).ok())
        .map(|d| d.split_whitespace().collect::<String>())
        .collect();
    assert!(
        docs.iter().any(|d| d.contains(EXAMPLE_SIGNED_BYTES_HEX)),
        "docs/protocol.md (or the draft) must publish the example envelope bytes"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Wire encoding round-trips for arbitrary valid fields.
    #[test]
    fn wire_round_trip(
        seq in any::<u64>(),
        recipients in prop::collection::btree_set("did:[a-z0-9]{1,8}:[A-Za-z0-9._-]{1,40}", 1..8),
        issued_at in 0i64..i64::MAX / 2,
        life in 1i64..1_000_000,
        nonce in any::<[u8; 16]>(),
        content_type in "[ -~]{1,40}",
        payload in prop::collection::vec(any::<u8>(), 0..512),
        signature in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let s = SealedEnvelope {
            envelope: Envelope {
                sender: SENDER.into(),
                sender_key_seq: seq,
                recipients: recipients.into_iter().collect(),
                issued_at,
                expires_at: issued_at + life,
                nonce,
                content_type,
                payload,
            },
            signature,
        };
        let wire = s.to_bytes().unwrap();
        prop_assert_eq!(SealedEnvelope::from_bytes(&wire).unwrap(), s);
    }

    /// The parser never panics on arbitrary input, and any truncation of a valid wire fails.
    #[test]
    fn parser_total(bytes in prop::collection::vec(any::<u8>(), 0..2048), cut in any::<prop::sample::Index>()) {
        let _ = SealedEnvelope::from_bytes(&bytes);
        let mut with_magic = b"ATPENV1\0".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = SealedEnvelope::from_bytes(&with_magic);
        let wire = sealed_wire();
        let at = cut.index(wire.len());
        prop_assert!(SealedEnvelope::from_bytes(&wire[..at]).is_err());
    }
}

fn sealed_wire() -> &'static [u8] {
    static W: OnceLock<Vec<u8>> = OnceLock::new();
    W.get_or_init(|| sealed().to_bytes().unwrap())
}

/// The checks a verifier runs before its (possibly expensive) key lookup give the same answers
/// as the full verification, and need no key: an envelope refused on structure, lifetime, time
/// or audience never reaches the lookup.
#[test]
fn checks_before_the_key_match_verify_and_need_no_key() {
    let s = sealed(); // issued NOW, expires NOW + 60 s.
    let never = |_: &str, _: u64| -> Result<KeyValidity, CoreError> {
        panic!("the key lookup must not be reached")
    };
    let cache = InMemoryReplayCache::new(4);
    let skew = 60_000;
    let lifetime = envelope::DEFAULT_MAX_LIFETIME_MS;
    for (now, me, want) in [
        (NOW - 60_001, ME, "ENVELOPE_NOT_YET_VALID"),
        (NOW + 120_001, ME, "ENVELOPE_EXPIRED"),
        (NOW, "did:atp:zQmSomeoneElse", "ENVELOPE_NOT_FOR_ME"),
    ] {
        let early = envelope::check_before_key(&s, now, skew, lifetime, me);
        assert_eq!(code(early.map(|_| ())), want);
        let mut ctx = VerifyContext::new(me, now, &never, &cache);
        ctx.max_skew_ms = skew;
        assert_eq!(code(envelope::verify(&s, &ctx)), want);
    }
    assert_eq!(envelope::check_before_key(&s, NOW, skew, lifetime, ME).unwrap(), NOW + 120_000);
    assert!(cache.is_empty());
}
