//! Key event logs (KELs) of the `did:atp` method: KERI-style pre-rotation with composite
//! ML-DSA + Ed25519 keys.
//!
//! A DID's state is the ordered list of its events: one inception (`icp`), any number of
//! rotations (`rot`), and possibly one final deactivation (`dea`). Every event is signed, links to
//! the digest of the event before it, and (except `dea`) commits to the hash of the *next*
//! composite public key. The normative description is in `docs/protocol.md` ("Identity"); the
//! rules this module enforces are, in brief:
//!
//! - **Canonical form.** Every hash and signature is over the RFC 8785 (JCS) form of a JSON
//!   object ([`crate::jcs`]).
//! - **What is signed.** The composite signature (context `atp/kel/v1`) covers `JCS(event)`, the
//!   event body without its signature. The signature travels beside the body:
//!   `{"event": {…}, "sig": "<base64url>"}` ([`SignedEvent`]).
//! - **scid and DID.** `scid = base58btc-multibase(0x12 0x20 ‖ SHA-256(JCS(inception body)))`
//!   and the DID is `did:atp:<scid>`. The inception body carries no `d` (it cannot contain its
//!   own hash); every later event carries `d`, which must equal the derived DID.
//! - **Event digest.** An event's digest, which the next event names in `p`, is the same
//!   multihash encoding over `JCS({"event": …, "sig": …})`, the *signed* event. The hash chain
//!   therefore fixes the exact signatures, not only the bodies: the log is a chain of exactly
//!   the bytes that were published, which is what the transparency log records. Because
//!   ML-DSA signing is randomised, re-signing a body gives a different event; a controller
//!   publishes each event once.
//! - **Pre-rotation.** A rotation reveals the key `k` whose commitment the previous establishment
//!   event published in `n`, is signed by that key, and commits to a new next key. Theft of the
//!   current key therefore cannot rotate the DID.
//! - **Deactivation** is also signed by the committed next key, which it reveals in `k` (it has
//!   no `n`: nothing may follow). Theft of the current key therefore cannot deactivate the DID
//!   either. Deactivation is final.
//! - **Policy.** Only composite keys accepted by the verifier's [`CryptoProvider`] are allowed
//!   (by default `mldsa65-ed25519` and `mldsa44-ed25519`).
//! - **Limits.** At most [`MAX_EVENTS`] events, [`MAX_SERVICES`] services per event and
//!   [`MAX_EVENT_BYTES`] bytes per canonical signed event.

use atp_crypto::{AlgorithmId, CryptoError, CryptoProvider, PublicKey, SigningContext, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};

use crate::CoreError;
use crate::vc::DateTimeStamp;

/// The value of every event's `v` field.
pub const EVENT_VERSION: &str = "atp/kel/1";

/// The prefix of every `did:atp` DID.
pub const DID_ATP_PREFIX: &str = "did:atp:";

/// The default maximum number of events in one log.
pub const MAX_EVENTS: usize = 10_000;

/// The default maximum number of services in one event.
pub const MAX_SERVICES: usize = 32;

/// The default maximum size of one canonical signed event (`JCS({"event","sig"})`), and of the
/// JSON text accepted by [`SignedEvent::from_json`].
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// The maximum length of a service `id` (including the leading `#`).
pub const MAX_SERVICE_ID_LEN: usize = 65;

/// The maximum length of a service `type`.
pub const MAX_SERVICE_TYPE_LEN: usize = 128;

/// The maximum length of a `serviceEndpoint` URI.
pub const MAX_SERVICE_ENDPOINT_LEN: usize = 2048;

/// Multihash prefix of SHA-256: code 0x12, length 0x20.
const SHA256_MULTIHASH_PREFIX: [u8; 2] = [0x12, 0x20];

/// The kind of a key event (`t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// `icp`: creates the DID.
    #[serde(rename = "icp")]
    Inception,
    /// `rot`: reveals the committed key and commits to a new next key.
    #[serde(rename = "rot")]
    Rotation,
    /// `dea`: deactivates the DID for ever.
    #[serde(rename = "dea")]
    Deactivation,
}

