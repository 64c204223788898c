//! The database fails under the nodes: a crash and restart of the primary, then the primary
//! lost for good and its synchronous standby promoted. The nodes find their database again by
//! themselves, no acknowledged write is lost, and the outages the writers saw are reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use atp_core::kel;
use atp_crypto::{AlgorithmId, SigningKey};

use super::*;

/// What a writer saw: each acknowledged DID, and the outcome of every request with its time.
#[derive(Default)]
struct Record {
    acks: Vec<String>,
    outcomes: Vec<(Instant, bool)>,
}

/// Submits fresh inceptions to one node until `stop`.
async fn writer(channel: Channel, stop: Arc<AtomicBool>, record: Arc<Mutex<Record>>) {
    let mut client = IdentityServiceClient::new(channel);
    while !stop.load(Ordering::SeqCst) {
        let k = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let event = kel::incept(&k, next.public_key_ref(), vec![], "2026-04-01T00:00:00Z").unwrap();
        let did = format!("{}{}", kel::DID_ATP_PREFIX, event.event.scid().unwrap());
        let req = pb::SubmitEventRequest { signed_event_json: event.canonical_bytes().unwrap() };
        let ok = client.submit_event(req).await.is_ok();
        {
            let mut r = record.lock().unwrap();
            r.outcomes.push((Instant::now(), ok));
            if ok {
                r.acks.push(did);
            }
        }
        if !ok {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The longest time after `from` in which no write succeeded (a failed request and one that
/// hung count alike): how long clients could not write.
fn outage_after(outcomes: &[(Instant, bool)], from: Instant) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for &(at, _) in outcomes.iter().filter(|(at, ok)| *ok && *at >= from) {
        longest = longest.max(at - last);
        last = at;
    }
    longest
}

/// Waits until every writer has at least `more` successes after `since` (bounded).
async fn wait_for_progress(records: &[Arc<Mutex<Record>>], since: Instant, more: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = records.iter().all(|r| {
            r.lock().unwrap().outcomes.iter().filter(|(at, ok)| *ok && *at > since).count() >= more
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "the writers did not recover within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_follow_a_restarted_primary_and_a_promoted_standby() {
    let Some(primary) = PgServer::start(Durability::Full) else { return };
    let database = primary.create_database().unwrap();
    let standby = primary.start_standby().unwrap();
    primary.require_synchronous_standby().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hosts =
        vec![format!("127.0.0.1:{}", primary.port()), format!("127.0.0.1:{}", standby.port())];
    let dirs: Vec<_> = ["a", "b"].iter().map(|n| tmp.path().join(n)).collect();
    let (_a, _, channel_a, _) = start_node_with(&dirs[0], &hosts, &database, "").await;
    copy_identity(&dirs[0], &dirs[1]);
    let (_b, _, channel_b, _) = start_node_with(&dirs[1], &hosts, &database, "").await;
    let channels = [channel_a, channel_b];

    let stop = Arc::new(AtomicBool::new(false));
    let records: Vec<_> =
        channels.iter().map(|_| Arc::new(Mutex::new(Record::default()))).collect();
    let mut writers = tokio::task::JoinSet::new();
    for (channel, record) in channels.iter().zip(&records) {
        writers.spawn(writer(channel.clone(), stop.clone(), record.clone()));
    }
    let started = Instant::now();
    wait_for_progress(&records, Instant::now(), 20).await;
    eprintln!("failover: 20 writes per writer in {:?} before the crash", started.elapsed());

    // 1. The primary crashes and restarts.
    let restart = Instant::now();
    let primary = tokio::task::spawn_blocking(move || {
        primary.crash_and_restart().unwrap();
        primary
    })
    .await
    .unwrap();
    eprintln!("failover: the primary accepted connections again after {:?}", restart.elapsed());
    wait_for_progress(&records, Instant::now(), 20).await;
    eprintln!("failover: restarted and 20 more writes per writer in {:?}", restart.elapsed());
    let restart_outage =
        records.iter().map(|r| outage_after(&r.lock().unwrap().outcomes, restart)).max().unwrap();

    // 2. The primary is lost for good; the synchronous standby is promoted.
    let failover = Instant::now();
    let (_lost, standby) = tokio::task::spawn_blocking(move || {
        primary.crash().unwrap();
        standby.promote().unwrap();
        (primary, standby)
    })
    .await
    .unwrap();
    wait_for_progress(&records, Instant::now(), 20).await;
    eprintln!("failover: 20 writes per writer after the promotion at {:?}", failover.elapsed());
    stop.store(true, Ordering::SeqCst);
    writers.join_all().await;
    let failover_outage =
        records.iter().map(|r| outage_after(&r.lock().unwrap().outcomes, failover)).max().unwrap();

    // Every acknowledged write is on the promoted standby.
    let acks: Vec<String> = records.iter().flat_map(|r| r.lock().unwrap().acks.clone()).collect();
    for did in &acks {
        assert!(resolves(&channels[0], did).await, "acknowledged {did} was lost");
    }
    let leaves = count(&standby, &database, "SELECT COUNT(*) FROM tlog_leaves");
    let max =
        count(&standby, &database, "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM tlog_leaves");
    assert_eq!(leaves, max, "the leaf indices have a gap");
    eprintln!(
        "failover: {} writes acknowledged, none lost; no write succeeded for at most \
         {restart_outage:?} after the primary's crash and restart, and {failover_outage:?} \
         after its loss and the standby's promotion",
        acks.len()
    );
}
