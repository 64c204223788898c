//! Repository-wide invariants that no single crate can check about itself.
//!
//! Each `#[test]` below is cited by name from `docs/ARCHITECTURE.md`; keep the two in step (the
//! test `architecture_doc_cites_only_real_tidy_tests` checks it).
//!
//! The structural checks are written as functions from parsed `cargo metadata` to a list of
//! violations, so that the `selftest_*` tests can feed them a broken synthetic workspace and
//! prove that they really fail.
#![allow(missing_docs)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

/// Allowed workspace edges for normal and build dependencies of every Apache crate
/// (docs/design.md §2). A workspace member that is neither listed here, nor under `enterprise/`,
/// nor in [`EXEMPT`] fails `every_workspace_member_is_in_the_layer_table`: adding a crate means
/// deciding its place in this table.
const LAYERS: &[(&str, &[&str])] = &[
    ("atp-crypto", &[]),
    ("atp-core", &["atp-crypto"]),
    ("atp-trust", &["atp-core", "atp-crypto"]),
    ("atp-store", &["atp-core", "atp-crypto"]),
    ("atp-grpc", &["atp-core"]),
    ("atp-server", &["atp-store", "atp-core", "atp-crypto", "atp-grpc", "atp-trust"]),
    // Enterprise crates are allowed for atp-node too, but only as optional dependencies; that
    // is checked by `no_apache_crate_depends_on_enterprise`.
    (
        "atp-node",
        &["atp-server", "atp-store", "atp-trust", "atp-grpc", "atp-core", "atp-crypto", "atp-sdk"],
    ),
    ("atp-sdk", &["atp-core", "atp-crypto", "atp-grpc"]),
    ("atp-cli", &["atp-sdk", "atp-core", "atp-crypto", "atp-grpc"]),
    // The witness: an independent party, so it depends on the pure rules only, never on the
    // node's server or store.
    ("atp-witness", &["atp-core", "atp-crypto"]),
    // The load generator: a gRPC client of the node; starts a real node in-process in its tests.
    ("atp-bench", &["atp-server", "atp-store", "atp-grpc", "atp-core", "atp-crypto"]),
    // Test support: locates ../shared/vectors. Usable only as a dev-dependency (TEST_SUPPORT).
    ("atp-test-vectors", &[]),
    // Test support: a real node in-process for integration tests (TEST_SUPPORT).
    ("atp-test-node", &["atp-server", "atp-store", "atp-grpc", "atp-core", "atp-crypto"]),
    // Test support: the one Store conformance suite every backend runs (TEST_SUPPORT).
    ("atp-store-conformance", &["atp-store", "atp-core", "atp-crypto"]),
];

/// Test-support crates: any crate may name them as a dev-dependency, none as a normal or build
/// dependency.
const TEST_SUPPORT: &[&str] = &["atp-test-vectors", "atp-test-node", "atp-store-conformance"];

/// Upward dev-dependencies allowed only so that tests start a real node in-process (the SDK and
/// the CLI are tested against the real server, which they never depend on otherwise).
/// The witness's tests start a real node that collects its cosignatures, and an SDK client that
/// requires them.
const NODE_TEST_HARNESS: &[(&str, &[&str])] = &[
    ("atp-sdk", &["atp-server", "atp-store"]),
    ("atp-cli", &["atp-server", "atp-store"]),
    ("atp-witness", &["atp-server", "atp-sdk"]),
];

/// Workspace members outside the layer table (test-only tooling). Nothing may depend on them.
const EXEMPT: &[&str] = &["atp-tidy"];

/// Apache crates that an enterprise crate may depend on. Enterprise crates depend only on Apache
/// crates (never on each other, never on the node that composes them).
const ENTERPRISE_MAY_USE: &[&str] =
    &["atp-crypto", "atp-core", "atp-trust", "atp-store", "atp-grpc", "atp-server"];

/// The only Apache crate that may name an enterprise crate (as an optional dependency).
const COMPOSITION_POINT: &str = "atp-node";

/// Pure library crates: no unsafe code, no network, no database.
const PURE: &[&str] = &["atp-crypto", "atp-core", "atp-trust"];

/// Pure crates that must exist at every stage.
const PURE_REQUIRED: &[&str] = &["atp-crypto", "atp-core"];

