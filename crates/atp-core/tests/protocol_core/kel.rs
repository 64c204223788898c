//! `did:atp` key event logs: verification, every refusal, fork detection, resolution, tamper
//! properties, and the worked example published in the protocol document.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use atp_core::CoreError;
use atp_core::did::{self, DidDocument};
use atp_core::kel::{
    self, CompositeKey, Event, EventType, ForkCheck, KelLimits, KelState, KeyEventLog, Service,
    SignedEvent,
};
use atp_crypto::{AlgorithmId, CryptoProvider, PublicKey, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::json;

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-02-01T00:00:00Z";
const T2: &str = "2026-03-01T00:00:00.5Z";
const T3: &str = "2026-04-01T12:30:00Z";
const T4: &str = "2026-05-01T00:00:00Z";

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[i; 64]).unwrap()
}

/// Sign an arbitrary (possibly invalid) event body, independently of the library's helpers.
fn resign(event: Event, k: &SigningKey) -> SignedEvent {
    let body = serde_jcs::to_vec(&event).unwrap();
    let sig = k.sign(&body, b"atp/kel/v1").unwrap();
    SignedEvent { event, sig: URL_SAFE_NO_PAD.encode(sig) }
}

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

struct Fixture {
    keys: Vec<SigningKey>,
    /// icp(k0→k1), rot(k1→k2), rot(k2→k3, new services), dea(k3).
    log: Vec<SignedEvent>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys: Vec<SigningKey> = (1..=5).map(key).collect();
        let v = KeyEventLog::new();
        let svc = vec![Service::new("#agent", "AgentService", "https://agent.example/a2a")];
        let icp = kel::incept(&keys[0], keys[1].public_key_ref(), svc, T0).unwrap();
        let s0 = v.verify(std::slice::from_ref(&icp)).unwrap();
        let rot1 = kel::rotate(&s0, &keys[1], keys[2].public_key_ref(), None, T1).unwrap();
        let s1 = v.append(&s0, &rot1).unwrap();
        let svc2 = vec![
            Service::new("#agent", "AgentService", "https://agent2.example/a2a"),
            Service::new("#card", "A2AAgentCard", "https://agent2.example/.well-known/agent.json"),
        ];
        let rot2 = kel::rotate(&s1, &keys[2], keys[3].public_key_ref(), Some(svc2), T2).unwrap();
        let s2 = v.append(&s1, &rot2).unwrap();
        let dea = kel::deactivate(&s2, &keys[3], T3).unwrap();
        Fixture { keys, log: vec![icp, rot1, rot2, dea] }
    })
}

fn state_after(n: usize) -> KelState {
    KeyEventLog::new().verify(&fixture().log[..n]).unwrap()
}

#[test]
fn valid_log_verifies() {
    let f = fixture();
    let st = kel::verify_log(&f.log).unwrap();
    assert!(st.deactivated);
    assert_eq!(st.sequence, 3);
    assert_eq!(st.next_commitment, None);
    assert!(st.services.is_empty());
    assert_eq!(st.created, T0);
    assert_eq!(st.updated, T3);
    assert_eq!(st.did, format!("did:atp:{}", f.log[0].event.scid().unwrap()));
    assert_eq!(did::parse_did_atp(&st.did).unwrap(), st.scid());
    assert_eq!(st.last_digest, f.log[3].digest().unwrap());

    let s2 = state_after(3);
    assert!(!s2.deactivated);
    assert_eq!(s2.current_key, f.keys[2].public_key());
    assert_eq!(s2.key_sequence, 2);
    assert_eq!(s2.services.len(), 2);
    assert_eq!(
        s2.next_commitment.as_deref(),
        Some(kel::key_commitment(f.keys[3].public_key_ref()).unwrap().as_str())
    );
    // rot1 carried no services: the inception's services carry over.
    assert_eq!(state_after(2).services, state_after(1).services);
    // Event digests link.
    for i in 1..4 {
        assert_eq!(f.log[i].event.p.as_deref(), Some(f.log[i - 1].digest().unwrap().as_str()));
        assert_eq!(f.log[i].event.d.as_deref(), Some(st.did.as_str()));
    }
}

#[test]
fn long_rotation_chain_and_incremental_append() {
    let keys: Vec<SigningKey> = (10..22).map(key).collect();
    let v = KeyEventLog::new();
    let mut log = vec![kel::incept(&keys[0], keys[1].public_key_ref(), vec![], T0).unwrap()];
    let mut st = v.verify(&log).unwrap();
    for i in 1..keys.len() - 1 {
        let ts = format!("2026-01-01T00:00:{i:02}Z");
        let ev = kel::rotate(&st, &keys[i], keys[i + 1].public_key_ref(), None, &ts).unwrap();
        st = v.append(&st, &ev).unwrap();
        log.push(ev);
    }
    let ev = kel::deactivate(&st, keys.last().unwrap(), "2026-01-02T00:00:00Z").unwrap();
    st = v.append(&st, &ev).unwrap();
    log.push(ev);
    assert_eq!(v.verify(&log).unwrap(), st);
    assert_eq!(st.sequence, keys.len() as u64 - 1);
}

