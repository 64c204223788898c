//! `atp-witness`: an independent party that follows ATP transparency logs and cosigns a
//! checkpoint only after it verified that the log grew append-only since the last checkpoint
//! it cosigned (docs/protocol.md §E5, C2SP `tlog-witness` and `tlog-cosignature`).
//!
//! - **Rules** live in `atp_core::witness`; this crate adds the HTTP API, the witness's key and
//!   its durable state.
//! - **State:** per log, the size and root it last cosigned, one file each, written atomically
//!   and fsynced *before* the cosignature is returned, under one lock with the check, so that
//!   two requests can never roll the state back and a restart after `kill -9` still refuses
//!   to go backwards.
//! - **Keys:** the witness's composite key (ML-DSA-65 + Ed25519) is created on first start in
//!   the data directory (mode 0600) and never leaves it; the logs' keys come from the
//!   configuration, as C2SP verifier keys.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atp_core::CoreError;
use atp_core::checkpoint::VerifierKey;
use atp_core::witness::{AddCheckpoint, Cosigned, CosignerKey, check_add_checkpoint, cosign};
use atp_crypto::{AlgorithmId, CryptoError, SigningKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The witness's key file in its data directory.
pub const KEY_FILE: &str = "witness.key";
/// The directory of per-log state files in the data directory.
pub const STATE_DIR: &str = "state";
/// The lock file that keeps a second witness process off the same data directory.
pub const LOCK_FILE: &str = "witness.lock";
/// The largest request body: a note at its limit, 63 proof lines and the old size line.
pub const MAX_BODY_BYTES: usize = atp_core::checkpoint::MAX_NOTE_BYTES + 64 * 64;
/// The most logs one witness follows.
pub const MAX_LOGS: usize = 1_000;

/// The witness's configuration (TOML).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's name: the key name of its cosignature lines, e.g. `witness.example/w1`.
    pub name: String,
    /// The logs it follows.
    #[serde(default, rename = "log")]
    pub logs: Vec<LogConfig>,
}

/// One followed log: its origin and the node's two checkpoint verifier keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The checkpoint origin line.
    pub origin: String,
    /// The Ed25519 verifier key (`<origin>+<key ID>+<key>`).
    pub ed25519: String,
    /// The ML-DSA-65 verifier key.
    pub mldsa65: String,
}