/// Crates that do network or database I/O; a pure crate must not pull them in, directly or
/// transitively.
const IO_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "tonic",
    "sqlx",
    "rusqlite",
    "mio",
    "async-std",
    "ureq",
    "h2",
    "axum",
    "postgres",
    "tokio-postgres",
    "libsqlite3-sys",
];

/// Source fragments that mean a pure crate talks to the network.
const NET_PATTERNS: &[&str] = &["std::net", "TcpStream", "TcpListener", "UdpSocket"];

/// Entries that must exist at the top level of the repository.
const TOP_LEVEL: &[&str] = &[
    "Cargo.toml",
    "crates",
    "proto",
    "enterprise",
    "deploy",
    "docs",
    "LICENSE-APACHE",
    "LICENSE-ENTERPRISE",
    "README.md",
    "docs/ARCHITECTURE.md",
    "scripts/test.sh",
    ".ci/run",
];

/// The fresh-machine test command. README.md must give it and `.ci/run` must call it.
const TEST_COMMAND: &str = "bash scripts/test.sh";

/// Files in the vectors directory at least this large must not appear byte for byte in the repo.
const VECTOR_COPY_MIN_BYTES: u64 = 200;

// ---------------------------------------------------------------------------------------------
// Workspace model, parsed from `cargo metadata`
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Dev,
    Build,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Dev => "dev",
            Kind::Build => "build",
        }
    }
}

#[derive(Debug, Clone)]
struct Dep {
    /// Package name (not the rename).
    name: String,
    kind: Kind,
    optional: bool,
    path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
struct Pkg {
    name: String,
    id: String,
    manifest_path: PathBuf,
    enterprise: bool,
    license: Option<String>,
    license_file: Option<String>,
    /// `Some(vec![])` means `publish = false`; `None` means publishable anywhere.
    publish: Option<Vec<String>>,
    deps: Vec<Dep>,
    features: BTreeMap<String, Vec<String>>,
}

impl Pkg {
    fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

#[derive(Debug, Clone)]
struct Workspace {
    root: PathBuf,
    members: Vec<Pkg>,
}

impl Workspace {
    fn member(&self, name: &str) -> Option<&Pkg> {
        self.members.iter().find(|p| p.name == name)
    }

    /// Is the target of `dep` an enterprise crate? A dependency is enterprise if it names an
    /// enterprise workspace member, or if its path lies under `enterprise/`.
    fn dep_is_enterprise(&self, dep: &Dep) -> bool {
        if let Some(m) = self.member(&dep.name) {
            return m.enterprise;
        }
        dep.path.as_deref().is_some_and(|p| p.starts_with(self.root.join("enterprise")))
    }

    fn dep_is_member(&self, dep: &Dep) -> bool {
        self.member(&dep.name).is_some()
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn parse_workspace(meta: &Value) -> Workspace {
    let root = PathBuf::from(
        meta["workspace_root"].as_str().expect("cargo metadata has no workspace_root"),
    );
    let member_ids: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .expect("cargo metadata has no workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut members = Vec::new();
    for p in meta["packages"].as_array().expect("cargo metadata has no packages") {
        let id = str_field(p, "id").expect("package without id");
        if !member_ids.contains(id.as_str()) {
            continue;
        }
        let manifest_path =
            PathBuf::from(str_field(p, "manifest_path").expect("package without manifest_path"));
        let enterprise = manifest_path.starts_with(root.join("enterprise"));
        let deps = p["dependencies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|d| Dep {
                name: str_field(d, "name").expect("dependency without name"),
                kind: match d["kind"].as_str() {
                    Some("dev") => Kind::Dev,
                    Some("build") => Kind::Build,
                    _ => Kind::Normal,
                },
                optional: d["optional"].as_bool().unwrap_or(false),
                path: str_field(d, "path").map(PathBuf::from),
            })
            .collect();
        let publish = p["publish"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        let features = p["features"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let list = v
                            .as_array()
                            .map(Vec::as_slice)
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect();
                        (k.clone(), list)
                    })
                    .collect()
            })
            .unwrap_or_default();
        members.push(Pkg {
            name: str_field(p, "name").expect("package without name"),
            id,
            manifest_path,
            enterprise,
            license: str_field(p, "license"),
            license_file: str_field(p, "license_file"),
            publish,
            deps,
            features,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Workspace { root, members }
}

// ---------------------------------------------------------------------------------------------
// Checks: each returns the list of violations, one human-readable line per offence
// ---------------------------------------------------------------------------------------------

fn layer_of(name: &str) -> Option<&'static [&'static str]> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, deps)| *deps)
}

/// Every crate reachable from `name` through the layer table (the "lower layers").
fn lower_layers(name: &str) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&'static str> = layer_of(name).unwrap_or_default().to_vec();
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            stack.extend(layer_of(n).unwrap_or_default());
        }
    }
    seen
}

