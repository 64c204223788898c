//! The extension seam: who is calling, may they do this, what happened, and the audit trail.
//!
//! `atp-node` builds one [`Extensions`] value (in one function, the only place where the
//! enterprise edition's `cfg(feature)`s appear) and every service goes through it. The
//! community implementations here are:
//!
//! - [`BearerTokenAuthenticator`]: `authorization: Bearer <token>` checked by a verifier the
//!   node passes in (constant-time; this crate never sees the token file);
//! - [`AdminOnlyAuthorizer`]: the admin may do everything, everyone else nothing (deny by
//!   default);
//! - [`TracingObserver`] and [`TracingAuditSink`]: `tracing` events.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use atp_core::audit::AuditEvent;
use atp_store::AuditEntry;

use crate::error::ServerError;

/// The boxed future of the async seam traits (they are used as `Arc<dyn …>`).
pub type SeamFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the authenticator sees of a call: its operation, peer and credentials. Built from
/// gRPC metadata ([`CallInfo::from_grpc`]) or HTTP headers ([`CallInfo::from_http`], with
/// [`CallInfo::with_connection`] for the peer and its certificate).
#[derive(Clone, Default)]
pub struct CallInfo {
    /// The operation, e.g. `trust_anchors.set` or `atp.v1.AdminService/SetTrustAnchors`.
    pub operation: String,
    /// The peer's address, when known.
    pub peer: Option<SocketAddr>,
    /// The raw `authorization` header value, when present and valid ASCII.
    pub authorization: Option<String>,
    /// Whether an `authorization` header was present but not valid text (always invalid).
    pub authorization_unreadable: bool,
    /// The client's certificate on a mutual-TLS connection: present only when the node was
    /// given a client CA (`--tls-client-ca`) and the TLS handshake verified the client's chain
    /// against it. Whom it names is for the authenticator to decide; the community
    /// authenticator ignores it.
    pub client_certificate: Option<ClientCertificate>,
    /// The client's `user-agent`, when present, valid text and at most [`MAX_CALL_TAG_BYTES`]
    /// (for the audit trail).
    pub user_agent: Option<String>,
    /// The caller's `x-request-id`, on the same terms (for the audit trail).
    pub request_id: Option<String>,
}

/// The longest `user-agent` or `x-request-id` kept for the audit trail; a longer one is dropped.
pub const MAX_CALL_TAG_BYTES: usize = 256;

/// A header value kept for the audit trail: text of at most [`MAX_CALL_TAG_BYTES`].
fn call_tag(text: Option<&str>) -> Option<String> {
    text.filter(|t| t.len() <= MAX_CALL_TAG_BYTES).map(str::to_owned)
}

impl fmt::Debug for CallInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the credentials.
        f.debug_struct("CallInfo")
            .field("operation", &self.operation)
            .field("peer", &self.peer)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("client_certificate", &self.client_certificate)
            .finish()
    }
}

/// The end-entity certificate a mutual-TLS client presented (DER) and its SHA-256 fingerprint,
/// the stable identifier an authenticator can bind a principal to.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: Arc<[u8]>,
    sha256: [u8; 32],
}

impl ClientCertificate {
    /// The certificate with this DER encoding.
    pub fn from_der(der: &[u8]) -> Self {
        use sha2::Digest as _;
        ClientCertificate { der: der.into(), sha256: sha2::Sha256::digest(der).into() }
    }

