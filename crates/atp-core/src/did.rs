//! DIDs and DID documents (W3C DID Core 1.0): syntax checks, `did:atp` resolution from a key
//! event log ([`crate::kel`]), and the document and metadata types shared with `did:key`
//! ([`crate::did_key`]).
//!
//! A `did:atp` document has two Multikey verification methods, `#mldsa65` (or `#mldsa44`) and
//! `#ed25519`, the components of the DID's current composite key. Both are listed under
//! `authentication` and `assertionMethod`: a relying party that follows the quantum-safe
//! policy requires proofs from both. A deactivated DID resolves to a document with only
//! `@context` and `id`, and `deactivated: true` in the metadata.

use serde::{Deserialize, Serialize};

pub mod method;

use crate::CoreError;
use crate::kel::{DID_ATP_PREFIX, KelState, KeyEventLog, SignedEvent, is_sha256_multihash_b58};

/// The first `@context` entry of every DID document.
pub const DID_CONTEXT_V1: &str = "https://www.w3.org/ns/did/v1";

/// The `@context` that defines the `Multikey` verification method type.
pub const MULTIKEY_CONTEXT_V1: &str = "https://w3id.org/security/multikey/v1";

/// The `@context` of a DID resolution result.
pub const DID_RESOLUTION_CONTEXT: &str = "https://w3id.org/did-resolution/v1";

/// The media type of a resolved DID document.
pub const DID_LD_JSON: &str = "application/did+ld+json";

/// The longest DID accepted by [`validate_did`].
pub const MAX_DID_LEN: usize = 4096;

/// A `Multikey` verification method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationMethod {
    /// The method's DID URL, e.g. `did:atp:z…#ed25519`.
    pub id: String,
    /// Always `Multikey`.
    #[serde(rename = "type")]
    pub method_type: String,
    /// The controlling DID.
    pub controller: String,
    /// The public key as a Multikey string.
    pub public_key_multibase: String,
}

/// A service entry of a DID document (the `id` is an absolute DID URL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DidService {
    /// The service's DID URL, e.g. `did:atp:z…#agent`.
    pub id: String,
    /// The service type.
    #[serde(rename = "type")]
    pub service_type: String,
    /// The endpoint URI.
    pub service_endpoint: String,
}

/// A DID document (the subset of DID Core 1.0 that ATP produces).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DidDocument {
    /// `["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]`.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The DID.
    pub id: String,
    /// The verification methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    /// Methods for authentication (ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<String>,
    /// Methods for assertions such as credentials (ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_method: Vec<String>,
    /// Methods for capability invocation (ids); used by `did:key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<String>,
    /// Methods for capability delegation (ids); used by `did:key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<String>,
    /// Services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<DidService>,
}

impl DidDocument {
    /// A document with only `@context` and `id` (what a deactivated DID resolves to).
    pub fn minimal(did: &str) -> Self {
        DidDocument {
            context: vec![DID_CONTEXT_V1.to_owned(), MULTIKEY_CONTEXT_V1.to_owned()],
            id: did.to_owned(),
            verification_method: Vec::new(),
            authentication: Vec::new(),
            assertion_method: Vec::new(),
            capability_invocation: Vec::new(),
            capability_delegation: Vec::new(),
            service: Vec::new(),
        }
    }

    /// The verification method with this id (absolute DID URL or `#fragment`).
    pub fn verification_method(&self, id: &str) -> Option<&VerificationMethod> {
        let abs;
        let id = if id.starts_with('#') {
            abs = format!("{}{id}", self.id);
            abs.as_str()
        } else {
            id
        };
        self.verification_method.iter().find(|vm| vm.id == id)
    }

    /// The document as JSON.
    pub fn to_json_value(&self) -> Result<serde_json::Value, CoreError> {
        Ok(serde_json::to_value(self)?)
    }
}

