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
    // The load generator: a gRPC client of the node; starts a real node in-process in its tests.
    ("atp-bench", &["atp-server", "atp-store", "atp-grpc", "atp-core", "atp-crypto"]),
    // Test support: locates ../shared/vectors. Usable only as a dev-dependency (TEST_SUPPORT).
    ("atp-test-vectors", &[]),
    // Test support: a real node in-process for integration tests (TEST_SUPPORT).
    ("atp-test-node", &["atp-server", "atp-store", "atp-grpc", "atp-core", "atp-crypto"]),
];

/// Test-support crates: any crate may name them as a dev-dependency, none as a normal or build
/// dependency.
const TEST_SUPPORT: &[&str] = &["atp-test-vectors", "atp-test-node"];

/// Upward dev-dependencies allowed only so that tests start a real node in-process (the SDK and
/// the CLI are tested against the real server, which they never depend on otherwise).
const NODE_TEST_HARNESS: &[(&str, &[&str])] =
    &[("atp-sdk", &["atp-server", "atp-store"]), ("atp-cli", &["atp-server", "atp-store"])];

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

#[test]
fn pure_crates_do_no_network_or_database_io() {
    let ws = workspace();
    let mut bad = Vec::new();

    // 1. Declared normal and build dependencies.
    for p in ws.members.iter().filter(|p| PURE.contains(&p.name.as_str())) {
        for d in
            p.deps.iter().filter(|d| d.kind != Kind::Dev && IO_CRATES.contains(&d.name.as_str()))
        {
            bad.push(format!(
                "pure crate {} declares {} dependency {}, which does network or database I/O",
                p.name,
                d.kind.label(),
                d.name
            ));
        }
    }

    // 2. Transitive normal dependencies, from the resolved graph.
    let full = cargo_metadata(false);
    let names: BTreeMap<&str, &str> = full["packages"]
        .as_array()
        .expect("cargo metadata has no packages")
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = full["resolve"]["nodes"]
        .as_array()
        .expect("cargo metadata has no resolve graph")
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let normal_deps = |id: &str| -> Vec<String> {
        nodes
            .get(id)
            .and_then(|n| n["deps"].as_array())
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|d| {
                d["dep_kinds"].as_array().is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()))
            })
            .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
            .collect()
    };
    for p in ws.members.iter().filter(|p| PURE.contains(&p.name.as_str())) {
        // Breadth-first walk, remembering how each package was reached.
        let mut via: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([p.id.clone()]);
        via.insert(p.id.clone(), String::new());
        while let Some(id) = queue.pop_front() {
            for dep in normal_deps(&id) {
                if via.contains_key(&dep) {
                    continue;
                }
                via.insert(dep.clone(), id.clone());
                let name = names.get(dep.as_str()).copied().unwrap_or("?");
                if IO_CRATES.contains(&name) {
                    let mut chain = vec![name.to_owned()];
                    let mut cur = id.clone();
                    while !cur.is_empty() {
                        chain.push(names.get(cur.as_str()).copied().unwrap_or("?").to_owned());
                        cur = via.get(&cur).cloned().unwrap_or_default();
                    }
                    chain.reverse();
                    bad.push(format!(
                        "pure crate {} pulls in {} transitively: {}",
                        p.name,
                        name,
                        chain.join(" -> ")
                    ));
                } else {
                    queue.push_back(dep);
                }
            }
        }
    }

    // 3. Source code.
    for p in ws.members.iter().filter(|p| PURE.contains(&p.name.as_str())) {
        for f in repo_files(&p.dir().join("src")) {
            if f.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = read(&f);
            for pat in NET_PATTERNS {
                if text.contains(pat) {
                    bad.push(format!("pure crate {}: {} mentions `{pat}`", p.name, f.display()));
                }
            }
        }
    }
    assert_clean("I/O in pure crates", bad);
}