    /// The certificate's DER encoding, for an authenticator that reads its subject or SANs.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER encoding.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// `sha256:` and the lowercase hex of [`ClientCertificate::sha256`], the form that names a
    /// certificate in configuration and audit records.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(self.sha256))
    }

    /// The leaf (first) certificate of a verified peer chain, if any.
    fn leaf_of(chain: Option<&[tonic::transport::CertificateDer<'static>]>) -> Option<Self> {
        chain.and_then(<[_]>::first).map(|leaf| ClientCertificate::from_der(leaf.as_ref()))
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl CallInfo {
    /// From a gRPC request.
    pub fn from_grpc<T>(operation: &str, request: &tonic::Request<T>) -> Self {
        let (authorization, authorization_unreadable) =
            match request.metadata().get("authorization") {
                None => (None, false),
                Some(v) => match v.to_str() {
                    Ok(s) => (Some(s.to_owned()), false),
                    Err(_) => (None, true),
                },
            };
        CallInfo {
            operation: operation.to_owned(),
            peer: request.remote_addr(),
            authorization,
            authorization_unreadable,
            client_certificate: ClientCertificate::leaf_of(
                request.peer_certs().as_deref().map(Vec::as_slice),
            ),
            user_agent: call_tag(
                request.metadata().get("user-agent").and_then(|v| v.to_str().ok()),
            ),
            request_id: call_tag(
                request.metadata().get("x-request-id").and_then(|v| v.to_str().ok()),
            ),
        }
    }

    /// From HTTP request headers.
    pub fn from_http(operation: &str, headers: &http::HeaderMap, peer: Option<SocketAddr>) -> Self {
        let (authorization, authorization_unreadable) =
            match headers.get(http::header::AUTHORIZATION) {
                None => (None, false),
                Some(v) => match v.to_str() {
                    Ok(s) => (Some(s.to_owned()), false),
                    Err(_) => (None, true),
                },
            };
        CallInfo {
            operation: operation.to_owned(),
            peer,
            authorization,
            authorization_unreadable,
            client_certificate: None,
            user_agent: call_tag(
                headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()),
            ),
            request_id: call_tag(headers.get("x-request-id").and_then(|v| v.to_str().ok())),
        }
    }

    /// Fills the peer's address and, on a mutual-TLS connection, its verified certificate from
    /// the connection information the server put into an HTTP request's extensions.
    pub fn with_connection(mut self, extensions: &http::Extensions) -> Self {
        use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
        if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
            self.peer = self.peer.or_else(|| tls.get_ref().remote_addr());
            self.client_certificate =
                ClientCertificate::leaf_of(tls.peer_certs().as_deref().map(Vec::as_slice));
        } else if let Some(tcp) = extensions.get::<TcpConnectInfo>() {
            self.peer = self.peer.or_else(|| tcp.remote_addr());
        }
        self
    }

    /// The bearer token: `Ok(None)` without credentials, `AUTH_INVALID` for an
    /// `authorization` value that is not `Bearer <token>`.
    pub fn bearer(&self) -> Result<Option<&str>, ServerError> {
        if self.authorization_unreadable {
            return Err(ServerError::AuthInvalid);
        }
        let Some(value) = self.authorization.as_deref() else { return Ok(None) };
        let (scheme, token) = value.trim().split_once(' ').ok_or(ServerError::AuthInvalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ServerError::AuthInvalid);
        }
        Ok(Some(token.trim()))
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// The node's administrator (the community admin token).
    Admin,
    /// A caller identified by an enterprise authenticator (SSO, client certificate, session).
    User {
        /// A stable identifier (subject, DID, certificate fingerprint).
        id: String,
        /// Roles or groups, for an RBAC authorizer.
        roles: Vec<String>,
    },
}

impl Principal {
    /// A short, loggable name: `anonymous`, `admin`, or the user id.
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Admin => "admin",
            Principal::User { id, .. } => id,
        }
    }
}

/// Who is calling, from the call's credentials.
pub trait Authenticator: Send + Sync {
    /// [`Principal::Anonymous`] for a call without credentials; `AUTH_INVALID` for credentials
    /// that are present but wrong (never silently anonymous).
    fn authenticate<'a>(
        &'a self,
        call: &'a CallInfo,
    ) -> SeamFuture<'a, Result<Principal, ServerError>>;
}

/// May `principal` do `operation` on `resource`? Deny by default.
///
/// Every authorizer opens the same way: the node administrator may do everything and an
/// anonymous caller gets `AUTH_REQUIRED`. That opening is [`Authorizer::authorize`], written
/// once here; an implementation decides only for identified users, in
/// [`Authorizer::authorize_user`].
pub trait Authorizer: Send + Sync {
    /// `Ok` to allow: the shared opening, then [`Authorizer::authorize_user`] for a
    /// [`Principal::User`]. Implementations keep this provided method.
    fn authorize<'a>(
        &'a self,
        principal: &'a Principal,
        operation: &'a str,
        resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        match principal {
            Principal::Admin => Box::pin(std::future::ready(Ok(()))),
            Principal::Anonymous => Box::pin(std::future::ready(Err(ServerError::AuthRequired))),
            Principal::User { id, roles } => self.authorize_user(id, roles, operation, resource),
        }
    }

    /// May the identified user `id`, with `roles`, do `operation` on `resource`? Refuse with
    /// `PERMISSION_DENIED`.
    fn authorize_user<'a>(
        &'a self,
        id: &'a str,
        roles: &'a [String],
        operation: &'a str,
        resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>>;

    /// The role-binding policy this authorizer enforces, if it has one (the enterprise RBAC).
    /// Without one the AdminService binding RPCs answer `ENTERPRISE_REQUIRED`.
    fn role_policy(&self) -> Option<&dyn RolePolicy> {
        None
    }
}

