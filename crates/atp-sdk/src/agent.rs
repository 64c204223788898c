//! [`Agent`]: one agent's identity, and everything it does with a node.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use atp_core::checkpoint::{Checkpoint, VerifierKey};
use atp_core::did::ResolutionResult;
use atp_core::did::method::{Material, Needs};
use atp_core::envelope::{self, Envelope, InMemoryReplayCache, KeyValidity, SealedEnvelope};
use atp_core::kel::{self, EventType, KelState, KeyEventLog, Service, SignedEvent};
use atp_core::{CoreError, session};
use atp_crypto::{AlgorithmId, SigningContext, SigningKey};
use atp_grpc::v1;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::message_service_client::MessageServiceClient;
use zeroize::Zeroizing;

use crate::client::{NodeClient, NodeOptions};
use crate::clock::{now_ms, timestamp};
use crate::error::{Error, Result};
use crate::home::{AgentDir, default_home};

mod log;

/// The content type of [`Agent::seal`].
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Everything [`Agent::connect_with`] can be told. [`AgentOptions::new`] gives the defaults.
#[derive(Clone)]
pub struct AgentOptions {
    /// The nodes and how to reach them.
    pub node: NodeOptions,
    /// Where agents keep their keys; `None` means `$ATP_HOME`, else `~/.atp`.
    pub home: Option<PathBuf>,
    /// Encrypts new key files (Argon2id + XChaCha20-Poly1305) and decrypts existing ones.
    pub key_passphrase: Option<Zeroizing<Vec<u8>>>,
    /// Services published in the inception event of a new identity.
    pub services: Vec<Service>,
    /// The lifetime of envelopes that [`Agent::seal`] makes, in milliseconds.
    pub envelope_lifetime_ms: i64,
    /// Clock skew tolerated by [`Agent::open`], in milliseconds.
    pub max_skew_ms: i64,
    /// The longest envelope lifetime [`Agent::open`] accepts, in milliseconds.
    pub max_lifetime_ms: i64,
    /// Envelopes remembered against replay (fail closed when full of unexpired ones).
    pub replay_cache_capacity: usize,
    /// Other identities' verified key event logs kept in memory.
    pub resolution_cache_capacity: usize,
    /// How long a cached key event log is used before it is fetched again; this bounds how long
    /// a key rotated away elsewhere can still be accepted here.
    pub resolution_cache_ttl: Duration,
    /// The node's DID, if known out of band. Without it the first answer of `GetNodeInfo` is
    /// trusted for the node's identity (trust on first use); everything it signs is then
    /// verified against that identity's key event log.
    pub pinned_node_did: Option<String>,
    /// How long [`Agent::verify_inclusion`] waits for a checkpoint that covers a fresh event.
    pub inclusion_wait: Duration,
    /// How long [`Agent::open`] reuses a sender's verified trust level (never past the trust
    /// proof's expiry); this bounds how stale a level reported with an envelope can be. The
    /// number of senders kept is [`AgentOptions::resolution_cache_capacity`].
    pub trust_cache_ttl: Duration,
    /// A k-of-n witness policy (docs/protocol.md §E5): when set, a checkpoint counts only
    /// with valid cosignatures from at least its quorum of witnesses, and one below is refused
    /// with `WITNESS_QUORUM_NOT_MET` (nothing is kept). `None` (the default) trusts the node's
    /// own signature lines and this agent's consistency checks alone.
    pub witnesses: Option<atp_core::witness::WitnessPolicy>,
}