fn check_table_coverage(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for p in &ws.members {
        if p.enterprise || EXEMPT.contains(&p.name.as_str()) {
            continue;
        }
        if layer_of(&p.name).is_none() {
            out.push(format!(
                "workspace member `{}` ({}) is not in the LAYERS table of \
                 crates/atp-tidy/tests/tidy.rs; decide which crates it may depend on and add it",
                p.name,
                p.manifest_path.display()
            ));
        }
    }
    for p in &ws.members {
        let rel = p.manifest_path.strip_prefix(&ws.root).unwrap_or(&p.manifest_path);
        if !(rel.starts_with("crates") || rel.starts_with("enterprise")) {
            out.push(format!(
                "workspace member `{}` lives at {}, outside crates/ and enterprise/",
                p.name,
                rel.display()
            ));
        }
    }
    out
}

/// Normal and build edges between workspace members follow the layer table.
fn check_direction(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for p in &ws.members {
        if EXEMPT.contains(&p.name.as_str()) {
            continue;
        }
        for d in p.deps.iter().filter(|d| d.kind != Kind::Dev && ws.dep_is_member(d)) {
            if p.enterprise {
                let target_is_enterprise = ws.dep_is_enterprise(d);
                if target_is_enterprise || !ENTERPRISE_MAY_USE.contains(&d.name.as_str()) {
                    out.push(format!(
                        "forbidden edge {} -> {} ({} dependency): enterprise crates may depend \
                         only on {:?}",
                        p.name,
                        d.name,
                        d.kind.label(),
                        ENTERPRISE_MAY_USE
                    ));
                }
                continue;
            }
            if ws.dep_is_enterprise(d) {
                // Apache -> enterprise edges are judged by `check_enterprise_edges`.
                continue;
            }
            let allowed = layer_of(&p.name).unwrap_or_default();
            if TEST_SUPPORT.contains(&d.name.as_str()) {
                out.push(format!(
                    "forbidden edge {} -> {} ({} dependency): test-support crates may be only \
                     dev-dependencies",
                    p.name,
                    d.name,
                    d.kind.label()
                ));
            } else if !allowed.contains(&d.name.as_str()) {
                out.push(format!(
                    "forbidden edge {} -> {} ({} dependency): {} may depend only on {:?} \
                     (LAYERS table, docs/design.md §2)",
                    p.name,
                    d.name,
                    d.kind.label(),
                    p.name,
                    allowed
                ));
            }
        }
    }
    out
}

/// Dev-dependencies between workspace members may only point to lower layers (or to a
/// test-support crate).
fn check_dev_direction(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for p in &ws.members {
        if EXEMPT.contains(&p.name.as_str()) {
            continue;
        }
        let mut lower: BTreeSet<&str> = if p.enterprise {
            ENTERPRISE_MAY_USE
                .iter()
                .flat_map(|n| lower_layers(n).into_iter().chain([*n]))
                .collect()
        } else {
            lower_layers(&p.name)
        };
        lower.extend(TEST_SUPPORT.iter().filter(|t| **t != p.name));
        lower.extend(
            NODE_TEST_HARNESS.iter().filter(|(n, _)| *n == p.name).flat_map(|(_, d)| d.iter()),
        );
        for d in p.deps.iter().filter(|d| d.kind == Kind::Dev && ws.dep_is_member(d)) {
            if ws.dep_is_enterprise(d) {
                continue; // judged by `check_enterprise_edges`
            }
            if !lower.contains(d.name.as_str()) {
                out.push(format!(
                    "forbidden dev edge {} -> {}: dev-dependencies may point only to lower \
                     layers {:?}",
                    p.name, d.name, lower
                ));
            }
        }
    }
    out
}