/// An authorizer's role bindings, kept in the store (AdminService `ListRoleBindings`,
/// `AddRoleBinding`, `RemoveRoleBinding`): the server checks each binding with the policy,
/// writes the store, then tells the policy, which reloads before the next call.
pub trait RolePolicy: Send + Sync {
    /// Refuses a binding the policy cannot hold with `FIELD_INVALID` naming the field
    /// (`bindings.subject`, `bindings.role`, `bindings.domain`).
    fn check_binding(&self, binding: &atp_store::RoleBinding) -> Result<(), ServerError>;

    /// The permissions of the roles: `[role, domain, object, action]` (Casbin `p` lines).
    fn permissions(&self) -> Vec<[String; 4]>;

    /// The stored bindings changed to `revision`: reload them before the next call.
    fn bindings_changed(&self, revision: u64) -> SeamFuture<'_, Result<(), ServerError>>;
}

/// The outcome of one RPC or HTTP request, for metrics.
#[derive(Clone, Debug)]
pub struct RpcEvent<'a> {
    /// `atp.v1.IdentityService/SubmitEvent` (`atp.v1.IdentityService/unmatched` for a path
    /// that names no method), or `GET /1.0/identifiers` for HTTP.
    pub method: &'a str,
    /// The peer, when known.
    pub peer: Option<SocketAddr>,
    /// `OK`, or the error's reason code, or for a refusal without one (tonic's own) the gRPC
    /// code's name (`UNIMPLEMENTED`, see `atp_grpc::status::code_name`); for HTTP, `OK` for a
    /// 2xx answer, else the status code (`404`).
    pub outcome: &'a str,
    /// How long the call took.
    pub elapsed: Duration,
}

/// A state change or notable domain fact, for metrics and logs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DomainEvent<'a> {
    /// A key event was accepted and logged.
    KelEventAccepted {
        /// The DID.
        did: &'a str,
        /// The event's sequence number.
        sequence: u64,
        /// Its log index.
        log_index: u64,
        /// Its type: `icp`, `rot` or `dea` (`atp_core::kel::EventType::as_str`).
        event_type: &'static str,
    },
    /// A fork of a key event log was detected and its evidence stored.
    KelForkDetected {
        /// The DID.
        did: &'a str,
        /// The sequence number at which the logs diverge.
        sequence: u64,
    },
    /// A checkpoint was signed and stored.
    CheckpointSigned {
        /// Its tree size.
        size: u64,
    },
    /// A signature was checked: one per signature, on the request path, so observers must keep
    /// this cheap (every field is static; nothing is allocated to emit it).
    SignatureVerified {
        /// What was signed: `envelope`, `session`, `credential`, `presentation`, `key_event`,
        /// `evidence` or `status_update`.
        kind: &'static str,
        /// The signature algorithm (`mldsa65-ed25519`, `atp_crypto::AlgorithmId::name`) or,
        /// for Data Integrity proofs, the cryptosuite (`eddsa-jcs-2022`).
        algorithm: &'static str,
        /// Whether it verified.
        ok: bool,
    },
    /// Entries of a status list changed: UpdateStatus on a list the node issues from, or a
    /// signed update of an external issuer's hosted list.
    CredentialStatusChanged {
        /// The list (its id on this node; never a metric label).
        list_id: &'a str,
        /// The list's purpose: `revocation`, `suspension` or `message`.
        purpose: &'static str,
        /// Entries set to a non-zero value (revoked, suspended, a message selected).
        set: u64,
        /// Entries set to zero (reinstated, or the default message).
        cleared: u64,
        /// Whether the update was signed by an external issuer (else the node changed its own
        /// list).
        external: bool,
    },
    /// A credential or a presentation was verified (VerifyCredential, VerifyPresentation, and
    /// their VC-API routes), whatever the result.
    CredentialVerified {
        /// `credential` or `presentation`.
        kind: &'static str,
        /// `OK`, or the refusal's reason code.
        result: &'static str,
    },
    /// A trust computation finished and its snapshot was published.
    TrustRecomputed {
        /// How long the computation took (reading the evidence, computing, publishing).
        elapsed: Duration,
        /// How many agents (DIDs in the snapshot) are at each level, 0 to 4.
        agents_by_level: [u64; 5],
    },
    /// Anything else, named by `kind` (e.g. `credential.issued`).
    Other {
        /// A stable dotted name.
        kind: &'static str,
        /// A short, non-personal detail.
        detail: String,
    },
}

