//! The single error type of `atp-core`.
//!
//! Every variant has a stable machine-readable code (see [`CoreError::code`]); network layers map
//! these codes to `INVALID_ARGUMENT` reasons and HTTP problem details.

/// Errors from the protocol rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] atp_crypto::CryptoError),
    /// JSON could not be parsed or serialised.
    #[error("malformed JSON: {0}")]
    Json(String),
    // --- section: jcs ---
    /// A JSON value nests deeper than the canonicalisation limit ([`crate::jcs::MAX_DEPTH`]).
    #[error("JSON nests deeper than {max} levels")]
    JcsTooDeep {
        /// The limit.
        max: usize,
    },
    /// A value has no RFC 8785 canonical form (a non-finite number, a non-string map key).
    #[error("cannot canonicalise (RFC 8785): {0}")]
    JcsSerialize(String),
    // --- end: jcs ---
    // --- section: did/kel ---
    /// A string is not a syntactically valid DID (or `did:key` DID URL).
    #[error("invalid DID: {0}")]
    DidInvalid(String),
    /// The DID method is not supported by this operation.
    #[error("DID method not supported: {0}")]
    DidMethodNotSupported(String),
    /// A `did:key` names a key type (multicodec) that ATP does not support.
    #[error("did:key key type not supported: {0}")]
    DidKeyUnsupportedKeyType(String),
    /// A DID version was asked for that the log does not contain.
    #[error("DID version {version} not found (latest is {latest})")]
    DidVersionNotFound {
        /// The version asked for.
        version: u64,
        /// The latest version.
        latest: u64,
    },
    /// A KEL event is structurally invalid.
    #[error("KEL event {index} is malformed: {reason}")]
    KelMalformed {
        /// Position of the event in the log.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A KEL event has the wrong sequence number.
    #[error("KEL event {index}: expected sequence number {expected}, found {found}")]
    KelBadSequence {
        /// Position of the event in the log.
        index: usize,
        /// The sequence number required.
        expected: u64,
        /// The sequence number given.
        found: u64,
    },
    /// A KEL event's `p` is not the digest of the event before it.
    #[error("KEL event {index}: previous-event digest {found} does not match {expected}")]
    KelBrokenHashLink {
        /// Position of the event in the log.
        index: usize,
        /// The digest of the previous event.
        expected: String,
        /// The digest named.
        found: String,
    },
    /// A KEL event's signature does not verify under its key.
    #[error("KEL event {index}: bad signature: {reason}")]
    KelBadSignature {
        /// Position of the event in the log.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A rotation or deactivation reveals a key other than the committed next key.
    #[error("KEL event {index}: key is not the one committed to by the previous event")]
    KelRotationNotCommitted {
        /// Position of the event in the log.
        index: usize,
    },
    /// An event follows a deactivation, which is final.
    #[error("KEL event {index} follows the deactivation")]
    KelEventAfterDeactivation {
        /// Position of the event in the log.
        index: usize,
    },
    /// A validly signed event conflicts with a verified log (duplicity).
    #[error("KEL fork at {sequence}: existing {existing_digest}, conflicting {incoming_digest}")]
    KelFork {
        /// The contested sequence number.
        sequence: u64,
        /// Digest of the event in the verified log.
        existing_digest: String,
        /// Digest of the conflicting event.
        incoming_digest: String,
    },
    /// A KEL event (or a whole log) belongs to another DID.
    #[error("KEL event {index}: DID {found} does not match {expected}")]
    KelDidMismatch {
        /// Position of the event in the log.
        index: usize,
        /// The DID expected.
        expected: String,
        /// The DID found.
        found: String,
    },
    /// A KEL limit was exceeded.
    #[error("KEL limit exceeded: {actual} {what} (limit {limit})")]
    KelLimit {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The count.
        actual: usize,
    },
    /// A KEL key uses an algorithm the policy refuses (only composite keys are allowed).
    #[error("KEL event {index}: algorithm {algorithm:?} is not allowed")]
    KelAlgorithmNotAllowed {
        /// Position of the event in the log.
        index: usize,
        /// The algorithm name.
        algorithm: String,
    },
    /// A KEL event's `ts` is earlier than the previous event's.
    #[error("KEL event {index}: ts {found} is earlier than the previous event's {previous}")]
    KelTimestampRegression {
        /// Position of the event in the log.
        index: usize,
        /// The previous event's `ts`.
        previous: String,
        /// This event's `ts`.
        found: String,
    },
    /// A submitted KEL event's `ts` is later than the accepting node's clock plus the allowed
    /// skew. Not a rule of log validity (a log verifies the same at any time); a node applies
    /// it when it accepts an event, because `ts` opens the key's validity window.
    #[error("KEL event ts {found} is later than the node's clock plus the allowed skew ({latest})")]
    KelTimestampInFuture {
        /// This event's `ts`.
        found: String,
        /// The latest `ts` the node accepts now (RFC 3339).
        latest: String,
    },
    // --- end: did/kel ---
    // --- section: vc/data-integrity ---
    /// VC Data Model 2.0 `PARSING_ERROR`: the input is not a credential or presentation
    /// document at all (not a JSON object, or over the size or nesting limits).
    #[error("PARSING_ERROR: {0}")]
    VcParsing(String),
    /// VC Data Model 2.0 `MALFORMED_VALUE_ERROR`: a required property is missing, or a property
    /// has a value of the wrong form.
    #[error("MALFORMED_VALUE_ERROR: {property}: {reason}")]
    VcMalformedValue {
        /// The property, as a path such as `credentialStatus[1].type`.
        property: String,
        /// What is wrong with it.
        reason: String,
    },
    /// VC Data Model 2.0 `RANGE_ERROR`: a value is outside its allowed range, such as a
    /// credential used outside its validity period.
    #[error("RANGE_ERROR: {property}: {reason}")]
    VcRange {
        /// The property, such as `validUntil`.
        property: String,
        /// What is wrong with it.
        reason: String,
    },
    /// VC Data Model 2.0 `CRYPTOGRAPHIC_SECURITY_ERROR`: a Data Integrity proof is missing,
    /// malformed or invalid, or the proofs do not satisfy the verifier's policy.
    #[error("CRYPTOGRAPHIC_SECURITY_ERROR ({kind}): {reason}")]
    VcCryptographicSecurity {
        /// The precise failure (its [`ProofErrorKind::di_error`] gives
        /// the Data Integrity error name).
        kind: ProofErrorKind,
        /// Details.
        reason: String,
        /// Which proof of the verified document's proof set failed (0-based), when the failure
        /// belongs to one proof; `None` for failures of the set as a whole and once the error
        /// has been moved [`within`](CoreError::within) an enclosing document.
        proof_index: Option<usize>,
    },
    /// Data Integrity `PROOF_GENERATION_ERROR`: a proof could not be created from the inputs.
    #[error("PROOF_GENERATION_ERROR: {0}")]
    ProofGeneration(String),
    // --- end: vc/data-integrity ---
    // --- section: status-list ---
    /// `statusSize` is outside `1..=8`.
    #[error("status list statusSize {status_size} is not in 1..=8")]
    StatusListStatusSize {
        /// The size given.
        status_size: u8,
    },
    /// The list holds fewer entries than the spec's minimum (herd privacy).
    #[error("status list has {entries} entries, fewer than the minimum {min}")]
    StatusListLength {
        /// Entries in the list.
        entries: u64,
        /// The minimum.
        min: u64,
    },
    /// The (uncompressed) list or its encoding exceeds the size limit.
    #[error("status list exceeds the limit of {max_bytes} uncompressed bytes")]
    StatusListTooLarge {
        /// The limit.
        max_bytes: usize,
    },
    /// An index is beyond the end of the list.
    #[error("status list index {index} is out of range ({entries} entries)")]
    StatusListIndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// Entries in the list.
        entries: u64,
    },
    /// A status value does not fit in `statusSize` bits.
    #[error("status value {value} does not fit in {status_size} bits")]
    StatusListValueOutOfRange {
        /// The value given.
        value: u8,
        /// The bits per entry.
        status_size: u8,
    },
    /// `encodedList` is not `u` + base64url of one GZIP member.
    #[error("bad encodedList: {0}")]
    StatusListEncoding(&'static str),
    /// An unknown `statusPurpose`.
    #[error("unknown statusPurpose {0:?}")]
    StatusListPurpose(String),
    /// A `BitstringStatusListEntry` breaks the spec's rules.
    #[error("invalid BitstringStatusListEntry: {0}")]
    StatusListEntry(String),
    /// A `BitstringStatusListCredential` is malformed or is not the one the entry names.
    #[error("invalid BitstringStatusListCredential: {0}")]
    StatusListCredential(String),
    /// The status list credential does not serve the entry's purpose.
    #[error("status list does not serve the purpose {purpose}")]
    StatusListPurposeMismatch {
        /// The entry's purpose.
        purpose: &'static str,
    },
    /// A signed status-list update does not parse exactly (docs/protocol.md §D4).
    #[error("malformed signed status-list update: {0}")]
    StatusUpdateMalformed(String),
    /// A signed status-list update's signature does not verify under the issuer's key.
    #[error("signed status-list update: {0}")]
    StatusUpdateBadSignature(String),
    // --- end: status-list ---
    // --- section: envelope ---
    /// An envelope is structurally invalid.
    #[error("malformed envelope: {0}")]
    EnvelopeMalformed(String),
    /// An envelope field or the whole envelope exceeds a limit.
    #[error("envelope {what} too large: {actual} (limit {limit})")]
    EnvelopeTooLarge {
        /// The field.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The size found.
        actual: usize,
    },
    /// `expires_at - issued_at` exceeds the verifier's cap.
    #[error("envelope lifetime {lifetime_ms} ms exceeds the maximum {max_ms} ms")]
    EnvelopeLifetimeTooLong {
        /// The lifetime.
        lifetime_ms: i64,
        /// The cap.
        max_ms: i64,
    },
    /// `issued_at` is in the future beyond the allowed skew.
    #[error("envelope issued at {issued_at} is not yet valid (now {now})")]
    EnvelopeNotYetValid {
        /// The issue time (Unix ms).
        issued_at: i64,
        /// The verifier's time.
        now: i64,
    },
    /// The envelope has expired (beyond the allowed skew).
    #[error("envelope expired at {expires_at} (now {now})")]
    EnvelopeExpired {
        /// The expiry (Unix ms).
        expires_at: i64,
        /// The verifier's time.
        now: i64,
    },
    /// The verifier is not among the recipients.
    #[error("envelope is not addressed to this recipient")]
    EnvelopeNotForMe,
    /// The sender DID or its key sequence number is unknown.
    #[error("unknown envelope sender {did} (key sequence {seq})")]
    EnvelopeUnknownSender {
        /// The sender DID.
        did: String,
        /// The key's sequence number.
        seq: u64,
    },
    /// The sender key's algorithm is not allowed (composite only).
    #[error("envelope key algorithm {0} is not allowed")]
    EnvelopeAlgorithmNotAllowed(&'static str),
    /// The sender key was not valid at `issued_at`.
    #[error("envelope key not valid at {issued_at} (valid {valid_from}..{valid_until:?})")]
    EnvelopeKeyNotValidAtIssue {
        /// The issue time.
        issued_at: i64,
        /// Key valid from.
        valid_from: i64,
        /// Key valid until (exclusive), if superseded.
        valid_until: Option<i64>,
    },
    /// The envelope signature does not verify.
    #[error("bad envelope signature: {0}")]
    EnvelopeBadSignature(String),
    /// The `(sender, nonce)` pair was seen before.
    #[error("envelope replayed")]
    EnvelopeReplay,
    /// The replay cache is full of unexpired entries; the envelope is refused (fail closed).
    #[error("replay cache full; envelope refused")]
    EnvelopeReplayCacheFull,
    // --- end: envelope ---
    // --- section: tlog/checkpoint ---
    /// A leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for a tree of {tree_size} leaves")]
    TlogIndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        tree_size: u64,
    },
    /// An inclusion proof has the wrong number of hashes for the tree shape.
    #[error("inclusion proof has {actual} hashes; the tree shape needs {expected}")]
    TlogInclusionProofLength {
        /// Hashes the shape needs.
        expected: usize,
        /// Hashes given.
        actual: usize,
    },
    /// An inclusion proof leads to a different root.
    #[error("inclusion proof does not lead to the expected root")]
    TlogInclusionRootMismatch,
    /// A consistency proof was asked for from a larger tree to a smaller one.
    #[error("consistency from tree size {old_size} to smaller size {new_size}")]
    TlogConsistencySizeOrder {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// A consistency proof has the wrong number of hashes for the tree sizes.
    #[error("consistency proof has {actual} hashes; the tree sizes need {expected}")]
    TlogConsistencyProofLength {
        /// Hashes the sizes need.
        expected: usize,
        /// Hashes given.
        actual: usize,
    },
    /// A consistency proof does not lead to the old root.
    #[error("consistency proof does not lead to the old root")]
    TlogConsistencyOldRootMismatch,
    /// A consistency proof does not lead to the new root.
    #[error("consistency proof does not lead to the new root")]
    TlogConsistencyNewRootMismatch,
    /// A Merkle accumulator was rebuilt with the wrong number of subtree roots, or with a size
    /// beyond [`crate::tlog::MAX_ACCUMULATOR_SIZE`].
    #[error("cannot rebuild an accumulator of {size} leaves from {peaks} subtree roots")]
    TlogAccumulatorShape {
        /// The tree size.
        size: u64,
        /// Subtree roots given.
        peaks: usize,
    },
    /// A signed note exceeds the size limit.
    #[error("signed note exceeds {max} bytes")]
    CheckpointTooLarge {
        /// The limit.
        max: usize,
    },
    /// A signed note or checkpoint body is structurally malformed.
    #[error("malformed signed note: {0}")]
    CheckpointMalformed(&'static str),
    /// The checkpoint origin line is invalid.
    #[error("invalid checkpoint origin: {0}")]
    CheckpointOrigin(&'static str),
    /// The checkpoint tree size is not a canonical decimal `u64`.
    #[error("checkpoint tree size is not a decimal without leading zeros")]
    CheckpointTreeSize,
    /// The checkpoint root hash is not base64 of exactly 32 bytes.
    #[error("checkpoint root hash is not base64 of 32 bytes")]
    CheckpointRootHash,
    /// A checkpoint extension line is empty or contains control characters.
    #[error("invalid checkpoint extension line")]
    CheckpointExtension,
    /// A signature line of a signed note is malformed.
    #[error("malformed signature line: {0}")]
    CheckpointSignatureLine(&'static str),
    /// A signed note has too many signature lines.
    #[error("signed note has more than {max} signature lines")]
    CheckpointTooManySignatures {
        /// The limit.
        max: usize,
    },
    /// A note key name is empty or contains whitespace or `+`.
    #[error("invalid note key name")]
    CheckpointKeyName,
    /// A key of the wrong algorithm was given for a checkpoint signature.
    #[error("algorithm {algorithm} cannot be used here for checkpoint signatures")]
    CheckpointKeyAlgorithm {
        /// The key's algorithm.
        algorithm: &'static str,
    },
    /// A note verifier key string is malformed.
    #[error("malformed note verifier key: {0}")]
    CheckpointVerifierKey(&'static str),
    /// A required checkpoint signature line is missing.
    #[error("checkpoint has no {algorithm} signature from the log key")]
    CheckpointSignatureMissing {
        /// The algorithm of the missing line.
        algorithm: &'static str,
    },
    /// A checkpoint signature line from the log key does not verify.
    #[error("checkpoint {algorithm} signature does not verify")]
    CheckpointSignatureInvalid {
        /// The algorithm of the bad line.
        algorithm: &'static str,
    },
    /// Log evidence (two checkpoints that cannot both be true) does not verify or proves
    /// nothing.
    #[error("invalid log evidence: {0}")]
    LogEvidence(String),
    /// A witness request (C2SP tlog-witness `add-checkpoint`) is malformed, or its old size
    /// exceeds the checkpoint's.
    #[error("malformed witness request: {0}")]
    WitnessRequestMalformed(&'static str),
    /// The old size of a witness request is not the size the witness last cosigned.
    #[error("the witness last cosigned a tree of {latest} leaves")]
    WitnessOldSize {
        /// The size last cosigned (0: never).
        latest: u64,
    },
    /// A checkpoint is not consistent with what the witness last cosigned.
    #[error("inconsistent with the witness's view of the log: {0}")]
    WitnessInconsistent(&'static str),
    /// A witness policy is invalid.
    #[error("invalid witness policy: {0}")]
    WitnessPolicyInvalid(String),
    /// A checkpoint has fewer valid witness cosignatures than the policy's quorum.
    #[error(
        "the checkpoint has valid cosignatures from {valid} witnesses; the policy needs {quorum}"
    )]
    WitnessQuorum {
        /// Witnesses with a valid cosignature.
        valid: usize,
        /// The policy's quorum.
        quorum: usize,
    },
    // --- end: tlog/checkpoint ---
    // --- section: evidence/trust-proof ---
    /// Trust evidence is structurally invalid (docs/protocol.md Part G).
    #[error("malformed evidence: {0}")]
    EvidenceMalformed(String),
    /// Trust evidence or one of its fields exceeds a limit.
    #[error("evidence {what} too large: {actual} (limit {limit})")]
    EvidenceTooLarge {
        /// The field.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The size found.
        actual: usize,
    },
    /// Evidence whose issuer is its subject: an agent's statements about itself count for
    /// nothing.
    #[error("self-evidence by {0} is refused")]
    EvidenceSelf(String),
    /// The evidence's `created` lies in the future beyond the allowed skew.
    #[error("evidence created at {created_ms} is not yet valid (now {now_ms})")]
    EvidenceNotYetValid {
        /// `created`, Unix ms.
        created_ms: i64,
        /// The verifier's time.
        now_ms: i64,
    },
    /// A signer's DID or key sequence number is unknown.
    #[error("unknown evidence signer {did} (key sequence {seq})")]
    EvidenceUnknownSigner {
        /// The signer's DID.
        did: String,
        /// The key's sequence number.
        seq: u64,
    },
    /// A signer's key is not a composite key.
    #[error("evidence key algorithm {0} is not allowed")]
    EvidenceAlgorithmNotAllowed(&'static str),
    /// A signer's key was not valid when the evidence was created.
    #[error("the {role} key was not valid at {created_ms}")]
    EvidenceKeyNotValidAtCreation {
        /// `issuer` or `subject`.
        role: &'static str,
        /// `created`, Unix ms.
        created_ms: i64,
    },
    /// A signature on the evidence is missing or does not verify.
    #[error("bad {role} signature on evidence: {reason}")]
    EvidenceBadSignature {
        /// `issuer` or `subject`.
        role: &'static str,
        /// Why.
        reason: String,
    },
    /// A trust proof is not shaped as docs/protocol.md Part G says (its proofs and validity
    /// period fail with the VC errors instead).
    #[error("invalid trust proof: {0}")]
    TrustProofInvalid(String),
    /// A trust proof was issued by another node than the one the verifier trusts.
    #[error("trust proof issued by {found}, expected {expected}")]
    TrustProofIssuerMismatch {
        /// The issuer the verifier trusts.
        expected: String,
        /// The issuer named.
        found: String,
    },
    /// A stored trust snapshot does not parse exactly (docs/protocol.md, "Trust snapshots").
    #[error("invalid trust snapshot: {0}")]
    TrustSnapshotInvalid(String),
    // --- end: evidence/trust-proof ---
    // --- section: audit ---
    /// An audit event is not shaped as docs/audit.md says, or a stored one is not its canonical
    /// form.
    #[error("invalid audit event: {0}")]
    AuditEventInvalid(String),
    // --- end: audit ---
}

impl CoreError {
    /// The same error, located inside an enclosing document at `path` (for example
    /// `verifiableCredential[0]` of a presentation). Other errors are returned unchanged.
    pub fn within(self, path: &str) -> CoreError {
        match self {
            CoreError::VcCryptographicSecurity { kind, reason, .. } => {
                CoreError::VcCryptographicSecurity {
                    kind,
                    reason: format!("{path}: {reason}"),
                    proof_index: None,
                }
            }
            CoreError::VcMalformedValue { property, reason } => {
                CoreError::VcMalformedValue { property: format!("{path}.{property}"), reason }
            }
            CoreError::VcRange { property, reason } => {
                CoreError::VcRange { property: format!("{path}.{property}"), reason }
            }
            other => other,
        }
    }

    /// A stable, upper-snake-case code for this error, suitable for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Crypto(e) => e.code(),
            CoreError::Json(_) => "MALFORMED_JSON",
            // --- codes: add one arm per variant, in your section's order ---
            // codes: jcs
            CoreError::JcsTooDeep { .. } => "JCS_TOO_DEEP",
            CoreError::JcsSerialize(_) => "JCS_INVALID",
            // end codes: jcs
            // codes: did/kel
            CoreError::DidInvalid(_) => "DID_INVALID",
            CoreError::DidMethodNotSupported(_) => "DID_METHOD_NOT_SUPPORTED",
            CoreError::DidKeyUnsupportedKeyType(_) => "DID_KEY_UNSUPPORTED_KEY_TYPE",
            CoreError::DidVersionNotFound { .. } => "DID_VERSION_NOT_FOUND",
            CoreError::KelMalformed { .. } => "KEL_MALFORMED",
            CoreError::KelBadSequence { .. } => "KEL_BAD_SEQUENCE",
            CoreError::KelBrokenHashLink { .. } => "KEL_BROKEN_HASH_LINK",
            CoreError::KelBadSignature { .. } => "KEL_BAD_SIGNATURE",
            CoreError::KelRotationNotCommitted { .. } => "KEL_ROTATION_NOT_COMMITTED",
            CoreError::KelEventAfterDeactivation { .. } => "KEL_EVENT_AFTER_DEACTIVATION",
            CoreError::KelFork { .. } => "KEL_FORK",
            CoreError::KelDidMismatch { .. } => "KEL_DID_MISMATCH",
            CoreError::KelLimit { .. } => "KEL_LIMIT",
            CoreError::KelAlgorithmNotAllowed { .. } => "KEL_ALGORITHM_NOT_ALLOWED",
            CoreError::KelTimestampRegression { .. } => "KEL_TIMESTAMP_REGRESSION",
            CoreError::KelTimestampInFuture { .. } => "KEL_TIMESTAMP_IN_FUTURE",
            // end codes: did/kel
            // codes: envelope
            CoreError::EnvelopeMalformed(_) => "ENVELOPE_MALFORMED",
            CoreError::EnvelopeTooLarge { .. } => "ENVELOPE_TOO_LARGE",
            CoreError::EnvelopeLifetimeTooLong { .. } => "ENVELOPE_LIFETIME_TOO_LONG",
            CoreError::EnvelopeNotYetValid { .. } => "ENVELOPE_NOT_YET_VALID",
            CoreError::EnvelopeExpired { .. } => "ENVELOPE_EXPIRED",
            CoreError::EnvelopeNotForMe => "ENVELOPE_NOT_FOR_ME",
            CoreError::EnvelopeUnknownSender { .. } => "ENVELOPE_UNKNOWN_SENDER",
            CoreError::EnvelopeAlgorithmNotAllowed(_) => "ENVELOPE_ALGORITHM_NOT_ALLOWED",
            CoreError::EnvelopeKeyNotValidAtIssue { .. } => "ENVELOPE_KEY_NOT_VALID_AT_ISSUE",
            CoreError::EnvelopeBadSignature(_) => "ENVELOPE_BAD_SIGNATURE",
            CoreError::EnvelopeReplay => "ENVELOPE_REPLAY",
            CoreError::EnvelopeReplayCacheFull => "ENVELOPE_REPLAY_CACHE_FULL",
            // end codes: envelope
            // codes: vc/data-integrity
            CoreError::VcParsing(_) => "PARSING_ERROR",
            CoreError::VcMalformedValue { .. } => "MALFORMED_VALUE_ERROR",
            CoreError::VcRange { .. } => "RANGE_ERROR",
            CoreError::VcCryptographicSecurity { .. } => "CRYPTOGRAPHIC_SECURITY_ERROR",
            CoreError::ProofGeneration(_) => "PROOF_GENERATION_ERROR",
            // end codes: vc/data-integrity
            // codes: status-list
            CoreError::StatusListStatusSize { .. } => "STATUS_LIST_STATUS_SIZE_INVALID",
            CoreError::StatusListLength { .. } => "STATUS_LIST_LENGTH_ERROR",
            CoreError::StatusListTooLarge { .. } => "STATUS_LIST_TOO_LARGE",
            CoreError::StatusListIndexOutOfRange { .. } => "STATUS_LIST_RANGE_ERROR",
            CoreError::StatusListValueOutOfRange { .. } => "STATUS_LIST_VALUE_OUT_OF_RANGE",
            CoreError::StatusListEncoding(_) => "STATUS_LIST_ENCODING_INVALID",
            CoreError::StatusListPurpose(_) => "STATUS_LIST_PURPOSE_UNKNOWN",
            CoreError::StatusListEntry(_) => "STATUS_LIST_ENTRY_INVALID",
            CoreError::StatusListCredential(_) => "STATUS_LIST_CREDENTIAL_INVALID",
            CoreError::StatusListPurposeMismatch { .. } => "STATUS_LIST_PURPOSE_MISMATCH",
            CoreError::StatusUpdateMalformed(_) => "STATUS_UPDATE_MALFORMED",
            CoreError::StatusUpdateBadSignature(_) => "STATUS_UPDATE_BAD_SIGNATURE",
            // end codes: status-list
            // codes: tlog/checkpoint
            CoreError::TlogIndexOutOfRange { .. } => "TLOG_INDEX_OUT_OF_RANGE",
            CoreError::TlogInclusionProofLength { .. } => "TLOG_INCLUSION_PROOF_LENGTH",
            CoreError::TlogInclusionRootMismatch => "TLOG_INCLUSION_ROOT_MISMATCH",
            CoreError::TlogConsistencySizeOrder { .. } => "TLOG_CONSISTENCY_SIZE_ORDER",
            CoreError::TlogConsistencyProofLength { .. } => "TLOG_CONSISTENCY_PROOF_LENGTH",
            CoreError::TlogConsistencyOldRootMismatch => "TLOG_CONSISTENCY_OLD_ROOT_MISMATCH",
            CoreError::TlogConsistencyNewRootMismatch => "TLOG_CONSISTENCY_NEW_ROOT_MISMATCH",
            CoreError::TlogAccumulatorShape { .. } => "TLOG_ACCUMULATOR_SHAPE",
            CoreError::CheckpointTooLarge { .. } => "CHECKPOINT_TOO_LARGE",
            CoreError::CheckpointMalformed(_) => "CHECKPOINT_MALFORMED",
            CoreError::CheckpointOrigin(_) => "CHECKPOINT_ORIGIN_INVALID",
            CoreError::CheckpointTreeSize => "CHECKPOINT_TREE_SIZE_INVALID",
            CoreError::CheckpointRootHash => "CHECKPOINT_ROOT_HASH_INVALID",
            CoreError::CheckpointExtension => "CHECKPOINT_EXTENSION_INVALID",
            CoreError::CheckpointSignatureLine(_) => "CHECKPOINT_SIGNATURE_LINE_MALFORMED",
            CoreError::CheckpointTooManySignatures { .. } => "CHECKPOINT_TOO_MANY_SIGNATURES",
            CoreError::CheckpointKeyName => "CHECKPOINT_KEY_NAME_INVALID",
            CoreError::CheckpointKeyAlgorithm { .. } => "CHECKPOINT_KEY_ALGORITHM",
            CoreError::CheckpointVerifierKey(_) => "CHECKPOINT_VERIFIER_KEY_MALFORMED",
            CoreError::CheckpointSignatureMissing { .. } => "CHECKPOINT_SIGNATURE_MISSING",
            CoreError::CheckpointSignatureInvalid { .. } => "CHECKPOINT_SIGNATURE_INVALID",
            CoreError::LogEvidence(_) => "LOG_EVIDENCE_INVALID",
            CoreError::WitnessRequestMalformed(_) => "WITNESS_REQUEST_MALFORMED",
            CoreError::WitnessOldSize { .. } => "WITNESS_OLD_SIZE_MISMATCH",
            CoreError::WitnessInconsistent(_) => "WITNESS_INCONSISTENT",
            CoreError::WitnessPolicyInvalid(_) => "WITNESS_POLICY_INVALID",
            CoreError::WitnessQuorum { .. } => "WITNESS_QUORUM_NOT_MET",
            // end codes: tlog/checkpoint
            // codes: evidence/trust-proof
            CoreError::EvidenceMalformed(_) => "EVIDENCE_MALFORMED",
            CoreError::EvidenceTooLarge { .. } => "EVIDENCE_TOO_LARGE",
            CoreError::EvidenceSelf(_) => "EVIDENCE_SELF",
            CoreError::EvidenceNotYetValid { .. } => "EVIDENCE_NOT_YET_VALID",
            CoreError::EvidenceUnknownSigner { .. } => "EVIDENCE_UNKNOWN_SIGNER",
            CoreError::EvidenceAlgorithmNotAllowed(_) => "EVIDENCE_ALGORITHM_NOT_ALLOWED",
            CoreError::EvidenceKeyNotValidAtCreation { .. } => "EVIDENCE_KEY_NOT_VALID_AT_CREATION",
            CoreError::EvidenceBadSignature { .. } => "EVIDENCE_BAD_SIGNATURE",
            CoreError::TrustProofInvalid(_) => "TRUST_PROOF_INVALID",
            CoreError::TrustProofIssuerMismatch { .. } => "TRUST_PROOF_ISSUER_MISMATCH",
            CoreError::TrustSnapshotInvalid(_) => "TRUST_SNAPSHOT_INVALID",
            // end codes: evidence/trust-proof
            // codes: audit
            CoreError::AuditEventInvalid(_) => "AUDIT_EVENT_INVALID",
            // end codes: audit
        }
    }
}

impl From<serde_json::Error> for CoreError {
    fn from(e: serde_json::Error) -> Self {
        CoreError::Json(e.to_string())
    }
}

/// The precise reason a proof was refused (carried by
/// [`CoreError::VcCryptographicSecurity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofErrorKind {
    /// The document has no `proof`.
    MissingProof,
    /// A proof lacks a required property, or one has the wrong form.
    MalformedProof,
    /// A proof names a cryptosuite this verifier does not implement.
    UnsupportedCryptosuite,
    /// A proof has `previousProof` (proof chains are not supported).
    ProofChainUnsupported,
    /// The document carries more than [`crate::data_integrity::MAX_PROOFS`] proofs.
    TooManyProofs,
    /// `proofPurpose` is not the one the verifier expects.
    ProofPurposeMismatch,
    /// The `challenge` is missing or not the expected one.
    InvalidChallenge,
    /// The `domain` is missing or not the expected one.
    InvalidDomain,
    /// The proof's `@context` differs from the document's.
    ContextMismatch,
    /// The verification method cannot be resolved, or its key does not fit the cryptosuite.
    VerificationMethod,
    /// The signature does not verify: the document or the proof was altered, or the key is
    /// not the signer's.
    SignatureInvalid,
    /// The proof's `expires` time has passed.
    ProofExpired,
    /// Every proof verified, but they do not satisfy the verifier's [`crate::data_integrity::ProofPolicy`].
    PolicyNotSatisfied,
    /// The proofs were made by someone other than the credential's issuer or the
    /// presentation's holder.
    ControllerMismatch,
}

impl ProofErrorKind {
    /// A stable upper-snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProofErrorKind::MissingProof => "PROOF_MISSING",
            ProofErrorKind::MalformedProof => "PROOF_MALFORMED",
            ProofErrorKind::UnsupportedCryptosuite => "CRYPTOSUITE_UNSUPPORTED",
            ProofErrorKind::ProofChainUnsupported => "PROOF_CHAIN_UNSUPPORTED",
            ProofErrorKind::TooManyProofs => "TOO_MANY_PROOFS",
            ProofErrorKind::ProofPurposeMismatch => "PROOF_PURPOSE_MISMATCH",
            ProofErrorKind::InvalidChallenge => "CHALLENGE_INVALID",
            ProofErrorKind::InvalidDomain => "DOMAIN_INVALID",
            ProofErrorKind::ContextMismatch => "CONTEXT_MISMATCH",
            ProofErrorKind::VerificationMethod => "VERIFICATION_METHOD_INVALID",
            ProofErrorKind::SignatureInvalid => "SIGNATURE_INVALID",
            ProofErrorKind::ProofExpired => "PROOF_EXPIRED",
            ProofErrorKind::PolicyNotSatisfied => "POLICY_NOT_SATISFIED",
            ProofErrorKind::ControllerMismatch => "CONTROLLER_MISMATCH",
        }
    }

    /// The matching error name of VC Data Integrity 1.0 §2.2.
    pub fn di_error(&self) -> &'static str {
        match self {
            ProofErrorKind::MalformedProof | ProofErrorKind::TooManyProofs => {
                "MALFORMED_PROOF_ERROR"
            }
            ProofErrorKind::ProofPurposeMismatch => "MISMATCHED_PROOF_PURPOSE_ERROR",
            ProofErrorKind::InvalidChallenge => "INVALID_CHALLENGE_ERROR",
            ProofErrorKind::InvalidDomain => "INVALID_DOMAIN_ERROR",
            _ => "PROOF_VERIFICATION_ERROR",
        }
    }
}

impl std::fmt::Display for ProofErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
