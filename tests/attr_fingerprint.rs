//! The key holds a fingerprint of the function's body tokens (or the `version = "..."` string instead) and of its
//! signature, so editing the body or the signature starts fresh entries and reverting finds the old ones.
//!
//! One test binary cannot hold two versions of one function, so this reads the key's parts from the log: the
//! constant parts of a call's key (function path, code version, shape, type names) are hashed into a call-site
//! digest, logged at `debug` as "call site" with each part when it is computed, and the test captures that log. That the fingerprint
//! changes with every token of the body, and only with tokens (not whitespace or comments), is unit-tested in
//! `bucketcache-macros/src/tokens.rs` (and that the signature's hash follows the signature).

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> =
    LazyLock::new(|| Bucket::builder(DIR.path()).log_full_keys(true).build().expect("bucket"));

#[bucket_cache(bucket = BUCKET)]
fn fingerprinted(x: u32) -> u32 {
    x + 1
}

#[bucket_cache(bucket = BUCKET, version = "2026-a")]
fn pinned_a(x: u32) -> u32 {
    x + 2
}

#[bucket_cache(bucket = BUCKET, version = "2026-b")]
fn pinned_b(x: u32) -> u32 {
    x + 2
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `debug` log of `f`, as text.
fn log_of(f: impl FnOnce()) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = out.0.lock().expect("lock").clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The log line of the call-site digest (the key's constant parts).
fn call_site_line(log: &str) -> &str {
    log.lines().find(|l| l.contains("call site")).expect("a call site line")
}

/// The log line of the key hashing (the canonical key bytes, escaped).
fn hashed_key_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("hashed key"))
        .expect("a hashed key line")
}

#[test]
fn the_default_key_holds_the_body_fingerprint_and_signature() {
    let log = log_of(|| assert_eq!(fingerprinted(1), 2));
    let line = call_site_line(&log);
    assert!(line.contains(":body:"), "{line}");
    assert!(line.contains("attr_fingerprint::fingerprinted"), "{line}");
}

#[test]
fn version_replaces_the_body_fingerprint() {
    let log = log_of(|| assert_eq!(pinned_a(1), 3));
    let line = call_site_line(&log);
    // `<signature hash>:version:2026-a`: the signature stays part of the key.
    assert!(line.contains(":version:2026-a"), "{line}");
    assert!(!line.contains("body:"), "{line}");
}

#[test]
fn the_same_call_gives_the_same_key_every_time() {
    let first = log_of(|| assert_eq!(pinned_b(7), 9));
    BUCKET.unload_all();
    let second = log_of(|| assert_eq!(pinned_b(7), 9));
    let hash = |log: &str| {
        let line = hashed_key_line(log);
        line[line.find("hash=").expect("hash field")..]
            .split_whitespace()
            .next()
            .map(str::to_owned)
    };
    assert_eq!(hash(&first), hash(&second));
    assert!(second.contains("cache hit"), "{second}");
}
