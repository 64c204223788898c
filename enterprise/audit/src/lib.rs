//! The enterprise audit trail (`[audit]`, docs/audit.md): every audit event the node records is
//! stored in the transaction of the change it records, with its sensitive fields replaced by
//! keyed hashes, and sealed in batches into the transparency log.
//!
//! - **Keyed hashes.** IP addresses, user agents and user identifiers that are not DIDs are
//!   stored as `hmac-sha256:<hex>`: HMAC-SHA256 under a per-tenant key derived from the node's
//!   audit key (`HMAC(audit key, "atp/audit-tenant/1\n" || tenant)`, the node's own tenant
//!   being empty). The audit key never leaves the node; an auditor hashes a known value through
//!   `AuditService.HashAuditValue` and searches for the result.
//! - **Sealing.** [`StoredAuditSink::seal_interval`] tells the node how often to seal.

use std::time::Duration;

use atp_core::audit::AuditEvent;
use atp_server::ServerError;
use atp_server::extensions::AuditSink;
use atp_store::AuditEntry;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use zeroize::Zeroizing;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The length of the audit key, in bytes.
pub const AUDIT_KEY_BYTES: usize = 32;
/// The default sealing interval.
pub const DEFAULT_SEAL_INTERVAL_MS: u64 = 1_000;
/// The shortest and longest sealing intervals accepted.
pub const SEAL_INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
/// The prefix of a keyed hash.
pub const HASH_PREFIX: &str = "hmac-sha256:";

const TENANT_KEY_LABEL: &[u8] = b"atp/audit-tenant/1\n";

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The `[audit]` configuration or the audit key is unusable.
    #[error("[audit] {0}")]
    Config(String),
}

/// The `[audit]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit key file (32 random bytes, mode 0600). Default: `audit.key` in the data
    /// directory, created at first start. Every node of a cluster needs the same key.
    pub key_file: Option<std::path::PathBuf>,
    /// How often the trail is sealed into the log, in ms (100 to 60000; default 1000).
    pub seal_interval_ms: Option<u64>,
    /// How long sealed events are kept, in days (1 to 36500; default: for ever). Whole batches
    /// expire, oldest first, once sealed longer ago than this; docs/audit.md suggests 2190 (six
    /// years, HIPAA's retention of documentation).
    pub retention_days: Option<u32>,
}

/// The accepted `retention_days`.
pub const RETENTION_DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=36_500;

impl AuditConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), AuditError> {
        if let Some(ms) = self.seal_interval_ms
            && !SEAL_INTERVAL_RANGE_MS.contains(&ms)
        {
            return Err(AuditError::Config(format!(
                "seal_interval_ms must be {} to {}, not {ms}",
                SEAL_INTERVAL_RANGE_MS.start(),
                SEAL_INTERVAL_RANGE_MS.end()
            )));
        }
        if let Some(days) = self.retention_days
            && !RETENTION_DAYS_RANGE.contains(&days)
        {
            return Err(AuditError::Config(format!(
                "retention_days must be {} to {}, not {days}",
                RETENTION_DAYS_RANGE.start(),
                RETENTION_DAYS_RANGE.end()
            )));
        }
        Ok(())
    }

    /// How long sealed events are kept; `None`: for ever.
    pub fn retention(&self) -> Option<Duration> {
        self.retention_days.map(|d| Duration::from_secs(u64::from(d) * 86_400))
    }

    /// The sealing interval.
    pub fn seal_interval(&self) -> Duration {
        Duration::from_millis(self.seal_interval_ms.unwrap_or(DEFAULT_SEAL_INTERVAL_MS))
    }
}

/// Keyed hashes of sensitive values under per-tenant keys.
pub struct KeyedHasher {
    key: Zeroizing<[u8; AUDIT_KEY_BYTES]>,
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher(<redacted>)")
    }
}

impl KeyedHasher {
    /// With the audit key (exactly [`AUDIT_KEY_BYTES`] bytes).
    pub fn new(key: &[u8]) -> Result<Self, AuditError> {
        let key: [u8; AUDIT_KEY_BYTES] = key.try_into().map_err(|_| {
            AuditError::Config(format!("the audit key must be {AUDIT_KEY_BYTES} bytes"))
        })?;
        Ok(KeyedHasher { key: Zeroizing::new(key) })
    }

    fn tenant_key(&self, tenant: &str) -> Zeroizing<[u8; 32]> {
        let mut mac = mac(&self.key[..]);
        mac.update(TENANT_KEY_LABEL);
        mac.update(tenant.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// A value that names the key without revealing it, for the nodes of a cluster to check
    /// that they share one key: the keyed hash of a fixed label.
    pub fn key_check(&self) -> String {
        self.hash(None, "atp/audit-key-check/1")
    }

    /// `hmac-sha256:` and the hex of `HMAC(tenant key, value)`; the node's own tenant is `None`.
    pub fn hash(&self, tenant: Option<&str>, value: &str) -> String {
        let key = self.tenant_key(tenant.unwrap_or(""));
        let mut mac = mac(&key[..]);
        mac.update(value.as_bytes());
        format!("{HASH_PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; 32 bytes here.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"))
}

/// The audit sink of the enterprise edition: stores every event, with its sensitive fields
/// hashed, and asks the node to seal the trail every `seal_interval`.
#[derive(Debug)]
pub struct StoredAuditSink {
    hasher: KeyedHasher,
    seal_interval: Duration,
    retention: Option<Duration>,
}

impl StoredAuditSink {
    /// With the hasher and the sealing interval.
    pub fn new(hasher: KeyedHasher, seal_interval: Duration) -> Self {
        StoredAuditSink { hasher, seal_interval, retention: None }
    }

    /// Expires sealed batches older than `retention` (`None`: keeps every event).
    pub fn with_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// The event as stored: IP address, user agent and a non-DID user identifier hashed.
    pub fn redact(&self, event: &AuditEvent) -> AuditEvent {
        let tenant = event.actor.tenant.as_deref();
        let hash = |v: &String| self.hasher.hash(tenant, v);
        let mut stored = event.clone();
        stored.client.ip = event.client.ip.as_ref().map(hash);
        stored.client.user_agent = event.client.user_agent.as_ref().map(hash);
        if event.actor.kind == "user" && !event.actor.id.starts_with("did:") {
            stored.actor.id = hash(&event.actor.id);
        }
        stored
    }
}

impl AuditSink for StoredAuditSink {
    fn entry(&self, event: &AuditEvent) -> Result<Option<AuditEntry>, ServerError> {
        Ok(Some(AuditEntry::new(&self.redact(event))?))
    }

    fn seal_interval(&self) -> Option<Duration> {
        Some(self.seal_interval)
    }

    fn retention(&self) -> Option<Duration> {
        self.retention
    }

    fn hash_value(&self, tenant: Option<&str>, value: &str) -> Option<String> {
        Some(self.hasher.hash(tenant, value))
    }
}
