//! ATP protocol rules, pure: no network, no database, no clock of its own.
//!
//! Every module here is deterministic given its inputs; time, key lookup and replay state are
//! passed in by the caller so that the node and the SDK share one implementation.
#![forbid(unsafe_code)]

pub mod accepted;
pub mod audit;
pub mod checkpoint;
pub mod data_integrity;
pub mod did;
pub mod did_key;
pub mod envelope;
pub mod erasure;
pub mod error;
pub mod evidence;
pub mod jcs;
pub mod kel;
pub mod log_entry;
pub mod log_evidence;
pub mod replay;
pub mod session;
pub mod status_list;
pub mod status_update;
pub mod tlog;
pub mod trust_proof;
pub mod trust_snapshot;
pub mod vc;
mod wire;
pub mod witness;

pub use error::CoreError;
