//! The agent's files under `$ATP_HOME` (default `~/.atp`).
//!
//! ```text
//! $ATP_HOME/agents/<name>/            mode 0700
//!     kel.json                        the agent's key event log: a JSON array of signed events
//!     keys/<commitment>.key           atp-crypto key files (mode 0600), named by the key's
//!                                     pre-rotation commitment mh(JCS(key object))
//! ```
//!
//! Naming keys by their commitment means that the log alone says which files are the current
//! key and the committed next key, and a rotation never overwrites a key file: the new next key
//! is written first, the log last (atomically). If the process dies in between, the node may
//! hold one more event than `kel.json`; [`crate::Agent::connect`] adopts it after verifying it.

use std::path::{Path, PathBuf};

use atp_core::kel::{self, CompositeKey, SignedEvent};
use atp_crypto::keyfile::{self, KdfParams};
use atp_crypto::{PublicKey, SigningKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The largest `kel.json` read (the protocol's limits: 10 000 events of at most 64 KiB).
const MAX_KEL_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The default home: `$ATP_HOME`, else `~/.atp`.
pub fn default_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("ATP_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".atp")),
        None => Err(Error::home("~/.atp", "neither ATP_HOME nor HOME is set")),
    }
}

/// Checks an agent name: 1 to 64 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_agent_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Error::InvalidAgentName(name.to_owned())) }
}

/// One agent's directory.
#[derive(Clone)]
pub(crate) struct AgentDir {
    dir: PathBuf,
    passphrase: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for AgentDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentDir")
            .field("dir", &self.dir)
            .field("encrypted", &self.passphrase.is_some())
            .finish()
    }
}

impl AgentDir {
    pub(crate) fn new(
        home: &Path,
        name: &str,
        passphrase: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Self> {
        check_agent_name(name)?;
        Ok(AgentDir { dir: home.join("agents").join(name), passphrase })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    fn kel_path(&self) -> PathBuf {
        self.dir.join("kel.json")
    }

    fn key_path(&self, commitment: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{commitment}.key"))
    }

    pub(crate) fn exists(&self) -> bool {
        self.kel_path().exists()
    }

    /// Creates the directories with mode 0700.
    pub(crate) fn create_dirs(&self) -> Result<()> {
        let keys = self.dir.join("keys");
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&keys).map_err(|e| Error::home(&keys, e))
    }

    /// Stores a key under its commitment. An existing file for the same key is kept.
    pub(crate) fn store_key(&self, key: &SigningKey) -> Result<()> {
        let commitment = kel::key_commitment(key.public_key_ref())?;
        let path = self.key_path(&commitment);
        if path.exists() {
            return Ok(());
        }
        keyfile::write(&path, key, self.passphrase.as_deref().map(|p| &p[..]), KdfParams::DEFAULT)?;
        Ok(())
    }

    /// Loads the key whose public key is `public` (found by its commitment).
    pub(crate) fn load_key(&self, public: &PublicKey) -> Result<SigningKey> {
        let commitment = kel::key_commitment(public)?;
        self.load_key_by_commitment(&commitment, Some(public))
    }

    pub(crate) fn load_key_by_commitment(
        &self,
        commitment: &str,
        expected: Option<&PublicKey>,
    ) -> Result<SigningKey> {
        let path = self.key_path(commitment);
        if !path.exists() {
            return Err(Error::home(&path, "key file missing"));
        }
        let key = keyfile::read(&path, self.passphrase.as_deref().map(|p| &p[..]))
            .map_err(|e| Error::home(&path, e))?;
        let actual = CompositeKey::from_public_key(key.public_key_ref())?.commitment()?;
        if actual != commitment || expected.is_some_and(|p| p != key.public_key_ref()) {
            return Err(Error::home(&path, "the key in this file is not the key the log names"));
        }
        Ok(key)
    }

    /// Deletes a key that no event can need again (a superseded key).
    pub(crate) fn remove_key(&self, public: &PublicKey) {
        if let Ok(commitment) = kel::key_commitment(public) {
            let _ = std::fs::remove_file(self.key_path(&commitment));
        }
    }

    pub(crate) fn read_kel(&self) -> Result<Vec<SignedEvent>> {
        use std::io::Read as _;
        let path = self.kel_path();
        let file = std::fs::File::open(&path).map_err(|e| Error::home(&path, e))?;
        let mut text = Vec::new();
        file.take(MAX_KEL_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| Error::home(&path, e))?;
        if text.len() as u64 > MAX_KEL_FILE_BYTES {
            return Err(Error::home(&path, "file too large"));
        }
        kel::parse_log(&text).map_err(|e| Error::home(&path, format!("not a valid log: {e}")))
    }

    /// Writes the log atomically (temporary file, fsync, rename).
    pub(crate) fn write_kel(&self, events: &[SignedEvent]) -> Result<()> {
        let path = self.kel_path();
        let mut text = String::from("[");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push('\n');
            text.push_str(&e.to_json()?);
        }
        text.push_str("\n]\n");
        write_atomically(&self.dir, &path, text.as_bytes())
    }

    /// Where the largest checkpoint this agent verified of the log `origin` is kept: one file
    /// per log, named by the SHA-256 of the origin (an origin may hold any character).
    fn checkpoint_path(&self, origin: &str) -> PathBuf {
        use sha2::Digest as _;
        let name = hex::encode(sha2::Sha256::digest(origin.as_bytes()));
        self.dir.join("checkpoints").join(format!("{name}.note"))
    }

    /// The checkpoint note kept for `origin`, if any (its signatures are checked by the caller).
    pub(crate) fn read_checkpoint(&self, origin: &str) -> Result<Option<String>> {
        use std::io::Read as _;
        let path = self.checkpoint_path(origin);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::home(&path, e)),
        };
        let max = atp_core::checkpoint::MAX_NOTE_BYTES as u64;
        let mut text = Vec::new();
        file.take(max + 1).read_to_end(&mut text).map_err(|e| Error::home(&path, e))?;
        if text.len() as u64 > max {
            return Err(Error::home(&path, "file too large"));
        }
        String::from_utf8(text).map(Some).map_err(|_| Error::home(&path, "not UTF-8"))
    }

    /// Keeps `note` as the largest checkpoint verified of `origin` (atomically).
    pub(crate) fn write_checkpoint(&self, origin: &str, note: &str) -> Result<()> {
        let path = self.checkpoint_path(origin);
        let dir = self.dir.join("checkpoints");
        std::fs::create_dir_all(&dir).map_err(|e| Error::home(&dir, e))?;
        write_atomically(&dir, &path, note.as_bytes())
    }
}

/// Writes `bytes` to `path` in `dir` through a temporary file, fsync and rename, so that a
/// crash leaves the old file or the new one, never half of one.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    // One temporary file per process and write: two processes on one agent never interleave
    // their bytes in one file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| Error::home(path, e))
}
