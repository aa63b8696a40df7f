//! Deferred writes: a batch job writes many entries to a bucket with one `sync()`; a function decorated with a
//! `DeferredWriteBucket` keeps its results pending until `sync()`; `deferred_calls` writes the results of the
//! default and `path = "..."` buckets computed inside it in one batch when it returns.
//!
//! Run with `cargo run --example deferred`.

use std::sync::LazyLock;

use bucketcache::{bucket_cache, deferred_calls, deferred_write, Bucket, DeferredWriteBucket};

static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/deferred")).expect("cache directory")
});

#[bucket_cache(bucket = CACHE, version = "1")]
fn collatz_steps(n: u64) -> u32 {
    println!("  computing collatz_steps({n})");
    steps(n)
}

/// The same bucket, deferred: results of `pending_steps` are written at `PENDING.sync()`.
static PENDING: LazyLock<DeferredWriteBucket<'static>> = LazyLock::new(|| CACHE.deferred());

#[bucket_cache(bucket = PENDING, version = "1")]
fn pending_steps(n: u64) -> u32 {
    steps(n)
}

#[bucket_cache(path = "target/example-caches/deferred-scope", version = "1")]
fn scoped_steps(n: u64) -> u32 {
    steps(n)
}

fn main() -> bucketcache::Result<()> {
    // Precompute a table in memory and write it in one go: nothing touches the disk until the closure succeeds.
    deferred_write(&CACHE, |d| {
        for n in 1..=1000u64 {
            d.insert(&("table", n), &steps(n))?;
        }
        println!("{} writes pending before sync", d.pending_len());
        Ok(())
    })?;
    println!("table entry 27: {:?}", CACHE.get::<u32>(&("table", 27u64))?);

    // The attribute writes through to the same bucket.
    println!("collatz_steps(97) = {}", collatz_steps(97));
    println!("collatz_steps(97) = {} (a hit)", collatz_steps(97));

    // A decorated function on a deferred bucket: its results wait for `sync`.
    let longest = (1..=2000u64).map(pending_steps).max().unwrap_or(0);
    println!(
        "longest chain below 2000: {longest} steps; {} results pending",
        PENDING.pending_len()
    );
    PENDING.sync()?;

    // The scope form: every cached call of `path = ...` / default-bucket functions on this thread, written at the end.
    let total: u64 = deferred_calls(|| (1..=2000u64).map(|n| u64::from(scoped_steps(n))).sum());
    println!("total steps below 2000: {total} (2000 results written in one batch)");
    Ok(())
}

fn steps(n: u64) -> u32 {
    let (mut n, mut steps) = (n, 0);
    while n != 1 {
        n = if n.is_multiple_of(2) { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}
