//! DID methods behind one trait, chosen in one place.
//!
//! Every caller that meets a DID (the node's resolution, credential verification and trust
//! anchors, the SDK, the CLI) asks [`method_of`] for its method instead of testing prefixes,
//! so a third method is one more [`DidMethod`] implementation and one more entry in
//! [`METHODS`].
//!
//! Core does no I/O. A method says what it [`Needs`] from outside (nothing for `did:key`, the
//! DID's verified key event log for `did:atp`); the caller fetches that, from its store or its
//! node, and hands it back as [`Material`]. A method that needs a document from the network
//! would add a `Needs` variant, and the callers a way to fetch it; no caller would test a
//! method name.

use atp_crypto::PublicKey;

use super::{DidDocument, ResolutionResult, did_document, invalid_did, validate_did};
use crate::CoreError;
use crate::error::ProofErrorKind;
use crate::kel::KelState;

/// What resolving a DID of a method needs from outside atp-core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: the DID carries its key (`did:key`).
    Nothing,
    /// The DID's key event log, verified by the caller ([`crate::kel::KeyEventLog`]).
    KeyEventLog,
}

/// What the caller fetched for a method, as its [`Needs`] asked.
#[derive(Clone, Copy, Debug)]
pub enum Material<'a> {
    /// Nothing was fetched (the method needs nothing, or the DID is unknown to the caller).
    Nothing,
    /// The verified state of the DID's key event log.
    VerifiedLog(&'a KelState),
}

/// The verification relationship a proof's verification method must be listed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relationship {
    /// `assertionMethod` (credentials).
    Assertion,
    /// `authentication` (presentations).
    Authentication,
}

/// A DID method ATP supports.
pub trait DidMethod: Sync {
    /// The method name, as in `did:<name>:`.
    fn name(&self) -> &'static str;

    /// Checks the method-specific part of `did` (the DID syntax is already checked).
    fn check(&self, did: &str) -> Result<(), CoreError>;

    /// What resolution needs from outside atp-core.
    fn needs(&self) -> Needs;

    /// Whether a key of this method is a composite pair, whose two Data Integrity proofs are
    /// its two components: one proof alone is then a downgrade under every policy.
    fn composite_keys(&self) -> bool;

    /// The DID document of `did` (not a DID URL), from what the caller fetched.
    fn document(&self, did: &str, material: Material<'_>) -> Result<DidDocument, CoreError>;

    /// The resolution result of the latest version of `did`.
    fn resolve(&self, did: &str, material: Material<'_>) -> Result<ResolutionResult, CoreError>;

    /// The public key of the verification method `vm` (a DID URL of this method), which must
    /// be listed under every relationship in `relationships`. Refusals are
    /// `CRYPTOGRAPHIC_SECURITY_ERROR` with [`ProofErrorKind::VerificationMethod`].
    fn verification_key(
        &self,
        vm: &str,
        relationships: &[Relationship],
        material: Material<'_>,
    ) -> Result<PublicKey, CoreError>;
}

/// The methods ATP supports: the one place a method is added.
pub static METHODS: &[&dyn DidMethod] = &[&DidAtp, &DidKey];

/// The method of `did` (a DID or a DID URL), when ATP supports it; no other check.
pub fn lookup(did: &str) -> Option<&'static dyn DidMethod> {
    let name = did.strip_prefix("did:")?.split(':').next()?;
    METHODS.iter().copied().find(|m| m.name() == name)
}

/// The method of `did`, after checking the DID's syntax and its method-specific part: the one
/// place where a DID's method is chosen. A well-formed DID of another method is
/// `DID_METHOD_NOT_SUPPORTED`.
pub fn method_of(did: &str) -> Result<&'static dyn DidMethod, CoreError> {
    validate_did(did)?;
    let method = lookup(did).ok_or_else(|| {
        // The method name is the caller's text: quote at most 64 characters of it.
        let name: String = did.split(':').nth(1).unwrap_or_default().chars().take(64).collect();
        CoreError::DidMethodNotSupported(name)
    })?;
    method.check(did)?;
    Ok(method)
}

fn vm_error(reason: impl Into<String>) -> CoreError {
    CoreError::VcCryptographicSecurity {
        kind: ProofErrorKind::VerificationMethod,
        reason: reason.into(),
        proof_index: None,
    }
}

