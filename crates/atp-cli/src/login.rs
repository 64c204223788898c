//! `atp login` / `atp logout`: operators sign in at their company's OpenID provider, and the
//! admin commands send the stored access token as `authorization: Bearer …`.
//!
//! ```text
//! $ATP_HOME/credentials     mode 0600, JSON, written atomically (temporary file + rename)
//!     {"version": 1, "profiles": {"<profile>": {issuer, clientId, tokenEndpoint,
//!      revocationEndpoint, accessToken, refreshToken, expiresAt, …}}}
//! ```
//!
//! The file is refused when group or others may read it, as atp-crypto refuses key files. The
//! tokens are held in zeroizing buffers, print as `<redacted>` in `Debug`, and never appear in
//! messages: errors quote the provider's error code and description, never a response body.
//!
//! The device authorization grant (RFC 8628) is the default: it works over SSH and on machines
//! without a browser. `--pkce` runs the authorization code grant with PKCE (S256) and a one-shot
//! loopback redirect listener on 127.0.0.1 (RFC 8252).

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::url::{self, Url};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl,
    ErrorResponseType, HttpRequest, HttpResponse, PkceCodeChallenge, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, StandardErrorResponse,
    TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zeroize::Zeroizing;

use crate::output::{CliError, note, print_json};
use crate::{Cli, EXIT_OK, LoginArgs};

/// The file under `$ATP_HOME` that holds the stored logins.
pub const CREDENTIALS_FILE: &str = "credentials";
/// The access token is refreshed when it expires within this margin, so that it does not lapse
/// between the check and the node's validation (clock skew included).
pub const REFRESH_MARGIN_SECS: u64 = 30;
/// The largest credentials file read.
const MAX_CREDENTIALS_BYTES: u64 = 1 << 20;
/// The largest response body read from the identity provider.
const MAX_IDP_RESPONSE_BYTES: usize = 256 * 1024;
/// Every request to the identity provider.
const IDP_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const IDP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The loopback redirect: the largest request head read, and how long one connection may take.
const MAX_CALLBACK_REQUEST_BYTES: usize = 16 * 1024;
const CALLBACK_READ_TIMEOUT: Duration = Duration::from_secs(10);
const CALLBACK_PATH: &str = "/callback";
/// The device grant never polls faster than this, whatever `interval` the provider names.
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest provider-supplied text (an error description) shown to the user.
const MAX_PROVIDER_TEXT: usize = 200;

// ---------------------------------------------------------------------------------------------
// Secrets and the credentials file

/// A token: zeroized on drop, redacted in `Debug`, serialized as a plain JSON string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a token.
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The token itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// One stored login.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredLogin {
    /// The issuer, as its discovery document names it.
    pub issuer: String,
    /// The CLI's client id at the provider.
    pub client_id: String,
    /// The `audience` parameter sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The RFC 8707 `resource` sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The scopes requested.
    pub scopes: Vec<String>,
    /// Where refreshes go (from discovery at login).
    pub token_endpoint: String,
    /// The RFC 7009 revocation endpoint, if the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The access token (a bearer token).
    pub access_token: Secret,
    /// The refresh token, if the provider issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (Unix seconds), if the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// `$ATP_HOME/credentials`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsFile {
    /// The format version (1).
    pub version: u32,
    /// The logins by profile name.
    pub profiles: BTreeMap<String, StoredLogin>,
}

const CREDENTIALS_VERSION: u32 = 1;

fn credentials_error(code: &'static str, message: String) -> CliError {
    CliError::Credentials { code, message }
}

/// The path of the credentials file in `home`.
pub fn credentials_path(home: &Path) -> PathBuf {
    home.join(CREDENTIALS_FILE)
}

