//! A real node on 127.0.0.1:0 (`atp-test-node`: temp data dir, SqliteStore, the served routes,
//! the checkpointer every 50 ms) with one connected channel and the helpers these tests share.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, VerifierKey, verify_note_with};
use atp_core::kel::SignedEvent;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use atp_server::ServerSettings;
use atp_test_node::NodeOptions;
pub use atp_test_node::{ADMIN_TOKEN, reason};
use tonic::transport::Channel;

pub struct TestNode {
    pub node: atp_test_node::TestNode,
    pub channel: Channel,
}

impl std::ops::Deref for TestNode {
    type Target = atp_test_node::TestNode;
    fn deref(&self) -> &Self::Target {
        &self.node
    }
}

pub fn key() -> SigningKey {
    atp_test_node::composite_key()
}

impl TestNode {
    pub async fn start() -> TestNode {
        let settings = ServerSettings {
            checkpoint_interval: Duration::from_millis(50),
            ..ServerSettings::default()
        };
        let node =
            atp_test_node::TestNode::start_with(NodeOptions { settings, ..NodeOptions::default() })
                .await;
        let channel = node.channel().await;
        TestNode { node, channel }
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

    pub async fn stop(self) {
        self.node.stop().await;
    }
}
