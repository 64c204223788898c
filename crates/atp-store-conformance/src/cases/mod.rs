//! The cases, each `pub async fn case(backend: &dyn Backend)`; [`crate::conformance_tests!`]
//! lists every one of them.

pub mod audit;
pub mod erasure;
pub mod leases;
pub mod log_and_kel;
pub mod once;
pub mod role_bindings;
pub mod trust_evidence;
