//! Sealing at rest (`atp_crypto::sealing`): the cost erasure by crypto-shredding adds to every
//! stored and every read piece of trust evidence, at the sizes evidence comes in (a receipt, a
//! typical credential, the 64 KiB limit), beside the SHA-256 content hash the store already
//! computes for each piece in the same run.
#![allow(missing_docs, clippy::unwrap_used)]

use atp_crypto::sealing::DataKey;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const SIZES: [usize; 3] = [512, 2048, 64 * 1024];
const RECORD: &[u8] = b"atp/sealed-evidence/1\n0123456789abcdef0123456789abcdef";

fn sealing(c: &mut Criterion) {
    let key = DataKey::generate().unwrap();
    let mut g = c.benchmark_group("sealing");
    for size in SIZES {
        let body = vec![b'x'; size];
        let sealed = key.seal(RECORD, &body).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &body, |b, body| {
            b.iter(|| key.seal(black_box(RECORD), black_box(body)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, sealed| {
            b.iter(|| key.open(black_box(RECORD), black_box(sealed)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("sha256", size), &body, |b, body| {
            b.iter(|| atp_crypto::sha256(black_box(body)))
        });
    }
    // Every read row carries its subject's key, turned into a `DataKey` (and the row's copy
    // zeroized).
    g.throughput(Throughput::Elements(1));
    g.bench_function("key_from_row", |b| {
        b.iter(|| DataKey::from_vec(black_box(vec![7u8; 32])).unwrap())
    });
    g.finish();
}

criterion_group!(benches, sealing);
criterion_main!(benches);
