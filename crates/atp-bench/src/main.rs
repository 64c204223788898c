//! `atp-bench`: load generator for the ATP node. All logic lives in the `atp_bench` library.

use std::time::Duration;

use anyhow::Context as _;
use atp_bench::load::{self, LoadConfig, LoadMode};
use atp_bench::raw::{self, RawOperation, RawReport};
use atp_bench::{Report, Scenario, ScenarioOptions, Workload, populate, process};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "atp-bench",
    version,
    about = "Load generator and raw measurements for the ATP node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Offer load to one or many nodes over gRPC and report latency, throughput and errors.
    Run(RunArgs),
    /// Measure the same work in-process (no network, no store) on this machine.
    Raw(RawArgs),
    /// Fill a node with N identities, quickly (many concurrent submissions).
    Populate(PopulateArgs),
    /// Insertion latency and memory of the replay cache while it fills to N entries: the cache
    /// in use and the two designs it replaced, in the same run.
    ReplayCache(ReplayCacheArgs),
}

#[derive(Args)]
struct ReplayCacheArgs {
    /// Entries to insert.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Threads inserting at once.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Measure this implementation only, in this process. Without it, each implementation is
    /// measured in a child process of its own, so that each memory figure starts from a clean
    /// heap.
    #[arg(long, value_enum)]
    implementation: Option<atp_bench::replay_cache::ReplayImpl>,
}

#[derive(Args)]
struct Target {
    /// Node gRPC endpoint; repeat for many nodes (requests are spread round-robin).
    #[arg(long = "endpoint", default_value = "http://127.0.0.1:7443")]
    endpoints: Vec<String>,
    /// HTTP/2 connections per endpoint.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Threads of the load generator's own runtime. With the node on the same cores, every
    /// cycle the client spends is taken from the node: one thread (the default) avoids the
    /// cross-thread wake-ups of a multi-threaded client. 0: one per core.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// PID of the node process: its resident memory is reported after the run (same machine).
    #[arg(long)]
    node_pid: Option<u32>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// What each request does.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Closed loop: this many concurrent callers (the default mode, 32 callers).
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: this many requests per second on a fixed schedule.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: most requests in flight at once.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Time under load before measuring (e.g. `2s`, `500ms`).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// The measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Requests prepared for `verify-envelope` / `submit-inception` (default: enough for the
    /// offered rate in open loop, 60 000 in closed loop).
    #[arg(long)]
    pool: Option<usize>,
    /// Agents registered to send the envelopes.
    #[arg(long, default_value_t = 16)]
    agents: usize,
    /// Validity window of the pre-signed envelopes; the whole run must fit in it, and the node
    /// must allow it (`--envelope-max-lifetime`). A long one keeps their nonces in the node's
    /// replay cache (scripts/replay-p99.sh fills the cache this way).
    #[arg(long, default_value = "240s", value_parser = parse_duration)]
    envelope_lifetime: Duration,
    /// Hot-set size of `resolve-cached`.
    #[arg(long, default_value_t = 64)]
    hot_set: usize,
    /// Largest sample of DIDs listed for `resolve-uncached`.
    #[arg(long, default_value_t = 50_000)]
    resolve_sample: usize,
    /// File holding the node's admin token (`issue-credential`, `verify-credential`).
    #[arg(long)]
    admin_token_file: Option<std::path::PathBuf>,
    /// Also measure, in this process and right before the load, the in-process composite and
    /// envelope verification on this many threads, and report the node's throughput as a
    /// ratio to it (0: no baseline).
    #[arg(long, default_value_t = 0)]
    baseline_threads: usize,
}

#[derive(Args)]
struct RawArgs {
    /// Operations to measure (default: all).
    #[arg(long = "operation", value_enum)]
    operations: Vec<RawOperation>,
    /// Threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    /// Time before measuring.
    warmup: Duration,
    /// The measured window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PopulateArgs {
    #[command(flatten)]
    target: Target,
    /// Identities to add.
    #[arg(long)]
    count: u64,
    /// Submissions in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Threads signing inception events (default: every core).
    #[arg(long)]
    signing_threads: Option<usize>,
    /// The node's data directory: its size is reported after populating (same machine).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |at| (&s[..at], &s[at..]));
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Serialize)]
struct RunOutput {
    report: Report,
    baseline: Vec<RawReport>,
    /// Node throughput divided by each baseline's throughput.
    ratio_to_baseline: Vec<(RawOperation, f64)>,
    node_rss_bytes: Option<u64>,
    node_peak_rss_bytes: Option<u64>,
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mode = match (args.rate, args.concurrency) {
        (Some(rate), _) => LoadMode::Open { rate, max_in_flight: args.max_in_flight },
        (None, concurrency) => LoadMode::Closed { concurrency: concurrency.unwrap_or(32) },
    };
    let window = args.warmup + args.duration;
    let pool = args.pool.unwrap_or(match mode {
        LoadMode::Open { rate, .. } => (rate * window.as_secs_f64() * 1.02) as usize + 100,
        LoadMode::Closed { .. } => 60_000,
    });
    let admin_token = match &args.admin_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let options = ScenarioOptions {
        agents: args.agents,
        pool,
        hot_set: args.hot_set,
        resolve_sample: args.resolve_sample,
        admin_token,
        envelope_lifetime_ms: i64::try_from(args.envelope_lifetime.as_millis())
            .context("--envelope-lifetime is too long")?,
        ..ScenarioOptions::default()
    };
    let channels = load::connect(&args.target.endpoints, args.target.connections).await?;
    eprintln!("atp-bench: preparing {} ...", args.scenario.name());
    let workload = Workload::prepare(args.scenario, &channels[0], &options).await?;