impl std::fmt::Debug for AgentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentOptions")
            .field("node", &self.node)
            .field("home", &self.home)
            .field("key_passphrase", &self.key_passphrase.as_ref().map(|_| "<set>"))
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl AgentOptions {
    /// The defaults for the node at `endpoints`: one URL, or several separated by commas (the
    /// nodes of a cluster), over which calls take turns; an endpoint that fails is passed over
    /// for [`NodeOptions::unhealthy_for`].
    pub fn new(endpoints: &str) -> Self {
        let mut node = NodeOptions::new("");
        node.endpoints = endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        AgentOptions {
            node,
            home: None,
            key_passphrase: None,
            services: Vec::new(),
            envelope_lifetime_ms: 120_000,
            max_skew_ms: envelope::DEFAULT_MAX_SKEW_MS,
            max_lifetime_ms: envelope::DEFAULT_MAX_LIFETIME_MS,
            replay_cache_capacity: 100_000,
            resolution_cache_capacity: 1024,
            resolution_cache_ttl: Duration::from_secs(60),
            pinned_node_did: None,
            inclusion_wait: Duration::from_secs(15),
            trust_cache_ttl: Duration::from_secs(60),
            witnesses: None,
        }
    }

    /// [`AgentOptions::new`] plus the environment: `ATP_HOME`, `ATP_TLS_CA` (a PEM file of the
    /// nodes' CA), `ATP_KEY_PASSPHRASE` and `ATP_WITNESSES` (a witness policy file,
    /// [`atp_core::witness::WitnessPolicy::parse`]).
    pub fn from_env(endpoints: &str) -> Result<Self> {
        let mut options = AgentOptions::new(endpoints);
        if let Some(path) = std::env::var_os("ATP_TLS_CA").filter(|p| !p.is_empty()) {
            let pem = std::fs::read(&path).map_err(|e| Error::InvalidEndpoint {
                endpoint: endpoints.to_owned(),
                detail: format!("reading ATP_TLS_CA {}: {e}", PathBuf::from(&path).display()),
            })?;
            options.node.ca_certificate_pem = Some(pem);
        }
        if let Some(path) = std::env::var_os("ATP_WITNESSES").filter(|p| !p.is_empty()) {
            options.witnesses = Some(read_witness_policy(std::path::Path::new(&path))?);
        }
        if let Ok(pass) = std::env::var("ATP_KEY_PASSPHRASE")
            && !pass.is_empty()
        {
            options.key_passphrase = Some(Zeroizing::new(pass.into_bytes()));
        }
        Ok(options)
    }
}

/// Reads a witness policy file (at most 64 KiB).
pub fn read_witness_policy(path: &std::path::Path) -> Result<atp_core::witness::WitnessPolicy> {
    use std::io::Read as _;
    const MAX_POLICY_BYTES: u64 = 64 * 1024;
    let invalid = |detail: String| {
        Error::InvalidArgument(format!("witness policy {}: {detail}", path.display()))
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_POLICY_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| invalid(e.to_string()))?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(invalid("larger than 64 KiB".into()));
    }
    Ok(atp_core::witness::WitnessPolicy::parse(&text)?)
}

/// A verified envelope: what [`Agent::open`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The sender's DID; its composite signature verified under the key its log names.
    pub sender: String,
    /// The sequence number of the sender's KEL event that established the signing key.
    pub sender_key_seq: u64,
    /// The payload.
    pub payload: Vec<u8>,
    /// The payload's content type.
    pub content_type: String,
    /// The recipients, in envelope order.
    pub recipients: Vec<String>,
    /// Issue time, Unix milliseconds.
    pub issued_at: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at: i64,
    /// The sender's trust level, 0 (UNKNOWN) to 4 (PRIVILEGED), from a trust proof of the node
    /// verified here (cached within [`AgentOptions::trust_cache_ttl`] and the proof's validity);
    /// `None` when the node has not computed trust yet or does not serve it.
    pub sender_trust_level: Option<u8>,
}

/// A log inclusion that the SDK verified itself: the event's leaf is in the tree whose root a
/// checkpoint signed by the node's key (both lines) commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedInclusion {
    /// The leaf's index.
    pub leaf_index: u64,
    /// The RFC 9162 leaf hash.
    pub leaf_hash: [u8; 32],
    /// The verified checkpoint the proof is against.
    pub checkpoint: Checkpoint,
}

