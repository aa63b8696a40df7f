//! `on_cached`: a callback on cache hits only, with the call's arguments (printable, readable by name), the
//! return value, the expiration date and the key hash.
//!
//! Run with `cargo run --example callbacks`.

use std::sync::LazyLock;

use bucketcache::{bucket_cache, ArgValue, Bucket, CachedCallInfo};
use serde::Serialize;

static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/callbacks")).expect("cache directory")
});

/// Only `Serialize`: the callback still prints it.
#[derive(Serialize)]
struct Query {
    table: String,
    limit: u32,
}

fn log_hit(info: &CachedCallInfo<'_, Vec<String>>) {
    println!("hit for {}", info.function);
    for arg in &info.args {
        println!("  {} = {:?}", arg.name, arg.value);
    }
    println!(
        "  limit read by name: {:?}",
        info.arg("q").and_then(|q| q.field("limit")).and_then(ArgValue::as_u64)
    );
    println!("  {} rows, from {:?}", info.return_value.len(), info.source);
    match info.expiration_date {
        Some(at) => println!("  expires at {at}"),
        None => println!("  never expires"),
    }
    println!("  entry file: {}", CACHE.entry_path(&info.key_hash).display());
}

#[bucket_cache(bucket = CACHE, lifetime = "5m", on_cached = log_hit, nocache = "refresh")]
fn run_query(q: Query, refresh: bool) -> Vec<String> {
    println!("running the query on {} (refresh = {refresh})", q.table);
    (0..q.limit).map(|i| format!("{}#{i}", q.table)).collect()
}

fn main() {
    let q = || Query {
        table: "users".into(),
        limit: 3,
    };
    run_query(q(), false);
    run_query(q(), false);
    run_query(q(), true); // no callback: not a hit
}
