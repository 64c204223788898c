//! The HTTP routes served on the gRPC port: DID resolution, the W3C VC-API and status lists.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /1.0/identifiers/{did}` | DIF universal-resolver result for `did:atp` (from the store) and `did:key` |
//! | `GET /.well-known/did.json` | the node's DID document |
//! | `POST /credentials/issue` | VC-API issue; `Authorization: Bearer <admin token>`; 201 |
//! | `POST /credentials/verify` | VC-API verify; 200, or 400/422 + problem details |
//! | `POST /presentations/verify` | VC-API verify; 200, or 400/422 + problem details |
//! | `GET /status/{list-id}` | the signed `BitstringStatusListCredential` |
//!
//! Errors are RFC 9457 problem details (`application/problem+json`). For the VC 2.0 error
//! classes the body is `atp_core::vc::problem_details` (`type`, `code`, `title`, `detail`);
//! every body also carries `status` and the stable ATP `reason` code. A well-formed document
//! that fails verification (a proof, the validity period, revocation, suspension, a status
//! list) is 422; a request that cannot be read is 400.
//!
//! Request bodies are read as bytes under an explicit limit and parsed here, so a bad body
//! always gets a problem-details answer: 415 `HTTP_UNSUPPORTED_MEDIA_TYPE` unless the body is
//! `application/json` (or another `+json` type), 413 `HTTP_BODY_TOO_LARGE` over the route's
//! limit, 400 for JSON that cannot be read.
//!
//! VC-API request options (ATP extensions, camelCase): `proofPolicy` (`"quantumSafe"`, the
//! default, or `"any"`), `allowUncheckedStatus` (bool), and for presentations `challenge` and
//! `domain` (required). Issue takes `options.statusPurposes` (`["revocation", "suspension"]`).

use atp_core::CoreError;
use atp_core::data_integrity::ProofPolicy;
use atp_core::did::method::{Material, Needs};
use atp_core::status_list::StatusPurpose;
use atp_grpc::reasons;
use atp_grpc::v1 as pb;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::credential::{self, VerifyParams};
use crate::error::ServerError;
use crate::extensions::CallInfo;
use crate::state::{AppState, NodeState};

/// Slack for the JSON wrapper around a credential or presentation in a VC-API body.
const BODY_SLACK: usize = 64 * 1024;

/// The HTTP routes, served beside the gRPC services on the same port.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/1.0/identifiers/{did}", get(resolve))
        .route("/.well-known/did.json", get(node_did_document))
        .route("/credentials/issue", post(issue))
        .route("/credentials/verify", post(verify_credential))
        .route("/presentations/verify", post(verify_presentation))
        .route("/status/{list_id}", get(status_list))
        .with_state(state)
}

// ------------------------------------------------------------------------------------------
// Responses
// ------------------------------------------------------------------------------------------

fn json_response(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Whether a failure is about a well-formed document that did not verify (422) rather than
/// a request that cannot be read (400).
fn is_verification_failure(e: &ServerError) -> bool {
    match e.reason() {
        "CRYPTOGRAPHIC_SECURITY_ERROR"
        | "RANGE_ERROR"
        | reasons::CREDENTIAL_REVOKED
        | reasons::CREDENTIAL_SUSPENDED
        | reasons::PRESENTATION_CHALLENGE_REPLAY => true,
        r => r.starts_with("STATUS_LIST_") && r != reasons::STATUS_LIST_UNAVAILABLE,
    }
}

/// RFC 9457 problem details for `e`.
pub(crate) fn problem(e: &ServerError, verification: bool) -> Response {
    let mut status = match e.reason() {
        reasons::HTTP_BODY_TOO_LARGE => 413,
        reasons::HTTP_UNSUPPORTED_MEDIA_TYPE => 415,
        _ => e.http_status(),
    };
    if status == 400 && verification && is_verification_failure(e) {
        status = 422;
    }
    let mut body = match e {
        ServerError::Core(c) => atp_core::vc::problem_details(c),
        _ => None,
    }
    .and_then(|v| match v {
        Value::Object(m) => Some(m),
        _ => None,
    })
    .unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("type".into(), json!(format!("https://atp.invalid/problems#{}", e.reason())));
        m.insert("title".into(), json!(e.reason()));
        m.insert("detail".into(), json!(e.public_message()));
        m
    });
    if let ServerError::Internal(_) = e {
        tracing::error!(error = %e, "internal error");
        body.insert("detail".into(), json!("internal error"));
    }
    body.insert("status".into(), json!(status));
    body.insert("reason".into(), json!(e.reason()));
    if let ServerError::Core(CoreError::VcCryptographicSecurity { kind, .. }) = e {
        body.insert("kind".into(), json!(kind.as_str()));
    }
    for (k, v) in e.metadata() {
        body.entry(k.to_owned()).or_insert(json!(v));
    }
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/problem+json",
        &Value::Object(body),
    )
}