    let mut baseline = Vec::new();
    if args.baseline_threads > 0 {
        for op in [RawOperation::CompositeVerify, RawOperation::EnvelopeVerify] {
            eprintln!("atp-bench: in-process baseline {} ...", op.name());
            let threads = args.baseline_threads;
            let r = tokio::task::spawn_blocking(move || {
                raw::measure(op, threads, Duration::from_millis(500), Duration::from_secs(3))
            })
            .await??;
            baseline.push(r);
        }
    }
    eprintln!("atp-bench: load for {:?} warm-up + {:?} ...", args.warmup, args.duration);
    let config = LoadConfig { mode, warmup: args.warmup, duration: args.duration };
    let report = load::run_load(&workload, &channels, &config).await?;
    let rss = args.target.node_pid.map(process::resident_bytes).transpose()?;
    let ratio_to_baseline = baseline
        .iter()
        .map(|b| (b.operation, report.throughput_per_s / b.throughput_per_s))
        .collect();
    let output = RunOutput {
        report,
        baseline,
        ratio_to_baseline,
        node_rss_bytes: rss.map(|r| r.0),
        node_peak_rss_bytes: rss.map(|r| r.1),
    };
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print!("{}", output.report);
        for b in &output.baseline {
            println!("baseline:   {b}");
        }
        for (op, ratio) in &output.ratio_to_baseline {
            println!("ratio:      {:.3} of in-process {}", ratio, op.name());
        }
        if let (Some(rss), Some(peak)) = (output.node_rss_bytes, output.node_peak_rss_bytes) {
            println!("node RSS:   {:.1} MiB (peak {:.1} MiB)", mib(rss), mib(peak));
        }
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn replay_cache_command(args: ReplayCacheArgs) -> anyhow::Result<()> {
    use atp_bench::replay_cache::{self, ReplayImpl, ReplayReport};
    let reports = match args.implementation {
        Some(implementation) => {
            vec![replay_cache::measure(implementation, args.entries, args.threads)?]
        }
        None => {
            let me = std::env::current_exe().context("locating atp-bench")?;
            let mut reports = Vec::new();
            for implementation in ReplayImpl::ALL {
                let name = serde_json::to_value(implementation)?;
                let name = name.as_str().context("implementation name")?;
                let output = std::process::Command::new(&me)
                    .args(["replay-cache", "--json", "--implementation", name])
                    .args(["--entries", &args.entries.to_string()])
                    .args(["--threads", &args.threads.to_string()])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .with_context(|| format!("running {}", me.display()))?;
                anyhow::ensure!(output.status.success(), "measuring {name}: {}", output.status);
                let one: Vec<ReplayReport> = serde_json::from_slice(&output.stdout)?;
                if !args.json {
                    one.iter().for_each(|r| println!("{r}"));
                }
                reports.extend(one);
            }
            reports
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else if args.implementation.is_some() {
        reports.iter().for_each(|r| println!("{r}"));
    }
    Ok(())
}

fn raw_command(args: RawArgs) -> anyhow::Result<()> {
    let operations = if args.operations.is_empty() {
        vec![
            RawOperation::CompositeSign,
            RawOperation::CompositeVerify,
            RawOperation::EnvelopeVerify,
        ]
    } else {
        args.operations
    };
    let threads = args.threads.unwrap_or_else(cores);
    let mut reports = Vec::new();
    for op in operations {
        let r = raw::measure(op, threads, args.warmup, args.duration)?;
        if !args.json {
            println!("{r}");
        }
        reports.push(r);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

#[derive(Serialize)]
struct PopulateOutput {
    populate: populate::PopulateReport,
    store_bytes: Option<u64>,
    node_rss_bytes: Option<u64>,
    node_peak_rss_bytes: Option<u64>,
}

async fn populate_command(args: PopulateArgs) -> anyhow::Result<()> {
    let channels = load::connect(&args.target.endpoints, args.target.connections).await?;
    let report = populate::populate(
        &channels,
        args.count,
        args.concurrency,
        args.signing_threads.unwrap_or_else(cores),
        |done| eprintln!("atp-bench: {done} identities accepted"),
    )
    .await?;
    let store_bytes = args.data_dir.as_deref().map(process::directory_bytes).transpose()?;
    let rss = args.target.node_pid.map(process::resident_bytes).transpose()?;
    let output = PopulateOutput {
        populate: report,
        store_bytes,
        node_rss_bytes: rss.map(|r| r.0),
        node_peak_rss_bytes: rss.map(|r| r.1),
    };
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        let p = &output.populate;
        println!(
            "accepted {} identities in {:.1} s ({:.1}/s); errors: {:?}",
            p.accepted, p.duration_s, p.rate_per_s, p.errors
        );
        if let Some(bytes) = store_bytes {
            println!("data directory: {:.1} MiB", mib(bytes));
        }
        if let Some((rss, peak)) = rss {
            println!("node RSS: {:.1} MiB (peak {:.1} MiB)", mib(rss), mib(peak));
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::Raw(args) => return raw_command(args),
        Command::ReplayCache(args) => return replay_cache_command(args),
        command => Cli { command },
    };
    let client_threads = match &cli.command {
        Command::Run(args) => args.target.client_threads,
        Command::Populate(args) => args.target.client_threads,
        Command::Raw(_) | Command::ReplayCache(_) => 1,
    };
    let runtime = match client_threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        0 => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Populate(args) => populate_command(args).await,
            Command::Raw(_) | Command::ReplayCache(_) => Ok(()),
        }
    })
}
