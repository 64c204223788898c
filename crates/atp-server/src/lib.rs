//! The ATP node's services: everything between the network and the [`atp_store::Store`].
//!
//! - [`state`]: [`AppState`], the state every service shares (store, node key, limits,
//!   extensions, clock, caches).
//! - [`error`]: [`ServerError`] and its single mapping to a `tonic::Status` with an ATP
//!   `ErrorInfo` reason code (proto/README.md, "Error model").
//! - [`extensions`]: the seam the enterprise edition implements (authenticate, authorize,
//!   observe, audit) and the community implementations.
//! - [`identity`], [`credential`], [`message`], [`log`], [`admin`], [`trust`]: the `atp.v1`
//!   services ([`trust`] also runs the node's scheduled trust computation).
//! - [`http`]: the HTTP routes (DID resolution, VC-API, status lists) on the same port.
//! - [`checkpointer`]: signs C2SP checkpoints of the transparency log.
//! - [`serve`]: the tonic server with health, reflection, limits and the rate limiter.
//!
//! This crate never reads configuration files or key files: `atp-node` does that and hands
//! over a ready [`AppState`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod audit_service;
pub mod checkpointer;
pub mod cluster;
pub mod compliance;
pub mod credential;
pub mod error;
pub mod extensions;
pub mod health;
pub mod http;
pub mod identity;
pub mod limits;
pub mod log;
pub mod message;
pub mod observe;
pub mod serve;
pub mod state;
pub mod tls;
pub mod trust;
pub mod trust_job;
pub mod witnesses;

pub use error::ServerError;
pub use extensions::Extensions;
pub use limits::Limits;
pub use state::{AppState, KelCoherence, NodeState, ServerSettings, SingletonLease};
