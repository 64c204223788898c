//! The ATP key file: versioned JSON, written with mode 0600, optionally encrypted under a
//! passphrase with Argon2id (key derivation) and XChaCha20-Poly1305 (AEAD).
//!
//! ```json
//! { "format": "atp-key", "version": 1, "algorithm": "mldsa65-ed25519",
//!   "publicKey": "<base64url raw public key>",
//!   "secret": { "encoding": "plain", "seed": "<base64url seed>" } }
//! ```
//!
//! or, encrypted, `"secret": { "encoding": "argon2id-xchacha20poly1305", "mKib": 65536,
//! "t": 3, "p": 1, "salt": "…", "nonce": "…", "ciphertext": "…" }`. The AEAD's associated data
//! binds the format, version, algorithm and public key, so none can be swapped. On load, the
//! public key is re-derived from the seed and must match the file.
use crate::{AlgorithmId, CryptoError, SigningKey};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

const FORMAT: &str = "atp-key";
const VERSION: u32 = 1;
/// Largest key file accepted, in bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl KdfParams {
    /// OWASP-style interactive default: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 1 };
    /// Bounds accepted when reading a file, so a hostile file can neither make the KDF trivial
    /// nor exhaust memory.
    const MIN_M_KIB: u32 = 8 * 1024;
    const MAX_M_KIB: u32 = 4 * 1024 * 1024;
    const MAX_T: u32 = 64;
    const MAX_P: u32 = 16;

    fn check(&self) -> Result<(), CryptoError> {
        if !(Self::MIN_M_KIB..=Self::MAX_M_KIB).contains(&self.m_kib)
            || !(1..=Self::MAX_T).contains(&self.t)
            || !(1..=Self::MAX_P).contains(&self.p)
        {
            return Err(CryptoError::KeyFile(format!("KDF parameters out of bounds: {self:?}")));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileJson {
    format: String,
    version: u32,
    algorithm: String,
    public_key: String,
    secret: SecretJson,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "encoding", deny_unknown_fields)]
enum SecretJson {
    #[serde(rename = "plain")]
    Plain { seed: String },
    #[serde(rename = "argon2id-xchacha20poly1305")]
    Encrypted {
        #[serde(rename = "mKib")]
        m_kib: u32,
        t: u32,
        p: u32,
        salt: String,
        nonce: String,
        ciphertext: String,
    },
}

fn aad(algorithm: &str, public_key_b64: &str) -> Vec<u8> {
    format!("{FORMAT}/v{VERSION}|{algorithm}|{public_key_b64}").into_bytes()
}

fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    params.check()?;
    let p = Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| CryptoError::KeyFile(format!("KDF parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| CryptoError::KeyFile(format!("KDF: {e}")))?;
    Ok(out)
}

/// Serialise a key. With a passphrase the seed is encrypted; the result holds no plaintext
/// secret. Without one, the seed is stored in the clear (protect the file by its mode).
pub fn encode(
    key: &SigningKey,
    passphrase: Option<&[u8]>,
    params: KdfParams,
) -> Result<Zeroizing<String>, CryptoError> {
    let algorithm = key.algorithm().name().to_owned();
    let public_key = B64.encode(key.public_key_ref().as_bytes());
    let secret = match passphrase {
        None => SecretJson::Plain { seed: B64.encode(key.secret_bytes()) },
        Some(pass) => {
            let mut salt = [0u8; 16];
            let mut nonce = [0u8; 24];
            crate::random_bytes(&mut salt)?;
            crate::random_bytes(&mut nonce)?;
            let k = derive_key(pass, &salt, params)?;
            let cipher = XChaCha20Poly1305::new((&*k).into());
            let ct = cipher
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload { msg: key.secret_bytes(), aad: &aad(&algorithm, &public_key) },
                )
                .map_err(|_| CryptoError::KeyFile("encryption failed".into()))?;
            SecretJson::Encrypted {
                m_kib: params.m_kib,
                t: params.t,
                p: params.p,
                salt: B64.encode(salt),
                nonce: B64.encode(nonce),
                ciphertext: B64.encode(ct),
            }
        }
    };
    let file = FileJson { format: FORMAT.into(), version: VERSION, algorithm, public_key, secret };
    let json =
        serde_json::to_string_pretty(&file).map_err(|e| CryptoError::KeyFile(e.to_string()))?;
    // `file` held the plaintext seed string in the unencrypted case; wipe it.
    if let SecretJson::Plain { seed } = file.secret {
        drop(Zeroizing::new(seed));
    }
    Ok(Zeroizing::new(json))
}

/// Parse a key file's contents. `passphrase` is required if and only if the file is encrypted.
pub fn decode(text: &str, passphrase: Option<&[u8]>) -> Result<SigningKey, CryptoError> {
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(CryptoError::KeyFile("file too large".into()));
    }
    let file: FileJson =
        serde_json::from_str(text).map_err(|e| CryptoError::KeyFile(format!("malformed: {e}")))?;
    if file.format != FORMAT {
        return Err(CryptoError::KeyFile(format!(
            "not an ATP key file (format {:?})",
            file.format
        )));
    }
    if file.version != VERSION {
        return Err(CryptoError::KeyFile(format!("unsupported version {}", file.version)));
    }
    let algorithm = AlgorithmId::from_name(&file.algorithm)?;
    let b64 = |s: &str, what: &str| {
        B64.decode(s).map_err(|_| CryptoError::KeyFile(format!("{what} is not base64url")))
    };
    let seed = Zeroizing::new(match (&file.secret, passphrase) {
        (SecretJson::Plain { seed }, None) => b64(seed, "seed")?,
        (SecretJson::Plain { .. }, Some(_)) => {
            return Err(CryptoError::KeyFile(
                "file is not encrypted but a passphrase was given".into(),
            ));
        }
        (SecretJson::Encrypted { .. }, None) => {
            return Err(CryptoError::KeyFile("file is encrypted: a passphrase is required".into()));
        }
        (SecretJson::Encrypted { m_kib, t, p, salt, nonce, ciphertext }, Some(pass)) => {
            let nonce = b64(nonce, "nonce")?;
            if nonce.len() != 24 {
                return Err(CryptoError::KeyFile("nonce must be 24 bytes".into()));
            }
            let k =
                derive_key(pass, &b64(salt, "salt")?, KdfParams { m_kib: *m_kib, t: *t, p: *p })?;
            XChaCha20Poly1305::new((&*k).into())
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &b64(ciphertext, "ciphertext")?,
                        aad: &aad(&file.algorithm, &file.public_key),
                    },
                )
                .map_err(|_| CryptoError::KeyFileDecrypt)?
        }
    });
    let key = SigningKey::from_seed(algorithm, &seed)?;
    let expected = b64(&file.public_key, "publicKey")?;
    if key.public_key_ref().as_bytes() != expected.as_slice() {
        return Err(CryptoError::KeyFile("public key does not match the secret".into()));
    }
    Ok(key)
}

