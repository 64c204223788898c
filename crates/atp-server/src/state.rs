//! [`NodeState`]: what every service and route shares, behind an [`AppState`] (`Arc`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atp_core::envelope::{InMemoryReplayCache, ReplayCache};
use atp_core::kel::{KelState, KeyEventLog};
use atp_crypto::SigningKey;
use atp_store::{Store, StoredEvent};

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64};

use atp_core::trust_proof::TrustClaims;
use atp_trust::{Snapshot, TrustConfig};

use crate::error::{Result, ServerError};
use crate::extensions::Extensions;
use crate::limits::Limits;

/// The shared state, cheap to clone.
pub type AppState = Arc<NodeState>;

/// The node's clock: Unix milliseconds (UTC). Tests pass a fixed or stepped clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
    })
}

/// How the server runs: its [`Limits`] and the schedules of its background jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// The enforced limits (reported by `AdminService.GetNodeInfo`).
    pub limits: Limits,
    /// How often the checkpointer looks for log growth.
    pub checkpoint_interval: Duration,
    /// How the cached verified key event logs stay equal to the stored ones.
    pub kel_coherence: KelCoherence,
    /// How often the trust job runs (docs/trust.md, [`crate::trust_job`]). Zero schedules no
    /// job: only `crate::trust::recompute_now` computes (tests).
    pub trust_recompute_interval: Duration,
    /// The lifetime of the trust proofs GetTrust issues, in seconds (1 to one day).
    pub trust_proof_ttl_secs: i64,
    /// Set when the store is shared by the nodes of a cluster: checkpoints are then signed
    /// only by the holder of the checkpoint lease ([`crate::checkpointer`]), and trust is
    /// computed only by the holder of the trust lease, which stores the snapshot for the other
    /// nodes ([`crate::trust_job`]). `None`: this node is the only one, signs whenever the log
    /// grew and computes its own trust snapshot.
    pub singleton_lease: Option<SingletonLease>,
    /// Set when the store is shared by the nodes of a cluster: one-time values are recorded in
    /// the store too, so that a replay to another node is refused ([`crate::cluster`]).
    pub replay_through_store: bool,
    /// How long the server goes on serving after its shutdown began, with health already
    /// NOT_SERVING, so that load balancers move traffic away first ([`crate::health`]). Zero
    /// for a node without a load balancer.
    pub drain_grace: Duration,
    /// The witnesses asked to cosign each new checkpoint ([`crate::witnesses`]); empty: none.
    pub witnesses: Vec<crate::witnesses::WitnessTarget>,
}

/// How a node's cached key event logs ([`KelCache`]) stay equal to its store's (docs/ha.md,
/// "Cache coherence").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KelCoherence {
    /// This process is the only writer of its store (the embedded SQLite store): a cached log
    /// stays valid until this process appends to it, and is served without a store round trip.
    ExclusiveWriter,
    /// Several nodes write: every read re-checks the stored head first (one point read).
    HeadCheck,
    /// Several nodes write, and the store reports their appends
    /// ([`atp_store::Store::kel_change_feed`], [`crate::cluster::spawn_kel_feed`]): a cached
    /// log is served without a check while the feed has proved, within `max_staleness`, that
    /// it reported every change; otherwise reads re-check the head, as with
    /// [`KelCoherence::HeadCheck`]. So an answer from the cache misses no change that
    /// committed more than `max_staleness` before it.
    ChangeFeed {
        /// The longest a cached log may lag behind the store.
        max_staleness: Duration,
    },
}

/// How a node of a cluster competes for the leases of the cluster's singleton jobs: the
/// checkpoint signer's, with [`SingletonLease::ttl`], and the trust computation's, which lasts
/// three trust recompute intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingletonLease {
    /// This process's name as a lease holder: unique among the processes of the cluster (the
    /// nodes share one identity, so it is not the DID).
    pub holder: String,
    /// How long the checkpoint lease lasts unless renewed; the holder renews it every checkpoint
    /// interval, so it must be longer than that. After the holder dies, another node signs
    /// within this time plus one interval.
    pub ttl: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            limits: Limits::default(),
            checkpoint_interval: Duration::from_secs(1),
            kel_coherence: KelCoherence::ExclusiveWriter,
            trust_recompute_interval: Duration::from_secs(30),
            trust_proof_ttl_secs: 300,
            singleton_lease: None,
            replay_through_store: false,
            drain_grace: Duration::ZERO,
            witnesses: Vec::new(),
        }
    }
}

