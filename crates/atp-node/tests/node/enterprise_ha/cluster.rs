//! Three nodes, one identity, one PostgreSQL: concurrent writers through every node, then the
//! checkpoint signer killed with SIGKILL under load.
//!
//! What it checks, in order:
//! - every acknowledged write resolves on every node, the log's leaves are contiguous, and the
//!   checkpoints every node serves verify under the one log key and are consistent with each
//!   other (consistency proofs checked here);
//! - one node at a time holds the checkpoint lease;
//! - after the holder's SIGKILL, another node holds it within the lease's TTL plus a round,
//!   checkpoints resume, no acknowledged write is lost, the writers on the surviving nodes
//!   never fail, and the checkpoints from before and after the kill are provably consistent.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use atp_core::checkpoint::{Checkpoint, VerifierKey, verify_note_with};
use atp_core::kel;
use atp_core::tlog::{Hash, verify_consistency};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1::admin_service_client::AdminServiceClient;

use super::*;

/// How long the writers write in each phase.
const PHASE: Duration = Duration::from_secs(3);
/// The checkpoint lease's TTL in this test.
const LEASE_TTL: Duration = Duration::from_millis(1500);

/// An acknowledged write: the DID and the leaf it was given.
#[derive(Clone, Debug)]
struct Ack {
    did: String,
    leaf_index: u64,
}

/// What one writer saw: its acknowledgements and its failures.
#[derive(Default)]
struct Tally {
    acks: Vec<Ack>,
    failures: u64,
}

fn composite() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap()
}

