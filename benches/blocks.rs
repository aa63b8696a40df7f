//! Criterion benches for the building blocks. Run: `cargo bench --bench blocks`.

use std::collections::HashMap;
use std::hint::black_box;

use bucketcache::StreamingDefaultKeyMaker;
use bucketcache::{Backend, BincodeBackend, Bucket, DefaultKeyMaker, JsonBackend, KeyMaker, MessagePackBackend};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn value() -> Vec<u64> {
    (0..16u64).map(|i| i * 1_000_003).collect()
}

fn key_hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("key");
    let b = "some string argument".to_string();
    g.bench_function("small args (path, u64, String)", |bench| {
        bench.iter(|| DefaultKeyMaker.make_key(black_box(&("compare::f", 1u64, &b))))
    });
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| i as u8).collect();
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.sample_size(10);
    g.bench_function("8 MiB Vec<u8>, streaming", |bench| {
        bench.iter(|| StreamingDefaultKeyMaker.make_key(black_box(&big)))
    });
    let bytes = serde_bytes::ByteBuf::from(big.clone());
    g.bench_function("8 MiB serde_bytes, streaming", |bench| {
        bench.iter(|| StreamingDefaultKeyMaker.make_key(black_box(&bytes)))
    });
    g.throughput(Throughput::Elements(10_000));
    let map: HashMap<String, u64> = (0..10_000u64).map(|i| (format!("key{i}"), i)).collect();
    g.bench_function("HashMap with 10k entries", |bench| {
        bench.iter(|| DefaultKeyMaker.make_key(black_box(&map)))
    });
    g.finish();
}

fn codec<B: Backend>(c: &mut Criterion, name: &str, backend: B) {
    let mut g = c.benchmark_group(format!("codec/{name}"));
    let v = value();
    g.bench_function("encode Vec<u64; 16>", |bench| {
        bench.iter(|| {
            let mut out = Vec::with_capacity(256);
            backend.encode(black_box(&v), &mut out).expect("encode");
            out
        })
    });
    let mut encoded = Vec::new();
    backend.encode(&v, &mut encoded).expect("encode");
    g.bench_function("decode Vec<u64; 16>", |bench| {
        bench.iter(|| backend.decode::<Vec<u64>>(black_box(&encoded)).expect("decode"))
    });
    g.finish();
}

fn codecs(c: &mut Criterion) {
    codec(c, "bincode", BincodeBackend::new());
    codec(c, "json", JsonBackend::new());
    codec(c, "msgpack", MessagePackBackend::new());
}

fn bucket_paths(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("bucket");
    let mem = Bucket::new(dir.path().join("mem")).expect("bucket");
    let key = ("compare::f", 1u64, "x".to_string());
    mem.insert(&key, &value()).expect("insert");
    g.bench_function("memory hit", |bench| {
        bench.iter(|| mem.get::<Vec<u64>>(black_box(&key)).expect("get"))
    });

    let disk = Bucket::builder(dir.path().join("disk"))
        .memory_max_bytes(0)
        .build()
        .expect("bucket");
    disk.insert(&key, &value()).expect("insert");
    g.bench_function("disk hit (no memory tier)", |bench| {
        bench.iter(|| disk.get::<Vec<u64>>(black_box(&key)).expect("get"))
    });
    let path = disk.entry_path(&disk.key_hash(&key).expect("hash"));
    let backend = BincodeBackend::new();
    g.bench_function("baseline: fs::read + decode of the same file", |bench| {
        bench.iter(|| {
            let bytes = std::fs::read(black_box(&path)).expect("read");
            let at = bytes.len() - 17 * 8;
            black_box(backend.decode::<Vec<u64>>(&bytes[at.min(bytes.len())..]).ok())
        })
    });

    let store = Bucket::new(dir.path().join("store")).expect("bucket");
    let mut i = 0u64;
    g.bench_function("miss + store (no fsync)", |bench| {
        bench.iter(|| {
            i += 1;
            store.insert(&("compare::f", i), &value()).expect("insert")
        })
    });
    g.sample_size(10);
    let fsync = Bucket::builder(dir.path().join("fsync"))
        .durability(bucketcache::Durability::Fsync)
        .build()
        .expect("bucket");
    g.bench_function("miss + store (fsync)", |bench| {
        bench.iter(|| {
            i += 1;
            fsync.insert(&("compare::f", i), &value()).expect("insert")
        })
    });
    g.bench_function("prune of 2,000 entries (half expired)", |bench| {
        bench.iter_batched(
            || {
                let d = tempfile::tempdir().expect("tempdir");
                let clock = bucketcache::ManualClock::starting_now();
                let b = Bucket::builder(d.path())
                    .clock(clock.clone())
                    .seconds(1)
                    .build()
                    .expect("bucket");
                let keep = Bucket::builder(d.path()).clock(clock.clone()).build().expect("bucket");
                for k in 0..1_000u32 {
                    b.insert(&k, &k).expect("insert");
                    keep.insert(&(k, "keep"), &k).expect("insert");
                }
                clock.advance(std::time::Duration::from_secs(2));
                (d, b)
            },
            |(_d, b)| b.prune_directory().expect("prune"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, key_hashing, codecs, bucket_paths);
criterion_main!(benches);