/// What the SDK knows about the node, verified against the node's own KEL.
#[derive(Clone, Debug)]
struct NodeIdentity {
    did: String,
    log_origin: String,
    ed25519: VerifierKey,
    mldsa65: VerifierKey,
    /// The node's key event log, verified: it authenticates log evidence offline.
    kel: Vec<SignedEvent>,
}

/// The agent's own identity: its log and its two keys.
struct Own {
    events: Vec<SignedEvent>,
    state: KelState,
    current: Arc<SigningKey>,
    /// The committed next key; `None` once deactivated.
    next: Option<Arc<SigningKey>>,
}

/// A key event log that verified, shared with the cache.
type VerifiedLog = Arc<Vec<SignedEvent>>;

/// A bounded, time-limited cache of other identities' verified logs.
struct KelCache {
    entries: Mutex<HashMap<String, (Instant, VerifiedLog)>>,
    capacity: usize,
    ttl: Duration,
}

impl KelCache {
    fn get(&self, did: &str) -> Option<Arc<Vec<SignedEvent>>> {
        let map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(did).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, e)| e.clone())
    }

    fn put(&self, did: &str, events: Arc<Vec<SignedEvent>>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(did) {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.capacity
                && let Some(oldest) =
                    map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(did.to_owned(), (Instant::now(), events));
    }
}

/// An ATP agent: a `did:atp` identity whose private keys stay in `$ATP_HOME`, connected to a
/// node.
///
/// ```no_run
/// # async fn demo(sealed_from_peer: Vec<u8>) -> Result<(), atp::Error> {
/// let agent = atp::Agent::connect("http://127.0.0.1:7443", "billing-bot").await?;
/// let sealed = agent.seal("did:atp:zQm…recipient…", b"invoice #42 approved")?;
/// let opened = agent.open(&sealed_from_peer).await?;
/// println!("{} says {:?}", opened.sender, opened.payload);
/// # Ok(()) }
/// ```
pub struct Agent {
    name: String,
    dir: AgentDir,
    node: NodeClient,
    own: RwLock<Own>,
    /// Serialises the operations that change the agent's own log.
    writer: tokio::sync::Mutex<()>,
    kels: KelCache,
    replay: InMemoryReplayCache,
    options: AgentOptions,
    node_identity: tokio::sync::Mutex<Option<NodeIdentity>>,
    checkpoint: tokio::sync::Mutex<Option<log::SeenCheckpoint>>,
    pub(crate) trust_levels: crate::trust_cache::TrustLevelCache,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("did", &self.did())
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

const MAX_KEL_PAGES: usize = 64;

impl Agent {
    /// Connects to the node at `endpoint` as the agent `name`: loads its keys from
    /// `$ATP_HOME/agents/<name>` (default `~/.atp`), or on first use creates them, with the
    /// inception event and a pre-rotation commitment to the next key, and registers the
    /// `did:atp` with the node. `endpoint` may list several URLs separated by commas
    /// (the nodes of a cluster: calls take turns over them). Also reads `ATP_TLS_CA` and `ATP_KEY_PASSPHRASE` ([`AgentOptions::from_env`]).
    pub async fn connect(endpoint: &str, name: &str) -> Result<Agent> {
        Agent::connect_with(AgentOptions::from_env(endpoint)?, name).await
    }

    /// [`Agent::connect`] with explicit options.
    pub async fn connect_with(options: AgentOptions, name: &str) -> Result<Agent> {
        let home = match &options.home {
            Some(h) => h.clone(),
            None => default_home()?,
        };
        let dir = AgentDir::new(&home, name, options.key_passphrase.clone())?;
        let node = NodeClient::new(&options.node)?;
        let own = if dir.exists() { load_own(&dir)? } else { create_own(&dir, &options.services)? };
        let agent = Agent {
            name: name.to_owned(),
            dir,
            node,
            own: RwLock::new(own),
            writer: tokio::sync::Mutex::new(()),
            kels: KelCache {
                entries: Mutex::new(HashMap::new()),
                capacity: options.resolution_cache_capacity,
                ttl: options.resolution_cache_ttl,
            },
            replay: InMemoryReplayCache::new(options.replay_cache_capacity),
            trust_levels: crate::trust_cache::TrustLevelCache::new(
                options.resolution_cache_capacity,
                options.trust_cache_ttl,
            ),
            options,
            node_identity: tokio::sync::Mutex::new(None),
            checkpoint: tokio::sync::Mutex::new(None),
        };
        agent.sync_with_node().await?;
        Ok(agent)
    }

