//! The enterprise node with `[sso]` against a real OpenID provider (npm `oidc-provider`, started
//! here on loopback by enterprise/sso/tests/support/provider.mjs): an admin call without a token
//! is refused with UNAUTHENTICATED, a token of the admin group is allowed, a token of another
//! group gets PERMISSION_DENIED, a token for another audience UNAUTHENTICATED.
//!
//! Without `node` / `node_modules/oidc-provider` the test fails under `CI=true` and is skipped
//! loudly otherwise. Bounded: every wait has a deadline; child processes are killed on drop.
#![cfg(all(unix, feature = "sso"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_atp-node");
const SECRET: &str = "test-secret-not-for-production-0123456789";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn node_js() -> Option<PathBuf> {
    let node = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("node")).find(|p| p.is_file())
    });
    if node.is_none() || !repo_root().join("node_modules/oidc-provider/package.json").is_file() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "node or node_modules/oidc-provider is missing (scripts/test.sh installs it)");
        eprintln!("\n!!! SKIPPED: node or node_modules/oidc-provider is missing !!!\n");
        return None;
    }
    node
}

/// A child process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` and returns it with the first stdout line that starts with one of `prefixes`
/// (one value per prefix, in order), within 30 s.
async fn spawn_announcing(mut cmd: Command, prefixes: &[&str]) -> (Proc, Vec<String>) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
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
    let wanted: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
    let collect = async {
        let mut values = vec![None; wanted.len()];
        while let Some(line) = rx.recv().await {
            for (i, p) in wanted.iter().enumerate() {
                if let Some(v) = line.strip_prefix(p.as_str()) {
                    values[i] = Some(v.to_owned());
                }
            }
            if values.iter().all(Option::is_some) {
                return values.into_iter().map(Option::unwrap).collect::<Vec<_>>();
            }
        }
        panic!("the process ended before announcing {wanted:?}")
    };
    let values = tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("announcement within 30 s");
    (proc, values)
}

async fn token(issuer: &str, client: &str, resource: &str) -> String {
    use std::io::{Read as _, Write as _};
    let body = format!(
        "grant_type=client_credentials&client_id={client}&client_secret={SECRET}&scope=atp&\
         resource={}",
        resource.replace(':', "%3A")
    );
    let addr = issuer.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /token HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let json = &raw[raw.find('{').expect("a JSON body")..raw.rfind('}').unwrap() + 1];
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["access_token"].as_str().unwrap_or_else(|| panic!("no token: {raw}")).to_owned()
    })
    .await
    .unwrap()
}

async fn list_anchors(
    channel: &Channel,
    bearer: Option<&str>,
) -> Result<pb::ListTrustAnchorsResponse, tonic::Status> {
    let mut request = tonic::Request::new(pb::ListTrustAnchorsRequest {});
    if let Some(t) = bearer {
        request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    AdminServiceClient::new(channel.clone())
        .list_trust_anchors(request)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_node_honours_sso_groups_on_admin_calls() {
    let Some(node) = node_js() else { return };
    let (_idp, issuer) = start_idp(&node).await;

    let dir = tempfile::tempdir().unwrap();
    let sso = format!(
        "[sso]\nissuer = \"{issuer}\"\naudience = \"urn:atp:node\"\n\
         admin_groups = [\"atp-admins\"]\nallow_admin_token = false\n"
    );
    let (_node, channel) = start_node(dir.path(), &sso).await;

    let e = list_anchors(&channel, None).await.expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    let admin = token(&issuer, "atp-admin-bot", "urn:atp:node").await;
    list_anchors(&channel, Some(&admin)).await.expect("the admin group is allowed");

    let viewer = token(&issuer, "atp-viewer-bot", "urn:atp:node").await;
    let e = list_anchors(&channel, Some(&viewer)).await.expect_err("viewer");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");

    let other = token(&issuer, "atp-admin-bot", "urn:other:service").await;
    let e = list_anchors(&channel, Some(&other)).await.expect_err("wrong audience");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let info = atp_grpc::status::error_info(&e).expect("ErrorInfo");
    assert_eq!(info.metadata.get("cause").map(String::as_str), Some("TOKEN_WRONG_AUDIENCE"));

    let e = list_anchors(&channel, Some("not-a-jwt-and-no-admin-token")).await.expect_err("junk");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
}

/// The real node with `config_text`; returns it and a channel to it.
async fn start_node(dir: &Path, config_text: &str) -> (Proc, Channel) {
    let config = dir.join("node.toml");
    std::fs::write(&config, config_text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("ATP_LISTEN", "127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let (node, v) = spawn_announcing(cmd, &["listening: "]).await;
    let channel = Channel::from_shared(format!("http://{}", v[0]))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect");
    (node, channel)
}

async fn start_idp(node: &Path) -> (Proc, String) {
    let mut idp = Command::new(node);
    idp.arg(repo_root().join("enterprise/sso/tests/support/provider.mjs"))
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stderr(Stdio::null());
    let (idp, v) = spawn_announcing(idp, &["ISSUER "]).await;
    (idp, v[0].clone())
}

async fn set_anchors(channel: &Channel, bearer: &str) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(pb::SetTrustAnchorsRequest::default());
    request.metadata_mut().insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    AdminServiceClient::new(channel.clone()).set_trust_anchors(request).await.map(|_| ())
}

/// With `[rbac]`: roles come from the IdP's groups through the bindings.
#[cfg(feature = "rbac")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_node_honours_rbac_roles_from_idp_groups() {
    let Some(node) = node_js() else { return };
    let (_idp, issuer) = start_idp(&node).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[sso]\nissuer = \"{issuer}\"\naudience = \"urn:atp:node\"\nallow_admin_token = false\n\
         [rbac]\nbindings = [\"g, group:atp-admins, role:admin, *\", \
         \"g, group:atp-viewers, role:viewer, *\"]\n"
    );
    let (_node, channel) = start_node(dir.path(), &config).await;
    let admin = token(&issuer, "atp-admin-bot", "urn:atp:node").await;
    let viewer = token(&issuer, "atp-viewer-bot", "urn:atp:node").await;

    list_anchors(&channel, Some(&viewer)).await.expect("a viewer reads the trust anchors");
    let e = set_anchors(&channel, &viewer).await.expect_err("a viewer may not write them");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    set_anchors(&channel, &admin).await.expect("an admin writes them");
    let e = list_anchors(&channel, None).await.expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
}
