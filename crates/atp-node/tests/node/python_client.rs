//! A Python grpcio client generated from `proto/` at test time (`examples/python/client.py`)
//! against the real `atp-node` binary: health, `Resolve` of the node's DID, and
//! `VerifyEnvelope` of an envelope signed in Python (accepted), and of a tampered copy
//! (`ENVELOPE_BAD_SIGNATURE`).
//!
//! Python comes from `$ATP_PYTHON`, else the venv that `scripts/test.sh` creates
//! (`target/venv`), else `python3` on `PATH`; it must have `grpc`, `grpc_tools` and
//! `cryptography` with ML-DSA (`requirements-test.txt`). Without one, the test skips loudly,
//! except under `CI=true`, where it fails.
#![cfg(unix)]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_atp-node");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> Option<PathBuf> {
    atp_test_vectors::python_with(
        "import grpc, grpc_tools, cryptography\n\
         from cryptography.hazmat.primitives.asymmetric import mldsa",
        "grpcio, grpcio-tools and `cryptography` (ML-DSA)",
    )
}

/// The node; SIGKILLed on drop.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn python_grpcio_client_calls_health_resolve_and_verify_envelope() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let stderr = tmp.path().join("node.stderr");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--data-dir")
        .arg(tmp.path().join("atp-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn atp-node");
    let stdout = child.stdout.take().expect("stdout");
    let _node = Node(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening: ") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| {
        panic!(
            "no `listening:` line ({e}); stderr:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    });

    // The client has its own timeouts (10 s per call); the test waits at most 120 s for it.
    let mut client = Command::new(&python)
        .arg(root().join("examples/python/client.py"))
        .arg(&addr)
        .arg(root().join("proto"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while client.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = client.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = client.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "client.py: {}\nstdout:\n{stdout}\nstderr:\n{}\nnode stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    assert!(out.status.success(), "{report}");
    for step in [
        "grpc.health.v1.Health/Check: SERVING",
        "DID document id matches",
        "(made in Python) accepted",
        "Python-signed envelope verified",
        "refused with ENVELOPE_BAD_SIGNATURE",
    ] {
        assert!(stdout.contains(step), "missing `{step}`; {report}");
    }
    eprintln!("{stdout}");
}
