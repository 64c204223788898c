//! The witness as a real process on 127.0.0.1: it cosigns a log that grows append-only, and
//! refuses, with the C2SP status, a checkpoint of an unknown log, one signed by another key, an
//! old size it did not cosign, a log that shrank, a wrong consistency proof and a fork. After
//! `kill -9` and a restart it still refuses to go backwards.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, VerifierKey, sign_note};
use atp_core::tlog::{self, Hash};
use atp_core::witness::{AddCheckpoint, CosignerKey, verify_cosignature};
use atp_crypto::{AlgorithmId, SigningKey};
use tokio::io::AsyncBufReadExt as _;

const ORIGIN: &str = "atp-node/witness-test";

struct Running {
    child: tokio::process::Child,
    url: String,
    cosigner: CosignerKey,
}

/// Starts `atp-witness` and reads its address and keys from its first lines.
async fn start(config: &Path, data: &Path) -> Running {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atp-witness"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn atp-witness");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vkeys = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(v) = line.strip_prefix("cosigner key: ") {
                vkeys.push(v.to_owned());
            }
            if let Some(addr) = line.strip_prefix("listening: ") {
                return format!("http://{addr}");
            }
        }
        panic!("the witness exited before listening");
    })
    .await
    .expect("the witness did not start within 60 s");
    let cosigner = CosignerKey::from_vkeys(&vkeys[0], &vkeys[1]).unwrap();
    Running { child, url, cosigner }
}

fn leaves(tag: u8, n: usize) -> Vec<Hash> {
    (0..n).map(|i| tlog::leaf_hash(&[tag, u8::try_from(i).unwrap()])).collect()
}

/// A signed checkpoint of the first `size` of `leaves`.
fn note(key: &SigningKey, leaves: &[Hash], size: usize) -> String {
    let (mldsa, ed) = key.components().unwrap();
    let cp = Checkpoint::new(ORIGIN, size as u64, tlog::root_from_leaf_hashes(&leaves[..size]));
    sign_note(&cp, ORIGIN, ed, mldsa).unwrap()
}

/// A request from `old` to `new` leaves of `tree`, proof included.
fn request(key: &SigningKey, tree: &[Hash], old: usize, new: usize) -> AddCheckpoint {
    // No proof can lead backwards: a shrinking request carries none.
    let proof = if old == 0 || old > new {
        vec![]
    } else {
        tlog::consistency_proof(old as u64, &tree[..new]).unwrap()
    };
    AddCheckpoint { old_size: old as u64, proof, note: note(key, tree, new) }
}

