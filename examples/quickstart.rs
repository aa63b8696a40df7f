//! Quick start: the `#[bucket_cache]` attribute on a method and on a free function.
//!
//! Run it twice with `cargo run --example quickstart`. The first run prints
//!
//! ```text
//! Method called.
//! Cache used.
//! Method called.
//! ```
//!
//! and the second run finds the entries the first one wrote, so its first call is a hit too
//! (`Cache used.` / `Cache used.` / `Method called.`). The cache lives under `target/example-caches/`.
//!
//! To see what the cache does (hits, misses, the call sites' keys, and every handled failure at `warn`), run
//! `RUST_LOG=bucketcache=debug cargo run --example quickstart`: `main` installs a `tracing-subscriber`
//! formatter reading `RUST_LOG`. Without a subscriber, bucketcache's logs (warnings included) go nowhere.

use std::sync::LazyLock;
use std::time::Instant;

use bucketcache::{bucket_cache, ArgValue, Bucket, CachedCallInfo};
use serde::Serialize;

/// One bucket for the example, in the target directory (not your home directory).
static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/quickstart");
    Bucket::new(dir).expect("the example's cache directory can be created")
});

/// `method` puts the instance's state in the key: two services with different users never share results.
#[derive(Serialize)]
struct SomeService {
    username: String,
    /// Left out of the key (and out of the logs): serde's `skip`.
    #[serde(skip)]
    password: String,
}

impl SomeService {
    #[bucket_cache(method, bucket = CACHE, nocache = "skip_cache", on_cached = SomeService::cache_used)]
    fn expensive_method(&self, a: u32, b: u32, c: u32, skip_cache: bool) -> u64 {
        println!("Method called.");
        let _ = &self.password;
        std::thread::sleep(std::time::Duration::from_millis(300)); // the expensive part
        u64::from(a) * 100 + u64::from(b) * 10 + u64::from(c)
    }

    /// Called on a cache hit, before the cached value is returned.
    fn cache_used(&self, info: &CachedCallInfo<'_, u64>) {
        println!("Cache used.");
        println!(
            "    ({} for {} with a = {}: {} from {:?}, written {})",
            info.function,
            self.username,
            info.arg("a").and_then(ArgValue::as_u64).unwrap_or_default(),
            info.return_value,
            info.source,
            info.written.format("%H:%M:%S"),
        );
    }
}

/// A free function: entries expire an hour after they are written; `verbose` is not part of the key (and need
/// not be `Serialize`).
#[bucket_cache(bucket = CACHE, lifetime = "1h", ignore(verbose))]
fn word_count(text: String, verbose: bool) -> usize {
    if verbose {
        println!("counting the words of {text:?}");
    }
    text.split_whitespace().count()
}

fn main() {
    // Logs: `RUST_LOG=bucketcache=debug` shows hits, misses and call sites; `=warn` only handled failures.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    println!("cache directory: {}", CACHE.path().display());
    let some_service = SomeService {
        username: "ann".to_string(),
        password: "hunter2".to_string(),
    };
    for skip_cache in [false, false, true] {
        let start = Instant::now();
        let value = some_service.expensive_method(1, 2, 3, skip_cache);
        println!("  -> {value} in {:?} (skip_cache = {skip_cache})", start.elapsed());
    }

    let start = Instant::now();
    let n = word_count("the quick brown fox".to_string(), true);
    println!("word_count: {n} in {:?}", start.elapsed());
    let start = Instant::now();
    let n = word_count("the quick brown fox".to_string(), false);
    println!(
        "word_count again: {n} in {:?} (a hit: nothing printed by the body)",
        start.elapsed()
    );
    println!("Run the example again: the first call is then a hit as well, served from the file.");
}
