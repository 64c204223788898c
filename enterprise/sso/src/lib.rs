//! ATP enterprise edition: OIDC single sign-on for operators.
//!
//! - [`OidcValidator`] discovers the configured issuer (OpenID Connect Discovery, with
//!   `openidconnect`), caches its JWKS, refreshes it when a token names an unknown `kid`
//!   (at most once per [`SsoConfig::jwks_min_refresh_seconds`]) or when it is older than
//!   [`SsoConfig::jwks_max_age_seconds`], and validates bearer access tokens (JWT): the
//!   algorithm against an allow-list (never `none`, never HMAC: the keys are public), the
//!   issuer, the signature with the issuer's key, the audience, `exp` and `nbf` with a leeway.
//!   The token becomes an [`OidcPrincipal`]: subject, email, and groups from a configurable
//!   claim path (`groups`, `realm_access.roles`, …).
//! - [`OidcAuthenticator`] implements the `atp-server` [`Authenticator`] seam: a JWT bearer
//!   becomes [`Principal::User`] with its groups as roles; optionally the node's admin token
//!   stays valid as a break-glass credential. Every refusal is `UNAUTHENTICATED`
//!   (`AUTH_INVALID`) with its own cause in the `ErrorInfo` metadata (`cause`, see
//!   [`TokenRefusal::code`]).
//! - [`GroupAuthorizer`]: without RBAC, the members of the configured admin groups may do
//!   every admin operation; everyone else is refused (deny by default).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atp_server::ServerError;
use atp_server::extensions::{Authenticator, Authorizer, CallInfo, Principal, SeamFuture};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    IssuerUrl, JsonWebKey as _, JsonWebKeyAlgorithm, JsonWebKeySet, JsonWebKeySetUrl,
    JsonWebKeyUse as _,
};
use serde::Deserialize;
use serde_json::Value;

/// The longest bearer token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The most groups taken from one token.
pub const MAX_GROUPS: usize = 256;
/// The algorithms accepted by default: asymmetric only.
pub const DEFAULT_ALGORITHMS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA"];
/// Algorithms that are never accepted, whatever the configuration says.
const FORBIDDEN_ALGORITHMS: &[&str] = &["none", "HS256", "HS384", "HS512"];

/// Errors of this crate (configuration and discovery; token refusals are [`TokenRefusal`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SsoError {
    /// The `[sso]` configuration is unusable.
    #[error("[sso] {0}")]
    Config(String),
    /// Discovery or the JWKS fetch failed.
    #[error("OIDC discovery of {issuer}: {reason}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// What failed.
        reason: String,
    },
}

/// The `[sso]` section of the node configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// The issuer URL, exactly as the IdP's discovery document states it.
    pub issuer: String,
    /// The audience the node's access tokens carry (`aud`).
    pub audience: String,
    /// Accepted signature algorithms. Default: RS256, PS256, ES256, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock leeway for `exp` and `nbf`, in seconds. Default 30, at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The claim that holds the groups or roles, as a dotted path. Default `groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The claim that holds the e-mail address. Default `email`.
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// Groups whose members are node administrators when RBAC is not configured.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Keep accepting the node's admin token (break-glass). Default `true`.
    #[serde(default = "default_true")]
    pub allow_admin_token: bool,
    /// The shortest interval between two JWKS fetches triggered by unknown `kid`s, in seconds.
    /// Default 30.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_seconds: u64,
    /// The JWKS is fetched again when older than this, in seconds. Default 3600.
    #[serde(default = "default_max_age")]
    pub jwks_max_age_seconds: u64,
    /// Timeout of each HTTP request to the IdP, in seconds. Default 10.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_seconds: u64,
}

