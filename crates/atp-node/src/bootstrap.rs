//! First-run bootstrap and later-run loading of everything in the data directory that is not the
//! store: the directory itself, the node identity and the admin token.
//!
//! ```text
//! <data dir>/          0700  created on first run
//!   node.key           0600  the node's current composite ML-DSA-65 + Ed25519 signing key
//!   node.next.key      0600  the pre-rotation next key (its hash is committed in the KEL)
//!   node.kel.json      0600  the node DID's key event log: a JSON array of signed events (public)
//!   admin.token        0600  the admin bearer token (see [`crate::admin`])
//! ```
//!
//! Key files use the `atp-key` v1 format of [`atp_crypto::keyfile`], encrypted under
//! `ATP_KEY_PASSPHRASE` when it is set. The KEL is written last, so its presence marks a
//! complete identity; a data directory with only some of the three files is refused with
//! instructions rather than silently repaired.
//!
//! On every start the KEL is verified from its inception ([`atp_core::kel::verify_log`]), and
//! the key files must hold its current key and the key its last event committed to.

use std::path::{Path, PathBuf};

use atp_core::kel::{self, KelState, Service, SignedEvent};
use atp_crypto::keyfile::{self, KdfParams};
use atp_crypto::{AlgorithmId, SigningKey};

use crate::admin::{ADMIN_TOKEN_FILE, AdminToken};
use crate::config::{NodeConfig, Passphrase};
use crate::{NodeError, fsutil};

/// The node's current signing key.
pub const KEY_FILE: &str = "node.key";
/// The node's pre-rotation next key.
pub const NEXT_KEY_FILE: &str = "node.next.key";
/// The node DID's key event log.
pub const KEL_FILE: &str = "node.kel.json";
/// The id of the service entry that advertises the node's endpoint in its DID document.
pub const NODE_SERVICE_ID: &str = "#atp-node";
/// The type of that service entry.
pub const NODE_SERVICE_TYPE: &str = "AtpNode";
/// The algorithm of the node's keys.
pub const NODE_KEY_ALGORITHM: AlgorithmId = AlgorithmId::MlDsa65Ed25519;

/// Largest KEL file accepted (the node's own log holds a handful of events).
const MAX_KEL_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Everything bootstrap produced or loaded.
#[derive(Debug)]
pub struct Bootstrapped {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Whether this start created the data directory.
    pub created_data_dir: bool,
    /// The node's identity.
    pub identity: NodeIdentity,
    /// The admin bearer token.
    pub admin_token: AdminToken,
    /// The data directory's lock, held until this value is dropped.
    pub lock: DataDirLock,
}

/// The file in the data directory whose exclusive lock marks the directory as in use.
pub const DATA_DIR_LOCK_FILE: &str = "node.lock";

/// An exclusive advisory lock on [`DATA_DIR_LOCK_FILE`]: a second node on the same data
/// directory refuses to start instead of writing to the store beside the first one (the node
/// keeps the store's single-writer state in memory). The operating system releases it when the
/// process ends, `kill -9` included.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock of `dir`, or fails at once with [`NodeError::DataDirInUse`].
    pub fn acquire(dir: &Path) -> Result<Self, NodeError> {
        let path = dir.join(DATA_DIR_LOCK_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|source| NodeError::Io {
            action: "open the data directory's lock file",
            path: path.clone(),
            source,
        })?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(NodeError::DataDirInUse { path: dir.to_owned(), lock: path })
            }
            Err(std::fs::TryLockError::Error(source)) => {
                Err(NodeError::Io { action: "lock the data directory", path, source })
            }
        }
    }
}

/// The node's `did:atp` identity: its verified KEL and its current signing key.
///
/// The next key is checked against the KEL's commitment at load time and then dropped: only a
/// rotation needs it.
#[derive(Debug)]
pub struct NodeIdentity {
    kel: Vec<SignedEvent>,
    state: KelState,
    key: SigningKey,
    created: bool,
}