#[test]
fn json_round_trip_is_strict() {
    let f = fixture();
    for ev in &f.log {
        let json = ev.to_json().unwrap();
        assert_eq!(&SignedEvent::from_json(json.as_bytes()).unwrap(), ev);
    }
    let arr = serde_json::to_vec(&f.log).unwrap();
    assert_eq!(kel::parse_log(&arr).unwrap(), f.log);

    let mut v: serde_json::Value = serde_json::from_str(&f.log[1].to_json().unwrap()).unwrap();
    v["event"]["x"] = json!(1);
    assert_eq!(code(SignedEvent::from_json(v.to_string().as_bytes())), "KEL_MALFORMED");
    let mut v: serde_json::Value = serde_json::from_str(&f.log[0].to_json().unwrap()).unwrap();
    v["event"]["services"] = serde_json::Value::Null;
    assert_eq!(code(SignedEvent::from_json(v.to_string().as_bytes())), "KEL_MALFORMED");
    // Duplicate member.
    let json = f.log[0].to_json().unwrap().replacen("{\"event\":{", "{\"event\":{\"s\":0,", 1);
    assert_eq!(code(SignedEvent::from_json(json.as_bytes())), "KEL_MALFORMED");
    // Size limit.
    let big = vec![b' '; kel::MAX_EVENT_BYTES + 1];
    assert_eq!(code(SignedEvent::from_json(&big)), "KEL_LIMIT");
}

#[test]
fn broken_hash_link() {
    let f = fixture();
    let mut ev = f.log[2].event.clone();
    ev.p = Some(f.log[0].digest().unwrap());
    let bad = resign(ev, &f.keys[2]);
    let log = [f.log[0].clone(), f.log[1].clone(), bad];
    let err = KeyEventLog::new().verify(&log).unwrap_err();
    assert_eq!(err.code(), "KEL_BROKEN_HASH_LINK");
    assert!(matches!(err, CoreError::KelBrokenHashLink { index: 2, .. }));
    // Dropping an event breaks the link too (and the sequence).
    let log = [f.log[0].clone(), f.log[2].clone()];
    assert_eq!(code(KeyEventLog::new().verify(&log)), "KEL_BAD_SEQUENCE");
}

#[test]
fn bad_signature() {
    let f = fixture();
    // Body changed after signing.
    let mut ev = f.log[1].clone();
    ev.event.ts = "2026-02-01T00:00:01Z".into();
    let err = KeyEventLog::new().verify(&[f.log[0].clone(), ev]).unwrap_err();
    assert!(matches!(err, CoreError::KelBadSignature { index: 1, .. }), "{err}");
    // Inception signed by another key than its k.
    let bad = resign(f.log[0].event.clone(), &f.keys[4]);
    assert_eq!(code(kel::verify_log(&[bad])), "KEL_BAD_SIGNATURE");
    // Signature not base64url.
    let mut ev = f.log[0].clone();
    ev.sig.push('=');
    assert_eq!(code(kel::verify_log(&[ev])), "KEL_BAD_SIGNATURE");
    // A signature made for another context.
    let body = serde_jcs::to_vec(&f.log[0].event).unwrap();
    let sig = f.keys[0].sign(&body, b"atp/envelope/v1").unwrap();
    let ev = SignedEvent { event: f.log[0].event.clone(), sig: URL_SAFE_NO_PAD.encode(sig) };
    assert_eq!(code(kel::verify_log(&[ev])), "KEL_BAD_SIGNATURE");
}

#[test]
fn stolen_current_key_cannot_rotate_or_deactivate() {
    let f = fixture();
    let s0 = state_after(1); // current k0, committed to k1.
    let thief = &f.keys[0];
    let attacker_next = key(99);
    // The helpers refuse outright.
    assert_eq!(
        code(kel::rotate(&s0, thief, attacker_next.public_key_ref(), None, T1)),
        "KEL_ROTATION_NOT_COMMITTED"
    );
    assert_eq!(code(kel::deactivate(&s0, thief, T1)), "KEL_ROTATION_NOT_COMMITTED");
    // A hand-made rotation to the thief's key, signed by the current key.
    let mut ev = f.log[1].event.clone();
    ev.k = Some(CompositeKey::from_public_key(thief.public_key_ref()).unwrap());
    ev.n = Some(kel::key_commitment(attacker_next.public_key_ref()).unwrap());
    let forged = resign(ev, thief);
    let err = KeyEventLog::new().append(&s0, &forged).unwrap_err();
    assert!(matches!(err, CoreError::KelRotationNotCommitted { index: 1 }), "{err}");
    // A rotation to a fresh attacker key, signed by that key or by the current key.
    let mut ev = f.log[1].event.clone();
    ev.k = Some(CompositeKey::from_public_key(attacker_next.public_key_ref()).unwrap());
    assert_eq!(
        code(KeyEventLog::new().append(&s0, &resign(ev.clone(), &attacker_next))),
        "KEL_ROTATION_NOT_COMMITTED"
    );
    assert_eq!(
        code(KeyEventLog::new().append(&s0, &resign(ev, thief))),
        "KEL_ROTATION_NOT_COMMITTED"
    );
    // Even knowing the committed public key, the thief cannot sign for it.
    let ev = f.log[1].event.clone();
    assert_eq!(code(KeyEventLog::new().append(&s0, &resign(ev, thief))), "KEL_BAD_SIGNATURE");
    // Deactivation signed by the current key.
    let mut dea = f.log[3].event.clone();
    dea.s = 1;
    dea.p = Some(s0.last_digest.clone());
    dea.k = Some(CompositeKey::from_public_key(thief.public_key_ref()).unwrap());
    assert_eq!(
        code(KeyEventLog::new().append(&s0, &resign(dea, thief))),
        "KEL_ROTATION_NOT_COMMITTED"
    );
}

