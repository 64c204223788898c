//! Shared test helpers: temporary data directories and real `did:atp` identities.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use atp_core::accepted::AcceptedEvent;
use atp_core::kel::{self, KelState, KeyEventLog, Service, SignedEvent};
use atp_crypto::{AlgorithmId, SigningKey};

/// A unique directory under the system temp dir, removed on drop.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join(format!("atp-store-test-{name}-{}-{nanos}-{n}", std::process::id()));
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fresh composite ML-DSA-65 + Ed25519 keys.
pub fn keys(n: usize) -> Vec<SigningKey> {
    (0..n).map(|_| SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap()).collect()
}

pub const T0: &str = "2026-01-01T00:00:00Z";

/// A timestamp `i` seconds after T0 (i < 86400).
pub fn ts(i: u32) -> String {
    format!("2026-01-01T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60)
}

/// An identity under construction: the events so far and the verified state.
#[derive(Clone)]
pub struct Ident {
    pub did: String,
    pub events: Vec<SignedEvent>,
    pub state: KelState,
}

/// An inception by `keys[0]` committing to `keys[1]`; `tag` makes the DID unique.
pub fn incept(keys: &[SigningKey], tag: &str) -> Ident {
    let svc = vec![Service::new("#agent", "AgentEndpoint", &format!("https://{tag}.example"))];
    let icp = kel::incept(&keys[0], keys[1].public_key_ref(), svc, T0).unwrap();
    let state = KeyEventLog::default().verify(std::slice::from_ref(&icp)).unwrap();
    Ident { did: state.did.clone(), events: vec![icp], state }
}

/// The rotation after `id`'s head, revealing `keys[k]` and committing to `keys[next]`; `tag`
/// goes into the service list, so different tags give different (competing) events.
pub fn rotation(id: &Ident, keys: &[SigningKey], k: usize, next: usize, tag: &str) -> SignedEvent {
    let svc = vec![Service::new("#agent", "AgentEndpoint", &format!("https://{tag}.example"))];
    let t = ts(u32::try_from(id.state.sequence).unwrap() + 1);
    kel::rotate(&id.state, &keys[k], keys[next].public_key_ref(), Some(svc), &t).unwrap()
}

/// The deactivation after `id`'s head, by `keys[k]`.
pub fn deactivation(id: &Ident, keys: &[SigningKey], k: usize) -> SignedEvent {
    let t = ts(u32::try_from(id.state.sequence).unwrap() + 1);
    kel::deactivate(&id.state, &keys[k], &t).unwrap()
}

impl Ident {
    /// Accepts `event` into the local copy (it must verify).
    pub fn push(&mut self, event: SignedEvent) {
        self.state = KeyEventLog::default().append(&self.state, &event).unwrap();
        self.events.push(event);
    }

    pub fn head(&self) -> atp_store::KelHead {
        atp_store::KelHead::of(&self.state)
    }

    /// The inception, accepted by atp-core as the start of a new log.
    pub fn inception(&self) -> AcceptedEvent {
        KeyEventLog::default().accept(&self.did, None, self.events[0].clone()).unwrap()
    }

    /// `event`, accepted by atp-core onto the current head (it must verify).
    pub fn accept(&self, event: SignedEvent) -> AcceptedEvent {
        KeyEventLog::default().accept(&self.did, Some(&self.state), event).unwrap()
    }
}

/// A multi-threaded runtime for tests that drive the store from synchronous code.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}
