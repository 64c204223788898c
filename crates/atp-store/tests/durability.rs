//! Durability: everything survives closing and reopening, dropping without closing, and a
//! `kill -9` of a process in the middle of writing (the store-level version of the node's
//! durability test).
//!
//! The SIGKILL test re-executes this test binary with [`CHILD_ENV`] set, selecting the ignored
//! test [`kill9_child_writer`], which writes in a loop and prints one `ACK` line per
//! acknowledged write. The parent kills it (`Child::kill` sends SIGKILL on Unix), reopens the
//! store, and checks that every acknowledged write is there and that the log verifies.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atp_core::checkpoint::{Checkpoint, sign_note};
use atp_core::kel;
use atp_core::log_entry::evidence_data_hash;
use atp_core::status_list::StatusPurpose;
use atp_core::tlog;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_store::{KelHead, NewEvidence, NewStatusList, SqliteStore, Store};
use common::{TestDir, incept, keys, rotation};

/// Set in the child process: the data directory to write to.
const CHILD_ENV: &str = "ATP_STORE_KILL9_CHILD_DIR";

/// The status list the child writes to.
const LIST: &str = "kill9";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads the whole log, checks each leaf against its kind and data hash and the stored root
/// against the leaves; returns the leaf hashes.
async fn verified_leaves(store: &dyn Store) -> Vec<tlog::Hash> {
    let size = store.log_size().await.unwrap();
    let mut leaves = Vec::new();
    while (leaves.len() as u64) < size {
        for e in store.get_entries(leaves.len() as u64, 1000).await.unwrap() {
            assert_eq!(e.index, leaves.len() as u64);
            assert!(e.is_consistent());
            leaves.push(e.leaf_hash);
        }
    }
    assert_eq!(store.root_at(size).await.unwrap(), tlog::root_from_leaf_hashes(&leaves));
    leaves
}

/// Every stored KEL verifies and its head row matches.
async fn verify_all_kels(store: &dyn Store) -> usize {
    let mut token: Option<String> = None;
    let mut n = 0;
    loop {
        let page = store.list_identities(100, token.as_deref()).await.unwrap();
        for rec in &page.identities {
            let events: Vec<_> =
                store.get_kel(&rec.did).await.unwrap().into_iter().map(|s| s.event).collect();
            let state = kel::verify_log(&events).unwrap();
            assert_eq!(state.did, rec.did);
            assert_eq!(rec.head(), KelHead::of(&state));
            n += 1;
        }
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(store.identity_count().await.unwrap(), n as u64);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_reopening() {
    let dir = TestDir::new("reopen");
    let k = keys(3);
    let mut id = incept(&k, "reopen");
    let ed = SigningKey::generate(AlgorithmId::Ed25519).unwrap();
    let ml = SigningKey::generate(AlgorithmId::MlDsa65).unwrap();

    let (stats, root, size) = {
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.append_kel_event(id.inception()).await.unwrap();
        let rot = rotation(&id, &k, 1, 2, "reopen-rot");
        store.append_kel_event(id.accept(rot.clone())).await.unwrap();
        id.push(rot);
        store
            .create_status_list(NewStatusList {
                list_id: "l1".into(),
                issuer: "did:atp:i".into(),
                purpose: StatusPurpose::Suspension,
                status_size: 1,
                entries: 131_072,
                allocatable: true,
            })
            .await
            .unwrap();
        store.set_status("l1".into(), 7, 1).await.unwrap();
        store.allocate_status_index("did:atp:i".into(), StatusPurpose::Suspension).await.unwrap();
        store.set_trust_anchors(vec!["did:atp:anchor".into()]).await.unwrap();
        store.set_meta("node.did".into(), "did:atp:node".into()).await.unwrap();
        store
            .append_evidence(NewEvidence {
                subject: id.did.clone(),
                evidence_type: "kel-fork".into(),
                body: b"evidence".to_vec(),
            })
            .await
            .unwrap();
        let size = store.log_size().await.unwrap();
        let root = store.root_at(size).await.unwrap();
        let note =
            sign_note(&Checkpoint::new("atp.test/log", size, root), "atp.test/log", &ed, &ml)
                .unwrap();
        assert!(store.put_checkpoint(note).await.unwrap());
        let stats = store.stats().await.unwrap();
        store.close().await.unwrap();
        (stats, root, size)
    };

    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.stats().await.unwrap(), stats);
    assert_eq!(store.log_size().await.unwrap(), size);
    assert_eq!(store.root_at(size).await.unwrap(), root);
    let events: Vec<_> =
        store.get_kel(&id.did).await.unwrap().into_iter().map(|s| s.event).collect();
    assert_eq!(events, id.events);
    let list = store.get_status_list("l1").await.unwrap().unwrap();
    assert_eq!((list.list.get(7).unwrap(), list.version, list.next_index), (1, 1, 1));
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:atp:anchor"]);
    assert_eq!(store.get_meta("node.did").await.unwrap().as_deref(), Some("did:atp:node"));
    let cp = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!((cp.size, cp.root_hash), (size, root));
    assert_eq!(verify_all_kels(&store).await, 1);
    verified_leaves(&store).await;

    // Appending after a reopen continues the same log: the old root is a prefix.
    let rot = rotation(&id, &k, 2, 0, "after-reopen");
    store.append_kel_event(id.accept(rot)).await.unwrap();
    let new_size = store.log_size().await.unwrap();
    let new_root = store.root_at(new_size).await.unwrap();
    let proof = store.consistency_proof(size, new_size).await.unwrap();
    tlog::verify_consistency(size, new_size, &root, &new_root, &proof).unwrap();

    // Dropping without closing loses nothing acknowledged either.
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.root_at(new_size).await.unwrap(), new_root);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_and_database_are_created_private() {
    let dir = TestDir::new("fresh");
    let nested = dir.path().join("a/b/data");
    let store = SqliteStore::open(&nested).await.unwrap();
    assert_eq!(store.path(), nested.join(atp_store::DB_FILE_NAME));
    assert!(store.path().is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(store.path()), 0o600);
    }
    store.close().await.unwrap();
}

