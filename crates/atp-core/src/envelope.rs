//! Signed envelopes for messages between agents (docs/design.md §6).
//!
//! An [`Envelope`] names its sender DID and the sequence number of the KEL event that
//! established the signing key, the recipient DIDs, the issue and expiry times, a random 128-bit
//! nonce, a content type and the payload. One composite signature (context `atp/envelope/v1`)
//! covers all of it, over an exactly specified byte layout (never JSON or protobuf output):
//!
//! ```text
//! signed bytes =
//!   "ATPENV1\0"                       8 bytes: 41 54 50 45 4e 56 31 00
//!   u32be(len(sender)) ‖ sender        UTF-8 (ASCII) DID
//!   u64be(sender_key_seq)
//!   u32be(count(recipients))           then for each recipient, in order:
//!     u32be(len(recipient)) ‖ recipient
//!   i64be(issued_at)                   Unix milliseconds, two's complement
//!   i64be(expires_at)                  Unix milliseconds
//!   nonce                              16 bytes
//!   u32be(len(content_type)) ‖ content_type
//!   u32be(len(payload)) ‖ payload
//!
//! wire bytes = signed bytes ‖ u32be(len(signature)) ‖ signature      (nothing after it)
//! ```
//!
//! [`verify`] applies the checks in this order, cheap ones before the signature:
//! structure and limits (`ENVELOPE_MALFORMED`, `ENVELOPE_TOO_LARGE`), lifetime
//! (`ENVELOPE_LIFETIME_TOO_LONG`), time window (`ENVELOPE_NOT_YET_VALID`, `ENVELOPE_EXPIRED`),
//! audience (`ENVELOPE_NOT_FOR_ME`), sender key lookup (`ENVELOPE_UNKNOWN_SENDER`), algorithm
//! policy (`ENVELOPE_ALGORITHM_NOT_ALLOWED`), key validity at `issued_at`
//! (`ENVELOPE_KEY_NOT_VALID_AT_ISSUE`), the signature (`ENVELOPE_BAD_SIGNATURE`), and last the
//! replay cache (`ENVELOPE_REPLAY`, `ENVELOPE_REPLAY_CACHE_FULL`). A nonce is recorded only
//! after the signature has verified, so forged envelopes cannot fill the cache or burn nonces.
//!
//! The lifetime cap matters for rotation: after a key is superseded, an attacker holding the
//! old key can backdate `issued_at` into the old key's validity window, but the envelope must
//! still be unexpired now, so such forgeries are possible for at most
//! `max_lifetime + max_skew` after the rotation.

use atp_crypto::{CryptoError, CryptoProvider, SigningContext, SigningKey};

use crate::CoreError;
use crate::did::validate_did;
use crate::wire::Reader;

/// The first eight signed bytes: `ATPENV1` and a zero byte.
pub const MAGIC: [u8; 8] = *b"ATPENV1\0";

// The nonce length is the replay cache's, which records nonces of this one length.
pub use crate::replay::NONCE_LEN;

/// The largest payload, in bytes (1 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The most recipients.
pub const MAX_RECIPIENTS: usize = 64;

/// The longest content type, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// The longest DID (sender or recipient), in bytes.
pub const MAX_DID_BYTES: usize = 512;

/// The longest signature accepted on the wire, in bytes (a composite ML-DSA-65 + Ed25519
/// signature is 3373 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 8192;

/// The largest wire encoding that the limits allow.
pub const MAX_WIRE_BYTES: usize = 8
    + (4 + MAX_DID_BYTES)
    + 8
    + 4
    + MAX_RECIPIENTS * (4 + MAX_DID_BYTES)
    + 8
    + 8
    + NONCE_LEN
    + (4 + MAX_CONTENT_TYPE_BYTES)
    + (4 + MAX_PAYLOAD_BYTES)
    + (4 + MAX_SIGNATURE_BYTES);

/// The default tolerated clock skew: 60 seconds.
pub const DEFAULT_MAX_SKEW_MS: i64 = 60_000;

/// The default longest envelope lifetime (`expires_at - issued_at`): 5 minutes.
pub const DEFAULT_MAX_LIFETIME_MS: i64 = 300_000;

/// An unsigned envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's DID.
    pub sender: String,
    /// The sequence number of the KEL event that established the signing key.
    pub sender_key_seq: u64,
    /// The recipient DIDs: 1 to [`MAX_RECIPIENTS`], no duplicates.
    pub recipients: Vec<String>,
    /// Issue time, Unix milliseconds (≥ 0).
    pub issued_at: i64,
    /// Expiry, Unix milliseconds (> `issued_at`).
    pub expires_at: i64,
    /// A random 128-bit nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The payload's media type: 1 to 255 printable ASCII bytes.
    pub content_type: String,
    /// The payload: at most [`MAX_PAYLOAD_BYTES`].
    pub payload: Vec<u8>,
}

