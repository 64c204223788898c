//! A real node on 127.0.0.1:0: temp data dir, SqliteStore, the served routes, the checkpointer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, VerifierKey, verify_note_with};
use atp_core::kel::{self, SignedEvent};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use atp_server::{AppState, Extensions, NodeState, ServerLimits};
use atp_store::{SqliteStore, Store};
use tonic::transport::Channel;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestNode {
    pub addr: SocketAddr,
    pub state: AppState,
    pub channel: Channel,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    server: Option<tokio::task::JoinHandle<atp_server::error::Result<()>>>,
    _dir: tempfile::TempDir,
}

pub fn key() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key")
}

impl TestNode {
    pub async fn start() -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
        let node_key = key();
        let next = key();
        let icp = kel::incept(&node_key, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z")
            .expect("incept");
        let did = format!("did:atp:{}", icp.event.scid().expect("scid"));
        let limits = ServerLimits {
            checkpoint_interval: Duration::from_millis(50),
            ..ServerLimits::default()
        };
        let state: AppState = Arc::new(NodeState::new(
            store,
            Arc::new(node_key),
            did.clone(),
            format!("atp-node/{}", did.trim_start_matches("did:atp:")),
            "http://127.0.0.1".to_owned(),
            limits,
            Extensions::community(|t: &str| t == ADMIN_TOKEN),
        ));
        atp_server::serve::ensure_kel(&state, &[icp]).await.expect("node kel");
        atp_server::checkpointer::sign_now(&state).await.expect("first checkpoint");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(atp_server::checkpointer::run(state.clone(), stopped(rx.clone())));
        let server = tokio::spawn(atp_server::serve::serve_with_incoming_shutdown(
            state.clone(),
            listener,
            stopped(rx),
        ));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        TestNode { addr, state, channel, stop: Some(stop), server: Some(server), _dir: dir }
    }

    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel.clone())
    }

    pub fn log(&self) -> LogServiceClient<Channel> {
        LogServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// (log size, identity count) straight from the store.
    pub async fn counts(&self) -> (u64, u64) {
        let s = self.state.store.stats().await.expect("stats");
        (s.log_size, s.identities)
    }

    pub async fn submit(
        &self,
        event: &SignedEvent,
    ) -> Result<pb::SubmitEventResponse, tonic::Status> {
        let json = event.canonical_bytes().expect("json");
        self.submit_bytes(json).await
    }

    pub async fn submit_bytes(
        &self,
        json: Vec<u8>,
    ) -> Result<pb::SubmitEventResponse, tonic::Status> {
        self.identity()
            .submit_event(pb::SubmitEventRequest { signed_event_json: json })
            .await
            .map(|r| r.into_inner())
    }

    /// The checkpoint verifier keys from GetNodeInfo and the origin.
    pub async fn verifier(&self) -> (VerifierKey, VerifierKey, String) {
        let info =
            self.admin().get_node_info(pb::GetNodeInfoRequest {}).await.expect("info").into_inner();
        let keys: Vec<VerifierKey> = info
            .checkpoint_verifier_keys
            .iter()
            .map(|k| VerifierKey::from_vkey(k).expect("vkey"))
            .collect();
        assert_eq!(keys.len(), 2);
        let ed =
            keys.iter().find(|k| k.public_key().algorithm() == AlgorithmId::Ed25519).expect("ed");
        let ml =
            keys.iter().find(|k| k.public_key().algorithm() == AlgorithmId::MlDsa65).expect("ml");
        (ed.clone(), ml.clone(), info.log_origin)
    }

    /// Polls GetCheckpoint until a verified checkpoint covers `size` leaves (no timing claim:
    /// only a generous upper bound so that a broken checkpointer fails the test).
    pub async fn checkpoint_covering(&self, size: u64) -> (Checkpoint, String) {
        let (ed, ml, origin) = self.verifier().await;
        for _ in 0..600 {
            if let Ok(r) = self.log().get_checkpoint(pb::GetCheckpointRequest {}).await {
                let note = String::from_utf8(r.into_inner().checkpoint_note).expect("utf-8");
                let cp = verify_note_with(&note, &ed, &ml).expect("checkpoint verifies");
                assert_eq!(cp.origin, origin);
                if cp.size >= size {
                    return (cp, note);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no checkpoint covering {size} leaves");
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("server result");
        }
        self.state.store.close().await.expect("close");
    }
}

/// The reason code of a status.
pub fn reason(status: &tonic::Status) -> String {
    atp_grpc::status::reason(status).unwrap_or_else(|| format!("<no reason: {status:?}>"))
}
