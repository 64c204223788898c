use std::collections::HashMap;

use super::CoreError;
use super::ProofErrorKind;
use atp_crypto::CryptoError;

/// One value of every variant. The match below fails to compile when a variant is added
/// and not listed here.
fn every_variant() -> Vec<CoreError> {
    let s = || String::from("x");
    let v = vec![
        CoreError::Json(s()),
        CoreError::JcsTooDeep { max: 1 },
        CoreError::JcsSerialize(s()),
        CoreError::DidInvalid(s()),
        CoreError::DidMethodNotSupported(s()),
        CoreError::DidKeyUnsupportedKeyType(s()),
        CoreError::DidVersionNotFound { version: 1, latest: 0 },
        CoreError::KelMalformed { index: 0, reason: s() },
        CoreError::KelBadSequence { index: 0, expected: 0, found: 1 },
        CoreError::KelBrokenHashLink { index: 0, expected: s(), found: s() },
        CoreError::KelBadSignature { index: 0, reason: s() },
        CoreError::KelRotationNotCommitted { index: 0 },
        CoreError::KelEventAfterDeactivation { index: 0 },
        CoreError::KelFork { sequence: 0, existing_digest: s(), incoming_digest: s() },
        CoreError::KelDidMismatch { index: 0, expected: s(), found: s() },
        CoreError::KelLimit { what: "x", limit: 0, actual: 1 },
        CoreError::KelAlgorithmNotAllowed { index: 0, algorithm: s() },
        CoreError::KelTimestampRegression { index: 0, previous: s(), found: s() },
        CoreError::KelTimestampInFuture { found: s(), latest: s() },
        CoreError::VcParsing(s()),
        CoreError::VcMalformedValue { property: s(), reason: s() },
        CoreError::VcRange { property: s(), reason: s() },
        CoreError::VcCryptographicSecurity {
            kind: ProofErrorKind::SignatureInvalid,
            reason: s(),
            proof_index: Some(0),
        },
        CoreError::ProofGeneration(s()),
        CoreError::StatusListStatusSize { status_size: 0 },
        CoreError::StatusListLength { entries: 0, min: 1 },
        CoreError::StatusListTooLarge { max_bytes: 0 },
        CoreError::StatusListIndexOutOfRange { index: 1, entries: 0 },
        CoreError::StatusListValueOutOfRange { value: 2, status_size: 1 },
        CoreError::StatusListEncoding("x"),
        CoreError::StatusListPurpose(s()),
        CoreError::StatusListEntry(s()),
        CoreError::StatusListCredential(s()),
        CoreError::StatusListPurposeMismatch { purpose: "x" },
        CoreError::StatusUpdateMalformed(s()),
        CoreError::StatusUpdateBadSignature(s()),
        CoreError::EnvelopeMalformed(s()),
        CoreError::EnvelopeTooLarge { what: "x", limit: 0, actual: 1 },
        CoreError::EnvelopeLifetimeTooLong { lifetime_ms: 1, max_ms: 0 },
        CoreError::EnvelopeNotYetValid { issued_at: 1, now: 0 },
        CoreError::EnvelopeExpired { expires_at: 0, now: 1 },
        CoreError::EnvelopeNotForMe,
        CoreError::EnvelopeUnknownSender { did: s(), seq: 0 },
        CoreError::EnvelopeAlgorithmNotAllowed("x"),
        CoreError::EnvelopeKeyNotValidAtIssue { issued_at: 0, valid_from: 1, valid_until: None },
        CoreError::EnvelopeBadSignature(s()),
        CoreError::EnvelopeReplay,
        CoreError::EnvelopeReplayCacheFull,
        CoreError::TlogIndexOutOfRange { index: 1, tree_size: 0 },
        CoreError::TlogInclusionProofLength { expected: 0, actual: 1 },
        CoreError::TlogInclusionRootMismatch,
        CoreError::TlogConsistencySizeOrder { old_size: 1, new_size: 0 },
        CoreError::TlogConsistencyProofLength { expected: 0, actual: 1 },
        CoreError::TlogConsistencyOldRootMismatch,
        CoreError::TlogConsistencyNewRootMismatch,
        CoreError::TlogAccumulatorShape { size: 1, peaks: 0 },
        CoreError::CheckpointTooLarge { max: 0 },
        CoreError::CheckpointMalformed("x"),
        CoreError::CheckpointOrigin("x"),
        CoreError::CheckpointTreeSize,
        CoreError::CheckpointRootHash,
        CoreError::CheckpointExtension,
        CoreError::CheckpointSignatureLine("x"),
        CoreError::CheckpointTooManySignatures { max: 0 },
        CoreError::CheckpointKeyName,
        CoreError::CheckpointKeyAlgorithm { algorithm: "x" },
        CoreError::CheckpointVerifierKey("x"),
        CoreError::CheckpointSignatureMissing { algorithm: "x" },
        CoreError::CheckpointSignatureInvalid { algorithm: "x" },
        CoreError::LogEvidence(s()),
        CoreError::WitnessRequestMalformed("x"),
        CoreError::WitnessOldSize { latest: 0 },
        CoreError::WitnessInconsistent("x"),
        CoreError::WitnessPolicyInvalid(s()),
        CoreError::WitnessQuorum { valid: 0, quorum: 1 },
        CoreError::EvidenceMalformed(s()),
        CoreError::EvidenceTooLarge { what: "x", limit: 0, actual: 1 },
        CoreError::EvidenceSelf(s()),
        CoreError::EvidenceNotYetValid { created_ms: 1, now_ms: 0 },
        CoreError::EvidenceUnknownSigner { did: s(), seq: 0 },
        CoreError::EvidenceAlgorithmNotAllowed("x"),
        CoreError::EvidenceKeyNotValidAtCreation { role: "issuer", created_ms: 0 },
        CoreError::EvidenceBadSignature { role: "issuer", reason: s() },
        CoreError::TrustProofInvalid(s()),
        CoreError::TrustProofIssuerMismatch { expected: s(), found: s() },
        CoreError::TrustSnapshotInvalid(s()),
        CoreError::AuditEventInvalid(s()),
    ];
    for e in &v {
        match e {
            CoreError::Crypto(_)
            | CoreError::Json(_)
            | CoreError::JcsTooDeep { .. }
            | CoreError::JcsSerialize(_)
            | CoreError::DidInvalid(_)
            | CoreError::DidMethodNotSupported(_)
            | CoreError::DidKeyUnsupportedKeyType(_)
            | CoreError::DidVersionNotFound { .. }
            | CoreError::KelMalformed { .. }
            | CoreError::KelBadSequence { .. }
            | CoreError::KelBrokenHashLink { .. }
            | CoreError::KelBadSignature { .. }
            | CoreError::KelRotationNotCommitted { .. }
            | CoreError::KelEventAfterDeactivation { .. }
            | CoreError::KelFork { .. }
            | CoreError::KelDidMismatch { .. }
            | CoreError::KelLimit { .. }
            | CoreError::KelAlgorithmNotAllowed { .. }
            | CoreError::KelTimestampRegression { .. }
            | CoreError::KelTimestampInFuture { .. }
            | CoreError::VcParsing(_)
            | CoreError::VcMalformedValue { .. }
            | CoreError::VcRange { .. }
            | CoreError::VcCryptographicSecurity { .. }
            | CoreError::ProofGeneration(_)
            | CoreError::StatusListStatusSize { .. }
            | CoreError::StatusListLength { .. }
            | CoreError::StatusListTooLarge { .. }
            | CoreError::StatusListIndexOutOfRange { .. }
            | CoreError::StatusListValueOutOfRange { .. }
            | CoreError::StatusListEncoding(_)
            | CoreError::StatusListPurpose(_)
            | CoreError::StatusListEntry(_)
            | CoreError::StatusListCredential(_)
            | CoreError::StatusListPurposeMismatch { .. }
            | CoreError::StatusUpdateMalformed(_)
            | CoreError::StatusUpdateBadSignature(_)
            | CoreError::EnvelopeMalformed(_)
            | CoreError::EnvelopeTooLarge { .. }
            | CoreError::EnvelopeLifetimeTooLong { .. }
            | CoreError::EnvelopeNotYetValid { .. }
            | CoreError::EnvelopeExpired { .. }
            | CoreError::EnvelopeNotForMe
            | CoreError::EnvelopeUnknownSender { .. }
            | CoreError::EnvelopeAlgorithmNotAllowed(_)
            | CoreError::EnvelopeKeyNotValidAtIssue { .. }
            | CoreError::EnvelopeBadSignature(_)
            | CoreError::EnvelopeReplay
            | CoreError::EnvelopeReplayCacheFull
            | CoreError::TlogIndexOutOfRange { .. }
            | CoreError::TlogInclusionProofLength { .. }
            | CoreError::TlogInclusionRootMismatch
            | CoreError::TlogConsistencySizeOrder { .. }
            | CoreError::TlogConsistencyProofLength { .. }
            | CoreError::TlogConsistencyOldRootMismatch
            | CoreError::TlogConsistencyNewRootMismatch
            | CoreError::TlogAccumulatorShape { .. }
            | CoreError::CheckpointTooLarge { .. }
            | CoreError::CheckpointMalformed(_)
            | CoreError::CheckpointOrigin(_)
            | CoreError::CheckpointTreeSize
            | CoreError::CheckpointRootHash
            | CoreError::CheckpointExtension
            | CoreError::CheckpointSignatureLine(_)
            | CoreError::CheckpointTooManySignatures { .. }
            | CoreError::CheckpointKeyName
            | CoreError::CheckpointKeyAlgorithm { .. }
            | CoreError::CheckpointVerifierKey(_)
            | CoreError::CheckpointSignatureMissing { .. }
            | CoreError::CheckpointSignatureInvalid { .. }
            | CoreError::LogEvidence(_)
            | CoreError::WitnessRequestMalformed(_)
            | CoreError::WitnessOldSize { .. }
            | CoreError::WitnessInconsistent(_)
            | CoreError::WitnessPolicyInvalid(_)
            | CoreError::WitnessQuorum { .. }
            | CoreError::EvidenceMalformed(_)
            | CoreError::EvidenceTooLarge { .. }
            | CoreError::EvidenceSelf(_)
            | CoreError::EvidenceNotYetValid { .. }
            | CoreError::EvidenceUnknownSigner { .. }
            | CoreError::EvidenceAlgorithmNotAllowed(_)
            | CoreError::EvidenceKeyNotValidAtCreation { .. }
            | CoreError::EvidenceBadSignature { .. }
            | CoreError::TrustProofInvalid(_)
            | CoreError::TrustProofIssuerMismatch { .. }
            | CoreError::TrustSnapshotInvalid(_)
            | CoreError::AuditEventInvalid(_) => {}
        }
    }
    v
}