#[test]
fn event_after_deactivation() {
    let f = fixture();
    let st = kel::verify_log(&f.log).unwrap();
    // Any event after the deactivation, even one signed by the key it revealed.
    let mut ev = f.log[2].event.clone();
    ev.s = 4;
    ev.p = Some(st.last_digest.clone());
    ev.k = Some(CompositeKey::from_public_key(f.keys[3].public_key_ref()).unwrap());
    ev.n = Some(kel::key_commitment(f.keys[4].public_key_ref()).unwrap());
    ev.ts = T4.into();
    let late = resign(ev, &f.keys[3]);
    let mut log = f.log.clone();
    log.push(late.clone());
    let err = kel::verify_log(&log).unwrap_err();
    assert!(matches!(err, CoreError::KelEventAfterDeactivation { index: 4 }), "{err}");
    assert_eq!(code(KeyEventLog::new().append(&st, &late)), "KEL_EVENT_AFTER_DEACTIVATION");
    assert_eq!(
        code(kel::rotate(&st, &f.keys[3], f.keys[4].public_key_ref(), None, T4)),
        "KEL_EVENT_AFTER_DEACTIVATION"
    );
    assert_eq!(code(kel::deactivate(&st, &f.keys[3], T4)), "KEL_EVENT_AFTER_DEACTIVATION");
}

#[test]
fn fork_detection() {
    let f = fixture();
    let v = KeyEventLog::new();
    let verified = &f.log[..2]; // icp, rot1 (k1 → commits to k2)
    let s0 = state_after(1);
    // The holder of k1 signs a second, different rotation at sequence 1: duplicity.
    let alt = kel::rotate(&s0, &f.keys[1], key(77).public_key_ref(), None, T1).unwrap();
    let err = v.detect_fork(verified, &alt).unwrap_err();
    match &err {
        CoreError::KelFork { sequence, existing_digest, incoming_digest } => {
            assert_eq!(*sequence, 1);
            assert_eq!(existing_digest, &f.log[1].digest().unwrap());
            assert_eq!(incoming_digest, &alt.digest().unwrap());
        }
        other => panic!("expected a fork, got {other}"),
    }
    assert_eq!(err.code(), "KEL_FORK");
    // An invalid conflicting event is not evidence: the precise error is returned instead.
    let mut forged = alt.clone();
    forged.event.ts = T2.into();
    assert_eq!(code(v.detect_fork(verified, &forged)), "KEL_BAD_SIGNATURE");
    // The same event, or the same body signed again, is a duplicate.
    assert_eq!(v.detect_fork(verified, &f.log[1]).unwrap(), ForkCheck::Duplicate);
    let resigned = resign(f.log[1].event.clone(), &f.keys[1]);
    assert_ne!(resigned.sig, f.log[1].sig);
    assert_eq!(v.detect_fork(verified, &resigned).unwrap(), ForkCheck::Duplicate);
    // A later event is new.
    assert_eq!(v.detect_fork(verified, &f.log[2]).unwrap(), ForkCheck::New);
    // Another inception is another DID.
    let other = kel::incept(&f.keys[0], f.keys[2].public_key_ref(), vec![], T0).unwrap();
    assert_eq!(code(v.detect_fork(verified, &other)), "KEL_DID_MISMATCH");
}

#[test]
fn bad_sequence_and_reordering() {
    let f = fixture();
    let mut ev = f.log[1].event.clone();
    ev.s = 2;
    let err = kel::verify_log(&[f.log[0].clone(), resign(ev, &f.keys[1])]).unwrap_err();
    assert!(matches!(err, CoreError::KelBadSequence { index: 1, expected: 1, found: 2 }), "{err}");
    let mut ev = f.log[0].event.clone();
    ev.s = 1;
    assert_eq!(code(kel::verify_log(&[resign(ev, &f.keys[0])])), "KEL_BAD_SEQUENCE");
    let swapped = [f.log[0].clone(), f.log[2].clone(), f.log[1].clone()];
    assert_eq!(code(kel::verify_log(&swapped)), "KEL_BAD_SEQUENCE");
    // Not starting with an inception.
    assert_eq!(code(kel::verify_log(&f.log[1..])), "KEL_BAD_SEQUENCE");
    assert_eq!(code(kel::verify_log(&[])), "KEL_MALFORMED");
    // A second inception.
    let log = [f.log[0].clone(), f.log[0].clone()];
    assert_eq!(code(kel::verify_log(&log)), "KEL_MALFORMED");
}