/// An envelope with its composite signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedEnvelope {
    /// The signed envelope.
    pub envelope: Envelope,
    /// The composite signature over [`Envelope::signed_bytes`] with context `atp/envelope/v1`.
    pub signature: Vec<u8>,
}

fn malformed(why: impl Into<String>) -> CoreError {
    CoreError::EnvelopeMalformed(why.into())
}

fn too_large(what: &'static str, limit: usize, actual: usize) -> CoreError {
    CoreError::EnvelopeTooLarge { what, limit, actual }
}

fn check_did(what: &'static str, did: &str) -> Result<(), CoreError> {
    if did.len() > MAX_DID_BYTES {
        return Err(too_large(what, MAX_DID_BYTES, did.len()));
    }
    validate_did(did).map_err(|e| malformed(format!("{what}: {e}")))
}

fn len_u32(len: usize) -> Result<[u8; 4], CoreError> {
    u32::try_from(len).map(u32::to_be_bytes).map_err(|_| too_large("field", u32::MAX as usize, len))
}

impl Envelope {
    /// A new envelope with a fresh random nonce, checked against the limits.
    pub fn new(
        sender: &str,
        sender_key_seq: u64,
        recipients: Vec<String>,
        issued_at: i64,
        expires_at: i64,
        content_type: &str,
        payload: Vec<u8>,
    ) -> Result<Self, CoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        atp_crypto::random_bytes(&mut nonce)?;
        let env = Envelope {
            sender: sender.to_owned(),
            sender_key_seq,
            recipients,
            issued_at,
            expires_at,
            nonce,
            content_type: content_type.to_owned(),
            payload,
        };
        env.validate()?;
        Ok(env)
    }

    /// Check structure and limits (not time, audience or signature).
    pub fn validate(&self) -> Result<(), CoreError> {
        check_did("sender", &self.sender)?;
        if self.recipients.is_empty() {
            return Err(malformed("no recipients"));
        }
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(too_large("recipients", MAX_RECIPIENTS, self.recipients.len()));
        }
        for (i, r) in self.recipients.iter().enumerate() {
            check_did("recipient", r)?;
            if self.recipients[..i].contains(r) {
                return Err(malformed("duplicate recipient"));
            }
        }
        if self.issued_at < 0 {
            return Err(malformed("issued_at is negative"));
        }
        if self.expires_at <= self.issued_at {
            return Err(malformed("expires_at is not after issued_at"));
        }
        if self.content_type.is_empty() {
            return Err(malformed("empty content type"));
        }
        if self.content_type.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(too_large("content type", MAX_CONTENT_TYPE_BYTES, self.content_type.len()));
        }
        if !self.content_type.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(malformed("content type is not printable ASCII"));
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(too_large("payload", MAX_PAYLOAD_BYTES, self.payload.len()));
        }
        Ok(())
    }

    /// The exact bytes that are signed (see the module documentation).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, CoreError> {
        self.validate()?;
        let recipients_len: usize = self.recipients.iter().map(|r| 4 + r.len()).sum();
        let mut out = Vec::with_capacity(
            8 + 4
                + self.sender.len()
                + 8
                + 4
                + recipients_len
                + 8
                + 8
                + NONCE_LEN
                + 4
                + self.content_type.len()
                + 4
                + self.payload.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&len_u32(self.sender.len())?);
        out.extend_from_slice(self.sender.as_bytes());
        out.extend_from_slice(&self.sender_key_seq.to_be_bytes());
        out.extend_from_slice(&len_u32(self.recipients.len())?);
        for r in &self.recipients {
            out.extend_from_slice(&len_u32(r.len())?);
            out.extend_from_slice(r.as_bytes());
        }
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&len_u32(self.content_type.len())?);
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(&len_u32(self.payload.len())?);
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Sign with the sender's composite key (the key established by KEL event
    /// `sender_key_seq`).
    pub fn seal(self, key: &SigningKey) -> Result<SealedEnvelope, CoreError> {
        if !CryptoProvider::quantum_safe().accepts(key.algorithm()) {
            return Err(CoreError::EnvelopeAlgorithmNotAllowed(key.algorithm().name()));
        }
        let signature = key.sign(&self.signed_bytes()?, SigningContext::Envelope.as_bytes())?;
        Ok(SealedEnvelope { envelope: self, signature })
    }
}

/// A read past the end of the wire bytes.
fn truncated(what: &str) -> CoreError {
    malformed(format!("truncated in {what}"))
}

