//! The real `atp-node` binary (built with `--features ha`) on a real PostgreSQL server (Debian's
//! package, started here in a temporary directory on 127.0.0.1): two node processes with their
//! own data directories share one database. Each stores its own identity there at start, and
//! each resolves the other's through the shared store; a node finds the writable server when
//! the first listed host does not answer; the log the two share is one log.
//!
//! Without PostgreSQL the test fails under `CI=true` and is skipped loudly otherwise. Every wait
//! has a deadline; the nodes are killed on drop.
#![cfg(all(unix, feature = "ha"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use atp_grpc::v1 as pb;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use atp_test_node::postgres::{Durability, PgServer};
use support::{BIN, Proc, spawn_announcing};
use tonic::transport::Channel;

/// A node on `[ha]` with the given hosts; returns it, its DID and a channel to it.
async fn start_node(dir: &Path, hosts: &[String], database: &str) -> (Proc, String, Channel) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("node.toml");
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    std::fs::write(
        &config,
        format!(
            "[ha]\nhosts = [{}]\ndatabase = \"{database}\"\nuser = \"postgres\"\n\
             connect_timeout_ms = 2000\n",
            hosts.join(", ")
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(dir.join("node.stderr")).unwrap());
    let (proc, announced) = spawn_announcing(cmd, &["node DID: ", "listening: "]).await;
    let channel =
        Channel::from_shared(format!("http://{}", announced[1])).unwrap().connect().await.unwrap();
    (proc, announced[0].clone(), channel)
}

async fn resolves(channel: &Channel, did: &str) -> bool {
    let answer = IdentityServiceClient::new(channel.clone())
        .resolve(pb::ResolveRequest { did: did.to_owned(), version_id: None })
        .await;
    match answer {
        Ok(r) => r.into_inner().did_document_json.contains(did),
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
            false
        }
    }
}

/// A loopback `host:port` where nothing listens (bound, then released).
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn count(server: &PgServer, database: &str, sql: &str) -> u64 {
    let out = server.psql_in(database, sql).unwrap();
    out.trim().parse().unwrap_or_else(|_| panic!("{sql}: {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_store_on_postgresql() {
    let Some(server) = PgServer::start(Durability::Full) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on the first host: the node passes over it to the second.
    let closed = closed_port();
    let hosts = vec![closed, format!("127.0.0.1:{}", server.port())];

    let (_a, did_a, channel_a) = start_node(&tmp.path().join("a"), &hosts, &database).await;
    assert_eq!(count(&server, &database, "SELECT COUNT(*) FROM identities"), 1);
    let (_b, did_b, channel_b) = start_node(&tmp.path().join("b"), &hosts, &database).await;
    assert_ne!(did_a, did_b);
    assert_eq!(count(&server, &database, "SELECT COUNT(*) FROM identities"), 2);

    // Each node resolves the other's identity: the state is in the database, not the node.
    assert!(resolves(&channel_a, &did_b).await, "node A does not see node B's identity");
    assert!(resolves(&channel_b, &did_a).await, "node B does not see node A's identity");
    // A well-formed DID that neither node stored (the last scid character changed).
    let mut unknown = did_a.clone();
    let last = unknown.pop().unwrap();
    unknown.push(if last == 'a' { 'b' } else { 'a' });
    assert!(!resolves(&channel_a, &unknown).await);

    // One log: both nodes report the same size, and its leaves are contiguous.
    let size = |channel: &Channel| {
        let mut client = LogServiceClient::new(channel.clone());
        async move {
            let cp = client.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap();
            let note = String::from_utf8(cp.into_inner().checkpoint_note).unwrap();
            // The note's body: origin, then the tree size.
            note.lines().nth(1).unwrap().parse::<u64>().unwrap()
        }
    };
    let leaves = count(&server, &database, "SELECT COUNT(*) FROM tlog_leaves");
    let max = count(&server, &database, "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM tlog_leaves");
    assert_eq!(leaves, max, "the leaf indices have a gap");
    assert!(leaves >= 2, "each node's inception is a leaf");
    let head = count(&server, &database, "SELECT size FROM tlog_head");
    assert_eq!(head, leaves);
    let (size_a, size_b) = (size(&channel_a).await, size(&channel_b).await);
    assert!(size_a <= leaves && size_b <= leaves && size_b >= 2, "{size_a} {size_b} {leaves}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_without_a_writable_database() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = closed_port();
    let config = tmp.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[ha]\nhosts = [\"{closed}\"]\ndatabase = \"atp\"\nuser = \"atp\"\n\
             connect_timeout_ms = 1000\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no writable PostgreSQL primary"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));

    // A host off loopback without allow_plaintext is a configuration error (exit 2 or 1 with
    // the key named), before any connection.
    std::fs::write(
        &config,
        "[ha]\nhosts = [\"10.1.2.3:5432\"]\ndatabase = \"atp\"\nuser = \"atp\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow_plaintext"));
}