#[test]
fn did_mismatch() {
    let f = fixture();
    let other = kel::incept(&key(50), key(51).public_key_ref(), vec![], T0).unwrap();
    let other_did = format!("did:atp:{}", other.event.scid().unwrap());
    let mut ev = f.log[1].event.clone();
    ev.d = Some(other_did.clone());
    let err = kel::verify_log(&[f.log[0].clone(), resign(ev, &f.keys[1])]).unwrap_err();
    assert!(matches!(err, CoreError::KelDidMismatch { index: 1, .. }), "{err}");
    assert_eq!(code(KeyEventLog::new().verify_did(&other_did, &f.log)), "KEL_DID_MISMATCH");
    assert_eq!(code(did::resolve_did_atp(&other_did, &f.log, None)), "KEL_DID_MISMATCH");
    assert_eq!(code(did::resolve_did_atp(&other_did, &f.log, Some(1))), "KEL_DID_MISMATCH");
}

type Edit = Box<dyn Fn(&mut Event)>;

#[test]
fn malformed_events() {
    let f = fixture();
    let cases: Vec<(&str, Edit)> = vec![
        ("wrong version", Box::new(|e| e.v = "atp/kel/2".into())),
        ("icp with d", Box::new(|e| e.d = Some("did:atp:zQ".into()))),
        ("icp with p", Box::new(|e| e.p = Some("zQ".into()))),
        ("icp without n", Box::new(|e| e.n = None)),
        ("icp without k", Box::new(|e| e.k = None)),
        ("bad n", Box::new(|e| e.n = Some("zNotAHash".into()))),
        ("bad ts", Box::new(|e| e.ts = "2026-01-01 00:00:00Z".into())),
        ("ts with offset", Box::new(|e| e.ts = "2026-01-01T00:00:00+00:00".into())),
        ("ts bad day", Box::new(|e| e.ts = "2026-02-29T00:00:00Z".into())),
        (
            "bad service id",
            Box::new(|e| e.services = Some(vec![Service::new("agent", "T", "https://a")])),
        ),
        (
            "bad endpoint",
            Box::new(|e| e.services = Some(vec![Service::new("#a", "T", "not a uri")])),
        ),
        (
            "duplicate service",
            Box::new(|e| {
                e.services = Some(vec![
                    Service::new("#a", "T", "https://a"),
                    Service::new("#a", "T", "https://b"),
                ])
            }),
        ),
        ("self commitment", Box::new(|e| e.n = Some(e.k.as_ref().unwrap().commitment().unwrap()))),
        ("bad mldsa multikey", Box::new(|e| e.k.as_mut().unwrap().mldsa = "uAAAA".into())),
        (
            "swapped components",
            Box::new(|e| {
                let k = e.k.as_mut().unwrap();
                std::mem::swap(&mut k.mldsa, &mut k.ed25519);
            }),
        ),
    ];
    for (name, edit) in cases {
        let mut ev = f.log[0].event.clone();
        edit(&mut ev);
        let r = kel::verify_log(&[resign(ev, &f.keys[0])]);
        assert_eq!(code(r), "KEL_MALFORMED", "{name}");
    }
    // dea with n / services; rot without n.
    let s2 = state_after(3);
    let mut dea = f.log[3].event.clone();
    dea.n = Some(kel::key_commitment(f.keys[4].public_key_ref()).unwrap());
    assert_eq!(code(KeyEventLog::new().append(&s2, &resign(dea, &f.keys[3]))), "KEL_MALFORMED");
    let mut dea = f.log[3].event.clone();
    dea.services = Some(vec![]);
    assert_eq!(code(KeyEventLog::new().append(&s2, &resign(dea, &f.keys[3]))), "KEL_MALFORMED");
    let s0 = state_after(1);
    let mut rot = f.log[1].event.clone();
    rot.n = None;
    assert_eq!(code(KeyEventLog::new().append(&s0, &resign(rot, &f.keys[1]))), "KEL_MALFORMED");
}

