//! Test support: locates the external test vectors, and a Python interpreter for the
//! interoperability tests.
//!
//! The external test vectors are never copied into the repository: tests read
//! them from `../shared/vectors` beside the workspace root, or from `$ATP_TEST_VECTORS`.
//!
//! When the folder is absent, [`vectors_dir`] prints a loud skip notice and returns `None`,
//! except under `CI=true`, where it panics so that CI can never pass without the vectors.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The workspace root: two levels above the manifest of the package under test.
///
/// Cargo sets `CARGO_MANIFEST_DIR` when it runs a test, and every package sits two levels
/// down (`crates/*`, `enterprise/*`). The value compiled into this crate is only the fallback:
/// cargo may reuse this crate's build from a clone at another path that shared the target
/// directory, and then the compiled-in path names that other clone (a CI run failed so).
pub fn workspace_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.join("../..")
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// The vectors folder, or `None` (after a loud notice) when it is absent outside CI.
///
/// # Panics
/// Under `CI=true` when the folder is absent.
pub fn vectors_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ATP_TEST_VECTORS") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("../shared/vectors"),
    };
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    let msg =
        format!("test vectors not found at {} (set ATP_TEST_VECTORS to override)", dir.display());
    if in_ci() {
        panic!("{msg}: required under CI=true");
    }
    eprintln!("\n!!!!! SKIP: {msg}; vector tests are NOT being run !!!!!\n");
    None
}

/// Path of one vector file; `None` (after the notice) when the folder is absent outside CI.
///
/// # Panics
/// When the folder exists but the file does not (a broken vector set must fail loudly), or
/// under `CI=true` when the folder is absent.
pub fn vector_path(relative: &str) -> Option<PathBuf> {
    let path = vectors_dir()?.join(relative);
    assert!(path.is_file(), "vector file missing: {}", path.display());
    Some(path)
}

/// Read a vector file as text.
///
/// # Panics
/// As [`vector_path`], or when the file cannot be read.
pub fn read_text(relative: &str) -> Option<String> {
    let path = vector_path(relative)?;
    Some(
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
    )
}

/// Read and parse a JSON vector file.
///
/// # Panics
/// As [`read_text`], or when the file is not JSON.
pub fn read_json(relative: &str) -> Option<serde_json::Value> {
    let text = read_text(relative)?;
    Some(
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not valid JSON: {e}")),
    )
}

/// A Python interpreter on which `probe` (Python source, e.g. imports) runs: `$ATP_PYTHON`,
/// else the venv that `scripts/test.sh` creates (`target/venv`), else `python3` on `PATH`.
/// `None` after a loud skip notice when there is none, except under `CI=true`.
///
/// # Panics
/// Under `CI=true` when no interpreter passes the probe.
pub fn python_with(probe: &str, what: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ATP_PYTHON").map(PathBuf::from),
        Some(workspace_root().join("target/venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = std::process::Command::new(&python)
            .args(["-c", probe])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    let msg = format!(
        "no Python with {what} found: run `bash scripts/test.sh` (it installs \
         requirements-test.txt into target/venv), or set ATP_PYTHON"
    );
    if in_ci() {
        panic!("{msg}: required under CI=true");
    }
    eprintln!("\n!!!!! SKIP: {msg}; this Python test is NOT being run !!!!!\n");
    None
}