impl EventType {
    /// The wire name: `icp`, `rot` or `dea`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::Inception => "icp",
            EventType::Rotation => "rot",
            EventType::Deactivation => "dea",
        }
    }
}

/// A composite public key as it appears in an event's `k`:
/// `{"alg":"mldsa65-ed25519","mldsa":"u…","ed25519":"z6Mk…"}`.
///
/// The members are the ATP algorithm name and the Multikey encodings of the two components.
/// Multikey decoding is canonical, so one key has exactly one JSON (and JCS) form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeKey {
    /// The composite algorithm's ATP name, e.g. `mldsa65-ed25519`.
    pub alg: String,
    /// The ML-DSA component as a Multikey (`u…`, base64url).
    pub mldsa: String,
    /// The Ed25519 component as a Multikey (`z6Mk…`, base58btc).
    pub ed25519: String,
}

impl CompositeKey {
    /// The JSON form of a composite public key. Non-composite keys are refused.
    pub fn from_public_key(key: &PublicKey) -> Result<Self, CoreError> {
        let (mldsa, ed25519) = key
            .components()
            .ok_or(CoreError::Crypto(CryptoError::AlgorithmNotAllowed(key.algorithm().name())))?;
        Ok(CompositeKey {
            alg: key.algorithm().name().to_owned(),
            mldsa: mldsa.to_multikey()?,
            ed25519: ed25519.to_multikey()?,
        })
    }

    /// Parse back into a composite [`PublicKey`], checking that the components match `alg`.
    pub fn to_public_key(&self) -> Result<PublicKey, CoreError> {
        self.parse(0)
    }

    fn parse(&self, index: usize) -> Result<PublicKey, CoreError> {
        let not_allowed = || CoreError::KelAlgorithmNotAllowed {
            index,
            algorithm: self.alg.chars().take(64).collect(),
        };
        let alg = AlgorithmId::from_name(&self.alg).map_err(|_| not_allowed())?;
        let component = alg.mldsa_component().ok_or_else(not_allowed)?;
        let malformed = |what: &str, e: &dyn std::fmt::Display| CoreError::KelMalformed {
            index,
            reason: format!("k.{what}: {e}"),
        };
        let mldsa = PublicKey::from_multikey(&self.mldsa).map_err(|e| malformed("mldsa", &e))?;
        if mldsa.algorithm() != component {
            return Err(malformed(
                "mldsa",
                &format!("is {}, expected {component}", mldsa.algorithm()),
            ));
        }
        let ed = PublicKey::from_multikey(&self.ed25519).map_err(|e| malformed("ed25519", &e))?;
        if ed.algorithm() != AlgorithmId::Ed25519 {
            return Err(malformed("ed25519", &format!("is {}, expected ed25519", ed.algorithm())));
        }
        PublicKey::composite(&mldsa, &ed).map_err(|e| malformed("alg", &e))
    }

    /// The next-key commitment of this key: the base58btc multibase of the SHA-256 multihash of
    /// `JCS(self)`.
    pub fn commitment(&self) -> Result<String, CoreError> {
        Ok(sha256_multihash_b58(&crate::jcs::canonicalize_serializable(self)?))
    }
}

/// The next-key commitment (`n`) of a composite public key.
pub fn key_commitment(key: &PublicKey) -> Result<String, CoreError> {
    CompositeKey::from_public_key(key)?.commitment()
}

/// A service entry. In events `id` is a fragment (`#agent`); DID documents expand it to
/// `did:atp:…#agent`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service id: `#` followed by 1 to 64 characters of `[A-Za-z0-9._-]` in events.
    pub id: String,
    /// The service type, e.g. `AgentService` or `A2AAgentCard`.
    #[serde(rename = "type")]
    pub service_type: String,
    /// The endpoint URI.
    #[serde(rename = "serviceEndpoint")]
    pub service_endpoint: String,
}

impl Service {
    /// A service entry with a fragment id.
    pub fn new(id: &str, service_type: &str, service_endpoint: &str) -> Self {
        Service {
            id: id.to_owned(),
            service_type: service_type.to_owned(),
            service_endpoint: service_endpoint.to_owned(),
        }
    }

