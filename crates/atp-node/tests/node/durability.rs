//! Node-level durability: the real `atp-node` binary takes inception events in a loop, is
//! killed with SIGKILL while a writer is still submitting (twice, across restarts on the same
//! data directory), and after each restart every acknowledged identity resolves, its key event
//! log verifies, a newly signed checkpoint verifies and covers every acknowledged write (each
//! one proved included), and the log is consistent with the checkpoint seen before the kill.
//!
//! Bounded: the whole test runs under one 60 s deadline; the child process is killed when the
//! test ends in any way.
#![cfg(unix)]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, VerifierKey, verify_note_with};
use atp_core::kel::{self, SignedEvent};
use atp_core::log_entry::{LeafKind, entry_leaf_hash, kel_data_hash};
use atp_core::tlog::{Hash, verify_consistency, verify_inclusion};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_atp-node");
/// The whole test, worst case.
const TEST_DEADLINE: Duration = Duration::from_secs(60);
/// Acknowledged writes per run before the kill.
const ACKS_PER_RUN: usize = 30;
/// Runs that end with SIGKILL.
const KILLS: usize = 2;

/// A running `atp-node`; SIGKILLed on drop.
struct NodeProcess {
    child: Child,
    addr: String,
    stderr: PathBuf,
}

impl NodeProcess {
    async fn start(data: &Path, stderr: PathBuf) -> NodeProcess {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("ATP_LISTEN", "127.0.0.1:0")
            .arg("--data-dir")
            .arg(data)
            .args(["--checkpoint-interval", "100ms", "--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A file, not a pipe: nobody drains it while the test runs.
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn atp-node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = NodeProcess { child, addr: String::new(), stderr };
        let listening = async {
            while let Some(line) = rx.recv().await {
                if let Some(a) = line.strip_prefix("listening: ") {
                    return Some(a.to_owned());
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(20), listening).await {
            Ok(Some(addr)) => node.addr = addr,
            other => panic!("no `listening:` line ({other:?}); stderr:\n{}", node.stderr_text()),
        }
        node
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("connect")
    }

    /// SIGKILL, and check that the process really died of it.
    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "the node died of SIGKILL: {status}");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One acknowledged write.
#[derive(Clone)]
struct Ack {
    did: String,
    event: SignedEvent,
    leaf_index: u64,
}

fn composite() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key")
}

/// Submits fresh inceptions until the first error (the kill); records each acknowledgement.
async fn writer(mut client: IdentityServiceClient<Channel>, acks: Arc<Mutex<Vec<Ack>>>) -> String {
    loop {
        let (k, next) = (composite(), composite());
        let event =
            kel::incept(&k, next.public_key_ref(), vec![], "2026-04-01T00:00:00Z").expect("incept");
        let did = format!("{}{}", kel::DID_ATP_PREFIX, event.event.scid().expect("scid"));
        let req =
            pb::SubmitEventRequest { signed_event_json: event.canonical_bytes().expect("json") };
        match client.submit_event(req).await {
            Ok(r) => {
                let r = r.into_inner();
                assert_eq!(r.did, did);
                assert_eq!(r.outcome, pb::SubmitEventOutcome::Accepted as i32);
                let receipt = r.log_receipt.expect("an accepted event has a receipt");
                acks.lock().unwrap().push(Ack { did, event, leaf_index: receipt.leaf_index });
            }
            Err(e) => return format!("{e:?}"),
        }
    }
}

fn hash(b: &[u8]) -> Hash {
    b.try_into().expect("32-byte hash")
}

/// The checkpoint verifier keys and origin, from GetNodeInfo.
async fn verifier(
    admin: &mut AdminServiceClient<Channel>,
) -> (String, VerifierKey, VerifierKey, String) {
    let info = admin.get_node_info(pb::GetNodeInfoRequest {}).await.expect("info").into_inner();
    let keys: Vec<VerifierKey> = info
        .checkpoint_verifier_keys
        .iter()
        .map(|k| VerifierKey::from_vkey(k).expect("vkey"))
        .collect();
    let pick = |alg| {
        keys.iter().find(|k| k.public_key().algorithm() == alg).expect("verifier key").clone()
    };
    (info.node_did, pick(AlgorithmId::Ed25519), pick(AlgorithmId::MlDsa65), info.log_origin)
}

/// Polls GetCheckpoint until a verified checkpoint covers `size` leaves (bounded; no timing
/// claim).
async fn checkpoint_covering(channel: &Channel, size: u64) -> Checkpoint {
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut log = LogServiceClient::new(channel.clone());
    let (_, ed, ml, origin) = verifier(&mut admin).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = log.get_checkpoint(pb::GetCheckpointRequest {}).await {
            let note = String::from_utf8(r.into_inner().checkpoint_note).expect("utf-8");
            let cp = verify_note_with(&note, &ed, &ml).expect("the signed note verifies");
            assert_eq!(cp.origin, origin);
            if cp.size >= size {
                return cp;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint covering {size} leaves");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After a restart: every acknowledged write is present, verifies, and is in the log; the log
/// extends the checkpoint seen before the kill.
async fn check_after_restart(channel: &Channel, acks: &[Ack], before_kill: &Checkpoint) {
    let mut identity = IdentityServiceClient::new(channel.clone());
    let mut log = LogServiceClient::new(channel.clone());
    let covered = acks.iter().map(|a| a.leaf_index + 1).max().unwrap_or(0).max(before_kill.size);
    let cp = checkpoint_covering(channel, covered).await;

    for a in acks {
        let r = identity
            .resolve(pb::ResolveRequest { did: a.did.clone(), version_id: None })
            .await
            .unwrap_or_else(|e| panic!("acknowledged {} does not resolve: {e:?}", a.did))
            .into_inner();
        let doc: serde_json::Value = serde_json::from_str(&r.did_document_json).expect("doc");
        assert_eq!(doc["id"], a.did.as_str());

        let kel = identity
            .get_key_event_log(pb::GetKeyEventLogRequest {
                did: a.did.clone(),
                from_sequence: 0,
                page_size: 0,
            })
            .await
            .expect("kel")
            .into_inner();
        let events: Vec<SignedEvent> = kel
            .events
            .iter()
            .map(|e| SignedEvent::from_json(&e.signed_event_json).expect("event"))
            .collect();
        assert_eq!(events, vec![a.event.clone()], "{}: the stored log is the submitted one", a.did);
        kel::verify_log(&events).expect("the key event log verifies");
        let receipt = kel.events[0].log_receipt.as_ref().expect("receipt");
        assert_eq!(receipt.leaf_index, a.leaf_index, "{}: same leaf as acknowledged", a.did);

        let leaf = entry_leaf_hash(LeafKind::Kel, &kel_data_hash(&a.event).expect("data hash"));
        let proof = log
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(a.leaf_index)),
                tree_size: cp.size,
            })
            .await
            .expect("inclusion proof")
            .into_inner();
        assert_eq!(proof.leaf_hash, leaf.to_vec());
        let path: Vec<Hash> = proof.inclusion_path.iter().map(|h| hash(h)).collect();
        verify_inclusion(a.leaf_index, cp.size, &leaf, &path, &cp.root_hash)
            .expect("the acknowledged write is in the signed log");
    }

    let proof = log
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_tree_size: before_kill.size,
            second_tree_size: cp.size,
        })
        .await
        .expect("consistency proof")
        .into_inner();
    let path: Vec<Hash> = proof.consistency_path.iter().map(|h| hash(h)).collect();
    verify_consistency(before_kill.size, cp.size, &before_kill.root_hash, &cp.root_hash, &path)
        .expect("the log after the crash extends the checkpoint seen before it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    tokio::time::timeout(TEST_DEADLINE, run())
        .await
        .expect("the durability test stays within its deadline");
}

async fn run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");
    let mut all: Vec<Ack> = Vec::new();
    let mut node_did: Option<String> = None;
    let mut before_kill: Option<Checkpoint> = None;

    for round in 0..=KILLS {
        let mut node =
            NodeProcess::start(&data, tmp.path().join(format!("stderr-{round}.log"))).await;
        let channel = node.channel().await;
        let (did, ..) = verifier(&mut AdminServiceClient::new(channel.clone())).await;
        assert_eq!(node_did.get_or_insert_with(|| did.clone()), &did, "same node identity");

        if let Some(cp) = &before_kill {
            check_after_restart(&channel, &all, cp).await;
        }
        if round == KILLS {
            break;
        }

        // Write in a loop; kill while the writer is still submitting.
        let acks = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(writer(IdentityServiceClient::new(channel.clone()), acks.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while acks.lock().unwrap().len() < ACKS_PER_RUN {
            assert!(
                !task.is_finished() && tokio::time::Instant::now() < deadline,
                "the writer stopped or is too slow at {} acks; stderr:\n{}",
                acks.lock().unwrap().len(),
                node.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The latest signed checkpoint before the crash (it need not cover every write).
        let mut log = LogServiceClient::new(channel.clone());
        let (_, ed, ml, _) = verifier(&mut AdminServiceClient::new(channel.clone())).await;
        let note = log.get_checkpoint(pb::GetCheckpointRequest {}).await.expect("checkpoint");
        let note = String::from_utf8(note.into_inner().checkpoint_note).expect("utf-8");
        before_kill = Some(verify_note_with(&note, &ed, &ml).expect("checkpoint verifies"));

        node.kill9();
        let last_error = tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("the writer stops after the kill")
            .expect("writer task");
        let acks = acks.lock().unwrap().clone();
        assert!(acks.len() >= ACKS_PER_RUN);
        eprintln!(
            "run {round}: {} writes acknowledged before SIGKILL (writer then got {last_error})",
            acks.len()
        );
        all.extend(acks);
    }
    let total = all.len();
    assert!(total >= KILLS * ACKS_PER_RUN);
    let dids: std::collections::BTreeSet<_> = all.iter().map(|a| a.did.as_str()).collect();
    assert_eq!(dids.len(), total, "every acknowledged DID is distinct");
}
