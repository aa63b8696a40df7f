//! The attribute end to end on a free function: miss, memory hit, disk hit from another process's view.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn square(x: u64, label: String) -> Vec<u64> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    vec![x * x; label.len()]
}

#[test]
fn second_call_is_a_hit() {
    assert_eq!(square(3, "ab".into()), vec![9, 9]);
    assert_eq!(square(3, "ab".into()), vec![9, 9]);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(square(4, "ab".into()), vec![16, 16]);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    // From the file, with the memory tier emptied.
    BUCKET.unload_all();
    assert_eq!(square(3, "ab".into()), vec![9, 9]);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
