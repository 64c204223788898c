//! The ATP gRPC contract, compiled.
//!
//! - [`v1`]: the prost messages and the tonic clients and servers of every service in
//!   `proto/atp/v1/*.proto` (package `atp.v1`), generated at build time. The `.proto` files are
//!   the single source of truth; their comments, copied into the generated docs, specify every
//!   field.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of the contract, for server reflection.
//! - [`status`]: the error model. Every ATP error is a `google.rpc.Status` with one
//!   `google.rpc.ErrorInfo` whose `reason` is a stable code and whose `domain` is `atp.v1`.
//! - [`reasons`]: the node-level reason codes that this contract defines (protocol failures use
//!   the codes of `atp-core` and `atp-crypto`).
//!
//! This crate holds no node logic; `atp-server` implements the services and `atp-sdk` uses the
//! clients.
#![forbid(unsafe_code)]

pub use prost;
pub use tonic;

pub mod v1 {
    //! Package `atp.v1`, generated from `proto/atp/v1/*.proto`.
    //!
    //! `missing_docs` stays on here on purpose: every message, field, enum value and RPC of the
    //! contract must carry a comment, and an undocumented addition to a `.proto` file fails
    //! `cargo clippy -D warnings`.
    tonic::include_proto!("atp.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of `proto/atp/v1` (with source info, so
/// reflection clients see the comments), for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/atp_v1_descriptor.bin"));

/// The fully qualified names of the services of `atp.v1`, e.g. for health reporting.
pub const SERVICE_NAMES: &[&str] = &[
    v1::identity_service_server::SERVICE_NAME,
    v1::credential_service_server::SERVICE_NAME,
    v1::message_service_server::SERVICE_NAME,
    v1::log_service_server::SERVICE_NAME,
    v1::admin_service_server::SERVICE_NAME,
    v1::trust_service_server::SERVICE_NAME,
    v1::audit_service_server::SERVICE_NAME,
];

/// Every `atp.v1` method, `package.Service/Method` (for example
/// `atp.v1.IdentityService/Resolve`), with its gRPC type: `unary`, `client_stream`,
/// `server_stream` or `bidi_stream`. Read once from [`FILE_DESCRIPTOR_SET`]; the one list that
/// the node's per-call observation and the metrics use to tell a method from a client's string.
pub fn method_types() -> &'static std::collections::HashMap<String, &'static str> {
    static TYPES: std::sync::OnceLock<std::collections::HashMap<String, &'static str>> =
        std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        use prost::Message as _;
        let mut types = std::collections::HashMap::new();
        // The set is compiled in by build.rs; a set that does not decode would fail every
        // test that lists a method (tests/contract.rs).
        let Ok(set) = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET) else {
            return types;
        };
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    let kind = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    types.insert(format!("{package}.{}/{}", service.name(), method.name()), kind);
                }
            }
        }
        types
    })
}

pub mod status {
    //! The error model: a `tonic::Status` carrying one `google.rpc.ErrorInfo` detail.
    //!
    //! The `reason` is a stable code (for example `KEL_BAD_SIGNATURE` from atp-core, or
    //! [`AUTH_REQUIRED`](crate::reasons::AUTH_REQUIRED) from this contract) and the `domain` is
    //! always [`DOMAIN`]. Clients branch on the reason, never on the message. See
    //! `proto/README.md` for the table of gRPC codes and reasons.