fn default_algorithms() -> Vec<String> {
    DEFAULT_ALGORITHMS.iter().map(|s| (*s).to_owned()).collect()
}
fn default_leeway() -> u64 {
    30
}
fn default_groups_claim() -> String {
    "groups".to_owned()
}
fn default_email_claim() -> String {
    "email".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_min_refresh() -> u64 {
    30
}
fn default_max_age() -> u64 {
    3600
}
fn default_http_timeout() -> u64 {
    10
}

impl SsoConfig {
    /// A configuration with the defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        SsoConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: default_algorithms(),
            leeway_seconds: default_leeway(),
            groups_claim: default_groups_claim(),
            email_claim: default_email_claim(),
            admin_groups: Vec::new(),
            allow_admin_token: true,
            jwks_min_refresh_seconds: default_min_refresh(),
            jwks_max_age_seconds: default_max_age(),
            http_timeout_seconds: default_http_timeout(),
        }
    }

    /// Refuses `none` and HMAC algorithms, unknown algorithms, an empty audience, a plaintext
    /// issuer off loopback, a leeway above 300 s and an empty claim path.
    pub fn validate(&self) -> Result<(), SsoError> {
        let bad = |m: String| Err(SsoError::Config(m));
        let url = reqwest::Url::parse(&self.issuer)
            .map_err(|e| SsoError::Config(format!("issuer {:?}: {e}", self.issuer)))?;
        let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return bad(format!("issuer {} must be https (http only on loopback)", self.issuer));
        }
        if self.audience.trim().is_empty() {
            return bad("audience must not be empty".into());
        }
        if self.algorithms.is_empty() {
            return bad("algorithms must not be empty".into());
        }
        for alg in &self.algorithms {
            if FORBIDDEN_ALGORITHMS.iter().any(|f| f.eq_ignore_ascii_case(alg)) {
                return bad(format!("algorithm {alg} is never accepted (asymmetric only)"));
            }
            if parse_alg(alg).is_none() {
                return bad(format!("unknown algorithm {alg}"));
            }
        }
        if self.leeway_seconds > 300 {
            return bad("leeway_seconds must be at most 300".into());
        }
        if self.groups_claim.is_empty() || self.email_claim.is_empty() {
            return bad("groups_claim and email_claim must not be empty".into());
        }
        if self.http_timeout_seconds == 0 || self.http_timeout_seconds > 120 {
            return bad("http_timeout_seconds must be 1 to 120".into());
        }
        Ok(())
    }
}

fn parse_alg(alg: &str) -> Option<CoreJwsSigningAlgorithm> {
    serde_json::from_value(Value::String(alg.to_owned())).ok()
}

/// Why a token was refused. Every refusal is `UNAUTHENTICATED`; [`TokenRefusal::code`] is the
/// cause in the error's metadata.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// Not a JWS compact serialization, bad base64 or JSON, too long, or a required claim is
    /// missing or of the wrong type.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The `alg` is not on the allow-list (`none` and HMAC never are).
    #[error("algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(String),
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// No key of the issuer's JWKS (after a refresh) has the token's `kid`.
    #[error("no key of the issuer has this key id")]
    UnknownKey,
    /// The signature does not verify (tampered token, or wrong key).
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `aud` does not contain the configured audience.
    #[error("the token is for another audience")]
    WrongAudience,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The issuer's keys could not be fetched.
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable,
}

impl TokenRefusal {
    /// A stable code for the cause (the `cause` metadata of the `AUTH_INVALID` error).
    pub fn code(&self) -> &'static str {
        match self {
            TokenRefusal::Malformed(_) => "TOKEN_MALFORMED",
            TokenRefusal::AlgorithmNotAllowed(_) => "TOKEN_ALGORITHM_NOT_ALLOWED",
            TokenRefusal::WrongIssuer => "TOKEN_WRONG_ISSUER",
            TokenRefusal::UnknownKey => "TOKEN_UNKNOWN_KEY",
            TokenRefusal::BadSignature => "TOKEN_BAD_SIGNATURE",
            TokenRefusal::WrongAudience => "TOKEN_WRONG_AUDIENCE",
            TokenRefusal::Expired => "TOKEN_EXPIRED",
            TokenRefusal::NotYetValid => "TOKEN_NOT_YET_VALID",
            TokenRefusal::KeysUnavailable => "TOKEN_KEYS_UNAVAILABLE",
        }
    }
}

impl From<TokenRefusal> for ServerError {
    fn from(r: TokenRefusal) -> Self {
        ServerError::Rejected {
            reason: atp_grpc::reasons::AUTH_INVALID,
            message: format!("invalid bearer token: {r}"),
            metadata: vec![("cause", r.code().to_owned())],
        }
    }
}