/// Submits fresh inceptions to one node until `until`; counts acknowledgements and failures.
async fn write_until(channel: Channel, until: Instant, tally: Arc<Mutex<Tally>>) {
    let mut client = IdentityServiceClient::new(channel);
    while Instant::now() < until {
        let (k, next) = (composite(), composite());
        let event = kel::incept(&k, next.public_key_ref(), vec![], "2026-04-01T00:00:00Z").unwrap();
        let did = format!("{}{}", kel::DID_ATP_PREFIX, event.event.scid().unwrap());
        let req = pb::SubmitEventRequest { signed_event_json: event.canonical_bytes().unwrap() };
        match client.submit_event(req).await {
            Ok(r) => {
                let r = r.into_inner();
                assert_eq!(r.did, did);
                let leaf_index = r.log_receipt.unwrap().leaf_index;
                tally.lock().unwrap().acks.push(Ack { did, leaf_index });
            }
            Err(_) => {
                tally.lock().unwrap().failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One writer per channel for `PHASE`; returns each writer's tally.
async fn write_phase(channels: &[Channel]) -> Vec<Tally> {
    let until = Instant::now() + PHASE;
    let tallies: Vec<_> = channels.iter().map(|_| Arc::new(Mutex::new(Tally::default()))).collect();
    let mut set = tokio::task::JoinSet::new();
    for (channel, tally) in channels.iter().zip(&tallies) {
        set.spawn(write_until(channel.clone(), until, tally.clone()));
    }
    set.join_all().await;
    tallies.into_iter().map(|t| std::mem::take(&mut *t.lock().unwrap())).collect()
}

/// The one log key and origin, from a node's GetNodeInfo.
async fn verifier(channel: &Channel) -> (VerifierKey, VerifierKey, String) {
    let info = AdminServiceClient::new(channel.clone())
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<VerifierKey> =
        info.checkpoint_verifier_keys.iter().map(|k| VerifierKey::from_vkey(k).unwrap()).collect();
    let pick = |alg| keys.iter().find(|k| k.public_key().algorithm() == alg).unwrap().clone();
    (pick(AlgorithmId::Ed25519), pick(AlgorithmId::MlDsa65), info.log_origin)
}

/// The node's latest checkpoint, verified under the one log key.
async fn checkpoint(channel: &Channel, key: &(VerifierKey, VerifierKey, String)) -> Checkpoint {
    let r = LogServiceClient::new(channel.clone())
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap();
    let note = String::from_utf8(r.into_inner().checkpoint_note).unwrap();
    let cp = verify_note_with(&note, &key.0, &key.1).expect("the checkpoint verifies");
    assert_eq!(cp.origin, key.2);
    cp
}

/// Polls until `channel` serves a checkpoint covering `size` leaves (bounded).
async fn checkpoint_covering(
    channel: &Channel,
    key: &(VerifierKey, VerifierKey, String),
    size: u64,
    deadline: Duration,
) -> Checkpoint {
    let until = Instant::now() + deadline;
    loop {
        let cp = checkpoint(channel, key).await;
        if cp.size >= size {
            return cp;
        }
        assert!(Instant::now() < until, "no checkpoint covering {size} leaves within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks, through `channel`, that the log at `new` extends the log at `old`.
async fn assert_consistent(channel: &Channel, old: &Checkpoint, new: &Checkpoint) {
    if old.size == 0 || old.size == new.size {
        assert!(old.size != new.size || old.root_hash == new.root_hash, "a fork at one size");
        return;
    }
    let proof = LogServiceClient::new(channel.clone())
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_tree_size: old.size,
            second_tree_size: new.size,
        })
        .await
        .unwrap()
        .into_inner();
    let path: Vec<Hash> =
        proof.consistency_path.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
    verify_consistency(old.size, new.size, &old.root_hash, &new.root_hash, &path)
        .expect("the later checkpoint extends the earlier one");
}

fn lease_holder(server: &PgServer, database: &str) -> String {
    server
        .psql_in(database, "SELECT holder FROM leases WHERE name = 'checkpoint-signer'")
        .unwrap()
        .trim()
        .to_owned()
}

fn assert_contiguous(server: &PgServer, database: &str) -> u64 {
    let leaves = count(server, database, "SELECT COUNT(*) FROM tlog_leaves");
    let max = count(server, database, "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM tlog_leaves");
    assert_eq!(leaves, max, "the leaf indices have a gap");
    assert_eq!(count(server, database, "SELECT size FROM tlog_head"), leaves);
    leaves
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_signs_one_log_and_survives_the_loss_of_its_signer() {
    let Some(server) = PgServer::start(Durability::Full) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hosts = vec![format!("127.0.0.1:{}", server.port())];
    let more = format!("lease_ttl_ms = {}\n", LEASE_TTL.as_millis());
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();

    let (a, did, channel_a, _) = start_node_with(&dirs[0], &hosts, &database, &more).await;
    copy_identity(&dirs[0], &dirs[1]);
    copy_identity(&dirs[0], &dirs[2]);
    let (b, did_b, channel_b, _) = start_node_with(&dirs[1], &hosts, &database, &more).await;
    let (c, did_c, channel_c, _) = start_node_with(&dirs[2], &hosts, &database, &more).await;
    assert_eq!((&did_b, &did_c), (&did, &did), "one cluster, one identity");
    let mut nodes = vec![(a, channel_a), (b, channel_b), (c, channel_c)];
    let channels: Vec<Channel> = nodes.iter().map(|(_, ch)| ch.clone()).collect();
    let key = verifier(&channels[0]).await;
    for channel in &channels[1..] {
        let other = verifier(channel).await;
        assert_eq!(
            (other.0.to_vkey(), other.1.to_vkey(), &other.2),
            (key.0.to_vkey(), key.1.to_vkey(), &key.2)
        );
    }

    // Phase 1: a writer on every node.
    let tallies = write_phase(&channels).await;
    let mut acks: Vec<Ack> = tallies.iter().flat_map(|t| t.acks.clone()).collect();
    assert!(tallies.iter().all(|t| t.failures == 0 && !t.acks.is_empty()), "every node wrote");
    let mut indices: Vec<u64> = acks.iter().map(|a| a.leaf_index).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), acks.len(), "two writes got the same leaf");
    let leaves = assert_contiguous(&server, &database);
    let covered = indices.last().unwrap() + 1;
    let before: Vec<Checkpoint> = {
        let mut cps = Vec::new();
        for channel in &channels {
            cps.push(checkpoint_covering(channel, &key, covered, Duration::from_secs(10)).await);
        }
        cps
    };
    for (i, x) in before.iter().enumerate() {
        for y in &before[i..] {
            let (old, new) = if x.size <= y.size { (x, y) } else { (y, x) };
            assert_consistent(&channels[0], old, new).await;
        }
    }
    for ack in acks.iter().step_by(7) {
        for channel in &channels {
            assert!(resolves(channel, &ack.did).await, "{} is missing on a node", ack.did);
        }
    }
    eprintln!(
        "phase 1: {} writes acknowledged through 3 nodes in {PHASE:?}, {leaves} leaves",
        acks.len()
    );

    // Trust is computed by one node: the holder of the trust lease, a process of this cluster,
    // stored the snapshot that the others load (docs/ha.md, "Trust recomputation").
    let trust_holder = server
        .psql_in(&database, "SELECT holder FROM leases WHERE name = 'trust-recompute'")
        .unwrap();
    let trust_holder = trust_holder.trim();
    assert!(
        nodes.iter().any(|(p, _)| trust_holder.contains(&format!("/{}/", p.0.id()))),
        "the trust lease holder {trust_holder:?} is none of the nodes"
    );
    assert!(count(&server, &database, "SELECT revision FROM trust_snapshot") >= 1);

    // The signer: one holder, a process of this cluster.
    let holder = lease_holder(&server, &database);
    let victim = nodes
        .iter()
        .position(|(p, _)| holder.contains(&format!("/{}/", p.0.id())))
        .unwrap_or_else(|| panic!("the lease holder {holder:?} is none of the nodes"));
    let (mut killed, _) = nodes.remove(victim);
    let last_before = checkpoint(&nodes[0].1, &key).await;
    killed.0.kill().unwrap();
    let _ = killed.0.wait();
    let killed_at = Instant::now();
    let survivors: Vec<Channel> = nodes.iter().map(|(_, ch)| ch.clone()).collect();

    // Phase 2: the survivors keep writing while the lease moves.
    let moved = {
        let server = &server;
        let database = &database;
        let holder = &holder;
        async move {
            loop {
                let now = lease_holder(server, database);
                if !now.is_empty() && now != *holder {
                    return (now, killed_at.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (tallies, (new_holder, moved_after)) = tokio::join!(write_phase(&survivors), moved);
    assert!(
        // The TTL, plus a checkpoint round (200 ms) and room for two shared cores.
        moved_after <= LEASE_TTL + Duration::from_secs(2),
        "the lease moved after {moved_after:?}, TTL {LEASE_TTL:?}"
    );
    assert!(tallies.iter().all(|t| t.failures == 0), "a surviving node failed a write");
    let after_acks: Vec<Ack> = tallies.iter().flat_map(|t| t.acks.clone()).collect();
    assert!(!after_acks.is_empty());
    acks.extend(after_acks);
    let covered = acks.iter().map(|a| a.leaf_index).max().unwrap() + 1;
    let after = checkpoint_covering(&survivors[0], &key, covered, Duration::from_secs(10)).await;
    assert_consistent(&survivors[0], &last_before, &after).await;
    let leaves = assert_contiguous(&server, &database);
    for ack in &acks {
        assert!(resolves(&survivors[1], &ack.did).await, "acknowledged {} was lost", ack.did);
    }
    eprintln!(
        "phase 2: signer {holder} killed; lease to {new_holder} after {moved_after:?}; \
         {} writes acknowledged in all, {leaves} leaves, checkpoint {} -> {}",
        acks.len(),
        last_before.size,
        after.size
    );
}

/// Cross-node replay: an envelope accepted by one node is refused as a replay by the two
/// others; a fresh one is accepted by whichever node sees it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_values_are_shared_by_the_nodes() {
    use atp_core::envelope::Envelope;
    use atp_grpc::v1::message_service_client::MessageServiceClient;

    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let hosts = vec![format!("127.0.0.1:{}", server.port())];
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    let (_a, did, channel_a, _) = start_node_with(&dirs[0], &hosts, &database, "").await;
    copy_identity(&dirs[0], &dirs[1]);
    copy_identity(&dirs[0], &dirs[2]);
    let (_b, _, channel_b, _) = start_node_with(&dirs[1], &hosts, &database, "").await;
    let (_c, _, channel_c, _) = start_node_with(&dirs[2], &hosts, &database, "").await;

    // A sender whose identity the cluster knows.
    let (key, next) = (composite(), composite());
    let icp = kel::incept(&key, next.public_key_ref(), vec![], "2026-04-01T00:00:00Z").unwrap();
    let sender = format!("{}{}", kel::DID_ATP_PREFIX, icp.event.scid().unwrap());
    IdentityServiceClient::new(channel_a.clone())
        .submit_event(pb::SubmitEventRequest { signed_event_json: icp.canonical_bytes().unwrap() })
        .await
        .unwrap();
    let envelope = || {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as i64;
        let env = Envelope::new(
            &sender,
            0,
            vec![did.clone()],
            now,
            now + 60_000,
            "text/plain",
            b"hi".to_vec(),
        );
        env.unwrap().seal(&key).unwrap().to_bytes().unwrap()
    };
    let verify = |channel: &Channel, bytes: &Vec<u8>| {
        let mut client = MessageServiceClient::new(channel.clone());
        let req = pb::VerifyEnvelopeRequest { envelope: bytes.clone(), verifier_did: did.clone() };
        async move { client.verify_envelope(req).await }
    };

    let once = envelope();
    verify(&channel_a, &once).await.expect("the first use is accepted");
    for channel in [&channel_b, &channel_c, &channel_a] {
        let refused = verify(channel, &once).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(
            String::from_utf8_lossy(refused.details()).contains("ENVELOPE_REPLAY"),
            "{refused:?}"
        );
    }
    // A fresh envelope, first seen by node C, is accepted there and refused on A.
    let fresh = envelope();
    verify(&channel_c, &fresh).await.expect("a fresh envelope is accepted");
    assert!(verify(&channel_a, &fresh).await.is_err());

    // A session challenge issued by node A is answered on node B, once in the whole cluster.
    let audience = "atp-ha-test";
    let challenge = MessageServiceClient::new(channel_a.clone())
        .create_challenge(pb::CreateChallengeRequest {
            did: sender.clone(),
            audience: audience.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .challenge;
    let answer = |challenge: &[u8], audience: &str| {
        let message = atp_core::session::Authentication {
            did: sender.clone(),
            key_seq: 0,
            node_did: did.clone(),
            audience: audience.to_owned(),
            challenge: challenge.try_into().unwrap(),
        }
        .to_bytes();
        let signature = key.sign(&message, atp_crypto::SigningContext::Session.as_bytes()).unwrap();
        pb::AuthenticateRequest { authentication: message, signature }
    };
    let authenticate = |channel: &Channel, req: pb::AuthenticateRequest| {
        let mut client = MessageServiceClient::new(channel.clone());
        async move { client.authenticate(req).await }
    };
    let unknown = |r: Result<tonic::Response<pb::AuthenticateResponse>, tonic::Status>| {
        let status = r.expect_err("refused");
        assert_eq!(atp_test_node::reason(&status), "SESSION_CHALLENGE_UNKNOWN", "{status:?}");
    };
    // Issued for another audience: unknown on every node.
    unknown(authenticate(&channel_b, answer(&challenge, "another-audience")).await);
    // A challenge that no node issued stays unknown, however often it is tried.
    for channel in [&channel_b, &channel_b, &channel_c] {
        unknown(authenticate(channel, answer(&[9u8; 32], audience)).await);
    }
    let token = authenticate(&channel_b, answer(&challenge, audience))
        .await
        .expect("the answer is taken by a node that did not issue the challenge")
        .into_inner();
    assert_eq!((token.did.as_str(), token.audience.as_str()), (sender.as_str(), audience));
    // Used once: refused everywhere after, the issuing node included.
    for channel in [&channel_c, &channel_a, &channel_b] {
        unknown(authenticate(channel, answer(&challenge, audience)).await);
    }
}