#[test]
fn external_vectors_are_not_copied_into_the_repo() {
    let dir = vectors_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    if !dir.is_dir() {
        let msg = format!(
            "external test vectors not found at {} (set ATP_TEST_VECTORS); cannot check that \
             none was copied into the repository",
            dir.display()
        );
        let in_ci = matches!(std::env::var("CI").as_deref(), Ok("true" | "1"));
        assert!(!in_ci, "{msg} (required under CI=true)");
        eprintln!("\n*** SKIPPED: {msg} ***\n");
        return;
    }
    let is_licence = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_ascii_uppercase)
            .is_some_and(|n| n.starts_with("LICENSE") || n.starts_with("COPYING"))
    };
    // Index the vectors by size; licence texts may legitimately be copied next to a vector.
    let mut by_size: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for f in repo_files(&dir) {
        if is_licence(&f) {
            continue;
        }
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len > VECTOR_COPY_MIN_BYTES {
            by_size.entry(len).or_default().push(f);
        }
    }
    let root = repo_root();
    let mut bad = Vec::new();
    for f in repo_files(&root) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let Some(candidates) = by_size.get(&len) else {
            continue;
        };
        let bytes =
            std::fs::read(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        for v in candidates {
            let vb =
                std::fs::read(v).unwrap_or_else(|e| panic!("cannot read {}: {e}", v.display()));
            if vb == bytes {
                bad.push(format!(
                    "{} is a byte-for-byte copy of the external vector {}; read it from the \
                     vectors directory at test time instead",
                    f.strip_prefix(&root).unwrap_or(&f).display(),
                    v.display()
                ));
            }
        }
    }
    assert_clean("copied test vectors", bad);
}

#[test]
fn readme_and_ci_share_the_test_command() {
    let root = repo_root();
    let mut bad = Vec::new();
    let readme = read(&root.join("README.md"));
    if !readme.contains(TEST_COMMAND) {
        bad.push(format!("README.md does not give the test command `{TEST_COMMAND}`"));
    }
    let ci = read(&root.join(".ci/run"));
    let calls = ci.lines().map(str::trim).any(|l| !l.starts_with('#') && l.contains(TEST_COMMAND));
    if !calls {
        bad.push(format!(".ci/run does not call the README's test command `{TEST_COMMAND}`"));
    }
    for needle in
        ["cargo fmt --all -- --check", "cargo clippy --workspace --all-targets -- -D warnings"]
    {
        if !ci.contains(needle) {
            bad.push(format!(".ci/run does not run `{needle}`"));
        }
    }
    assert_clean("test command", bad);
}

