//! Shared by the enterprise tests of the real node binary: child processes killed on drop, the
//! npm `oidc-provider` on loopback (enterprise/sso/tests/support/provider.mjs), the node started
//! with a configuration file, and client-credentials tokens from the provider.
//!
//! Without `node` / `node_modules/oidc-provider` a test fails under `CI=true` and is skipped
//! loudly otherwise ([`node_js`]). Every wait has a deadline.
#![allow(dead_code, missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_atp-node");
/// The client secret of every client in provider.mjs.
pub const SECRET: &str = "test-secret-not-for-production-0123456789";
/// The resource (audience) the node's `[sso]` sections expect.
pub const NODE_RESOURCE: &str = "urn:atp:node";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `node` with `oidc-provider` installed: `None` (after a loud notice) outside CI, a failure
/// under `CI=true`.
pub fn node_js() -> Option<PathBuf> {
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
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` and returns it with the rest of the first stdout line that starts with each of
/// `prefixes` (one value per prefix, in order), within 30 s.
pub async fn spawn_announcing(mut cmd: Command, prefixes: &[&str]) -> (Proc, Vec<String>) {
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
                    values[i].get_or_insert_with(|| v.to_owned());
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

/// The OpenID provider of provider.mjs on loopback; returns it and its issuer URL.
pub async fn start_idp(node: &Path) -> (Proc, String) {
    let mut idp = Command::new(node);
    idp.arg(repo_root().join("enterprise/sso/tests/support/provider.mjs"))
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stderr(Stdio::null());
    let (idp, mut v) = spawn_announcing(idp, &["ISSUER "]).await;
    (idp, v.remove(0))
}

/// The real node with `config_text` (in `dir`, data in `dir/data`) on 127.0.0.1:0; returns it
/// and a channel to it.
pub async fn start_node(dir: &Path, config_text: &str) -> (Proc, Channel) {
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

/// A client-credentials access token of `client` for `resource` (the client's groups are
/// fixed by provider.mjs).
pub async fn token(issuer: &str, client: &str, resource: &str) -> String {
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

/// `message` with `authorization: Bearer <bearer>`.
pub fn with_bearer<T>(message: T, bearer: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    request
}
