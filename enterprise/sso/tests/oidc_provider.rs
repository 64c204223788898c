//! SSO against a real, certified OpenID provider: npm `oidc-provider`, started here on
//! 127.0.0.1 port 0 (tests/support/provider.mjs). A good token of an admin group is allowed;
//! every bad token is refused with `UNAUTHENTICATED` and its own cause: expired, wrong
//! audience, wrong issuer (a second provider), `alg: none`, HMAC, tampered payload, unknown
//! `kid` (after a refresh), and a token from before a key rotation at the provider.
//!
//! Without `node` or `node_modules/oidc-provider` the tests fail under `CI=true` and are
//! skipped loudly otherwise. Bounded: every wait has a deadline; providers are killed on drop.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atp_enterprise_sso::{
    GroupAuthorizer, OidcAuthenticator, OidcValidator, SsoConfig, TokenRefusal,
};
use atp_grpc::tonic;
use atp_server::extensions::{Authenticator as _, Authorizer as _, CallInfo, Principal};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const SECRET: &str = "test-secret-not-for-production-0123456789";
const AUDIENCE: &str = "urn:atp:node";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `node` and the npm package, or `None` after a loud notice (a failure under `CI=true`).
fn node_with_provider() -> Option<PathBuf> {
    let node = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("node")).find(|p| p.is_file())
    });
    let package = repo_root().join("node_modules/oidc-provider/package.json");
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
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    async fn start(node: &Path) -> Provider {
        let mut child = Command::new(node)
            .arg(repo_root().join("enterprise/sso/tests/support/provider.mjs"))
            .current_dir(repo_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(issuer) = line.strip_prefix("ISSUER ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the provider did not start");
        Provider { child, issuer }
    }

    /// A client-credentials access token of `client` for `resource`.
    async fn token(&self, client: &str, resource: &str) -> String {
        let http = http_client();
        let body = http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", SECRET),
                ("scope", "atp"),
                ("resource", resource),
            ])
            .send()
            .await
            .expect("token request")
            .text()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_owned()
    }

    async fn rotate_keys(&self) {
        let r =
            http_client().post(format!("{}/__rotate", self.issuer)).send().await.expect("rotate");
        assert_eq!(r.status().as_u16(), 204);
    }
}

/// The test's own HTTP client (reqwest without a built-in TLS provider: install aws-lc-rs).
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

fn config(issuer: &str) -> SsoConfig {
    SsoConfig {
        leeway_seconds: 0,
        jwks_min_refresh_seconds: 0,
        admin_groups: vec!["atp-admins".into()],
        ..SsoConfig::new(issuer, AUDIENCE)
    }
}

fn b64_json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn parts(token: &str) -> (serde_json::Value, serde_json::Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p[0]).unwrap()).unwrap();
    let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p[1]).unwrap()).unwrap();
    (header, payload, p[2].to_owned())
}

