//! `atp audit …`: the node's audit trail (enterprise `[audit]`, docs/audit.md), read with the
//! `audit.read` permission (role `auditor` or `admin`): list and export events, hash a value to
//! search for it, and verify the sealed trail against the transparency log.

use std::fmt::Write as _;
use std::path::PathBuf;

use atp::Agent;
use atp::core::audit::AuditEvent;
use atp::grpc::v1 as pb;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::EXIT_OK;
use crate::output::{CliError, note, print_json, write_output};

/// `atp audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events in sequence order.
    List {
        /// Which events.
        #[command(flatten)]
        filter: Filter,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many events (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Export every matching event, as JSON lines or CSV.
    Export {
        /// Which events.
        #[command(flatten)]
        filter: Filter,
        /// The format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// The file; stdout without it (or with `-`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Verify the sealed trail: every batch recomputed from its events and proven in the
    /// transparency log. Names the first changed, deleted or moved event.
    Verify,
    /// The keyed hash the trail stores for a value (an IP address, a user id), to search for it.
    Hash {
        /// The value.
        value: String,
    },
}

/// Which events.
#[derive(Debug, clap::Args)]
pub struct Filter {
    /// Only events with this code (docs/audit.md), e.g. `authz.denied`.
    #[arg(long)]
    code: Option<String>,
    /// Only events at or after this time: RFC 3339 (`2026-12-01T00:00:00Z`) or Unix ms.
    #[arg(long)]
    from: Option<String>,
    /// Only events before this time: RFC 3339 or Unix ms.
    #[arg(long)]
    to: Option<String>,
}

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One event's JSON per line, as stored.
    Jsonl,
    /// A header and one row per event.
    Csv,
}

fn time_ms(option: &str, text: &Option<String>) -> Result<i64, CliError> {
    let Some(text) = text else { return Ok(0) };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    atp::core::vc::DateTimeStamp::parse(text)
        .map(|t| t.unix_millis())
        .map_err(|why| CliError::Usage(format!("--{option} {text:?}: {why}")))
}

impl Filter {
    fn request(
        &self,
        after_seq: u64,
        page_size: u32,
    ) -> Result<pb::ListAuditEventsRequest, CliError> {
        Ok(pb::ListAuditEventsRequest {
            after_seq,
            page_size,
            code: self.code.clone().unwrap_or_default(),
            from_unix_ms: time_ms("from", &self.from)?,
            to_unix_ms: time_ms("to", &self.to)?,
            batch: 0,
        })
    }
}

/// One CSV field, quoted when it must be (RFC 4180). A value that a spreadsheet would take for
/// a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading `'`: event fields
/// can hold what a caller sent.
fn csv_field(out: &mut String, value: &str) {
    let guarded;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The CSV header of [`csv_row`].
pub const CSV_HEADER: &str =
    "seq,id,time_ms,code,type,actor,actor_kind,client_ip,targets,result,reason,rule,request_id\n";

/// One event as a CSV row (targets joined with `;`).
pub fn csv_row(seq: u64, e: &AuditEvent) -> String {
    let targets: Vec<String> = e.target.iter().map(|t| format!("{}={}", t.kind, t.id)).collect();
    let fields = [
        seq.to_string(),
        e.id.clone(),
        e.time.to_string(),
        e.code.clone(),
        e.event_type.clone(),
        e.actor.id.clone(),
        e.actor.kind.clone(),
        e.client.ip.clone().unwrap_or_default(),
        targets.join(";"),
        e.outcome.result.clone(),
        e.outcome.reason.clone().unwrap_or_default(),
        e.rule.clone().unwrap_or_default(),
        e.request_id.clone().unwrap_or_default(),
    ];
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, f);
    }
    out.push('\n');
    out
}

fn parse(record: &pb::AuditEventRecord) -> Result<AuditEvent, CliError> {
    AuditEvent::parse(&record.event_json).map_err(|e| CliError::Invalid {
        code: e.code().to_owned(),
        message: format!("event {}: {e}", record.seq),
    })
}

/// Runs `atp audit …` (the caller has set the bearer token).
pub(crate) async fn run(agent: &Agent, command: &AuditCommand, json: bool) -> Result<u8, CliError> {
    match command {
        AuditCommand::List { filter, after, limit } => {
            let events = agent.audit_events(filter.request(*after, *limit)?).await?;
            for record in &events {
                let e = parse(record)?;
                if json {
                    let event: Value = serde_json::from_slice(&record.event_json)
                        .map_err(|err| CliError::Usage(err.to_string()))?;
                    print_json(&json!({"seq": record.seq, "batch": record.batch, "event": event}));
                } else {
                    let targets: Vec<&str> = e.target.iter().map(|t| t.id.as_str()).collect();
                    let reason = e.outcome.reason.as_deref().unwrap_or("");
                    println!(
                        "{:>8}  {}  {:<26} {:<10} {:<8} {} {}",
                        record.seq,
                        atp::core::vc::DateTimeStamp::from_unix(e.time.div_euclid(1000)),
                        e.code,
                        e.actor.kind,
                        e.outcome.result,
                        reason,
                        targets.join(" ")
                    );
                }
            }
            note(json, &format!("{} event(s)", events.len()));
        }
        AuditCommand::Export { filter, format, file } => {
            let mut out = String::new();
            if *format == ExportFormat::Csv {
                out.push_str(CSV_HEADER);
            }
            let mut after = 0;
            let mut count = 0u64;
            loop {
                let page = agent.audit_events(filter.request(after, 1000)?).await?;
                // Each read is itself recorded: a short page is the end as of this export.
                let short = page.len() < 1000;
                after = page.last().map_or(after, |last| last.seq);
                for record in &page {
                    let e = parse(record)?;
                    match format {
                        ExportFormat::Jsonl => {
                            out.push_str(&String::from_utf8_lossy(&record.event_json));
                            out.push('\n');
                        }
                        ExportFormat::Csv => out.push_str(&csv_row(record.seq, &e)),
                    }
                    count += 1;
                }
                if short {
                    break;
                }
            }
            write_output(file.as_deref(), out.as_bytes(), false)?;
            note(json, &format!("{count} event(s) exported"));
        }
        AuditCommand::Verify => {
            let report = agent.verify_audit_trail().await?;
            if json {
                print_json(&json!({
                    "verified": true,
                    "batches": report.batches,
                    "events": report.events,
                    "expired_batches": report.expired_batches,
                    "head": hex::encode(report.head),
                    "last_log_index": report.last_log_index,
                }));
            } else {
                let mut text = format!(
                    "verified: {} batch(es), {} event(s), head {}",
                    report.batches,
                    report.events,
                    hex::encode(report.head)
                );
                if let Some(index) = report.last_log_index {
                    let _ = write!(text, ", last leaf {index}");
                }
                if report.expired_batches > 0 {
                    let _ = write!(
                        text,
                        "; the events of the oldest {} batch(es) expired under retention \
                         (heads and leaves verified)",
                        report.expired_batches
                    );
                }
                println!("{text}");
                note(json, "events not yet sealed are not covered");
            }
        }
        AuditCommand::Hash { value } => {
            let hashed = agent.hash_audit_value(value).await?;
            if json {
                print_json(&json!({"hashed": hashed}));
            } else {
                println!("{hashed}");
            }
        }
    }
    Ok(EXIT_OK)
}