    fn check(&self) -> Result<(), String> {
        let frag = self.id.strip_prefix('#').ok_or("service id must start with '#'")?;
        if frag.is_empty()
            || self.id.len() > MAX_SERVICE_ID_LEN
            || !frag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(format!("service id {:?} is not #[A-Za-z0-9._-]{{1,64}}", trunc(&self.id)));
        }
        if self.service_type.is_empty()
            || self.service_type.len() > MAX_SERVICE_TYPE_LEN
            || self.service_type.chars().any(char::is_control)
        {
            return Err(format!("service {}: bad type", self.id));
        }
        let ep = &self.service_endpoint;
        let scheme_ok = ep.split_once(':').is_some_and(|(scheme, _)| {
            scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        });
        if !scheme_ok
            || ep.len() > MAX_SERVICE_ENDPOINT_LEN
            || ep.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!("service {}: serviceEndpoint is not a URI", self.id));
        }
        Ok(())
    }
}

/// Deserialize a present field as `Some`; `null` is refused (absent fields default to `None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The body of a key event: everything that is signed.
///
/// Optional members are omitted when absent; `null` is not accepted for any of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The format version, always [`EVENT_VERSION`].
    pub v: String,
    /// The event type.
    pub t: EventType,
    /// The DID; absent on inception (it is derived from the inception body).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// The sequence number: 0 for inception, then +1 per event.
    pub s: u64,
    /// The digest of the previous signed event; absent on inception.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// The key this event establishes (`icp`, `rot`) or reveals (`dea`); it signs the event.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub k: Option<CompositeKey>,
    /// The commitment to the next key; absent on deactivation.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The service list (`icp`, `rot`). On rotation, present replaces the current list
    /// (an empty list clears it) and absent keeps it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Service>>,
    /// The controller's time of the event, RFC 3339 UTC (`2026-01-01T00:00:00Z`). It must not
    /// decrease along the log; it bounds the validity window of each key.
    pub ts: String,
}

impl Event {
    /// The canonical bytes that are signed: `JCS(event)`.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CoreError> {
        crate::jcs::canonicalize_serializable(self)
    }

    /// For an inception event, the scid derived from it.
    pub fn scid(&self) -> Result<String, CoreError> {
        Ok(sha256_multihash_b58(&self.canonical_bytes()?))
    }
}

/// An event with its composite signature: `{"event": {…}, "sig": "<base64url, no padding>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEvent {
    /// The signed body.
    pub event: Event,
    /// The composite signature over `JCS(event)` with context `atp/kel/v1`, base64url without
    /// padding.
    pub sig: String,
}

impl SignedEvent {
    /// Parse one signed event from JSON text, strictly: no unknown or duplicate members, no
    /// `null`s, at most [`MAX_EVENT_BYTES`] bytes. (Semantic checks happen in
    /// [`KeyEventLog::verify`].)
    pub fn from_json(json: &[u8]) -> Result<Self, CoreError> {
        if json.len() > MAX_EVENT_BYTES {
            return Err(CoreError::KelLimit {
                what: "event bytes",
                limit: MAX_EVENT_BYTES,
                actual: json.len(),
            });
        }
        serde_json::from_slice(json)
            .map_err(|e| CoreError::KelMalformed { index: 0, reason: e.to_string() })
    }

    /// The canonical JSON text of this signed event (`JCS({"event","sig"})`).
    pub fn to_json(&self) -> Result<String, CoreError> {
        String::from_utf8(self.canonical_bytes()?).map_err(|e| CoreError::Json(e.to_string()))
    }

    /// `JCS({"event": …, "sig": …})`, the input of [`SignedEvent::digest`].
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CoreError> {
        crate::jcs::canonicalize_serializable(self)
    }

    /// The event digest that the next event names in `p`: base58btc multibase of the SHA-256
    /// multihash of `JCS({"event": …, "sig": …})`.
    pub fn digest(&self) -> Result<String, CoreError> {
        Ok(sha256_multihash_b58(&self.canonical_bytes()?))
    }