    /// The agent's name (its directory under `$ATP_HOME/agents`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The agent's `did:atp`.
    pub fn did(&self) -> String {
        self.read_own().state.did.clone()
    }

    /// The verified state of the agent's own key event log.
    pub fn state(&self) -> KelState {
        self.read_own().state.clone()
    }

    /// The agent's own key event log.
    pub fn key_event_log(&self) -> Vec<SignedEvent> {
        self.read_own().events.clone()
    }

    /// The agent's directory (keys and log).
    pub fn home_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The node endpoints in use.
    pub fn endpoints(&self) -> Vec<String> {
        self.node.urls()
    }

    /// The endpoints passed over now because a call to them failed (unreachable, unavailable
    /// or too slow) less than [`NodeOptions::unhealthy_for`] ago.
    pub fn unhealthy_endpoints(&self) -> Vec<String> {
        self.node.unhealthy()
    }

    /// Sends `authorization: Bearer <token>` with later calls (an admin token, or a session
    /// token from [`Agent::authenticate`]); `None` stops it.
    pub fn set_bearer_token(&self, token: Option<&str>) {
        self.node.set_bearer(token);
    }

    fn read_own(&self) -> std::sync::RwLockReadGuard<'_, Own> {
        self.own.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_own(&self) -> std::sync::RwLockWriteGuard<'_, Own> {
        self.own.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- Sealing and opening --------------------------------------------------------------

    /// Seals `payload` for `recipient`: a composite-signed envelope (docs/protocol.md §B4), as
    /// wire bytes. Purely local.
    pub fn seal(&self, recipient: &str, payload: &[u8]) -> Result<Vec<u8>> {
        self.seal_to(&[recipient], DEFAULT_CONTENT_TYPE, payload)
    }

