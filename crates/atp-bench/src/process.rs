//! Resident memory of a process, for the node's RSS in scale runs (Linux `/proc`).

use crate::BenchError;

/// The resident set size (`VmRSS`) and its peak (`VmHWM`) of process `pid`, in bytes.
pub fn resident_bytes(pid: u32) -> Result<(u64, u64), BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| BenchError::Setup(format!("reading {path}: {e}")))?;
    let field = |name: &str| -> Result<u64, BenchError> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .ok_or_else(|| BenchError::Setup(format!("no {name} in {path}")))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Total size in bytes of the regular files under `dir` (the node's store), recursively.
pub fn directory_bytes(dir: &std::path::Path) -> Result<u64, BenchError> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BenchError::Setup(format!("reading {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| BenchError::Setup(e.to_string()))?;
        let meta = entry.metadata().map_err(|e| BenchError::Setup(e.to_string()))?;
        if meta.is_dir() {
            total += directory_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