    fn sign(event: Event, key: &SigningKey) -> Result<Self, CoreError> {
        let sig = key.sign(&event.canonical_bytes()?, SigningContext::Kel.as_bytes())?;
        Ok(SignedEvent { event, sig: URL_SAFE_NO_PAD.encode(sig) })
    }
}

/// Parse a whole log: a JSON array of signed events.
///
/// The event count is limited while parsing: parsing stops at the first event beyond
/// [`MAX_EVENTS`] (reported as `MAX_EVENTS + 1`), before the rest is read.
pub fn parse_log(json: &[u8]) -> Result<Vec<SignedEvent>, CoreError> {
    let max = MAX_EVENTS.saturating_mul(MAX_EVENT_BYTES);
    if json.len() > max {
        return Err(CoreError::KelLimit { what: "log bytes", limit: max, actual: json.len() });
    }
    let too_many = std::cell::Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = serde::Deserializer::deserialize_seq(
        &mut de,
        BoundedEvents { limit: MAX_EVENTS, too_many: &too_many },
    )
    .and_then(|events| de.end().map(|()| events));
    match parsed {
        Ok(events) => Ok(events),
        Err(_) if too_many.get() => Err(CoreError::KelLimit {
            what: "events",
            limit: MAX_EVENTS,
            actual: MAX_EVENTS.saturating_add(1),
        }),
        Err(e) => Err(CoreError::KelMalformed { index: 0, reason: e.to_string() }),
    }
}

/// A JSON array of at most `limit` signed events; `too_many` is set when it holds more.
struct BoundedEvents<'a> {
    limit: usize,
    too_many: &'a std::cell::Cell<bool>,
}

impl<'de> serde::de::Visitor<'de> for BoundedEvents<'_> {
    type Value = Vec<SignedEvent>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an array of at most {} signed events", self.limit)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.limit).min(64));
        while let Some(event) = seq.next_element::<SignedEvent>()? {
            if events.len() == self.limit {
                self.too_many.set(true);
                return Err(serde::de::Error::custom("too many events"));
            }
            events.push(event);
        }
        Ok(events)
    }
}

/// The verified state of a DID after some prefix of its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KelState {
    /// The DID, `did:atp:<scid>`.
    pub did: String,
    /// The key established by the last inception or rotation. After deactivation no key is
    /// valid; this is kept for reference.
    pub current_key: PublicKey,
    /// The sequence number of the event that established [`KelState::current_key`]; envelopes
    /// name their signing key by it.
    pub key_sequence: u64,
    /// The commitment to the next key; `None` once deactivated.
    pub next_commitment: Option<String>,
    /// The sequence number of the last event.
    pub sequence: u64,
    /// Whether the DID is deactivated (final).
    pub deactivated: bool,
    /// The current services, with fragment ids. Empty once deactivated.
    pub services: Vec<Service>,
    /// The digest of the last signed event (what the next event must name in `p`).
    pub last_digest: String,
    /// The `ts` of the inception event.
    pub created: String,
    /// The `ts` of the last event.
    pub updated: String,
}

impl KelState {
    /// The scid: the DID without `did:atp:`.
    pub fn scid(&self) -> &str {
        self.did.strip_prefix(DID_ATP_PREFIX).unwrap_or(&self.did)
    }
}

/// Limits applied while verifying a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KelLimits {
    /// Maximum events in a log.
    pub max_events: usize,
    /// Maximum services in one event.
    pub max_services: usize,
    /// Maximum size of one canonical signed event.
    pub max_event_bytes: usize,
}

impl Default for KelLimits {
    fn default() -> Self {
        KelLimits {
            max_events: MAX_EVENTS,
            max_services: MAX_SERVICES,
            max_event_bytes: MAX_EVENT_BYTES,
        }
    }
}

/// What [`KeyEventLog::detect_fork`] found about an incoming event that is not a fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkCheck {
    /// The sequence number is beyond the verified log: the event may extend it (verify it with
    /// [`KeyEventLog::append`]).
    New,
    /// The log already holds this event body at that sequence number (byte-identical, or the
    /// same body with another signature). Nothing to do.
    Duplicate,
}