#[test]
fn architecture_doc_cites_only_real_tidy_tests() {
    let root = repo_root();
    let doc = read(&root.join("docs/ARCHITECTURE.md"));
    let this = read(&root.join("crates/atp-tidy/tests/tidy.rs"));
    let marker = "tidy.rs::";
    let mut cited = BTreeSet::new();
    for (i, _) in doc.match_indices(marker) {
        let name: String = doc[i + marker.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        cited.insert(name);
    }
    let mut bad = Vec::new();
    if cited.is_empty() {
        bad.push("docs/ARCHITECTURE.md cites no tidy test".to_owned());
    }
    for name in &cited {
        if !this.contains(&format!("#[test]\nfn {name}()")) {
            bad.push(format!(
                "docs/ARCHITECTURE.md cites tidy.rs::{name}, which is not a test in \
                 crates/atp-tidy/tests/tidy.rs"
            ));
        }
    }
    assert_clean("architecture doc citations", bad);
}

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

// ---------------------------------------------------------------------------------------------
// Feature gates of the node: one function composes the enterprise edition
// ---------------------------------------------------------------------------------------------

/// The node's source directory and the one function of `lib.rs` allowed to name Cargo features.
const NODE_SRC: &str = "crates/atp-node/src";
const FEATURE_GATE_FUNCTION: &str = "fn enterprise_edition(";

/// Whether `line` (comments stripped) gates code on a Cargo feature: `cfg(feature …)`,
/// `cfg!(…feature…)`, `cfg_attr(feature …)` or `feature` inside `any(…)`/`all(…)`/`not(…)`.
fn gates_on_feature(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("cfg") && compact.contains("feature=")
}

/// `files` are `(path relative to the node's src, text)`. Every feature gate must lie inside
/// [`FEATURE_GATE_FUNCTION`] of `lib.rs` (from its line to the first `}` at column 0 after it).
fn check_feature_gates(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut function_found = false;
    for (path, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        let span = (path == "lib.rs")
            .then(|| {
                let start = lines.iter().position(|l| {
                    let l = l.trim_start();
                    l.starts_with(FEATURE_GATE_FUNCTION)
                        || l.strip_prefix("pub ")
                            .is_some_and(|r| r.starts_with(FEATURE_GATE_FUNCTION))
                })?;
                let end = start + lines[start..].iter().position(|l| *l == "}")?;
                Some(start..=end)
            })
            .flatten();
        function_found |= span.is_some();
        for (i, line) in lines.iter().enumerate() {
            if gates_on_feature(line) && !span.as_ref().is_some_and(|s| s.contains(&i)) {
                out.push(format!(
                    "{NODE_SRC}/{path}:{}: a Cargo feature gate outside `{FEATURE_GATE_FUNCTION}…)` \
                     in lib.rs, the node's only composition point of the enterprise edition: `{}`",
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    if !function_found {
        out.push(format!("{NODE_SRC}/lib.rs has no `{FEATURE_GATE_FUNCTION}…)`"));
    }
    out
}

#[test]
fn node_feature_gates_live_in_one_function() {
    let src = repo_root().join(NODE_SRC);
    let files: Vec<(String, String)> = repo_files(&src)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
            let text = read(&p);
            (rel, text)
        })
        .collect();
    assert!(files.iter().any(|(p, _)| p == "lib.rs"), "{NODE_SRC}/lib.rs not found");
    assert_clean("node feature gates", check_feature_gates(&files));
}

#[test]
fn selftest_feature_gates_outside_the_function_are_reported() {
    let lib = "pub fn enterprise_features() -> Vec<&'static str> {\n    vec![\n        \
               #[cfg(feature = \"sso\")]\n        \"sso\",\n    ]\n}\n\n\
               fn enterprise_edition() -> &'static [F] {\n    #[cfg(feature = \"sso\")]\n    \
               fn sso() {}\n    const X: &[F] = &[\n        #[cfg(feature = \"sso\")]\n        \
               F,\n    ];\n    X\n}\n";
    let config = "// #[cfg(feature = \"rbac\")] is only a comment here\nfn f() {\n    if \
                  cfg!(feature = \"rbac\") {}\n    #[cfg(all(unix, feature = \"metrics\"))]\n    \
                  let _x = 1;\n}\n";
    let files =
        vec![("lib.rs".to_owned(), lib.to_owned()), ("config.rs".to_owned(), config.to_owned())];
    let v = check_feature_gates(&files);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[0].contains("lib.rs:3:"), "{v:?}");
    assert!(v[1].contains("config.rs:3:"), "{v:?}");
    assert!(v[2].contains("config.rs:4:"), "{v:?}");
    // Inside the function only: clean.
    let lib_only = lib.replace("        #[cfg(feature = \"sso\")]\n        \"sso\",\n", "");
    assert!(check_feature_gates(&[("lib.rs".to_owned(), lib_only)]).is_empty());
    // Without the function, every gate is outside, and its absence is reported.
    assert!(check_feature_gates(&[]).iter().any(|m| m.contains("has no")));
}

/// Every ML-DSA verification goes through `atp-crypto`'s FIPS 204 verifier (docs/protocol.md
/// §1.5): PQClean's ML-DSA verifier, which is not FIPS 204 on the edge cases, is called from no
/// source file of the product (tests and benches may, to compare against it), and no member
/// turns on `legacy-dilithium`, whose only user is `atp-crypto`'s own test run.
#[test]
fn mldsa_verification_has_one_path() {
    let root = repo_root();
    let mut bad = Vec::new();
    for path in repo_files(&root) {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let in_product = (rel.starts_with("crates/") || rel.starts_with("enterprise/"))
            && rel.contains("/src/")
            && rel.ends_with(".rs");
        let text = if in_product { read(&path) } else { String::new() };
        if text.contains("pqcrypto_mldsa") && text.contains("verify_detached_signature") {
            bad.push(format!("{rel}: calls PQClean's ML-DSA verifier"));
        }
        let is_manifest = rel.ends_with("Cargo.toml") && rel != "crates/atp-crypto/Cargo.toml";
        if is_manifest && read(&path).contains("legacy-dilithium") {
            bad.push(format!("{rel}: enables legacy-dilithium"));
        }
    }
    assert_clean("ML-DSA verification paths", bad);
}

/// The repository stands alone: the design decisions live in `docs/design.md`, and no file
/// cites the design reference that the project started from, which is not part of the
/// repository.
#[test]
fn docs_cite_no_design_outside_the_repo() {
    let root = repo_root();
    // Built from pieces so that this file does not match itself.
    let outside = ["DESIGN", ".md"].concat();
    let section = ["DESIGN", " §"].concat();
    let text_kinds = ["md", "rs", "toml", "py", "sh", "proto", "yml", "yaml", "txt"];
    let mut bad = Vec::new();
    for path in repo_files(&root) {
        let kind = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !text_kinds.contains(&kind) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        if text.contains(&outside) || text.contains(&section) {
            let rel = path.strip_prefix(&root).unwrap_or(&path);
            bad.push(format!("{}: cites a design document outside the repository", rel.display()));
        }
    }
    assert_clean("design citations", bad);
}

/// No import cycle between the modules of one crate (`atp_tidy::module_cycles` says how the
/// graph is read). A loop makes a change to one module drag in its neighbours; break it by
/// moving the shared item to the module that owns it, or to a leaf module both can import.
#[test]
fn no_module_import_cycles() {
    let mut bad = Vec::new();
    for p in &workspace().members {
        let src = p.dir().join("src");
        for cycle in atp_tidy::module_cycles(&src) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            bad.push(format!("{}: {}", p.name, names.join(" <-> ")));
        }
    }
    assert_clean("module import cycles", bad);
}

/// atp-core owns every byte layout: no source file of another crate spells a layout's magic
/// (`ATPAUT1`, `ATPTOK1`, `ATPENV1`, `ATPSTL1`, …); they use `atp_core`'s constants and
/// encoders. Tests may spell them (a hostile input is written byte by byte), and so may the
/// independent Python implementation, which must not share code with the Rust one.
#[test]
fn byte_layouts_live_in_atp_core() {
    let root = repo_root();
    let mut bad = Vec::new();
    for path in repo_files(&root) {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let is_source = (rel.starts_with("crates/") || rel.starts_with("enterprise/"))
            && rel.contains("/src/")
            && rel.ends_with(".rs")
            && !rel.starts_with("crates/atp-core/");
        if !is_source {
            continue;
        }
        let text = read(&path);
        let bytes = text.as_bytes();
        for (i, _) in text.match_indices("ATP") {
            let magic = &bytes[i..bytes.len().min(i + 7)];
            let is_magic = magic.len() == 7
                && magic[3..6].iter().all(u8::is_ascii_uppercase)
                && magic[6].is_ascii_digit();
            if is_magic {
                bad.push(format!(
                    "{rel}: spells the layout magic {}",
                    String::from_utf8_lossy(magic)
                ));
            }
        }
    }
    assert_clean("byte layouts outside atp-core", bad);
}
