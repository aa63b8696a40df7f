//! A memory-tier hit in a loop, for profiling (`valgrind --tool=callgrind`): the function of `benches/compare.rs`.
//!
//! Run: `cargo run --release --example hot_hit -- 100000`. Instructions per hit = (total(2N) - total(N)) / N.

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

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    f(1, "x".to_string());
    for _ in 0..n {
        black_box(f(1, black_box("x".to_string())));
    }
    let _ = std::fs::remove_dir_all(MEM.path());
}