/// Reads the credentials file; `None` when there is none. A file that group or others may read
/// is refused.
pub fn read_credentials(home: &Path) -> Result<Option<CredentialsFile>, CliError> {
    let path = credentials_path(home);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CliError::Io { path, source }),
    };
    let meta = file.metadata().map_err(|source| CliError::Io { path: path.clone(), source })?;
    if !meta.is_file() {
        return Err(credentials_error(
            "CREDENTIALS_MALFORMED",
            format!("{} is not a regular file", path.display()),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(credentials_error(
                "CREDENTIALS_INSECURE",
                format!(
                    "{} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
                    path.display()
                ),
            ));
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_CREDENTIALS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| CliError::Io { path: path.clone(), source })?;
    if bytes.len() as u64 > MAX_CREDENTIALS_BYTES {
        return Err(credentials_error(
            "CREDENTIALS_MALFORMED",
            format!("{} is larger than {MAX_CREDENTIALS_BYTES} bytes", path.display()),
        ));
    }
    // serde's messages may quote the offending value, which may be a token: position only.
    let parsed: CredentialsFile = serde_json::from_slice(&bytes).map_err(|e| {
        credentials_error(
            "CREDENTIALS_MALFORMED",
            format!(
                "{} is not a valid credentials file (line {}, column {}): run `atp login` again",
                path.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    if parsed.version != CREDENTIALS_VERSION {
        return Err(credentials_error(
            "CREDENTIALS_MALFORMED",
            format!("{}: unsupported version {}", path.display(), parsed.version),
        ));
    }
    Ok(Some(parsed))
}

/// Writes the credentials file atomically with mode 0600 (a temporary file in the same
/// directory, synced, then renamed over the old one); removes it when no login is left.
pub fn write_credentials(home: &Path, credentials: &CredentialsFile) -> Result<(), CliError> {
    let path = credentials_path(home);
    if credentials.profiles.is_empty() {
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CliError::Io { path, source }),
        };
    }
    create_home(home)?;
    let bytes = Zeroizing::new(serde_json::to_vec_pretty(credentials).map_err(|e| {
        credentials_error("CREDENTIALS_MALFORMED", format!("cannot encode the credentials: {e}"))
    })?);
    let tmp = home.join(format!(".{CREDENTIALS_FILE}.{}.tmp", std::process::id()));
    let written = write_new_private_file(&tmp, &bytes, true)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| CliError::Io { path: path.clone(), source });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename is durable only once the directory is synced; a failure here loses nothing
    // that is not already on disk.
    if let Ok(d) = std::fs::File::open(home) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_new_private_file(path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    if replace {
        // A leftover of a crashed run of a process with the same id.
        let _ = std::fs::remove_file(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// How long a process waits for another's update of the credentials file.
const LOCK_WAIT: Duration = Duration::from_secs(45);
/// A lock file older than this was left by a process that died: longer than the slowest
/// update (one refresh request at [`IDP_REQUEST_TIMEOUT`]).
const LOCK_STALE: Duration = Duration::from_secs(60);

/// Serialises the read-modify-write updates of the credentials file between `atp` processes:
/// with rotated refresh tokens, two processes refreshing with the same token would make the
/// provider see a reused token and end the whole grant. Held by creating
/// `$ATP_HOME/.credentials.lock` exclusively; removed on drop.
struct CredentialsLock {
    path: PathBuf,
}

impl CredentialsLock {
    async fn acquire(home: &Path) -> Result<CredentialsLock, CliError> {
        create_home(home)?;
        let path = home.join(format!(".{CREDENTIALS_FILE}.lock"));
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match write_new_private_file(&path, b"", false) {
                Ok(()) => return Ok(CredentialsLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > LOCK_STALE);
                    if stale {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(credentials_error(
                            "CREDENTIALS_LOCKED",
                            format!(
                                "{} is held by another atp process (remove it if none runs)",
                                path.display()
                            ),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(source) => return Err(CliError::Io { path, source }),
            }
        }
    }
}

impl Drop for CredentialsLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn create_home(home: &Path) -> Result<(), CliError> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        dir.mode(0o700);
    }
    dir.create(home).map_err(|source| CliError::Io { path: home.to_path_buf(), source })
}

/// Checks a profile name: 1 to 64 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_profile_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--profile {name:?}: 1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with ."
        )))
    }
}

fn home_of(cli: &Cli) -> Result<PathBuf, CliError> {
    match &cli.home {
        Some(home) => Ok(home.clone()),
        None => Ok(atp::default_home()?),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------------------
// HTTP to the identity provider

fn login_error(code: &'static str, message: impl Into<String>) -> CliError {
    CliError::Login { code, message: message.into() }
}

/// Provider-supplied text, one line, bounded.
fn provider_text(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_PROVIDER_TEXT)
        .collect();
    if text.chars().count() > MAX_PROVIDER_TEXT {
        shown.push('…');
    }
    shown
}

/// The HTTP client for the identity provider: no redirects (an OAuth endpoint that redirects
/// is misconfigured, and following one could send a token elsewhere), bounded time and bodies.
struct IdpHttp(reqwest::Client);

impl IdpHttp {
    fn new() -> Result<Self, CliError> {
        // reqwest is built without a TLS provider of its own: use aws-lc-rs, which the node's
        // TLS stack already links.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(IDP_REQUEST_TIMEOUT)
            .connect_timeout(IDP_CONNECT_TIMEOUT)
            // A few requests seconds apart: polling every 5 s races servers whose keep-alive
            // timeout is 5 s (Node's default), and a reused connection the server has just
            // closed fails the request. A new connection each time costs nothing here.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("atp-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| login_error("LOGIN_IDP_UNREACHABLE", format!("HTTP client: {e}")))?;
        Ok(IdpHttp(client))
    }

    async fn send(&self, request: reqwest::Request) -> std::io::Result<HttpResponse> {
        let mut response =
            self.0.execute(request).await.map_err(|e| std::io::Error::other(with_causes(&e)))?;
        let mut builder = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(std::io::Error::other)? {
            if body.len() + chunk.len() > MAX_IDP_RESPONSE_BYTES {
                return Err(std::io::Error::other(format!(
                    "the response is larger than {MAX_IDP_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(std::io::Error::other)
    }
}

impl<'c> AsyncHttpClient<'c> for IdpHttp {
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(std::io::Error::other)?;
            self.send(request).await
        })
    }
}

/// An error and its causes on one line: reqwest's own message hides the reason (refused,
/// reset, TLS).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// https, or plain http on a loopback host only (a local test provider).
fn check_endpoint(url: &str, what: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!("{what} {url:?} must use https (plain http only on a loopback address)")),
    }
}

/// The endpoints of the provider's discovery document that `atp login` uses.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
}

struct Endpoints {
    issuer: String,
    authorization: Option<Url>,
    token: Url,
    device: Option<Url>,
    revocation: Option<Url>,
    pkce_s256: bool,
}

async fn discover(http: &IdpHttp, issuer: &str) -> Result<Endpoints, CliError> {
    check_endpoint(issuer, "the issuer").map_err(CliError::Usage)?;
    let trimmed = issuer.trim_end_matches('/');
    let url = format!("{trimmed}/.well-known/openid-configuration");
    let request = http.0.get(&url).build().map_err(|e| CliError::Usage(e.to_string()))?;
    let response = http.send(request).await.map_err(|e| {
        login_error("LOGIN_IDP_UNREACHABLE", format!("cannot reach the identity provider: {e}"))
    })?;
    if !response.status().is_success() {
        return Err(login_error(
            "LOGIN_IDP_MISBEHAVED",
            format!("{url}: HTTP {} (is the issuer URL right?)", response.status()),
        ));
    }
    let doc: Discovery = serde_json::from_slice(response.body()).map_err(|e| {
        login_error("LOGIN_IDP_MISBEHAVED", format!("{url}: not a discovery document: {e}"))
    })?;
    // OpenID Connect Discovery §4.3: the document must name the issuer that was asked for, or
    // someone else's endpoints would get the user's tokens.
    if doc.issuer.trim_end_matches('/') != trimmed {
        return Err(login_error(
            "LOGIN_IDP_MISBEHAVED",
            format!(
                "the discovery document names the issuer {:?}, not {issuer:?}",
                provider_text(&doc.issuer)
            ),
        ));
    }
    let endpoint = |value: &Option<String>, what: &str| -> Result<Option<Url>, CliError> {
        value
            .as_deref()
            .map(|v| check_endpoint(v, what))
            .transpose()
            .map_err(|e| login_error("LOGIN_IDP_MISBEHAVED", e))
    };
    let token = endpoint(&doc.token_endpoint, "the token endpoint")?.ok_or_else(|| {
        login_error("LOGIN_IDP_MISBEHAVED", "the discovery document has no token_endpoint")
    })?;
    Ok(Endpoints {
        authorization: endpoint(&doc.authorization_endpoint, "the authorization endpoint")?,
        device: endpoint(&doc.device_authorization_endpoint, "the device authorization endpoint")?,
        revocation: endpoint(&doc.revocation_endpoint, "the revocation endpoint")?,
        token,
        pkce_s256: doc
            .code_challenge_methods_supported
            .as_ref()
            .is_none_or(|m| m.iter().any(|m| m == "S256")),
        issuer: doc.issuer,
    })
}

/// An OAuth error from the provider, as one line with a stable code.
fn token_error<T>(
    what: &str,
    error: RequestTokenError<std::io::Error, StandardErrorResponse<T>>,
) -> CliError
where
    T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
{
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref().to_owned();
            let description = response
                .error_description()
                .map(|d| format!(" ({})", provider_text(d)))
                .unwrap_or_default();
            let stable = match code.as_str() {
                "access_denied" => "LOGIN_DENIED",
                "expired_token" => "LOGIN_EXPIRED",
                _ => "LOGIN_REFUSED",
            };
            login_error(
                stable,
                format!("{what}: the identity provider said {}{description}", provider_text(&code)),
            )
        }
        RequestTokenError::Request(e) => login_error(
            "LOGIN_IDP_UNREACHABLE",
            format!("{what}: cannot reach the identity provider: {e}"),
        ),
        // Never the body: it may hold tokens.
        RequestTokenError::Parse(e, _body) => login_error(
            "LOGIN_IDP_MISBEHAVED",
            format!("{what}: the identity provider's answer is not a token response: {e}"),
        ),
        RequestTokenError::Other(e) => login_error("LOGIN_IDP_MISBEHAVED", format!("{what}: {e}")),
    }
}

