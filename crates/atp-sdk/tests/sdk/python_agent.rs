//! The independent Python agent (`examples/python/agent.py`: `cryptography` for ML-DSA-65 and
//! Ed25519, the composite and the envelope layout implemented from docs/protocol.md, gRPC stubs
//! generated from `proto/`) and a Rust SDK agent exchange verified envelopes through a real node,
//! in both directions.
//!
//! Python comes from `$ATP_PYTHON`, else `target/venv` (made by `scripts/test.sh`), else
//! `python3`; it needs `requirements-test.txt`. Without it the test skips loudly, except under
//! `CI=true`, where it fails.
#![cfg(unix)]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use crate::support::{options, start_node, workspace_root};
use atp::Agent;

fn python() -> Option<std::path::PathBuf> {
    atp_test_vectors::python_with(
        "import grpc, grpc_tools, cryptography\n\
         from cryptography.hazmat.primitives.asymmetric import mldsa",
        "grpcio, grpcio-tools and `cryptography` (ML-DSA)",
    )
}

/// Runs `agent.py` with `args`; at most 120 s. Returns stdout; panics with both streams.
async fn agent_py(python: &Path, args: &[&str]) -> String {
    let script = workspace_root().join("examples/python/agent.py");
    let child = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run python");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("agent.py took more than 120 s")
        .expect("agent.py output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "agent.py {args:?}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_agent_and_rust_agent_exchange_verified_envelopes_both_ways() {
    let Some(python) = python() else { return };
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rust = Agent::connect_with(options(&node, home.path()), "rust-bot").await.unwrap();
    let addr = node.url.trim_start_matches("http://").to_owned();
    let proto = workspace_root().join("proto");
    let (proto, workdir) = (proto.to_str().unwrap(), work.path().to_str().unwrap());

    // Python -> Rust: the Python agent registers its DID and seals; the SDK verifies.
    let stdout = agent_py(&python, &["hello", &addr, proto, workdir, &rust.did()]).await;
    let python_did = stdout
        .lines()
        .find_map(|l| l.strip_prefix("did: "))
        .expect("agent.py prints its DID")
        .to_owned();
    let from_python = std::fs::read(work.path().join("to_rust.bin")).unwrap();
    let opened = rust.open(&from_python).await.unwrap();
    assert_eq!(opened.sender, python_did);
    assert_eq!(opened.payload, b"hello from python");
    assert_eq!(opened.content_type, "text/plain");
    // The SDK refuses a tampered copy of the Python envelope.
    let mut tampered = from_python.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 1;
    assert_eq!(rust.open(&tampered).await.unwrap_err().code(), "ENVELOPE_BAD_SIGNATURE");

    // Rust -> Python: after a rotation, so that Python checks a two-event log and key #1.
    rust.rotate().await.unwrap();
    let reply = rust.seal_to(&[python_did.as_str()], "text/plain", b"hello from rust").unwrap();
    std::fs::write(work.path().join("to_python.bin"), &reply).unwrap();
    let stdout = agent_py(&python, &["open", &addr, proto, workdir]).await;
    let expected = format!("from {} (key #1): hello from rust", rust.did());
    assert!(stdout.contains(&expected), "missing `{expected}` in:\n{stdout}");
    assert!(stdout.contains("ok: a reply with one flipped payload bit is refused"), "{stdout}");
}
