//! Leases on singleton jobs and the writes they fence, and metadata that the first of several
//! nodes claims: one holder at a time, renewals keep the epoch, an expired or released lease
//! goes to the next holder at a new epoch, a fenced write of a past holder stores nothing, and
//! racing claimants through two stores on one database agree.

use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, sign_note};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_store::{MAX_LEASE_TTL_MS, Store};

use super::log_and_kel::{code, evidence};
use crate::Backend;

const JOB: &str = "checkpoint-signer";

/// A signed checkpoint note of the store's log at its current size.
async fn current_note(store: &dyn Store) -> (u64, String) {
    let ed = SigningKey::generate(AlgorithmId::Ed25519).unwrap();
    let ml = SigningKey::generate(AlgorithmId::MlDsa65).unwrap();
    let size = store.log_size().await.unwrap();
    let root = store.root_at(size).await.unwrap();
    let note = sign_note(&Checkpoint::new("atp.test/log", size, root), "atp.test/log", &ed, &ml);
    (size, note.unwrap())
}

/// A lease has one holder at a time; renewing keeps the epoch; a released lease goes to the
/// next holder at the next epoch; the past holder's fenced write is refused and stores nothing.
pub async fn a_lease_has_one_holder_and_fences_its_writes(backend: &dyn Backend) {
    let store = backend.open().await;
    let a = store.acquire_lease(JOB.into(), "node-a".into(), 60_000).await.unwrap().unwrap();
    assert_eq!((a.name.as_str(), a.holder.as_str(), a.epoch), (JOB, "node-a", 1));
    assert_eq!(store.acquire_lease(JOB.into(), "node-b".into(), 60_000).await.unwrap(), None);
    let renewed = store.acquire_lease(JOB.into(), "node-a".into(), 60_000).await.unwrap().unwrap();
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.valid_until_ms >= a.valid_until_ms);
    // Another job is another lease.
    let other = store.acquire_lease("trust".into(), "node-b".into(), 60_000).await.unwrap();
    assert_eq!(other.unwrap().epoch, 1);

    store.append_evidence(evidence(0)).await.unwrap();
    let (size, note) = current_note(&*store).await;
    assert!(store.put_checkpoint_fenced(note, a.clone()).await.unwrap());
    assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().size, size);

    assert!(store.release_lease(a.clone()).await.unwrap());
    assert!(!store.release_lease(a.clone()).await.unwrap(), "released twice");
    let b = store.acquire_lease(JOB.into(), "node-b".into(), 60_000).await.unwrap().unwrap();
    assert_eq!((b.holder.as_str(), b.epoch), ("node-b", 2));

    store.append_evidence(evidence(1)).await.unwrap();
    let (size, note) = current_note(&*store).await;
    let before = store.stats().await.unwrap();
    assert_eq!(
        code(store.put_checkpoint_fenced(note.clone(), a.clone()).await),
        "STORE_LEASE_LOST"
    );
    // A forged lease with the current epoch but another holder is refused too.
    let forged = atp_store::Lease { holder: "node-a".into(), ..b.clone() };
    assert_eq!(code(store.put_checkpoint_fenced(note.clone(), forged).await), "STORE_LEASE_LOST");
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.checkpoint_at(size).await.unwrap(), None);
    assert!(!store.release_lease(a).await.unwrap(), "a past holder cannot release");
    assert!(store.put_checkpoint_fenced(note, b).await.unwrap());
    store.close().await.unwrap();
}

/// An expired lease fences nothing and goes to whoever asks next, at a new epoch.
pub async fn an_expired_lease_goes_to_the_next_holder_at_a_new_epoch(backend: &dyn Backend) {
    let store = backend.open().await;
    let a = store.acquire_lease(JOB.into(), "node-a".into(), 200).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, note) = current_note(&*store).await;
    assert_eq!(
        code(store.put_checkpoint_fenced(note.clone(), a.clone()).await),
        "STORE_LEASE_LOST"
    );
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    // Taken over after expiry, even by the same holder, the epoch moves on: the old lease
    // value never fences again.
    let again = store.acquire_lease(JOB.into(), "node-a".into(), 200).await.unwrap().unwrap();
    assert_eq!(again.epoch, 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = store.acquire_lease(JOB.into(), "node-b".into(), 60_000).await.unwrap().unwrap();
    assert_eq!(b.epoch, 3);
    assert_eq!(code(store.put_checkpoint_fenced(note.clone(), again).await), "STORE_LEASE_LOST");
    assert!(store.put_checkpoint_fenced(note, b).await.unwrap());
    store.close().await.unwrap();
}