/// `did:atp`: a key event log behind a self-certifying identifier.
#[derive(Clone, Copy, Debug)]
pub struct DidAtp;

impl DidAtp {
    fn state<'a>(did: &str, material: Material<'a>) -> Result<&'a KelState, CoreError> {
        match material {
            Material::VerifiedLog(state) if state.did == did => Ok(state),
            Material::VerifiedLog(state) => Err(invalid_did(
                did,
                format_args!("the key event log handed in is that of {}", state.did),
            )),
            Material::Nothing => Err(invalid_did(did, "a did:atp needs its key event log")),
        }
    }
}

impl DidMethod for DidAtp {
    fn name(&self) -> &'static str {
        "atp"
    }

    fn check(&self, did: &str) -> Result<(), CoreError> {
        super::parse_did_atp(did).map(|_| ())
    }

    fn needs(&self) -> Needs {
        Needs::KeyEventLog
    }

    fn composite_keys(&self) -> bool {
        true
    }

    fn document(&self, did: &str, material: Material<'_>) -> Result<DidDocument, CoreError> {
        did_document(Self::state(did, material)?)
    }

    fn resolve(&self, did: &str, material: Material<'_>) -> Result<ResolutionResult, CoreError> {
        super::resolve_latest_verified(Self::state(did, material)?)
    }

    fn verification_key(
        &self,
        vm: &str,
        _relationships: &[Relationship],
        material: Material<'_>,
    ) -> Result<PublicKey, CoreError> {
        let controller = crate::data_integrity::controller_of(vm);
        let state = match material {
            Material::Nothing => {
                return Err(vm_error(format!("{controller} is not known to this verifier")));
            }
            Material::VerifiedLog(state) => state,
        };
        if state.did != controller {
            return Err(vm_error(format!("{vm} is not a verification method of {}", state.did)));
        }
        // Read off the state rather than encoding the document and decoding its Multikeys:
        // `did_document` lists both components under every relationship this enum names, so
        // the relationships never narrow a did:atp key (the test holds the two to agreement).
        let components = if state.deactivated { None } else { state.current_key.components() };
        let (mldsa, ed) = components
            .ok_or_else(|| vm_error(format!("{} has no verification methods", state.did)))?;
        match vm.strip_prefix(controller).and_then(|rest| rest.strip_prefix('#')) {
            Some("ed25519") => Ok(ed),
            Some(fragment) if fragment == super::mldsa_fragment(state) => Ok(mldsa),
            _ => Err(vm_error(format!("{vm} is not a verification method of {}", state.did))),
        }
    }
}

/// `did:key`: the DID is its public key.
#[derive(Clone, Copy, Debug)]
pub struct DidKey;

