//! `atp.v1.MessageService`: envelope verification and challenge/response authentication.
//!
//! - **VerifyEnvelope** runs the shared verifier `atp_core::envelope::verify` (docs/protocol.md
//!   §B4.4). The sender key comes from the sender's *stored* key event log, verified once when
//!   it is loaded, through `kel::key_validity_in_verified_log`; the answers are kept in a bounded cache keyed by
//!   `(did, key seq)` and tied to the log head they were computed from, so a log that grew is
//!   looked up again. The node's replay cache is scoped per `verifier_did` (the same envelope
//!   verifies once for each of its recipients). Time comes from the state's clock.
//! - **CreateChallenge / Authenticate** follow message.proto: 32-byte CSPRNG challenges in a
//!   bounded, expiring store ([`ChallengeStore`]); the authentication response is parsed
//!   exactly (its layout and the token's are `atp_core::session`'s) and checked in the
//!   documented order; the challenge is consumed only after the signature verified; the
//!   session token is signed by the node with ctx `atp/session/v1`. In a cluster
//!   ([`crate::cluster`]) the challenge is also recorded as issued in the shared store, so that
//!   any node can take the answer, and its use is recorded there, so that it is used once in
//!   the whole cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atp_core::CoreError;
use atp_core::envelope::{self, KeyValidity, NONCE_LEN, ReplayCache, ReplayCheck, SealedEnvelope};
use atp_crypto::SigningContext;
use atp_grpc::reasons;
use atp_grpc::v1 as pb;
use atp_grpc::v1::message_service_server::MessageService;
use tonic::{Request, Response, Status};

use crate::audit::{Trail, target};
use crate::error::{Result, ServerError};
use crate::extensions::{CallInfo, Principal};
use crate::state::AppState;
use atp_core::audit::{EventCode, Outcome};

/// How long a challenge stays valid, in milliseconds.
pub const CHALLENGE_LIFETIME_MS: i64 = 60_000;
/// The cluster-wide record scopes of a session challenge: issued (with its DID and audience),
/// and used.
const ISSUED: &str = "session-challenge-issued";
const USED: &str = "session-challenge-used";
/// The most outstanding challenges.
pub const DEFAULT_CHALLENGE_CAPACITY: usize = 10_000;
/// The most `(did, key seq)` answers kept by the key lookup cache.
pub const DEFAULT_KEY_CACHE_CAPACITY: usize = 10_000;

/// Every check of the envelope verification, in order (all of them pass on success).
const ALL_CHECKS: [pb::EnvelopeCheck; 10] = [
    pb::EnvelopeCheck::Structure,
    pb::EnvelopeCheck::Lifetime,
    pb::EnvelopeCheck::NotYetValid,
    pb::EnvelopeCheck::Expiry,
    pb::EnvelopeCheck::Audience,
    pb::EnvelopeCheck::SenderKey,
    pb::EnvelopeCheck::Algorithm,
    pb::EnvelopeCheck::KeyValidAtIssue,
    pb::EnvelopeCheck::Signature,
    pb::EnvelopeCheck::Replay,
];

// ------------------------------------------------------------------------------------------
// Caches
// ------------------------------------------------------------------------------------------

/// The node replay cache seen through one verifier DID: entries are keyed by
/// `(verifier, sender, nonce)`.
struct ScopedReplay<'a> {
    inner: &'a dyn ReplayCache,
    verifier: &'a str,
}

impl ReplayCache for ScopedReplay<'_> {
    fn check_and_insert(
        &self,
        sender: &str,
        nonce: &[u8; NONCE_LEN],
        keep_until: i64,
        now: i64,
    ) -> ReplayCheck {
        self.inner.check_and_insert(&self.scoped(sender), nonce, keep_until, now)
    }

    fn forget(&self, sender: &str, nonce: &[u8; NONCE_LEN]) {
        self.inner.forget(&self.scoped(sender), nonce);
    }
}

impl ScopedReplay<'_> {
    /// A NUL cannot occur in a DID, so the scoped key is unambiguous.
    fn scoped(&self, sender: &str) -> String {
        format!("{}\u{0}{sender}", self.verifier)
    }
}

/// `(did, seq)` → (log head digest, answer).
type KeyCacheMap = HashMap<(String, u64), (String, Option<KeyValidity>)>;

