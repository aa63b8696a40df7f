//! A cache failure never changes what the function returns: the body runs, its value is returned, the failure is
//! logged. Unopenable directory, unwritable bucket, unencodable value, corrupt entry, changed type.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket, JsonBackend, KeyHash};

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// `/dev/null` is a file: no directory can be created under it.
#[bucket_cache(path = "/dev/null/bucketcache-cannot-exist")]
fn uncreatable(x: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[test]
fn an_unopenable_directory_runs_uncached() {
    let before = CALLS.load(Ordering::SeqCst);
    assert_eq!(uncreatable(1), 2);
    assert_eq!(uncreatable(1), 2);
    assert!(CALLS.load(Ordering::SeqCst) >= before + 2);
}

static BROKEN_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BROKEN: LazyLock<Bucket> = LazyLock::new(|| {
    let b = Bucket::builder(BROKEN_DIR.path())
        .memory_max_bytes(0)
        .build()
        .expect("bucket");
    // Replace the entries directory with a file: every read and write now fails.
    let entries = BROKEN_DIR.path().join("entries-v2");
    std::fs::remove_dir_all(&entries).expect("remove");
    std::fs::write(&entries, b"in the way").expect("file");
    b
});
static BROKEN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BROKEN)]
fn on_broken(x: u32) -> String {
    BROKEN_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("value {x}")
}

#[test]
fn an_unwritable_bucket_returns_the_value() {
    assert_eq!(on_broken(1), "value 1");
    assert_eq!(on_broken(1), "value 1");
    assert_eq!(BROKEN_CALLS.load(Ordering::SeqCst), 2);
}

static JSON_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static JSON: LazyLock<Bucket<JsonBackend>> = LazyLock::new(|| {
    Bucket::builder(JSON_DIR.path())
        .backend(JsonBackend::new())
        .build()
        .expect("bucket")
});
static MAP_CALLS: AtomicUsize = AtomicUsize::new(0);

/// JSON cannot encode a map whose keys are tuples.
#[bucket_cache(bucket = JSON)]
fn pairs(n: u8) -> std::collections::BTreeMap<(u8, u8), u8> {
    MAP_CALLS.fetch_add(1, Ordering::SeqCst);
    (0..n).map(|i| ((i, i), i)).collect()
}

#[test]
fn an_unencodable_value_is_returned_uncached() {
    assert_eq!(pairs(2).len(), 2);
    assert_eq!(pairs(2).len(), 2);
    assert_eq!(MAP_CALLS.load(Ordering::SeqCst), 2);
}

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static LEN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, on_cached = remember_key)]
fn length(s: String) -> u64 {
    LEN_CALLS.fetch_add(1, Ordering::SeqCst);
    s.len() as u64
}

static LAST_KEY: std::sync::Mutex<Option<KeyHash>> = std::sync::Mutex::new(None);

fn remember_key(info: &bucketcache::CachedCallInfo<'_, u64>) {
    *LAST_KEY.lock().expect("lock") = Some(info.key_hash);
}

fn key_of_hello() -> KeyHash {
    assert_eq!(length("hello".into()), 5);
    assert_eq!(length("hello".into()), 5);
    LAST_KEY.lock().expect("lock").expect("a hit recorded its key")
}

#[test]
fn corrupt_and_retyped_entries_are_misses_and_get_replaced() {
    let key = key_of_hello();
    let path = BUCKET.entry_path(&key);
    let calls = LEN_CALLS.load(Ordering::SeqCst);

    // Corrupt: truncated file.
    let bytes = std::fs::read(&path).expect("entry");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    BUCKET.unload_all();
    assert_eq!(length("hello".into()), 5);
    assert_eq!(LEN_CALLS.load(Ordering::SeqCst), calls + 1);
    assert_eq!(
        std::fs::read(&path).expect("entry").len(),
        bytes.len(),
        "the next write replaced it with a whole entry"
    );

    // Another type under the key (the function's return type changed): a decode error, then a fresh value.
    BUCKET
        .insert_hashed(&key, "a string, not a u64 at all", None)
        .expect("insert");
    BUCKET.unload_all();
    assert_eq!(length("hello".into()), 5);
    assert_eq!(LEN_CALLS.load(Ordering::SeqCst), calls + 2);
    assert_eq!(length("hello".into()), 5);
    assert_eq!(LEN_CALLS.load(Ordering::SeqCst), calls + 2);
}

struct NoSer;

impl serde::Serialize for NoSer {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this key cannot be serialized"))
    }
}

static KEYFAIL_CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn unhashable(k: NoSer) -> u8 {
    let _ = k;
    KEYFAIL_CALLS.fetch_add(1, Ordering::SeqCst);
    9
}

#[test]
fn an_unhashable_argument_runs_uncached() {
    assert_eq!(unhashable(NoSer), 9);
    assert_eq!(unhashable(NoSer), 9);
    assert_eq!(KEYFAIL_CALLS.load(Ordering::SeqCst), 2);
}
