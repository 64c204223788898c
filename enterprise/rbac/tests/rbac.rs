//! RBAC: the access table covers every method of the proto descriptors; the role matrix (every
//! built-in role against every guarded operation: allowed or PERMISSION_DENIED); domain
//! isolation; policy changes take effect on the next call; CSV import and export.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use atp_enterprise_rbac::{ACCESS_TABLE, Access, Binding, ROLES, RbacAuthorizer, RbacConfig};
use atp_grpc::tonic::Code;
use atp_server::extensions::{Authorizer as _, Principal};
use prost::Message as _;

fn user(id: &str, groups: &[&str]) -> Principal {
    Principal::User { id: id.into(), roles: groups.iter().map(|g| (*g).to_owned()).collect() }
}

fn binding(line: &str) -> Binding {
    Binding::parse_csv_line(line).unwrap()
}

#[test]
fn every_rpc_of_the_descriptors_has_a_mapping() {
    let set = prost_types::FileDescriptorSet::decode(atp_grpc::FILE_DESCRIPTOR_SET).unwrap();
    let mapped: BTreeSet<&str> = ACCESS_TABLE.iter().map(|(m, _)| *m).collect();
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push(format!("{}.{}/{}", file.package(), service.name(), method.name()));
            }
        }
    }
    assert!(methods.len() >= 20, "the descriptors hold the atp.v1 services: {methods:?}");
    let missing: Vec<_> = methods.iter().filter(|m| !mapped.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "methods without an RBAC mapping (unmapped = denied): {missing:?}");
    let mut seen = BTreeSet::new();
    for (m, _) in ACCESS_TABLE {
        assert!(seen.insert(*m), "{m} is mapped twice");
    }
}

#[tokio::test]
async fn role_matrix_every_role_against_every_guarded_operation() {
    let rbac = RbacAuthorizer::new(&[
        binding("g, group:viewers, role:viewer, *"),
        binding("g, group:operators, role:operator, *"),
        binding("g, group:admins, role:admin, *"),
        binding("g, group:auditors, role:auditor, *"),
    ])
    .await
    .unwrap();
    let allowed = |role: &str, op: &str| -> bool {
        match role {
            "role:admin" => true,
            "role:operator" => matches!(
                op,
                "trust_anchors.list"
                    | "metrics.read"
                    | "credential.issue"
                    | "status.update"
                    | "status_list.host"
                    | "trust.recompute"
                    | "trust.config.read"
            ),
            "role:viewer" => {
                matches!(op, "trust_anchors.list" | "metrics.read" | "trust.config.read")
            }
            "role:auditor" => matches!(op, "metrics.read" | "audit.read"),
            _ => false,
        }
    };
    let operations: BTreeSet<&str> = ACCESS_TABLE
        .iter()
        .filter_map(|(_, a)| match a {
            Access::Guarded { operation, .. } => Some(*operation),
            Access::Public => None,
        })
        .collect();
    assert!(operations.contains("trust_anchors.set"));
    let mut checked = 0;
    for role in ROLES {
        let group = match *role {
            "role:viewer" => "viewers",
            "role:operator" => "operators",
            "role:admin" => "admins",
            _ => "auditors",
        };
        let principal = user(&format!("someone-{group}"), &[group]);
        for op in &operations {
            let r = rbac.authorize(&principal, op, "node").await;
            if allowed(role, op) {
                assert!(r.is_ok(), "{role} must be allowed {op}: {r:?}");
            } else {
                let e = r.expect_err(&format!("{role} must be denied {op}"));
                assert_eq!(e.code(), Code::PermissionDenied, "{role} {op}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROLES.len() * operations.len());

    // No binding: denied; anonymous: AUTH_REQUIRED; the node's admin token: allowed.
    let nobody = user("nobody", &["unknown-group"]);
    let e = rbac.authorize(&nobody, "trust_anchors.list", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = rbac.authorize(&Principal::Anonymous, "trust_anchors.list", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    rbac.authorize(&Principal::Admin, "trust_anchors.set", "node").await.unwrap();
    // An operation outside the table is denied even to role:admin.
    let admin_user = user("root-ish", &["admins"]);
    let e = rbac.authorize(&admin_user, "something.new", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_operator_of_tenant_a_cannot_revoke_in_tenant_b() {
    let rbac =
        RbacAuthorizer::new(&[binding("g, group:ops-a, role:operator, tenant-a")]).await.unwrap();
    let subjects = vec!["user:olga".to_owned(), "group:ops-a".to_owned()];
    assert!(rbac.check(&subjects, "status.update", "tenant-a").await);
    assert!(!rbac.check(&subjects, "status.update", "tenant-b").await);
    assert!(!rbac.check(&subjects, "trust_anchors.set", "tenant-a").await);
    // A `*` binding applies in every tenant.
    rbac.add_binding(&binding("g, user:root, role:admin, *")).await.unwrap();
    let root = vec!["user:root".to_owned()];
    assert!(rbac.check(&root, "status.update", "tenant-b").await);
}

#[tokio::test]
async fn a_policy_change_takes_effect_on_the_next_call() {
    let rbac = RbacAuthorizer::new(&[]).await.unwrap();
    let alice = user("alice", &["atp-admins"]);
    let e = rbac.authorize(&alice, "trust_anchors.set", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let b = binding("g, group:atp-admins, role:admin, *");
    assert!(rbac.add_binding(&b).await.unwrap());
    rbac.authorize(&alice, "trust_anchors.set", "node").await.expect("allowed after the change");
    assert!(rbac.remove_binding(&b).await.unwrap());
    let e = rbac.authorize(&alice, "trust_anchors.set", "node").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn bindings_round_trip_through_csv_and_bad_lines_are_refused() {
    let csv = "# operators\ng, group:atp-admins, role:admin, *\ng, user:bob, role:auditor, t1\n";
    let rbac = RbacAuthorizer::new(&[]).await.unwrap();
    assert_eq!(rbac.import_csv(csv).await.unwrap(), 2);
    let exported = rbac.export_csv().await;
    let g_lines: Vec<&str> = exported.lines().filter(|l| l.starts_with("g,")).collect();
    assert_eq!(g_lines, ["g, group:atp-admins, role:admin, *", "g, user:bob, role:auditor, t1"]);
    let p_lines = exported.lines().filter(|l| l.starts_with("p,")).count();
    assert_eq!(p_lines, atp_enterprise_rbac::BUILTIN_POLICY.len());
    assert!(exported.contains("p, role:operator, *, credentials, revoke\n"));
    let again = RbacAuthorizer::new(&[]).await.unwrap();
    again.import_csv(&exported).await.unwrap();
    assert_eq!(again.bindings().await, rbac.bindings().await);

    for bad in [
        "p, role:viewer, *, x, y",
        "g, atp-admins, role:admin, *",
        "g, group:x, role:root, *",
        "g, group:x, role:admin",
    ] {
        assert!(Binding::parse_csv_line(bad).is_err(), "{bad}");
    }
    // One bad line: nothing is imported.
    let fresh = RbacAuthorizer::new(&[]).await.unwrap();
    assert!(fresh.import_csv("g, group:a, role:admin, *\ng, nope\n").await.is_err());
    assert!(fresh.bindings().await.is_empty());

    let config = RbacConfig {
        bindings: vec!["g, group:atp-admins, role:admin, *".into()],
        ..RbacConfig::default()
    };
    let from_config = RbacAuthorizer::from_config(&config).await.unwrap();
    assert_eq!(from_config.bindings().await.len(), 1);
}