fn call_with(token: &str) -> CallInfo {
    CallInfo {
        operation: "atp.v1.AdminService/SetTrustAnchors".into(),
        authorization: Some(format!("Bearer {token}")),
        ..CallInfo::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_a_real_provider_are_allowed_or_refused_with_their_own_cause() {
    let Some(node) = node_with_provider() else { return };
    let idp = Provider::start(&node).await;
    let other_idp = Provider::start(&node).await;
    let validator = Arc::new(OidcValidator::discover(config(&idp.issuer)).await.expect("discover"));

    // A good token of an admin group: allowed.
    let good = idp.token("atp-admin-bot", AUDIENCE).await;
    let p = validator.validate(&good).await.expect("a good token");
    assert_eq!(p.subject, "atp-admin-bot");
    assert_eq!(p.groups, vec!["atp-admins".to_owned()]);
    let authn = OidcAuthenticator::new(validator.clone(), |_| false);
    let authz = GroupAuthorizer::new(vec!["atp-admins".into()]);
    let principal = authn.authenticate(&call_with(&good)).await.expect("authenticated");
    assert!(matches!(&principal, Principal::User { id, .. } if id == "atp-admin-bot"));
    authz.authorize(&principal, "trust_anchors.set", "*").await.expect("admin group allowed");

    // A good token of another group: authenticated, then PERMISSION_DENIED.
    let viewer = idp.token("atp-viewer-bot", AUDIENCE).await;
    let principal = authn.authenticate(&call_with(&viewer)).await.expect("authenticated");
    let denied = authz.authorize(&principal, "trust_anchors.set", "*").await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let (header, payload, signature) = parts(&good);
    let mut refusals: Vec<(&str, String, TokenRefusal)> = Vec::new();

    // Wrong audience.
    let wrong_aud = idp.token("atp-admin-bot", "urn:other:service").await;
    refusals.push(("wrong audience", wrong_aud, TokenRefusal::WrongAudience));
    // Wrong issuer: a token of a second provider.
    let foreign = other_idp.token("atp-admin-bot", AUDIENCE).await;
    refusals.push(("wrong issuer", foreign, TokenRefusal::WrongIssuer));
    // alg: none, no signature.
    let none = format!("{}.{}.", b64_json(&serde_json::json!({"alg": "none"})), b64_json(&payload));
    refusals.push(("alg none", none, TokenRefusal::AlgorithmNotAllowed("none".into())));
    // HMAC with a public key as the secret is never tried.
    let hs = format!(
        "{}.{}.{signature}",
        b64_json(&serde_json::json!({"alg": "HS256", "kid": header["kid"]})),
        b64_json(&payload)
    );
    refusals.push(("HS256", hs, TokenRefusal::AlgorithmNotAllowed("HS256".into())));
    // A tampered payload: more groups, same signature.
    let mut tampered_claims = payload.clone();
    tampered_claims["groups"] = serde_json::json!(["atp-admins", "atp-auditors"]);
    tampered_claims["sub"] = serde_json::json!("mallory");
    let tampered =
        format!("{}.{}.{signature}", good.split('.').next().unwrap(), b64_json(&tampered_claims));
    refusals.push(("tampered payload", tampered, TokenRefusal::BadSignature));
    // An unknown kid: not in the JWKS, even after a refresh.
    let mut unknown_header = header.clone();
    unknown_header["kid"] = serde_json::json!("no-such-key");
    let unknown = format!("{}.{}.{signature}", b64_json(&unknown_header), b64_json(&payload));
    refusals.push(("unknown kid", unknown, TokenRefusal::UnknownKey));
    // Malformed.
    refusals.push(("malformed", "a.b.c".into(), TokenRefusal::Malformed(String::new())));

    let mut causes = BTreeSet::new();
    for (case, token, expected) in &refusals {
        let got = validator.validate(token).await.expect_err(case);
        match expected {
            TokenRefusal::Malformed(_) => {
                assert!(matches!(got, TokenRefusal::Malformed(_)), "{case}: {got:?}")
            }
            _ => assert_eq!(&got, expected, "{case}"),
        }
        // Through the seam: UNAUTHENTICATED, reason AUTH_INVALID, cause in the metadata.
        let e = authn.authenticate(&call_with(token)).await.expect_err(case);
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{case}");
        assert_eq!(e.reason(), "AUTH_INVALID", "{case}");
        let status = e.to_status();
        let info = atp_grpc::status::error_info(&status).expect("ErrorInfo");
        let cause = info.metadata.get("cause").cloned().expect("a cause");
        assert_eq!(cause, got.code(), "{case}");
        causes.insert(cause);
    }
    assert_eq!(causes.len(), refusals.len() - 1, "each refusal has its own cause: {causes:?}");

    // Expired: a 1 s token, checked with no leeway after it lapsed.
    let short = idp.token("atp-short-bot", AUDIENCE).await;
    validator.validate(&short).await.expect("valid while fresh");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(validator.validate(&short).await, Err(TokenRefusal::Expired));
    let e = authn.authenticate(&call_with(&short)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);

    // No credentials: anonymous, then AUTH_REQUIRED (UNAUTHENTICATED) from the authorizer.
    let anonymous = authn.authenticate(&CallInfo::default()).await.unwrap();
    assert_eq!(anonymous, Principal::Anonymous);
    let e = authz.authorize(&anonymous, "trust_anchors.set", "*").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_at_the_provider_refreshes_the_jwks_and_retires_old_tokens() {
    let Some(node) = node_with_provider() else { return };
    let idp = Provider::start(&node).await;
    let validator = OidcValidator::discover(config(&idp.issuer)).await.expect("discover");
    let before = idp.token("atp-admin-bot", AUDIENCE).await;
    validator.validate(&before).await.expect("valid before the rotation");
    assert_eq!(validator.jwks_fetches(), 1);

    idp.rotate_keys().await;
    let after = idp.token("atp-admin-bot", AUDIENCE).await;
    assert_ne!(parts(&after).0["kid"], parts(&before).0["kid"], "the provider has a new key");
    // The new kid is unknown: the JWKS is fetched again, and the new token verifies.
    validator.validate(&after).await.expect("valid after a refresh");
    assert_eq!(validator.jwks_fetches(), 2);
    // The old key is gone from the provider's JWKS: tokens signed before the rotation fail.
    assert_eq!(validator.validate(&before).await, Err(TokenRefusal::UnknownKey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refresh_the_jwks_at_most_once_per_interval() {
    let Some(node) = node_with_provider() else { return };
    let idp = Provider::start(&node).await;
    let validator = OidcValidator::discover(SsoConfig {
        jwks_min_refresh_seconds: 3600,
        ..config(&idp.issuer)
    })
    .await
    .expect("discover");
    let good = idp.token("atp-admin-bot", AUDIENCE).await;
    let (mut header, payload, signature) = parts(&good);
    for i in 0..20 {
        header["kid"] = serde_json::json!(format!("attacker-{i}"));
        let t = format!("{}.{}.{signature}", b64_json(&header), b64_json(&payload));
        assert_eq!(validator.validate(&t).await, Err(TokenRefusal::UnknownKey));
    }
    assert_eq!(validator.jwks_fetches(), 1, "unknown kids must not make the node hammer the IdP");
    validator.validate(&good).await.expect("the good token still verifies");
}