/// The child side of [`acknowledged_writes_survive_sigkill`]: writes until killed (or for at
/// most a minute), printing an `ACK` line after each acknowledged write.
#[test]
#[ignore = "child process of acknowledged_writes_survive_sigkill"]
fn kill9_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    common::runtime().block_on(async move {
        let store = Arc::new(SqliteStore::open(&dir).await.unwrap());
        let new_list = NewStatusList {
            list_id: LIST.into(),
            issuer: "did:atp:node".into(),
            purpose: StatusPurpose::Revocation,
            status_size: 1,
            entries: 131_072,
            allocatable: true,
        };
        // The second run finds the list already there.
        let _ = store.create_status_list(new_list).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let run = std::process::id();
        let mut tasks = tokio::task::JoinSet::new();
        // Two identity writers: inception then rotations, alternating two keys.
        for w in 0..2 {
            let store = store.clone();
            tasks.spawn(async move {
                let k = keys(2);
                let mut i = 0;
                while Instant::now() < deadline {
                    let mut id = incept(&k, &format!("kill9-{run}-{w}-{i}"));
                    let a = store.append_kel_event(id.inception());
                    let a = a.await.unwrap();
                    println!("ACK kel {} {} {}", a.did, a.sequence, a.digest);
                    for r in 0..3 {
                        let (cur, next) = if r % 2 == 0 { (1, 0) } else { (0, 1) };
                        let rot = rotation(&id, &k, cur, next, &format!("r{r}"));
                        let a = store.append_kel_event(id.accept(rot.clone()));
                        let a = a.await.unwrap();
                        println!("ACK kel {} {} {}", a.did, a.sequence, a.digest);
                        id.push(rot);
                    }
                    i += 1;
                }
            });
        }
        // Evidence writers: cheap requests, so that batches are large and commits frequent.
        for w in 0..4 {
            let store = store.clone();
            tasks.spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let body = format!("kill9 evidence {run} {w} {i}").into_bytes();
                    let ev = NewEvidence {
                        subject: "did:atp:subject".into(),
                        evidence_type: "receipt".into(),
                        body: body.clone(),
                    };
                    let index = store.append_evidence(ev).await.unwrap();
                    println!("ACK evidence {index} {}", hex(&evidence_data_hash(&body)));
                    i += 1;
                }
            });
        }
        // A status writer: allocate an index, then revoke it.
        {
            let store = store.clone();
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    let slot = store
                        .allocate_status_index("did:atp:node".into(), StatusPurpose::Revocation)
                        .await
                        .unwrap()
                        .unwrap();
                    println!("ACK alloc {}", slot.index);
                    store.set_status(slot.list_id, slot.index, 1).await.unwrap();
                    println!("ACK status {}", slot.index);
                }
            });
        }
        tasks.join_all().await;
    });
}