/// Bounded cache of sender-key lookups: `(did, seq)` → (log head digest, answer).
#[derive(Debug)]
struct KeyCache {
    capacity: usize,
    map: Mutex<KeyCacheMap>,
}

impl KeyCache {
    fn get(&self, did: &str, seq: u64, head: &str) -> Option<Option<KeyValidity>> {
        let map = self.map.lock().ok()?;
        match map.get(&(did.to_owned(), seq)) {
            Some((digest, v)) if digest == head => Some(v.clone()),
            _ => None,
        }
    }

    fn put(&self, did: &str, seq: u64, head: &str, v: Option<KeyValidity>) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            let key = (did.to_owned(), seq);
            if map.len() >= self.capacity
                && !map.contains_key(&key)
                && let Some(k) = map.keys().next().cloned()
            {
                map.remove(&k);
            }
            map.insert(key, (head.to_owned(), v));
        }
    }
}

#[derive(Clone, Debug)]
struct PendingChallenge {
    did: String,
    audience: String,
    expires_at: i64,
}

/// Outstanding authentication challenges: bounded, expiring, single use.
#[derive(Debug)]
pub struct ChallengeStore {
    capacity: usize,
    map: Mutex<HashMap<[u8; CHALLENGE_LEN], PendingChallenge>>,
}

impl ChallengeStore {
    /// A store of at most `capacity` unexpired challenges.
    pub fn new(capacity: usize) -> Self {
        ChallengeStore { capacity, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; CHALLENGE_LEN], PendingChallenge>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a challenge; `false` when the store is full of unexpired challenges.
    fn insert(&self, challenge: [u8; CHALLENGE_LEN], pending: PendingChallenge, now: i64) -> bool {
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.retain(|_, p| p.expires_at >= now);
        }
        if map.len() >= self.capacity {
            return false;
        }
        map.insert(challenge, pending);
        true
    }

    /// Whether `challenge` is outstanding, unexpired, and for `did` and `audience`.
    fn matches(
        &self,
        challenge: &[u8; CHALLENGE_LEN],
        did: &str,
        audience: &str,
        now: i64,
    ) -> bool {
        self.lock()
            .get(challenge)
            .is_some_and(|p| p.did == did && p.audience == audience && now <= p.expires_at)
    }

    /// Consumes a matching challenge; `false` if it is gone (used concurrently) or no longer
    /// matches.
    fn consume(
        &self,
        challenge: &[u8; CHALLENGE_LEN],
        did: &str,
        audience: &str,
        now: i64,
    ) -> bool {
        let mut map = self.lock();
        let ok = map
            .get(challenge)
            .is_some_and(|p| p.did == did && p.audience == audience && now <= p.expires_at);
        if ok {
            map.remove(challenge);
        }
        ok
    }
}

// The byte layouts (authentication response, session token) and their limits are protocol
// rules: they live in `atp_core::session` and are re-exported here for the service's callers.
pub use atp_core::session::{
    AUTH_MAGIC, Authentication, CHALLENGE_LEN, MAX_AUDIENCE_BYTES, MAX_DID_BYTES,
    MAX_SESSION_LIFETIME_MS, SessionToken, TOKEN_MAGIC, join_session_token, split_session_token,
    valid_audience,
};

// ------------------------------------------------------------------------------------------
// The service
// ------------------------------------------------------------------------------------------

/// `atp.v1.MessageService` over the shared [`AppState`].
#[derive(Clone, Debug)]
pub struct MessageApi {
    state: AppState,
    keys: Arc<KeyCache>,
    challenges: Arc<ChallengeStore>,
}

impl MessageApi {
    /// The service over `state`, with its own key-lookup cache and challenge store (construct
    /// it once per node).
    pub fn new(state: AppState) -> Self {
        let keys = Arc::new(KeyCache {
            capacity: state
                .settings
                .limits
                .resolution_cache_capacity
                .clamp(1, DEFAULT_KEY_CACHE_CAPACITY * 10),
            map: Mutex::new(HashMap::new()),
        });
        MessageApi {
            state,
            keys,
            challenges: Arc::new(ChallengeStore::new(DEFAULT_CHALLENGE_CAPACITY)),
        }
    }

