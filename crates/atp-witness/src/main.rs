//! The `atp-witness` binary: reads its configuration, opens its data directory, and serves the
//! witness API (docs/protocol.md §E5, docs/operations.md).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

/// A transparency-log witness for ATP nodes.
#[derive(Debug, Parser)]
#[command(name = "atp-witness", version)]
struct Args {
    /// The configuration file (TOML: `name`, and one `[[log]]` per followed log).
    #[arg(long)]
    config: PathBuf,
    /// Where the witness keeps its key and its state.
    #[arg(long)]
    data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:7380")]
    listen: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config: atp_witness::WitnessConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", args.config.display()))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let witness = Arc::new(atp_witness::Witness::open(&config, &args.data_dir)?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    for vkey in witness.cosigner()?.vkeys() {
        println!("cosigner key: {vkey}");
    }
    println!("listening: {}", listener.local_addr()?);
    axum::serve(listener, atp_witness::router(witness))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
