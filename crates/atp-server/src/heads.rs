//! Coalesced reads of key event log heads, for a node whose store other nodes write to (a
//! cluster, `ServerSettings::kel_cache_exclusive_writer` = false).
//!
//! Such a node checks a cached log against the store's head before every use, so that a
//! rotation made through another node is never missed. One read per call made that check the
//! cluster's bottleneck (docs/benchmarks.md, "HA"). Here the checks that wait at the same time
//! share one read ([`atp_store::Store::get_kel_heads`]): a worker takes every request queued,
//! up to [`MAX_BATCH`], and sends one statement for them all.
//!
//! **Still exact.** A batch's statement is sent after every request in it arrived, so it sees
//! every write committed before any of them: each caller gets a head at least as new as a read
//! of its own would have. Nothing is cached between batches.
//!
//! A batch that fails answers nothing: each of its callers then reads alone, and gets its own
//! error.

use std::sync::Arc;

use atp_store::{KelHead, Store};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::Result;

/// The most DIDs one read asks for.
pub const MAX_BATCH: usize = 256;
/// How many batch reads may be in flight at once (the rest wait, and grow the next batch).
pub const MAX_IN_FLIGHT: usize = 4;
/// How many requests may wait for a batch; a caller beyond waits to enqueue.
const QUEUE: usize = 4096;

/// `None` in the answer: the batch failed, read alone.
type Request = (String, oneshot::Sender<Option<Option<KelHead>>>);

/// The queue of head reads and its worker (which ends when this is dropped).
#[derive(Debug)]
pub struct HeadReads {
    queue: mpsc::Sender<Request>,
}

impl HeadReads {
    /// Starts the worker on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, requests));
        HeadReads { queue }
    }

    /// The head of `did`'s log in the store (`None`: the store holds no log of it), read no
    /// earlier than this call.
    pub async fn head(&self, store: &dyn Store, did: &str) -> Result<Option<KelHead>> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((did.to_owned(), reply)).await.is_ok()
            && let Ok(Some(head)) = answer.await
        {
            return Ok(head);
        }
        Ok(store.get_identity(did).await?.map(|identity| identity.head()))
    }
}

async fn run(store: Arc<dyn Store>, mut requests: mpsc::Receiver<Request>) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // The permit first: while every read is in flight, requests queue up for the next.
        let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
        let Some(first) = requests.recv().await else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let dids = batch.iter().map(|(did, _)| did.clone()).collect();
            match store.get_kel_heads(dids).await {
                Ok(heads) if heads.len() == batch.len() => {
                    for ((_, reply), head) in batch.into_iter().zip(heads) {
                        // A caller that went away needs no answer.
                        let _ = reply.send(Some(head));
                    }
                }
                _ => {
                    for (_, reply) in batch {
                        let _ = reply.send(None);
                    }
                }
            }
        });
    }
}
