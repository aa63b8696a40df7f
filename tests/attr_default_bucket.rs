//! Buckets the attribute opens itself: the default directory (`$BUCKETCACHE_DIR`, read when a function first needs
//! it), `backend = json | msgpack | bincode`, and `path = "dir"`; one shared bucket per (directory, backend).
//!
//! One test only: it sets an environment variable for the whole process.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bucketcache::bucket_cache;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache]
fn plain(x: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    x * 10
}

#[bucket_cache(backend = json)]
fn as_json(x: u32) -> Vec<String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    vec![x.to_string()]
}

#[bucket_cache(backend = msgpack, lifetime = "1h")]
fn as_msgpack(x: u32) -> (u32, bool) {
    CALLS.fetch_add(1, Ordering::SeqCst);
    (x, true)
}

#[bucket_cache(backend = bincode)]
fn as_bincode(x: u32) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    u64::from(x) + 1
}

#[bucket_cache(path = "target/test-caches/attr_default_bucket", backend = json)]
fn in_path(x: u32) -> String {
    CALLS.fetch_add(1, Ordering::SeqCst);
    format!("path {x}")
}

/// `(backend id, function)` of every entry under `dir`.
fn entries(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let Ok(shards) = std::fs::read_dir(dir.join("entries-v2")) else {
        return out;
    };
    for shard in shards.flatten() {
        for file in std::fs::read_dir(shard.path()).expect("shard").flatten() {
            let bytes = std::fs::read(file.path()).expect("entry");
            let (header, _) = bucketcache::entry::verify(&bytes).expect("a valid entry");
            let function = header.function.unwrap_or_default();
            let short = function.rsplit("::").next().unwrap_or_default().to_string();
            out.insert((header.backend.to_string(), short));
        }
    }
    out
}

#[test]
fn default_directory_backends_and_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::env::set_var(bucketcache::BUCKETCACHE_DIR_VAR, dir.path());
    assert_eq!(bucketcache::default_cache_dir(), dir.path());
    let path_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-caches/attr_default_bucket");
    let _ = std::fs::remove_dir_all(&path_dir);

    for _ in 0..2 {
        assert_eq!(plain(1), 10);
        assert_eq!(as_json(2), vec!["2".to_string()]);
        assert_eq!(as_msgpack(3), (3, true));
        assert_eq!(as_bincode(4), 5);
        assert_eq!(in_path(5), "path 5");
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), 5, "each function ran once");

    let bincode = bucketcache::Backend::id(&bucketcache::BincodeBackend::default());
    let expected: BTreeSet<(String, String)> = [
        (bincode, "plain"),
        (bincode, "as_bincode"),
        ("json", "as_json"),
        ("msgpack", "as_msgpack"),
    ]
    .into_iter()
    .map(|(b, f)| (b.to_string(), f.to_string()))
    .collect();
    assert_eq!(
        entries(dir.path()),
        expected,
        "one directory, one entry per function, in its backend"
    );
    assert_eq!(
        entries(&path_dir),
        [("json".to_string(), "in_path".to_string())].into_iter().collect(),
        "`path` is taken against the current directory (the package root under `cargo test`)"
    );

    // The directory was read once, at first use: changing the variable now moves nothing.
    let other = tempfile::tempdir().expect("tempdir");
    std::env::set_var(bucketcache::BUCKETCACHE_DIR_VAR, other.path());
    assert_eq!(plain(1), 10);
    assert_eq!(CALLS.load(Ordering::SeqCst), 5);
    assert!(entries(other.path()).is_empty());
    let _ = std::fs::remove_dir_all(&path_dir);
}