/// A verified key event log held in the [`KelCache`].
#[derive(Debug)]
pub struct CachedKel {
    /// The stored events, in order.
    pub events: Vec<StoredEvent>,
    /// The state after the last event.
    pub state: KelState,
    /// The `Resolve` answer for the latest version, computed once per cached head.
    pub latest_resolution: std::sync::OnceLock<atp_grpc::v1::ResolveResponse>,
}

/// How many epochs the [`KelCache`] keeps: DIDs share one by a hash of their text.
const EPOCH_STRIPES: usize = 64;

/// A bounded cache of verified key event logs, keyed by DID.
///
/// How an entry is served depends on the [`KelCoherence`]. With an exclusive writer it is
/// served as it is: every append of this process goes through [`KelCache::invalidate`], and a
/// log read from the store is only cached when no append happened while it was being read (the
/// `epoch` check), so a stale log can never enter the cache. With a change feed, every append
/// of every node goes through [`KelCache::invalidate`] as well, with the same epoch check, and
/// an entry is served unchecked only while the feed is caught up. Otherwise every read checks
/// the entry against the store's head first. The cache only saves work: it never answers
/// differently from the store, beyond the staleness the coherence allows.
#[derive(Debug)]
pub struct KelCache {
    capacity: usize,
    coherence: KelCoherence,
    /// Bumped by every invalidation of a DID of the stripe (and all of them by
    /// [`KelCache::forget_all`]): a read of a log is cached only if its stripe's epoch did not
    /// move while it was read. Striped, so that appends to other DIDs (many a second in a
    /// cluster) do not keep refusing every fill.
    epochs: [std::sync::atomic::AtomicU64; EPOCH_STRIPES],
    map: Mutex<HashMap<String, Arc<CachedKel>>>,
    /// The origin of `caught_up`.
    origin: std::time::Instant,
    /// With a change feed: 1 + the nanoseconds from `origin` to the latest instant before which
    /// every change was reported; 0 while none is known.
    caught_up: std::sync::atomic::AtomicU64,
}

