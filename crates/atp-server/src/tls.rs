//! TLS for the server: a rustls [`ServerConfig`] with the aws-lc-rs provider and the hybrid
//! post-quantum key exchange X25519MLKEM768 first, and the accept loop that turns a
//! `TcpListener` into a stream of TLS connections for tonic.
//!
//! A failed or slow handshake only drops that connection (logged at DEBUG); it never stops
//! the server.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

pub use rustls::ServerConfig;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many handshakes run at once; further connections wait to be accepted.
pub const MAX_CONCURRENT_HANDSHAKES: usize = 256;

/// The TLS settings, as PEM bytes: `atp-node` reads the files.
#[derive(Clone)]
pub struct TlsSettings {
    /// The certificate chain, leaf first (PEM `CERTIFICATE` blocks).
    pub cert_chain_pem: Vec<u8>,
    /// The private key of the leaf (PEM PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
    /// When set, clients must present a certificate issued by one of these CAs (PEM).
    pub client_ca_pem: Option<Vec<u8>>,
    /// Offer only X25519MLKEM768 (and so only TLS 1.3): clients without it fail the handshake.
    pub require_pq: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("client_ca", &self.client_ca_pem.is_some())
            .field("require_pq", &self.require_pq)
            .finish_non_exhaustive()
    }
}

/// Why the TLS settings cannot be used. The message names what is wrong with which input.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The certificate chain PEM.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The private key PEM.
    #[error("private key: {0}")]
    Key(String),
    /// The client CA PEM.
    #[error("client CA: {0}")]
    ClientCa(String),
    /// rustls refused the combination (for example, a key that does not match the certificate).
    #[error("{0}")]
    Rustls(String),
}

/// The key exchange groups offered: X25519MLKEM768 first, then X25519 and secp256r1; only
/// X25519MLKEM768 when `require_pq`.
pub fn provider(require_pq: bool) -> CryptoProvider {
    use aws_lc_rs::kx_group::{SECP256R1, X25519, X25519MLKEM768};
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups =
        if require_pq { vec![X25519MLKEM768] } else { vec![X25519MLKEM768, X25519, SECP256R1] };
    provider
}

/// Builds the rustls server configuration: the provider of [`provider`], ALPN `h2` and
/// `http/1.1` (the HTTP routes share the port), and client-certificate verification when a
/// client CA is given.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(&settings.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Certificate(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsConfigError::Certificate("no CERTIFICATE block found in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&settings.key_pem).map_err(|e| {
        TlsConfigError::Key(format!(
            "no usable private key (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY): {e}"
        ))
    })?;
    let provider = Arc::new(provider(settings.require_pq));
    let versions: &[&rustls::SupportedProtocolVersion] =
        if settings.require_pq { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    let builder = match &settings.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| TlsConfigError::ClientCa(format!("invalid PEM: {e}")))?;
                roots.add(cert).map_err(|e| TlsConfigError::ClientCa(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsConfigError::ClientCa(
                    "no CERTIFICATE block found in the PEM".into(),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsConfigError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError::Rustls(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections on `listener` and yields those that complete the TLS handshake.
/// Handshakes run concurrently (at most [`MAX_CONCURRENT_HANDSHAKES`], each within
/// [`HANDSHAKE_TIMEOUT`]); failures are logged at DEBUG and dropped. The accept loop ends
/// when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let accepted = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // For example EMFILE: back off instead of spinning.
                    tracing::debug!(error = %e, "accepting a TCP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(stream) = handshake(&acceptor, tcp, peer).await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed; connection dropped");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out; connection dropped");
            None
        }
    }
}
