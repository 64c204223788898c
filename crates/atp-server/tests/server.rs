//! `atp-server` against real nodes on 127.0.0.1:0 (`atp-test-node`: a temporary SQLite store,
//! every gRPC service and the HTTP routes on one port), in one test binary so that the crate's
//! integration tests link the whole stack once rather than once per file (CI time, issue 15):
//! audit retention, credentials and their evidence, erasure, external status lists, health, the hostile-input table, the
//! identity lifecycle with log proofs, messages, observation, the rate limit, role bindings, TLS
//! serving and the trust service. Each former test file is a module under `tests/server/`; the
//! helpers they share are `common` and `support`.

mod common;
mod support;

#[path = "server/audit_retention.rs"]
mod audit_retention;
#[path = "server/credential_evidence.rs"]
mod credential_evidence;
#[path = "server/credentials.rs"]
mod credentials;
#[path = "server/erasure.rs"]
mod erasure;
#[path = "server/external_status.rs"]
mod external_status;
#[path = "server/health.rs"]
mod health;
#[path = "server/hostile.rs"]
mod hostile;
#[path = "server/identity_lifecycle.rs"]
mod identity_lifecycle;
#[path = "server/messages.rs"]
mod messages;
#[path = "server/observation.rs"]
mod observation;
#[path = "server/rate_limit.rs"]
mod rate_limit;
#[path = "server/role_bindings.rs"]
mod role_bindings;
#[path = "server/tls.rs"]
mod tls;
#[path = "server/trust.rs"]
mod trust;
