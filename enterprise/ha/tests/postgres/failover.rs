//! `PgStore` following the primary when nothing was in flight at its loss: the store learns of
//! it only from the next requests, which find no connection (sqlx retries a refused
//! connection until the acquire timeout and reports only the timeout). They must start the
//! search that finds the promoted standby.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use atp_enterprise_ha::{PgConfig, PgStore};
use atp_store::Store;
use atp_test_node::postgres::{Durability, PgServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_store_finds_the_promoted_standby() {
    // `None` outside CI when PostgreSQL is not installed (`PgServer::start` printed a SKIP).
    let Some(primary) = PgServer::start(Durability::Relaxed) else { return };
    let database = primary.create_database().unwrap();
    let standby = primary.start_standby().unwrap();
    // Every commit, the migrations among them, is on the standby before it is answered.
    primary.require_synchronous_standby().unwrap();
    let config = PgConfig { acquire_timeout: Duration::from_secs(1), ..PgConfig::default() };
    let hosts =
        vec![primary.url(&database).parse().unwrap(), standby.url(&database).parse().unwrap()];
    let store = PgStore::connect_any(hosts, &config).await.unwrap();
    let held = store.acquire_lease("test".into(), "node-a".into(), 60_000).await.unwrap();
    assert_eq!(held.map(|l| l.epoch), Some(1));

    // Idle: no request is in flight when the primary is lost and the standby promoted.
    primary.crash().unwrap();
    standby.promote().unwrap();
    let lost = Instant::now();
    let deadline = lost + Duration::from_secs(30);
    let mut failures = 0;
    while let Err(e) = store.log_size().await {
        failures += 1;
        assert!(
            Instant::now() < deadline,
            "the store did not find the promoted standby within 30 s ({failures} failures, \
             the last: {e})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The promoted standby has the acknowledged lease and takes writes.
    let again = store.acquire_lease("test".into(), "node-a".into(), 60_000).await.unwrap();
    assert_eq!(again.map(|l| l.epoch), Some(1), "the lease renewed at the same epoch");
    eprintln!("failover: an idle store served again {:?} after the loss", lost.elapsed());
}