    /// Seals `payload` for several recipients with a content type.
    pub fn seal_to(
        &self,
        recipients: &[&str],
        content_type: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>> {
        let own = self.read_own();
        if own.state.deactivated {
            return Err(Error::Deactivated { did: own.state.did.clone() });
        }
        let now = now_ms();
        let lifetime =
            self.options.envelope_lifetime_ms.clamp(1, self.options.max_lifetime_ms.max(1));
        let env = Envelope::new(
            &own.state.did,
            own.state.key_sequence,
            recipients.iter().map(|r| (*r).to_owned()).collect(),
            now,
            now.saturating_add(lifetime),
            content_type,
            payload.to_vec(),
        )?;
        Ok(env.seal(&own.current)?.to_bytes()?)
    }

    /// Opens an envelope addressed to this agent. Everything is verified locally: the
    /// structure, the lifetime and time window, the audience, the sender's key (from the
    /// sender's key event log, fetched from the node, verified here, and cached within bounds),
    /// its validity at the issue time, the composite signature (both components), and replay.
    pub async fn open(&self, wire: &[u8]) -> Result<Opened> {
        let sealed = SealedEnvelope::from_bytes(wire)?;
        let me = self.did();
        // The cheap checks first, without the network: a stranger's garbage, an expired
        // envelope or one for someone else costs no lookup.
        let probe = |did: &str, seq: u64| {
            Err(CoreError::EnvelopeUnknownSender { did: did.to_owned(), seq })
        };
        match envelope::verify(&sealed, &self.verify_context(&me, &probe)) {
            Err(CoreError::EnvelopeUnknownSender { .. }) => {}
            Err(e) => return Err(e.into()),
            Ok(()) => return Err(Error::InvalidArgument("internal: probe lookup accepted".into())),
        }
        let sender = sealed.envelope.sender.clone();
        let seq = sealed.envelope.sender_key_seq;
        let mut events = self.cached_kel(&sender).await?;
        if seq >= events.len() as u64 {
            // The sender may have rotated since the log was cached.
            events = self.refresh_kel(&sender).await?;
        }
        // Before the verification that records the envelope against replay, so that a failed
        // lookup leaves the envelope openable on a retry.
        let sender_trust_level = self.sender_trust_level(&sender).await?;
        let lookup = |did: &str, seq: u64| key_validity(did, &events, seq);
        envelope::verify(&sealed, &self.verify_context(&me, &lookup))?;
        let env = sealed.envelope;
        Ok(Opened {
            sender: env.sender,
            sender_key_seq: env.sender_key_seq,
            payload: env.payload,
            content_type: env.content_type,
            recipients: env.recipients,
            issued_at: env.issued_at,
            expires_at: env.expires_at,
            sender_trust_level,
        })
    }

    fn verify_context<'a>(
        &'a self,
        me: &'a str,
        lookup: envelope::KeyLookup<'a>,
    ) -> envelope::VerifyContext<'a> {
        let mut ctx = envelope::VerifyContext::new(me, now_ms(), lookup, &self.replay);
        ctx.max_skew_ms = self.options.max_skew_ms;
        ctx.max_lifetime_ms = self.options.max_lifetime_ms;
        ctx
    }

    // ---- Identity lifecycle ---------------------------------------------------------------

    /// Rotates the agent's key: the committed next key becomes current and a new next key is
    /// committed. The rotation is registered with the node before it is used locally.
    pub async fn rotate(&self) -> Result<KelState> {
        let _guard = self.writer.lock().await;
        let (state, next) = {
            let own = self.read_own();
            let next = own
                .next
                .clone()
                .ok_or_else(|| Error::Deactivated { did: own.state.did.clone() })?;
            (own.state.clone(), next)
        };
        let new_next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?;
        // The new next key is on disk before anything commits to it.
        self.dir.store_key(&new_next)?;
        let ts = timestamp(now_ms().max(ts_ms(&state.updated)?));
        let event = kel::rotate(&state, &next, new_next.public_key_ref(), None, &ts)?;
        self.submit(&event).await?;
        let old = {
            let mut own = self.write_own();
            let new_state = KeyEventLog::default().append(&own.state, &event)?;
            own.events.push(event);
            own.state = new_state;
            let old = std::mem::replace(&mut own.current, next);
            own.next = Some(Arc::new(new_next));
            self.dir.write_kel(&own.events)?;
            old
        };
        // The superseded key can no longer sign anything valid; it need not stay on disk.
        self.dir.remove_key(old.public_key_ref());
        Ok(self.state())
    }

    /// Deactivates the identity, finally: signed by the committed next key, registered with
    /// the node. Afterwards the agent can still open and resolve, but no longer seal.
    pub async fn deactivate(&self) -> Result<KelState> {
        let _guard = self.writer.lock().await;
        let (state, next) = {
            let own = self.read_own();
            let next = own
                .next
                .clone()
                .ok_or_else(|| Error::Deactivated { did: own.state.did.clone() })?;
            (own.state.clone(), next)
        };
        let ts = timestamp(now_ms().max(ts_ms(&state.updated)?));
        let event = kel::deactivate(&state, &next, &ts)?;
        self.submit(&event).await?;
        let mut own = self.write_own();
        let new_state = KeyEventLog::default().append(&own.state, &event)?;
        own.events.push(event);
        own.state = new_state;
        own.next = None;
        self.dir.write_kel(&own.events)?;
        Ok(own.state.clone())
    }