/// Who a valid token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcPrincipal {
    /// `sub`.
    pub subject: String,
    /// The e-mail claim, when present.
    pub email: Option<String>,
    /// The groups or roles of the configured claim path.
    pub groups: Vec<String>,
}

struct KeyCache {
    keys: JsonWebKeySet<CoreJsonWebKey>,
    fetched: Instant,
}

/// Validates the issuer's access tokens. Cheap to share (`Arc`).
pub struct OidcValidator {
    config: SsoConfig,
    allowed: Vec<CoreJwsSigningAlgorithm>,
    http: reqwest::Client,
    jwks_url: JsonWebKeySetUrl,
    cache: tokio::sync::RwLock<KeyCache>,
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl fmt::Debug for OidcValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcValidator")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, SsoError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SsoError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        // The IdP's answers are followed only where discovery says: no redirects (SSRF).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| SsoError::Config(format!("HTTP client: {e}")))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl OidcValidator {
    /// Validates `config`, discovers the issuer and fetches its keys.
    pub async fn discover(config: SsoConfig) -> Result<Self, SsoError> {
        config.validate()?;
        let http = http_client(Duration::from_secs(config.http_timeout_seconds))?;
        let discovery_err =
            |reason: String| SsoError::Discovery { issuer: config.issuer.clone(), reason };
        let issuer =
            IssuerUrl::new(config.issuer.clone()).map_err(|e| discovery_err(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| discovery_err(error_chain(&e)))?;
        let jwks_url = metadata.jwks_uri().clone();
        let keys = metadata.jwks().clone();
        let allowed = config.algorithms.iter().filter_map(|a| parse_alg(a)).collect();
        tracing::info!(
            issuer = %config.issuer,
            keys = keys.keys().len(),
            "OIDC issuer discovered"
        );
        Ok(OidcValidator {
            config,
            allowed,
            http,
            jwks_url,
            cache: tokio::sync::RwLock::new(KeyCache { keys, fetched: Instant::now() }),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(1),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SsoConfig {
        &self.config
    }

    /// How many times the JWKS was fetched (discovery included).
    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches the JWKS again unless the last fetch is more recent than `min_age`. Returns
    /// whether it fetched.
    async fn refresh_keys(&self, min_age: Duration) -> Result<bool, TokenRefusal> {
        let _one_at_a_time = self.refresh.lock().await;
        if self.cache.read().await.fetched.elapsed() < min_age {
            return Ok(false);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match JsonWebKeySet::fetch_async(&self.jwks_url, &self.http).await {
            Ok(keys) => {
                *self.cache.write().await = KeyCache { keys, fetched: Instant::now() };
                tracing::info!(issuer = %self.config.issuer, "OIDC keys refreshed");
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %error_chain(&e), "OIDC key refresh failed");
                // Do not hammer a failing IdP either.
                self.cache.write().await.fetched = Instant::now();
                Err(TokenRefusal::KeysUnavailable)
            }
        }
    }

    /// Validates `token` and returns who it names.
    pub async fn validate(&self, token: &str) -> Result<OidcPrincipal, TokenRefusal> {
        let malformed = |m: &str| TokenRefusal::Malformed(m.to_owned());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not a JWS compact serialization"));
        };
        let decode = |s: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| TokenRefusal::Malformed(format!("{what}: base64")))
        };
        let header: Value = serde_json::from_slice(&decode(h64, "header")?)
            .map_err(|_| malformed("header: JSON"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).ok_or(malformed("no alg"))?;
        if header.get("crit").is_some() {
            return Err(malformed("crit header parameters are not supported"));
        }
        let alg = parse_alg(alg_name)
            .filter(|a| {
                !FORBIDDEN_ALGORITHMS.contains(&alg_name) && self.allowed.iter().any(|x| x == a)
            })
            .ok_or_else(|| TokenRefusal::AlgorithmNotAllowed(bounded(alg_name)))?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(malformed("kid is not a string")),
        };
        let claims: Value = serde_json::from_slice(&decode(p64, "payload")?)
            .map_err(|_| malformed("payload: JSON"))?;
        if !claims.is_object() {
            return Err(malformed("payload is not an object"));
        }
        // The issuer first: a token of another issuer never makes this node fetch keys.
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(TokenRefusal::WrongIssuer);
        }
        let signature = decode(s64, "signature")?;
        let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];

