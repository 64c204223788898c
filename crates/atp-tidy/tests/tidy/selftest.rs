//! Self-tests: the checks must catch a broken workspace.

use super::*;

// ---------------------------------------------------------------------------------------------
// Self-tests: the checks must catch a broken workspace
// ---------------------------------------------------------------------------------------------

fn fake_pkg(name: &str, dir: &str, deps: Value, extra: Value) -> Value {
    let mut p = json!({
        "name": name,
        "id": format!("path+file:///ws/{dir}#{name}@0.1.0"),
        "manifest_path": format!("/ws/{dir}/Cargo.toml"),
        "license": "Apache-2.0",
        "license_file": null,
        "publish": [],
        "dependencies": deps,
        "features": {},
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            p.insert(k.clone(), v.clone());
        }
    }
    p
}

fn dep(name: &str, kind: Option<&str>, optional: bool) -> Value {
    json!({ "name": name, "kind": kind, "optional": optional })
}

fn fake_workspace(pkgs: Vec<Value>) -> Workspace {
    let ids: Vec<Value> = pkgs.iter().map(|p| p["id"].clone()).collect();
    parse_workspace(&json!({
        "workspace_root": "/ws",
        "workspace_members": ids,
        "packages": pkgs,
    }))
}

/// A correct miniature workspace with an enterprise crate composed by the node.
fn good_packages() -> Vec<Value> {
    vec![
        fake_pkg("atp-crypto", "crates/atp-crypto", json!([]), json!({})),
        fake_pkg(
            "atp-core",
            "crates/atp-core",
            json!([
                dep("atp-crypto", None, false),
                dep("proptest", Some("dev"), false),
                dep("atp-test-vectors", Some("dev"), false)
            ]),
            json!({}),
        ),
        fake_pkg("atp-test-vectors", "crates/atp-test-vectors", json!([]), json!({})),
        fake_pkg(
            "atp-server",
            "crates/atp-server",
            json!([dep("atp-core", None, false), dep("atp-crypto", Some("dev"), false)]),
            json!({}),
        ),
        fake_pkg(
            "atp-node",
            "crates/atp-node",
            json!([dep("atp-server", None, false), dep("atp-ee-rbac", None, true)]),
            json!({ "features": { "default": [], "rbac": ["dep:atp-ee-rbac"], "enterprise": ["rbac"] } }),
        ),
        fake_pkg(
            "atp-ee-rbac",
            "enterprise/rbac",
            json!([dep("atp-server", None, false)]),
            json!({ "license": null, "license_file": "../../LICENSE-ENTERPRISE" }),
        ),
    ]
}

fn replace(mut pkgs: Vec<Value>, replacement: Value) -> Vec<Value> {
    for p in &mut pkgs {
        if p["name"] == replacement["name"] {
            *p = replacement.clone();
        }
    }
    pkgs
}

fn all_structural_checks(ws: &Workspace) -> Vec<String> {
    let mut v = check_table_coverage(ws);
    v.extend(check_direction(ws));
    v.extend(check_dev_direction(ws));
    v.extend(check_enterprise_edges(ws));
    v.extend(check_default_features(ws));
    v
}

#[test]
fn selftest_good_workspace_passes() {
    let ws = fake_workspace(good_packages());
    assert_clean("synthetic good workspace", all_structural_checks(&ws));
}

#[test]
fn selftest_upward_edge_is_caught() {
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-core",
            "crates/atp-core",
            json!([dep("atp-crypto", None, false), dep("atp-server", None, false)]),
            json!({}),
        ),
    );
    let v = check_direction(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-core -> atp-server")),
        "upward edge not reported: {v:?}"
    );
}

#[test]
fn selftest_upward_dev_edge_is_caught() {
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-crypto",
            "crates/atp-crypto",
            json!([dep("atp-core", Some("dev"), false)]),
            json!({}),
        ),
    );
    let v = check_dev_direction(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-crypto -> atp-core")),
        "upward dev edge not reported: {v:?}"
    );
}

#[test]
fn selftest_test_support_as_normal_dependency_is_caught() {
    let mut pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-core",
            "crates/atp-core",
            json!([dep("atp-crypto", None, false), dep("atp-test-vectors", None, false)]),
            json!({}),
        ),
    );
    pkgs.push(fake_pkg("atp-test-vectors", "crates/atp-test-vectors", json!([]), json!({})));
    let ws = fake_workspace(pkgs);
    let v = check_direction(&ws);
    assert!(
        v.iter().any(|m| m.contains("atp-core -> atp-test-vectors")),
        "test-support crate as a normal dependency not reported: {v:?}"
    );
    // As a dev-dependency it is fine.
    assert_clean("test support as dev-dependency", check_dev_direction(&ws));
}