    /// Submits one signed event of the agent's own log.
    async fn submit(&self, event: &SignedEvent) -> Result<v1::SubmitEventResponse> {
        let json = event.canonical_bytes()?;
        let node = &self.node;
        let response = node
            .call("SubmitEvent", |ch| {
                let req = node.request(v1::SubmitEventRequest { signed_event_json: json.clone() });
                async move { IdentityServiceClient::new(ch).submit_event(req).await }
            })
            .await?;
        let expected_did = self.did();
        if response.did != expected_did || response.sequence != event.event.s {
            return Err(Error::misbehaved(
                "SubmitEvent",
                format!(
                    "it acknowledged {} #{} for {} #{}",
                    response.did, response.sequence, expected_did, event.event.s
                ),
            ));
        }
        Ok(response)
    }

    /// Registers the local log with the node, or adopts events the node holds beyond it
    /// (a rotation registered just before a crash), after verifying them.
    async fn sync_with_node(&self) -> Result<()> {
        let _guard = self.writer.lock().await;
        let did = self.did();
        let remote = match self.fetch_kel(&did).await {
            Ok(events) => events,
            Err(Error::Rejected { reason: Some(r), .. }) if r == "DID_NOT_FOUND" => Vec::new(),
            Err(e) => return Err(e),
        };
        let local = self.key_event_log();
        for (i, (l, r)) in local.iter().zip(remote.iter()).enumerate() {
            if l.event != r.event {
                return Err(Error::home(
                    self.dir.path(),
                    format!("the node holds another event #{i} for {did} than kel.json (a fork)"),
                ));
            }
        }
        if remote.len() > local.len() {
            // The node is ahead: adopt its (already verified) log if we hold its keys.
            let state = KeyEventLog::default().verify_did(&did, &remote)?;
            let current = Arc::new(self.dir.load_key(&state.current_key)?);
            let next = match &state.next_commitment {
                Some(c) if !state.deactivated => {
                    Some(Arc::new(self.dir.load_key_by_commitment(c, None)?))
                }
                _ => None,
            };
            let mut own = self.write_own();
            *own = Own { events: remote, state, current, next };
            self.dir.write_kel(&own.events)?;
        } else {
            for event in &local[remote.len()..] {
                self.submit(event).await?;
            }
        }
        Ok(())
    }

    // ---- Resolution -----------------------------------------------------------------------

    /// Resolves a DID to its DID document and metadata. For a `did:atp` the SDK fetches the
    /// key event log and builds the document itself from the verified log, rather than trust
    /// the node's rendering; a `did:key` resolves offline.
    pub async fn resolve(&self, did: &str) -> Result<ResolutionResult> {
        let method = atp_core::did::method::method_of(did)?;
        match method.needs() {
            Needs::Nothing => Ok(method.resolve(did, Material::Nothing)?),
            Needs::KeyEventLog => {
                let events = self.refresh_kel(did).await?;
                let state = KeyEventLog::default().verify_did(did, &events)?;
                Ok(method.resolve(did, Material::VerifiedLog(&state))?)
            }
        }
    }

    /// The verified key event log of `did`, fetched from the node now.
    pub async fn key_event_log_of(&self, did: &str) -> Result<Vec<SignedEvent>> {
        atp_core::did::parse_did_atp(did)?;
        Ok(self.refresh_kel(did).await?.as_ref().clone())
    }

    async fn cached_kel(&self, did: &str) -> Result<Arc<Vec<SignedEvent>>> {
        match self.kels.get(did) {
            Some(events) => Ok(events),
            None => self.refresh_kel(did).await,
        }
    }

    async fn refresh_kel(&self, did: &str) -> Result<Arc<Vec<SignedEvent>>> {
        if did == self.did() {
            return Ok(Arc::new(self.key_event_log()));
        }
        let events = Arc::new(self.fetch_kel(did).await?);
        self.kels.put(did, events.clone());
        Ok(events)
    }

