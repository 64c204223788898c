//! A real ATP node in-process, for integration tests.
//!
//! [`TestNode::start`] wires the node the way `atp-node` does: the SQLite store in a temporary
//! directory, the node's own `did:atp` identity (a fresh ML-DSA-65 + Ed25519 key, its inception
//! stored through the same path as any submitted event), the first signed checkpoint, the
//! checkpointer, and every gRPC service and HTTP route of `atp-server` on one `127.0.0.1:0`
//! listener (plain HTTP/2, or TLS with [`NodeOptions::tls`]). Nothing is mocked.
//!
//! The node stops when the [`TestNode`] is dropped; [`TestNode::stop`] also waits for the
//! server task and closes the store, for tests that check a clean shutdown. Test-support only:
//! the workspace's tidy test allows this crate only as a dev-dependency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atp_core::kel;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_server::tls::TlsSettings;
use atp_server::{AppState, Extensions, NodeState, ServerSettings};
use atp_store::{SqliteStore, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub mod hostile;
pub mod postgres;

/// The admin bearer token of a node started with the default [`NodeOptions`].
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The timestamp of the node's own inception unless [`NodeOptions::inception_time`] says
/// otherwise.
pub const DEFAULT_INCEPTION_TIME: &str = "2026-01-01T00:00:00Z";

/// How long [`TestNode::stop`] waits for the server task; a hang fails the test instead of
/// stalling it.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The workspace root (where `README.md`, `proto/` and `node_modules/` are), for tests that
/// read the repository's files or run its scripts.
///
/// Two levels above the manifest of the package under test (cargo sets `CARGO_MANIFEST_DIR`
/// when it runs a test); the path compiled into this crate is only the fallback, since cargo
/// may reuse this crate's build from a clone at another path (see `atp_test_vectors`).
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), Into::into);
    manifest.join("../..")
}

/// A fresh composite (ML-DSA-65 + Ed25519) signing key.
///
/// # Panics
/// When the operating system's random source fails.
pub fn composite_key() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("a composite key from the OS RNG")
}

/// How to start a [`TestNode`]. `NodeOptions::default()` is the community node with
/// [`ADMIN_TOKEN`], checkpoints every 100 ms and the server's default limits.
pub struct NodeOptions {
    /// The server's limits and schedules (checkpoint interval, trust recomputation, ...).
    pub settings: ServerSettings,
    /// The extension seam; `None` is the community edition accepting [`ADMIN_TOKEN`].
    pub extensions: Option<Extensions>,
    /// Runs the checkpointer task and signs the first checkpoint before the node serves.
    pub checkpointer: bool,
    /// Serves TLS with these settings instead of plain HTTP/2.
    pub tls: Option<TlsSettings>,
    /// The clock the node reads (Unix milliseconds); `None` is the system clock.
    pub clock: Option<atp_server::state::Clock>,
    /// The `dt` of the node's own inception (RFC 3339).
    pub inception_time: String,
    /// The store the node serves from; `None` is a fresh SQLite store in the node's temporary
    /// data directory. The node closes it on [`TestNode::stop`].
    pub store: Option<Arc<dyn Store>>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            settings: ServerSettings {
                checkpoint_interval: Duration::from_millis(100),
                ..ServerSettings::default()
            },
            extensions: None,
            checkpointer: true,
            tls: None,
            clock: None,
            inception_time: DEFAULT_INCEPTION_TIME.to_owned(),
            store: None,
        }
    }
}

/// A running node. Dropping it stops the server and the checkpointer.
pub struct TestNode {
    /// The listening address (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    /// `http://` (or `https://` with TLS) and the address.
    pub url: String,
    /// The node's own DID.
    pub did: String,
    /// The node's shared state: its store, key, limits and extensions.
    pub state: AppState,
    stop: Option<watch::Sender<bool>>,
    server: Option<JoinHandle<atp_server::error::Result<()>>>,
    data_dir: tempfile::TempDir,
}

impl TestNode {
    /// The node's data directory (its SQLite database when no other store was given).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// The default node ([`NodeOptions::default`]).
    ///
    /// # Panics
    /// When any step of the start fails: the test cannot proceed without its node.
    pub async fn start() -> TestNode {
        TestNode::start_with(NodeOptions::default()).await
    }

    /// A node started with `options`.
    ///
    /// # Panics
    /// When any step of the start fails: the test cannot proceed without its node.
    pub async fn start_with(options: NodeOptions) -> TestNode {
        let data_dir = tempfile::tempdir().expect("a temporary data directory");
        let store: Arc<dyn Store> = match options.store {
            Some(store) => store,
            None => {
                Arc::new(SqliteStore::open(data_dir.path()).await.expect("the SQLite store opens"))
            }
        };
        let node_key = composite_key();
        let next_key = composite_key();
        let inception =
            kel::incept(&node_key, next_key.public_key_ref(), vec![], &options.inception_time)
                .expect("the node's inception");
        let did = format!(
            "{}{}",
            kel::DID_ATP_PREFIX,
            inception.event.scid().expect("an inception has a scid")
        );
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the listener's address");
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let extensions =
            options.extensions.unwrap_or_else(|| Extensions::community(|t: &str| t == ADMIN_TOKEN));
        let mut state = NodeState::new(
            store,
            Arc::new(node_key),
            did.clone(),
            format!("atp-test-node/{}", did.trim_start_matches(kel::DID_ATP_PREFIX)),
            url.clone(),
            options.settings,
            extensions,
        );
        if let Some(clock) = options.clock {
            state.clock = clock;
        }
        let state: AppState = Arc::new(state);
        atp_server::serve::ensure_kel(&state, &[inception])
            .await
            .expect("the node's KEL is stored");

        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        if options.checkpointer {
            atp_server::checkpointer::sign_now(&state).await.expect("the first checkpoint");
            tokio::spawn(atp_server::checkpointer::run(state.clone(), stopped(stop_rx.clone())));
        }
        let server = match options.tls {
            None => tokio::spawn(atp_server::serve::serve_with_incoming_shutdown(
                state.clone(),
                listener,
                stopped(stop_rx),
            )),
            Some(settings) => {
                let tls = atp_server::tls::server_config(&settings).expect("the TLS settings");
                tokio::spawn(atp_server::serve::serve_tls_with_incoming_shutdown(
                    state.clone(),
                    listener,
                    tls,
                    stopped(stop_rx),
                ))
            }
        };
        TestNode { addr, url, did, state, stop: Some(stop), server: Some(server), data_dir }
    }

    /// A new plain HTTP/2 channel to the node.
    ///
    /// # Panics
    /// When the node does not accept the connection.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("the node's URL")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("the node accepts a connection")
    }

    /// Stops the node and waits for it: the server task must end cleanly within
    /// [`STOP_DEADLINE`], then the store is closed (its last writes flushed).
    ///
    /// # Panics
    /// When the server does not stop in time or ends with an error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(STOP_DEADLINE, server)
                .await
                .expect("the node stops within the deadline")
                .expect("the server task does not panic")
                .expect("the server ends without an error");
        }
        self.state.store.close().await.expect("the store closes");
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// The stable reason code of a gRPC status (`<no reason: ...>` when it has none).
pub fn reason(status: &tonic::Status) -> String {
    atp_grpc::status::reason(status).unwrap_or_else(|| format!("<no reason: {status:?}>"))
}

/// `message` with `authorization: Bearer <token>` metadata.
///
/// # Panics
/// When `token` is not valid ASCII metadata.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("the token is ASCII metadata"),
    );
    request
}
