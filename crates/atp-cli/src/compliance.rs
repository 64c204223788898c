//! `atp compliance report`: the node computes the report from its audit trail and store and signs
//! it as a Verifiable Credential (docs/compliance.md); this command fetches it, verifies the
//! signature locally, and writes it as the signed JSON or as one self-contained HTML page with a
//! chart of events per day.

use std::fmt::Write as _;
use std::path::PathBuf;

use atp::Agent;
use atp::grpc::v1 as pb;
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::EXIT_OK;
use crate::output::{CliError, note, write_output};

/// How long `atp compliance report` waits for the node (a report over millions of events takes
/// tens of seconds; other commands keep the SDK's 10 s).
pub const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// `atp compliance report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The framework.
    #[arg(long, value_enum)]
    framework: FrameworkArg,
    /// The period's start: RFC 3339 (`2026-12-01T00:00:00Z`) or Unix ms.
    #[arg(long)]
    from: String,
    /// The period's end (exclusive): RFC 3339 or Unix ms.
    #[arg(long)]
    to: String,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    format: ReportFormat,
    /// The file; stdout without it (or with `-`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The frameworks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FrameworkArg {
    /// SOC 2 common criteria CC6, CC7.2, CC8.1.
    Soc2,
    /// HIPAA §164.312 (b), (c)(1), (d).
    Hipaa,
    /// GDPR Articles 30 and 17.
    Gdpr,
}

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The signed credential, as the node returned it.
    Json,
    /// One self-contained, printable HTML page.
    Html,
}

fn time_ms(option: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    atp::core::vc::DateTimeStamp::parse(text)
        .map(|t| t.unix_millis())
        .map_err(|why| CliError::Usage(format!("--{option} {text:?}: {why}")))
}

