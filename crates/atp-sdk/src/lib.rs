//! The ATP client SDK, imported as `atp`.
//!
//! Three lines give an agent a quantum-safe `did:atp` identity and verified messages:
//!
//! ```no_run
//! # async fn demo(sealed_from_peer: Vec<u8>) -> Result<(), atp::Error> {
//! let agent = atp::Agent::connect("http://127.0.0.1:7443", "billing-bot").await?; // load-or-create keys, register did:atp
//! let sealed = agent.seal("did:atp:zQm…recipient…", b"invoice #42 approved")?;    // composite-signed envelope
//! let opened = agent.open(&sealed_from_peer).await?;                              // verified sender
//! # let _ = (sealed, opened); Ok(()) }
//! ```
//!
//! - **Keys stay local.** [`Agent::connect`] keeps the agent's composite ML-DSA-65 + Ed25519
//!   keys in `$ATP_HOME/agents/<name>/` (default `~/.atp`), in the `atp-crypto` key-file format
//!   (mode 0600, optionally encrypted with `ATP_KEY_PASSPHRASE`). The first connect creates the
//!   current key, the committed next key (pre-rotation) and the inception event, and registers
//!   the DID with the node.
//! - **Verification is local.** [`Agent::open`] checks the envelope's structure, time window,
//!   audience, the sender's key (from the sender's key event log, verified here and cached
//!   within bounds), both signature components and replay; it asks the node only for the log.
//!   [`Agent::resolve`] builds DID documents from verified logs, [`Agent::verify_inclusion`]
//!   checks log proofs against checkpoints signed by the node's key, and
//!   [`Agent::verified_checkpoint`] checks consistency with the largest checkpoint verified
//!   before (kept in the agent's home). A node answer that does not verify is
//!   [`Error::NodeMisbehaved`], or [`Error::LogInconsistent`] with offline-verifiable evidence
//!   when the node's log views conflict; never a panic.
//! - **Lifecycle:** [`Agent::rotate`], [`Agent::deactivate`]; credentials:
//!   [`Agent::issue_credential`], [`Agent::verify_credential`]; sessions:
//!   [`Agent::authenticate`].
//! - **Connections:** several endpoints (comma-separated, the nodes of a cluster) over which
//!   calls take turns, a failed endpoint passed over for a while, retries with backoff on
//!   transient errors ([`RetryPolicy`]), TLS (`https://`, with `ATP_TLS_CA` or the system
//!   roots; X25519MLKEM768 preferred).
#![forbid(unsafe_code)]

mod agent;
mod audit;
mod client;
mod clock;
mod credential;
mod error;
mod home;
mod node_api;
mod trust;
mod trust_cache;

pub use agent::{
    Agent, AgentOptions, DEFAULT_CONTENT_TYPE, Opened, SessionToken, VerifiedInclusion,
    read_witness_policy,
};
pub use audit::AuditTrailReport;
pub use client::{NodeOptions, RetryPolicy};
pub use error::{Error, Result};
pub use home::{check_agent_name, default_home};
pub use node_api::{StatusAction, StatusPurpose};
pub use trust::{EvidenceReceipt, Trust};

/// The protocol crate, for the types the SDK returns (key event logs, DID documents,
/// checkpoints, credentials).
pub use atp_core as core;
/// The cryptography crate (keys, Multikeys, key files).
pub use atp_crypto as crypto;
/// The generated gRPC contract.
pub use atp_grpc as grpc;
