//! The memory-tier hit of a cached function with `deps(...)` beside the same function without: the dependency
//! fingerprints are combined once per call site, so the two should not differ beyond noise.
//! Run: `cargo bench --bench deps`.
//!
//! Instruction counts, free of the machine's load: `DEPS_HITS=100000 DEPS_FN=plain valgrind --tool=callgrind
//! target/release/deps-<hash>` (the bench binary `cargo bench --bench deps --no-run` prints), once with
//! `DEPS_FN=plain`, once with `DEPS_FN=deps`, and once each with `DEPS_HITS=0`: the difference over 100,000 is one
//! hit's cost.

use std::hint::black_box;
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};
use criterion::{criterion_group, Criterion};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

#[bucketcache::fingerprint]
fn helper(a: u64) -> u64 {
    a * 1_000_003
}

#[bucketcache::fingerprint(deps(helper))]
fn middle(a: u64) -> u64 {
    helper(a) + 1
}

#[bucket_cache(bucket = CACHE)]
fn plain(a: u64, b: String) -> Vec<u64> {
    (0..16u64).map(|i| middle(i + a) + b.len() as u64).collect()
}

#[bucket_cache(bucket = CACHE, deps(middle, file = "Cargo.toml"))]
fn with_deps(a: u64, b: String) -> Vec<u64> {
    (0..16u64).map(|i| middle(i + a) + b.len() as u64).collect()
}

fn memory_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory hit");
    let b = "some string argument".to_string();
    assert_eq!(plain(1, b.clone()), with_deps(1, b.clone()));
    g.bench_function("without deps", |bench| {
        bench.iter(|| plain(black_box(1), black_box(b.clone())))
    });
    g.bench_function("deps(middle, file)", |bench| {
        bench.iter(|| with_deps(black_box(1), black_box(b.clone())))
    });
    g.finish();
}

criterion_group!(benches, memory_hit);

fn main() {
    // `DEPS_HITS=N DEPS_FN=plain|deps`: one miss, then N hits, no criterion (for callgrind).
    if let Ok(n) = std::env::var("DEPS_HITS") {
        let n: u64 = n.parse().expect("DEPS_HITS: a number");
        let deps = std::env::var("DEPS_FN").is_ok_and(|f| f == "deps");
        let b = "some string argument".to_string();
        let mut sum = 0u64;
        for _ in 0..=n {
            let v = if deps {
                with_deps(black_box(1), black_box(b.clone()))
            } else {
                plain(black_box(1), black_box(b.clone()))
            };
            sum = sum.wrapping_add(v[0]);
        }
        println!("{sum}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
