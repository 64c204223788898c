//! The built `atp-node` binary: it bootstraps, prints its DID and the token path, and exits 0
//! after a graceful shutdown on SIGTERM or SIGINT. Configuration errors stop it before it
//! touches the data directory. Every run listens on `127.0.0.1:0` (a free port) and prints the
//! bound address as `listening: <addr>`.
#![cfg(unix)]
#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_atp-node");
const TIMEOUT: Duration = Duration::from_secs(120);

/// The binary with an empty environment (no stray `ATP_*` variables from the caller).
fn node() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("ATP_LISTEN", "127.0.0.1:0");
    cmd
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn atp-node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The value of the stdout line `<prefix>: <value>`.
    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = line.strip_prefix(&format!("{prefix}: ")) {
                        return v.to_owned();
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    let (_, stderr) = self.finish();
                    panic!("no `{prefix}:` line on stdout ({e}); stderr:\n{stderr}");
                }
            }
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Wait for exit (killing the process after the timeout) and return its status and stderr.
    fn finish(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (status, stderr)
    }
}

fn data_arg(dir: &Path) -> String {
    dir.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn the_binary_bootstraps_and_shuts_down_gracefully_on_sigterm_and_sigint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");

    // First run: text logs, SIGTERM.
    let mut cmd = node();
    cmd.arg("--data-dir").arg(data_arg(&data));
    let mut run = Running::start(cmd);
    let did = run.wait_for("node DID");
    let token_path = run.wait_for("admin token");
    let listening = run.wait_for("listening");
    let addr: std::net::SocketAddr = listening.parse().expect("bound address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    std::net::TcpStream::connect(addr).expect("the node accepts connections");
    run.signal("TERM");
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "exit status {status}; stderr:\n{stderr}");
    assert!(did.starts_with("did:atp:z"), "{did}");
    assert_eq!(Path::new(&token_path), data.join("admin.token").canonicalize().expect("token"));
    let token = std::fs::read_to_string(&token_path).expect("token");
    for needle in [
        "node identity created",
        "PLAINTEXT",
        "serving gRPC and HTTP",
        "shutdown requested",
        "SIGTERM",
        "shutdown complete",
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
    assert!(!stderr.contains(token.trim()), "the token was logged");

    // Second run: JSON logs from the environment, SIGINT; same identity.
    let mut cmd = node();
    cmd.env("ATP_DATA_DIR", data_arg(&data)).env("ATP_LOG_FORMAT", "json");
    let mut run = Running::start(cmd);
    assert_eq!(run.wait_for("node DID"), did);
    run.signal("INT");
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "exit status {status}; stderr:\n{stderr}");
    let mut messages = Vec::new();
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        let msg = v["fields"]["message"].as_str().unwrap_or_default().to_owned();
        messages.push(msg);
    }
    assert!(messages.iter().any(|m| m == "node identity loaded and verified"), "{messages:?}");
    assert!(messages.iter().any(|m| m == "shutdown complete"), "{messages:?}");
    assert!(!stderr.contains(token.trim()), "the token was logged");
}

#[test]
fn an_enterprise_section_stops_the_binary_before_it_touches_the_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");
    let config = tmp.path().join("node.toml");
    // A section whose feature this binary lacks (`rbac` in the community build; with
    // `--features enterprise`, one that no feature provides yet).
    let built_in = atp_node::enterprise_features();
    let section = atp_node::config::ENTERPRISE_SECTIONS
        .iter()
        .find(|s| !built_in.contains(s))
        .expect("a section that this build lacks");
    std::fs::write(&config, format!("[{section}]\npolicy = \"x\"\n")).expect("write");
    let out = node()
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data_arg(&data))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = if atp_node::config::UNAVAILABLE_ENTERPRISE_SECTIONS.contains(section) {
        format!("`{section}` is an enterprise feature that is not available yet, in any build")
    } else {
        format!(
            "`{section}` requires the ATP enterprise edition (build with `--features enterprise`)"
        )
    };
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!data.exists(), "the data directory was created");
}

#[test]
fn a_tampered_identity_stops_the_binary_with_a_precise_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");
    let mut cmd = node();
    cmd.arg("--data-dir").arg(data_arg(&data));
    let mut run = Running::start(cmd);
    run.wait_for("node DID");
    run.signal("TERM");
    assert!(run.finish().0.success());

    std::fs::write(data.join("node.kel.json"), "[]").expect("write");
    let out = node().arg("--data-dir").arg(data_arg(&data)).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node.kel.json") && stderr.contains("refusing to start"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("node DID"));
}

#[test]
fn help_lists_the_environment_variables_and_exits_zero() {
    let out = node().arg("--help").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--listen", "[env: ATP_LISTEN]", "--tls-require-pq", "ATP_KEY_PASSPHRASE"] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let out = node().arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_binary_serves_tls_with_a_self_signed_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");
    let mut cmd = node();
    cmd.arg("--data-dir").arg(data_arg(&data)).arg("--tls-self-signed").arg("--tls-require-pq");
    let mut run = Running::start(cmd);
    let addr: std::net::SocketAddr = run.wait_for("listening").parse().expect("bound address");
    let cert = std::fs::read(data.join(atp_node::SELF_SIGNED_CERT_FILE)).expect("cert file");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let info = rt.block_on(async {
        use tonic::transport::{Certificate, Channel, ClientTlsConfig};
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&cert))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{addr}"))
            .expect("uri")
            .tls_config(tls)
            .expect("tls config")
            .connect()
            .await
            .expect("connect over TLS");
        atp_grpc::v1::admin_service_client::AdminServiceClient::new(channel)
            .get_node_info(atp_grpc::v1::GetNodeInfoRequest {})
            .await
            .expect("GetNodeInfo over TLS")
            .into_inner()
    });
    assert!(info.node_did.starts_with("did:atp:"), "{info:?}");

    run.signal("TERM");
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "exit status {status}; stderr:\n{stderr}");
    for needle in ["TLS enabled", "X25519MLKEM768 only", "self-signed"] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
    assert!(!stderr.contains("PLAINTEXT"), "{stderr}");
}

#[test]
fn a_bad_tls_pem_stops_the_binary_with_a_precise_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");
    let junk = tmp.path().join("junk.pem");
    std::fs::write(&junk, "not a PEM file\n").expect("write");
    let mut cmd = node();
    cmd.arg("--data-dir")
        .arg(data_arg(&data))
        .arg("--tls-cert")
        .arg(&junk)
        .arg("--tls-key")
        .arg(&junk);
    let mut run = Running::start(cmd);
    let (status, stderr) = run.finish();
    assert_ne!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("configuring TLS"), "{stderr}");
    assert!(stderr.contains("certificate: no CERTIFICATE block found"), "{stderr}");
    assert!(!data.exists(), "the data directory was created before the TLS check");
}