    /// The key established by event `seq` of `did`'s stored log, with its validity window.
    /// `None` when the node holds no such log or `seq` names no key.
    async fn key_validity(&self, did: &str, seq: u64) -> Result<Option<KeyValidity>> {
        if atp_core::did::parse_did_atp(did).is_err() {
            return Ok(None);
        }
        let Some(kel) = self.state.load_kel(did).await? else { return Ok(None) };
        let head = kel.state.last_digest.as_str();
        if let Some(v) = self.keys.get(did, seq, head) {
            return Ok(v);
        }
        // `load_kel` verified this log as `did`'s before caching it: read the key off it
        // without verifying every signature a second time.
        let events: Vec<_> = kel.events.iter().map(|e| e.event.clone()).collect();
        let v = atp_core::kel::key_validity_in_verified_log(&events, seq)
            .map_err(|e| ServerError::internal(format!("stored log of {did}: {e}")))?;
        self.keys.put(did, seq, head, v.clone());
        Ok(v)
    }

    async fn verify_envelope_inner(
        &self,
        req: pb::VerifyEnvelopeRequest,
    ) -> Result<pb::VerifyEnvelopeResponse> {
        let me = req.verifier_did.as_str();
        if me.is_empty() || me.len() > MAX_DID_BYTES {
            return Err(ServerError::field(
                "verifier_did",
                format!("must be 1 to {MAX_DID_BYTES} bytes"),
            ));
        }
        let sealed = SealedEnvelope::from_bytes(&req.envelope)?;
        let env = &sealed.envelope;
        let now = self.state.now_ms();
        let (skew, max_lifetime) = (
            self.state.settings.limits.clock_skew_ms(),
            self.state.settings.limits.max_envelope_lifetime_ms(),
        );
        // The cheap checks (structure, lifetime, time window, audience) before any store read:
        // an envelope refused on those grounds costs no key lookup.
        envelope::check_before_key(&sealed, now, skew, max_lifetime, me)?;
        // The store is async and the verifier is not: look the key up next. The closure below
        // only hands the answer to the verifier, which still runs every check in order.
        let validity = self.key_validity(&env.sender, env.sender_key_seq).await?;
        let algorithm = validity.as_ref().map(|v| v.key.algorithm().name());
        // The verifier's context borrows a closure that is not Sync: it ends before any await.
        let verified = {
            let sender = env.sender.clone();
            let seq = env.sender_key_seq;
            let lookup = move |_did: &str,
                               _seq: u64|
                  -> std::result::Result<KeyValidity, CoreError> {
                validity
                    .clone()
                    .ok_or_else(|| CoreError::EnvelopeUnknownSender { did: sender.clone(), seq })
            };
            let replay = ScopedReplay { inner: self.state.caches.replay.as_ref(), verifier: me };
            let ctx = envelope::VerifyContext {
                key_lookup: &lookup,
                now,
                max_skew_ms: skew,
                max_lifetime_ms: max_lifetime,
                me,
                replay_cache: &replay,
                provider: self.state.kel_verifier.provider(),
            };
            envelope::verify(&sealed, &ctx)
        };
        // The verifier checks the signature just before the replay cache, so a replay means the
        // signature was good; earlier refusals never reached it and are not counted.
        let signature_ok = match &verified {
            Ok(()) | Err(CoreError::EnvelopeReplay | CoreError::EnvelopeReplayCacheFull) => {
                Some(true)
            }
            Err(CoreError::EnvelopeBadSignature(_)) => Some(false),
            Err(_) => None,
        };
        if let (Some(ok), Some(algorithm)) = (signature_ok, algorithm) {
            self.state.extensions.signature_verified("envelope", algorithm, ok);
        }
        verified?;
        // Fresh to this node; in a cluster, also to every other (the same key as the node's
        // cache: verifier, sender, nonce; kept as long).
        let keep_until = env.expires_at.saturating_add(skew.max(0));
        let parts: [&[u8]; 3] = [me.as_bytes(), env.sender.as_bytes(), &env.nonce];
        match crate::cluster::first_use(&self.state, "envelope", &parts, keep_until, now).await {
            Ok(true) => {}
            Ok(false) => return Err(CoreError::EnvelopeReplay.into()),
            Err(e) => {
                // Not accepted: the same envelope, retried, must not be called a replay here.
                let replay =
                    ScopedReplay { inner: self.state.caches.replay.as_ref(), verifier: me };
                replay.forget(&env.sender, &env.nonce);
                return Err(e);
            }
        }
        let env = sealed.envelope;
        Ok(pb::VerifyEnvelopeResponse {
            sender_did: env.sender,
            sender_key_seq: env.sender_key_seq,
            recipients: env.recipients,
            issued_at_unix_ms: env.issued_at,
            expires_at_unix_ms: env.expires_at,
            nonce: env.nonce.to_vec(),
            content_type: env.content_type,
            payload: env.payload,
            checks_passed: ALL_CHECKS.iter().map(|c| *c as i32).collect(),
        })
    }