#[derive(Default)]
struct Acks {
    kel: Vec<(String, u64, String)>,
    evidence: Vec<(u64, String)>,
    alloc: Vec<u64>,
    status: Vec<u64>,
}

impl Acks {
    fn total(&self) -> usize {
        self.kel.len() + self.evidence.len() + self.alloc.len() + self.status.len()
    }

    fn add(&mut self, line: &str) {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["ACK", "kel", did, seq, digest] => {
                self.kel.push(((*did).into(), seq.parse().unwrap(), (*digest).into()))
            }
            ["ACK", "evidence", index, hash] => {
                self.evidence.push((index.parse().unwrap(), (*hash).into()))
            }
            ["ACK", "alloc", index] => self.alloc.push(index.parse().unwrap()),
            ["ACK", "status", index] => self.status.push(index.parse().unwrap()),
            _ => {} // libtest's own output
        }
    }
}

/// Runs the child writer until it has acknowledged `min_acks` writes, then SIGKILLs it.
fn run_and_kill(dir: &TestDir, min_acks: usize) -> Acks {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["kill9_child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Acks::default();
    let deadline = Instant::now() + Duration::from_secs(90);
    while acks.total() < min_acks && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => acks.add(&line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Kill it mid-write: the writers never pause.
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines the child printed before it died are acknowledged writes too.
    reader.join().unwrap();
    for line in rx.try_iter() {
        acks.add(&line);
    }
    assert!(acks.total() >= min_acks, "the child acknowledged only {} writes", acks.total());
    acks
}

/// Reopens the store after a kill and checks every acknowledged write; returns the log size
/// and root.
async fn check_after_kill(dir: &TestDir, acks: &Acks) -> (u64, tlog::Hash) {
    let store = SqliteStore::open(dir.path()).await.unwrap();
    for (did, seq, digest) in &acks.kel {
        let ev = store.get_kel_event(did, *seq).await.unwrap();
        let ev = ev.unwrap_or_else(|| panic!("acknowledged event {did} #{seq} is missing"));
        assert_eq!(&ev.digest, digest);
    }
    for (index, hash) in &acks.evidence {
        let e = store.get_entries(*index, 1).await.unwrap();
        assert_eq!(e.first().map(|e| hex(&e.data_hash)).as_deref(), Some(hash.as_str()));
    }
    let list = store.get_status_list(LIST).await.unwrap().unwrap();
    let max_alloc = acks.alloc.iter().max().map_or(0, |m| m + 1);
    assert!(list.next_index >= max_alloc, "an acknowledged allocation was lost");
    for index in &acks.status {
        assert_eq!(list.list.get(*index).unwrap(), 1, "acknowledged revocation {index} lost");
    }
    verify_all_kels(&store).await;
    let leaves = verified_leaves(&store).await;
    // Each stored KEL event's leaf commits to it.
    let mut by_index = BTreeMap::new();
    for (did, seq, _) in &acks.kel {
        let ev = store.get_kel_event(did, *seq).await.unwrap().unwrap();
        by_index.insert(ev.log_index, atp_core::log_entry::kel_data_hash(&ev.event).unwrap());
    }
    for (index, data_hash) in by_index {
        let e = &store.get_entries(index, 1).await.unwrap()[0];
        assert_eq!(e.data_hash, data_hash);
    }
    let size = leaves.len() as u64;
    let root = store.root_at(size).await.unwrap();
    store.close().await.unwrap();
    (size, root)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = TestDir::new("kill9");
    let rt = common::runtime();
    let mut previous: Option<(u64, tlog::Hash)> = None;
    // Three times, after more and more writes: each child continues the log the one before it
    // left behind.
    for (round, min_acks) in [100, 250, 400].into_iter().enumerate() {
        let acks = run_and_kill(&dir, min_acks);
        eprintln!(
            "kill9 round {round}: {} kel, {} evidence, {} status acknowledged before SIGKILL",
            acks.kel.len(),
            acks.evidence.len(),
            acks.status.len()
        );
        let (size, root) = rt.block_on(check_after_kill(&dir, &acks));
        if let Some((old_size, old_root)) = previous {
            assert!(size >= old_size);
            let proof = rt.block_on(async {
                let store = SqliteStore::open(dir.path()).await.unwrap();
                let p = store.consistency_proof(old_size, size).await.unwrap();
                store.close().await.unwrap();
                p
            });
            tlog::verify_consistency(old_size, size, &old_root, &root, &proof).unwrap();
        }
        previous = Some((size, root));
    }
}