        let age = self.cache.read().await.fetched.elapsed();
        if age > Duration::from_secs(self.config.jwks_max_age_seconds) {
            // Stale keys: refresh, but keep the old set if the IdP is down.
            let _ = self.refresh_keys(Duration::ZERO).await;
        }
        let mut verified =
            self.verify_with_cached(&alg, kid.as_deref(), signing_input, &signature).await;
        if verified == Err(TokenRefusal::UnknownKey) {
            // An unknown kid: perhaps the IdP rotated its keys. Refresh, rate-limited.
            let min = Duration::from_secs(self.config.jwks_min_refresh_seconds);
            if self.refresh_keys(min).await? {
                verified =
                    self.verify_with_cached(&alg, kid.as_deref(), signing_input, &signature).await;
            }
        }
        verified?;
        self.check_claims(&claims)
    }

    async fn verify_with_cached(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenRefusal> {
        let cache = self.cache.read().await;
        let usable = |k: &&CoreJsonWebKey| {
            k.key_use().is_none_or(|u| u.allows_signature())
                && match k.signing_alg() {
                    JsonWebKeyAlgorithm::Algorithm(a) => a == alg,
                    JsonWebKeyAlgorithm::Unspecified => true,
                    _ => false,
                }
        };
        let candidates: Vec<&CoreJsonWebKey> = match kid {
            Some(kid) => cache
                .keys
                .keys()
                .iter()
                .filter(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
                .filter(usable)
                .collect(),
            // Without a kid, only an unambiguous key set is usable.
            None => {
                let all: Vec<_> = cache.keys.keys().iter().filter(usable).collect();
                if all.len() == 1 { all } else { Vec::new() }
            }
        };
        if candidates.is_empty() {
            return Err(TokenRefusal::UnknownKey);
        }
        if candidates.iter().any(|k| k.verify_signature(alg, message, signature).is_ok()) {
            Ok(())
        } else {
            Err(TokenRefusal::BadSignature)
        }
    }

    fn check_claims(&self, claims: &Value) -> Result<OidcPrincipal, TokenRefusal> {
        let malformed = |m: &str| TokenRefusal::Malformed(m.to_owned());
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.config.audience,
            Some(Value::Array(list)) => {
                list.iter().any(|a| a.as_str() == Some(self.config.audience.as_str()))
            }
            _ => false,
        };
        if !audience_ok {
            return Err(TokenRefusal::WrongAudience);
        }
        let leeway = i64::try_from(self.config.leeway_seconds).unwrap_or(300);
        let now = now_secs();
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or(malformed("no numeric exp"))?;
        if now > exp.saturating_add(leeway) {
            return Err(TokenRefusal::Expired);
        }
        match claims.get("nbf") {
            None => {}
            Some(v) => {
                let nbf = v.as_i64().ok_or(malformed("nbf is not a number"))?;
                if nbf.saturating_sub(leeway) > now {
                    return Err(TokenRefusal::NotYetValid);
                }
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(malformed("no sub"))?
            .to_owned();
        let email =
            claim_path(claims, &self.config.email_claim).and_then(Value::as_str).map(str::to_owned);
        let groups = match claim_path(claims, &self.config.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .take(MAX_GROUPS)
                .map(|g| g.as_str().map(str::to_owned).ok_or(malformed("a group is not a string")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(malformed("the groups claim is not a list")),
        };
        Ok(OidcPrincipal { subject, email, groups })
    }
}

/// The value at a dotted claim path (`realm_access.roles`); a claim whose own name contains
/// dots (Okta, Entra ID URIs) is looked up whole first.
fn claim_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

fn bounded(s: &str) -> String {
    s.chars().take(32).collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A constant-time verifier of the node's admin token.
type TokenVerifier = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The SSO authenticator: a JWT bearer is validated by the [`OidcValidator`]; with
/// [`SsoConfig::allow_admin_token`], the node's admin token is still accepted.
pub struct OidcAuthenticator {
    validator: Arc<OidcValidator>,
    admin_token: Option<TokenVerifier>,
}

impl fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field("validator", &self.validator)
            .field("admin_token", &self.admin_token.is_some())
            .finish()
    }
}

impl OidcAuthenticator {
    /// With `validator`, and the admin-token verifier (constant time) when
    /// [`SsoConfig::allow_admin_token`] is on.
    pub fn new(
        validator: Arc<OidcValidator>,
        verify_admin_token: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        let admin_token: Option<TokenVerifier> = if validator.config().allow_admin_token {
            Some(Box::new(verify_admin_token))
        } else {
            None
        };
        OidcAuthenticator { validator, admin_token }
    }
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

impl Authenticator for OidcAuthenticator {
    fn authenticate<'a>(
        &'a self,
        call: &'a CallInfo,
    ) -> SeamFuture<'a, Result<Principal, ServerError>> {
        Box::pin(async move {
            let Some(token) = call.bearer()? else { return Ok(Principal::Anonymous) };
            if looks_like_jwt(token) {
                let p = self.validator.validate(token).await.map_err(|refusal| {
                    tracing::info!(
                        operation = %call.operation,
                        peer = ?call.peer,
                        cause = refusal.code(),
                        "bearer token refused"
                    );
                    ServerError::from(refusal)
                })?;
                return Ok(Principal::User { id: p.subject, roles: p.groups });
            }
            match &self.admin_token {
                Some(verify) if verify(token) => Ok(Principal::Admin),
                _ => Err(ServerError::AuthInvalid),
            }
        })
    }
}

/// Without RBAC: the admin and the members of the admin groups may do everything; an
/// anonymous caller gets `AUTH_REQUIRED`, anyone else `PERMISSION_DENIED`.
#[derive(Clone, Debug)]
pub struct GroupAuthorizer {
    admin_groups: Vec<String>,
}

impl GroupAuthorizer {
    /// Members of `admin_groups` are administrators.
    pub fn new(admin_groups: Vec<String>) -> Self {
        GroupAuthorizer { admin_groups }
    }
}

impl Authorizer for GroupAuthorizer {
    fn authorize_user<'a>(
        &'a self,
        _id: &'a str,
        roles: &'a [String],
        operation: &'a str,
        _resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        let allowed = roles.iter().any(|r| self.admin_groups.contains(r));
        Box::pin(std::future::ready(if allowed {
            Ok(())
        } else {
            Err(ServerError::PermissionDenied(format!(
                "{operation} needs a member of an admin group"
            )))
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn configuration_refuses_none_hmac_and_plaintext() {
        let ok = SsoConfig::new("https://idp.example.com/realms/atp", "atp-node");
        assert!(ok.validate().is_ok());
        for alg in ["none", "HS256", "hs512"] {
            let c = SsoConfig { algorithms: vec![alg.into()], ..ok.clone() };
            assert!(matches!(c.validate(), Err(SsoError::Config(_))), "{alg}");
        }
        let plain = SsoConfig { issuer: "http://idp.example.com".into(), ..ok.clone() };
        assert!(plain.validate().is_err());
        let local = SsoConfig { issuer: "http://127.0.0.1:8080".into(), ..ok.clone() };
        assert!(local.validate().is_ok());
        let empty_aud = SsoConfig { audience: " ".into(), ..ok };
        assert!(empty_aud.validate().is_err());
    }

    #[test]
    fn claim_paths_reach_nested_and_dotted_claims() {
        let claims = serde_json::json!({
            "realm_access": {"roles": ["atp-admins"]},
            "https://example.com/groups": ["g"],
        });
        assert_eq!(
            claim_path(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["atp-admins"]))
        );
        assert_eq!(
            claim_path(&claims, "https://example.com/groups"),
            Some(&serde_json::json!(["g"]))
        );
        assert_eq!(claim_path(&claims, "nope.x"), None);
    }

    #[test]
    fn refusals_are_unauthenticated_with_their_own_cause() {
        let e = ServerError::from(TokenRefusal::Expired);
        assert_eq!(e.code(), atp_grpc::tonic::Code::Unauthenticated);
        assert_eq!(e.metadata(), vec![("cause", "TOKEN_EXPIRED".to_owned())]);
    }
}
