//! The RBAC policy in the store (real SQLite, real Casbin): `[rbac]` bindings seed only a
//! store whose policy was never written; a change written by another node is picked up once the
//! refresh interval has passed, a local change at once; tenants from resource prefixes isolate
//! domains; the Casbin CSV form round-trips and refuses what it cannot hold, naming the line.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atp_enterprise_rbac::{
    BUILTIN_POLICY, Binding, RbacAuthorizer, RbacConfig, RbacError, parse_policy_csv, policy_csv,
};
use atp_grpc::tonic::Code;
use atp_server::extensions::{Authorizer as _, Principal};
use atp_store::{RoleBinding, SqliteStore, Store};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        TempDir(
            std::env::temp_dir().join(format!("atp-rbac-{name}-{}-{nanos}", std::process::id())),
        )
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn user(id: &str, groups: &[&str]) -> Principal {
    Principal::User { id: id.into(), roles: groups.iter().map(|g| (*g).to_owned()).collect() }
}

fn rb(line: &str) -> RoleBinding {
    Binding::parse_csv_line(line).unwrap().into()
}

fn config(bindings: &[&str], refresh: u64) -> RbacConfig {
    RbacConfig {
        bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        refresh_interval_seconds: refresh,
        ..RbacConfig::default()
    }
}

#[tokio::test]
async fn config_bindings_seed_only_a_store_never_written() {
    let dir = TempDir::new("seed");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.0).await.unwrap());
    let first =
        RbacAuthorizer::open(store.clone(), &config(&["g, group:admins, role:admin, *"], 5))
            .await
            .unwrap();
    assert_eq!(first.loaded_revision(), Some(1));
    let stored = store.list_role_bindings().await.unwrap();
    assert_eq!(stored.bindings, vec![rb("g, group:admins, role:admin, *")]);
    let alice = user("alice", &["admins"]);
    first.authorize(&alice, "trust_anchors.set", "node").await.unwrap();

    // A second node (or a restart) with other configured bindings: the store wins.
    let second =
        RbacAuthorizer::open(store.clone(), &config(&["g, group:others, role:admin, *"], 5))
            .await
            .unwrap();
    assert_eq!(second.loaded_revision(), Some(1));
    assert_eq!(second.bindings().await, vec![Binding::from(rb("g, group:admins, role:admin, *"))]);
    let other = user("olaf", &["others"]);
    let e = second.authorize(&other, "trust_anchors.set", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // A bad configured binding stops the start.
    let bad = RbacAuthorizer::open(store.clone(), &config(&["g, group:x, role:root, *"], 5)).await;
    assert!(matches!(bad, Err(RbacError::Config(m)) if m.contains("role")));
    let too_slow = RbacAuthorizer::open(store.clone(), &config(&[], 301)).await;
    assert!(matches!(too_slow, Err(RbacError::Config(m)) if m.contains("refresh_interval")));
    store.close().await.unwrap();
}

