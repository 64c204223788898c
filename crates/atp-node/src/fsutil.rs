//! Small file-system helpers: atomic no-clobber writes and permission checks.

use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::NodeError;

/// Write `bytes` to `path` atomically, with `mode` on Unix, refusing to replace an existing file
/// (`ErrorKind::AlreadyExists`).
///
/// The bytes go to a temporary file in the same directory, which is synced and then hard-linked
/// to `path`: the link fails if `path` exists, so two processes racing to create the file cannot
/// overwrite each other, and a crash leaves either no file or a complete one.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    // A stale temporary file of a crashed process with the same pid.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Refuse a secret file that group or others may access (like ssh does).
pub(crate) fn check_private_file(path: &Path) -> Result<(), NodeError> {
    let meta = std::fs::metadata(path).map_err(|source| NodeError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(NodeError::Io {
            action: "read",
            path: path.to_owned(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(NodeError::InsecureFilePermissions { path: path.to_owned(), mode });
        }
    }
    Ok(())
}

/// Read at most `max` bytes of `path`; a longer file is an error.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, NodeError> {
    let io = |source| NodeError::Io { action: "read", path: path.to_owned(), source };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(max + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > max {
        return Err(io(std::io::Error::other(format!("larger than {max} bytes"))));
    }
    Ok(buf)
}

/// Whether `path` exists (a broken symlink or an unreadable directory counts as existing, so
/// that the caller's next step reports the real problem).
pub(crate) fn exists(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// The secret key of `len` random bytes in `path`, created (mode 0600) at first use. An
/// existing file must be private and hold exactly `len` bytes.
#[allow(dead_code)] // used only by the builder of [audit], absent from the community build
pub(crate) fn load_or_create_key(
    path: &Path,
    len: usize,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, NodeError> {
    if !exists(path) {
        let mut key = Zeroizing::new(vec![0u8; len]);
        atp_crypto::random_bytes(&mut key[..]).map_err(NodeError::Rng)?;
        match write_new(path, &key, 0o600) {
            Ok(()) => return Ok(key),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(NodeError::Io { action: what, path: path.to_owned(), source });
            }
        }
    }
    check_private_file(path)?;
    let key = read_bounded(path, len as u64 + 1)?;
    if key.len() != len {
        return Err(NodeError::InvalidConfig {
            option: what.to_owned(),
            reason: format!("{} must hold exactly {len} bytes", path.display()),
        });
    }
    Ok(key)
}
