//! The SDK's single error type.

use std::path::PathBuf;

use atp_core::CoreError;
use atp_crypto::CryptoError;

/// Every failure of the SDK. Each message says what to do next; [`Error::code`] gives a stable
/// code to branch on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No node endpoint answered, after the retries.
    #[error("node unreachable at {endpoints}: is `atp-node` running? ({detail})")]
    NodeUnreachable {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// The last transport error.
        detail: String,
    },
    /// The node answered with an error status.
    #[error("the node refused {operation}: {}{message}", reason.as_deref().map(|r| format!("{r}: ")).unwrap_or_default())]
    Rejected {
        /// The RPC, e.g. `SubmitEvent`.
        operation: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The ATP reason code from the status's `ErrorInfo`, when there is one.
        reason: Option<String>,
        /// The node's message.
        message: String,
    },
    /// The node's answer did not verify: a bad KEL, proof or checkpoint, a wrong-size key, an
    /// answer about another DID. The SDK never trusts such an answer.
    #[error("the node's answer to {operation} failed verification: {detail}")]
    NodeMisbehaved {
        /// The RPC whose answer failed.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The node showed two views of its transparency log that cannot both be true: a fork, a
    /// log that shrank, an older checkpoint replayed, or a consistency proof that does not
    /// verify. The evidence holds both signed checkpoints and the node's key event log, and
    /// verifies offline ([`atp_core::log_evidence::LogEvidence::verify`]). Code
    /// `NODE_MISBEHAVED`.
    #[error("the node's transparency log is inconsistent: {}", .0.observed)]
    LogInconsistent(Box<atp_core::log_evidence::LogEvidence>),
    /// A protocol rule refused the input (an envelope, a KEL event, a credential, …).
    #[error("{0}")]
    Protocol(#[from] CoreError),
    /// A cryptographic failure (a bad key, key file or signature).
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// The agent name cannot name a directory under `$ATP_HOME`.
    #[error(
        "invalid agent name {0:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ - (not starting with '.')"
    )]
    InvalidAgentName(String),
    /// The agent's files under `$ATP_HOME` are missing, unreadable or inconsistent.
    #[error("agent home {}: {detail}", path.display())]
    Home {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A node endpoint or TLS setting is unusable.
    #[error("invalid node endpoint {endpoint:?}: {detail}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it is unusable.
        detail: String,
    },
    /// The agent's identity is deactivated: it can no longer sign.
    #[error("the identity {did} is deactivated; it can no longer sign (create a new agent name)")]
    Deactivated {
        /// The deactivated DID.
        did: String,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The node's audit trail does not verify: a stored event or batch was changed, deleted or
    /// moved, or a batch is not the one its transparency-log leaf commits to.
    #[error("the audit trail does not verify: {0}")]
    AuditTampered(#[from] atp_core::audit::Tamper),
}

impl Error {
    /// A stable UPPER_SNAKE_CASE code: the node's reason, the protocol's code, or one of
    /// `NODE_UNREACHABLE`, `NODE_MISBEHAVED`, `AGENT_NAME_INVALID`, `AGENT_HOME`,
    /// `ENDPOINT_INVALID`, `IDENTITY_DEACTIVATED`, `INVALID_ARGUMENT`, `AUDIT_TAMPERED`,
    /// `NODE_ERROR`.
    pub fn code(&self) -> &str {
        match self {
            Error::NodeUnreachable { .. } => "NODE_UNREACHABLE",
            Error::Rejected { reason, .. } => reason.as_deref().unwrap_or("NODE_ERROR"),
            Error::NodeMisbehaved { .. } | Error::LogInconsistent(_) => "NODE_MISBEHAVED",
            Error::Protocol(e) => e.code(),
            Error::Crypto(e) => e.code(),
            Error::InvalidAgentName(_) => "AGENT_NAME_INVALID",
            Error::Home { .. } => "AGENT_HOME",
            Error::InvalidEndpoint { .. } => "ENDPOINT_INVALID",
            Error::Deactivated { .. } => "IDENTITY_DEACTIVATED",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::AuditTampered(_) => "AUDIT_TAMPERED",
        }
    }

    pub(crate) fn rejected(operation: &'static str, status: &tonic::Status) -> Self {
        Error::Rejected {
            operation,
            code: status.code(),
            reason: atp_grpc::status::reason(status),
            message: status.message().to_owned(),
        }
    }

    pub(crate) fn misbehaved(operation: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::NodeMisbehaved { operation, detail: detail.to_string() }
    }

    pub(crate) fn home(path: impl Into<PathBuf>, detail: impl std::fmt::Display) -> Self {
        Error::Home { path: path.into(), detail: detail.to_string() }
    }
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
