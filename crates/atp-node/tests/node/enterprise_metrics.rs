//! Enterprise metrics against the real tools: the real `atp-node` binary (built with
//! `--features metrics`) serves known gRPC and HTTP traffic; its `/metrics` output passes
//! `promtool check metrics`; a real Prometheus (Debian's `prometheus`), started here on
//! loopback, scrapes the node and answers a PromQL query with the exact count of
//! `grpc_server_handled_total` for that method and code.
//!
//! Without `promtool` / `prometheus` the test fails under `CI=true` and is skipped loudly
//! otherwise. Bounded: every wait has a deadline; the child processes are killed on drop.
#![cfg(all(unix, feature = "metrics"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{BIN, Proc, spawn_announcing};
use atp_grpc::v1 as pb;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use tonic::transport::Channel;

/// Resolve calls for an unknown DID (each answers NOT_FOUND).
const NOT_FOUND_CALLS: u64 = 7;
/// GetCheckpoint calls (each answers OK).
const CHECKPOINT_CALLS: u64 = 5;
/// HTTP requests to the node's DID document.
const HTTP_CALLS: u64 = 3;

/// Finds `tool` on PATH; `None` (after a loud notice) outside CI, a failure under `CI=true`.
fn tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join(tool)).find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "`{tool}` is not installed (Debian package `prometheus`; scripts/test.sh)");
        eprintln!("\n!!! SKIPPED: `{tool}` is not installed (apt-get install prometheus) !!!\n");
    }
    found
}

/// The real node with a `[metrics]` section; returns it, its gRPC address and its metrics
/// address.
async fn start_node(dir: &Path) -> (Proc, String, String) {
    let config = dir.join("node.toml");
    std::fs::write(&config, "[metrics]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(dir.join("node.stderr")).unwrap());
    let (proc, announced) = spawn_announcing(cmd, &["listening: ", "metrics: http://"]).await;
    let grpc = announced[0].clone();
    let metrics = announced[1].trim_end_matches("/metrics").to_owned();
    (proc, grpc, metrics)
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status code");
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// The loopback port `pid` listens on (from /proc: its socket inodes in LISTEN state), so that
/// Prometheus can bind port 0 like every other server of the tests.
fn listening_port(pid: u32) -> Option<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path())
            && let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
        {
            inodes.push(inode.to_owned());
        }
    }
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is column 9.
        (cols.get(3) == Some(&"0A") && cols.get(9).is_some_and(|i| inodes.iter().any(|x| x == i)))
            .then(|| cols[1].split_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok()))
            .flatten()
    })
}

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

/// Known traffic: NOT_FOUND_CALLS failing resolves, CHECKPOINT_CALLS successful checkpoint
/// reads, HTTP_CALLS DID-document fetches.
async fn serve_known_traffic(grpc: &str) {
    let ch = channel(grpc).await;
    let mut ids = IdentityServiceClient::new(ch.clone());
    for i in 0..NOT_FOUND_CALLS {
        let e = ids
            .resolve(pb::ResolveRequest {
                did: format!("did:atp:zQ3shUnknownUnknownUnknownUnknownUnknown{i}"),
                ..Default::default()
            })
            .await
            .expect_err("an unknown DID does not resolve");
        assert!(matches!(e.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument), "{e:?}");
    }
    let mut log = LogServiceClient::new(ch);
    for _ in 0..CHECKPOINT_CALLS {
        log.get_checkpoint(pb::GetCheckpointRequest::default()).await.expect("checkpoint");
    }
    for _ in 0..HTTP_CALLS {
        let (status, _) = http_get(grpc, "/.well-known/did.json");
        assert_eq!(status, 200);
    }
}

