//! The community edition's admin credential: a bearer token in `<data dir>/admin.token`.
//!
//! On first start the node draws 32 random bytes from the operating system, encodes them as
//! base64url without padding (43 characters) and writes them, followed by a newline, to
//! `admin.token` with mode 0600. Later starts load the file; one that group or others can access
//! is refused. To rotate the token, stop the node, delete the file and start it again.
//!
//! The node keeps only the SHA-256 of the token in memory (zeroized on drop), and
//! [`AdminToken::verify`] compares digests in constant time, so neither the token's bytes nor
//! its length leak through timing, and there is nothing to print: `Debug` shows only the path.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{NodeError, fsutil};

/// The file name of the admin token inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Random bytes in a generated token.
pub const TOKEN_BYTES: usize = 32;

/// Largest token file accepted.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The admin bearer token, held as its SHA-256 digest.
pub struct AdminToken {
    digest: Zeroizing<[u8; 32]>,
    path: PathBuf,
    created: bool,
}

impl AdminToken {
    /// Load the token from `path`, or create it there (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, NodeError> {
        if !fsutil::exists(path) {
            let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
            atp_crypto::random_bytes(&mut raw[..]).map_err(NodeError::Rng)?;
            let mut text = Zeroizing::new(URL_SAFE_NO_PAD.encode(&raw[..]));
            text.push('\n');
            match fsutil::write_new(path, text.as_bytes(), 0o600) {
                Ok(()) => {
                    return Ok(AdminToken {
                        digest: digest(text.trim_end().as_bytes()),
                        path: path.to_owned(),
                        created: true,
                    });
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(NodeError::Io {
                        action: "create the admin token",
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
        Self::load(path)
    }

    /// Load an existing token file. It must not be accessible by group or others, and must hold
    /// one base64url token (no padding) of at least [`TOKEN_BYTES`] bytes.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        fsutil::check_private_file(path)?;
        let bytes = fsutil::read_bounded(path, MAX_TOKEN_FILE_BYTES)?;
        let bad = |reason: &str| NodeError::AdminToken {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text"))?;
        let token = text.trim_end_matches(['\n', '\r']);
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(token)
                .map_err(|_| bad("not a single base64url token (without padding)"))?,
        );
        if decoded.len() < TOKEN_BYTES {
            return Err(bad(&format!(
                "the token holds {} bytes; at least {TOKEN_BYTES} are required",
                decoded.len()
            )));
        }
        Ok(AdminToken { digest: digest(token.as_bytes()), path: path.to_owned(), created: false })
    }

    /// Whether `presented` (the bearer value, without the `Bearer ` scheme) is the admin
    /// token. Constant time in the contents and length of both tokens.
    pub fn verify(&self, presented: &str) -> bool {
        bool::from(digest(presented.as_bytes())[..].ct_eq(&self.digest[..]))
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this start created the token.
    pub fn created(&self) -> bool {
        self.created
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminToken")
            .field("path", &self.path)
            .field("token", &"<redacted>")
            .finish()
    }
}

fn digest(bytes: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(atp_crypto::sha256(bytes))
}
