//! What one transparency-log leaf says: a kind and a 32-byte hash, never the data itself.
//!
//! The layout is protocol, so it lives in [`atp_core::log_entry`] (docs/protocol.md §E3), where
//! the SDK computes the same entries; it is re-exported here for the store's users.

pub use atp_core::log_entry::*;