fn stored_from(
    response: &BasicTokenResponse,
    previous_refresh: Option<Secret>,
) -> Result<(Secret, Option<Secret>, Option<u64>), CliError> {
    let token_type = response.token_type().as_ref();
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(login_error(
            "LOGIN_IDP_MISBEHAVED",
            format!("the token type is {:?}, not Bearer", provider_text(token_type)),
        ));
    }
    let access = Secret::new(response.access_token().secret().clone());
    // A provider that does not rotate refresh tokens answers a refresh without one.
    let refresh =
        response.refresh_token().map(|r| Secret::new(r.secret().clone())).or(previous_refresh);
    let expires_at = response.expires_in().map(|d| now_secs().saturating_add(d.as_secs()));
    Ok((access, refresh, expires_at))
}

/// The subject and e-mail of a JWT access token, for the greeting only: not verified here (the
/// node verifies), never used for a decision.
fn unverified_identity(token: &str) -> (Option<String>, Option<String>) {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let field = |name: &str| {
        claims.as_ref().and_then(|c| c.get(name)).and_then(|v| v.as_str()).map(provider_text)
    };
    (field("sub"), field("email"))
}

mod flow;
use flow::extra_params;
pub use flow::login;

// ---------------------------------------------------------------------------------------------
// The stored token for admin commands

