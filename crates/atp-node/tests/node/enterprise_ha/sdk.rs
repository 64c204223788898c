//! The SDK over a cluster: agents given the three nodes' endpoints take turns over them, read
//! on every node what was written through any one, log in with a challenge that one node
//! issued and the next answered, and pass over a node killed with SIGKILL without an error
//! reaching the caller. A rotation through one node is read on every node once the caches'
//! staleness bound has passed.

use super::*;

/// Reads of `did`'s log through `reader`, enough for every endpoint to have had its turn
/// twice; each must have `events` events.
async fn every_node_reads(reader: &atp::Agent, did: &str, events: usize, nodes: usize) {
    for turn in 0..2 * nodes {
        let log = reader.key_event_log_of(did).await.unwrap_or_else(|e| panic!("read {turn}: {e}"));
        assert_eq!(log.len(), events, "read {turn} of {did}");
    }
}

/// The nodes' `kel_cache_max_staleness_ms`: a node's cached logs miss no append that
/// committed longer ago (docs/ha.md, "Cache coherence").
const STALENESS_MS: u64 = 250;

/// Waits until every append that committed before now is in every node's answers.
async fn past_the_staleness_bound() {
    tokio::time::sleep(Duration::from_millis(STALENESS_MS + 20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_takes_turns_over_the_nodes_and_passes_over_a_dead_one() {
    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hosts = vec![format!("127.0.0.1:{}", server.port())];
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    let mut nodes = Vec::new();
    let mut endpoints = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if i > 0 {
            copy_identity(&dirs[0], dir);
        }
        let staleness = format!("kel_cache_max_staleness_ms = {STALENESS_MS}\n");
        let (proc, _, _, addr) = start_node_with(dir, &hosts, &database, &staleness).await;
        nodes.push(proc);
        endpoints.push(format!("http://{addr}"));
    }
    let options = || {
        let mut o = atp::AgentOptions::new(&endpoints.join(","));
        o.home = Some(tmp.path().join("home"));
        o.node.unhealthy_for = Duration::from_secs(120);
        o
    };
    let alice = atp::Agent::connect_with(options(), "alice").await.unwrap();
    let bob = atp::Agent::connect_with(options(), "bob").await.unwrap();
    assert_eq!(alice.endpoints(), endpoints);

    // Bob's inception went through one node; every node serves it (and caches it).
    every_node_reads(&alice, &bob.did(), 1, 3).await;
    // A rotation through one node reaches the others' caches within the bound (their feeds).
    bob.rotate().await.unwrap();
    past_the_staleness_bound().await;
    every_node_reads(&alice, &bob.did(), 2, 3).await;
    // Each login's challenge comes from one node and its answer goes to the next in turn: the
    // challenge is known to the whole cluster through the store.
    for turn in 0..6 {
        alice.authenticate("atp-ha-test").await.unwrap_or_else(|e| panic!("login {turn}: {e}"));
    }
    assert!(alice.unhealthy_endpoints().is_empty(), "{:?}", alice.unhealthy_endpoints());

    // Node b dies. The calls whose turn it is fail over to another node within the call.
    drop(nodes.remove(1));
    every_node_reads(&alice, &bob.did(), 2, 3).await;
    assert_eq!(alice.unhealthy_endpoints(), [endpoints[1].clone()]);
    bob.rotate().await.unwrap();
    past_the_staleness_bound().await;
    every_node_reads(&alice, &bob.did(), 3, 3).await;
    for turn in 0..4 {
        alice.authenticate("atp-ha-test").await.unwrap_or_else(|e| panic!("login {turn}: {e}"));
    }
    eprintln!("sdk: {} endpoints, {:?} passed over after its node's SIGKILL", 3, endpoints[1]);
}
