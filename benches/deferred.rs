//! Deferred writes against immediate ones: N = 10,000 small results.
//!
//! Run: `cargo bench --bench deferred` (optional argument: the number of rounds, default 3). Each row is the
//! median over the rounds of one pass of N writes; every round writes new keys into a fresh directory (or, for the
//! attribute's `path = "..."` bucket, new keys: its directory is fixed at compile time), immediate and deferred
//! passes alternating.
//!
//! Rows:
//! - `attribute`: a `#[bucket_cache(path = ...)]` function called N times with new arguments, immediately (each
//!   miss writes its file) or inside `deferred_calls` (written in one batch when the closure returns). The ratio
//!   includes everything a call does besides the write (hashing, the miss, single flight, the cross-process lock).
//! - `bucket`: `Bucket::insert` N times against a `DeferredWriteBucket` taking N inserts and one `sync`, without and
//!   with `Durability::Fsync` (fewer keys: each fsync costs milliseconds on some disks), the batch written by the
//!   default number of threads (up to 4, as many as there are cores) and by one thread (grouping and reused
//!   directory handles alone).
//! - `floor`: a bare create + write + rename of N files in one directory (what a file-per-entry write costs at
//!   least).

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bucketcache::{bucket_cache, deferred_calls, Bucket, Durability};

const N: u32 = 10_000;
const ATTR_DIR: &str = "target/bench-caches/deferred";

#[bucket_cache(path = "target/bench-caches/deferred")]
fn small(round: u32, i: u32) -> u64 {
    u64::from(round) << 32 | u64::from(i)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn row(name: &str, n: u32, immediate: Duration, deferred: Duration) {
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "{name:<28} n={n:<6} immediate {:>9.1} ms ({:>6.2} us/write)   deferred {:>9.1} ms ({:>6.2} us/write)   ratio {:.2}x",
        immediate.as_secs_f64() * 1e3,
        per(immediate),
        deferred.as_secs_f64() * 1e3,
        per(deferred),
        immediate.as_secs_f64() / deferred.as_secs_f64()
    );
}

fn attribute(rounds: u32) {
    let _ = std::fs::remove_dir_all(ATTR_DIR);
    let (mut now, mut later) = (Vec::new(), Vec::new());
    // Round 0 opens the bucket and warms up; not counted.
    for round in 0..=rounds {
        let t = Instant::now();
        for i in 0..N {
            black_box(small(2 * round, i));
        }
        let immediate = t.elapsed();
        let t = Instant::now();
        deferred_calls(|| {
            for i in 0..N {
                black_box(small(2 * round + 1, i));
            }
        });
        let deferred = t.elapsed();
        if round > 0 {
            now.push(immediate);
            later.push(deferred);
        }
    }
    row("attribute (path = ...)", N, median(now), median(later));
}

fn bucket(rounds: u32, durability: Durability, n: u32, name: &str) {
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let dir = tempfile::tempdir_in("target").expect("tempdir");
        let b = Bucket::builder(dir.path().join("a"))
            .durability(durability)
            .build()
            .expect("bucket");
        let t = Instant::now();
        for i in 0..n {
            b.insert(&i, &u64::from(i)).expect("insert");
        }
        now.push(t.elapsed());
        let b = Bucket::builder(dir.path().join("b"))
            .durability(durability)
            .build()
            .expect("bucket");
        let t = Instant::now();
        let d = b.deferred();
        for i in 0..n {
            d.insert(&i, &u64::from(i)).expect("insert");
        }
        d.sync().expect("sync");
        later.push(t.elapsed());
    }
    row(name, n, median(now), median(later));
}

fn floor(rounds: u32) {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir_in("target").expect("tempdir");
        let t = Instant::now();
        for i in 0..N {
            write_rename(dir.path(), i);
        }
        times.push(t.elapsed());
    }
    let d = median(times);
    println!(
        "{:<28} n={N:<6} {:>9.1} ms ({:>6.2} us/write)",
        "floor (create+write+rename)",
        d.as_secs_f64() * 1e3,
        d.as_secs_f64() * 1e6 / f64::from(N)
    );
}

fn write_rename(dir: &Path, i: u32) {
    let tmp = dir.join(format!(".tmp-{i}"));
    let mut f = std::fs::File::create_new(&tmp).expect("create");
    f.write_all(&[0u8; 200]).expect("write");
    drop(f);
    std::fs::rename(&tmp, dir.join(format!("{i:064x}"))).expect("rename");
}

fn main() {
    let rounds: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3)
        .max(1);
    std::fs::create_dir_all("target").expect("target dir");
    println!("deferred vs immediate writes, median of {rounds} rounds");
    attribute(rounds);
    bucket(rounds, Durability::Atomic, N, "bucket, no fsync");
    bucket(rounds.min(3), Durability::Fsync, 1_000, "bucket, fsync");
    bucketcache::store::set_batch_threads(1);
    bucket(rounds, Durability::Atomic, N, "bucket, no fsync, 1 thread");
    bucket(rounds.min(3), Durability::Fsync, 1_000, "bucket, fsync, 1 thread");
    bucketcache::store::set_batch_threads(0);
    floor(rounds);
}
