//! A real node in-process for the CLI tests: the SQLite store in a temporary directory, the
//! node's own `did:atp` identity, every gRPC service and the HTTP routes of `atp-server` on
//! 127.0.0.1:0, and the checkpointer (every 100 ms), wired as `atp-node` wires them.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atp_core::kel;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_server::{AppState, Extensions, ServerLimits};
use atp_store::{SqliteStore, Store};

pub const ADMIN_TOKEN: &str = "cli-test-admin-token";

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
    start_node_with(|t: &str| t == ADMIN_TOKEN).await
}

/// A node whose admin-token check is `verify_admin_token` (the bearer token without `Bearer `).
pub async fn start_node_with(
    verify_admin_token: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> TestNode {
    start_node_with_extensions(Extensions::community(verify_admin_token)).await
}

/// A node with the given extension seam (say an authorizer with a role policy).
pub async fn start_node_with_extensions(extensions: Extensions) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("node key");
    let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("node next key");
    let icp = kel::incept(&key, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z")
        .expect("node inception");
    let did = format!("{}{}", kel::DID_ATP_PREFIX, icp.event.scid().expect("scid"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits =
        ServerLimits { checkpoint_interval: Duration::from_millis(100), ..ServerLimits::default() };
    let state: AppState = Arc::new(atp_server::NodeState::new(
        store,
        Arc::new(key),
        did.clone(),
        format!("atp-cli-test/{did}"),
        format!("http://{addr}"),
        limits,
        extensions,
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

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
