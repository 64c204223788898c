//! [`ServerError`], the one error type of the services, and THE mapping from it to a gRPC
//! status (and an HTTP status for the routes).
//!
//! Every failure becomes a `tonic::Status` whose details hold one `google.rpc.ErrorInfo` with a
//! stable `reason` (domain `atp.v1`), built with [`atp_grpc::status::error`]. The gRPC code is
//! derived from the reason alone by [`grpc_code`], which follows the table of proto/README.md,
//! so that one reason always travels with the same code.

use atp_core::CoreError;
use atp_grpc::reasons;
use atp_store::StoreError;
use tonic::{Code, Status};

/// Everything a service can answer instead of a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A protocol rule of `atp-core` refused the input; the reason is [`CoreError::code`].
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The store failed or refused the write; see [`ServerError::reason`] for the mapping.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request field is missing, malformed, out of range or an unknown enum value
    /// (`FIELD_INVALID`, metadata `field`).
    #[error("{field}: {message}")]
    FieldInvalid {
        /// The offending request field (proto name, e.g. `signed_event_json`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The call needs credentials and carries none (`AUTH_REQUIRED`).
    #[error("this call needs credentials: authorization: Bearer <token>")]
    AuthRequired,
    /// The credentials are wrong, malformed or expired (`AUTH_INVALID`).
    #[error("the credentials are invalid")]
    AuthInvalid,
    /// The authenticated caller may not do this (`PERMISSION_DENIED`).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The capability needs the enterprise edition (`ENTERPRISE_REQUIRED`, metadata `feature`).
    #[error("this needs the enterprise feature `{feature}`")]
    EnterpriseRequired {
        /// The Cargo feature of the enterprise edition that provides it.
        feature: String,
    },
    /// The per-peer rate limit was hit (`RATE_LIMITED`).
    #[error("rate limit exceeded; retry later")]
    RateLimited,
    /// The node holds no key event log for this `did:atp` (`DID_NOT_FOUND`).
    #[error("no key event log for {0}")]
    DidNotFound(String),
    /// Any other documented reason code (of `atp_grpc::reasons`, or an `atp-core` /
    /// `atp-crypto` code), with a human message and optional metadata. The gRPC code follows
    /// from the reason ([`grpc_code`]).
    #[error("{message}")]
    Rejected {
        /// The stable reason code.
        reason: &'static str,
        /// A message for humans and logs; no secrets, no personal data.
        message: String,
        /// `ErrorInfo.metadata` (lowerCamelCase keys).
        metadata: Vec<(&'static str, String)>,
    },
    /// The node cannot serve now (`UNAVAILABLE`): shutting down, store unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (`INTERNAL`). The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServerError {
    /// A `FIELD_INVALID` error for `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServerError::FieldInvalid { field: field.into(), message: message.into() }
    }

    /// An error with a documented reason code and a message.
    pub fn rejected(reason: &'static str, message: impl Into<String>) -> Self {
        ServerError::Rejected { reason, message: message.into(), metadata: Vec::new() }
    }

    /// An `INTERNAL` error; `detail` is logged, not sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        ServerError::Internal(detail.into())
    }

    /// The stable reason code sent in `ErrorInfo.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ServerError::Core(e) => e.code(),
            ServerError::Store(e) => store_reason(e),
            ServerError::FieldInvalid { .. } => reasons::FIELD_INVALID,
            ServerError::AuthRequired => reasons::AUTH_REQUIRED,
            ServerError::AuthInvalid => reasons::AUTH_INVALID,
            ServerError::PermissionDenied(_) => reasons::PERMISSION_DENIED,
            ServerError::EnterpriseRequired { .. } => reasons::ENTERPRISE_REQUIRED,
            ServerError::RateLimited => reasons::RATE_LIMITED,
            ServerError::DidNotFound(_) => reasons::DID_NOT_FOUND,
            ServerError::Rejected { reason, .. } => reason,
            ServerError::Unavailable(_) => reasons::UNAVAILABLE,
            ServerError::Internal(_) => reasons::INTERNAL,
        }
    }

    /// The gRPC code: [`grpc_code`] of the reason.
    pub fn code(&self) -> Code {
        grpc_code(self.reason())
    }

    /// The HTTP status for the HTTP routes (problem details): the usual HTTP equivalent of the
    /// gRPC code.
    pub fn http_status(&self) -> u16 {
        http_status(self.code())
    }

    /// The message sent to the client: the error's text, except for `INTERNAL`, which says
    /// nothing about the cause.
    pub fn public_message(&self) -> String {
        match self.code() {
            Code::Internal => "internal error".to_owned(),
            _ => self.to_string(),
        }
    }

    /// `ErrorInfo.metadata`.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            ServerError::FieldInvalid { field, .. } => vec![("field", field.clone())],
            ServerError::EnterpriseRequired { feature } => vec![("feature", feature.clone())],
            ServerError::Rejected { metadata, .. } => metadata.clone(),
            _ => Vec::new(),
        }
    }

    /// The gRPC status: code, public message and one ATP `ErrorInfo`. Internal errors are
    /// logged here with their detail.
    pub fn to_status(&self) -> Status {
        let code = self.code();
        if code == Code::Internal {
            tracing::error!(error = %self, "internal error");
        }
        let metadata = self.metadata();
        let pairs: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
        atp_grpc::status::error(code, self.reason(), self.public_message(), &pairs)
    }
}

