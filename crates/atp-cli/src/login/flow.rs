//! `atp login`: discovery is in the parent; the device and PKCE flows and the loopback callback here.

use super::*;

// ---------------------------------------------------------------------------------------------
// atp login

fn scopes_of(args: &LoginArgs) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in args.scope.iter().flat_map(|s| s.split_whitespace()) {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes
}

/// The `audience` / `resource` parameters, sent on every request of the grant.
pub(super) fn extra_params(
    audience: Option<&str>,
    resource: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if let Some(a) = audience {
        params.push(("audience", a.to_owned()));
    }
    if let Some(r) = resource {
        params.push(("resource", r.to_owned()));
    }
    params
}

/// `atp login`: signs in and stores the tokens under the profile.
pub async fn login(cli: &Cli, args: &LoginArgs) -> Result<u8, CliError> {
    check_profile_name(&cli.profile)?;
    if args.client_id.is_empty() {
        return Err(CliError::Usage("--client-id must not be empty".into()));
    }
    if let Some(resource) = &args.resource {
        Url::parse(resource).map_err(|e| {
            CliError::Usage(format!("--resource {resource:?} must be an absolute URI: {e}"))
        })?;
    }
    let home = home_of(cli)?;
    // A credentials file that would be refused later is refused before the user signs in.
    let credentials = read_credentials(&home)?
        .unwrap_or(CredentialsFile { version: CREDENTIALS_VERSION, profiles: BTreeMap::new() });
    let http = IdpHttp::new()?;
    let endpoints = discover(&http, &args.issuer).await?;
    let scopes = scopes_of(args);
    let extra = extra_params(args.audience.as_deref(), args.resource.as_deref());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let flow = async {
        if args.pkce {
            pkce_flow(&http, &endpoints, args, &scopes, &extra, cli.json).await
        } else {
            device_flow(&http, &endpoints, args, &scopes, &extra, cli.json).await
        }
    };
    let response = tokio::time::timeout_at(deadline, flow).await.map_err(|_| {
        login_error(
            "LOGIN_EXPIRED",
            format!("the sign-in was not completed within {} s", args.timeout),
        )
    })??;
    let (access_token, refresh_token, expires_at) = stored_from(&response, None)?;
    let (subject, email) = unverified_identity(access_token.expose());
    let has_refresh = refresh_token.is_some();
    let _lock = CredentialsLock::acquire(&home).await?;
    // Another process may have changed other profiles while the user signed in.
    let mut credentials = read_credentials(&home)?.unwrap_or(credentials);
    credentials.profiles.insert(
        cli.profile.clone(),
        StoredLogin {
            issuer: endpoints.issuer.clone(),
            client_id: args.client_id.clone(),
            audience: args.audience.clone(),
            resource: args.resource.clone(),
            scopes,
            token_endpoint: endpoints.token.to_string(),
            revocation_endpoint: endpoints.revocation.as_ref().map(Url::to_string),
            access_token,
            refresh_token,
            expires_at,
        },
    );
    write_credentials(&home, &credentials)?;
    let path = credentials_path(&home);
    if cli.json {
        print_json(&json!({
            "profile": cli.profile,
            "issuer": endpoints.issuer,
            "subject": subject,
            "email": email,
            "expiresAt": expires_at,
            "refreshToken": has_refresh,
            "credentials": path,
        }));
    } else {
        let who = email.or(subject).unwrap_or_else(|| "(unknown subject)".into());
        println!("signed in to {} as {who} (profile {})", endpoints.issuer, cli.profile);
        if !has_refresh {
            eprintln!(
                "atp: warning: the provider issued no refresh token (ask for the offline_access scope): run `atp login` again when the access token expires"
            );
        }
        note(false, &format!("tokens stored in {}", path.display()));
    }
    Ok(EXIT_OK)
}