#[tokio::test]
async fn another_nodes_change_applies_after_the_refresh_interval_a_local_one_at_once() {
    let dir = TempDir::new("refresh");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.0).await.unwrap());
    // Node A reads the revision on every call (interval 0), node B at most every 300 s.
    let node_a = RbacAuthorizer::open(store.clone(), &config(&[], 0)).await.unwrap();
    let node_b = RbacAuthorizer::open(store.clone(), &config(&[], 300)).await.unwrap();
    let bob = user("bob", &["ops"]);
    for node in [&node_a, &node_b] {
        let e = node.authorize(&bob, "status.update", "node").await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }

    // A third party (the RPC on another node) writes the store.
    let change = store.add_role_bindings(vec![rb("g, group:ops, role:operator, *")]).await.unwrap();
    assert_eq!(change.revision, 1);
    node_a.authorize(&bob, "status.update", "node").await.expect("A reads the new revision");
    assert_eq!(node_a.loaded_revision(), Some(1));
    // B's interval has not passed: still the old policy (bounded staleness)...
    let e = node_b.authorize(&bob, "status.update", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // ...until it is told (the RPC on B itself does this) or the interval passes.
    node_b.refresh(true).await.unwrap();
    node_b.authorize(&bob, "status.update", "node").await.expect("B after the reload");

    // Removal is picked up the same way.
    store.remove_role_bindings(vec![rb("g, group:ops, role:operator, *")]).await.unwrap();
    let e = node_a.authorize(&bob, "status.update", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // A stored binding this software cannot hold grants nothing (and does not break loading).
    store
        .add_role_bindings(vec![RoleBinding {
            subject: "group:ops".into(),
            role: "role:superuser".into(),
            domain: "*".into(),
        }])
        .await
        .unwrap();
    let e = node_a.authorize(&bob, "trust_anchors.list", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(node_a.loaded_revision(), Some(3));

    // The policy cannot be read: no decision on a possibly stale policy.
    store.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let e = node_a.authorize(&bob, "trust_anchors.list", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
}

#[tokio::test]
async fn tenants_from_resource_prefixes_isolate_domains() {
    let dir = TempDir::new("tenants");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.0).await.unwrap());
    let mut cfg = config(
        &[
            "g, group:ops-a, role:operator, tenant-a",
            "g, group:ops-b, role:operator, tenant-b",
            "g, group:root, role:admin, *",
        ],
        5,
    );
    cfg.tenants = BTreeMap::from([
        ("tenant-a".to_owned(), vec!["https://node.example/status/a-".to_owned()]),
        (
            "tenant-b".to_owned(),
            vec!["https://node.example/status/".to_owned(), "did:atp:zTenantB".to_owned()],
        ),
    ]);
    let rbac = RbacAuthorizer::open(store.clone(), &cfg).await.unwrap();
    // The longest prefix wins: `.../status/a-1` is tenant A's, `.../status/b-1` tenant B's.
    assert_eq!(rbac.domain_of("https://node.example/status/a-1"), "tenant-a");
    assert_eq!(rbac.domain_of("https://node.example/status/b-1"), "tenant-b");
    assert_eq!(rbac.domain_of("node"), "*");

    let olga = user("olga", &["ops-a"]);
    let list_a = "https://node.example/status/a-1";
    let list_b = "https://node.example/status/b-1";
    rbac.authorize(&olga, "status.update", list_a).await.expect("operator of A revokes in A");
    let e = rbac.authorize(&olga, "status.update", list_b).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "an operator of A cannot revoke in B");
    let e = rbac.authorize(&olga, "status_list.host", "did:atp:zTenantB").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A tenant binding does not reach resources outside every tenant.
    let e = rbac.authorize(&olga, "trust_anchors.list", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let bert = user("bert", &["ops-b"]);
    rbac.authorize(&bert, "status.update", list_b).await.unwrap();
    rbac.authorize(&bert, "status_list.host", "did:atp:zTenantB").await.unwrap();
    // A `*` binding applies in every tenant.
    let root = user("root", &["root"]);
    for resource in [list_a, list_b, "node"] {
        rbac.authorize(&root, "status.update", resource).await.unwrap();
    }

    // Bad tenant tables stop the start.
    for (tenant, prefixes) in [("*", vec!["x"]), ("bad tenant", vec!["x"]), ("t", vec![""])] {
        let mut bad = config(&[], 5);
        bad.tenants = BTreeMap::from([(
            tenant.to_owned(),
            prefixes.iter().map(|p| (*p).to_owned()).collect(),
        )]);
        assert!(RbacAuthorizer::open(store.clone(), &bad).await.is_err(), "{tenant}");
    }
    let mut twice = config(&[], 5);
    twice.tenants = BTreeMap::from([
        ("a".to_owned(), vec!["p".to_owned()]),
        ("b".to_owned(), vec!["p".to_owned()]),
    ]);
    assert!(RbacAuthorizer::open(store.clone(), &twice).await.is_err());
    store.close().await.unwrap();
}

#[test]
fn the_casbin_csv_form_round_trips_and_refuses_what_it_cannot_hold() {
    let bindings = vec![
        Binding::parse_csv_line("g, group:atp-admins, role:admin, *").unwrap(),
        Binding::parse_csv_line("g, user:carol@example.com, role:auditor, tenant-a").unwrap(),
    ];
    let csv = policy_csv(&bindings);
    assert!(csv.starts_with('#'));
    assert_eq!(csv.lines().filter(|l| l.starts_with("p, ")).count(), BUILTIN_POLICY.len());
    assert_eq!(parse_policy_csv(&csv).unwrap(), bindings);

    for (text, line, needle) in [
        ("g, group:a, role:admin, *\np, role:viewer, *, credentials, revoke\n", 2, "built-in"),
        ("# c\n\ng, group:a, role:root, *\n", 3, "unknown role"),
        ("g, a, role:admin, *\n", 1, "subject"),
        ("g, group:a, role:admin\n", 1, "subject, role, domain"),
        ("g, group:a, role:admin, tenant a\n", 1, "domain"),
        ("x, group:a, role:admin, *\n", 1, "only `g` lines"),
    ] {
        match parse_policy_csv(text) {
            Err(RbacError::Csv { line: l, reason }) => {
                assert_eq!(l, line, "{text:?}");
                assert!(reason.contains(needle), "{text:?}: {reason}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}
