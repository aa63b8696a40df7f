//! A memory-tier hit in a loop, for profiling (`valgrind --tool=callgrind`): the function of `benches/compare.rs`.
//!
//! Run: `cargo run --release --example hot_hit -- N [ours|cached|time|miss]`: N hits of ours or of the `cached`
//! crate's `#[cached]` on the same function (the peer of `benches/compare.rs`), `time` the fastest of 51 rounds of
//! N hits of each, `miss` N misses (each storing an entry). Under `valgrind --tool=callgrind`, instructions per hit
//! = (total(2N) - total(N)) / N.

use std::hint::black_box;
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static MEM: LazyLock<Bucket> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("bucketcache-hot-hit-{}", std::process::id()));
    Bucket::new(dir).expect("bucket")
});

#[bucket_cache(bucket = MEM)]
fn f(a: u64, b: String) -> Vec<u64> {
    (0..16)
        .map(|i| a.wrapping_mul(31).wrapping_add(i).wrapping_add(b.len() as u64))
        .collect()
}

#[cached::proc_macro::cached]
fn peer(a: u64, b: String) -> Vec<u64> {
    (0..16)
        .map(|i| a.wrapping_mul(31).wrapping_add(i).wrapping_add(b.len() as u64))
        .collect()
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if std::env::args().nth(2).as_deref() == Some("time") {
        // Fastest of 51 rounds of each, alternating: the least disturbed round (a noisy machine only adds time).
        f(1, "x".to_string());
        peer(1, "x".to_string());
        let (mut ours, mut theirs) = (f64::MAX, f64::MAX);
        for _ in 0..51 {
            let t = std::time::Instant::now();
            for _ in 0..n {
                black_box(f(1, black_box("x".to_string())));
            }
            ours = ours.min(t.elapsed().as_nanos() as f64 / n as f64);
            let t = std::time::Instant::now();
            for _ in 0..n {
                black_box(peer(1, black_box("x".to_string())));
            }
            theirs = theirs.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        println!(
            "memory hit, fastest round: bucketcache {ours:.1} ns, cached {theirs:.1} ns, ratio {:.2}x",
            ours / theirs
        );
        let _ = std::fs::remove_dir_all(MEM.path());
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("miss") {
        // Misses (each stores a new entry): under callgrind, instructions per miss.
        for i in 0..n {
            black_box(f(1_000_000 + i, black_box("x".to_string())));
        }
        let _ = std::fs::remove_dir_all(MEM.path());
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("cached") {
        peer(1, "x".to_string());
        for _ in 0..n {
            black_box(peer(1, black_box("x".to_string())));
        }
        return;
    }
    f(1, "x".to_string());
    for _ in 0..n {
        black_box(f(1, black_box("x".to_string())));
    }
    let _ = std::fs::remove_dir_all(MEM.path());
}
