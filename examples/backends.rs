//! Backends: `backend = json | msgpack | bincode` for buckets the attribute opens (`path = "dir"` or the default
//! directory), or any backend on your own bucket with `bucket = EXPR`.
//!
//! Run with `cargo run --example backends`, then look at the files under `target/example-caches/backends`: the
//! JSON entries' payloads are readable text after their header.

use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket, MessagePackBackend};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Summary {
    words: usize,
    longest: String,
}

/// `path` is taken against the current directory; `cargo run` runs in the package root.
#[bucket_cache(path = "target/example-caches/backends/json", backend = json)]
fn summarize_json(text: String) -> Summary {
    println!("  json body runs");
    summarize(&text)
}

#[bucket_cache(path = "target/example-caches/backends/bincode", backend = bincode)]
fn summarize_bincode(text: String) -> Summary {
    println!("  bincode body runs");
    summarize(&text)
}

/// Your own bucket, with any backend and settings.
static MSGPACK: LazyLock<Bucket<MessagePackBackend>> = LazyLock::new(|| {
    Bucket::builder(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/example-caches/backends/msgpack"
    ))
    .backend(MessagePackBackend::new())
    .memory_max_bytes(1024 * 1024)
    .build()
    .expect("cache directory")
});

#[bucket_cache(bucket = MSGPACK)]
fn summarize_msgpack(text: String) -> Summary {
    println!("  msgpack body runs");
    summarize(&text)
}

fn summarize(text: &str) -> Summary {
    Summary {
        words: text.split_whitespace().count(),
        longest: text
            .split_whitespace()
            .max_by_key(|w| w.len())
            .unwrap_or_default()
            .to_string(),
    }
}

fn main() {
    let text = "a file backed memoization framework for rust".to_string();
    for round in 1..=2 {
        println!("round {round}");
        println!("{:?}", summarize_json(text.clone()));
        println!("{:?}", summarize_bincode(text.clone()));
        println!("{:?}", summarize_msgpack(text.clone()));
    }
}