#[test]
fn selftest_unknown_member_is_caught() {
    let mut pkgs = good_packages();
    pkgs.push(fake_pkg("atp-mystery", "crates/atp-mystery", json!([]), json!({})));
    let v = check_table_coverage(&fake_workspace(pkgs));
    assert!(v.iter().any(|m| m.contains("atp-mystery")), "unknown member not reported: {v:?}");
}

#[test]
fn selftest_apache_to_enterprise_edges_are_caught() {
    // A non-node Apache crate naming an enterprise crate, even optionally.
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-server",
            "crates/atp-server",
            json!([dep("atp-core", None, false), dep("atp-ee-rbac", None, true)]),
            json!({}),
        ),
    );
    let v = check_enterprise_edges(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-server depends on enterprise crate atp-ee-rbac")),
        "Apache -> enterprise edge not reported: {v:?}"
    );

    // The node naming it as a mandatory dependency.
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-node",
            "crates/atp-node",
            json!([dep("atp-server", None, false), dep("atp-ee-rbac", None, false)]),
            json!({}),
        ),
    );
    let v = check_enterprise_edges(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-node depends on enterprise crate atp-ee-rbac")),
        "non-optional node -> enterprise edge not reported: {v:?}"
    );

    // A path dependency into enterprise/ that is not (yet) a workspace member.
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-crypto",
            "crates/atp-crypto",
            json!([{ "name": "atp-ee-sso", "kind": null, "optional": false,
                     "path": "/ws/enterprise/sso" }]),
            json!({}),
        ),
    );
    let v = check_enterprise_edges(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-crypto depends on enterprise crate atp-ee-sso")),
        "path dependency into enterprise/ not reported: {v:?}"
    );
}

#[test]
fn selftest_enterprise_in_default_features_is_caught() {
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-node",
            "crates/atp-node",
            json!([dep("atp-server", None, false), dep("atp-ee-rbac", None, true)]),
            json!({ "features": { "default": ["enterprise"], "rbac": ["dep:atp-ee-rbac"],
                                  "enterprise": ["rbac"] } }),
        ),
    );
    let v = check_default_features(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-node enable enterprise crate atp-ee-rbac")),
        "enterprise crate in default features not reported: {v:?}"
    );
}

#[test]
fn selftest_enterprise_depending_on_node_is_caught() {
    let pkgs = replace(
        good_packages(),
        fake_pkg(
            "atp-ee-rbac",
            "enterprise/rbac",
            json!([dep("atp-node", None, false)]),
            json!({ "license": null, "license_file": "../../LICENSE-ENTERPRISE" }),
        ),
    );
    let v = check_direction(&fake_workspace(pkgs));
    assert!(
        v.iter().any(|m| m.contains("atp-ee-rbac -> atp-node")),
        "enterprise -> node edge not reported: {v:?}"
    );
}

#[test]
fn selftest_bad_licences_are_caught() {
    let pkgs = vec![
        fake_pkg(
            "atp-ee-sso",
            "enterprise/sso",
            json!([]),
            json!({ "license": "Apache-2.0", "license_file": null, "publish": null }),
        ),
        fake_pkg("atp-core", "crates/atp-core", json!([]), json!({ "license": "MIT" })),
    ];
    let v = check_licences(&fake_workspace(pkgs));
    for needle in [
        "atp-ee-sso does not set `license-file`",
        "atp-ee-sso declares license",
        "atp-ee-sso must set `publish = false`",
        "atp-core has license = Some(\"MIT\")",
    ] {
        assert!(v.iter().any(|m| m.contains(needle)), "{needle:?} not reported: {v:?}");
    }
}

#[test]
fn selftest_toml_reader_flattens_lint_tables() {
    let keys = toml_flat_keys(
        "[workspace.lints.rust]\nunsafe_code = \"forbid\" # no unsafe\n[lints]\nworkspace = true\n",
    );
    assert_eq!(
        keys.get("workspace.lints.rust.unsafe_code").map(String::as_str),
        Some("\"forbid\"")
    );
    assert_eq!(keys.get("lints.workspace").map(String::as_str), Some("true"));
    let keys = toml_flat_keys("lints.workspace = true\n[package]\nname = \"x\"\n");
    assert_eq!(keys.get("lints.workspace").map(String::as_str), Some("true"));
    let keys = toml_flat_keys("[lints]\n# workspace = true\n");
    assert_eq!(keys.get("lints.workspace"), None);
}
