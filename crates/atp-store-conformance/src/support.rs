//! What the cases build on: real `did:atp` identities and their events, and a seeded generator.

use atp_core::accepted::AcceptedEvent;
use atp_core::kel::{self, KelState, KeyEventLog, Service, SignedEvent};
use atp_crypto::{AlgorithmId, SigningKey};

/// Fresh composite ML-DSA-65 + Ed25519 keys.
pub fn keys(n: usize) -> Vec<SigningKey> {
    (0..n).map(|_| SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap()).collect()
}

/// The inception time of every identity.
pub const T0: &str = "2026-01-01T00:00:00Z";

/// A timestamp `i` seconds after T0 (i < 86400).
pub fn ts(i: u32) -> String {
    format!("2026-01-01T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60)
}

/// An identity under construction: the events so far and the verified state.
#[derive(Clone)]
pub struct Ident {
    /// The DID.
    pub did: String,
    /// Its events so far.
    pub events: Vec<SignedEvent>,
    /// The verified state after them.
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

    /// The head of the log so far.
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

/// A small seeded generator (SplitMix64), so that a case's "random" sizes are the same on
/// every run and every backend.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