/// Whether `headers` declare a JSON body: `application/json` or `application/<x>+json`, with
/// any parameters.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json") && media.len() > 17)
}

/// Reads a JSON-object request body of at most `limit` bytes.
async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Map<String, Value>, ServerError> {
    if !is_json_content_type(headers) {
        return Err(ServerError::rejected(
            reasons::HTTP_UNSUPPORTED_MEDIA_TYPE,
            "the request body must be application/json",
        ));
    }
    let too_large = || {
        ServerError::rejected(
            reasons::HTTP_BODY_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // The only error of a length-limited read that a client can still see is the limit.
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    parse_body(&bytes)
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ServerError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ServerError::Core(CoreError::VcParsing(
            "the request body must be a JSON object".into(),
        ))),
        Err(e) => Err(ServerError::Core(CoreError::VcParsing(format!("request body: {e}")))),
    }
}

fn options(body: &Map<String, Value>) -> Result<Map<String, Value>, ServerError> {
    match body.get("options") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ServerError::field("options", "must be an object")),
    }
}

fn verify_params(opts: &Map<String, Value>) -> Result<VerifyParams, ServerError> {
    let policy = match opts.get("proofPolicy") {
        None | Some(Value::Null) => ProofPolicy::QuantumSafe,
        Some(Value::String(s)) if s == "quantumSafe" => ProofPolicy::QuantumSafe,
        Some(Value::String(s)) if s == "any" => ProofPolicy::Any,
        Some(_) => {
            return Err(ServerError::field(
                "options.proofPolicy",
                "must be \"quantumSafe\" or \"any\"",
            ));
        }
    };
    let allow_unchecked_status = match opts.get("allowUncheckedStatus") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ServerError::field("options.allowUncheckedStatus", "must be a bool"));
        }
    };
    Ok(VerifyParams { policy, allow_unchecked_status })
}

fn verified_credential_json(c: &pb::VerifiedCredential) -> Value {
    json!({
        "id": if c.id.is_empty() { Value::Null } else { json!(c.id) },
        "issuer": c.issuer,
        "type": c.types,
        "proofs": c.proofs.iter().map(|p| json!({
            "cryptosuite": p.cryptosuite,
            "verificationMethod": p.verification_method,
            "proofPurpose": p.proof_purpose,
        })).collect::<Vec<_>>(),
        "status": c.status_checks.iter().map(|s| json!({
            "statusListCredential": s.entry.as_ref().map(|e| e.status_list_credential.clone()),
            "statusListIndex": s.entry.as_ref().map(|e| e.status_list_index.to_string()),
            "outcome": if s.outcome == pb::StatusCheckOutcome::Clear as i32 { "clear" } else { "unchecked" },
            "value": s.value,
        })).collect::<Vec<_>>(),
    })
}

/// The checks a verified credential passed: `credentialStatus` only when it has status entries
/// and every one was checked.
fn credential_checks(c: &pb::VerifiedCredential) -> Vec<&'static str> {
    let mut checks = vec!["proof", "validityPeriod"];
    if !c.status_checks.is_empty()
        && c.status_checks.iter().all(|s| s.outcome == pb::StatusCheckOutcome::Clear as i32)
    {
        checks.push("credentialStatus");
    }
    checks
}