/// The verifier of key event logs: a signature policy and limits. Fully offline.
#[derive(Clone, Debug)]
pub struct KeyEventLog {
    provider: CryptoProvider,
    limits: KelLimits,
}

impl Default for KeyEventLog {
    fn default() -> Self {
        KeyEventLog {
            provider: CryptoProvider::default_quantum_safe(),
            limits: KelLimits::default(),
        }
    }
}

mod verify;
pub use verify::key_validity_in_verified_log;

/// Check that a verified `state` is the state of `did` (`KelDidMismatch` otherwise).
pub(crate) fn check_did(did: &str, state: &KelState) -> Result<(), CoreError> {
    if state.did != did {
        return Err(CoreError::KelDidMismatch {
            index: 0,
            expected: trunc(did),
            found: state.did.clone(),
        });
    }
    Ok(())
}

/// Verify a complete log with the default policy and limits.
pub fn verify_log(events: &[SignedEvent]) -> Result<KelState, CoreError> {
    KeyEventLog::default().verify(events)
}

fn check_composite(index: usize, key: &PublicKey) -> Result<(), CoreError> {
    if key.algorithm().is_composite() && CryptoProvider::quantum_safe().accepts(key.algorithm()) {
        Ok(())
    } else {
        Err(CoreError::KelAlgorithmNotAllowed {
            index,
            algorithm: key.algorithm().name().to_owned(),
        })
    }
}

/// Create and sign an inception event.
///
/// `current` signs it and becomes the DID's first key; `next_public` is the key the first
/// rotation (or the deactivation) must reveal. The returned event verifies; the DID is
/// `did:atp:` + [`Event::scid`].
pub fn incept(
    current: &SigningKey,
    next_public: &PublicKey,
    services: Vec<Service>,
    ts: &str,
) -> Result<SignedEvent, CoreError> {
    check_composite(0, current.public_key_ref())?;
    check_composite(0, next_public)?;
    let event = Event {
        v: EVENT_VERSION.to_owned(),
        t: EventType::Inception,
        d: None,
        s: 0,
        p: None,
        k: Some(CompositeKey::from_public_key(current.public_key_ref())?),
        n: Some(key_commitment(next_public)?),
        services: if services.is_empty() { None } else { Some(services) },
        ts: ts.to_owned(),
    };
    let signed = SignedEvent::sign(event, current)?;
    KeyEventLog::default().verify(std::slice::from_ref(&signed))?;
    Ok(signed)
}

/// Create and sign a rotation event after `state`.
///
/// `new_current` must be the key that `state` committed to (else `KelRotationNotCommitted`);
/// it signs the event. `services`: `Some` replaces the service list, `None` keeps it.
pub fn rotate(
    state: &KelState,
    new_current: &SigningKey,
    next_public: &PublicKey,
    services: Option<Vec<Service>>,
    ts: &str,
) -> Result<SignedEvent, CoreError> {
    sign_next_event(state, EventType::Rotation, new_current, Some(next_public), services, ts)
}

/// Create and sign the (final) deactivation event after `state`.
///
/// `committed` must be the key that `state` committed to as the next key: deactivation needs
/// the same authority as rotation, so the theft of the current key cannot deactivate the DID.
pub fn deactivate(
    state: &KelState,
    committed: &SigningKey,
    ts: &str,
) -> Result<SignedEvent, CoreError> {
    sign_next_event(state, EventType::Deactivation, committed, None, None, ts)
}

/// Build, sign and check the event after `state`, signed by (and revealing) `committed`, the
/// key that `state` committed to. `next_public` is the next key of a rotation (`None` for a
/// deactivation).
fn sign_next_event(
    state: &KelState,
    t: EventType,
    committed: &SigningKey,
    next_public: Option<&PublicKey>,
    services: Option<Vec<Service>>,
    ts: &str,
) -> Result<SignedEvent, CoreError> {
    let sequence = state.sequence.saturating_add(1);
    let index = usize::try_from(sequence).unwrap_or(usize::MAX);
    if state.deactivated {
        return Err(CoreError::KelEventAfterDeactivation { index });
    }
    check_composite(index, committed.public_key_ref())?;
    if let Some(next) = next_public {
        check_composite(index, next)?;
    }
    let k = CompositeKey::from_public_key(committed.public_key_ref())?;
    if state.next_commitment.as_deref() != Some(k.commitment()?.as_str()) {
        return Err(CoreError::KelRotationNotCommitted { index });
    }
    let event = Event {
        v: EVENT_VERSION.to_owned(),
        t,
        d: Some(state.did.clone()),
        s: sequence,
        p: Some(state.last_digest.clone()),
        k: Some(k),
        n: next_public.map(key_commitment).transpose()?,
        services,
        ts: ts.to_owned(),
    };
    let signed = SignedEvent::sign(event, committed)?;
    KeyEventLog::default().append(state, &signed)?;
    Ok(signed)
}