impl From<ServerError> for Status {
    fn from(e: ServerError) -> Self {
        e.to_status()
    }
}

fn store_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::Core(c) => c.code(),
        StoreError::InvalidArgument(_) => reasons::FIELD_INVALID,
        StoreError::OutOfRange(_) => reasons::TLOG_TREE_SIZE_UNAVAILABLE,
        StoreError::NotFound { what: "status list", .. } => reasons::STATUS_LIST_NOT_FOUND,
        StoreError::StatusUpdateStale { .. } => reasons::STATUS_UPDATE_STALE,
        StoreError::StatusRevocationFinal { .. } => reasons::STATUS_REVOCATION_FINAL,
        StoreError::SubjectErased { .. } => reasons::SUBJECT_ERASED,
        // The database is out of reach (a lost connection, a failover): retry, here or on
        // another node of the cluster.
        e if e.is_unavailable() => reasons::UNAVAILABLE,
        // A lost race that the caller did not resolve: retrying is the right answer.
        StoreError::Conflict { .. } => reasons::UNAVAILABLE,
        _ => reasons::INTERNAL,
    }
}

/// The gRPC code of a reason code: the table of proto/README.md. Codes of `atp-core` and
/// `atp-crypto` are `INVALID_ARGUMENT` unless listed here.
pub fn grpc_code(reason: &str) -> Code {
    match reason {
        reasons::DID_NOT_FOUND
        | "DID_VERSION_NOT_FOUND"
        | reasons::STATUS_LIST_NOT_FOUND
        | reasons::TLOG_LEAF_NOT_FOUND => Code::NotFound,
        "TLOG_INDEX_OUT_OF_RANGE" | reasons::TLOG_TREE_SIZE_UNAVAILABLE => Code::OutOfRange,
        reasons::STATUS_REVOCATION_FINAL
        | reasons::SUBJECT_ERASED
        | reasons::TRUST_ANCHORS_REVISION_MISMATCH
        | reasons::STATUS_LIST_UNAVAILABLE => Code::FailedPrecondition,
        reasons::AUTH_REQUIRED | reasons::AUTH_INVALID => Code::Unauthenticated,
        reasons::PERMISSION_DENIED | reasons::STATUS_UPDATE_NOT_ISSUER => Code::PermissionDenied,
        reasons::ENTERPRISE_REQUIRED => Code::Unimplemented,
        reasons::RATE_LIMITED
        | "ENVELOPE_REPLAY_CACHE_FULL"
        | reasons::SESSION_CHALLENGE_CACHE_FULL => Code::ResourceExhausted,
        reasons::UNAVAILABLE | reasons::CHECKPOINT_UNAVAILABLE | reasons::TRUST_NOT_COMPUTED => {
            Code::Unavailable
        }
        reasons::INTERNAL => Code::Internal,
        // A call that tonic refused itself is observed under its code's name (observe.rs).
        other => atp_grpc::status::code_of_name(other).unwrap_or(Code::InvalidArgument),
    }
}

/// The HTTP status that corresponds to a gRPC code.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::OutOfRange => 400,
        Code::FailedPrecondition => 409,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    }
}

/// The result type of the services.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_reason_has_the_documented_code() {
        for &r in reasons::ALL {
            let code = grpc_code(r);
            // FIELD_INVALID and the verification failures default to INVALID_ARGUMENT.
            assert_ne!(code, Code::Ok, "{r}");
        }
        assert_eq!(grpc_code("KEL_FORK"), Code::InvalidArgument);
        assert_eq!(grpc_code(reasons::CHECKPOINT_UNAVAILABLE), Code::Unavailable);
        assert_eq!(ServerError::internal("secret detail").public_message(), "internal error");
    }

    #[test]
    fn status_carries_reason_and_field() {
        let s = ServerError::field("did", "empty").to_status();
        assert_eq!(s.code(), Code::InvalidArgument);
        let info = atp_grpc::status::error_info(&s).expect("info");
        assert_eq!(info.reason, "FIELD_INVALID");
        assert_eq!(info.metadata.get("field").map(String::as_str), Some("did"));
    }
}
