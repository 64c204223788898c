//! Witness cosignatures on the node's checkpoints (docs/protocol.md §E5, docs/operations.md
//! "Witnesses").
//!
//! After each checkpointer round, a node with witnesses configured asks every witness that has
//! not cosigned the latest checkpoint to do so (C2SP `tlog-witness` `add-checkpoint`, with the
//! consistency proof from the size that witness last cosigned). Each answer is verified under
//! that witness's configured keys before it is kept. The node's note with every valid
//! cosignature is stored as node metadata ([`COSIGNED_CHECKPOINT_META`]), so that every node of
//! a cluster serves it, and `GetCheckpoint` returns it while it is for the latest checkpoint.
//!
//! A witness that is down, slow or refuses delays nothing: the checkpoint is already stored and
//! served; clients get the best quorum the node has, and the next round asks again. Witnesses
//! are reached over plain HTTP (a loopback or private network); TLS to witnesses is not built.

use std::collections::HashMap;
use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, SignedNote};
use atp_core::witness::{AddCheckpoint, CosignerKey, verify_cosignature};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use atp_store::Store;

use crate::error::{Result, ServerError};

/// The node metadata key of the latest checkpoint note with its witness cosignatures.
pub const COSIGNED_CHECKPOINT_META: &str = "checkpoint.cosigned";
/// The most witnesses a node asks (the cosigned note must fit in one metadata value).
pub const MAX_WITNESSES: usize = 8;
/// How long one witness gets to answer one request.
pub const WITNESS_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest witness answer read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// A witness the node asks: its `http://host:port[/prefix]` URL and its cosigner keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessTarget {
    /// The URL prefix; `/add-checkpoint` is appended.
    pub url: String,
    /// The keys its cosignatures must verify under.
    pub cosigner: CosignerKey,
}

impl WitnessTarget {
    /// A witness at `url` (`http://host:port` with an optional path prefix).
    pub fn new(url: &str, cosigner: CosignerKey) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| ServerError::internal(format!("witness URL {url:?}: only http://")))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(ServerError::internal(format!("witness URL {url:?}: no host:port")));
        }
        Ok(Self { url: url.trim_end_matches('/').to_owned(), cosigner })
    }
}

/// What the node remembers between rounds: the size each witness last cosigned (learnt from
/// its answers; a fresh node starts at 0 and learns the right size from the first 409).
#[derive(Debug, Default)]
pub struct WitnessSizes(HashMap<String, u64>);

/// Asks the witnesses that have not cosigned the latest checkpoint; stores the note with every
/// valid cosignature. Returns how many witnesses have cosigned it. Failures of single
/// witnesses are logged and skipped.
pub async fn collect(
    store: &dyn Store,
    targets: &[WitnessTarget],
    sizes: &mut WitnessSizes,
) -> Result<usize> {
    let Some(latest) = store.latest_checkpoint().await? else { return Ok(0) };
    let kept = store.get_meta(COSIGNED_CHECKPOINT_META).await?;
    let mut note = kept.filter(|n| n.starts_with(&latest.note)).unwrap_or(latest.note.clone());
    let checkpoint = Checkpoint::parse_body(&SignedNote::parse(&latest.note)?.text)?;
    let before = note.len();
    let mut cosigned = 0;
    for target in targets {
        if verify_cosignature(&note, &target.cosigner).is_ok() {
            cosigned += 1;
            continue;
        }
        match ask(store, target, &latest.note, &checkpoint, sizes).await {
            Ok(lines) => {
                let with = format!("{note}{lines}");
                match verify_cosignature(&with, &target.cosigner) {
                    Ok(_) => {
                        note = with;
                        cosigned += 1;
                        sizes.0.insert(target.url.clone(), checkpoint.size);
                    }
                    Err(e) => tracing::warn!(witness = %target.url, error = %e,
                        "a witness answered a cosignature that does not verify; ignored"),
                }
            }
            Err(e) => tracing::warn!(witness = %target.url, error = %e, "no cosignature"),
        }
    }
    if note.len() != before {
        store.set_meta(COSIGNED_CHECKPOINT_META.to_owned(), note).await?;
    }
    Ok(cosigned)
}

/// One `add-checkpoint` exchange with `target`, retried once from the size a 409 names.
async fn ask(
    store: &dyn Store,
    target: &WitnessTarget,
    node_note: &str,
    checkpoint: &Checkpoint,
    sizes: &mut WitnessSizes,
) -> Result<String> {
    let mut old = sizes.0.get(&target.url).copied().unwrap_or(0);
    for _ in 0..2 {
        if old > checkpoint.size {
            return Err(ServerError::internal(format!(
                "the witness cosigned {old} leaves, more than this checkpoint's {}",
                checkpoint.size
            )));
        }
        let proof = if old == 0 || old == checkpoint.size {
            Vec::new()
        } else {
            store.consistency_proof(old, checkpoint.size).await?
        };
        let body = AddCheckpoint { old_size: old, proof, note: node_note.to_owned() }.to_body();
        let (status, answer) = post(&format!("{}/add-checkpoint", target.url), &body).await?;
        match status {
            200 => return Ok(answer),
            409 => {
                old = answer.trim_end().parse().map_err(|_| {
                    ServerError::internal(format!("a 409 without a size: {answer:?}"))
                })?;
                sizes.0.insert(target.url.clone(), old);
            }
            other => {
                let first = answer.lines().next().unwrap_or_default();
                return Err(ServerError::internal(format!("HTTP {other}: {first}")));
            }
        }
    }
    Err(ServerError::internal("the witness's size changed twice"))
}

/// A bounded HTTP/1.1 POST over plain TCP (one connection, closed by the witness); returns the
/// status and the body.
async fn post(url: &str, body: &str) -> Result<(u16, String)> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        ServerError::internal(format!("witness {url}: {what}: {e}"))
    };
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) =
        rest.split_once('/').map_or((rest, "/"), |(a, _)| (a, &rest[a.len()..]));
    let exchange = async {
        let mut stream =
            tokio::net::TcpStream::connect(authority).await.map_err(|e| fail("connect", &e))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.map_err(|e| fail("write", &e))?;
        stream.write_all(body.as_bytes()).await.map_err(|e| fail("write", &e))?;
        let mut raw = Vec::new();
        stream.take(MAX_ANSWER_BYTES).read_to_end(&mut raw).await.map_err(|e| fail("read", &e))?;
        Ok::<_, ServerError>(raw)
    };
    let raw = tokio::time::timeout(WITNESS_TIMEOUT, exchange)
        .await
        .map_err(|e| fail("timeout", &e))??;
    let text = String::from_utf8(raw).map_err(|e| fail("answer", &e))?;
    let (head, answer) =
        text.split_once("\r\n\r\n").ok_or_else(|| fail("answer", &"no header end"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("answer", &"no status"))?;
    Ok((status, answer.to_owned()))
}