/// DID document metadata (DID Core §7.1.3), with ATP's `nextKeyCommitment`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DidDocumentMetadata {
    /// The `ts` of the inception event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The `ts` of the event this document reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// The sequence number of the event this document reflects, as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When an older version was resolved: the next version's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_version_id: Option<String>,
    /// When an older version was resolved: the next version's `ts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
    /// Whether the DID is deactivated *now* (even when an older version was resolved).
    pub deactivated: bool,
    /// The commitment to the next key at this version (`did:atp`; absent once deactivated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_key_commitment: Option<String>,
}

/// DID resolution metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DidResolutionMetadata {
    /// The media type of the document, `application/did+ld+json`.
    pub content_type: String,
}

/// A DID resolution result in the DIF universal-resolver shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolutionResult {
    /// `https://w3id.org/did-resolution/v1`.
    #[serde(rename = "@context")]
    pub context: String,
    /// The document.
    pub did_document: DidDocument,
    /// Resolution metadata.
    pub did_resolution_metadata: DidResolutionMetadata,
    /// Document metadata.
    pub did_document_metadata: DidDocumentMetadata,
}

impl ResolutionResult {
    /// A result for `doc` with the given document metadata.
    pub fn new(did_document: DidDocument, did_document_metadata: DidDocumentMetadata) -> Self {
        ResolutionResult {
            context: DID_RESOLUTION_CONTEXT.to_owned(),
            did_document,
            did_resolution_metadata: DidResolutionMetadata { content_type: DID_LD_JSON.to_owned() },
            did_document_metadata,
        }
    }
}

/// A `DidInvalid` error that says why and quotes (the start of) the offending text.
pub(crate) fn invalid_did(did: &str, why: impl std::fmt::Display) -> CoreError {
    CoreError::DidInvalid(format!("{why}: {:?}", did.chars().take(80).collect::<String>()))
}

/// The error for a DID without the expected method prefix: `DidMethodNotSupported` when it is
/// a well-formed DID of another method, `DidInvalid` otherwise.
pub(crate) fn other_method(did: &str, expected: &str) -> CoreError {
    if validate_did(did).is_ok() {
        CoreError::DidMethodNotSupported(did.chars().take(80).collect())
    } else {
        invalid_did(did, format_args!("not a {expected} DID"))
    }
}

/// Check DID syntax (DID Core §3.1): `did:` method-name `:` method-specific-id, where the
/// method name is `[a-z0-9]+` and the id is `idchar`s (`[A-Za-z0-9._-]` or `%XX`) separated by
/// `:`, not ending in `:`. No path, query or fragment. At most [`MAX_DID_LEN`] bytes.
pub fn validate_did(did: &str) -> Result<(), CoreError> {
    let bad = |why: &str| invalid_did(did, why);
    if did.len() > MAX_DID_LEN {
        return Err(bad("too long"));
    }
    let rest = did.strip_prefix("did:").ok_or_else(|| bad("does not start with \"did:\""))?;
    let (method, id) = rest.split_once(':').ok_or_else(|| bad("no method-specific id"))?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Err(bad("bad method name"));
    }
    if id.is_empty() || id.ends_with(':') {
        return Err(bad("bad method-specific id"));
    }
    let b = id.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':') => i += 1,
            b'%' if b.len() > i + 2
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                i += 3;
            }
            _ => return Err(bad("bad character in method-specific id")),
        }
    }
    Ok(())
}

/// Parse a `did:atp` DID and return its scid (a base58btc SHA-256 multihash).
pub fn parse_did_atp(did: &str) -> Result<&str, CoreError> {
    let scid = did.strip_prefix(DID_ATP_PREFIX).ok_or_else(|| other_method(did, "did:atp"))?;
    if !is_sha256_multihash_b58(scid) {
        return Err(invalid_did(scid, "did:atp scid is not a base58btc SHA-256 multihash"));
    }
    Ok(scid)
}

/// The id fragment of the ML-DSA verification method for a composite key state.
fn mldsa_fragment(state: &KelState) -> &'static str {
    match state.current_key.algorithm() {
        atp_crypto::AlgorithmId::MlDsa44Ed25519 => "mldsa44",
        _ => "mldsa65",
    }
}

