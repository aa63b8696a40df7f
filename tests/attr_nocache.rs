//! `nocache = "flag"`: when the flag is true the cache is not read, the body runs and its result overwrites the
//! entry; the flag is never part of the key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Returns a fresh number on every run of its body, so a test can tell a cached value from a new one.
#[bucket_cache(bucket = BUCKET, nocache = "refresh")]
fn ticket(who: &str, refresh: bool) -> u64 {
    let _ = who;
    CALLS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn refresh_runs_the_body_and_overwrites_the_entry() {
    let first = ticket("ann", false);
    assert_eq!(ticket("ann", false), first, "a hit");
    let calls = CALLS.load(Ordering::SeqCst);

    let fresh = ticket("ann", true);
    assert_ne!(fresh, first, "nocache ran the body");
    assert_eq!(CALLS.load(Ordering::SeqCst), calls + 1);

    // The flag is not part of the key: the refreshed value is what a normal call now reads, from memory and file.
    assert_eq!(ticket("ann", false), fresh);
    BUCKET.unload_all();
    assert_eq!(ticket("ann", false), fresh);
    assert_eq!(CALLS.load(Ordering::SeqCst), calls + 1);
}

#[test]
fn refresh_on_a_cold_key_stores_it() {
    let v = ticket("bob", true);
    assert_eq!(ticket("bob", false), v);
}

static REF_CALLS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, nocache = "skip")]
fn by_ref_flag(n: u32, skip: &bool) -> u32 {
    REF_CALLS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[test]
fn a_bool_reference_is_a_flag_too() {
    assert_eq!(by_ref_flag(21, &false), 42);
    assert_eq!(by_ref_flag(21, &false), 42);
    assert_eq!(by_ref_flag(21, &true), 42);
    assert_eq!(REF_CALLS.load(Ordering::SeqCst), 2);
}