/// One event per RPC and per domain event. Must not block; errors are the observer's own.
pub trait Observer: Send + Sync {
    /// Called once per finished RPC (or HTTP request).
    fn on_rpc(&self, event: &RpcEvent<'_>);
    /// Called once per domain event.
    fn on_domain_event(&self, event: &DomainEvent<'_>);
}

/// Turns the node's audit events into what the store keeps (docs/audit.md). The server builds
/// one [`AuditEvent`] per fact worth recording and writes the entries in the transaction of the
/// change they record ([`atp_store::Store::write_audited`]), so a change whose audit entry cannot
/// be stored is not made.
pub trait AuditSink: Send + Sync {
    /// The stored form of `event` (an enterprise trail replaces the sensitive fields with keyed
    /// hashes here), or `Ok(None)` when this sink keeps no trail in the store. An error fails the
    /// request.
    fn entry(&self, event: &AuditEvent) -> Result<Option<AuditEntry>, ServerError>;

    /// How often the node seals the stored trail into the transparency log; `None` when the
    /// sink keeps no trail in the store.
    fn seal_interval(&self) -> Option<Duration> {
        None
    }

    /// How long the stored trail keeps sealed events: older batches expire, oldest first, each
    /// time the node seals (docs/audit.md, "Retention"). `None`: for ever.
    fn retention(&self) -> Option<Duration> {
        None
    }

    /// The keyed hash this sink stores for `value` under `tenant`'s key (`None`: the node's
    /// own), so that an auditor can search for a known value; `None` when the sink hashes
    /// nothing.
    fn hash_value(&self, _tenant: Option<&str>, _value: &str) -> Option<String> {
        None
    }
}

/// The four seam implementations every service uses.
#[derive(Clone)]
pub struct Extensions {
    /// Who is calling.
    pub authenticator: Arc<dyn Authenticator>,
    /// May they do it.
    pub authorizer: Arc<dyn Authorizer>,
    /// Metrics and logs.
    pub observer: Arc<dyn Observer>,
    /// The audit trail of admin actions.
    pub audit: Arc<dyn AuditSink>,
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions").finish_non_exhaustive()
    }
}

impl Extensions {
    /// The community set: bearer admin token, admin-only authorizer, tracing observer and
    /// audit sink. `verify_admin_token` must compare in constant time.
    pub fn community(verify_admin_token: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Extensions {
            authenticator: Arc::new(BearerTokenAuthenticator::new(verify_admin_token)),
            authorizer: Arc::new(AdminOnlyAuthorizer),
            observer: Arc::new(TracingObserver),
            audit: Arc::new(TracingAuditSink),
        }
    }

    /// Reports one checked signature ([`DomainEvent::SignatureVerified`]).
    pub fn signature_verified(&self, kind: &'static str, algorithm: &'static str, ok: bool) {
        self.observer.on_domain_event(&DomainEvent::SignatureVerified { kind, algorithm, ok });
    }

    /// Reports one credential or presentation verification ([`DomainEvent::CredentialVerified`]):
    /// `OK`, or the reason code of `result`'s error.
    pub fn credential_verified<T>(&self, kind: &'static str, result: &Result<T, ServerError>) {
        let result = match result {
            Ok(_) => "OK",
            Err(e) => e.reason(),
        };
        self.observer.on_domain_event(&DomainEvent::CredentialVerified { kind, result });
    }