/// No Apache crate names an enterprise crate, except atp-node with an optional normal dependency.
fn check_enterprise_edges(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for p in ws.members.iter().filter(|p| !p.enterprise) {
        for d in p.deps.iter().filter(|d| ws.dep_is_enterprise(d)) {
            let ok = p.name == COMPOSITION_POINT && d.kind == Kind::Normal && d.optional;
            if !ok {
                out.push(format!(
                    "Apache crate {} depends on enterprise crate {} ({} dependency, optional = \
                     {}); only {} may, and only as an optional normal dependency behind a feature",
                    p.name,
                    d.name,
                    d.kind.label(),
                    d.optional,
                    COMPOSITION_POINT
                ));
            }
        }
    }
    out
}

/// Optional dependencies switched on by the `default` feature of `p`.
fn deps_enabled_by_default(p: &Pkg) -> BTreeSet<String> {
    let optional: BTreeSet<&str> =
        p.deps.iter().filter(|d| d.optional).map(|d| d.name.as_str()).collect();
    let mut enabled = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec!["default".to_owned()];
    while let Some(f) = stack.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        if let Some(dep) = f.strip_prefix("dep:") {
            enabled.insert(dep.to_owned());
            continue;
        }
        if let Some((left, _feature_of_dep)) = f.split_once('/') {
            // `dep?/feat` is weak and enables nothing; `dep/feat` enables `dep`.
            if !left.ends_with('?') {
                stack.push(left.to_owned());
            }
            continue;
        }
        if let Some(list) = p.features.get(&f) {
            stack.extend(list.iter().cloned());
        } else if optional.contains(f.as_str()) {
            enabled.insert(f);
        }
    }
    enabled
}

/// With default features, no Apache crate pulls in an enterprise crate.
fn check_default_features(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for p in ws.members.iter().filter(|p| !p.enterprise) {
        let enabled = deps_enabled_by_default(p);
        for d in p.deps.iter().filter(|d| ws.dep_is_enterprise(d) && enabled.contains(&d.name)) {
            out.push(format!(
                "the default features of {} enable enterprise crate {}; enterprise code must be \
                 opt-in (e.g. `--features {}` or `--features enterprise`)",
                p.name, d.name, d.name
            ));
        }
    }
    out
}

fn check_licences(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    let enterprise_licence = ws.root.join("LICENSE-ENTERPRISE");
    for p in &ws.members {
        if p.enterprise {
            match &p.license_file {
                None => out.push(format!(
                    "enterprise crate {} does not set `license-file` (expected the repository's \
                     LICENSE-ENTERPRISE)",
                    p.name
                )),
                Some(f) => {
                    let full = p.dir().join(f);
                    let same = match (full.canonicalize(), enterprise_licence.canonicalize()) {
                        (Ok(a), Ok(b)) => a == b,
                        _ => full == enterprise_licence,
                    };
                    if !same {
                        out.push(format!(
                            "enterprise crate {} has license-file = {f:?}, which is not the \
                             repository's LICENSE-ENTERPRISE",
                            p.name
                        ));
                    }
                }
            }
            if let Some(l) = &p.license {
                out.push(format!(
                    "enterprise crate {} declares license = {l:?}; it must use only \
                     license-file = LICENSE-ENTERPRISE",
                    p.name
                ));
            }
            if p.publish.as_deref() != Some(&[]) {
                out.push(format!(
                    "enterprise crate {} must set `publish = false` (cargo metadata shows \
                     publish = {:?})",
                    p.name, p.publish
                ));
            }
        } else {
            if p.license.as_deref() != Some("Apache-2.0") {
                out.push(format!(
                    "Apache crate {} has license = {:?}, expected \"Apache-2.0\"",
                    p.name, p.license
                ));
            }
            if let Some(f) = &p.license_file {
                out.push(format!(
                    "Apache crate {} sets license-file = {f:?}; Apache crates use \
                     `license = \"Apache-2.0\"` (LICENSE-APACHE at the root)",
                    p.name
                ));
            }
        }
    }
    out
}

fn assert_clean(what: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{what}: {} violation(s):\n  - {}",
        violations.len(),
        violations.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------------------
// Access to the real repository
// ---------------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().expect("cannot canonicalize the workspace root (CARGO_MANIFEST_DIR/../..)")
}

