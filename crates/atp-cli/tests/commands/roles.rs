//! `atp admin roles list|add|remove|export|import` against a real node in-process (SQLite
//! store, 127.0.0.1:0): the bindings go through the AdminService RPCs into the store; export
//! writes Casbin CSV that import reads back; a bad import line or a binding the node refuses
//! stores nothing; a node without a role policy answers ENTERPRISE_REQUIRED.
//!
//! The CLI crate may not depend on the enterprise RBAC crate (tidy), so the node here carries
//! a small role policy of the `atp-server` seam (the four built-in role names, admin-only
//! authorization); the Casbin policy itself is tested on the real enterprise node in
//! crates/atp-node/tests/node/enterprise_rbac.rs.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::{ADMIN_TOKEN, start_node, start_node_with_extensions};
use atp_server::Extensions;
use atp_server::ServerError;
use atp_server::extensions::{AdminOnlyAuthorizer, Authorizer, RolePolicy, SeamFuture};
use atp_store::RoleBinding;

const ATP: &str = env!("CARGO_BIN_EXE_atp");

/// Admin-only authorization with a role policy that knows the built-in role names and counts
/// the reload notifications.
#[derive(Default)]
struct NamedRoles {
    reloads: AtomicU64,
}

impl Authorizer for NamedRoles {
    fn authorize_user<'a>(
        &'a self,
        id: &'a str,
        roles: &'a [String],
        operation: &'a str,
        resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        AdminOnlyAuthorizer.authorize_user(id, roles, operation, resource)
    }

    fn role_policy(&self) -> Option<&dyn RolePolicy> {
        Some(self)
    }
}

impl RolePolicy for NamedRoles {
    fn check_binding(&self, b: &RoleBinding) -> Result<(), ServerError> {
        if !(b.subject.starts_with("group:") || b.subject.starts_with("user:")) {
            return Err(ServerError::field("bindings.subject", "group:<name> or user:<sub>"));
        }
        if !["role:viewer", "role:operator", "role:admin", "role:auditor"]
            .contains(&b.role.as_str())
        {
            return Err(ServerError::field("bindings.role", format!("unknown role {:?}", b.role)));
        }
        Ok(())
    }

    fn permissions(&self) -> Vec<[String; 4]> {
        vec![
            ["role:viewer", "*", "trust_anchors", "read"].map(str::to_owned),
            ["role:admin", "*", "*", "*"].map(str::to_owned),
        ]
    }

    fn bindings_changed(&self, _revision: u64) -> SeamFuture<'_, Result<(), ServerError>> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn atp(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(ATP);
    command
        .args(args)
        .current_dir(cwd)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_commands_manage_the_stored_bindings() {
    let policy = Arc::new(NamedRoles::default());
    let mut extensions = Extensions::community(|t: &str| t == ADMIN_TOKEN);
    extensions.authorizer = policy.clone();
    let node = start_node_with_extensions(extensions).await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("admin.token"), ADMIN_TOKEN).unwrap();
    let home = d.join("home");
    let token_file = d.join("admin.token");
    let env = [
        ("ATP_NODE", node.url.as_str()),
        ("ATP_HOME", home.to_str().unwrap()),
        ("ATP_ADMIN_TOKEN_FILE", token_file.to_str().unwrap()),
        ("ATP_AGENT", "ops"),
    ];
    let me = atp(&["id", "new"], d, &env).await;
    assert_eq!(me.code, 0, "{}", me.stderr);

    let add = atp(&["admin", "roles", "add", "group:atp-admins", "admin"], d, &env).await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert_eq!(add.stdout.trim(), "added 1 binding(s), revision 1");
    let add = atp(
        &["--json", "admin", "roles", "add", "user:carol", "role:auditor", "--domain", "tenant-a"],
        d,
        &env,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&add.stdout).expect(&add.stderr);
    assert_eq!((v["added"].as_u64(), v["revision"].as_u64()), (Some(1), Some(2)));
    assert_eq!(policy.reloads.load(Ordering::SeqCst), 2, "the policy is told of each change");

    let list = atp(&["admin", "roles", "list"], d, &env).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(
        list.stdout,
        "g, group:atp-admins, role:admin, *\ng, user:carol, role:auditor, tenant-a\n"
    );

    // Export, then remove everything, then import: the same policy.
    let export = atp(&["admin", "roles", "export", "--file", "policy.csv"], d, &env).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let csv = std::fs::read_to_string(d.join("policy.csv")).unwrap();
    assert!(csv.contains("\np, role:admin, *, *, *\n"), "{csv}");
    assert!(
        csv.ends_with(
            "g, group:atp-admins, role:admin, *\ng, user:carol, role:auditor, tenant-a\n"
        )
    );
    for (subject, role, domain) in
        [("group:atp-admins", "admin", "*"), ("user:carol", "auditor", "tenant-a")]
    {
        let r =
            atp(&["admin", "roles", "remove", subject, role, "--domain", domain], d, &env).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.starts_with("removed 1 binding(s)"), "{}", r.stdout);
    }
    let again = atp(&["admin", "roles", "remove", "user:carol", "auditor"], d, &env).await;
    assert_eq!(again.stdout.trim(), "removed 0 binding(s), revision 4");
    assert!(node.state.store.list_role_bindings().await.unwrap().bindings.is_empty());
    let import = atp(&["admin", "roles", "import", "--file", "policy.csv"], d, &env).await;
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert_eq!(import.stdout.trim(), "added 2 binding(s), revision 5");
    let stored = node.state.store.list_role_bindings().await.unwrap();
    assert_eq!(stored.bindings.len(), 2);

    // Bad imports store nothing: a custom permission, a malformed line (both refused by the
    // CLI, exit 2), a role the node does not know (refused by the node, exit 3, with its reason).
    for (text, code, needle) in [
        ("g, user:dave, role:viewer, *\np, role:viewer, *, credentials, revoke\n", 2, "line 2"),
        ("g, user:dave, role:viewer\n", 2, "line 1"),
        ("g, user:dave, role:viewer, *\ng, user:erin, role:root, *\n", 3, "FIELD_INVALID"),
    ] {
        std::fs::write(d.join("bad.csv"), text).unwrap();
        let r = atp(&["--json", "admin", "roles", "import", "--file", "bad.csv"], d, &env).await;
        assert_eq!(r.code, code, "{text:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{text:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "one-line error: {}", r.stderr);
    }
    assert_eq!(node.state.store.list_role_bindings().await.unwrap(), stored, "nothing stored");

    // Without the admin token: refused.
    let no_token: Vec<(&str, &str)> =
        env.iter().copied().filter(|(k, _)| *k != "ATP_ADMIN_TOKEN_FILE").collect();
    let r = atp(&["admin", "roles", "list"], d, &no_token).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_role_policy_answers_enterprise_required() {
    let node = start_node().await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("admin.token"), ADMIN_TOKEN).unwrap();
    let home = d.join("home");
    let token_file = d.join("admin.token");
    let env = [
        ("ATP_NODE", node.url.as_str()),
        ("ATP_HOME", home.to_str().unwrap()),
        ("ATP_ADMIN_TOKEN_FILE", token_file.to_str().unwrap()),
        ("ATP_AGENT", "ops"),
    ];
    assert_eq!(atp(&["id", "new"], d, &env).await.code, 0);
    let r = atp(&["--json", "admin", "roles", "add", "group:x", "admin"], d, &env).await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("ENTERPRISE_REQUIRED"), "{}", r.stderr);
    assert!(node.state.store.list_role_bindings().await.unwrap().bindings.is_empty());
}
