//! `grpc.health.v1` that says whether to send this node traffic: SERVING while the node can reach
//! its store and is not draining, NOT_SERVING otherwise, for the whole server (`""`) and every
//! `atp.v1` service alike. Standard load balancers (Envoy, Kubernetes gRPC probes, HAProxy)
//! then stop routing to a node that lost its database or is shutting down.
//!
//! - **The store** is probed with one cheap read ([`atp_store::Store::log_size`]) every
//!   [`PROBE_INTERVAL`], bounded by [`PROBE_TIMEOUT`].
//! - **Draining** starts when the server's shutdown begins ([`start_draining`]): the status turns
//!   NOT_SERVING at once, and the server goes on serving for
//!   [`crate::ServerSettings::drain_grace`] so that load balancers notice before connections
//!   close.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::state::AppState;

/// How often the store is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a probe may take before it counts as a failure.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Marks the node as draining: health turns NOT_SERVING at once.
pub fn start_draining(state: &AppState) {
    state.drain.draining.store(true, Ordering::SeqCst);
    state.drain.changed.notify_one();
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in atp_grpc::SERVICE_NAMES {
        reporter.set_service_status(*name, status).await;
    }
}

/// Reports SERVING now, then keeps the status current while the state lives.
pub async fn spawn_watch(state: &AppState, reporter: HealthReporter) {
    set_all(&reporter, ServingStatus::Serving).await;
    let weak = std::sync::Arc::downgrade(state);
    tokio::spawn(async move {
        let mut last = ServingStatus::Serving;
        loop {
            let Some(state) = weak.upgrade() else { break };
            let reachable = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, state.store.log_size()).await,
                Ok(Ok(_))
            );
            let status = if reachable && !state.drain.is_draining() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if status != last {
                tracing::warn!(
                    ?status,
                    draining = state.drain.is_draining(),
                    store_reachable = reachable,
                    "health changed"
                );
                set_all(&reporter, status).await;
                last = status;
            }
            let changed = async { state.drain.changed.notified().await };
            tokio::select! {
                () = tokio::time::sleep(PROBE_INTERVAL) => {}
                () = changed => {}
            }
        }
    });
}