fn cargo_metadata(no_deps: bool) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(repo_root()).args(["metadata", "--format-version", "1"]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run `{cargo} metadata`: {e}"));
    assert!(
        out.status.success(),
        "`{cargo} metadata` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("`cargo metadata` printed invalid JSON")
}

/// Workspace members and their declared dependencies (no resolution needed).
fn workspace() -> &'static Workspace {
    static WS: OnceLock<Workspace> = OnceLock::new();
    WS.get_or_init(|| {
        let ws = parse_workspace(&cargo_metadata(true));
        assert_eq!(ws.root, repo_root(), "cargo metadata reports a different workspace root");
        ws
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A small TOML reader, enough for `Cargo.toml` lint tables: it flattens `[a.b]` + `c = v` and
/// `a.b.c = v` alike into `"a.b.c" -> "v"` (value text as written, whitespace removed).
fn toml_flat_keys(text: &str) -> BTreeMap<String, String> {
    fn strip_comment(line: &str) -> &str {
        let mut in_str = false;
        for (i, c) in line.char_indices() {
            match c {
                '"' | '\'' => in_str = !in_str,
                '#' if !in_str => return &line[..i],
                _ => {}
            }
        }
        line
    }
    fn norm(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'').collect()
    }
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for raw in text.lines() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = norm(line.trim_start_matches('[').trim_end_matches(']'));
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let key = if section.is_empty() { norm(k) } else { format!("{section}.{}", norm(k)) };
            let value: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            out.insert(key, value);
        }
    }
    out
}