fn value_of(text: &str, series_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_node_and_counts_its_calls() {
    let (Some(promtool), Some(prometheus)) = (tool("promtool"), tool("prometheus")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_node, grpc, metrics_addr) = start_node(dir.path()).await;
    serve_known_traffic(&grpc).await;

    // The node's own figures, once its first trust computation (started with the node) is in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (status, text) = http_get(&metrics_addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        if value_of(&text, "atp_trust_recompute_duration_seconds_count").is_some_and(|n| n >= 1.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "no trust computation observed:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The gRPC code depends on how the server maps this refusal: read it from the output and
    // insist that the count is exact.
    let resolve_line = text
        .lines()
        .find(|l| {
            l.starts_with("grpc_server_handled_total{")
                && l.contains("grpc_method=\"Resolve\"")
                && !l.contains("grpc_code=\"OK\"")
        })
        .unwrap_or_else(|| panic!("no failed Resolve in:\n{text}"))
        .to_owned();
    let code = resolve_line
        .split("grpc_code=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("grpc_code label")
        .to_owned();
    assert_eq!(
        value_of(&text, &resolve_line[..resolve_line.rfind(' ').unwrap()]),
        Some(NOT_FOUND_CALLS as f64)
    );
    assert_eq!(
        value_of(
            &text,
            "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"GetCheckpoint\",\
             grpc_service=\"atp.v1.LogService\",grpc_type=\"unary\"}"
        ),
        Some(CHECKPOINT_CALLS as f64),
        "{text}"
    );
    assert_eq!(
        value_of(
            &text,
            "http_server_requests_total{method=\"GET\",route=\"/.well-known/did.json\",\
             status=\"200\"}"
        ),
        Some(HTTP_CALLS as f64),
        "{text}"
    );
    // Domain metrics of the node's first start: its inception (one key event, one verified
    // signature) is its one active identity.
    for (series, want) in [
        ("atp_identities{state=\"active\"}", 1.0),
        ("atp_identities{state=\"deactivated\"}", 0.0),
        ("atp_kel_events_total{type=\"icp\"}", 1.0),
        (
            "atp_signature_verifications_total{algorithm=\"mldsa65-ed25519\",kind=\"key_event\",\
             result=\"ok\"}",
            1.0,
        ),
    ] {
        assert_eq!(value_of(&text, series), Some(want), "{series} in:\n{text}");
    }
    for family in [
        "atp_trust_agents{level=",
        "atp_trust_recompute_duration_seconds_bucket",
        "grpc_server_started_total",
        "grpc_server_msg_received_total",
        "grpc_server_msg_sent_total",
        "grpc_server_handling_seconds_bucket",
        "http_server_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "atp_build_info",
        "atp_log_size_entries",
        "atp_identities",
        "atp_checkpoint_age_seconds",
        "atp_store_query_duration_seconds_bucket",
    ] {
        assert!(text.lines().any(|l| l.starts_with(family)), "no {family} in:\n{text}");
    }
    assert!(!text.contains("did:atp:"), "a DID leaked into a label");

    // promtool on the real output.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scrapes the node.
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom_config = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: atp-node\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .unwrap();
    let prom = Command::new(&prometheus)
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!("--storage.tsdb.path={}", prom_dir.join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(prom_dir.join("stderr")).unwrap())
        .spawn()
        .expect("spawn prometheus");
    let prom = Proc(prom);
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        if let Some(p) = listening_port(prom.0.id()) {
            break p;
        }
        assert!(Instant::now() < deadline, "prometheus did not listen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let prom_addr = format!("127.0.0.1:{port}");
    let query = format!(
        "grpc_server_handled_total{{job=\"atp-node\",grpc_method=\"Resolve\",grpc_code=\"{code}\"}}"
    );
    let path = format!("/api/v1/query?query={}", percent_encode(&query));
    let mut last = String::new();
    let answered = loop {
        let (status, body) = http_get(&prom_addr, &path);
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
            assert_eq!(v["status"], "success", "{body}");
            if let Some(value) = v["data"]["result"][0]["value"][1].as_str() {
                break value.to_owned();
            }
        }
        last = body;
        assert!(
            Instant::now() < deadline,
            "prometheus never answered {query}: {last}\nprometheus stderr:\n{}",
            std::fs::read_to_string(prom_dir.join("stderr")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = last;
    assert_eq!(answered, NOT_FOUND_CALLS.to_string(), "PromQL {query}");
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