/// Everything that can go wrong in the witness.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The checkpoint names a log this witness does not follow.
    #[error("this witness does not follow the log {0:?}")]
    UnknownLog(String),
    /// A protocol rule refused the request.
    #[error("{0}")]
    Protocol(#[from] CoreError),
    /// The witness's key could not be made or read.
    #[error("witness key: {0}")]
    Key(#[from] CryptoError),
    /// The configuration is invalid.
    #[error("invalid witness configuration: {0}")]
    Config(String),
    /// The durable state could not be read or written; nothing is cosigned.
    #[error("witness state {}: {detail}", path.display())]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

impl WitnessError {
    /// A stable UPPER_SNAKE_CASE code.
    pub fn code(&self) -> &str {
        match self {
            WitnessError::UnknownLog(_) => "WITNESS_UNKNOWN_LOG",
            WitnessError::Protocol(e) => e.code(),
            WitnessError::Key(e) => e.code(),
            WitnessError::Config(_) => "WITNESS_CONFIG_INVALID",
            WitnessError::State { .. } => "WITNESS_STATE",
        }
    }

    /// The HTTP status of the refusal (C2SP tlog-witness): 404 unknown log, 403 a checkpoint
    /// without valid signatures from the log's keys, 409 the old size is not the one last
    /// cosigned, 422 inconsistent, 400 malformed, 500 the witness's own failure.
    pub fn status(&self) -> StatusCode {
        match self {
            WitnessError::UnknownLog(_) => StatusCode::NOT_FOUND,
            WitnessError::Protocol(e) => match e {
                CoreError::CheckpointSignatureMissing { .. }
                | CoreError::CheckpointSignatureInvalid { .. } => StatusCode::FORBIDDEN,
                CoreError::WitnessOldSize { .. } => StatusCode::CONFLICT,
                CoreError::WitnessInconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            },
            WitnessError::Key(_) | WitnessError::Config(_) | WitnessError::State { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// A log's two checkpoint keys.
#[derive(Clone, Debug)]
struct LogKeys {
    ed25519: VerifierKey,
    mldsa65: VerifierKey,
}

/// What is kept per log, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StateFile {
    origin: String,
    size: u64,
    root_hash: String,
}

/// A witness: its key, the logs it follows and what it last cosigned for each.
pub struct Witness {
    name: String,
    key: SigningKey,
    logs: HashMap<String, LogKeys>,
    state_dir: PathBuf,
    /// Held (an exclusive lock) while the witness lives: two processes on one state could
    /// each cosign one side of a fork.
    _lock: std::fs::File,
    /// What was last cosigned per log (loaded on first use). Held across the check and the
    /// write, so that check-then-store is atomic.
    cosigned: tokio::sync::Mutex<HashMap<String, Option<Cosigned>>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness").field("name", &self.name).field("logs", &self.logs.len()).finish()
    }
}

impl Witness {
    /// Opens the witness in `data_dir`: reads its key, or creates it on first start.
    pub fn open(config: &WitnessConfig, data_dir: &Path) -> Result<Self, WitnessError> {
        atp_core::checkpoint::check_key_name(&config.name).map_err(|_| {
            WitnessError::Config(format!("name {:?} is not a note key name", config.name))
        })?;
        if config.logs.len() > MAX_LOGS {
            return Err(WitnessError::Config(format!("more than {MAX_LOGS} logs")));
        }
        let mut logs = HashMap::new();
        for log in &config.logs {
            let keys = LogKeys {
                ed25519: VerifierKey::from_vkey(&log.ed25519)?,
                mldsa65: VerifierKey::from_vkey(&log.mldsa65)?,
            };
            let algorithms =
                (keys.ed25519.public_key().algorithm(), keys.mldsa65.public_key().algorithm());
            if algorithms != (AlgorithmId::Ed25519, AlgorithmId::MlDsa65)
                || keys.ed25519.name() != log.origin
                || keys.mldsa65.name() != log.origin
            {
                return Err(WitnessError::Config(format!(
                    "log {:?}: ed25519 and mldsa65 must be that origin's Ed25519 and ML-DSA-65 keys",
                    log.origin
                )));
            }
            if logs.insert(log.origin.clone(), keys).is_some() {
                return Err(WitnessError::Config(format!("log {:?} is listed twice", log.origin)));
            }
        }
        let state_err = |path: &Path, e: &dyn std::fmt::Display| WitnessError::State {
            path: path.to_owned(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(|e| state_err(data_dir, &e))?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| state_err(&lock_path, &e))?;
        lock.try_lock()
            .map_err(|e| state_err(&lock_path, &format!("another witness uses it: {e}")))?;
        let state_dir = data_dir.join(STATE_DIR);
        let key_path = data_dir.join(KEY_FILE);
        // A key without its state would cosign any tree from size 0 again: refused.
        if key_path.exists() && !state_dir.is_dir() {
            return Err(state_err(
                &state_dir,
                &"missing while the key exists: this witness forgot what it cosigned; retire it \
                  (a new name and key), never restart it without its state",
            ));
        }
        std::fs::create_dir_all(&state_dir).map_err(|e| state_err(&state_dir, &e))?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| state_err(data_dir, &e))?;
        let key = if key_path.exists() {
            atp_crypto::keyfile::read(&key_path, None)?
        } else {
            let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?;
            atp_crypto::keyfile::write(
                &key_path,
                &key,
                None,
                atp_crypto::keyfile::KdfParams::DEFAULT,
            )?;
            key
        };
        Ok(Witness {
            name: config.name.clone(),
            key,
            logs,
            state_dir,
            _lock: lock,
            cosigned: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The witness's public keys: what clients configure to check its cosignatures.
    pub fn cosigner(&self) -> Result<CosignerKey, WitnessError> {
        Ok(CosignerKey::from_composite(&self.name, self.key.public_key_ref())?)
    }

    /// Handles one `add-checkpoint` body: checks it against the log's keys and what was last
    /// cosigned, stores the new state durably, and returns the two cosignature lines, dated
    /// by the system clock read after the state is stored.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<String, WitnessError> {
        self.add_checkpoint_at(body, || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
        .await
    }

    /// [`Witness::add_checkpoint`] with the clock given (POSIX seconds; read under the lock,
    /// after the state is stored).
    pub async fn add_checkpoint_at(
        &self,
        body: &[u8],
        clock: impl Fn() -> u64,
    ) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let origin = atp_core::witness::note_origin(&request.note)?;
        let keys =
            self.logs.get(&origin).ok_or_else(|| WitnessError::UnknownLog(origin.clone()))?;
        let mut cosigned = self.cosigned.lock().await;
        let last = match cosigned.get(&origin) {
            Some(last) => *last,
            None => {
                let loaded = self.load(&origin)?;
                cosigned.insert(origin.clone(), loaded);
                loaded
            }
        };
        let checkpoint = check_add_checkpoint(&request, &keys.ed25519, &keys.mldsa65, last)?;
        let next = Cosigned { size: checkpoint.size, root_hash: checkpoint.root_hash };
        if last != Some(next) {
            self.store(&origin, next)?;
            cosigned.insert(origin.clone(), Some(next));
        }
        let now = clock();
        drop(cosigned);
        Ok(cosign(&checkpoint, &self.name, now, &self.key)?)
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        use sha2::Digest as _;
        self.state_dir
            .join(format!("{}.json", hex::encode(sha2::Sha256::digest(origin.as_bytes()))))
    }

    /// What was last cosigned for `origin`; a file that cannot be read fails closed.
    fn load(&self, origin: &str) -> Result<Option<Cosigned>, WitnessError> {
        let path = self.state_path(origin);
        let bad = |detail: String| WitnessError::State { path: path.clone(), detail };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let root = STANDARD.decode(&file.root_hash).map_err(|e| bad(e.to_string()))?;
        let root_hash =
            <[u8; 32]>::try_from(root).map_err(|_| bad("root is not 32 bytes".into()))?;
        if file.origin != origin {
            return Err(bad(format!("holds the state of {:?}", file.origin)));
        }
        Ok(Some(Cosigned { size: file.size, root_hash }))
    }

    /// Stores what is cosigned for `origin`: temporary file, fsync, rename, fsync directory.
    fn store(&self, origin: &str, cosigned: Cosigned) -> Result<(), WitnessError> {
        use std::io::Write as _;
        let path = self.state_path(origin);
        let file = StateFile {
            origin: origin.to_owned(),
            size: cosigned.size,
            root_hash: STANDARD.encode(cosigned.root_hash),
        };
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.state_dir)?.sync_all()
        };
        write().map_err(|e| WitnessError::State { path: path.clone(), detail: e.to_string() })
    }
}

/// The witness's HTTP API: `POST /add-checkpoint`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(witness)
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(lines) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines)
            .into_response(),
        Err(WitnessError::Protocol(CoreError::WitnessOldSize { latest })) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{latest}\n"),
        )
            .into_response(),
        Err(e) => {
            if e.status().is_server_error() {
                tracing::error!(error = %e, "add-checkpoint failed");
            }
            let body = format!("{}: {e}\n", e.code());
            (e.status(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
                .into_response()
        }
    }
}