impl DidMethod for DidKey {
    fn name(&self) -> &'static str {
        "key"
    }

    fn check(&self, did: &str) -> Result<(), CoreError> {
        crate::did_key::parse_did_key(did).map(|_| ())
    }

    fn needs(&self) -> Needs {
        Needs::Nothing
    }

    fn composite_keys(&self) -> bool {
        false
    }

    fn document(&self, did: &str, _material: Material<'_>) -> Result<DidDocument, CoreError> {
        crate::did_key::resolve_did_key(did)
    }

    fn resolve(&self, did: &str, _material: Material<'_>) -> Result<ResolutionResult, CoreError> {
        crate::did_key::resolve_did_key_result(did)
    }

    fn verification_key(
        &self,
        vm: &str,
        _relationships: &[Relationship],
        _material: Material<'_>,
    ) -> Result<PublicKey, CoreError> {
        // A did:key document lists its one key under every relationship.
        crate::data_integrity::resolve_did_key(vm)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kel::KeyEventLog;
    use atp_crypto::{AlgorithmId, SigningKey};

    fn did_atp_state() -> KelState {
        let generate = || SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let (key, next) = (generate(), generate());
        let inception =
            crate::kel::incept(&key, &next.public_key(), Vec::new(), "2026-01-01T00:00:00Z")
                .unwrap();
        KeyEventLog::default().verify(&[inception]).unwrap()
    }

    #[test]
    fn the_method_is_chosen_by_name_after_the_syntax_and_its_own_checks() {
        let state = did_atp_state();
        assert_eq!(method_of(&state.did).unwrap().name(), "atp");
        let ed = SigningKey::generate(AlgorithmId::Ed25519).unwrap();
        let key_did = crate::did_key::did_key_from_public_key(&ed.public_key()).unwrap();
        assert_eq!(method_of(&key_did).unwrap().name(), "key");
        let code = |did: &str| method_of(did).err().map(|e| e.code());
        assert_eq!(code("did:web:example.com"), Some("DID_METHOD_NOT_SUPPORTED"));
        assert_eq!(code("did:atp:notamultihash"), Some("DID_INVALID"));
        assert_eq!(code("did:key:zNotAKey"), Some("DID_INVALID"));
        assert_eq!(code("did:ATP:x"), Some("DID_INVALID"));
        assert_eq!(code("not a did"), Some("DID_INVALID"));
        // `lookup` only reads the name: a DID URL finds its method.
        assert_eq!(lookup(&format!("{}#ed25519", state.did)).unwrap().name(), "atp");
        assert!(lookup("did:web:example.com").is_none());
    }

    #[test]
    fn did_atp_resolves_from_its_own_verified_log_only() {
        let state = did_atp_state();
        let atp = method_of(&state.did).unwrap();
        assert_eq!(atp.needs(), Needs::KeyEventLog);
        assert!(atp.composite_keys());
        let resolved = atp.resolve(&state.did, Material::VerifiedLog(&state)).unwrap();
        assert_eq!(resolved, crate::did::resolve_latest_verified(&state).unwrap());
        assert_eq!(atp.resolve(&state.did, Material::Nothing).unwrap_err().code(), "DID_INVALID");
        let other = did_atp_state();
        let err = atp.document(&state.did, Material::VerifiedLog(&other)).unwrap_err();
        assert_eq!(err.code(), "DID_INVALID");

        let (mldsa, ed) = state.current_key.components().unwrap();
        let both = [Relationship::Assertion, Relationship::Authentication];
        let vm = format!("{}#ed25519", state.did);
        assert_eq!(atp.verification_key(&vm, &both, Material::VerifiedLog(&state)).unwrap(), ed);
        let vm = format!("{}#mldsa65", state.did);
        assert_eq!(atp.verification_key(&vm, &both, Material::VerifiedLog(&state)).unwrap(), mldsa);
        let refused = |vm: &str, material| {
            let e = atp.verification_key(vm, &both, material).unwrap_err();
            assert_eq!(e.code(), "CRYPTOGRAPHIC_SECURITY_ERROR", "{vm}: {e}");
        };
        // The key read off the state is the document's, under every relationship it lists.
        let doc = atp.document(&state.did, Material::VerifiedLog(&state)).unwrap();
        for method in &doc.verification_method {
            for (relationship, listed) in [
                (Relationship::Assertion, &doc.assertion_method),
                (Relationship::Authentication, &doc.authentication),
            ] {
                assert!(listed.contains(&method.id));
                let got = atp.verification_key(
                    &method.id,
                    &[relationship],
                    Material::VerifiedLog(&state),
                );
                assert_eq!(
                    got.unwrap(),
                    PublicKey::from_multikey(&method.public_key_multibase).unwrap()
                );
            }
        }
        refused(&format!("{}#mldsa44", state.did), Material::VerifiedLog(&state));
        refused(&format!("{}#ed25519", other.did), Material::VerifiedLog(&state));
        refused(&format!("{}#ed25519", state.did), Material::Nothing);
    }

    #[test]
    fn did_key_needs_nothing_and_lists_its_key_everywhere() {
        let ed = SigningKey::generate(AlgorithmId::Ed25519).unwrap();
        let did = crate::did_key::did_key_from_public_key(&ed.public_key()).unwrap();
        let key = method_of(&did).unwrap();
        assert_eq!(key.needs(), Needs::Nothing);
        assert!(!key.composite_keys());
        let doc = key.document(&did, Material::Nothing).unwrap();
        let vm = doc.verification_method[0].id.clone();
        for relationship in [Relationship::Assertion, Relationship::Authentication] {
            let got = key.verification_key(&vm, &[relationship], Material::Nothing).unwrap();
            assert_eq!(got, ed.public_key());
        }
        assert_eq!(key.resolve(&did, Material::Nothing).unwrap().did_document, doc);
    }
}