    use std::collections::HashMap;

    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt};

    pub use tonic_types::ErrorInfo;

    /// The `ErrorInfo.domain` of every ATP error.
    pub const DOMAIN: &str = "atp.v1";

    /// Builds a status with `code` and `message` whose details hold one `ErrorInfo` with
    /// `reason`, domain [`DOMAIN`] and `metadata` (lowerCamelCase keys, e.g. `field`, `kind`,
    /// `feature`).
    ///
    /// The message is for humans and logs; never put secrets or personal data in it.
    pub fn error(
        code: Code,
        reason: &str,
        message: impl Into<String>,
        metadata: &[(&str, &str)],
    ) -> Status {
        let metadata: HashMap<String, String> =
            metadata.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect();
        Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, DOMAIN, metadata),
        )
    }

    /// The ATP `ErrorInfo` of a status: `Some` only when its details decode and hold an
    /// `ErrorInfo` whose domain is [`DOMAIN`].
    pub fn error_info(status: &Status) -> Option<ErrorInfo> {
        status.get_details_error_info().filter(|info| info.domain == DOMAIN)
    }

    /// The ATP reason code of a status (see [`error_info`]), e.g. `KEL_BAD_SIGNATURE`.
    pub fn reason(status: &Status) -> Option<String> {
        error_info(status).map(|info| info.reason)
    }

    /// Every gRPC status code, for [`code_name`] and [`code_of_name`].
    const CODES: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The canonical name of a gRPC code (`UNIMPLEMENTED`): what the node reports as the
    /// outcome of a call that a status without an ATP reason answered (tonic's own refusals).
    pub fn code_name(code: Code) -> &'static str {
        match code {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The gRPC code a canonical name ([`code_name`]) stands for.
    pub fn code_of_name(name: &str) -> Option<Code> {
        CODES.into_iter().find(|code| code_name(*code) == name)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_code_has_one_name_and_back() {
            let names: std::collections::HashSet<&str> =
                CODES.iter().map(|c| code_name(*c)).collect();
            assert_eq!(names.len(), CODES.len());
            for code in CODES {
                assert_eq!(code_of_name(code_name(code)), Some(code));
                assert_eq!(Code::from_i32(code as i32), code);
            }
            assert_eq!(code_of_name("KEL_BAD_SIGNATURE"), None);
        }

        #[test]
        fn reason_domain_and_metadata_round_trip() {
            let status = error(
                Code::InvalidArgument,
                "KEL_BAD_SIGNATURE",
                "the signature does not verify",
                &[("sequence", "3")],
            );
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(status.message(), "the signature does not verify");
            let info = error_info(&status).expect("ErrorInfo");
            assert_eq!(info.reason, "KEL_BAD_SIGNATURE");
            assert_eq!(info.domain, DOMAIN);
            assert_eq!(info.metadata.get("sequence").map(String::as_str), Some("3"));
            assert_eq!(reason(&status).as_deref(), Some("KEL_BAD_SIGNATURE"));
        }

        #[test]
        fn survives_encoding_as_http_trailers() {
            // What travels on the wire: grpc-status, grpc-message and grpc-status-details-bin.
            let sent = error(
                Code::Unauthenticated,
                crate::reasons::AUTH_REQUIRED,
                "admin token required",
                &[],
            );
            let mut headers = tonic::codegen::http::HeaderMap::new();
            sent.add_header(&mut headers).expect("encode");
            let received = Status::from_header_map(&headers).expect("decode");
            assert_eq!(received.code(), Code::Unauthenticated);
            assert_eq!(reason(&received).as_deref(), Some("AUTH_REQUIRED"));
            assert!(error_info(&received).expect("info").metadata.is_empty());
        }

        #[test]
        fn foreign_or_missing_details_give_no_reason() {
            assert_eq!(reason(&Status::internal("boom")), None);
            let foreign = Status::with_error_details(
                Code::Internal,
                "elsewhere",
                ErrorDetails::with_error_info("SOME_REASON", "example.com", HashMap::new()),
            );
            assert!(error_info(&foreign).is_none());
            let garbage =
                Status::with_details(Code::Internal, "garbage", b"\xff\xff\xff".to_vec().into());
            assert_eq!(reason(&garbage), None);
        }
    }
}

pub mod reasons {
    //! The node-level reason codes that this contract defines, for `ErrorInfo.reason`.
    //!
    //! Protocol failures use the codes of the reference implementation instead
    //! (`atp_core::CoreError::code`, `atp_crypto::CryptoError::code`, listed in
    //! docs/protocol.md). `proto/README.md` gives each code's gRPC code and meaning. Codes are
    //! never renamed or reused; new ones may be added.

