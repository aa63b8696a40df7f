//! Deferred writes beside the attribute: a cached function fills a bucket as usual, and a batch job writes many
//! entries to the same bucket with one `sync()`.
//!
//! Run with `cargo run --example deferred`.

use std::sync::LazyLock;

use bucketcache::{bucket_cache, deferred_write, Bucket};

static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/deferred")).expect("cache directory")
});

#[bucket_cache(bucket = CACHE, version = "1")]
fn collatz_steps(n: u64) -> u32 {
    println!("  computing collatz_steps({n})");
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
