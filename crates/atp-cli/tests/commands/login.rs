//! `atp login` / `atp logout` against a real OpenID provider: the npm package `oidc-provider`,
//! started here on 127.0.0.1 port 0 (tests/support/oidc_provider.mjs). The test plays the
//! user's browser over HTTP: it posts the device flow's user code to the provider's page, or
//! follows the PKCE authorization URL, and completes the provider's login and consent pages.
//! The admin commands run against a real in-process node whose admin-token check accepts
//! exactly the access token the provider issued and the CLI stored.
//!
//! Without `node` or `node_modules/oidc-provider` the tests fail under `CI=true` and are
//! skipped loudly otherwise. Bounded: every wait has a deadline; the provider and the `atp`
//! processes are killed on drop.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{ADMIN_TOKEN, start_node_with, workspace_root};
use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

const ATP: &str = env!("CARGO_BIN_EXE_atp");
const RESOURCE: &str = "urn:atp:node";
const SCOPES: &str = "openid offline_access atp";

/// `node` and the npm package, or `None` after a loud notice (a failure under `CI=true`).
fn node_with_provider() -> Option<PathBuf> {
    let node = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("node")).find(|p| p.is_file())
    });
    let package = workspace_root().join("node_modules/oidc-provider/package.json");
    if node.is_none() || !package.is_file() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "node or node_modules/oidc-provider is missing (scripts/test.sh installs it)");
        eprintln!("\n!!! SKIPPED: node or node_modules/oidc-provider is missing !!!\n");
        return None;
    }
    node
}

/// A running provider; killed on drop.
struct Provider {
    child: tokio::process::Child,
    issuer: String,
}