/// VC-API warnings (problem-details objects) for the warning codes of a verification.
fn warnings_json(codes: &[String]) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    codes
        .iter()
        .filter(|c| seen.insert(c.as_str()))
        .map(|code| {
            let detail = match code.as_str() {
                credential::WARNING_STATUS_UNCHECKED => {
                    "a credentialStatus entry was not checked (allowUncheckedStatus)"
                }
                credential::WARNING_ISSUER_NOT_BOUND => {
                    "the issuer is not a DID: nothing binds it to the keys that made the proofs"
                }
                _ => "",
            };
            json!({
                "type": format!("https://atp.invalid/problems#{code}"),
                "title": code,
                "detail": detail,
            })
        })
        .collect()
}

fn policy_name(p: ProofPolicy) -> &'static str {
    match p {
        ProofPolicy::Any => "any",
        _ => "quantumSafe",
    }
}

// ------------------------------------------------------------------------------------------
// DID resolution
// ------------------------------------------------------------------------------------------

const RESOLUTION_CONTENT_TYPE: &str =
    "application/ld+json;profile=\"https://w3id.org/did-resolution\"";

fn resolution_error(status: StatusCode, error: &str, message: &str) -> Response {
    json_response(
        status,
        RESOLUTION_CONTENT_TYPE,
        &json!({
            "@context": atp_core::did::DID_RESOLUTION_CONTEXT,
            "didDocument": null,
            "didResolutionMetadata": {"error": error, "errorMessage": message},
            "didDocumentMetadata": {},
        }),
    )
}

async fn resolve_value(state: &NodeState, did: &str) -> Result<Option<Value>, ServerError> {
    let method = atp_core::did::method::method_of(did)?;
    let resolved = match method.needs() {
        Needs::Nothing => method.resolve(did, Material::Nothing)?,
        Needs::KeyEventLog => {
            let Some(kel) = state.load_kel(did).await? else { return Ok(None) };
            // `load_kel` verified the log (or found it verified in its cache).
            method
                .resolve(did, Material::VerifiedLog(&kel.state))
                .map_err(|e| ServerError::internal(format!("stored log of {did}: {e}")))?
        }
    };
    Ok(Some(serde_json::to_value(resolved).map_err(|e| ServerError::internal(e.to_string()))?))
}

async fn resolve(State(state): State<AppState>, Path(did): Path<String>) -> Response {
    if did.len() > atp_core::did::MAX_DID_LEN {
        return resolution_error(StatusCode::BAD_REQUEST, "invalidDid", "the DID is too long");
    }
    match resolve_value(&state, &did).await {
        Ok(Some(v)) => json_response(StatusCode::OK, RESOLUTION_CONTENT_TYPE, &v),
        Ok(None) => {
            resolution_error(StatusCode::NOT_FOUND, "notFound", "no key event log for this DID")
        }
        Err(e) => match e.reason() {
            "DID_METHOD_NOT_SUPPORTED" => resolution_error(
                StatusCode::NOT_IMPLEMENTED,
                "methodNotSupported",
                &e.public_message(),
            ),
            "DID_INVALID" | "DID_KEY_UNSUPPORTED_KEY_TYPE" => {
                resolution_error(StatusCode::BAD_REQUEST, "invalidDid", &e.public_message())
            }
            _ => problem(&e, false),
        },
    }
}

async fn node_did_document(State(state): State<AppState>) -> Response {
    let r = async {
        let kel = state
            .load_kel(&state.node_did)
            .await?
            .ok_or_else(|| ServerError::internal("the node's own key event log is not stored"))?;
        let doc = atp_core::did::did_document(&kel.state)?;
        doc.to_json_value().map_err(ServerError::from)
    }
    .await;
    match r {
        Ok(v) => json_response(StatusCode::OK, "application/did+ld+json", &v),
        Err(e) => problem(&e, false),
    }
}

// ------------------------------------------------------------------------------------------
// VC-API
// ------------------------------------------------------------------------------------------

