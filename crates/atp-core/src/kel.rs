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

impl KeyEventLog {
    /// The default verifier: composite keys only, default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier with other limits.
    pub fn with_limits(limits: KelLimits) -> Self {
        KeyEventLog { limits, ..Self::default() }
    }

    /// A verifier with another algorithm policy. Non-composite algorithms are refused even if
    /// the provider lists them.
    pub fn with_provider(provider: CryptoProvider) -> Self {
        KeyEventLog { provider, ..Self::default() }
    }

    /// The signature policy in force: the one provider a node passes on to the other
    /// verifications (envelopes, session authentication) so that they all apply the same list.
    pub fn provider(&self) -> &CryptoProvider {
        &self.provider
    }

    /// The limits in force.
    pub fn limits(&self) -> &KelLimits {
        &self.limits
    }

    /// Verify a complete log from its inception and return the resulting state.
    pub fn verify(&self, events: &[SignedEvent]) -> Result<KelState, CoreError> {
        if events.len() > self.limits.max_events {
            return Err(CoreError::KelLimit {
                what: "events",
                limit: self.limits.max_events,
                actual: events.len(),
            });
        }
        let mut iter = events.iter();
        let first = iter
            .next()
            .ok_or(CoreError::KelMalformed { index: 0, reason: "the log is empty".into() })?;
        let mut state = self.check_event(0, None, first)?;
        for (i, ev) in iter.enumerate() {
            state = self.check_event(i + 1, Some(&state), ev)?;
        }
        Ok(state)
    }

    /// Verify a complete log and check that it is the log of `did`.
    pub fn verify_did(&self, did: &str, events: &[SignedEvent]) -> Result<KelState, CoreError> {
        let state = self.verify(events)?;
        check_did(did, &state)?;
        Ok(state)
    }

    /// Verify a complete log and return the state after event `version` and the latest state.
    pub fn verify_at(
        &self,
        events: &[SignedEvent],
        version: u64,
    ) -> Result<(KelState, KelState), CoreError> {
        let latest = self.verify(events)?;
        if version > latest.sequence {
            return Err(CoreError::DidVersionNotFound { version, latest: latest.sequence });
        }
        if version == latest.sequence {
            return Ok((latest.clone(), latest));
        }
        let end = usize::try_from(version)
            .map_err(|_| CoreError::DidVersionNotFound { version, latest: latest.sequence })?;
        let at = self.verify(&events[..=end])?;
        Ok((at, latest))
    }

    /// Verify one more event against a verified state (incremental verification).
    pub fn append(&self, state: &KelState, event: &SignedEvent) -> Result<KelState, CoreError> {
        let index = usize::try_from(state.sequence).unwrap_or(usize::MAX).saturating_add(1);
        if index >= self.limits.max_events {
            return Err(CoreError::KelLimit {
                what: "events",
                limit: self.limits.max_events,
                actual: index.saturating_add(1),
            });
        }
        self.check_event(index, Some(state), event)
    }

    /// Check an incoming event against a verified log for a fork (duplicity).
    ///
    /// - `Ok(ForkCheck::New)`: its sequence number is beyond the log.
    /// - `Ok(ForkCheck::Duplicate)`: the log holds the same body at that sequence number.
    /// - `Err(KelFork)`: a *different*, validly signed event claims a sequence number that the
    ///   log already uses. The error carries both digests as evidence. Only an event that
    ///   verifies against the log prefix before it counts as a fork; anything else returns the
    ///   precise verification error instead (it is merely invalid, not evidence of duplicity).
    /// - A different inception (sequence 0) belongs to a different DID: `KelDidMismatch`.
    ///
    /// On a conflict the prefix of `verified_log` is verified again, so the check never trusts
    /// the caller's claim that the log is verified.
    pub fn detect_fork(
        &self,
        verified_log: &[SignedEvent],
        incoming: &SignedEvent,
    ) -> Result<ForkCheck, CoreError> {
        let Some(existing) = usize::try_from(incoming.event.s)
            .ok()
            .and_then(|i| verified_log.get(i).map(|e| (i, e)))
        else {
            return Ok(ForkCheck::New);
        };
        let (index, existing) = existing;
        if existing == incoming
            || existing.event.canonical_bytes()? == incoming.event.canonical_bytes()?
        {
            return Ok(ForkCheck::Duplicate);
        }
        if index == 0 {
            let ours = self.check_event(0, None, existing)?;
            return Err(CoreError::KelDidMismatch {
                index: 0,
                expected: ours.did,
                found: format!("{DID_ATP_PREFIX}{}", incoming.event.scid()?),
            });
        }
        let prefix = self.verify(&verified_log[..index])?;
        self.check_event(index, Some(&prefix), incoming)?;
        Err(CoreError::KelFork {
            sequence: incoming.event.s,
            existing_digest: existing.digest()?,
            incoming_digest: incoming.digest()?,
        })
    }