/// A length-prefixed field of at most `limit` bytes, refused before it is read.
fn bytes<'a>(r: &mut Reader<'a>, what: &'static str, limit: usize) -> Result<&'a [u8], CoreError> {
    let len = r.len(what)?;
    if len > limit {
        return Err(too_large(what, limit, len));
    }
    r.take(len, what)
}

/// A length-prefixed UTF-8 string of at most `limit` bytes.
fn string(r: &mut Reader<'_>, what: &'static str, limit: usize) -> Result<String, CoreError> {
    let b = bytes(r, what, limit)?;
    String::from_utf8(b.to_vec()).map_err(|_| malformed(format!("{what} is not UTF-8")))
}

impl SealedEnvelope {
    /// The wire encoding: the signed bytes, then `u32be(len(signature)) ‖ signature`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CoreError> {
        if self.signature.is_empty() {
            return Err(malformed("empty signature"));
        }
        if self.signature.len() > MAX_SIGNATURE_BYTES {
            return Err(too_large("signature", MAX_SIGNATURE_BYTES, self.signature.len()));
        }
        let mut out = self.envelope.signed_bytes()?;
        out.extend_from_slice(&len_u32(self.signature.len())?);
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Parse the wire encoding strictly: every limit is checked before anything is allocated,
    /// every field must be well formed, and no byte may follow the signature.
    pub fn from_bytes(wire: &[u8]) -> Result<Self, CoreError> {
        if wire.len() > MAX_WIRE_BYTES {
            return Err(too_large("envelope", MAX_WIRE_BYTES, wire.len()));
        }
        let mut r = Reader::new(wire, truncated);
        if r.array::<8>("magic")? != MAGIC {
            return Err(malformed("bad magic (expected \"ATPENV1\\0\")"));
        }
        let sender = string(&mut r, "sender", MAX_DID_BYTES)?;
        let sender_key_seq = u64::from_be_bytes(r.array("sender_key_seq")?);
        let count = r.len("recipients")?;
        if count > MAX_RECIPIENTS {
            return Err(too_large("recipients", MAX_RECIPIENTS, count));
        }
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            recipients.push(string(&mut r, "recipient", MAX_DID_BYTES)?);
        }
        let issued_at = i64::from_be_bytes(r.array("issued_at")?);
        let expires_at = i64::from_be_bytes(r.array("expires_at")?);
        let nonce = r.array::<NONCE_LEN>("nonce")?;
        let content_type = string(&mut r, "content type", MAX_CONTENT_TYPE_BYTES)?;
        let payload = bytes(&mut r, "payload", MAX_PAYLOAD_BYTES)?.to_vec();
        let signature = bytes(&mut r, "signature", MAX_SIGNATURE_BYTES)?.to_vec();
        if !r.rest().is_empty() {
            return Err(malformed(format!("{} trailing bytes", r.rest().len())));
        }
        if signature.is_empty() {
            return Err(malformed("empty signature"));
        }
        let envelope = Envelope {
            sender,
            sender_key_seq,
            recipients,
            issued_at,
            expires_at,
            nonce,
            content_type,
            payload,
        };
        envelope.validate()?;
        Ok(SealedEnvelope { envelope, signature })
    }
}

// `KeyValidity` is defined in `kel.rs`, which computes it from a key event log; envelopes and
// evidence only read it.
pub use crate::kel::KeyValidity;

// The replay cache (the trait and the in-memory implementation) lives in `replay.rs`.
pub use crate::replay::{InMemoryReplayCache, ReplayCache, ReplayCheck};

/// The sender-key lookup: `(did, sender_key_seq)` to the key and its validity window. It
/// returns [`CoreError::EnvelopeUnknownSender`] when the DID or the sequence number is unknown
/// (or names no key); other errors are passed through unchanged.
pub type KeyLookup<'a> = &'a dyn Fn(&str, u64) -> Result<KeyValidity, CoreError>;

/// Everything [`verify`] needs from the verifier.
pub struct VerifyContext<'a> {
    /// Sender key lookup (typically a cached KEL resolution).
    pub key_lookup: KeyLookup<'a>,
    /// The current time, Unix milliseconds.
    pub now: i64,
    /// Tolerated clock skew in milliseconds (negative values count as 0).
    pub max_skew_ms: i64,
    /// The longest accepted `expires_at - issued_at`, in milliseconds.
    pub max_lifetime_ms: i64,
    /// The verifier's own DID: it must be among the recipients.
    pub me: &'a str,
    /// The replay cache.
    pub replay_cache: &'a dyn ReplayCache,
    /// The signature policy; only composite algorithms in it are accepted
    /// ([`CryptoProvider::quantum_safe`] by default).
    pub provider: &'a CryptoProvider,
}