/// Runs `atp compliance report` (the caller has set the bearer token).
pub(crate) async fn run(agent: &Agent, args: &ReportArgs, json: bool) -> Result<u8, CliError> {
    let framework = match args.framework {
        FrameworkArg::Soc2 => "soc2",
        FrameworkArg::Hipaa => "hipaa",
        FrameworkArg::Gdpr => "gdpr",
    };
    let request = pb::GetComplianceReportRequest {
        framework: framework.into(),
        from_unix_ms: time_ms("from", &args.from)?,
        to_unix_ms: time_ms("to", &args.to)?,
    };
    let report = agent.compliance_report(request).await?;
    let bytes = match args.format {
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(&report)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            text.push('\n');
            text.into_bytes()
        }
        ReportFormat::Html => html(&report).into_bytes(),
    };
    write_output(args.out.as_deref(), &bytes, false)?;
    note(json, "the report's signature verified under the node's key");
    Ok(EXIT_OK)
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An SVG bar chart of events per day (inline, no script).
fn chart(per_day: &[Value]) -> String {
    let counts: Vec<(String, u64)> =
        per_day.iter().map(|d| (text(&d["day"]), d["count"].as_u64().unwrap_or(0))).collect();
    if counts.is_empty() {
        return "<p>No events in the period.</p>".into();
    }
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let (width, height, bar) = (720.0_f64, 200.0_f64, 720.0 / counts.len() as f64);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"Events per day\" viewBox=\"0 0 {width} {}\" \
         width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">",
        height + 40.0
    );
    for (i, (day, n)) in counts.iter().enumerate() {
        let h = height * (*n as f64) / (max as f64);
        let x = i as f64 * bar;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#2b6cb0\">\
             <title>{}: {n}</title></rect>",
            height - h,
            (bar - 2.0).max(1.0),
            esc(day)
        );
        if counts.len() <= 31 || i % (counts.len() / 15).max(1) == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                height + 14.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\" font-size=\"11\">max {max} per day</text>",
        height + 32.0
    );
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained HTML page: no script, no external resource.
pub fn html(report: &Value) -> String {
    let subject = &report["credentialSubject"];
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ATP compliance report</title><style>\
         body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#1a202c}\
         table{border-collapse:collapse;width:100%;margin:.5em 0}\
         td,th{border:1px solid #cbd5e0;padding:4px 6px;text-align:left;font-size:13px;\
         vertical-align:top;word-break:break-all}th{background:#edf2f7}\
         h2{border-bottom:2px solid #2b6cb0;padding-bottom:4px}code{font-size:12px}\
         @media print{body{margin:0}h2{page-break-after:avoid}}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>Compliance report: {}</h1><table><tr><th>Node</th><td><code>{}</code></td></tr>\
         <tr><th>Period</th><td>{} to {} (Unix ms)</td></tr><tr><th>Events</th><td>{}</td></tr>\
         <tr><th>Issued</th><td>{}</td></tr></table>",
        esc(&text(&subject["framework"])).to_uppercase(),
        esc(&text(&subject["node"])),
        esc(&text(&subject["period"]["from"])),
        esc(&text(&subject["period"]["to"])),
        esc(&text(&subject["events"])),
        esc(&text(&report["validFrom"])),
    );
    out.push_str("<h2>Events per day</h2>");
    out.push_str(&chart(subject["eventsPerDay"].as_array().map_or(&[][..], Vec::as_slice)));
    for control in subject["controls"].as_array().map_or(&[][..], Vec::as_slice) {
        let _ = write!(
            out,
            "<h2>{}: {}</h2><p>Population: <b>{}</b> event(s).</p><table><tr><th>Code</th>\
             <th>Events</th></tr>",
            esc(&text(&control["id"])),
            esc(&text(&control["title"])),
            esc(&text(&control["population"])),
        );
        if let Some(by_code) = control["byCode"].as_object() {
            for (code, n) in by_code {
                let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(code), esc(&text(n)));
            }
        }
        out.push_str("</table>");
        for (key, title) in [
            ("roleHoldersNow", "Role holders now"),
            ("changes", "Changes"),
            ("byReason", "Refusals by reason"),
            ("anomalousClients", "Anomalous clients"),
            ("sample", "Reproducible sample"),
        ] {
            let value = &control[key];
            if value.is_null() || value.as_array().is_some_and(Vec::is_empty) {
                continue;
            }
            let _ = write!(out, "<h3>{title}</h3>{}", table(value));
        }
    }
    let log = &subject["log"];
    out.push_str("<h2>Transparency log</h2>");
    let _ = write!(
        out,
        "<p>Tree before the period: size {}, root <code>{}</code>. Latest signed checkpoint: \
         size {}, root <code>{}</code>; consistency proof of {} hash(es).</p>",
        esc(&text(&log["start"]["size"])),
        esc(&text(&log["start"]["rootHash"])),
        esc(&text(&log["end"]["size"])),
        esc(&text(&log["end"]["rootHash"])),
        log["consistencyProof"].as_array().map_or(0, Vec::len),
    );
    if log["batches"].as_array().is_some_and(|b| !b.is_empty()) {
        let _ =
            write!(out, "<h3>Audit batches sealed in the period</h3>{}", table(&log["batches"]));
    }
    let _ = writeln!(
        out,
        "<h2>Signature</h2><p>Signed by <code>{}</code> with a quantum-safe proof set; verify \
         the JSON form with <code>atp vc verify</code>.</p></body></html>",
        esc(&text(&report["issuer"]))
    );
    out
}

/// A JSON array of objects (or one object) as a table.
fn table(value: &Value) -> String {
    let rows: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut keys: Vec<String> = Vec::new();
    for row in &rows {
        if let Some(o) = row.as_object() {
            for k in o.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    let mut out = String::from("<table><tr>");
    for k in &keys {
        let _ = write!(out, "<th>{}</th>", esc(k));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for k in &keys {
            let _ = write!(out, "<td>{}</td>", esc(&text(&row[k.as_str()])));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}
