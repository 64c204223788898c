//! The key event log change feed of `PgStore` (src/pg/feed.rs) against a real server: another
//! store's append is reported before any proof of catching up that comes after it, and a lost
//! listening session is reported as a gap.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use atp_enterprise_ha::{PgConfig, PgStore};
use atp_store::{KelChange, KelChangeFeed, Store};
use atp_store_conformance::support::{incept, keys, rotation};
use atp_test_node::postgres::{Durability, PgServer};

/// The next report, failing the test after 10 s without one.
async fn next(feed: &mut Box<dyn KelChangeFeed>) -> KelChange {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("the feed reported nothing for 10 s")
        .unwrap()
}

/// Reads reports until one proves that every change committed before `instant` was reported;
/// returns the changes seen meanwhile.
async fn changes_until_caught_up(
    feed: &mut Box<dyn KelChangeFeed>,
    instant: Instant,
) -> Vec<String> {
    let mut changed = Vec::new();
    loop {
        match next(feed).await {
            KelChange::Changed(did) => changed.push(did),
            KelChange::CaughtUp(at) if at >= instant => return changed,
            KelChange::CaughtUp(_) => {}
            KelChange::Gap => panic!("an unexpected gap"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reports_other_writers_appends_and_its_own_gaps() {
    // `None` outside CI when PostgreSQL is not installed (`PgServer::start` printed a SKIP).
    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let open = || async {
        PgStore::connect(server.url(&database).parse().unwrap(), &PgConfig::default())
            .await
            .unwrap()
    };
    let reader = open().await;
    let writer = open().await;
    let mut feed = reader.kel_change_feed(Duration::from_millis(20)).await.unwrap().unwrap();
    assert_eq!(next(&mut feed).await, KelChange::Gap, "a new feed starts with a gap");
    assert_eq!(changes_until_caught_up(&mut feed, Instant::now()).await, Vec::<String>::new());

    // Another node's inception and rotation, each reported before the next proof.
    let keys = keys(3);
    let mut id = incept(&keys, "feed");
    writer.append_kel_event(id.inception()).await.unwrap();
    let committed = Instant::now();
    assert_eq!(changes_until_caught_up(&mut feed, committed).await, vec![id.did.clone()]);
    let event = rotation(&id, &keys, 1, 2, "feed-rotated");
    writer.append_kel_event(id.accept(event.clone())).await.unwrap();
    id.push(event);
    let committed = Instant::now();
    assert_eq!(changes_until_caught_up(&mut feed, committed).await, vec![id.did.clone()]);

    // The listening session is cut off: the next reports are a gap, then catching up again.
    let ended = server
        .psql_in(
            &database,
            // With a timeout, the call waits until the session has ended.
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN %atp_kel_changed%'",
        )
        .unwrap();
    assert_eq!(ended.trim(), "1", "one listening session");
    let cut = Instant::now();
    loop {
        match next(&mut feed).await {
            KelChange::Gap => break,
            KelChange::CaughtUp(at) => {
                assert!(at < cut, "a proof of catching up across the lost session")
            }
            KelChange::Changed(did) => panic!("no change was made, yet {did} was reported"),
        }
    }
    assert_eq!(changes_until_caught_up(&mut feed, Instant::now()).await, Vec::<String>::new());
}
