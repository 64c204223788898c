//! The audit trail's rules: the event's one canonical form, the digest and chain formulas
//! recomputed from their definitions, and every kind of tampering named at the right row.
#![allow(clippy::unwrap_used)]

use atp_core::CoreError;
use atp_core::audit::{
    Actor, AuditBatch, AuditEvent, Client, EventCode, GENESIS, Outcome, SealedRow, Tamper, Target,
    batch_data_hash, chain_next, event_digest, is_uuid_v7, uuid_v7, verify_batch,
};
use sha2::{Digest, Sha256};

fn event(n: u8, code: EventCode) -> AuditEvent {
    AuditEvent {
        id: uuid_v7(1_780_000_000_000 + u64::from(n), [n; 10]),
        time: 1_780_000_000_000 + i64::from(n),
        code: code.as_str().into(),
        event_type: code.event_type().into(),
        actor: Actor { id: "admin".into(), kind: "admin".into(), tenant: None },
        client: Client { ip: Some("hmac-sha256:00".into()), ..Client::default() },
        target: vec![Target { kind: "did".into(), id: format!("did:atp:{n}") }],
        outcome: Outcome { result: "SUCCESS".into(), reason: None },
        request_id: None,
        rule: Some("trust_anchors.set".into()),
    }
}

/// A sealed batch of `n` events after `previous`, with its stored rows (body, digest, chain).
fn sealed(
    number: u64,
    first_seq: u64,
    n: u8,
    previous: [u8; 32],
) -> (AuditBatch, Vec<Vec<u8>>, Vec<[u8; 32]>) {
    let bodies: Vec<Vec<u8>> =
        (0..n).map(|i| event(i, EventCode::AnchorsChanged).canonical_bytes().unwrap()).collect();
    let mut chain = previous;
    let mut chains = Vec::new();
    for body in &bodies {
        chain = chain_next(&chain, &event_digest(body));
        chains.push(chain);
    }
    let batch = AuditBatch {
        number,
        first_seq,
        last_seq: first_seq + u64::from(n) - 1,
        count: u64::from(n),
        previous,
        head: chain,
    };
    (batch, bodies, chains)
}

fn rows<'a>(first_seq: u64, bodies: &'a [Vec<u8>], chains: &[[u8; 32]]) -> Vec<SealedRow<'a>> {
    bodies
        .iter()
        .zip(chains)
        .enumerate()
        .map(|(i, (body, chain))| SealedRow {
            seq: first_seq + i as u64,
            body,
            digest: event_digest(body),
            chain: *chain,
        })
        .collect()
}

#[test]
fn every_code_has_a_type_and_parses_back() {
    for code in EventCode::ALL {
        assert_eq!(EventCode::parse(code.as_str()), Some(code));
        assert!(!code.event_type().is_empty());
    }
    assert_eq!(EventCode::parse("authn.maybe"), None);
}

#[test]
fn uuid_v7_carries_the_time_version_and_variant() {
    let id = uuid_v7(0x0123_4567_89ab, [0xff; 10]);
    assert_eq!(id, "01234567-89ab-7fff-bfff-ffffffffffff");
    assert!(is_uuid_v7(&id));
    assert!(!is_uuid_v7("01234567-89ab-4fff-bfff-ffffffffffff"), "version 4");
    assert!(!is_uuid_v7("01234567-89AB-7fff-bfff-ffffffffffff"), "uppercase");
    assert!(!is_uuid_v7("01234567-89ab-7fff-cfff-ffffffffffff"), "variant");
}