    /// UNAUTHENTICATED: the call needs credentials and carries none.
    pub const AUTH_REQUIRED: &str = "AUTH_REQUIRED";
    /// UNAUTHENTICATED: the credentials are wrong, malformed or expired.
    pub const AUTH_INVALID: &str = "AUTH_INVALID";
    /// PERMISSION_DENIED: the authenticated caller may not do this.
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    /// UNIMPLEMENTED: the capability needs the enterprise edition (metadata `feature`).
    pub const ENTERPRISE_REQUIRED: &str = "ENTERPRISE_REQUIRED";
    /// RESOURCE_EXHAUSTED: the per-peer rate limit was hit (a RetryInfo detail may follow).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// INVALID_ARGUMENT: a request field is missing, out of range or an unknown enum value
    /// (metadata `field`).
    pub const FIELD_INVALID: &str = "FIELD_INVALID";
    /// INVALID_ARGUMENT: the page token is not one the node issued for this request, or expired.
    pub const PAGE_TOKEN_INVALID: &str = "PAGE_TOKEN_INVALID";
    /// NOT_FOUND: the node holds no key event log for this `did:atp`.
    pub const DID_NOT_FOUND: &str = "DID_NOT_FOUND";
    /// NOT_FOUND: the node hosts no status list at this URL.
    pub const STATUS_LIST_NOT_FOUND: &str = "STATUS_LIST_NOT_FOUND";
    /// FAILED_PRECONDITION: a status entry could not be checked and unchecked status was not
    /// allowed.
    pub const STATUS_LIST_UNAVAILABLE: &str = "STATUS_LIST_UNAVAILABLE";
    /// INVALID_ARGUMENT: the credential's revocation entry is set.
    pub const CREDENTIAL_REVOKED: &str = "CREDENTIAL_REVOKED";
    /// INVALID_ARGUMENT: the credential's suspension entry is set.
    pub const CREDENTIAL_SUSPENDED: &str = "CREDENTIAL_SUSPENDED";
    /// INVALID_ARGUMENT: the presentation's challenge was already consumed for this domain.
    pub const PRESENTATION_CHALLENGE_REPLAY: &str = "PRESENTATION_CHALLENGE_REPLAY";
    /// INVALID_ARGUMENT: a signed status-list update does not parse exactly.
    pub const STATUS_UPDATE_MALFORMED: &str = "STATUS_UPDATE_MALFORMED";
    /// INVALID_ARGUMENT: a signed status-list update's signature does not verify.
    pub const STATUS_UPDATE_BAD_SIGNATURE: &str = "STATUS_UPDATE_BAD_SIGNATURE";
    /// INVALID_ARGUMENT: a signed status-list update names a key that is not the issuer's
    /// current one, or the issuer is deactivated.
    pub const STATUS_UPDATE_KEY_NOT_CURRENT: &str = "STATUS_UPDATE_KEY_NOT_CURRENT";
    /// INVALID_ARGUMENT: a signed status-list update's `update_seq` is not above the last
    /// accepted one (a replay or a reordering).
    pub const STATUS_UPDATE_STALE: &str = "STATUS_UPDATE_STALE";
    /// PERMISSION_DENIED: the signer (or caller) does not control the status list.
    pub const STATUS_UPDATE_NOT_ISSUER: &str = "STATUS_UPDATE_NOT_ISSUER";
    /// FAILED_PRECONDITION: the change would clear a set revocation entry.
    pub const STATUS_REVOCATION_FINAL: &str = "STATUS_REVOCATION_FINAL";
    /// FAILED_PRECONDITION: the subject's personal data was erased; nothing more about it is
    /// stored.
    pub const SUBJECT_ERASED: &str = "SUBJECT_ERASED";
    /// INVALID_ARGUMENT: an authentication response does not parse exactly.
    pub const SESSION_MALFORMED: &str = "SESSION_MALFORMED";
    /// INVALID_ARGUMENT: an authentication response names another node.
    pub const SESSION_WRONG_NODE: &str = "SESSION_WRONG_NODE";
    /// INVALID_ARGUMENT: the challenge is unknown, expired, used, or for another DID or audience.
    pub const SESSION_CHALLENGE_UNKNOWN: &str = "SESSION_CHALLENGE_UNKNOWN";
    /// INVALID_ARGUMENT: the authentication names a key that is not the DID's current one, or
    /// the DID is deactivated.
    pub const SESSION_KEY_NOT_CURRENT: &str = "SESSION_KEY_NOT_CURRENT";
    /// INVALID_ARGUMENT: the authentication response's signature does not verify.
    pub const SESSION_BAD_SIGNATURE: &str = "SESSION_BAD_SIGNATURE";
    /// RESOURCE_EXHAUSTED: the node's challenge cache is full of unexpired challenges.
    pub const SESSION_CHALLENGE_CACHE_FULL: &str = "SESSION_CHALLENGE_CACHE_FULL";
    /// NOT_FOUND: no leaf of the log has this hash.
    pub const TLOG_LEAF_NOT_FOUND: &str = "TLOG_LEAF_NOT_FOUND";
    /// OUT_OF_RANGE: the tree size is beyond the latest signed checkpoint.
    pub const TLOG_TREE_SIZE_UNAVAILABLE: &str = "TLOG_TREE_SIZE_UNAVAILABLE";
    /// UNAVAILABLE: the node has not signed a checkpoint yet.
    pub const CHECKPOINT_UNAVAILABLE: &str = "CHECKPOINT_UNAVAILABLE";
    /// FAILED_PRECONDITION: the trust-anchor set changed since the expected revision.
    pub const TRUST_ANCHORS_REVISION_MISMATCH: &str = "TRUST_ANCHORS_REVISION_MISMATCH";
    /// INVALID_ARGUMENT: a signer of the evidence was deactivated at or before its `created`.
    pub const EVIDENCE_SIGNER_DEACTIVATED: &str = "EVIDENCE_SIGNER_DEACTIVATED";
    /// UNAVAILABLE: the node has not computed a trust snapshot yet; retry shortly.
    pub const TRUST_NOT_COMPUTED: &str = "TRUST_NOT_COMPUTED";
    /// UNAVAILABLE: the node cannot serve now (shutting down, store unavailable); retry later.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// INTERNAL: a bug or an unexpected failure; the message carries no detail.
    pub const INTERNAL: &str = "INTERNAL";
    /// HTTP routes only (status 413): the request body is larger than the route's limit.
    pub const HTTP_BODY_TOO_LARGE: &str = "HTTP_BODY_TOO_LARGE";
    /// HTTP routes only (status 415): the body is not `application/json` (or a `+json` type).
    pub const HTTP_UNSUPPORTED_MEDIA_TYPE: &str = "HTTP_UNSUPPORTED_MEDIA_TYPE";