#[test]
fn timestamps() {
    let f = fixture();
    assert_eq!(kel::parse_timestamp("1970-01-01T00:00:00Z").unwrap(), 0);
    assert_eq!(kel::parse_timestamp("2026-01-01T00:00:00.5Z").unwrap(), 1_767_225_600_500);
    assert_eq!(kel::parse_timestamp("2000-02-29T23:59:59.999999999Z").unwrap(), 951_868_799_999);
    for bad in [
        "2026-01-01T00:00:60Z",
        "2026-13-01T00:00:00Z",
        "2026-01-01t00:00:00z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00.1234567890Z",
        "2100-02-29T00:00:00Z",
        "",
        // Forms that credentials accept (one shared parser) but event timestamps do not.
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T24:00:00Z",
        "12026-01-01T00:00:00Z",
        "-2026-01-01T00:00:00Z",
        "226-01-01T00:00:00Z",
    ] {
        assert!(kel::parse_timestamp(bad).is_err(), "{bad}");
    }
    assert_eq!(kel::parse_timestamp("0000-01-01T00:00:00Z").unwrap(), -62_167_219_200_000);
    assert_eq!(kel::parse_timestamp("1969-12-31T23:59:59.5Z").unwrap(), -500);
    let s0 = state_after(1);
    assert_eq!(
        code(kel::rotate(
            &s0,
            &f.keys[1],
            f.keys[2].public_key_ref(),
            None,
            "2025-12-31T23:59:59Z"
        )),
        "KEL_TIMESTAMP_REGRESSION"
    );
    // Equal timestamps are allowed.
    kel::rotate(&s0, &f.keys[1], f.keys[2].public_key_ref(), None, T0).unwrap();
}

#[test]
fn limits() {
    let f = fixture();
    let v = KeyEventLog::with_limits(KelLimits { max_events: 3, ..KelLimits::default() });
    assert_eq!(code(v.verify(&f.log)), "KEL_LIMIT");
    let s2 = v.verify(&f.log[..3]).unwrap();
    assert_eq!(code(v.append(&s2, &f.log[3])), "KEL_LIMIT");

    let many: Vec<Service> =
        (0..33).map(|i| Service::new(&format!("#s{i}"), "T", "https://a")).collect();
    assert_eq!(code(kel::incept(&f.keys[0], f.keys[1].public_key_ref(), many, T0)), "KEL_LIMIT");
    let ok: Vec<Service> =
        (0..32).map(|i| Service::new(&format!("#s{i}"), "T", "https://a")).collect();
    kel::incept(&f.keys[0], f.keys[1].public_key_ref(), ok, T0).unwrap();

    let v = KeyEventLog::with_limits(KelLimits { max_event_bytes: 4096, ..KelLimits::default() });
    assert_eq!(code(v.verify(&f.log[..1])), "KEL_LIMIT");
}

/// Regression: `parse_log` counted the events only after parsing the whole array, so a log of
/// any number of events was read in full before the limit applied. The count is now enforced
/// while parsing: the first event beyond the limit stops it, and what follows is never read.
#[test]
fn parse_log_stops_at_the_event_limit() {
    let tiny = r#"{"event":{"v":"","t":"icp","s":0,"ts":""},"sig":""}"#;
    let at_limit = vec![tiny; kel::MAX_EVENTS].join(",");
    assert_eq!(kel::parse_log(format!("[{at_limit}]").as_bytes()).unwrap().len(), kel::MAX_EVENTS);
    // One event too many, followed by garbage that a full parse would trip over first.
    let over = format!("[{at_limit},{tiny},{{\"not\":\"an event\"}}]");
    assert_eq!(code(kel::parse_log(over.as_bytes())), "KEL_LIMIT");
    assert_eq!(code(kel::parse_log(format!("[{at_limit},1]").as_bytes())), "KEL_MALFORMED");
    assert_eq!(code(kel::parse_log(b"[] x")), "KEL_MALFORMED");
    assert_eq!(code(kel::parse_log(b"{}")), "KEL_MALFORMED");
    assert!(kel::parse_log(b" [ ] ").unwrap().is_empty());
}

#[test]
fn algorithm_policy() {
    let f = fixture();
    let ed = SigningKey::from_seed(AlgorithmId::Ed25519, &[3; 32]).unwrap();
    let mldsa = SigningKey::from_seed(AlgorithmId::MlDsa65, &[3; 32]).unwrap();
    assert_eq!(
        code(kel::incept(&ed, f.keys[1].public_key_ref(), vec![], T0)),
        "KEL_ALGORITHM_NOT_ALLOWED"
    );
    assert_eq!(
        code(kel::incept(&mldsa, f.keys[1].public_key_ref(), vec![], T0)),
        "KEL_ALGORITHM_NOT_ALLOWED"
    );
    assert_eq!(
        code(kel::incept(&f.keys[0], ed.public_key_ref(), vec![], T0)),
        "KEL_ALGORITHM_NOT_ALLOWED"
    );
    // A hand-made k naming a non-composite algorithm.
    let mut ev = f.log[0].event.clone();
    ev.k.as_mut().unwrap().alg = "ed25519".into();
    assert_eq!(code(kel::verify_log(&[resign(ev, &f.keys[0])])), "KEL_ALGORITHM_NOT_ALLOWED");
    let mut ev = f.log[0].event.clone();
    ev.k.as_mut().unwrap().alg = "legacy-dilithium3".into();
    assert_eq!(code(kel::verify_log(&[resign(ev, &f.keys[0])])), "KEL_ALGORITHM_NOT_ALLOWED");
    // The ML-DSA-44 composite is accepted by default, refused by a stricter provider.
    let k44 = SigningKey::from_seed(AlgorithmId::MlDsa44Ed25519, &[4; 64]).unwrap();
    let icp = kel::incept(&k44, f.keys[1].public_key_ref(), vec![], T0).unwrap();
    let st = kel::verify_log(std::slice::from_ref(&icp)).unwrap();
    let doc = did::did_document(&st).unwrap();
    assert!(doc.verification_method(&format!("{}#mldsa44", st.did)).is_some());
    let strict = KeyEventLog::with_provider(CryptoProvider {
        signature_algorithms: vec![atp_crypto::algorithms::MLDSA65_ED25519],
    });
    assert_eq!(code(strict.verify(&[icp])), "KEL_ALGORITHM_NOT_ALLOWED");
    // Even a provider that lists a non-composite algorithm does not make it acceptable.
    let lax = KeyEventLog::with_provider(CryptoProvider::all_standard());
    let mut ev = f.log[0].event.clone();
    ev.k.as_mut().unwrap().alg = "ed25519".into();
    assert_eq!(code(lax.verify(&[resign(ev, &f.keys[0])])), "KEL_ALGORITHM_NOT_ALLOWED");
}