#[test]
fn every_variant_has_its_own_stable_code() {
    let mut seen: HashMap<&str, String> = HashMap::new();
    for e in every_variant() {
        let code = e.code();
        assert!(
            !code.is_empty()
                && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{code:?} is not UPPER_SNAKE_CASE"
        );
        if let Some(other) = seen.insert(code, format!("{e:?}")) {
            panic!("{code} is shared by {other} and {e:?}");
        }
    }
    // Codes passed through from atp-crypto never collide with atp-core's own.
    let crypto = [
        CryptoError::InvalidSignature { algorithm: "x" },
        CryptoError::CompositeComponentInvalid { algorithm: "x", component: "x" },
        CryptoError::SignatureLength { algorithm: "x", expected: 0, actual: 1 },
        CryptoError::InvalidKey { algorithm: "x", reason: String::new() },
        CryptoError::ContextTooLong(256),
        CryptoError::ContextUnsupported("x"),
        CryptoError::AlgorithmNotAllowed("x"),
        CryptoError::UnknownAlgorithm(String::new()),
        CryptoError::Multikey(String::new()),
        CryptoError::KeyFile(String::new()),
        CryptoError::KeyFileDecrypt,
        CryptoError::Rng(String::new()),
        CryptoError::BatchFailed { failed: vec![] },
    ];
    for c in crypto {
        let e = CoreError::from(c);
        assert!(!seen.contains_key(e.code()), "{} is also an atp-core code", e.code());
    }
}