    /// Fetches and verifies the whole log of `did`. Anything inconsistent in the node's answer
    /// is [`Error::NodeMisbehaved`].
    pub(crate) async fn fetch_kel(&self, did: &str) -> Result<Vec<SignedEvent>> {
        const OP: &str = "GetKeyEventLog";
        let mut events: Vec<SignedEvent> = Vec::new();
        let node = &self.node;
        for _ in 0..MAX_KEL_PAGES {
            let from = events.len() as u64;
            let page = node
                .call(OP, |ch| {
                    let req = node.request(v1::GetKeyEventLogRequest {
                        did: did.to_owned(),
                        from_sequence: from,
                        page_size: 1000,
                    });
                    async move { IdentityServiceClient::new(ch).get_key_event_log(req).await }
                })
                .await?;
            if page.did != did {
                return Err(Error::misbehaved(OP, format!("answered for {:?}", page.did)));
            }
            if page.event_count > kel::MAX_EVENTS as u64 {
                return Err(Error::misbehaved(OP, format!("claims {} events", page.event_count)));
            }
            if page.events.is_empty() && from < page.event_count {
                return Err(Error::misbehaved(OP, "an empty page before the end of the log"));
            }
            for e in page.events {
                let signed = SignedEvent::from_json(&e.signed_event_json).map_err(|err| {
                    Error::misbehaved(OP, format!("event #{}: {err}", e.sequence))
                })?;
                if e.sequence != events.len() as u64 || signed.event.s != e.sequence {
                    return Err(Error::misbehaved(OP, "events out of sequence"));
                }
                if signed.digest()? != e.event_digest {
                    return Err(Error::misbehaved(
                        OP,
                        format!("event #{} digest mismatch", e.sequence),
                    ));
                }
                events.push(signed);
                if events.len() > kel::MAX_EVENTS {
                    return Err(Error::misbehaved(OP, "too many events"));
                }
            }
            if events.len() as u64 >= page.event_count {
                if events.is_empty() {
                    return Err(Error::misbehaved(OP, "an empty log"));
                }
                KeyEventLog::default()
                    .verify_did(did, &events)
                    .map_err(|e| Error::misbehaved(OP, format!("the log does not verify: {e}")))?;
                return Ok(events);
            }
        }
        Err(Error::misbehaved(OP, "too many pages"))
    }

    // ---- Sessions -------------------------------------------------------------------------

    /// Authenticates to the node by challenge and response (docs/protocol.md Part F): the
    /// node returns a session token bound to this DID and `audience`. The token is returned,
    /// not installed; pass it to [`Agent::set_bearer_token`] to send it with later calls.
    pub async fn authenticate(&self, audience: &str) -> Result<SessionToken> {
        let node_did = self.node_identity().await?.did;
        let did = self.did();
        let node = &self.node;
        let challenge = node
            .call("CreateChallenge", |ch| {
                let req = node.request(v1::CreateChallengeRequest {
                    did: did.clone(),
                    audience: audience.to_owned(),
                });
                async move { MessageServiceClient::new(ch).create_challenge(req).await }
            })
            .await?;
        // Built from what this agent intends (its DID, the node it verified, the audience),
        // never from bytes the node hands over.
        let (message, signature) = {
            let own = self.read_own();
            if own.state.deactivated {
                return Err(Error::Deactivated { did });
            }
            let challenge: [u8; session::CHALLENGE_LEN] =
                challenge.challenge.as_slice().try_into().map_err(|_| {
                    Error::misbehaved("CreateChallenge", "the challenge is not 32 bytes")
                })?;
            let m = session::Authentication {
                did: did.clone(),
                key_seq: own.state.key_sequence,
                node_did: node_did.clone(),
                audience: audience.to_owned(),
                challenge,
            }
            .to_bytes();
            let sig = own.current.sign(&m, SigningContext::Session.as_bytes())?;
            (m, sig)
        };
        let response = node
            .call("Authenticate", |ch| {
                let req = node.request(v1::AuthenticateRequest {
                    authentication: message.clone(),
                    signature: signature.clone(),
                });
                async move { MessageServiceClient::new(ch).authenticate(req).await }
            })
            .await?;
        if response.did != did || response.audience != audience {
            return Err(Error::misbehaved(
                "Authenticate",
                "the token names another DID or audience",
            ));
        }
        Ok(SessionToken {
            token: Zeroizing::new(response.session_token),
            expires_at: response.expires_at_unix_ms,
        })
    }

