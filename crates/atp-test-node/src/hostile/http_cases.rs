//! The HTTP routes' rows of the hostile-input table: VC-API, DID resolution and status lists.

use super::*;

/// The HTTP cases against the node at `addr`. `vc_value` is a valid credential, `tampered` the
/// same with a changed claim, `revoked_vc` a revoked one, `unsigned_x` an unsigned credential and
/// `other_did` a DID the node does not hold.
pub(super) fn http_cases<'a>(
    addr: SocketAddr,
    vc_value: &'a Value,
    tampered: &'a Value,
    revoked_vc: &'a [u8],
    unsigned_x: &'a Value,
    other_did: &'a str,
) -> Vec<Case<'a>> {
    vec![
        case(
            "http: malformed JSON to /credentials/verify",
            h(400, "PARSING_ERROR"),
            http(addr, "POST", "/credentials/verify".into(), vec![json_ct()], b"{nope".to_vec()),
        ),
        case(
            "http: a JSON array to /credentials/verify",
            h(400, "PARSING_ERROR"),
            http(addr, "POST", "/credentials/verify".into(), vec![json_ct()], b"[1,2]".to_vec()),
        ),
        case(
            "http: no content type to /credentials/verify",
            h(415, "HTTP_UNSUPPORTED_MEDIA_TYPE"),
            http(addr, "POST", "/credentials/verify".into(), vec![], b"{}".to_vec()),
        ),
        case(
            "http: body over the route's limit to /credentials/verify",
            h(413, "HTTP_BODY_TOO_LARGE"),
            http(
                addr,
                "POST",
                "/credentials/verify".into(),
                vec![json_ct()],
                vec![b' '; atp_server::credential::MAX_CREDENTIAL_BYTES + 64 * 1024 + 1],
            ),
        ),
        case(
            "http: wrong content type to /credentials/verify",
            h(415, "HTTP_UNSUPPORTED_MEDIA_TYPE"),
            http(
                addr,
                "POST",
                "/credentials/verify".into(),
                vec![("Content-Type", "application/x-www-form-urlencoded".into())],
                b"verifiableCredential=%7B%7D".to_vec(),
            ),
        ),
        case(
            "http: no credential in the body",
            h(400, "FIELD_INVALID"),
            http(addr, "POST", "/credentials/verify".into(), vec![json_ct()], b"{}".to_vec()),
        ),
        case(
            "http: unknown proofPolicy",
            h(400, "FIELD_INVALID"),
            http(
                addr,
                "POST",
                "/credentials/verify".into(),
                vec![json_ct()],
                serde_json::to_vec(
                    &json!({"verifiableCredential": vc_value, "options": {"proofPolicy": "none"}}),
                )
                .unwrap(),
            ),
        ),
        case(
            "http: tampered credential",
            h(422, "CRYPTOGRAPHIC_SECURITY_ERROR"),
            http(
                addr,
                "POST",
                "/credentials/verify".into(),
                vec![json_ct()],
                serde_json::to_vec(&json!({"verifiableCredential": tampered})).unwrap(),
            ),
        ),
        case(
            "http: revoked credential",
            h(422, "CREDENTIAL_REVOKED"),
            http(
                addr,
                "POST",
                "/credentials/verify".into(),
                vec![json_ct()],
                serde_json::to_vec(&json!({
                    "verifiableCredential": serde_json::from_slice::<Value>(revoked_vc).unwrap()
                }))
                .unwrap(),
            ),
        ),
        case(
            "http: presentation without a challenge",
            h(400, "FIELD_INVALID"),
            http(
                addr,
                "POST",
                "/presentations/verify".into(),
                vec![json_ct()],
                serde_json::to_vec(
                    &json!({"verifiablePresentation": {}, "options": {"domain": "d"}}),
                )
                .unwrap(),
            ),
        ),
        case(
            "http: issue without a token",
            h(401, "AUTH_REQUIRED"),
            http(
                addr,
                "POST",
                "/credentials/issue".into(),
                vec![json_ct()],
                serde_json::to_vec(&json!({"credential": unsigned_x})).unwrap(),
            ),
        ),
        case(
            "http: issue with a wrong token",
            h(401, "AUTH_INVALID"),
            http(
                addr,
                "POST",
                "/credentials/issue".into(),
                vec![json_ct(), ("Authorization", "Bearer nope".into())],
                serde_json::to_vec(&json!({"credential": unsigned_x})).unwrap(),
            ),
        ),
        case(
            "http: unknown DID at /1.0/identifiers/",
            h(404, "notFound"),
            http(addr, "GET", format!("/1.0/identifiers/{other_did}"), vec![], vec![]),
        ),
        case(
            "http: DID of the wrong method at /1.0/identifiers/",
            h(501, "methodNotSupported"),
            http(addr, "GET", "/1.0/identifiers/did:web:example.com".into(), vec![], vec![]),
        ),
        case(
            "http: not a DID at /1.0/identifiers/",
            h(400, "invalidDid"),
            http(addr, "GET", "/1.0/identifiers/did:atp:".into(), vec![], vec![]),
        ),
        case(
            "http: unknown list id at /status/",
            h(404, "STATUS_LIST_NOT_FOUND"),
            http(addr, "GET", "/status/does-not-exist".into(), vec![], vec![]),
        ),
        case(
            "http: malformed list id at /status/",
            h(404, "STATUS_LIST_NOT_FOUND"),
            http(addr, "GET", "/status/..%2F..%2Fetc%2Fpasswd".into(), vec![], vec![]),
        ),
    ]
}
