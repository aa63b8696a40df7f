//! The cost of the `metrics` feature on a memory hit, for an instruction counter: N memory hits of
//! `f(a: u64, b: String) -> Vec<u64>` (16 elements). Run it twice with different N under callgrind and divide the
//! difference of the totals by the difference of N:
//!
//! ```text
//! cargo build --release --example metrics_hit_cost [--features metrics]
//! valgrind --tool=callgrind target/release/examples/metrics_hit_cost 20000   # and 40000
//! RECORDER=1 valgrind ...   # with the feature: metrics-util's DebuggingRecorder installed first
//! ```

use std::hint::black_box;
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

#[bucket_cache(bucket = CACHE)]
fn f(a: u64, b: String) -> Vec<u64> {
    (0..16).map(|i| a + i + b.len() as u64).collect()
}

fn main() {
    #[cfg(feature = "metrics")]
    if std::env::var_os("RECORDER").is_some() {
        metrics_util::debugging::DebuggingRecorder::new()
            .install()
            .expect("the only recorder");
    }
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    f(1, "x".into()); // the miss that stores the entry
    for _ in 0..n {
        black_box(f(black_box(1), "x".to_string()));
    }
}
