//! Fencing with real processes: the checkpoint signer is held up after it took its lease and
//! before it wrote, until its lease expired and another node took the lease over. When it
//! resumes, its write is refused by its stale epoch, and the new holder's is stored.
//!
//! How the signer is held up: a test session locks the `checkpoints` table. The holder renews
//! its lease (a row of `leases`, not blocked) and then waits on the lock, reading the latest
//! checkpoint, with the lease in hand, exactly as a paused process would. The database ending
//! the holder's session (`pg_terminate_backend`) would instead fail its statement, and it would
//! write nothing at all; with a lease that is a row, a lost session takes nothing away from the
//! holder, so what fencing must stop is the write of a holder that lost its lease while it
//! waited (docs/ha.md, "Singletons under a lease, with fencing").

use std::time::Instant;

use atp_core::kel;
use atp_crypto::{AlgorithmId, SigningKey};

use super::*;

/// The checkpoint lease's TTL in this test: long enough that the new holder, which also waits
/// on the lock after it took the lease, still holds it when the lock is released, and short
/// enough that the old holder's wait stays within the statement timeout (10 s).
const LEASE_TTL: Duration = Duration::from_millis(3000);

/// One query's single value.
fn value(server: &PgServer, database: &str, sql: &str) -> String {
    server.psql_in(database, sql).unwrap().trim().to_owned()
}

/// The checkpoint lease's holder and epoch.
fn checkpoint_lease(server: &PgServer, database: &str) -> (String, u64) {
    let row = value(
        server,
        database,
        "SELECT holder || ' ' || epoch FROM leases WHERE name = 'checkpoint-signer'",
    );
    let (holder, epoch) = row.rsplit_once(' ').unwrap_or(("", "0"));
    (holder.to_owned(), epoch.parse().unwrap_or(0))
}

/// Polls `done` every 50 ms until it holds, failing after `within`.
async fn eventually(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One fresh inception through `channel`: the log grows by one leaf.
async fn grow_the_log(channel: &Channel) {
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let event = kel::incept(&key, next.public_key_ref(), vec![], "2026-04-01T00:00:00Z").unwrap();
    let req = pb::SubmitEventRequest { signed_event_json: event.canonical_bytes().unwrap() };
    IdentityServiceClient::new(channel.clone()).submit_event(req).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_that_lost_its_lease_while_held_up_cannot_write() {
    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hosts = vec![format!("127.0.0.1:{}", server.port())];
    let more = format!("lease_ttl_ms = {}\n", LEASE_TTL.as_millis());
    let dirs: Vec<_> = ["a", "b"].iter().map(|n| tmp.path().join(n)).collect();
    let (_a, _, channel, _) = start_node_with(&dirs[0], &hosts, &database, &more).await;
    copy_identity(&dirs[0], &dirs[1]);
    let (_b, _, _, _) = start_node_with(&dirs[1], &hosts, &database, &more).await;

    // A first checkpoint: one node holds the lease.
    grow_the_log(&channel).await;
    let checkpoints =
        |server: &PgServer| value(server, &database, "SELECT COUNT(*) FROM checkpoints");
    eventually(Duration::from_secs(10), "a first checkpoint", || checkpoints(&server) != "0").await;
    let (old_holder, old_epoch) = checkpoint_lease(&server, &database);
    assert!(!old_holder.is_empty() && old_epoch >= 1);
    let stored_before = checkpoints(&server);

    // The table is locked, the log grows: the holder renews its lease and waits on the lock.
    let mut lock = server.session(&database).unwrap();
    tokio::task::block_in_place(|| {
        lock.run("BEGIN; LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE;").unwrap()
    });
    grow_the_log(&channel).await;
    let waiting = format!(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{database}' \
         AND wait_event_type = 'Lock'"
    );
    eventually(Duration::from_secs(5), "the holder waits on the lock", || {
        value(&server, &database, &waiting) != "0"
    })
    .await;

    // Its lease expires while it waits; the other node takes it at the next epoch (and waits
    // on the lock too).
    eventually(LEASE_TTL * 3, "the other node takes the lease", || {
        checkpoint_lease(&server, &database).0 != old_holder
    })
    .await;
    let (new_holder, new_epoch) = checkpoint_lease(&server, &database);
    assert!(new_epoch > old_epoch, "a new holder gets a new epoch");

    // Both go on. The old holder's write is refused by its stale epoch; the new holder's lands.
    tokio::task::block_in_place(|| lock.run("ROLLBACK;").unwrap());
    drop(lock);
    let refusal = format!("lease checkpoint-signer is no longer held by {old_holder} at epoch");
    let stderr = |dir: &Path| std::fs::read_to_string(dir.join("node.stderr")).unwrap_or_default();
    eventually(Duration::from_secs(10), "the old holder's write is refused", || {
        dirs.iter().any(|dir| stderr(dir).contains(&refusal))
    })
    .await;
    eventually(Duration::from_secs(10), "the new holder stores a checkpoint", || {
        checkpoints(&server) != stored_before
    })
    .await;
    let refused_on: Vec<_> = dirs.iter().filter(|dir| stderr(dir).contains(&refusal)).collect();
    assert_eq!(refused_on.len(), 1, "one node was the old holder");
    assert!(
        dirs.iter().all(|dir| !stderr(dir).contains(&format!("no longer held by {new_holder}"))),
        "the new holder's write was not refused"
    );
    assert_eq!(checkpoint_lease(&server, &database), (new_holder, new_epoch));
    eprintln!("fencing: epoch {old_epoch} refused after epoch {new_epoch} took over");
}