async fn issue(
    State(state): State<AppState>,
    connection: http::Extensions,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call =
        CallInfo::from_http("POST /credentials/issue", &headers, None).with_connection(&connection);
    let r = async {
        // Authorise before reading anything from the body.
        let admitted = state.admit(&call, credential::OP_ISSUE, &state.node_did).await?;
        let body = read_json_body(&headers, body, credential::MAX_ISSUE_BYTES + BODY_SLACK).await?;
        let credential = body
            .get("credential")
            .cloned()
            .ok_or_else(|| ServerError::field("credential", "is required"))?;
        let opts = options(&body)?;
        let purposes = match opts.get("statusPurposes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().and_then(|s| StatusPurpose::parse(s).ok()).ok_or_else(|| {
                        ServerError::field("options.statusPurposes", "unknown status purpose")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(ServerError::field("options.statusPurposes", "must be a list")),
        };
        let (signed, _) =
            credential::issue_admitted(&state, &call, admitted, credential, &purposes).await?;
        Ok::<_, ServerError>(signed)
    }
    .await;
    match r {
        Ok(signed) => json_response(
            StatusCode::CREATED,
            "application/json",
            &json!({ "verifiableCredential": signed }),
        ),
        Err(e) => problem(&e, false),
    }
}

async fn verify_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = async {
        let limit = credential::MAX_CREDENTIAL_BYTES + BODY_SLACK;
        let body = read_json_body(&headers, body, limit).await?;
        let vc_json = body
            .get("verifiableCredential")
            .ok_or_else(|| ServerError::field("verifiableCredential", "is required"))?;
        let params = verify_params(&options(&body)?)?;
        let verified = credential::verify_credential(&state, vc_json, params).await?;
        Ok::<_, ServerError>((verified, params))
    }
    .await;
    state.extensions.credential_verified("credential", &r);
    match r {
        Ok((c, params)) => json_response(
            StatusCode::OK,
            "application/json",
            &json!({
                "verified": true,
                "checks": credential_checks(&c),
                "warnings": warnings_json(&c.warnings),
                "errors": [],
                "proofPolicy": policy_name(params.policy),
                "credential": verified_credential_json(&c),
            }),
        ),
        Err(e) => problem(&e, true),
    }
}

async fn verify_presentation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = async {
        let limit = credential::MAX_PRESENTATION_BYTES + BODY_SLACK;
        let body = read_json_body(&headers, body, limit).await?;
        let vp_json = body
            .get("verifiablePresentation")
            .ok_or_else(|| ServerError::field("verifiablePresentation", "is required"))?;
        let opts = options(&body)?;
        let params = verify_params(&opts)?;
        let challenge = opts
            .get("challenge")
            .and_then(Value::as_str)
            .ok_or_else(|| ServerError::field("options.challenge", "is required"))?;
        let domain = opts
            .get("domain")
            .and_then(Value::as_str)
            .ok_or_else(|| ServerError::field("options.domain", "is required"))?;
        let verified =
            credential::verify_presentation(&state, vp_json, challenge, domain, params).await?;
        Ok::<_, ServerError>((verified, params))
    }
    .await;
    state.extensions.credential_verified("presentation", &r);
    match r {
        Ok((p, params)) => json_response(
            StatusCode::OK,
            "application/json",
            &json!({
                "verified": true,
                "checks": ["proof", "challenge", "domain"],
                "warnings": warnings_json(
                    &p.credentials.iter().flat_map(|c| c.warnings.iter().cloned()).collect::<Vec<_>>()
                ),
                "errors": [],
                "proofPolicy": policy_name(params.policy),
                "holder": p.holder,
                "credentials": p.credentials.iter().map(verified_credential_json).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => problem(&e, true),
    }
}

async fn status_list(State(state): State<AppState>, Path(list_id): Path<String>) -> Response {
    match credential::status_list_document(&state, &list_id).await {
        Ok((doc, _)) => json_response(StatusCode::OK, "application/vc+ld+json", &doc),
        Err(e) => problem(&e, false),
    }
}