    async fn create_challenge_inner(
        &self,
        req: pb::CreateChallengeRequest,
    ) -> Result<pb::CreateChallengeResponse> {
        check_did_atp(&req.did)?;
        if !valid_audience(&req.audience) {
            return Err(ServerError::field(
                "audience",
                format!(
                    "must be 1 to {MAX_AUDIENCE_BYTES} bytes of printable ASCII without spaces"
                ),
            ));
        }
        if self.state.load_kel(&req.did).await?.is_none() {
            return Err(ServerError::DidNotFound(req.did));
        }
        let mut challenge = [0u8; CHALLENGE_LEN];
        atp_crypto::random_bytes(&mut challenge)
            .map_err(|e| ServerError::internal(format!("rng: {e}")))?;
        let now = self.state.now_ms();
        let expires_at = now.saturating_add(CHALLENGE_LIFETIME_MS);
        let parts = [&challenge[..], req.did.as_bytes(), req.audience.as_bytes()];
        // Known to the cluster before it is handed out: a fresh random value cannot be live.
        if !crate::cluster::first_use(&self.state, ISSUED, &parts, expires_at, now).await? {
            return Err(ServerError::internal("a fresh challenge was already recorded"));
        }
        let pending = PendingChallenge { did: req.did, audience: req.audience, expires_at };
        if !self.challenges.insert(challenge, pending, now) {
            return Err(ServerError::rejected(
                reasons::SESSION_CHALLENGE_CACHE_FULL,
                "too many outstanding challenges; retry later",
            ));
        }
        Ok(pb::CreateChallengeResponse {
            challenge: challenge.to_vec(),
            node_did: self.state.node_did.clone(),
            expires_at_unix_ms: expires_at,
        })
    }

    async fn authenticate_inner(
        &self,
        req: pb::AuthenticateRequest,
    ) -> Result<pb::AuthenticateResponse> {
        let auth = Authentication::parse(&req.authentication).ok_or_else(|| {
            ServerError::rejected(
                reasons::SESSION_MALFORMED,
                "the authentication response does not parse (docs/protocol.md Part F, item 2)",
            )
        })?;
        if auth.node_did != self.state.node_did {
            return Err(ServerError::rejected(
                reasons::SESSION_WRONG_NODE,
                "the authentication response names another node",
            ));
        }
        let now = self.state.now_ms();
        let unknown = || {
            ServerError::rejected(
                reasons::SESSION_CHALLENGE_UNKNOWN,
                "unknown, expired or used challenge, or one issued for another DID or audience",
            )
        };
        let parts = [&auth.challenge[..], auth.did.as_bytes(), auth.audience.as_bytes()];
        let issued_here = self.challenges.matches(&auth.challenge, &auth.did, &auth.audience, now);
        if !issued_here && !crate::cluster::is_live(&self.state, ISSUED, &parts, now).await? {
            return Err(unknown());
        }
        let not_current = || {
            ServerError::rejected(
                reasons::SESSION_KEY_NOT_CURRENT,
                "key_seq is not the DID's current key, or the DID is deactivated",
            )
        };
        // Exact: a key rotated away on another node must not open a session here.
        let kel = self.state.load_kel_exact(&auth.did).await?.ok_or_else(not_current)?;
        if kel.state.deactivated || kel.state.key_sequence != auth.key_seq {
            return Err(not_current());
        }
        let verified = self.state.kel_verifier.provider().verify(
            &kel.state.current_key,
            &req.authentication,
            SigningContext::Session.as_bytes(),
            &req.signature,
        );
        self.state.extensions.signature_verified(
            "session",
            kel.state.current_key.algorithm().name(),
            verified.is_ok(),
        );
        verified.map_err(|e| {
            ServerError::rejected(
                reasons::SESSION_BAD_SIGNATURE,
                format!("the authentication signature does not verify: {e}"),
            )
        })?;
        if issued_here && !self.challenges.consume(&auth.challenge, &auth.did, &auth.audience, now)
        {
            return Err(unknown());
        }
        // Used once in the whole cluster: kept past the challenge's last valid instant, which
        // is at most one lifetime after now.
        let keep_until = now.saturating_add(CHALLENGE_LIFETIME_MS);
        if !crate::cluster::first_use(&self.state, USED, &parts[..1], keep_until, now).await? {
            return Err(unknown());
        }
        let node =
            self.state.load_kel(&self.state.node_did).await?.ok_or_else(|| {
                ServerError::internal("the node's own key event log is not stored")
            })?;
        let mut token_id = [0u8; 16];
        atp_crypto::random_bytes(&mut token_id)
            .map_err(|e| ServerError::internal(format!("rng: {e}")))?;
        let lifetime = crate::Limits::SESSION_TOKEN_LIFETIME_MS.clamp(1, MAX_SESSION_LIFETIME_MS);
        let token = SessionToken {
            issuer: self.state.node_did.clone(),
            issuer_key_seq: node.state.key_sequence,
            subject: auth.did.clone(),
            subject_key_seq: auth.key_seq,
            audience: auth.audience.clone(),
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
            token_id,
        };
        let bytes = token.to_bytes();
        let signature = self
            .state
            .node_key
            .sign(&bytes, SigningContext::Session.as_bytes())
            .map_err(|e| ServerError::internal(format!("signing a session token: {e}")))?;
        Ok(pb::AuthenticateResponse {
            session_token: join_session_token(&bytes, &signature),
            did: auth.did,
            audience: auth.audience,
            expires_at_unix_ms: token.expires_at,
        })
    }
}