/// Files of the repository, skipping build output and VCS data.
fn repo_files(root: &Path) -> Vec<PathBuf> {
    const SKIP_DIRS: &[&str] = &[".git", "target", "node_modules", ".venv", "venv"];
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("cannot read directory entry");
            let path = entry.path();
            let ft = entry.file_type().expect("cannot stat directory entry");
            if ft.is_dir() {
                let name = entry.file_name();
                let skip = SKIP_DIRS.iter().any(|s| name == *s)
                    || target_dir.as_deref().is_some_and(|t| t == path);
                if !skip {
                    stack.push(path);
                }
            } else if ft.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn vectors_dir() -> PathBuf {
    match std::env::var_os("ATP_TEST_VECTORS") {
        Some(v) => PathBuf::from(v),
        None => repo_root().join("../shared/vectors"),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests on the real repository
// ---------------------------------------------------------------------------------------------

#[test]
fn top_level_layout_is_complete() {
    let root = repo_root();
    let missing: Vec<String> = TOP_LEVEL
        .iter()
        .filter(|e| !root.join(e).exists())
        .map(|e| format!("missing top-level entry `{e}`"))
        .collect();
    assert_clean("repository layout", missing);
}

#[test]
fn licence_files_say_what_they_cover() {
    let root = repo_root();
    let apache = read(&root.join("LICENSE-APACHE"));
    let mut bad = Vec::new();
    for needle in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ] {
        if !apache.contains(needle) {
            bad.push(format!(
                "LICENSE-APACHE lacks {needle:?}; it must be the full Apache License 2.0 text"
            ));
        }
    }
    let enterprise = read(&root.join("LICENSE-ENTERPRISE"));
    if !enterprise.contains("`enterprise/`") {
        bad.push("LICENSE-ENTERPRISE must state that it covers `enterprise/` only".to_owned());
    }
    if !enterprise.contains("LICENSE-APACHE") {
        bad.push(
            "LICENSE-ENTERPRISE must point to LICENSE-APACHE for everything outside enterprise/"
                .to_owned(),
        );
    }
    assert_clean("licence files", bad);
}

#[test]
fn every_workspace_member_is_in_the_layer_table() {
    assert_clean("layer table coverage", check_table_coverage(workspace()));
}

#[test]
fn dependency_direction_follows_the_layers() {
    assert_clean("dependency direction", check_direction(workspace()));
}

#[test]
fn dev_dependencies_point_only_to_lower_layers() {
    assert_clean("dev-dependency direction", check_dev_direction(workspace()));
}

#[test]
fn no_apache_crate_depends_on_enterprise() {
    assert_clean("Apache -> enterprise dependencies", check_enterprise_edges(workspace()));
}

#[test]
fn default_features_pull_in_no_enterprise_crate() {
    assert_clean(
        "enterprise crates enabled by default features",
        check_default_features(workspace()),
    );
}

/// The enterprise workspace members in the normal-dependency closure of `atp-node`, from
/// `cargo metadata` resolved with `features` (`None`: the default features).
fn enterprise_crates_in_node_build(features: Option<&str>) -> BTreeSet<String> {
    let enterprise: BTreeSet<&str> =
        workspace().members.iter().filter(|p| p.enterprise).map(|p| p.name.as_str()).collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(repo_root()).args(["metadata", "--format-version", "1"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run `{cargo} metadata`: {e}"));
    assert!(
        out.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve graph")
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let node_id = names
        .iter()
        .find(|(_, name)| **name == COMPOSITION_POINT)
        .map(|(id, _)| *id)
        .expect("atp-node in cargo metadata");
    let mut seen = BTreeSet::new();
    let mut todo = vec![node_id];
    let mut found = BTreeSet::new();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let deps = nodes.get(id).and_then(|n| n["deps"].as_array()).map(Vec::as_slice);
        for d in deps.unwrap_or_default() {
            let normal =
                d["dep_kinds"].as_array().is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()));
            let Some(pkg) = d["pkg"].as_str().filter(|_| normal) else { continue };
            if let Some(name) = names.get(pkg).filter(|n| enterprise.contains(**n)) {
                found.insert((*name).to_owned());
            }
            todo.push(pkg);
        }
    }
    found
}

#[test]
fn node_default_build_has_no_enterprise_crate_and_enterprise_build_has_all() {
    let all: BTreeSet<String> =
        workspace().members.iter().filter(|p| p.enterprise).map(|p| p.name.clone()).collect();
    assert!(!all.is_empty(), "no enterprise crate under enterprise/");
    let default = enterprise_crates_in_node_build(None);
    assert!(default.is_empty(), "the default build of atp-node contains {default:?}");
    let with_enterprise = enterprise_crates_in_node_build(Some("atp-node/enterprise"));
    assert_eq!(
        with_enterprise, all,
        "`--features enterprise` of atp-node must compose in every enterprise crate"
    );
}

#[test]
fn crate_licences_match_their_location() {
    assert_clean("crate licences", check_licences(workspace()));
}

#[test]
fn workspace_lints_forbid_unsafe_code() {
    let root = repo_root();
    let keys = toml_flat_keys(&read(&root.join("Cargo.toml")));
    let value = keys.get("workspace.lints.rust.unsafe_code").map(String::as_str);
    assert!(
        matches!(value, Some("\"forbid\""))
            || value.is_some_and(|v| v.contains("level=\"forbid\"")),
        "the root Cargo.toml must set [workspace.lints.rust] unsafe_code = \"forbid\"; found {value:?}"
    );
}

#[test]
fn every_member_inherits_workspace_lints() {
    let bad: Vec<String> = workspace()
        .members
        .iter()
        .filter(|p| {
            let keys = toml_flat_keys(&read(&p.manifest_path));
            keys.get("lints.workspace").map(String::as_str) != Some("true")
        })
        .map(|p| {
            format!(
                "{} ({}) does not set `[lints] workspace = true`",
                p.name,
                p.manifest_path.display()
            )
        })
        .collect();
    assert_clean("workspace lints inheritance", bad);
}

#[test]
fn pure_crates_forbid_unsafe_code() {
    let ws = workspace();
    let mut bad = Vec::new();
    for name in PURE_REQUIRED {
        if ws.member(name).is_none() {
            bad.push(format!("pure crate {name} is missing from the workspace"));
        }
    }
    for p in ws.members.iter().filter(|p| PURE.contains(&p.name.as_str())) {
        let lib = p.dir().join("src/lib.rs");
        let text = read(&lib);
        let has = text.lines().any(|l| {
            let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
            l == "#![forbid(unsafe_code)]"
        });
        if !has {
            bad.push(format!("{}: {} lacks `#![forbid(unsafe_code)]`", p.name, lib.display()));
        }
    }
    assert_clean("unsafe code in pure crates", bad);
}

#[path = "tidy/repository.rs"]
mod repository;

#[path = "tidy/selftest.rs"]
mod selftest;

#[path = "tidy/sources.rs"]
mod sources;
