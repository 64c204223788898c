//! `atp audit list|export|verify|hash` against a real node in-process (SQLite store,
//! 127.0.0.1:0) whose audit sink stores every event: the admin's own actions are listed and
//! exported (JSON lines and CSV, counted), the sealed trail verifies against the transparency
//! log, and a row changed in the database behind the node's back makes `verify` fail with
//! `AUDIT_TAMPERED` naming that row.
//!
//! The CLI crate may not depend on the enterprise audit crate (tidy), so the sink here is a
//! small one of the `atp-server` seam that stores events unhashed; the enterprise sink is
//! tested on the real binary in crates/atp-node/tests/node/enterprise_audit.rs.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{ADMIN_TOKEN, start_node_with_extensions};
use atp_core::audit::AuditEvent;
use atp_server::Extensions;
use atp_server::ServerError;
use atp_server::extensions::AuditSink;
use atp_store::AuditEntry;
use sqlx::Connection as _;

const ATP: &str = env!("CARGO_BIN_EXE_atp");

/// Stores every event as it is, sealed every 100 ms.
struct StoreAll;

impl AuditSink for StoreAll {
    fn entry(&self, event: &AuditEvent) -> Result<Option<AuditEntry>, ServerError> {
        Ok(Some(AuditEntry::new(event)?))
    }

    fn seal_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(100))
    }

    fn hash_value(&self, _tenant: Option<&str>, value: &str) -> Option<String> {
        Some(format!("plain:{value}"))
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn atp(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(ATP);
    command
        .args(args)
        .env_remove("ATP_NODE")
        .env_remove("ATP_AGENT")
        .env_remove("ATP_HOME")
        .env_remove("ATP_ADMIN_TOKEN_FILE")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("took more than 120 s")
        .expect("output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn db(data_dir: &Path) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", data_dir.join(atp_store::DB_FILE_NAME).display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_commands_list_export_verify_and_find_a_changed_row() {
    let mut extensions = Extensions::community(|t: &str| t == ADMIN_TOKEN);
    extensions.audit = std::sync::Arc::new(StoreAll);
    let node = start_node_with_extensions(extensions).await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let token_file = d.join("admin.token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    let home = d.join("home");
    let env = [
        ("ATP_NODE", node.url.as_str()),
        ("ATP_HOME", home.to_str().unwrap()),
        ("ATP_ADMIN_TOKEN_FILE", token_file.to_str().unwrap()),
    ];

    // Two admin actions, then the trail.
    let r = atp(&["admin", "anchors", "set", &node.did], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = atp(&["admin", "anchors", "list"], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = atp(&["--json", "audit", "list", "--code", "anchors.changed"], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<serde_json::Value> =
        r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert_eq!(lines[0]["event"]["actor"]["id"], "admin");
    assert_eq!(lines[0]["event"]["target"][1]["id"], node.did.as_str());
    let r = atp(&["audit", "list", "--code", "no.such.code"], &env).await;
    assert_eq!(r.code, 3, "the node refuses an unknown code: {}", r.stderr);
    assert!(r.stderr.contains("FIELD_INVALID"), "{}", r.stderr);
    let r = atp(&["audit", "list", "--from", "yesterday"], &env).await;
    assert_eq!(r.code, 2, "{}", r.stderr);

    // Export: every event so far, in both formats, the same count.
    let jsonl = d.join("trail.jsonl");
    let r = atp(&["audit", "export", "--file", jsonl.to_str().unwrap()], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let exported = std::fs::read_to_string(&jsonl).unwrap();
    let events: Vec<AuditEvent> =
        exported.lines().map(|l| AuditEvent::parse(l.as_bytes()).unwrap()).collect();
    let codes: Vec<&str> = events.iter().map(|e| e.code.as_str()).collect();
    // The node's own key event and the CLI agent's; the anchors set and listed; the one
    // accepted list; this export (a refused request stored nothing).
    assert_eq!(
        codes,
        [
            "key_event.accepted",
            "key_event.accepted",
            "authn.succeeded",
            "anchors.changed",
            "authn.succeeded",
            "admin.action",
            "authn.succeeded",
            "admin.action",
            "authn.succeeded",
            "admin.action",
        ]
    );
    let csv = d.join("trail.csv");
    let r =
        atp(&["audit", "export", "--format", "csv", "--file", csv.to_str().unwrap()], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("seq,id,time_ms,code,"), "{csv_text}");
    // The CSV export ran one read later: one more authentication and one more read.
    assert_eq!(csv_text.lines().count() - 1, events.len() + 2, "{csv_text}");

    let r = atp(&["audit", "hash", "10.0.0.1"], &env).await;
    assert_eq!((r.code, r.stdout.trim()), (0, "plain:10.0.0.1"), "{}", r.stderr);

    // The sealed trail verifies (once the first events are sealed and checkpointed).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = atp(&["--json", "audit", "verify"], &env).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(report["verified"], true);
        if report["events"].as_u64().unwrap() >= events.len() as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "not sealed in time: {report}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A compliance report: signed JSON that `atp vc verify` accepts, and an HTML page.
    let report = d.join("report.json");
    let args = ["compliance", "report", "--framework", "hipaa", "--from", "0", "--to"];
    let r = atp(&[&args[..], &["4000000000000", "--out", report.to_str().unwrap()]].concat(), &env)
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["credentialSubject"]["framework"], "hipaa");
    assert_eq!(
        json["credentialSubject"]["controls"][2]["byCode"]["authn.succeeded"]
            .as_u64()
            .map(|n| n >= 4),
        Some(true)
    );
    let r = atp(&["vc", "verify", report.to_str().unwrap()], &env).await;
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    let page = d.join("report.html");
    let r = atp(
        &[&args[..], &["4000000000000", "--format", "html", "--out", page.to_str().unwrap()]]
            .concat(),
        &env,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("164.312(d)"), "{html}");
    assert!(!html.contains("<script"), "no script in the page");
    let r = atp(&["compliance", "report", "--framework", "soc2", "--from", "5", "--to", "5"], &env)
        .await;
    assert_eq!(r.code, 3, "an empty period is refused by the node: {}", r.stderr);

    // A row changed behind the node's back: named, exit 1.
    let mut conn = db(node.data_dir()).await;
    let (seq, body): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT seq, body FROM audit_events WHERE code = 'anchors.changed' AND batch IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let forged = String::from_utf8(body).unwrap().replace("\"admin\"", "\"intruder\"");
    sqlx::query("UPDATE audit_events SET body = $1 WHERE seq = $2")
        .bind(forged.as_bytes())
        .bind(seq)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let r = atp(&["audit", "verify"], &env).await;
    assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("event {seq} was changed")), "{}", r.stderr);
    let r = atp(&["--json", "audit", "verify"], &env).await;
    assert!(r.stderr.contains("AUDIT_TAMPERED"), "{}", r.stderr);
    node.stop().await;
}