/// Racing holders through two stores on one database: exactly one gets the lease.
pub async fn racing_holders_get_one_lease(backend: &dyn Backend) {
    let stores = [backend.open().await, backend.open().await];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = stores[i % 2].clone();
        set.spawn(async move {
            store.acquire_lease(JOB.into(), format!("node-{i}"), 60_000).await.unwrap()
        });
    }
    let granted: Vec<_> = set.join_all().await.into_iter().flatten().collect();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0].epoch, 1);
    for store in stores {
        store.close().await.unwrap();
    }
}

/// Malformed lease requests are refused before the database.
pub async fn lease_requests_are_checked(backend: &dyn Backend) {
    let store = backend.open().await;
    for (name, holder, ttl) in [
        (JOB, "node-a", 0),
        (JOB, "node-a", 99),
        (JOB, "node-a", MAX_LEASE_TTL_MS + 1),
        ("", "node-a", 1_000),
        (JOB, "", 1_000),
        (JOB, "node a", 1_000),
    ] {
        let r = store.acquire_lease(name.into(), holder.into(), ttl).await;
        assert_eq!(code(r), "STORE_INVALID_ARGUMENT", "{name:?} {holder:?} {ttl}");
    }
    assert!(store.acquire_lease(JOB.into(), "node-a".into(), 1_000).await.unwrap().is_some());
    store.close().await.unwrap();
}

/// The first claim of a metadata key wins, also between racing stores on one database.
pub async fn the_first_claim_of_a_key_wins(backend: &dyn Backend) {
    let stores = [backend.open().await, backend.open().await];
    assert_eq!(stores[0].claim_meta("cluster.id".into(), "one".into()).await.unwrap(), "one");
    assert_eq!(stores[1].claim_meta("cluster.id".into(), "two".into()).await.unwrap(), "one");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = stores[i % 2].clone();
        set.spawn(async move { store.claim_meta("race".into(), format!("v{i}")).await.unwrap() });
    }
    let answers = set.join_all().await;
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(stores[1].get_meta("race").await.unwrap().as_deref(), Some(answers[0].as_str()));
    assert_eq!(
        code(stores[0].claim_meta(String::new(), "x".into()).await),
        "STORE_INVALID_ARGUMENT"
    );
    for store in stores {
        store.close().await.unwrap();
    }
}

/// The trust snapshot of a cluster: stored only under its lease, one revision more each time,
/// read the same by another store on the database; a past holder's write is refused and
/// stores nothing; an empty body or a negative time is refused before the database.
pub async fn a_trust_snapshot_is_stored_under_its_lease(backend: &dyn Backend) {
    const TRUST: &str = "trust-recompute";
    let store = backend.open().await;
    let other = backend.open().await;
    assert_eq!(store.trust_snapshot_revision().await.unwrap(), None);
    assert_eq!(store.trust_snapshot().await.unwrap(), None);

    let a = store.acquire_lease(TRUST.into(), "node-a".into(), 60_000).await.unwrap().unwrap();
    let small = vec![7u8; 1_000];
    assert_eq!(store.put_trust_snapshot_fenced(10, small.clone(), a.clone()).await.unwrap(), 1);
    // Several megabytes: more than one page, more than one network packet.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(store.put_trust_snapshot_fenced(20, big.clone(), a.clone()).await.unwrap(), 2);
    assert_eq!(other.trust_snapshot_revision().await.unwrap(), Some((2, 20)));
    let read = other.trust_snapshot().await.unwrap().unwrap();
    assert_eq!((read.revision, read.computed_at_ms), (2, 20));
    assert!(read.body == big, "the body comes back byte for byte");

    // Taken over: the past holder's write is refused, and the stored snapshot is unchanged.
    assert!(store.release_lease(a.clone()).await.unwrap());
    let b = other.acquire_lease(TRUST.into(), "node-b".into(), 60_000).await.unwrap().unwrap();
    assert_eq!(b.epoch, 2);
    assert_eq!(
        code(store.put_trust_snapshot_fenced(30, small.clone(), a.clone()).await),
        "STORE_LEASE_LOST"
    );
    let forged = atp_store::Lease { holder: "node-a".into(), ..b.clone() };
    assert_eq!(
        code(store.put_trust_snapshot_fenced(30, small.clone(), forged).await),
        "STORE_LEASE_LOST"
    );
    assert_eq!(store.trust_snapshot_revision().await.unwrap(), Some((2, 20)));

    for (at, body) in [(40, Vec::new()), (-1, small.clone())] {
        let r = other.put_trust_snapshot_fenced(at, body, b.clone()).await;
        assert_eq!(code(r), "STORE_INVALID_ARGUMENT", "at {at}");
    }
    assert_eq!(other.put_trust_snapshot_fenced(40, small.clone(), b).await.unwrap(), 3);
    let read = store.trust_snapshot().await.unwrap().unwrap();
    assert_eq!((read.revision, read.computed_at_ms, read.body), (3, 40, small));
    store.close().await.unwrap();
    other.close().await.unwrap();
}
