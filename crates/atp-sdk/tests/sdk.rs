//! The SDK's integration tests, in one test binary so that they link the node's whole stack once
//! rather than once per file (CI time, issue 15): the SDK against a real in-process node, a
//! hostile node whose answers the SDK must refuse, the independent Python agent exchanging
//! envelopes with a Rust agent, and trust through the node's `TrustService`. Each former test
//! file is a module under `tests/sdk/`; `support` starts the node they share.

mod support;

#[path = "sdk/agent.rs"]
mod agent;
#[path = "sdk/malicious_node.rs"]
mod malicious_node;
#[path = "sdk/python_agent.rs"]
mod python_agent;
#[path = "sdk/trust.rs"]
mod trust;