#[test]
fn did_document_shape() {
    let f = fixture();
    let s2 = state_after(3);
    let r = did::resolve_did_atp(&s2.did, &f.log[..3], None).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    let did = s2.did.as_str();
    let (m, e) = f.keys[2].public_key().components().unwrap();
    let expected_doc = json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [
            {"id": format!("{did}#mldsa65"), "type": "Multikey", "controller": did,
             "publicKeyMultibase": m.to_multikey().unwrap()},
            {"id": format!("{did}#ed25519"), "type": "Multikey", "controller": did,
             "publicKeyMultibase": e.to_multikey().unwrap()},
        ],
        "authentication": [format!("{did}#mldsa65"), format!("{did}#ed25519")],
        "assertionMethod": [format!("{did}#mldsa65"), format!("{did}#ed25519")],
        "service": [
            {"id": format!("{did}#agent"), "type": "AgentService",
             "serviceEndpoint": "https://agent2.example/a2a"},
            {"id": format!("{did}#card"), "type": "A2AAgentCard",
             "serviceEndpoint": "https://agent2.example/.well-known/agent.json"},
        ],
    });
    assert_eq!(v["didDocument"], expected_doc);
    assert_eq!(v["@context"], "https://w3id.org/did-resolution/v1");
    assert_eq!(v["didResolutionMetadata"], json!({"contentType": "application/did+ld+json"}));
    assert_eq!(
        v["didDocumentMetadata"],
        json!({"created": T0, "updated": T2, "versionId": "2", "deactivated": false,
               "nextKeyCommitment": kel::key_commitment(f.keys[3].public_key_ref()).unwrap()})
    );
    // The document parses back.
    let doc: DidDocument = serde_json::from_value(v["didDocument"].clone()).unwrap();
    assert_eq!(doc, r.did_document);
    assert_eq!(
        doc.verification_method("#ed25519").unwrap().public_key_multibase,
        e.to_multikey().unwrap()
    );

    // Deactivated: minimal document.
    let r = did::resolve_did_atp(did, &f.log, None).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v["didDocument"],
        json!({"@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"], "id": did})
    );
    assert_eq!(
        v["didDocumentMetadata"],
        json!({"created": T0, "updated": T3, "versionId": "3", "deactivated": true})
    );

    // Historical version of a now-deactivated DID.
    let r = did::resolve_did_atp(did, &f.log, Some(0)).unwrap();
    assert_eq!(r.did_document_metadata.version_id.as_deref(), Some("0"));
    assert_eq!(r.did_document_metadata.next_version_id.as_deref(), Some("1"));
    assert_eq!(r.did_document_metadata.next_update.as_deref(), Some(T1));
    assert!(r.did_document_metadata.deactivated);
    assert_eq!(r.did_document.service[0].service_endpoint, "https://agent.example/a2a");
    let (m0, _) = f.keys[0].public_key().components().unwrap();
    assert_eq!(
        r.did_document.verification_method[0].public_key_multibase,
        m0.to_multikey().unwrap()
    );
    assert_eq!(code(did::resolve_did_atp(did, &f.log, Some(4))), "DID_VERSION_NOT_FOUND");

    // DID syntax.
    assert_eq!(code(did::parse_did_atp("did:web:example.com")), "DID_METHOD_NOT_SUPPORTED");
    assert_eq!(code(did::parse_did_atp("did:atp:zabc")), "DID_INVALID");
    assert_eq!(code(did::parse_did_atp("atp:zabc")), "DID_INVALID");
    did::validate_did(did).unwrap();
    did::validate_did("did:web:example.com:user%20a").unwrap();
    for bad in [
        "did:Web:x",
        "did:web:",
        "did:web:a:",
        "did:web:a b",
        "did:web:a#f",
        "did:web:%zz",
        "did::x",
    ] {
        assert_eq!(code(did::validate_did(bad)), "DID_INVALID", "{bad}");
    }
}