/// Write a key file atomically with mode 0600 (temporary file, fsync, rename, fsync directory).
/// Refuses to overwrite an existing file.
pub fn write(
    path: &Path,
    key: &SigningKey,
    passphrase: Option<&[u8]>,
    params: KdfParams,
) -> Result<(), CryptoError> {
    use std::io::Write;
    let io = |e: std::io::Error| CryptoError::KeyFile(format!("{}: {e}", path.display()));
    if path.exists() {
        return Err(CryptoError::KeyFile(format!("{} already exists", path.display())));
    }
    let text = encode(key, passphrase, params)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| CryptoError::KeyFile("no file name".into()))?;
    let tmp = dir.join(format!(".{}.tmp", file_name.to_string_lossy()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(io)?;
    let result = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Read a key file. On Unix, refuses a file that group or others can read.
pub fn read(path: &Path, passphrase: Option<&[u8]>) -> Result<SigningKey, CryptoError> {
    use std::io::Read;
    let io = |e: std::io::Error| CryptoError::KeyFile(format!("{}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::KeyFile(format!(
                "{} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
                path.display()
            )));
        }
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(CryptoError::KeyFile("file too large".into()));
    }
    let mut text = Zeroizing::new(String::new());
    f.take(MAX_KEY_FILE_BYTES + 1).read_to_string(&mut text).map_err(io)?;
    decode(&text, passphrase)
}