impl KelCache {
    /// A cache of at most `capacity` logs (0 disables it).
    pub fn new(capacity: usize, coherence: KelCoherence) -> Self {
        KelCache {
            capacity,
            coherence,
            epochs: std::array::from_fn(|_| std::sync::atomic::AtomicU64::new(0)),
            map: Mutex::new(HashMap::new()),
            origin: std::time::Instant::now(),
            caught_up: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How the cache stays coherent.
    pub fn coherence(&self) -> KelCoherence {
        self.coherence
    }

    fn get(&self, did: &str) -> Option<Arc<CachedKel>> {
        self.map.lock().ok()?.get(did).cloned()
    }

    fn stripe(did: &str) -> usize {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(did);
        usize::try_from(hash % EPOCH_STRIPES as u64).unwrap_or(0)
    }

    /// The epoch a read of `did` starts from ([`KelCache::put`]).
    fn epoch_of(&self, did: &str) -> u64 {
        self.epochs[Self::stripe(did)].load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether a cached entry may be served without checking the store's head now.
    fn serves_unchecked(&self) -> bool {
        match self.coherence {
            KelCoherence::ExclusiveWriter => true,
            KelCoherence::HeadCheck => false,
            KelCoherence::ChangeFeed { max_staleness } => {
                match self.caught_up.load(std::sync::atomic::Ordering::SeqCst) {
                    0 => false,
                    at => (self.origin + Duration::from_nanos(at - 1)).elapsed() <= max_staleness,
                }
            }
        }
    }

    /// The change feed reported every change committed before `at`.
    pub fn caught_up(&self, at: std::time::Instant) {
        // The feed starts after the cache: a proof older than the cache proves nothing it needs
        // (and rounding it up to `origin` would make it look newer than it is).
        let Some(since) = at.checked_duration_since(self.origin) else { return };
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1);
        self.caught_up.fetch_max(nanos + 1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Changes may have been missed: forgets every entry, refuses the reads in flight, and
    /// serves nothing unchecked until the feed catches up again.
    pub fn forget_all(&self) {
        if let Ok(mut map) = self.map.lock() {
            for epoch in &self.epochs {
                epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            self.caught_up.store(0, std::sync::atomic::Ordering::SeqCst);
            map.clear();
        }
    }

    /// Caches `kel`, read from the store after [`KelCache::epoch_of`] returned `read_epoch`,
    /// unless an append to its stripe happened since (the log may then already be stale).
    fn put(&self, did: &str, kel: Arc<CachedKel>, read_epoch: u64) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if self.epoch_of(did) != read_epoch {
                return;
            }
            if map.len() >= self.capacity && !map.contains_key(did) {
                // Simple and bounded: drop an arbitrary entry.
                if let Some(k) = map.keys().next().cloned() {
                    map.remove(&k);
                }
            }
            map.insert(did.to_owned(), kel);
        }
    }

    /// Forgets `did`; called after every append to its log (and after a lost race).
    pub fn invalidate(&self, did: &str) {
        if let Ok(mut map) = self.map.lock() {
            self.epochs[Self::stripe(did)].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            map.remove(did);
        }
    }
}

/// Whether the node is draining, and a wake-up for the health task when that changes.
#[derive(Debug, Default)]
pub struct Drain {
    pub(crate) draining: std::sync::atomic::AtomicBool,
    pub(crate) changed: tokio::sync::Notify,
}

impl Drain {
    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The caches shared by the services.
pub struct Caches {
    /// Verified key event logs.
    pub kel: KelCache,
    /// The envelope replay cache (bounded; fails closed when full).
    pub replay: Arc<dyn ReplayCache>,
    /// Consumed presentation challenges, keyed by (domain, challenge digest); bounded like
    /// the replay cache.
    pub presentation_challenges: Arc<dyn ReplayCache>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").field("kel", &self.kel).finish_non_exhaustive()
    }
}

impl Caches {
    /// Caches sized by the settings' limits.
    pub fn new(settings: &ServerSettings) -> Self {
        let limits = &settings.limits;
        Caches {
            kel: KelCache::new(limits.resolution_cache_capacity, settings.kel_coherence),
            replay: Arc::new(InMemoryReplayCache::new(limits.replay_cache_capacity)),
            presentation_challenges: Arc::new(InMemoryReplayCache::new(
                limits.replay_cache_capacity,
            )),
        }
    }
}

/// Everything the services share.
pub struct NodeState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The node's current composite (ML-DSA-65 + Ed25519) signing key.
    pub node_key: Arc<SigningKey>,
    /// The node's `did:atp`.
    pub node_did: String,
    /// The transparency log's origin (first line of every checkpoint).
    pub log_origin: String,
    /// The base URL of the node's HTTP routes as published (e.g. in status list URLs).
    pub public_base_url: String,
    /// The node software version, e.g. `0.1.0`.
    pub node_version: String,
    /// The enforced limits and the background jobs' schedules.
    pub settings: ServerSettings,
    /// The extension seam.
    pub extensions: Extensions,
    /// The clock.
    pub clock: Clock,
    /// The caches.
    pub caches: Caches,
    /// Notified whenever the log grew. Not awaited yet: the checkpointer signs on its
    /// interval ([`ServerSettings::checkpoint_interval`]).
    pub log_grew: tokio::sync::Notify,
    /// The key event log verifier (limits, crypto provider).
    pub kel_verifier: KeyEventLog,
    /// The trust engine's configuration and last snapshot.
    pub trust: TrustState,
    /// Whether the node is draining (health NOT_SERVING).
    pub drain: Drain,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("node_did", &self.node_did)
            .field("log_origin", &self.log_origin)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl NodeState {
    /// A state with the system clock, default caches and the default KEL verifier.
    pub fn new(
        store: Arc<dyn Store>,
        node_key: Arc<SigningKey>,
        node_did: String,
        log_origin: String,
        public_base_url: String,
        settings: ServerSettings,
        extensions: Extensions,
    ) -> Self {
        let caches = Caches::new(&settings);
        NodeState {
            store,
            node_key,
            node_did,
            log_origin,
            public_base_url,
            node_version: env!("CARGO_PKG_VERSION").to_owned(),
            settings,
            extensions,
            clock: system_clock(),
            caches,
            log_grew: tokio::sync::Notify::new(),
            kel_verifier: KeyEventLog::new(),
            trust: TrustState::default(),
            drain: Drain::default(),
        }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// The verified key event log of `did`, or `None` when the node holds none, for a read:
    /// served from the cache within the staleness its [`KelCoherence`] allows, otherwise when
    /// its head still matches the store's. Writes and authentication use
    /// [`NodeState::load_kel_exact`].
    pub async fn load_kel(&self, did: &str) -> Result<Option<Arc<CachedKel>>> {
        self.load_kel_from(did, self.caches.kel.serves_unchecked()).await
    }

    /// As [`NodeState::load_kel`], but never stale: what an append is judged against, and what
    /// decides whether a key may still sign for its DID (a login, a status-list update, hosting
    /// a list). In a cluster, one head check per call.
    pub async fn load_kel_exact(&self, did: &str) -> Result<Option<Arc<CachedKel>>> {
        let exclusive = self.caches.kel.coherence() == KelCoherence::ExclusiveWriter;
        self.load_kel_from(did, exclusive).await
    }

    async fn load_kel_from(&self, did: &str, unchecked: bool) -> Result<Option<Arc<CachedKel>>> {
        let cache = &self.caches.kel;
        if unchecked && let Some(cached) = cache.get(did) {
            return Ok(Some(cached));
        }
        let read_epoch = cache.epoch_of(did);
        let Some(identity) = self.store.get_identity(did).await? else {
            return Ok(None);
        };
        if let Some(cached) = self.caches.kel.get(did)
            && cached.state.sequence == identity.sequence
            && cached.state.last_digest == identity.digest
        {
            return Ok(Some(cached));
        }
        let events = self.store.get_kel(did).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let signed: Vec<_> = events.iter().map(|e| e.event.clone()).collect();
        let state = self.kel_verifier.verify_did(did, &signed).map_err(|e| {
            ServerError::internal(format!("stored key event log of {did} does not verify: {e}"))
        })?;
        let kel = Arc::new(CachedKel { events, state, latest_resolution: Default::default() });
        cache.put(did, kel.clone(), read_epoch);
        Ok(Some(kel))
    }
}

/// The trust engine's state in the node: its configuration and the last snapshot.
pub struct TrustState {
    /// The model's constants (docs/trust.md).
    pub config: TrustConfig,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    pub(crate) job: tokio::sync::Mutex<()>,
    pub(crate) scheduled: AtomicBool,
    /// The revision of the stored snapshot this node serves or stored (0: none), in a cluster.
    pub(crate) loaded_revision: AtomicU64,
    pub(crate) recorded_credentials: std::sync::Mutex<HashSet<[u8; 32]>>,
    pub(crate) proofs: std::sync::Mutex<HashMap<String, CachedProof>>,
}

/// A signed trust proof kept for reuse while it states exactly the current result and has at
/// least half its lifetime left.
pub(crate) struct CachedProof {
    pub(crate) claims: TrustClaims,
    pub(crate) issued_secs: i64,
    pub(crate) ttl_secs: i64,
    pub(crate) json: Arc<Vec<u8>>,
}

impl std::fmt::Debug for TrustState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustState").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Default for TrustState {
    fn default() -> Self {
        Self::new(TrustConfig::default())
    }
}

impl TrustState {
    /// No snapshot yet, with `config`.
    pub fn new(config: TrustConfig) -> Self {
        TrustState {
            config,
            snapshot: RwLock::new(None),
            job: tokio::sync::Mutex::new(()),
            scheduled: AtomicBool::new(false),
            loaded_revision: AtomicU64::new(0),
            recorded_credentials: std::sync::Mutex::new(HashSet::new()),
            proofs: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The last computed snapshot, if any.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn publish(&self, snapshot: Arc<Snapshot>) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use atp_crypto::AlgorithmId;

    fn cached_kel() -> (String, Arc<CachedKel>) {
        let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let icp =
            atp_core::kel::incept(&key, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z")
                .unwrap();
        let state = atp_core::kel::verify_log(std::slice::from_ref(&icp)).unwrap();
        let event = StoredEvent {
            event: icp,
            sequence: 0,
            digest: state.last_digest.clone(),
            log_index: 0,
        };
        let did = state.did.clone();
        (
            did,
            Arc::new(CachedKel {
                events: vec![event],
                state,
                latest_resolution: Default::default(),
            }),
        )
    }

    /// A log read before an append to it is not cached: it may already be stale. An append to
    /// a DID of another stripe does not refuse it.
    #[test]
    fn a_log_read_across_an_append_is_not_cached() {
        let cache = KelCache::new(10, KelCoherence::ExclusiveWriter);
        let (did, kel) = cached_kel();
        let read_epoch = cache.epoch_of(&did);
        cache.invalidate(&did);
        cache.put(&did, kel.clone(), read_epoch);
        assert!(cache.get(&did).is_none());
        let other = (0..)
            .map(|i| format!("did:atp:other-{i}"))
            .find(|o| KelCache::stripe(o) != KelCache::stripe(&did))
            .unwrap();
        let read_epoch = cache.epoch_of(&did);
        cache.invalidate(&other);
        cache.put(&did, kel.clone(), read_epoch);
        assert!(cache.get(&did).is_some(), "another stripe's append does not refuse the fill");
        cache.invalidate(&did);
        cache.put(&did, kel.clone(), cache.epoch_of(&did));
        assert!(cache.get(&did).is_some());
        // An append to the DID drops its entry.
        cache.invalidate(&did);
        assert!(cache.get(&did).is_none());
        // A disabled cache keeps nothing.
        let off = KelCache::new(0, KelCoherence::ExclusiveWriter);
        off.put(&did, kel, off.epoch_of(&did));
        assert!(off.get(&did).is_none());
    }

    /// With a change feed, entries are served unchecked only while the feed has caught up
    /// within the bound, and a gap forgets every entry and the catching up.
    #[test]
    fn a_change_feed_cache_serves_unchecked_only_while_caught_up() {
        let bound = Duration::from_secs(60);
        let cache = KelCache::new(10, KelCoherence::ChangeFeed { max_staleness: bound });
        assert!(!cache.serves_unchecked(), "nothing proved yet");
        cache.caught_up(std::time::Instant::now());
        assert!(cache.serves_unchecked());
        // An older proof does not move the mark back.
        cache.caught_up(cache.origin);
        assert!(cache.serves_unchecked(), "the newer proof stands");

        let short = Duration::from_millis(10);
        let stale = KelCache::new(10, KelCoherence::ChangeFeed { max_staleness: short });
        stale.caught_up(std::time::Instant::now());
        assert!(stale.serves_unchecked());
        std::thread::sleep(short * 3);
        assert!(!stale.serves_unchecked(), "the proof is older than the bound");
        let before = KelCache::new(10, KelCoherence::ChangeFeed { max_staleness: bound });
        before.caught_up(before.origin.checked_sub(Duration::from_millis(1)).unwrap());
        assert!(!before.serves_unchecked(), "a proof older than the cache proves nothing");

        let (did, kel) = cached_kel();
        let read_epoch = cache.epoch_of(&did);
        cache.put(&did, kel.clone(), read_epoch);
        assert!(cache.get(&did).is_some());
        let in_flight = cache.epoch_of(&did);
        cache.forget_all();
        assert!(cache.get(&did).is_none(), "a gap forgets every entry");
        assert!(!cache.serves_unchecked(), "and the catching up");
        cache.put(&did, kel, in_flight);
        assert!(cache.get(&did).is_none(), "a read begun before the gap is not cached");

        let checked = KelCache::new(10, KelCoherence::HeadCheck);
        checked.caught_up(std::time::Instant::now());
        assert!(!checked.serves_unchecked(), "a head-checking cache never serves unchecked");
    }
}