/// POSTs `body` to the witness's `add-checkpoint` over plain HTTP/1.1 (one connection per
/// request, closed by the server after the answer); returns the status, content type and body.
async fn post(url: &str, body: String) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("the witness answers");
    let head = format!(
        "POST /add-checkpoint HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

fn config(dir: &Path, name: &str, log_key: &SigningKey) -> std::path::PathBuf {
    let (mldsa, ed) = log_key.components().unwrap();
    let ed = VerifierKey::new(ORIGIN, ed.public_key()).unwrap().to_vkey();
    let ml = VerifierKey::new(ORIGIN, mldsa.public_key()).unwrap().to_vkey();
    let path = dir.join("witness.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\n\n[[log]]\norigin = \"{ORIGIN}\"\ned25519 = \"{ed}\"\nmldsa65 = \"{ml}\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_witness_cosigns_growth_refuses_every_lie_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let config = config(dir.path(), "witness.test/w1", &log_key);
    let data = dir.path().join("data");
    let mut w = start(&config, &data).await;
    let tree = leaves(0xA, 32);

    // First contact from size 0, then growth with a consistency proof: both cosigned.
    for (old, new) in [(0, 8), (8, 12), (12, 12)] {
        let req = request(&log_key, &tree, old, new);
        let (status, _, lines) = post(&w.url, req.to_body()).await;
        assert_eq!(status, 200, "{old} -> {new}: {lines}");
        assert_eq!(lines.lines().count(), 2, "an Ed25519 and an ML-DSA-65 line: {lines}");
        let cosigned = format!("{}{lines}", req.note);
        let time = verify_cosignature(&cosigned, &w.cosigner).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(time.abs_diff(now.as_secs()) < 300, "timestamp {time}");
        // The cosignature is over this checkpoint: moved to another one, it fails.
        let other = format!("{}{lines}", note(&log_key, &tree, 13));
        assert!(verify_cosignature(&other, &w.cosigner).is_err());
    }

    // Refusals, each with its C2SP status; none changes the state.
    let foreign = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let mut fork = tree[..10].to_vec();
    fork.extend(leaves(0xB, 22));
    let mut bad_proof = request(&log_key, &tree, 12, 16);
    bad_proof.proof[0][0] ^= 1;
    let mut other_log = request(&log_key, &tree, 12, 16);
    other_log.note = {
        let (mldsa, ed) = log_key.components().unwrap();
        let cp = Checkpoint::new("atp-node/elsewhere", 16, [1; 32]);
        sign_note(&cp, "atp-node/elsewhere", ed, mldsa).unwrap()
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("an unknown log", other_log.to_body(), 404, "WITNESS_UNKNOWN_LOG"),
        ("another key", request(&foreign, &tree, 12, 16).to_body(), 403, "CHECKPOINT_SIGNATURE"),
        ("an old size it did not cosign", request(&log_key, &tree, 8, 16).to_body(), 409, ""),
        ("a wrong consistency proof", bad_proof.to_body(), 422, "WITNESS_INCONSISTENT"),
        ("a fork", request(&log_key, &fork, 12, 16).to_body(), 422, "WITNESS_INCONSISTENT"),
        (
            "two roots for size 12",
            request(&log_key, &fork, 12, 12).to_body(),
            422,
            "WITNESS_INCONSISTENT",
        ),
        (
            "a log that shrank",
            request(&log_key, &tree, 12, 10).to_body(),
            400,
            "WITNESS_REQUEST_MALFORMED",
        ),
        ("garbage", "old 12\nnot base64\n\n".into(), 400, "WITNESS_REQUEST_MALFORMED"),
    ];
    for (what, body, want, code) in cases {
        let (status, content_type, text) = post(&w.url, body).await;
        assert_eq!(status, want, "{what}: {text}");
        if want == 409 {
            assert_eq!(
                (content_type.as_str(), text.as_str()),
                ("text/x.tlog.size", "12\n"),
                "{what}"
            );
        } else {
            assert!(text.starts_with(code), "{what}: {text}");
        }
    }

    // kill -9, restart: the state survived, and the witness still refuses to go backwards.
    w.child.start_kill().unwrap();
    w.child.wait().await.unwrap();
    let mut w = start(&config, &data).await;
    let (status, _, text) = post(&w.url, request(&log_key, &tree, 8, 10).to_body()).await;
    assert_eq!((status, text.as_str()), (409, "12\n"));
    let (status, _, text) = post(&w.url, request(&log_key, &fork, 12, 20).to_body()).await;
    assert_eq!(status, 422, "{text}");
    let (status, _, text) = post(&w.url, request(&log_key, &tree, 12, 20).to_body()).await;
    assert_eq!(status, 200, "{text}");

    // A witness whose state is gone but whose key is not refuses to start: it would cosign
    // anything from size 0 again.
    w.child.start_kill().unwrap();
    w.child.wait().await.unwrap();
    std::fs::remove_dir_all(data.join("state")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atp-witness"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("forgot what it cosigned"), "{stderr}");
}

/// A witness served in process on `listener`, following `logs`.
fn serve(
    listener: tokio::net::TcpListener,
    data: &Path,
    name: &str,
    logs: Vec<atp_witness::LogConfig>,
) -> tokio::task::JoinHandle<()> {
    let config = atp_witness::WitnessConfig { name: name.to_owned(), logs };
    let witness = std::sync::Arc::new(atp_witness::Witness::open(&config, data).unwrap());
    tokio::spawn(async move {
        axum::serve(listener, atp_witness::router(witness)).await.unwrap();
    })
}

#[tokio::test]
async fn a_node_collects_a_quorum_while_a_witness_is_down_and_clients_require_it() {
    use atp_core::witness::WitnessPolicy;
    let dir = tempfile::tempdir().unwrap();
    // Each witness's key first (opened with no logs), then the node with the three targets.
    let mut listeners = Vec::new();
    let mut targets = Vec::new();
    let mut cosigners = Vec::new();
    for i in 0..3 {
        let data = dir.path().join(format!("w{i}"));
        let name = format!("witness.test/w{i}");
        let config = atp_witness::WitnessConfig { name: name.clone(), logs: vec![] };
        let cosigner = atp_witness::Witness::open(&config, &data).unwrap().cosigner().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Witness 2 is down: port 1, where nothing listens (a closed port stays closed).
        let url = match i {
            2 => "http://127.0.0.1:1".to_owned(),
            _ => format!("http://{}", listener.local_addr().unwrap()),
        };
        targets.push(atp_server::witnesses::WitnessTarget::new(&url, cosigner.clone()).unwrap());
        cosigners.push(cosigner);
        listeners.push((listener, data, name));
    }
    let mut options = atp_test_node::NodeOptions::default();
    options.settings.witnesses = targets;
    let node = atp_test_node::TestNode::start_with(options).await;
    let (ed, ml) = atp_server::checkpointer::verifier_keys(&node.state).unwrap();
    let logs = vec![atp_witness::LogConfig {
        origin: node.state.log_origin.clone(),
        ed25519: ed.to_vkey(),
        mldsa65: ml.to_vkey(),
    }];
    listeners.pop();
    let data0 = listeners[0].1.clone();
    let _served: Vec<_> = listeners
        .into_iter()
        .map(|(listener, data, name)| serve(listener, &data, &name, logs.clone()))
        .collect();
    // A second witness on a running witness's data directory is refused: two processes on one
    // state could each cosign one side of a fork.
    let config = atp_witness::WitnessConfig { name: "witness.test/w0".into(), logs: logs.clone() };
    let second = atp_witness::Witness::open(&config, &data0).unwrap_err();
    assert_eq!(second.code(), "WITNESS_STATE", "{second}");

    // A client requiring 2 of the 3 gets cosigned checkpoints as the log grows.
    let home = tempfile::tempdir().unwrap();
    let mut opts = atp::AgentOptions::new(&node.url);
    opts.home = Some(home.path().to_path_buf());
    opts.witnesses = Some(WitnessPolicy::new(2, cosigners.clone()).unwrap());
    let agent = atp::Agent::connect_with(opts, "client").await.unwrap();
    let size_after_connect = node.state.store.log_size().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let cosigned = loop {
        match agent.verified_checkpoint().await {
            Ok(cp) if cp.size >= size_after_connect => break cp,
            Ok(_) => {}
            Err(e) => assert_eq!(e.code(), "WITNESS_QUORUM_NOT_MET", "{e}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "no 2-of-3 quorum within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(cosigned.size >= size_after_connect);
    // Every event of the agent is provably in a cosigned tree.
    let event = agent.key_event_log()[0].clone();
    agent.verify_inclusion(&event).await.unwrap();

    // A client requiring all three is refused: witness 2 is down.
    let mut strict = atp::AgentOptions::new(&node.url);
    let strict_home = tempfile::tempdir().unwrap();
    strict.home = Some(strict_home.path().to_path_buf());
    strict.witnesses = Some(WitnessPolicy::new(3, cosigners).unwrap());
    let strict = atp::Agent::connect_with(strict, "strict").await.unwrap();
    let err = strict.verified_checkpoint().await.unwrap_err();
    assert_eq!(err.code(), "WITNESS_QUORUM_NOT_MET", "{err}");
}