impl Provider {
    async fn start(node: &Path) -> Provider {
        let mut child = tokio::process::Command::new(node)
            .arg(workspace_root().join("crates/atp-cli/tests/support/oidc_provider.mjs"))
            .current_dir(workspace_root())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(issuer) = line.strip_prefix("ISSUER ") {
                    return issuer.to_owned();
                }
            }
            panic!("the provider exited before listening")
        })
        .await
        .expect("the provider did not start within 30 s");
        // Keep reading: a closed stdout would kill node (EPIPE) at its next write.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Provider { child, issuer }
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("kill the provider");
    }

    /// A refresh-token grant straight at the token endpoint: the HTTP status and the JSON.
    async fn refresh(&self, client_id: &str, refresh_token: &str) -> (u16, Value) {
        let response = http()
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .expect("token request");
        let status = response.status().as_u16();
        (status, serde_json::from_slice(&response.bytes().await.unwrap()).expect("JSON"))
    }

    /// RFC 7009 straight at the provider.
    async fn revoke(&self, client_id: &str, token: &str) {
        let response = http()
            .post(format!("{}/token/revocation", self.issuer))
            .form(&[("token", token), ("client_id", client_id)])
            .send()
            .await
            .expect("revocation request");
        assert_eq!(response.status().as_u16(), 200);
    }
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The user's browser: follows redirects by hand and keeps the provider's cookies (all of them
/// on every request: one provider, one flow at a time).
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// A page the browser ended on.
struct Page {
    url: reqwest::Url,
    status: u16,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser { http: http(), cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = set.to_ascii_lowercase().contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("browser request");
        self.keep_cookies(&response);
        response
    }

    /// Follows redirects (at most 20) to the final page.
    async fn follow(&mut self, mut url: reqwest::Url, mut response: reqwest::Response) -> Page {
        for _ in 0..20 {
            if !response.status().is_redirection() {
                let status = response.status().as_u16();
                return Page { url, status, body: response.text().await.unwrap() };
            }
            let location = response.headers()[reqwest::header::LOCATION].to_str().unwrap();
            url = url.join(location).unwrap();
            response = self.send(self.http.get(url.clone())).await;
        }
        panic!("more than 20 redirects");
    }

    async fn get(&mut self, url: &str) -> Page {
        let url = reqwest::Url::parse(url).unwrap();
        let response = self.send(self.http.get(url.clone())).await;
        self.follow(url, response).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let url = reqwest::Url::parse(url).unwrap();
        let response = self.send(self.http.post(url.clone()).form(form)).await;
        self.follow(url, response).await
    }

    /// Completes the provider's development login (as `user`) and consent pages, whichever
    /// it shows, and returns the page after them.
    async fn sign_in(&mut self, mut page: Page, user: &str) -> Page {
        for _ in 0..4 {
            if page.body.contains(r#"name="prompt" value="login""#) {
                let url = page.url.to_string();
                page = self
                    .post(&url, &[("prompt", "login"), ("login", user), ("password", "any")])
                    .await;
            } else if page.body.contains(r#"name="prompt" value="consent""#) {
                let url = page.url.to_string();
                page = self.post(&url, &[("prompt", "consent")]).await;
            } else {
                return page;
            }
        }
        panic!("the provider kept asking: {}", page.body);
    }
}

/// The value of a hidden form field.
fn form_field(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start =
        html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Posts the user code on the provider's device page, confirms it (or aborts), and signs in.
async fn enter_user_code(issuer: &str, user_code: &str, user: &str, abort: bool) -> Page {
    let mut browser = Browser::new();
    let page = browser.get(&format!("{issuer}/device")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let xsrf = form_field(&page.body, "xsrf");
    let confirm = browser
        .post(&format!("{issuer}/device"), &[("xsrf", &xsrf), ("user_code", user_code)])
        .await;
    assert!(confirm.body.contains("op.deviceConfirmForm"), "{}", confirm.body);
    let last = if abort { ("abort", "yes") } else { ("confirm", "yes") };
    let page = browser
        .post(&format!("{issuer}/device"), &[("xsrf", &xsrf), ("user_code", user_code), last])
        .await;
    browser.sign_in(page, user).await
}

/// A running `atp` whose stderr is read line by line while it runs.
struct AtpProcess {
    child: tokio::process::Child,
    stderr: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

struct Finished {
    code: i32,
    stdout: String,
    stderr: String,
}

fn atp_command(home: &Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(ATP);
    command
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ATP_NODE")
        .env_remove("ATP_AGENT")
        .env_remove("ATP_HOME")
        .env_remove("ATP_PROFILE")
        .env_remove("ATP_ADMIN_TOKEN_FILE")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

impl AtpProcess {
    fn spawn(home: &Path, args: &[&str]) -> AtpProcess {
        let mut child = atp_command(home, args, &[]).spawn().expect("spawn atp");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        AtpProcess { child, stderr: rx, seen: Vec::new() }
    }

    /// The rest of the first stderr line that starts with `prefix`.
    async fn line_after(&mut self, prefix: &str) -> String {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = self.stderr.recv().await.unwrap_or_else(|| {
                    panic!("atp ended without printing {prefix:?}: {:?}", self.seen)
                });
                self.seen.push(line.clone());
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.trim().to_owned();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {prefix:?} within 30 s: {:?}", self.seen))
    }

    async fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(60), async {
            out.read_to_string(&mut stdout).await.unwrap();
            self.child.wait().await.unwrap()
        })
        .await
        .expect("atp did not finish within 60 s");
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(5), self.stderr.recv()).await
        {
            self.seen.push(line);
        }
        Finished { code: status.code().unwrap_or(-1), stdout, stderr: self.seen.join("\n") }
    }
}

/// Runs `atp` to the end (60 s bound).
async fn atp(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let out = tokio::time::timeout(Duration::from_secs(60), atp_command(home, args, env).output())
        .await
        .expect("atp took more than 60 s")
        .expect("atp output");
    Finished {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `atp login` with the device grant, driven to the end: the user code goes to the provider's
/// page and `user` signs in.
async fn device_login(
    home: &Path,
    issuer: &str,
    client: &str,
    profile: &str,
    user: &str,
) -> Finished {
    let mut login = AtpProcess::spawn(
        home,
        &[
            "--json",
            "--profile",
            profile,
            "login",
            "--issuer",
            issuer,
            "--client-id",
            client,
            "--resource",
            RESOURCE,
            "--scope",
            SCOPES,
        ],
    );
    let uri = login.line_after("To sign in, open ").await;
    assert_eq!(uri, format!("{issuer}/device"));
    let user_code = login.line_after("and enter the code:").await;
    let done = enter_user_code(issuer, &user_code, user, false).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Sign-in Success"), "{}", done.body);
    login.finish().await
}

/// `atp login --pkce`, driven to the end through the authorization URL; before the real
/// redirect, a forged one with another `state` reaches the CLI's listener and is refused.
async fn pkce_login(
    home: &Path,
    issuer: &str,
    client: &str,
    profile: &str,
    user: &str,
) -> Finished {
    let mut login = AtpProcess::spawn(
        home,
        &[
            "--json",
            "--profile",
            profile,
            "login",
            "--pkce",
            "--issuer",
            issuer,
            "--client-id",
            client,
            "--resource",
            RESOURCE,
            "--scope",
            SCOPES,
        ],
    );
    login.line_after("To sign in, open this URL").await;
    let url = login.line_after("").await;
    let auth = reqwest::Url::parse(&url).unwrap();
    let query: BTreeMap<String, String> = auth.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["response_type"], "code");
    let redirect = reqwest::Url::parse(&query["redirect_uri"]).unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    // A forged redirect (a code of the attacker's, another state): 400, the login goes on.
    let forged = http()
        .get(format!("{redirect}?code=attacker-code&state=not-the-state"))
        .send()
        .await
        .expect("the CLI's redirect listener");
    assert_eq!(forged.status().as_u16(), 400);

    let mut browser = Browser::new();
    let page = browser.get(&url).await;
    let done = browser.sign_in(page, user).await;
    assert_eq!(done.url.host_str(), Some("127.0.0.1"));
    assert_eq!(done.url.port(), redirect.port(), "the provider redirected to the CLI");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Signed in to atp"), "{}", done.body);
    let finished = login.finish().await;
    // One use: nothing listens on the redirect port any more.
    assert!(http().get(redirect.as_str()).send().await.is_err(), "the listener is closed");
    finished
}

fn credentials(home: &Path) -> Value {
    let text = std::fs::read_to_string(home.join("credentials")).expect("credentials file");
    serde_json::from_str(&text).unwrap()
}

fn stored(home: &Path, profile: &str, field: &str) -> String {
    credentials(home)["profiles"][profile][field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} for {profile}"))
        .to_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap()
}

/// A node whose admin check accepts the access token stored for `profile` in `home` at the
/// moment of the call (the CLI writes a refreshed token before it calls), or the break-glass
/// admin token; it records every token presented.
async fn node_accepting_stored(
    home: &Path,
    profile: &'static str,
) -> (crate::support::TestNode, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (home, log) = (home.to_path_buf(), seen.clone());
    let node = start_node_with(move |token: &str| {
        log.lock().unwrap().push(token.to_owned());
        let stored = std::fs::read_to_string(home.join("credentials"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["profiles"][profile]["accessToken"].as_str().map(str::to_owned));
        token == ADMIN_TOKEN || stored.as_deref() == Some(token)
    })
    .await;
    (node, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_stores_private_tokens_that_admin_commands_send() {
    let Some(node_js) = node_with_provider() else { return };
    let idp = Provider::start(&node_js).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");

    let login = device_login(&home, &idp.issuer, "atp-cli", "default", "alice").await;
    assert_eq!(login.code, 0, "stdout: {}\nstderr: {}", login.stdout, login.stderr);
    let out: Value = serde_json::from_str(login.stdout.trim()).expect("one JSON object");
    assert_eq!(out["issuer"], idp.issuer.as_str());
    assert_eq!(out["subject"], "alice");
    assert_eq!(out["refreshToken"], true);

    // The file: 0600, the provider's tokens, never printed.
    let path = home.join("credentials");
    assert_eq!(mode(&path), 0o600);
    let access = stored(&home, "default", "accessToken");
    let refresh = stored(&home, "default", "refreshToken");
    let c = claims(&access);
    assert_eq!(c["iss"], idp.issuer.as_str());
    assert_eq!(c["aud"], RESOURCE);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["groups"], serde_json::json!(["atp-admins"]));
    // `expiresAt` is the CLI's clock plus `expires_in` when the answer arrived; `exp` is the
    // provider's clock when it issued the token. Same machine, so they agree up to the second
    // that may pass between the two readings.
    let expires_at = credentials(&home)["profiles"]["default"]["expiresAt"].as_i64().unwrap();
    let exp = c["exp"].as_i64().unwrap();
    assert!((0..=2).contains(&(expires_at - exp)), "expiresAt {expires_at}, exp {exp}");
    assert!(!refresh.is_empty());
    for text in [&login.stdout, &login.stderr] {
        assert!(!text.contains(&access) && !text.contains(&refresh), "a token was printed");
    }

    // Admin commands send the stored token; the node accepts exactly that token.
    let (node, seen) = node_accepting_stored(&home, "default").await;
    let net = ["--node", node.url.as_str(), "--agent", "ops"];
    let new = atp(&home, &[&net[..], &["id", "new"]].concat(), &[]).await;
    assert_eq!(new.code, 0, "{}", new.stderr);
    let list = atp(&home, &[&net[..], &["--json", "admin", "anchors", "list"]].concat(), &[]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(seen.lock().unwrap().last(), Some(&access), "fresh: sent as stored");
    assert_eq!(stored(&home, "default", "accessToken"), access, "no refresh while fresh");

    // Precedence: an explicit admin token wins over the stored login.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-admin-token").unwrap();
    let explicit = [("ATP_ADMIN_TOKEN_FILE", wrong.to_str().unwrap())];
    let refused = atp(&home, &[&net[..], &["admin", "anchors", "list"]].concat(), &explicit).await;
    assert_eq!(refused.code, 3, "the explicit (wrong) token was sent: {}", refused.stderr);
    assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some("not-the-admin-token"));
    let good = dir.path().join("admin.token");
    std::fs::write(&good, ADMIN_TOKEN).unwrap();
    let explicit = [("ATP_ADMIN_TOKEN_FILE", good.to_str().unwrap())];
    let ok = atp(&home, &[&net[..], &["admin", "anchors", "list"]].concat(), &explicit).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some(ADMIN_TOKEN));

    // Another profile has no stored login: a usage error that names `atp login`.
    let none =
        atp(&home, &[&net[..], &["--profile", "other", "admin", "anchors", "list"]].concat(), &[])
            .await;
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("atp login"), "{}", none.stderr);

    // A credentials file that others may read is refused, and nothing is sent.
    let calls = seen.lock().unwrap().len();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let insecure = atp(&home, &[&net[..], &["admin", "anchors", "list"]].concat(), &[]).await;
    assert_eq!(insecure.code, 4, "{}", insecure.stderr);
    assert!(insecure.stderr.contains("[CREDENTIALS_INSECURE]"), "{}", insecure.stderr);
    assert_eq!(seen.lock().unwrap().len(), calls, "no call with a refused file");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let again = atp(&home, &[&net[..], &["admin", "anchors", "list"]].concat(), &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_login_refreshes_expiring_tokens_and_logout_revokes_them() {
    let Some(node_js) = node_with_provider() else { return };
    let idp = Provider::start(&node_js).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // atp-cli-short: 10 s access tokens, always within the CLI's 30 s refresh margin.
    let a = pkce_login(&home, &idp.issuer, "atp-cli-short", "a", "alice").await;
    assert_eq!(a.code, 0, "stdout: {}\nstderr: {}", a.stdout, a.stderr);
    let out: Value = serde_json::from_str(a.stdout.trim()).expect("one JSON object");
    assert_eq!(out["subject"], "alice");
    assert_eq!(out["refreshToken"], true, "offline_access with prompt=consent");
    assert_eq!(mode(&home.join("credentials")), 0o600);
    // A second, independent login (another browser session, so another grant).
    let b = pkce_login(&home, &idp.issuer, "atp-cli-short", "b", "bob").await;
    assert_eq!(b.code, 0, "stdout: {}\nstderr: {}", b.stdout, b.stderr);
    assert_eq!(claims(&stored(&home, "b", "accessToken"))["sub"], "bob");
    assert_eq!(claims(&stored(&home, "a", "accessToken"))["sub"], "alice", "a is kept");

    // Refresh within the margin, then after expiry: each admin command refreshes first, and
    // the node gets the new token.
    let (node, seen) = node_accepting_stored(&home, "a").await;
    let net = ["--node", node.url.as_str(), "--agent", "ops", "--profile", "a"];
    let new = atp(&home, &[&net[..], &["id", "new"]].concat(), &[]).await;
    assert_eq!(new.code, 0, "{}", new.stderr);
    let mut previous = stored(&home, "a", "accessToken");
    let mut previous_refresh = stored(&home, "a", "refreshToken");
    for round in ["within the margin", "after expiry"] {
        let exp = claims(&previous)["exp"].as_u64().unwrap();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        if round == "after expiry" {
            tokio::time::sleep(Duration::from_secs(exp.saturating_sub(now) + 1)).await;
        } else {
            assert!(exp > now + 2, "the token is still valid: only the margin makes it refresh");
        }
        let list = atp(&home, &[&net[..], &["admin", "anchors", "list"]].concat(), &[]).await;
        assert_eq!(list.code, 0, "{round}: {}", list.stderr);
        let current = stored(&home, "a", "accessToken");
        assert_ne!(current, previous, "{round}: refreshed");
        assert_eq!(seen.lock().unwrap().last(), Some(&current), "{round}: the new token sent");
        assert_eq!(claims(&current)["sub"], "alice");
        let current_refresh = stored(&home, "a", "refreshToken");
        assert_ne!(current_refresh, previous_refresh, "{round}: the provider rotated it");
        assert_eq!(mode(&home.join("credentials")), 0o600);
        previous = current;
        previous_refresh = current_refresh;
    }

    // Concurrent admin commands refresh one after the other (the credentials lock), each with
    // the refresh token its predecessor stored: a reused rotated token would end the grant.
    let args = [&net[..], &["admin", "anchors", "list"]].concat();
    let (r1, r2, r3) =
        tokio::join!(atp(&home, &args, &[]), atp(&home, &args, &[]), atp(&home, &args, &[]));
    for r in [&r1, &r2, &r3] {
        assert_eq!(r.code, 0, "concurrent refresh: {}", r.stderr);
    }
    assert!(!home.join(".credentials.lock").exists(), "the lock is released");

    // Logout revokes at the provider and deletes a; b stays, and b's refresh token still works
    // (the control: only a's grant ended).
    let a_refresh = stored(&home, "a", "refreshToken");
    let b_refresh = stored(&home, "b", "refreshToken");
    let logout = atp(&home, &["--profile", "a", "--json", "logout"], &[]).await;
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    let out: Value = serde_json::from_str(logout.stdout.trim()).unwrap();
    assert_eq!(out["revoked"], true);
    assert!(credentials(&home)["profiles"].get("a").is_none(), "a deleted");
    let (status, body) = idp.refresh("atp-cli-short", &a_refresh).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "revoked: {body}");
    let (status, body) = idp.refresh("atp-cli-short", &b_refresh).await;
    assert_eq!(status, 200, "b's grant is alive: {body}");
    let listed = atp(&home, &[&net[..], &["admin", "anchors", "list"]].concat(), &[]).await;
    assert_eq!(listed.code, 2, "no stored login after logout: {}", listed.stderr);

    // A refresh that fails (b's refresh token was rotated away and is revoked): exit 4 and
    // "run `atp login` again"; the node is not called.
    idp.revoke("atp-cli-short", &b_refresh).await;
    let calls = seen.lock().unwrap().len();
    let b_net = ["--node", node.url.as_str(), "--agent", "ops", "--profile", "b"];
    let failed = atp(&home, &[&b_net[..], &["admin", "anchors", "list"]].concat(), &[]).await;
    assert_eq!(failed.code, 4, "{}", failed.stderr);
    assert!(failed.stderr.contains("[LOGIN_REQUIRED]"), "{}", failed.stderr);
    assert!(failed.stderr.contains("run `atp login` again"), "{}", failed.stderr);
    assert_eq!(seen.lock().unwrap().len(), calls);

    // Logout with the provider gone: a warning, and the tokens are deleted here anyway.
    idp.stop().await;
    let offline = atp(&home, &["--profile", "b", "logout"], &[]).await;
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    assert!(offline.stderr.contains("warning: could not revoke"), "{}", offline.stderr);
    assert!(!home.join("credentials").exists(), "the last login deleted the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_refused_or_abandoned_stores_nothing() {
    let Some(node_js) = node_with_provider() else { return };
    let idp = Provider::start(&node_js).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");

    // The user aborts on the provider's confirmation page: access_denied.
    let mut login = AtpProcess::spawn(
        &home,
        &["login", "--issuer", &idp.issuer, "--client-id", "atp-cli", "--scope", SCOPES],
    );
    let user_code = login.line_after("and enter the code:").await;
    enter_user_code(&idp.issuer, &user_code, "alice", true).await;
    let denied = login.finish().await;
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    assert!(denied.stderr.contains("[LOGIN_DENIED]"), "{}", denied.stderr);
    assert!(!home.join("credentials").exists());

    // Nobody enters the code before the deadline.
    let late = atp(
        &home,
        &["login", "--issuer", &idp.issuer, "--client-id", "atp-cli", "--timeout", "2"],
        &[],
    )
    .await;
    assert_eq!(late.code, 3, "{}", late.stderr);
    assert!(late.stderr.contains("[LOGIN_EXPIRED]"), "{}", late.stderr);
    assert!(!home.join("credentials").exists());

    // An unknown client: the provider's own error, one line, exit 3.
    let unknown =
        atp(&home, &["login", "--issuer", &idp.issuer, "--client-id", "nobody"], &[]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("invalid_client"), "{}", unknown.stderr);

    // A plain-http issuer off loopback is refused before any request.
    let insecure =
        atp(&home, &["login", "--issuer", "http://idp.example.com", "--client-id", "x"], &[]).await;
    assert_eq!(insecure.code, 2, "{}", insecure.stderr);
    assert!(insecure.stderr.contains("https"), "{}", insecure.stderr);
    assert!(!home.join("credentials").exists());
}
