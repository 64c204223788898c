//! The real `atp-node` binary (built with `--features ha`) on a real PostgreSQL server (Debian's
//! package, started here in a temporary directory on 127.0.0.1), as a cluster: three node
//! processes with one identity share one database (tests/node/enterprise_ha/cluster.rs); the
//! database fails under the nodes (failover.rs); the SDK spreads its calls over the nodes and
//! passes over a dead one (sdk.rs); a node with another identity is refused; a node without a
//! writable database does not start.
//!
//! Without PostgreSQL the test fails under `CI=true` and is skipped loudly otherwise. Every wait
//! has a deadline; the nodes are killed on drop.
#![cfg(all(unix, feature = "ha"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{BIN, Proc, spawn_announcing};
use atp_grpc::v1 as pb;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use atp_test_node::postgres::{Durability, PgServer};
use tonic::transport::Channel;

/// A node on `[ha]` with the given hosts; returns it, its DID and a channel to it.
async fn start_node(dir: &Path, hosts: &[String], database: &str) -> (Proc, String, Channel) {
    let (proc, did, channel, _) = start_node_with(dir, hosts, database, "").await;
    (proc, did, channel)
}

/// As [`start_node`], with more lines for the `[ha]` section; also returns the address.
async fn start_node_with(
    dir: &Path,
    hosts: &[String],
    database: &str,
    more: &str,
) -> (Proc, String, Channel, String) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("node.toml");
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    std::fs::write(
        &config,
        format!(
            "[ha]\nhosts = [{}]\ndatabase = \"{database}\"\nuser = \"postgres\"\n\
             connect_timeout_ms = 2000\n{more}",
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
        .args(["--log", "warn", "--checkpoint-interval", "200ms"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(dir.join("node.stderr")).unwrap());
    let (proc, announced) = spawn_announcing(cmd, &["node DID: ", "listening: "]).await;
    let channel = Channel::from_shared(format!("http://{}", announced[1]))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    (proc, announced[0].clone(), channel, announced[1].clone())
}

/// Gives the node in `to` the identity of the node in `from`: every node of a cluster shares
/// one (docs/ha.md).
fn copy_identity(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("data")).unwrap();
    for file in ["node.key", "node.next.key", "node.kel.json"] {
        std::fs::copy(from.join("data").join(file), to.join("data").join(file)).unwrap();
    }
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

#[path = "enterprise_ha/cluster.rs"]
mod cluster;
#[path = "enterprise_ha/failover.rs"]
mod failover;
#[path = "enterprise_ha/fencing.rs"]
mod fencing;
#[path = "enterprise_ha/sdk.rs"]
mod sdk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_identity_is_refused() {
    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hosts = vec![closed_port(), format!("127.0.0.1:{}", server.port())];
    // Nothing listens on the first host: the node passes over it to the second.
    let (_a, did_a, channel_a) = start_node(&tmp.path().join("a"), &hosts, &database).await;
    assert_eq!(count(&server, &database, "SELECT COUNT(*) FROM identities"), 1);
    assert!(resolves(&channel_a, &did_a).await);
    // A well-formed DID that nobody stored (the last scid character changed).
    let mut unknown = did_a.clone();
    let last = unknown.pop().unwrap();
    unknown.push(if last == 'a' { 'b' } else { 'a' });
    assert!(!resolves(&channel_a, &unknown).await);

    // A node with an identity of its own: refused before it serves, with what to do.
    let dir = tmp.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[ha]\nhosts = [\"127.0.0.1:{}\"]\ndatabase = \"{database}\"\nuser = \"postgres\"\n",
            server.port()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("belongs to the cluster with identity {did_a}")), "{stderr}");
    assert!(stderr.contains("node.kel.json"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
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

    // Plaintext to a host off loopback without allow_plaintext is a configuration error (exit
    // 2 or 1 with the key named), before any connection.
    std::fs::write(
        &config,
        "[ha]\nhosts = [\"10.1.2.3:5432\"]\ndatabase = \"atp\"\nuser = \"atp\"\n\
         tls = \"disable\"\n",
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