    /// Verify that `events` is the log of `did` and report the validity window of the key
    /// established by event `seq`: from that event's `ts` until the `ts` of the next event
    /// (rotation or deactivation), if any. `Ok(None)` when `seq` is not an inception or
    /// rotation of this log.
    ///
    /// The DID is checked because the log usually comes from elsewhere (a node, a cache): a
    /// valid log of *another* DID must never lend its keys to `did` (`KelDidMismatch`).
    pub fn key_validity(
        &self,
        did: &str,
        events: &[SignedEvent],
        seq: u64,
    ) -> Result<Option<KeyValidity>, CoreError> {
        self.verify_did(did, events)?;
        let Some(i) = usize::try_from(seq).ok().filter(|i| *i < events.len()) else {
            return Ok(None);
        };
        let ev = &events[i].event;
        let Some(k) = ev.k.as_ref().filter(|_| ev.t != EventType::Deactivation) else {
            return Ok(None);
        };
        let valid_until = match events.get(i + 1) {
            Some(next) => Some(parse_timestamp(&next.event.ts)?),
            None => None,
        };
        Ok(Some(KeyValidity {
            key: k.parse(i)?,
            valid_from: parse_timestamp(&ev.ts)?,
            valid_until,
        }))
    }

    /// The single verification routine for one event at position `index`.
    fn check_event(
        &self,
        index: usize,
        prev: Option<&KelState>,
        signed: &SignedEvent,
    ) -> Result<KelState, CoreError> {
        let ev = &signed.event;
        let malformed = |reason: &str| CoreError::KelMalformed { index, reason: reason.to_owned() };
        if prev.is_some_and(|st| st.deactivated) {
            return Err(CoreError::KelEventAfterDeactivation { index });
        }
        if ev.v != EVENT_VERSION {
            return Err(malformed("v must be \"atp/kel/1\""));
        }
        // Size first: everything after this works on bounded input.
        let signed_bytes = signed.canonical_bytes()?;
        if signed_bytes.len() > self.limits.max_event_bytes {
            return Err(CoreError::KelLimit {
                what: "event bytes",
                limit: self.limits.max_event_bytes,
                actual: signed_bytes.len(),
            });
        }
        if let Some(services) = &ev.services {
            if services.len() > self.limits.max_services {
                return Err(CoreError::KelLimit {
                    what: "services",
                    limit: self.limits.max_services,
                    actual: services.len(),
                });
            }
            for (i, s) in services.iter().enumerate() {
                s.check().map_err(|r| malformed(&r))?;
                if services[..i].iter().any(|o| o.id == s.id) {
                    return Err(malformed(&format!("duplicate service id {}", s.id)));
                }
            }
        }

        // Shape, sequence, DID and hash link.
        match (ev.t, prev) {
            (EventType::Inception, None) => {
                if ev.s != 0 {
                    return Err(CoreError::KelBadSequence { index, expected: 0, found: ev.s });
                }
                if ev.d.is_some() || ev.p.is_some() {
                    return Err(malformed("an inception event carries neither d nor p"));
                }
                if ev.n.is_none() {
                    return Err(malformed("an inception event must carry n"));
                }
            }
            (EventType::Inception, Some(_)) => {
                return Err(malformed("an inception event may only be the first event"));
            }
            (_, None) if ev.s != 0 => {
                return Err(CoreError::KelBadSequence { index, expected: 0, found: ev.s });
            }
            (_, None) => return Err(malformed("a log must begin with an inception event")),
            (t, Some(st)) => {
                let expected = st.sequence.saturating_add(1);
                if ev.s != expected {
                    return Err(CoreError::KelBadSequence { index, expected, found: ev.s });
                }
                let d = ev.d.as_deref().ok_or_else(|| malformed("d is missing"))?;
                if d != st.did {
                    return Err(CoreError::KelDidMismatch {
                        index,
                        expected: st.did.clone(),
                        found: trunc(d),
                    });
                }
                let p = ev.p.as_deref().ok_or_else(|| malformed("p is missing"))?;
                if p != st.last_digest {
                    return Err(CoreError::KelBrokenHashLink {
                        index,
                        expected: st.last_digest.clone(),
                        found: trunc(p),
                    });
                }
                match t {
                    EventType::Rotation if ev.n.is_none() => {
                        return Err(malformed("a rotation must carry n"));
                    }
                    EventType::Deactivation if ev.n.is_some() || ev.services.is_some() => {
                        return Err(malformed("a deactivation carries neither n nor services"));
                    }
                    _ => {}
                }
            }
        }

        // Key, algorithm policy and commitments.
        let k = ev.k.as_ref().ok_or_else(|| malformed("k is missing"))?;
        let key = k.parse(index)?;
        if !key.algorithm().is_composite() || !self.provider.accepts(key.algorithm()) {
            return Err(CoreError::KelAlgorithmNotAllowed {
                index,
                algorithm: key.algorithm().name().to_owned(),
            });
        }
        let k_commitment = k.commitment()?;
        if let Some(st) = prev {
            // Pre-rotation: the revealed key must be the committed one.
            if st.next_commitment.as_deref() != Some(k_commitment.as_str()) {
                return Err(CoreError::KelRotationNotCommitted { index });
            }
        }
        if let Some(n) = &ev.n {
            if !is_sha256_multihash_b58(n) {
                return Err(malformed("n is not a base58btc SHA-256 multihash"));
            }
            if *n == k_commitment {
                return Err(malformed("n commits to the current key; the next key must differ"));
            }
        }

        // Time.
        let ts = parse_event_time(&ev.ts).map_err(|r| malformed(&r))?;
        if let Some(st) = prev {
            let prev_ts = parse_event_time(&st.updated).map_err(|r| malformed(&r))?;
            if ts < prev_ts {
                return Err(CoreError::KelTimestampRegression {
                    index,
                    previous: st.updated.clone(),
                    found: ev.ts.clone(),
                });
            }
        }

        // Signature last: it is the expensive check.
        let body = ev.canonical_bytes()?;
        let sig = URL_SAFE_NO_PAD.decode(&signed.sig).map_err(|e| CoreError::KelBadSignature {
            index,
            reason: format!("sig is not base64url without padding: {e}"),
        })?;
        self.provider.verify(&key, &body, SigningContext::Kel.as_bytes(), &sig).map_err(
            |e| match e {
                CryptoError::AlgorithmNotAllowed(a) => {
                    CoreError::KelAlgorithmNotAllowed { index, algorithm: a.to_owned() }
                }
                e => CoreError::KelBadSignature { index, reason: e.to_string() },
            },
        )?;

        let last_digest = sha256_multihash_b58(&signed_bytes);
        Ok(match (ev.t, prev) {
            (EventType::Inception, _) | (_, None) => KelState {
                did: format!("{DID_ATP_PREFIX}{}", sha256_multihash_b58(&body)),
                current_key: key,
                key_sequence: 0,
                next_commitment: ev.n.clone(),
                sequence: 0,
                deactivated: false,
                services: ev.services.clone().unwrap_or_default(),
                last_digest,
                created: ev.ts.clone(),
                updated: ev.ts.clone(),
            },
            (EventType::Rotation, Some(st)) => KelState {
                did: st.did.clone(),
                current_key: key,
                key_sequence: ev.s,
                next_commitment: ev.n.clone(),
                sequence: ev.s,
                deactivated: false,
                services: ev.services.clone().unwrap_or_else(|| st.services.clone()),
                last_digest,
                created: st.created.clone(),
                updated: ev.ts.clone(),
            },
            (EventType::Deactivation, Some(st)) => KelState {
                did: st.did.clone(),
                current_key: st.current_key.clone(),
                key_sequence: st.key_sequence,
                next_commitment: None,
                sequence: ev.s,
                deactivated: true,
                services: Vec::new(),
                last_digest,
                created: st.created.clone(),
                updated: ev.ts.clone(),
            },
        })
    }
}

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