/// The DID document of a verified state. A deactivated state gives the minimal document.
pub fn did_document(state: &KelState) -> Result<DidDocument, CoreError> {
    let did = &state.did;
    let mut doc = DidDocument::minimal(did);
    if state.deactivated {
        return Ok(doc);
    }
    let (mldsa, ed) = state.current_key.components().ok_or(CoreError::KelAlgorithmNotAllowed {
        index: usize::try_from(state.key_sequence).unwrap_or(usize::MAX),
        algorithm: state.current_key.algorithm().name().to_owned(),
    })?;
    let vm = |frag: &str, key: &atp_crypto::PublicKey| -> Result<VerificationMethod, CoreError> {
        Ok(VerificationMethod {
            id: format!("{did}#{frag}"),
            method_type: "Multikey".to_owned(),
            controller: did.clone(),
            public_key_multibase: key.to_multikey()?,
        })
    };
    doc.verification_method = vec![vm(mldsa_fragment(state), &mldsa)?, vm("ed25519", &ed)?];
    let ids: Vec<String> = doc.verification_method.iter().map(|v| v.id.clone()).collect();
    doc.authentication = ids.clone();
    doc.assertion_method = ids;
    doc.service = state
        .services
        .iter()
        .map(|s| DidService {
            id: format!("{did}{}", s.id),
            service_type: s.service_type.clone(),
            service_endpoint: s.service_endpoint.clone(),
        })
        .collect();
    Ok(doc)
}

fn metadata(state: &KelState, latest: &KelState) -> DidDocumentMetadata {
    DidDocumentMetadata {
        created: Some(state.created.clone()),
        updated: Some(state.updated.clone()),
        version_id: Some(state.sequence.to_string()),
        next_version_id: None,
        next_update: None,
        deactivated: latest.deactivated,
        next_key_commitment: state.next_commitment.clone(),
    }
}

/// Resolve a `did:atp` DID from its key event log, fully offline, with the default policy.
///
/// The whole log is verified and must be the log of `did`. With `version = Some(s)` the
/// document reflects the state after event `s` (`versionId` = `s`, plus `nextVersionId` and
/// `nextUpdate` when later events exist); `deactivated` always reports the DID's current state.
pub fn resolve_did_atp(
    did: &str,
    events: &[SignedEvent],
    version: Option<u64>,
) -> Result<ResolutionResult, CoreError> {
    resolve_did_atp_with(&KeyEventLog::default(), did, events, version)
}

/// The resolution result of the latest version from a KEL state that the caller has already
/// verified (for example from a cache of verified logs). No signature is checked here.
pub fn resolve_latest_verified(latest: &KelState) -> Result<ResolutionResult, CoreError> {
    Ok(ResolutionResult::new(did_document(latest)?, metadata(latest, latest)))
}

/// As [`resolve_did_atp`], with a chosen verifier.
pub fn resolve_did_atp_with(
    verifier: &KeyEventLog,
    did: &str,
    events: &[SignedEvent],
    version: Option<u64>,
) -> Result<ResolutionResult, CoreError> {
    parse_did_atp(did)?;
    let (at, latest) = match version {
        None => {
            let latest = verifier.verify_did(did, events)?;
            (latest.clone(), latest)
        }
        Some(v) => {
            let (at, latest) = verifier.verify_at(events, v)?;
            crate::kel::check_did(did, &latest)?;
            (at, latest)
        }
    };
    let mut meta = metadata(&at, &latest);
    if at.sequence < latest.sequence {
        let next = usize::try_from(at.sequence + 1)
            .ok()
            .and_then(|i| events.get(i))
            .map(|e| e.event.ts.clone());
        meta.next_version_id = Some((at.sequence + 1).to_string());
        meta.next_update = next;
    }
    Ok(ResolutionResult::new(did_document(&at)?, meta))
}