fn check_did_atp(did: &str) -> Result<()> {
    if did.is_empty() || did.len() > MAX_DID_BYTES {
        return Err(ServerError::Core(CoreError::DidInvalid(format!(
            "a DID is 1 to {MAX_DID_BYTES} bytes"
        ))));
    }
    atp_core::did::validate_did(did)?;
    // Only a method with a key event log can sign envelopes and sessions: the node checks a
    // signer's key against the validity windows of its log.
    match atp_core::did::method::lookup(did) {
        Some(method) if method.needs() == atp_core::did::method::Needs::KeyEventLog => {
            Ok(method.check(did)?)
        }
        _ => {
            let method = did.split(':').nth(1).unwrap_or_default();
            Err(ServerError::Core(CoreError::DidMethodNotSupported(format!(
                "did:{method} cannot authenticate; only did:atp"
            ))))
        }
    }
}

#[tonic::async_trait]
impl MessageService for MessageApi {
    async fn verify_envelope(
        &self,
        request: Request<pb::VerifyEnvelopeRequest>,
    ) -> std::result::Result<Response<pb::VerifyEnvelopeResponse>, Status> {
        let r = self.verify_envelope_inner(request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn create_challenge(
        &self,
        request: Request<pb::CreateChallengeRequest>,
    ) -> std::result::Result<Response<pb::CreateChallengeResponse>, Status> {
        let r = self.create_challenge_inner(request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> std::result::Result<Response<pb::AuthenticateResponse>, Status> {
        const METHOD: &str = "atp.v1.MessageService/Authenticate";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.authenticate_inner(request.into_inner()).await;
        // Every sign-in, accepted or refused, is recorded before it is answered.
        let (code, principal, targets, outcome) = match &r {
            Ok(ok) => (
                EventCode::SessionIssued,
                Some(Principal::User { id: ok.did.clone(), roles: Vec::new() }),
                vec![target("audience", ok.audience.clone())],
                Outcome { result: "SUCCESS".into(), reason: None },
            ),
            Err(e) => (
                EventCode::AuthnFailed,
                None,
                vec![target("operation", "session.authenticate")],
                Outcome { result: "FAILURE".into(), reason: Some(e.reason().to_owned()) },
            ),
        };
        let event = self.state.audit_event(
            &call,
            principal.as_ref(),
            code,
            targets,
            outcome,
            Some("session.authenticate"),
        )?;
        let mut trail = Trail::default();
        self.state.push_audit(&mut trail, &event)?;
        self.state.store_trail(trail).await?;
        Ok(Response::new(r?))
    }
}