#[test]
fn the_stored_form_is_canonical_and_parses_back() {
    let e = event(3, EventCode::AuthzDenied);
    let bytes = e.canonical_bytes().unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.starts_with(r#"{"actor":{"id":"admin","kind":"admin"},"client":{"ip":"#),
        "{text}"
    );
    assert!(text.contains(r#""type":"authorization""#), "{text}");
    assert_eq!(AuditEvent::parse(&bytes).unwrap(), e);

    // The same event with whitespace is not its stored form.
    let pretty = serde_json::to_vec_pretty(&e).unwrap();
    assert!(matches!(AuditEvent::parse(&pretty), Err(CoreError::AuditEventInvalid(_))));
    // An unknown field, a wrong type and a bad result are refused.
    let extra = text.replacen('{', r#"{"extra":1,"#, 1);
    assert!(AuditEvent::parse(extra.as_bytes()).is_err());
    let mut wrong = e.clone();
    wrong.event_type = "admin".into();
    assert_eq!(wrong.canonical_bytes().unwrap_err().code(), "AUDIT_EVENT_INVALID");
    let mut wrong = e;
    wrong.outcome.result = "OK".into();
    assert!(wrong.canonical_bytes().is_err());
}

#[test]
fn the_formulas_are_the_documented_ones() {
    let body = event(1, EventCode::KeyEventAccepted).canonical_bytes().unwrap();
    let digest: [u8; 32] =
        Sha256::digest([b"atp/audit-event/1\n".as_slice(), &body].concat()).into();
    assert_eq!(event_digest(&body), digest);
    let chain: [u8; 32] =
        Sha256::digest([b"atp/audit-chain/1\n".as_slice(), &GENESIS, &digest].concat()).into();
    assert_eq!(chain_next(&GENESIS, &digest), chain);
    let batch = AuditBatch {
        number: 2,
        first_seq: 5,
        last_seq: 9,
        count: 5,
        previous: [7; 32],
        head: chain,
    };
    let mut input = b"atp/audit-batch/1\n".to_vec();
    for n in [2u64, 5, 9, 5] {
        input.extend_from_slice(&n.to_be_bytes());
    }
    input.extend_from_slice(&[7; 32]);
    input.extend_from_slice(&chain);
    assert_eq!(batch_data_hash(&batch), <[u8; 32]>::from(Sha256::digest(&input)));
}

#[test]
fn an_intact_batch_verifies_and_chains_on() {
    let (first, bodies, chains) = sealed(1, 1, 4, GENESIS);
    verify_batch(&first, &rows(1, &bodies, &chains)).unwrap();
    let (second, bodies2, chains2) = sealed(2, 5, 3, first.head);
    verify_batch(&second, &rows(5, &bodies2, &chains2)).unwrap();
    // The second batch does not verify from another starting point.
    let detached = AuditBatch { previous: GENESIS, ..second };
    assert!(matches!(
        verify_batch(&detached, &rows(5, &bodies2, &chains2)),
        Err(Tamper::Broken { seq: 5 })
    ));
}

#[test]
fn a_changed_row_is_named() {
    let (batch, mut bodies, chains) = sealed(1, 10, 5, GENESIS);
    // Edited in place, its digest left as it was.
    let mut edited = AuditEvent::parse(&bodies[2]).unwrap();
    edited.outcome.result = "DENIED".into();
    let edited = edited.canonical_bytes().unwrap();
    let mut r = rows(10, &bodies, &chains);
    r[2].body = &edited;
    assert!(
        matches!(verify_batch(&batch, &r), Err(Tamper::Changed { seq: 12, .. })),
        "{:?}",
        verify_batch(&batch, &r)
    );
    // Edited with its digest recomputed: the chain no longer follows at that row.
    let mut r = rows(10, &bodies, &chains);
    r[2].body = &edited;
    r[2].digest = event_digest(&edited);
    assert_eq!(verify_batch(&batch, &r), Err(Tamper::Broken { seq: 12 }));
    // Bytes that are no event at all.
    bodies[1] = b"{}".to_vec();
    assert!(matches!(
        verify_batch(&batch, &rows(10, &bodies, &chains)),
        Err(Tamper::Changed { seq: 11, .. })
    ));
}

#[test]
fn a_deleted_row_is_named_by_the_row_after_it() {
    let (batch, bodies, chains) = sealed(1, 1, 5, GENESIS);
    let mut r = rows(1, &bodies, &chains);
    r.remove(1);
    assert_eq!(verify_batch(&batch, &r), Err(Tamper::Broken { seq: 3 }));
    // The last row deleted: the batch's count says so.
    let mut r = rows(1, &bodies, &chains);
    r.pop();
    assert!(matches!(verify_batch(&batch, &r), Err(Tamper::Batch { batch: 1, .. })));
}

#[test]
fn reordered_rows_are_named() {
    let (batch, bodies, chains) = sealed(1, 1, 5, GENESIS);
    // Two rows swap places (their sequence numbers exchanged).
    let mut r = rows(1, &bodies, &chains);
    r.swap(1, 3);
    r[1].seq = 2;
    r[3].seq = 4;
    assert_eq!(verify_batch(&batch, &r), Err(Tamper::Broken { seq: 2 }));
    // Rows read back out of sequence order: the first misplaced one is named.
    let mut r = rows(1, &bodies, &chains);
    r.swap(1, 3);
    assert_eq!(verify_batch(&batch, &r), Err(Tamper::Broken { seq: 4 }));
    let mut r = rows(1, &bodies, &chains);
    r[2].seq = 2;
    assert_eq!(verify_batch(&batch, &r), Err(Tamper::OutOfOrder { seq: 2, batch: 1 }));
    // Rows outside the batch's range.
    let r = rows(2, &bodies, &chains);
    assert!(matches!(verify_batch(&batch, &r), Err(Tamper::OutOfOrder { seq: 6, .. })));
}

#[test]
fn a_changed_batch_record_is_found() {
    let (batch, bodies, chains) = sealed(1, 1, 3, GENESIS);
    let forged = AuditBatch { head: [9; 32], ..batch.clone() };
    assert!(matches!(verify_batch(&forged, &rows(1, &bodies, &chains)), Err(Tamper::Batch { .. })));
    assert_ne!(batch_data_hash(&batch), batch_data_hash(&forged));
}