/// Base58btc multibase (`z…`) of the SHA-256 multihash (`0x12 0x20 ‖ digest`) of `data`.
pub fn sha256_multihash_b58(data: &[u8]) -> String {
    let mut mh = Vec::with_capacity(34);
    mh.extend_from_slice(&SHA256_MULTIHASH_PREFIX);
    mh.extend_from_slice(&atp_crypto::sha256(data));
    multibase::encode(multibase::Base::Base58Btc, mh)
}

/// Whether `s` is the canonical base58btc multibase of a SHA-256 multihash.
pub fn is_sha256_multihash_b58(s: &str) -> bool {
    if !s.starts_with('z') || s.len() > 64 {
        return false;
    }
    match multibase::decode(s) {
        Ok((multibase::Base::Base58Btc, data)) => {
            data.len() == 34
                && data[..2] == SHA256_MULTIHASH_PREFIX
                && multibase::encode(multibase::Base::Base58Btc, &data) == s
        }
        _ => false,
    }
}

/// Parse an event timestamp into Unix milliseconds.
///
/// The accepted form is RFC 3339 in UTC only: `YYYY-MM-DDTHH:MM:SSZ` with an optional fraction
/// of 1 to 9 digits (`.123Z`), upper-case `T` and `Z`, no leap seconds, years 0000–9999
/// ([`DateTimeStamp::parse_rfc3339_utc`]). Fractions below a millisecond are truncated.
pub fn parse_timestamp(ts: &str) -> Result<i64, CoreError> {
    parse_event_time(ts)
        .map(|t| t.unix_millis())
        .map_err(|reason| CoreError::KelMalformed { index: 0, reason })
}

/// Refuses an event whose `ts` is later than `latest_ms` (Unix milliseconds): the check a node
/// makes when it accepts a new event, with `latest_ms` its clock plus the allowed skew. A key's
/// validity window opens at its event's `ts`, so a rotation dated in the future would keep the
/// previous key valid until then. Log validity itself never depends on the clock.
pub fn check_not_after(event: &SignedEvent, latest_ms: i64) -> Result<(), CoreError> {
    let ts = parse_event_time(&event.event.ts)
        .map_err(|reason| CoreError::KelMalformed { index: 0, reason })?;
    if ts.unix_millis() > latest_ms {
        return Err(CoreError::KelTimestampInFuture {
            found: trunc(&event.event.ts),
            latest: DateTimeStamp::from_unix(latest_ms.div_euclid(1000)).to_string(),
        });
    }
    Ok(())
}

/// The instant of an event's `ts`, with an error message that names the rule.
fn parse_event_time(ts: &str) -> Result<DateTimeStamp, String> {
    DateTimeStamp::parse_rfc3339_utc(ts).map_err(|why| {
        format!("ts {:?} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.fff]Z): {why}", trunc(ts))
    })
}

/// A bounded copy of untrusted text for error messages.
fn trunc(s: &str) -> String {
    s.chars().take(128).collect()
}
/// The sender key named by `(sender, sender_key_seq)` and when it was valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValidity {
    /// The composite public key.
    pub key: PublicKey,
    /// When the key was established (the `ts` of its KEL event), Unix milliseconds.
    pub valid_from: i64,
    /// When the key was superseded by a rotation or deactivation (that event's `ts`), if it has
    /// been. The key is valid for `valid_from <= t < valid_until`.
    pub valid_until: Option<i64>,
}