    pub(crate) fn node(&self) -> &NodeClient {
        &self.node
    }

    pub(crate) fn current_key(&self) -> Result<Arc<SigningKey>> {
        let own = self.read_own();
        if own.state.deactivated {
            return Err(Error::Deactivated { did: own.state.did.clone() });
        }
        Ok(own.current.clone())
    }

    pub(crate) async fn verified_log(&self, did: &str) -> Result<Arc<Vec<SignedEvent>>> {
        self.cached_kel(did).await
    }
}

/// A session token from [`Agent::authenticate`]. `Debug` does not print it.
pub struct SessionToken {
    token: Zeroizing<String>,
    /// When it expires, Unix milliseconds.
    pub expires_at: i64,
}

impl SessionToken {
    /// The token, `b64u(token) "." b64u(signature)`: send it as `authorization: Bearer …`.
    pub fn as_str(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

fn hashes(op: &'static str, raw: &[Vec<u8>]) -> Result<Vec<[u8; 32]>> {
    if raw.len() > 128 {
        return Err(Error::misbehaved(op, "the proof is too long"));
    }
    raw.iter()
        .map(|h| {
            <[u8; 32]>::try_from(h.as_slice())
                .map_err(|_| Error::misbehaved(op, "a proof hash is not 32 bytes"))
        })
        .collect()
}

fn ts_ms(ts: &str) -> Result<i64> {
    Ok(kel::parse_timestamp(ts)?)
}

/// The key that event `seq` of a verified log established, and when it was valid.
fn key_validity(did: &str, events: &[SignedEvent], seq: u64) -> Result<KeyValidity, CoreError> {
    let unknown = || CoreError::EnvelopeUnknownSender { did: did.to_owned(), seq };
    let i = usize::try_from(seq).map_err(|_| unknown())?;
    let event = &events.get(i).ok_or_else(unknown)?.event;
    if event.t == EventType::Deactivation {
        return Err(unknown());
    }
    let key = event.k.as_ref().ok_or_else(unknown)?.to_public_key()?;
    let valid_until = match events.get(i + 1) {
        Some(next) => Some(kel::parse_timestamp(&next.event.ts)?),
        None => None,
    };
    Ok(KeyValidity { key, valid_from: kel::parse_timestamp(&event.ts)?, valid_until })
}

fn create_own(dir: &AgentDir, services: &[Service]) -> Result<Own> {
    dir.create_dirs()?;
    let current = SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?;
    let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?;
    let icp =
        kel::incept(&current, next.public_key_ref(), services.to_vec(), &timestamp(now_ms()))?;
    dir.store_key(&current)?;
    dir.store_key(&next)?;
    let events = vec![icp];
    let state = KeyEventLog::default().verify(&events)?;
    dir.write_kel(&events)?;
    Ok(Own { events, state, current: Arc::new(current), next: Some(Arc::new(next)) })
}

fn load_own(dir: &AgentDir) -> Result<Own> {
    let events = dir.read_kel()?;
    let state = KeyEventLog::default()
        .verify(&events)
        .map_err(|e| Error::home(dir.path(), format!("kel.json does not verify: {e}")))?;
    let current = Arc::new(dir.load_key(&state.current_key)?);
    let next = match &state.next_commitment {
        Some(c) if !state.deactivated => Some(Arc::new(dir.load_key_by_commitment(c, None)?)),
        _ => None,
    };
    Ok(Own { events, state, current, next })
}
