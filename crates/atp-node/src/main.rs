//! `atp-node`: the ATP node binary. All logic lives in the `atp_node` library; this file only
//! wires configuration, logging and the runtime together.

use std::process::ExitCode;

use atp_node::{NodeConfig, NodeError, telemetry};

// Every request allocates (HTTP/2 frames, protobuf, JSON); mimalloc's per-thread free lists
// cost less than glibc's arenas under the node's load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = match NodeConfig::from_process() {
        Ok(config) => config,
        // Help, version and usage errors: clap prints them and picks the exit code.
        Err(NodeError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("atp-node: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = telemetry::init(&config.log) {
        eprintln!("atp-node: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(atp_node::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format_args!("{e:#}"), "atp-node stopped");
            eprintln!("atp-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}
