//! Rules on the source text: feature gates, one ML-DSA path, docs, import cycles, byte layouts, file sizes.

use super::*;

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

/// A DID's method is chosen in one place, `atp_core::did::method` (docs/ARCHITECTURE.md): no
/// library source tests a DID's prefix to pick a method. Building a DID from its prefix
/// constant is fine; testing one is not.
#[test]
fn did_methods_are_chosen_in_one_place() {
    let root = repo_root();
    let prefix_tests = [
        "starts_with(\"did:key",
        "starts_with(\"did:atp",
        "starts_with(atp_core::did_key::DID_KEY_PREFIX",
        "starts_with(atp_core::kel::DID_ATP_PREFIX",
        "starts_with(crate::kel::DID_ATP_PREFIX",
        "starts_with(DID_ATP_PREFIX",
        "starts_with(DID_KEY_PREFIX",
    ];
    let mut bad = Vec::new();
    for path in repo_files(&root) {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let is_library_source = (rel.starts_with("crates/") || rel.starts_with("enterprise/"))
            && rel.contains("/src/")
            && rel.ends_with(".rs")
            && !rel.starts_with("crates/atp-core/src/did");
        if !is_library_source {
            continue;
        }
        let text = read(&path);
        for needle in prefix_tests {
            if text.contains(needle) {
                bad.push(format!("{rel}: {needle}…) picks a DID method by its prefix"));
            }
        }
    }
    assert_clean("DID methods chosen outside atp_core::did::method", bad);
}

/// The longest a Rust source file in `crates/`, `enterprise/`, `fuzz/` or `examples/` may be. A
/// longer file is split along its own sections (docs/ARCHITECTURE.md).
const MAX_SOURCE_LINES: usize = 900;

#[test]
fn no_source_file_exceeds_900_lines() {
    let root = repo_root();
    let mut bad = Vec::new();
    for path in repo_files(&root) {
        let rel = path.strip_prefix(&root).unwrap_or(&path);
        let in_scope =
            ["crates", "enterprise", "fuzz", "examples"].iter().any(|d| rel.starts_with(d));
        if !in_scope || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let lines = read(&path).lines().count();
        if lines > MAX_SOURCE_LINES {
            bad.push(format!("{}: {lines} lines (at most {MAX_SOURCE_LINES})", rel.display()));
        }
    }
    assert_clean("source files over the size limit", bad);
}
