//! `ignore(a, b)`: ignored arguments are left out of the key and need not be `Serialize`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Not `Serialize`, not `Debug`: only usable as an ignored argument.
struct Logger {
    lines: Vec<String>,
}

#[bucket_cache(bucket = BUCKET, ignore(log, verbose))]
fn total(items: Vec<u32>, log: &mut Logger, verbose: u8) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if verbose > 0 {
        log.lines.push(format!("summing {} items", items.len()));
    }
    items.iter().map(|&i| u64::from(i)).sum()
}

#[test]
fn ignored_arguments_do_not_change_the_key() {
    let mut log = Logger { lines: Vec::new() };
    assert_eq!(total(vec![1, 2, 3], &mut log, 1), 6);
    assert_eq!(log.lines.len(), 1);
    let mut other = Logger { lines: Vec::new() };
    assert_eq!(total(vec![1, 2, 3], &mut other, 0), 6);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1, "different ignored values, one entry");
    assert!(other.lines.is_empty(), "a hit skips the body, and with it the logging");

    assert_eq!(total(vec![1, 2, 4], &mut other, 0), 7);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2, "a key argument changed");
}

static UNDERSCORE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, ignore(_unused))]
fn underscore(x: i8, _unused: std::sync::Mutex<u8>) -> i16 {
    UNDERSCORE_CALLS.fetch_add(1, Ordering::SeqCst);
    i16::from(x) * 100
}

#[test]
fn underscore_names_can_be_ignored() {
    assert_eq!(underscore(3, std::sync::Mutex::new(0)), 300);
    assert_eq!(underscore(3, std::sync::Mutex::new(9)), 300);
    assert_eq!(UNDERSCORE_CALLS.load(Ordering::SeqCst), 1);
}
