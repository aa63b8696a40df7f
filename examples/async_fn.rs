//! `async fn`s under tokio: cached like sync ones; concurrent calls of one cold key run the body once while the
//! others wait without blocking the executor.
//!
//! Run with `cargo run --example async_fn`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bucketcache::{bucket_cache, Bucket};

static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/async_fn")).expect("cache directory")
});

static FETCHES: AtomicUsize = AtomicUsize::new(0);

/// A slow "download": `Err` results are not cached, so a failure is retried on the next call.
#[bucket_cache(bucket = CACHE, lifetime = "10m")]
async fn download(url: String) -> Result<Vec<u8>, String> {
    FETCHES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    if url.ends_with(".missing") {
        return Err(format!("404 for {url}"));
    }
    Ok(url.bytes().rev().collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let start = Instant::now();
    let (a, b, c) = tokio::join!(
        download("https://example.invalid/a".into()),
        download("https://example.invalid/a".into()),
        download("https://example.invalid/b".into()),
    );
    println!(
        "three concurrent calls, two keys: {} bodies ran in {:?}",
        FETCHES.load(Ordering::SeqCst),
        start.elapsed()
    );
    assert_eq!(a, b);
    let _ = c;

    let start = Instant::now();
    let again = download("https://example.invalid/a".into()).await;
    println!(
        "again: {} bytes in {:?} (a hit)",
        again.map(|v| v.len()).unwrap_or(0),
        start.elapsed()
    );

    for _ in 0..2 {
        let r = download("https://example.invalid/x.missing".into()).await;
        println!("missing: {r:?} (errors are retried: not cached)");
    }
    println!(
        "bodies run in total: {} (a second run of the example serves a and b from the files)",
        FETCHES.load(Ordering::SeqCst)
    );
}