impl<'a> VerifyContext<'a> {
    /// A context with the default skew ([`DEFAULT_MAX_SKEW_MS`]) and lifetime cap
    /// ([`DEFAULT_MAX_LIFETIME_MS`]).
    pub fn new(
        me: &'a str,
        now: i64,
        key_lookup: KeyLookup<'a>,
        replay_cache: &'a dyn ReplayCache,
    ) -> Self {
        VerifyContext {
            key_lookup,
            now,
            max_skew_ms: DEFAULT_MAX_SKEW_MS,
            max_lifetime_ms: DEFAULT_MAX_LIFETIME_MS,
            me,
            replay_cache,
            provider: CryptoProvider::quantum_safe(),
        }
    }
}

impl std::fmt::Debug for VerifyContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyContext")
            .field("now", &self.now)
            .field("max_skew_ms", &self.max_skew_ms)
            .field("max_lifetime_ms", &self.max_lifetime_ms)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// Checks 1 to 4 of [`verify`] (structure and limits, lifetime cap, time window, audience):
/// everything that needs neither the sender's key nor the replay cache. A verifier whose key
/// lookup is expensive (a store read) runs this first, so that an envelope refused on these
/// grounds costs no lookup; [`verify`] runs it again, so the order and the answers are the same
/// either way. Returns the instant until which the nonce must be remembered
/// (`expires_at + max_skew`).
pub fn check_before_key(
    sealed: &SealedEnvelope,
    now: i64,
    max_skew_ms: i64,
    max_lifetime_ms: i64,
    me: &str,
) -> Result<i64, CoreError> {
    let env = &sealed.envelope;
    // 1. Structure and limits.
    env.validate()?;
    if sealed.signature.is_empty() {
        return Err(malformed("empty signature"));
    }
    if sealed.signature.len() > MAX_SIGNATURE_BYTES {
        return Err(too_large("signature", MAX_SIGNATURE_BYTES, sealed.signature.len()));
    }
    // 2. Lifetime cap.
    let lifetime = env.expires_at.saturating_sub(env.issued_at);
    if lifetime > max_lifetime_ms {
        return Err(CoreError::EnvelopeLifetimeTooLong {
            lifetime_ms: lifetime,
            max_ms: max_lifetime_ms,
        });
    }
    // 3. Time window.
    let skew = max_skew_ms.max(0);
    if env.issued_at > now.saturating_add(skew) {
        return Err(CoreError::EnvelopeNotYetValid { issued_at: env.issued_at, now });
    }
    let keep_until = env.expires_at.saturating_add(skew);
    if now > keep_until {
        return Err(CoreError::EnvelopeExpired { expires_at: env.expires_at, now });
    }
    // 4. Audience.
    if !env.recipients.iter().any(|r| r == me) {
        return Err(CoreError::EnvelopeNotForMe);
    }
    Ok(keep_until)
}

/// Verify a sealed envelope for the recipient `ctx.me` (see the module documentation for the
/// order of the checks). On success the nonce has been recorded in the replay cache.
pub fn verify(sealed: &SealedEnvelope, ctx: &VerifyContext<'_>) -> Result<(), CoreError> {
    let env = &sealed.envelope;
    let keep_until =
        check_before_key(sealed, ctx.now, ctx.max_skew_ms, ctx.max_lifetime_ms, ctx.me)?;
    // 5. Sender key and its validity at issue time.
    let validity = (ctx.key_lookup)(&env.sender, env.sender_key_seq)?;
    let provider = ctx.provider;
    if !validity.key.algorithm().is_composite() || !provider.accepts(validity.key.algorithm()) {
        return Err(CoreError::EnvelopeAlgorithmNotAllowed(validity.key.algorithm().name()));
    }
    if env.issued_at < validity.valid_from
        || validity.valid_until.is_some_and(|u| env.issued_at >= u)
    {
        return Err(CoreError::EnvelopeKeyNotValidAtIssue {
            issued_at: env.issued_at,
            valid_from: validity.valid_from,
            valid_until: validity.valid_until,
        });
    }
    // 6. Signature.
    let msg = env.signed_bytes()?;
    provider
        .verify(&validity.key, &msg, SigningContext::Envelope.as_bytes(), &sealed.signature)
        .map_err(|e| match e {
            CryptoError::AlgorithmNotAllowed(a) => CoreError::EnvelopeAlgorithmNotAllowed(a),
            e => CoreError::EnvelopeBadSignature(e.to_string()),
        })?;
    // 7. Replay, only now that the signature is known to be genuine.
    match ctx.replay_cache.check_and_insert(&env.sender, &env.nonce, keep_until, ctx.now) {
        ReplayCheck::Fresh => Ok(()),
        ReplayCheck::Replayed => Err(CoreError::EnvelopeReplay),
        ReplayCheck::Full => Err(CoreError::EnvelopeReplayCacheFull),
    }
}