    /// Every code above, for tests and documentation checks.
    pub const ALL: &[&str] = &[
        HTTP_BODY_TOO_LARGE,
        HTTP_UNSUPPORTED_MEDIA_TYPE,
        AUTH_REQUIRED,
        AUTH_INVALID,
        PERMISSION_DENIED,
        ENTERPRISE_REQUIRED,
        RATE_LIMITED,
        FIELD_INVALID,
        PAGE_TOKEN_INVALID,
        DID_NOT_FOUND,
        STATUS_LIST_NOT_FOUND,
        STATUS_LIST_UNAVAILABLE,
        CREDENTIAL_REVOKED,
        CREDENTIAL_SUSPENDED,
        PRESENTATION_CHALLENGE_REPLAY,
        STATUS_UPDATE_MALFORMED,
        STATUS_UPDATE_BAD_SIGNATURE,
        STATUS_UPDATE_KEY_NOT_CURRENT,
        STATUS_UPDATE_STALE,
        STATUS_UPDATE_NOT_ISSUER,
        STATUS_REVOCATION_FINAL,
        SUBJECT_ERASED,
        SESSION_MALFORMED,
        SESSION_WRONG_NODE,
        SESSION_CHALLENGE_UNKNOWN,
        SESSION_KEY_NOT_CURRENT,
        SESSION_BAD_SIGNATURE,
        SESSION_CHALLENGE_CACHE_FULL,
        TLOG_LEAF_NOT_FOUND,
        TLOG_TREE_SIZE_UNAVAILABLE,
        CHECKPOINT_UNAVAILABLE,
        TRUST_ANCHORS_REVISION_MISMATCH,
        EVIDENCE_SIGNER_DEACTIVATED,
        TRUST_NOT_COMPUTED,
        UNAVAILABLE,
        INTERNAL,
    ];
}