    /// Authenticates the call and authorizes `operation` on `resource`.
    pub async fn authorize(
        &self,
        call: &CallInfo,
        operation: &str,
        resource: &str,
    ) -> Result<Principal, ServerError> {
        let principal = self.authenticator.authenticate(call).await?;
        self.authorizer.authorize(&principal, operation, resource).await?;
        Ok(principal)
    }
}

/// The community authenticator: `authorization: Bearer <admin token>` makes the caller
/// [`Principal::Admin`]; no header makes it anonymous; anything else is `AUTH_INVALID`.
pub struct BearerTokenAuthenticator {
    verify: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl BearerTokenAuthenticator {
    /// With a verifier of presented tokens; it must compare in constant time (atp-node passes
    /// `AdminToken::verify`). See also [`BearerTokenAuthenticator::from_sha256`].
    pub fn new(verify: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        BearerTokenAuthenticator { verify: Box::new(verify) }
    }

    /// With the SHA-256 of the token: presented tokens are hashed and compared in constant
    /// time.
    pub fn from_sha256(expected: [u8; 32]) -> Self {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        Self::new(move |presented: &str| {
            let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
            bool::from(h.ct_eq(&expected))
        })
    }
}

impl fmt::Debug for BearerTokenAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerTokenAuthenticator")
    }
}

impl Authenticator for BearerTokenAuthenticator {
    fn authenticate<'a>(
        &'a self,
        call: &'a CallInfo,
    ) -> SeamFuture<'a, Result<Principal, ServerError>> {
        Box::pin(async move {
            match call.bearer()? {
                None => Ok(Principal::Anonymous),
                Some(token) if (self.verify)(token) => Ok(Principal::Admin),
                Some(_) => Err(ServerError::AuthInvalid),
            }
        })
    }
}

/// The community authorizer: the admin may do every operation; an anonymous caller gets
/// `AUTH_REQUIRED` and anyone else `PERMISSION_DENIED`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdminOnlyAuthorizer;

impl Authorizer for AdminOnlyAuthorizer {
    fn authorize_user<'a>(
        &'a self,
        _id: &'a str,
        _roles: &'a [String],
        operation: &'a str,
        _resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        Box::pin(std::future::ready(Err(ServerError::PermissionDenied(format!(
            "{operation} needs the node administrator"
        )))))
    }
}

/// The community observer: one `tracing` event per RPC (DEBUG, WARN for internal errors) and
/// per domain event (INFO).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn on_rpc(&self, e: &RpcEvent<'_>) {
        let ms = u64::try_from(e.elapsed.as_millis()).unwrap_or(u64::MAX);
        if e.outcome == atp_grpc::reasons::INTERNAL {
            tracing::warn!(method = e.method, peer = ?e.peer, outcome = e.outcome, ms, "rpc");
        } else {
            tracing::debug!(method = e.method, peer = ?e.peer, outcome = e.outcome, ms, "rpc");
        }
    }

    fn on_domain_event(&self, e: &DomainEvent<'_>) {
        // One per signature on the request path, and one per scheduled computation: too many
        // for INFO (the computation already logs at DEBUG).
        match e {
            DomainEvent::SignatureVerified { .. } => tracing::trace!(event = ?e, "domain event"),
            DomainEvent::TrustRecomputed { .. } => tracing::debug!(event = ?e, "domain event"),
            _ => tracing::info!(event = ?e, "domain event"),
        }
    }
}

/// The community audit sink: one INFO `tracing` event (target `atp::audit`) per audit event;
/// nothing is stored.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAuditSink;

impl AuditSink for TracingAuditSink {
    fn entry(&self, e: &AuditEvent) -> Result<Option<AuditEntry>, ServerError> {
        let targets: Vec<&str> = e.target.iter().map(|t| t.id.as_str()).collect();
        let reason = e.outcome.reason.as_deref().unwrap_or("");
        let rule = e.rule.as_deref().unwrap_or("");
        // Key events come at the rate agents register; the observer already reports each at
        // INFO, so their audit line is DEBUG.
        if e.code == atp_core::audit::EventCode::KeyEventAccepted.as_str() {
            tracing::debug!(target: "atp::audit", code = %e.code, actor = %e.actor.id,
                targets = ?targets, "audit event");
        } else {
            tracing::info!(target: "atp::audit", code = %e.code, actor = %e.actor.id,
                targets = ?targets, result = %e.outcome.result, reason, rule, time_ms = e.time,
                "audit event");
        }
        Ok(None)
    }
}
