//! Rules on the repository: pure crates do no I/O, vectors stay outside, the README and CI share the test command, the architecture doc cites real tests.

use super::*;

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
    // This file and its modules in tests/tidy/.
    let mut this = read(&root.join("crates/atp-tidy/tests/tidy.rs"));
    let modules = std::fs::read_dir(root.join("crates/atp-tidy/tests/tidy")).expect("tests/tidy");
    for entry in modules {
        this.push_str(&read(&entry.expect("tests/tidy entry").path()));
    }
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