async fn device_flow(
    http: &IdpHttp,
    endpoints: &Endpoints,
    args: &LoginArgs,
    scopes: &[String],
    extra: &[(&'static str, String)],
    json: bool,
) -> Result<BasicTokenResponse, CliError> {
    let device_url = endpoints.device.clone().ok_or_else(|| {
        login_error(
            "LOGIN_UNSUPPORTED",
            format!(
                "{} has no device authorization endpoint (enable the device grant for the client, or use --pkce)",
                endpoints.issuer
            ),
        )
    })?;
    let client = BasicClient::new(ClientId::new(args.client_id.clone()))
        .set_device_authorization_url(DeviceAuthorizationUrl::from_url(device_url))
        .set_token_uri(TokenUrl::from_url(endpoints.token.clone()));
    let mut request =
        client.exchange_device_code().add_scopes(scopes.iter().cloned().map(Scope::new));
    for (name, value) in extra {
        request = request.add_extra_param(*name, value.clone());
    }
    let details: StandardDeviceAuthorizationResponse =
        request.request_async(http).await.map_err(|e| token_error("device authorization", e))?;
    let uri = details.verification_uri().as_str();
    let code = details.user_code().secret();
    // The prompt goes to stderr even with --json: stdout keeps the one JSON result.
    eprintln!("To sign in, open {uri}");
    eprintln!("and enter the code: {code}");
    if let Some(complete) = details.verification_uri_complete() {
        eprintln!("(or open {})", complete.secret());
    }
    if json {
        eprintln!("{}", json!({"verificationUri": uri, "userCode": code}));
    }
    let mut poll = client.exchange_device_access_token(&details);
    for (name, value) in extra {
        poll = poll.add_extra_param(*name, value.clone());
    }
    // oauth2 polls at the provider's `interval`, adds 5 s on `slow_down`, keeps polling on
    // `authorization_pending`, and stops on `access_denied` / `expired_token` or when the
    // device code's lifetime (capped by --timeout) is over.
    // An `interval` of 0 would make a busy loop against the provider: at least 1 s.
    let sleep = |interval: Duration| tokio::time::sleep(interval.max(MIN_POLL_INTERVAL));
    poll.request_async(http, sleep, Some(Duration::from_secs(args.timeout)))
        .await
        .map_err(|e| token_error("device sign-in", e))
}

async fn pkce_flow(
    http: &IdpHttp,
    endpoints: &Endpoints,
    args: &LoginArgs,
    scopes: &[String],
    extra: &[(&'static str, String)],
    json: bool,
) -> Result<BasicTokenResponse, CliError> {
    let auth_url = endpoints.authorization.clone().ok_or_else(|| {
        login_error(
            "LOGIN_UNSUPPORTED",
            format!("{} has no authorization endpoint", endpoints.issuer),
        )
    })?;
    if !endpoints.pkce_s256 {
        return Err(login_error(
            "LOGIN_UNSUPPORTED",
            format!("{} does not support PKCE with S256", endpoints.issuer),
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|source| {
        CliError::Io { path: "127.0.0.1:0 (the login redirect listener)".into(), source }
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| CliError::Io { path: "127.0.0.1:0".into(), source })?
        .port();
    let redirect = RedirectUrl::new(format!("http://127.0.0.1:{port}{CALLBACK_PATH}"))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let client = BasicClient::new(ClientId::new(args.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(auth_url))
        .set_token_uri(TokenUrl::from_url(endpoints.token.clone()))
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    // OpenID Connect Core §11: offline_access (a refresh token) needs prompt=consent.
    if scopes.iter().any(|s| s == "offline_access") {
        request = request.add_extra_param("prompt", "consent");
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, value.clone());
    }
    let (url, state) = request.url();
    eprintln!("To sign in, open this URL in a browser on this machine:");
    eprintln!("{url}");
    if json {
        eprintln!("{}", json!({"authorizationUrl": url.as_str()}));
    }
    let code = wait_for_callback(&listener, state.secret(), &endpoints.issuer).await?;
    // One use: nothing listens any more once the code has arrived.
    drop(listener);
    let mut exchange = client.exchange_code(code).set_pkce_verifier(verifier);
    for (name, value) in extra {
        exchange = exchange.add_extra_param(*name, value.clone());
    }
    exchange.request_async(http).await.map_err(|e| token_error("code exchange", e))
}

/// Serves the loopback redirect until a request with the right `state` arrives. Requests with
/// another or no `state` get 400 and change nothing, so a page that knows the port cannot end
/// or hijack the sign-in. An `iss` parameter (RFC 9207) must name the issuer signed in at.
async fn wait_for_callback(
    listener: &tokio::net::TcpListener,
    expected_state: &str,
    issuer: &str,
) -> Result<AuthorizationCode, CliError> {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let head = match tokio::time::timeout(CALLBACK_READ_TIMEOUT, read_request_head(&mut stream))
            .await
        {
            Ok(Ok(head)) => head,
            _ => {
                let _ = respond(&mut stream, 400, "Bad request.").await;
                continue;
            }
        };
        let Some(target) = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
        else {
            let _ = respond(&mut stream, 400, "Bad request.").await;
            continue;
        };
        let Ok(url) = Url::parse(&format!("http://127.0.0.1{target}")) else {
            let _ = respond(&mut stream, 400, "Bad request.").await;
            continue;
        };
        if url.path() != CALLBACK_PATH {
            let _ = respond(&mut stream, 404, "Not found.").await;
            continue;
        }
        let mut state = None;
        let mut code = None;
        let mut error = None;
        let mut description = None;
        let mut iss = None;
        for (name, value) in url.query_pairs() {
            match &*name {
                "state" => state = Some(value.into_owned()),
                "code" => code = Some(value.into_owned()),
                "error" => error = Some(value.into_owned()),
                "error_description" => description = Some(value.into_owned()),
                "iss" => iss = Some(value.into_owned()),
                _ => {}
            }
        }
        let state_ok = state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected_state.as_bytes())));
        if !state_ok {
            let _ = respond(
                &mut stream,
                400,
                "This sign-in request is not the one atp started (state mismatch).",
            )
            .await;
            continue;
        }
        if iss.as_deref().is_some_and(|i| i != issuer) {
            let _ = respond(&mut stream, 400, "The sign-in came from another issuer.").await;
            return Err(login_error(
                "LOGIN_IDP_MISBEHAVED",
                format!(
                    "the authorization response names the issuer {:?}, not {issuer:?} (RFC 9207)",
                    provider_text(iss.as_deref().unwrap_or_default())
                ),
            ));
        }
        if let Some(error) = error {
            let _ = respond(&mut stream, 200, "The sign-in failed; see the terminal.").await;
            let description =
                description.map(|d| format!(" ({})", provider_text(&d))).unwrap_or_default();
            let stable = if error == "access_denied" { "LOGIN_DENIED" } else { "LOGIN_REFUSED" };
            return Err(login_error(
                stable,
                format!(
                    "sign-in: the identity provider said {}{description}",
                    provider_text(&error)
                ),
            ));
        }
        let Some(code) = code else {
            let _ = respond(&mut stream, 400, "No authorization code.").await;
            continue;
        };
        let _ = respond(&mut stream, 200, "Signed in to atp. You can close this tab.").await;
        return Ok(AuthorizationCode::new(code));
    }
}

async fn read_request_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if buf.len() > MAX_CALLBACK_REQUEST_BYTES {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    String::from_utf8(buf).map_err(std::io::Error::other)
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    text: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>atp login</title></head><body><p>{text}</p></body></html>\n"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
