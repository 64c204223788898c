//! The `atp-node` crate's integration tests, in one test binary so that they link the node's
//! whole stack once rather than once per file (CI time, issue 15): configuration, first-run
//! bootstrap, the built binary as a process (signals, durability across SIGKILL, a Python gRPC
//! client), and the enterprise edition against real services (PostgreSQL clusters, Prometheus,
//! an OpenID provider for SSO and RBAC). Each former test file is a module under `tests/node/`;
//! a module that needs Unix or an enterprise feature says so itself (`#![cfg(...)]` at its top),
//! so a build without the feature leaves it out. `support` holds the helpers of the enterprise
//! tests.

mod support;

#[path = "node/bootstrap.rs"]
mod bootstrap;
#[path = "node/config.rs"]
mod config;
#[path = "node/durability.rs"]
mod durability;
#[path = "node/enterprise_audit.rs"]
mod enterprise_audit;
#[path = "node/enterprise_ha.rs"]
mod enterprise_ha;
#[path = "node/enterprise_metrics.rs"]
mod enterprise_metrics;
#[path = "node/enterprise_rbac.rs"]
mod enterprise_rbac;
#[path = "node/enterprise_sso.rs"]
mod enterprise_sso;
#[path = "node/process.rs"]
mod process;
#[path = "node/python_client.rs"]
mod python_client;
