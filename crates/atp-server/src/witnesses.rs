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
use std::sync::Arc;
use std::time::Duration;

use atp_core::checkpoint::{Checkpoint, SignedNote};
use atp_core::witness::{AddCheckpoint, CosignerKey, cosignature_lines, verify_cosignature};
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
        let port = authority.rsplit_once(':').and_then(|(host, port)| {
            (!host.is_empty() && !host.contains('@')).then(|| port.parse::<u16>().ok()).flatten()
        });
        if port.is_none() {
            return Err(ServerError::internal(format!("witness URL {url:?}: no host:port")));
        }
        Ok(Self { url: url.trim_end_matches('/').to_owned(), cosigner })
    }
}

/// What the node remembers between rounds: the size each witness last cosigned (learnt from
/// its answers; a fresh node starts at 0 and learns the right size from the first 409).
#[derive(Debug, Default)]
pub struct WitnessSizes(HashMap<String, u64>);

/// Collects cosignatures every `interval` until `shutdown` completes, in a task of its own, so
/// that a slow witness never holds up the signing of checkpoints.
pub async fn run(
    store: Arc<dyn Store>,
    targets: Vec<WitnessTarget>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut sizes = WitnessSizes::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(interval) => {}
        }
        tokio::select! {
            () = &mut shutdown => break,
            r = collect(&store, &targets, &mut sizes) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "collecting witness cosignatures failed");
                }
            }
        }
    }
}

/// Asks, all at once, the witnesses that have not cosigned the latest checkpoint; stores the
/// note with every valid cosignature. Returns how many witnesses have cosigned it. Failures
/// of single witnesses are logged and skipped.
pub async fn collect(
    store: &Arc<dyn Store>,
    targets: &[WitnessTarget],
    sizes: &mut WitnessSizes,
) -> Result<usize> {
    let Some(latest) = store.latest_checkpoint().await? else { return Ok(0) };
    let kept = store.get_meta(COSIGNED_CHECKPOINT_META).await?;
    let mut note = kept.filter(|n| n.starts_with(&latest.note)).unwrap_or(latest.note.clone());
    let checkpoint = Checkpoint::parse_body(&SignedNote::parse(&latest.note)?.text)?;
    let before = note.len();
    let mut cosigned = 0;
    let mut asks = tokio::task::JoinSet::new();
    for target in targets {
        if verify_cosignature(&note, &target.cosigner).is_ok() {
            cosigned += 1;
            continue;
        }
        let old = sizes.0.get(&target.url).copied().unwrap_or(0);
        let (store, target, node_note, checkpoint) =
            (store.clone(), target.clone(), latest.note.clone(), checkpoint.clone());
        asks.spawn(async move {
            let answer = ask(&*store, &target, &node_note, &checkpoint, old).await;
            (target, answer)
        });
    }
    while let Some(joined) = asks.join_next().await {
        let Ok((target, answer)) = joined else { continue };
        let lines = answer.and_then(|(answer, size)| {
            sizes.0.insert(target.url.clone(), size);
            Ok(cosignature_lines(&latest.note, &answer, &target.cosigner)?)
        });
        match lines {
            Ok(lines) => {
                note.push_str(&lines);
                cosigned += 1;
            }
            Err(e) => tracing::warn!(witness = %target.url, error = %e, "no cosignature"),
        }
    }
    // Stored only if it still extends the latest checkpoint (another node of a cluster may
    // have signed a newer one meanwhile) and fits in one metadata value.
    let still_latest = store.latest_checkpoint().await?.is_some_and(|cp| cp.note == latest.note);
    if note.len() != before && still_latest && note.len() <= atp_store::model::MAX_META_VALUE_BYTES
    {
        store.set_meta(COSIGNED_CHECKPOINT_META.to_owned(), note).await?;
    }
    Ok(cosigned)
}

/// One `add-checkpoint` exchange with `target` from `old`, retried once from the size a 409
/// names. Returns the answer and the size the witness has now cosigned.
async fn ask(
    store: &dyn Store,
    target: &WitnessTarget,
    node_note: &str,
    checkpoint: &Checkpoint,
    mut old: u64,
) -> Result<(String, u64)> {
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
            200 => return Ok((answer, checkpoint.size)),
            409 => {
                old = answer.trim_end().parse().map_err(|_| {
                    ServerError::internal(format!("a 409 without a size: {answer:?}"))
                })?;
            }
            other => {
                let first: String =
                    answer.lines().next().unwrap_or_default().chars().take(200).collect();
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
    let mut length = None;
    for line in head.lines().skip(1) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => return Err(fail("answer", &"a transfer encoding (not read)")),
            "content-length" => length = value.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let answer = match length {
        Some(n) => answer.get(..n).ok_or_else(|| fail("answer", &"shorter than its length"))?,
        None => answer,
    };
    Ok((status, answer.to_owned()))
}