#[test]
fn key_validity_windows() {
    let f = fixture();
    let v = KeyEventLog::new();
    let did = &state_after(1).did;
    let k0 = v.key_validity(did, &f.log, 0).unwrap().unwrap();
    assert_eq!(k0.key, f.keys[0].public_key());
    assert_eq!(k0.valid_from, kel::parse_timestamp(T0).unwrap());
    assert_eq!(k0.valid_until, Some(kel::parse_timestamp(T1).unwrap()));
    let k2 = v.key_validity(did, &f.log, 2).unwrap().unwrap();
    assert_eq!(k2.key, f.keys[2].public_key());
    assert_eq!(k2.valid_until, Some(kel::parse_timestamp(T3).unwrap()));
    assert_eq!(v.key_validity(did, &f.log[..3], 2).unwrap().unwrap().valid_until, None);
    assert!(v.key_validity(did, &f.log, 3).unwrap().is_none()); // the deactivation
    assert!(v.key_validity(did, &f.log, 9).unwrap().is_none());
}

/// Regression: a key lookup for an envelope sender must not accept a valid log of another DID
/// (for example one served by a malicious node), or that DID's keys would sign for the sender.
#[test]
fn key_validity_refuses_the_log_of_another_did() {
    let f = fixture();
    let victim = state_after(1).did;
    let attacker_key = key(40);
    let other = kel::incept(&attacker_key, key(41).public_key_ref(), vec![], T0).unwrap();
    let other_log = std::slice::from_ref(&other);
    assert_ne!(kel::verify_log(other_log).unwrap().did, victim);
    assert_eq!(code(KeyEventLog::new().key_validity(&victim, other_log, 0)), "KEL_DID_MISMATCH");
    assert!(KeyEventLog::new().key_validity(&victim, &f.log, 0).unwrap().is_some());
}

#[test]
fn event_types_serialise_as_wire_names() {
    assert_eq!(serde_json::to_value(EventType::Inception).unwrap(), "icp");
    assert_eq!(EventType::Rotation.as_str(), "rot");
    assert_eq!(EventType::Deactivation.as_str(), "dea");
    let k = CompositeKey::from_public_key(key(1).public_key_ref()).unwrap();
    assert_eq!(k.alg, "mldsa65-ed25519");
    assert!(k.mldsa.starts_with('u') && k.ed25519.starts_with("z6Mk"));
    assert_eq!(k.to_public_key().unwrap(), key(1).public_key());
    let ed = PublicKey::from_multikey(&k.ed25519).unwrap();
    assert!(CompositeKey::from_public_key(&ed).is_err());
}

/// Set the byte at `pos` of event `idx`'s canonical JSON to `byte`: if the result still
/// parses, the log must no longer verify.
fn edited_event_fails(idx: usize, pos: prop::sample::Index, byte: u8) -> Result<(), TestCaseError> {
    let f = fixture();
    let mut edited = f.log[idx].to_json().unwrap().into_bytes();
    let p = pos.index(edited.len());
    prop_assume!(edited[p] != byte);
    edited[p] = byte;
    if let Ok(ev) = SignedEvent::from_json(&edited) {
        let mut log = f.log.clone();
        log[idx] = ev;
        prop_assert!(kel::verify_log(&log).is_err(), "edit at {p} to {byte:#x} verified");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any single-byte edit of any event's JSON that still parses fails verification.
    #[test]
    fn single_byte_edit_fails(idx in 0usize..4, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        edited_event_fails(idx, pos, byte)?;
    }

    /// Editing the character at a random position to a random *printable* character, which
    /// parses far more often than an arbitrary byte.
    #[test]
    fn single_char_edit_fails(idx in 0usize..4, pos in any::<prop::sample::Index>(), c in "[A-Za-z0-9_:.#/-]") {
        edited_event_fails(idx, pos, c.as_bytes()[0])?;
    }

    /// Any reordering of the events fails verification.
    #[test]
    fn reordering_fails(order in Just(vec![0usize, 1, 2, 3]).prop_shuffle()) {
        prop_assume!(order != vec![0, 1, 2, 3]);
        let f = fixture();
        let log: Vec<SignedEvent> = order.iter().map(|i| f.log[*i].clone()).collect();
        prop_assert!(kel::verify_log(&log).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// The worked example of docs/protocol.md §B5.
// ---------------------------------------------------------------------------------------------

/// The DID of the worked example: current key seed 0x01 × 64, next key seed 0x02 × 64.
const EXAMPLE_DID: &str = "did:atp:zQmbXLEvot8Lu4hxPrniP9gatTYaGhXrPojmMvN67FEEyhp";
const EXAMPLE_NEXT_COMMITMENT: &str = "zQmdxD9aSqwRsxgC7xKZSeUKb3fP328wBJH9yVz4PCZu4mm";
const EXAMPLE_BODY_SHA256: &str =
    "c3e46fbac3f2aebd743fc2cd1794b5d3c25401004251e9dddcdc0b2e537116b7";

fn example_inception() -> SignedEvent {
    let current = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x01; 64]).unwrap();
    let next = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x02; 64]).unwrap();
    let services = vec![Service::new("#agent", "AgentService", "https://agent.example/a2a")];
    kel::incept(&current, next.public_key_ref(), services, "2026-01-01T00:00:00Z").unwrap()
}