/// The stored access token of `profile` for an admin command, refreshed first when it expires
/// within [`REFRESH_MARGIN_SECS`]; `None` when there is no stored login for the profile.
pub async fn stored_bearer(home: &Path, profile: &str) -> Result<Option<Secret>, CliError> {
    check_profile_name(profile)?;
    let fresh = |login: &StoredLogin| {
        login.expires_at.is_none_or(|at| now_secs().saturating_add(REFRESH_MARGIN_SECS) < at)
    };
    let Some(credentials) = read_credentials(home)? else { return Ok(None) };
    let Some(login) = credentials.profiles.get(profile) else { return Ok(None) };
    if fresh(login) {
        return Ok(Some(login.access_token.clone()));
    }
    // Refresh under the lock, from the file as it is then: another process may have refreshed
    // (and rotated the refresh token) in the meantime.
    let _lock = CredentialsLock::acquire(home).await?;
    let Some(mut credentials) = read_credentials(home)? else { return Ok(None) };
    let Some(login) = credentials.profiles.get(profile).cloned() else { return Ok(None) };
    if fresh(&login) {
        return Ok(Some(login.access_token));
    }
    let again = |cause: String| {
        login_error(
            "LOGIN_REQUIRED",
            format!(
                "the stored login (profile {profile}, {}) has expired and {cause}: run `atp login` again",
                login.issuer
            ),
        )
    };
    let Some(refresh_token) = login.refresh_token.clone() else {
        return Err(again("there is no refresh token".into()));
    };
    let token_url = check_endpoint(&login.token_endpoint, "the token endpoint")
        .map_err(|e| again(format!("cannot be refreshed ({e})")))?;
    let http = IdpHttp::new()?;
    let client = BasicClient::new(ClientId::new(login.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(token_url));
    let oauth_refresh = RefreshToken::new(refresh_token.expose().to_owned());
    let mut request = client.exchange_refresh_token(&oauth_refresh);
    for (name, value) in extra_params(login.audience.as_deref(), login.resource.as_deref()) {
        request = request.add_extra_param(name, value);
    }
    let response = request.request_async(&http).await.map_err(|e| {
        let CliError::Login { message, .. } = token_error("refresh", e) else {
            return again("could not be refreshed".into());
        };
        again(format!("could not be refreshed ({message})"))
    })?;
    let (access_token, refresh_token, expires_at) = stored_from(&response, Some(refresh_token))?;
    let updated =
        StoredLogin { access_token: access_token.clone(), refresh_token, expires_at, ..login };
    credentials.profiles.insert(profile.to_owned(), updated);
    write_credentials(home, &credentials)?;
    Ok(Some(access_token))
}

// ---------------------------------------------------------------------------------------------
// atp logout

/// `atp logout`: revokes the profile's tokens at the provider (refresh token first: it is the
/// long-lived one, and revoking it ends the grant at most providers) and deletes them here.
/// An unreachable provider or one without a revocation endpoint only warns: the local copy is
/// deleted in every case.
pub async fn logout(cli: &Cli) -> Result<u8, CliError> {
    check_profile_name(&cli.profile)?;
    let home = home_of(cli)?;
    let Some(credentials) = read_credentials(&home)? else {
        note(cli.json, "not signed in (no credentials file)");
        if cli.json {
            print_json(&json!({"profile": cli.profile, "signedIn": false}));
        }
        return Ok(EXIT_OK);
    };
    let Some(login) = credentials.profiles.get(&cli.profile).cloned() else {
        note(cli.json, &format!("not signed in (no profile {})", cli.profile));
        if cli.json {
            print_json(&json!({"profile": cli.profile, "signedIn": false}));
        }
        return Ok(EXIT_OK);
    };
    let revoked = match &login.revocation_endpoint {
        None => {
            eprintln!(
                "atp: warning: {} has no revocation endpoint: the tokens stay valid there until they expire",
                login.issuer
            );
            false
        }
        Some(endpoint) => match revoke_all(&login, endpoint).await {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "atp: warning: could not revoke the tokens at {} ({e}); they stay valid there until they expire",
                    login.issuer
                );
                false
            }
        },
    };
    {
        let _lock = CredentialsLock::acquire(&home).await?;
        if let Some(mut current) = read_credentials(&home)? {
            current.profiles.remove(&cli.profile);
            write_credentials(&home, &current)?;
        }
    }
    if cli.json {
        print_json(&json!({
            "profile": cli.profile,
            "issuer": login.issuer,
            "revoked": revoked,
            "signedIn": false,
        }));
    } else {
        println!(
            "signed out of {} (profile {}){}",
            login.issuer,
            cli.profile,
            if revoked { "; tokens revoked" } else { "" }
        );
    }
    Ok(EXIT_OK)
}

/// RFC 7009 by hand: oauth2 refuses revocation endpoints without https, and a loopback test
/// provider has none.
async fn revoke_all(login: &StoredLogin, endpoint: &str) -> Result<(), String> {
    let url = check_endpoint(endpoint, "the revocation endpoint")?;
    let http = IdpHttp::new().map_err(|e| e.to_string())?;
    let mut tokens: Vec<(&Secret, &str)> = Vec::new();
    if let Some(refresh) = &login.refresh_token {
        tokens.push((refresh, "refresh_token"));
    }
    tokens.push((&login.access_token, "access_token"));
    for (token, hint) in tokens {
        let form = [
            ("token", token.expose()),
            ("token_type_hint", hint),
            ("client_id", login.client_id.as_str()),
        ];
        let request = http.0.post(url.clone()).form(&form).build().map_err(|e| e.to_string())?;
        let response = http.send(request).await.map_err(|e| e.to_string())?;
        // 200 also for tokens the provider no longer knows (RFC 7009 §2.2).
        if !response.status().is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(response.body())
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(provider_text))
                .unwrap_or_default();
            return Err(format!("revoking the {hint}: HTTP {} {error}", response.status()));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