impl NodeIdentity {
    /// The node's DID, `did:atp:<scid>`.
    pub fn did(&self) -> &str {
        &self.state.did
    }

    /// The verified state of the node's KEL.
    pub fn state(&self) -> &KelState {
        &self.state
    }

    /// The node's KEL, as stored in `node.kel.json`.
    pub fn kel(&self) -> &[SignedEvent] {
        &self.kel
    }

    /// The current signing key (checkpoints, session tokens, issued credentials).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The KEL and the current signing key, taking the identity apart (the key is not
    /// `Clone`; the server holds it behind an `Arc`).
    pub fn into_kel_and_key(self) -> (Vec<SignedEvent>, SigningKey) {
        (self.kel, self.key)
    }

    /// Whether this start created the identity.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The endpoint advertised by the `#atp-node` service, if any.
    pub fn advertised_endpoint(&self) -> Option<&str> {
        self.state
            .services
            .iter()
            .find(|s| s.id == NODE_SERVICE_ID)
            .map(|s| s.service_endpoint.as_str())
    }

    /// Load the identity from `dir`, or create it if none of its files exist.
    ///
    /// `endpoint` is recorded as the `#atp-node` service when the identity is created; it is
    /// ignored when loading (changing it needs a rotation).
    pub fn load_or_create(
        dir: &Path,
        passphrase: Option<&Passphrase>,
        endpoint: Option<&str>,
    ) -> Result<Self, NodeError> {
        let files = [KEY_FILE, NEXT_KEY_FILE, KEL_FILE];
        let present: Vec<&str> =
            files.iter().copied().filter(|f| fsutil::exists(&dir.join(f))).collect();
        match present.len() {
            0 => Self::create(dir, passphrase, endpoint),
            3 => Self::load(dir, passphrase),
            _ => Err(NodeError::IncompleteIdentity {
                dir: dir.to_owned(),
                present: present.join(", "),
                missing: files
                    .iter()
                    .copied()
                    .filter(|f| !present.contains(f))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Create a new identity: two keys and an inception event.
    fn create(
        dir: &Path,
        passphrase: Option<&Passphrase>,
        endpoint: Option<&str>,
    ) -> Result<Self, NodeError> {
        let key_path = dir.join(KEY_FILE);
        let next_path = dir.join(NEXT_KEY_FILE);
        let kel_path = dir.join(KEL_FILE);
        let gen_err = |path: &Path| {
            let path = path.to_owned();
            move |source| NodeError::KeyFile { path, source }
        };
        let key = SigningKey::generate(NODE_KEY_ALGORITHM).map_err(gen_err(&key_path))?;
        let next = SigningKey::generate(NODE_KEY_ALGORITHM).map_err(gen_err(&next_path))?;
        let services = endpoint
            .map(|ep| vec![Service::new(NODE_SERVICE_ID, NODE_SERVICE_TYPE, ep)])
            .unwrap_or_default();
        let icp = kel::incept(&key, next.public_key_ref(), services, &now_rfc3339())
            .map_err(NodeError::Inception)?;
        let events = vec![icp];
        let state = kel::verify_log(&events).map_err(NodeError::Inception)?;

        let pass = passphrase.map(Passphrase::as_bytes);
        for (path, k) in [(&next_path, &next), (&key_path, &key)] {
            // A temporary file left by a crash during an earlier first run.
            if let Some(name) = path.file_name() {
                let _ = std::fs::remove_file(dir.join(format!(".{}.tmp", name.to_string_lossy())));
            }
            keyfile::write(path, k, pass, KdfParams::DEFAULT).map_err(gen_err(path))?;
        }
        // Last: its presence marks a complete identity.
        fsutil::write_new(&kel_path, serialize_kel(&events)?.as_bytes(), 0o600).map_err(
            |source| NodeError::Io { action: "write the node KEL", path: kel_path.clone(), source },
        )?;
        Ok(NodeIdentity { kel: events, state, key, created: true })
    }

    /// Load and cross-check an existing identity.
    fn load(dir: &Path, passphrase: Option<&Passphrase>) -> Result<Self, NodeError> {
        let key_path = dir.join(KEY_FILE);
        let next_path = dir.join(NEXT_KEY_FILE);
        let kel_path = dir.join(KEL_FILE);
        let pass = passphrase.map(Passphrase::as_bytes);
        let read_key = |path: &Path| -> Result<SigningKey, NodeError> {
            fsutil::check_private_file(path)?;
            keyfile::read(path, pass)
                .map_err(|source| NodeError::KeyFile { path: path.to_owned(), source })
        };
        let key = read_key(&key_path)?;
        let next = read_key(&next_path)?;

        let bytes = fsutil::read_bounded(&kel_path, MAX_KEL_FILE_BYTES)?;
        let kel_err = |source| NodeError::Kel { path: kel_path.clone(), source };
        let events = kel::parse_log(&bytes).map_err(kel_err)?;
        let state = kel::verify_log(&events).map_err(kel_err)?;
        if state.deactivated {
            return Err(NodeError::Deactivated { did: state.did });
        }
        if key.public_key_ref() != &state.current_key {
            return Err(NodeError::KeyMismatch { key_path, kel_path, did: state.did });
        }
        let committed = kel::key_commitment(next.public_key_ref()).map_err(kel_err)?;
        if state.next_commitment.as_deref() != Some(committed.as_str()) {
            return Err(NodeError::NextKeyMismatch {
                key_path: next_path,
                kel_path,
                did: state.did,
            });
        }
        Ok(NodeIdentity { kel: events, state, key, created: false })
    }
}

/// The text of `node.kel.json`: a JSON array with one canonical (JCS) signed event per line.
pub fn serialize_kel(events: &[SignedEvent]) -> Result<String, NodeError> {
    let mut out = String::from("[\n");
    for (i, ev) in events.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&ev.to_json().map_err(NodeError::Inception)?);
    }
    out.push_str("\n]\n");
    Ok(out)
}

/// Create (first run) or load everything: the data directory, the node identity and the admin
/// token.
pub fn bootstrap(config: &NodeConfig) -> Result<Bootstrapped, NodeError> {
    let dir = &config.data_dir;
    let created_data_dir = prepare_data_dir(dir)?;
    // Before any key file or token is read or written.
    let lock = DataDirLock::acquire(dir)?;
    let endpoint = config.advertised_endpoint();
    let identity =
        NodeIdentity::load_or_create(dir, config.key_passphrase.as_ref(), endpoint.as_deref())?;
    let admin_token = AdminToken::load_or_create(&dir.join(ADMIN_TOKEN_FILE))?;
    Ok(Bootstrapped { data_dir: dir.clone(), created_data_dir, identity, admin_token, lock })
}

/// Create the data directory with mode 0700 if it does not exist (returns `true` then), or check
/// an existing one: it must be a directory that group and others cannot write to.
pub fn prepare_data_dir(dir: &Path) -> Result<bool, NodeError> {
    let io = |action, source| NodeError::Io { action, path: dir.to_owned(), source };
    if !fsutil::exists(dir) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| io("create the data directory", e))?;
        return Ok(true);
    }
    let meta = std::fs::metadata(dir).map_err(|e| io("inspect the data directory", e))?;
    if !meta.is_dir() {
        return Err(io(
            "use the data directory",
            std::io::Error::other("it exists and is not a directory"),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(NodeError::InsecureDirectoryPermissions { path: dir.to_owned(), mode });
        }
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format_args!("{mode:03o}"),
                "the data directory is readable by group or others; consider `chmod 700`"
            );
        }
    }
    Ok(false)
}

/// The current time as an RFC 3339 UTC timestamp (whole seconds).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    atp_core::vc::DateTimeStamp::from_unix(secs).to_string()
}
