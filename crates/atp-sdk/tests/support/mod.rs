//! A real node in-process for the SDK tests: the SQLite store in a temporary directory, the
//! node's own `did:atp` identity, every gRPC service and the HTTP routes of `atp-server` on
//! 127.0.0.1:0, and the checkpointer (every 100 ms), wired as `atp-node` wires them, except that
//! trust snapshots are computed only on demand (`atp_server::trust::recompute_now`).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atp_core::kel;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_server::{AppState, Extensions, ServerLimits};
use atp_store::{SqliteStore, Store};

pub const ADMIN_TOKEN: &str = "sdk-test-admin-token";

pub struct TestNode {
    pub url: String,
    pub did: String,
    pub state: AppState,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    _dir: tempfile::TempDir,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

pub async fn start_node() -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("node key");
    let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("node next key");
    let icp = kel::incept(&key, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z")
        .expect("node inception");
    let did = format!("{}{}", kel::DID_ATP_PREFIX, icp.event.scid().expect("scid"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // No scheduled trust computation: tests publish snapshots with `recompute_now`, so what they
    // read is the snapshot they computed.
    let limits = ServerLimits {
        checkpoint_interval: Duration::from_millis(100),
        trust_recompute_interval: Duration::ZERO,
        ..ServerLimits::default()
    };
    let state: AppState = Arc::new(atp_server::NodeState::new(
        store,
        Arc::new(key),
        did.clone(),
        format!("atp-sdk-test/{did}"),
        format!("http://{addr}"),
        limits,
        Extensions::community(|t: &str| t == ADMIN_TOKEN),
    ));
    atp_server::serve::ensure_kel(&state, &[icp]).await.expect("node KEL");
    atp_server::checkpointer::sign_now(&state).await.expect("first checkpoint");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(atp_server::checkpointer::run(state.clone(), stopped(stop_rx.clone())));
    tokio::spawn(atp_server::serve::serve_with_incoming_shutdown(
        state.clone(),
        listener,
        stopped(stop_rx),
    ));
    TestNode { url: format!("http://{addr}"), did, state, stop: Some(stop), _dir: dir }
}

/// Options for an agent whose keys live under `home`.
pub fn options(node: &TestNode, home: &Path) -> atp::AgentOptions {
    let mut o = atp::AgentOptions::new(&node.url);
    o.home = Some(home.to_path_buf());
    o
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