/// Prints the worked example:
/// `cargo test -p atp-core --test protocol_core kel::print_worked_example -- --nocapture`.
#[test]
fn print_worked_example() {
    let icp = example_inception();
    let next = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x02; 64]).unwrap();
    let body = icp.event.canonical_bytes().unwrap();
    let nk = CompositeKey::from_public_key(next.public_key_ref()).unwrap();
    println!("next key JCS: {}", String::from_utf8(serde_jcs::to_vec(&nk).unwrap()).unwrap());
    println!(
        "next key JCS sha256: {}",
        hex::encode(atp_crypto::sha256(&serde_jcs::to_vec(&nk).unwrap()))
    );
    println!("n: {}", icp.event.n.as_deref().unwrap());
    println!(
        "inception body JCS ({} bytes): {}",
        body.len(),
        String::from_utf8(body.clone()).unwrap()
    );
    println!("inception body sha256: {}", hex::encode(atp_crypto::sha256(&body)));
    println!("scid: {}", icp.event.scid().unwrap());
    println!("DID: did:atp:{}", icp.event.scid().unwrap());
    let k = icp.event.k.as_ref().unwrap();
    println!("k.mldsa sha256(utf8): {}", hex::encode(atp_crypto::sha256(k.mldsa.as_bytes())));
    println!("k.ed25519: {}", k.ed25519);
}

#[test]
fn worked_example_matches_the_published_values() {
    let icp = example_inception();
    let did = format!("did:atp:{}", icp.event.scid().unwrap());
    assert_eq!(did, EXAMPLE_DID);
    assert_eq!(icp.event.n.as_deref(), Some(EXAMPLE_NEXT_COMMITMENT));
    let body = icp.event.canonical_bytes().unwrap();
    assert_eq!(hex::encode(atp_crypto::sha256(&body)), EXAMPLE_BODY_SHA256);
    // Independent derivation: multihash by hand, base58btc by multibase.
    let mut mh = vec![0x12, 0x20];
    mh.extend_from_slice(&atp_crypto::sha256(&body));
    assert_eq!(did, format!("did:atp:{}", multibase::encode(multibase::Base::Base58Btc, mh)));

    // The document publishes the same values (in the draft or, once merged, in protocol.md).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let docs: Vec<String> =
        ["protocol.md"].iter().filter_map(|n| std::fs::read_to_string(root.join(n)).ok()).collect();
    assert!(
        docs.iter().any(|d| d.contains(EXAMPLE_DID)
            && d.contains(EXAMPLE_NEXT_COMMITMENT)
            && d.contains(EXAMPLE_BODY_SHA256)),
        "docs/protocol.md (or the draft) must publish the worked example values"
    );
}

/// `accept` is `append` (and, for an inception, `verify_did`) with the persisted form computed
/// once: the same verdicts, the same state, and bytes, digest and data hash equal to those the
/// log entry and the event compute on their own.
#[test]
fn accept_agrees_with_append_and_carries_what_a_store_persists() {
    let f = fixture();
    let v = KeyEventLog::new();
    let did = state_after(1).did;
    let mut head: Option<KelState> = None;
    for event in &f.log {
        let accepted = v.accept(&did, head.as_ref(), event.clone()).unwrap();
        let expected = match &head {
            None => v.verify_did(&did, std::slice::from_ref(event)).unwrap(),
            Some(h) => v.append(h, event).unwrap(),
        };
        assert_eq!(accepted.state(), &expected);
        assert_eq!(accepted.event(), event);
        assert_eq!(accepted.did(), did);
        assert_eq!(accepted.canonical_bytes(), event.canonical_bytes().unwrap().as_slice());
        assert_eq!(accepted.digest(), event.digest().unwrap());
        assert_eq!(*accepted.data_hash(), atp_core::log_entry::kel_data_hash(event).unwrap());
        assert_eq!(
            accepted.leaf_hash(),
            atp_core::log_entry::entry_leaf_hash(
                atp_core::log_entry::LeafKind::Kel,
                accepted.data_hash()
            )
        );
        let extends = head.as_ref().map(|h| (h.sequence, h.last_digest.as_str()));
        assert_eq!(accepted.extends(), extends);
        head = Some(expected);
    }
    // The refusals are append's: a second inception, a skipped event, the wrong DID, and
    // anything after the deactivation.
    let s1 = state_after(2);
    assert_eq!(code(v.accept(&did, Some(&s1), f.log[0].clone())), "KEL_MALFORMED");
    assert_eq!(code(v.accept(&did, Some(&s1), f.log[3].clone())), "KEL_BAD_SEQUENCE");
    assert_eq!(code(v.accept("did:atp:zOther", None, f.log[0].clone())), "KEL_DID_MISMATCH");
    assert_eq!(code(v.accept(&did, None, f.log[1].clone())), "KEL_BAD_SEQUENCE");
    let after = state_after(4);
    assert_eq!(
        code(v.accept(&did, Some(&after), f.log[1].clone())),
        "KEL_EVENT_AFTER_DEACTIVATION"
    );
}
