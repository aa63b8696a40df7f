//! Argument forms that used to compile into surprises: `HashSet` key arguments (hashed in a canonical order now),
//! quoted and bare names (`backend = "json"`, `nocache = refresh`), `cache_none` / `cache_err` on aliases, and
//! `allow_unit`.

use std::collections::HashSet;
use std::hash::RandomState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

static SET_RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn total(items: HashSet<u32>) -> u64 {
    SET_RUNS.fetch_add(1, Ordering::SeqCst);
    items.iter().map(|&i| u64::from(i)).sum()
}

static REF_SET_RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn count(items: &HashSet<String, RandomState>) -> usize {
    REF_SET_RUNS.fetch_add(1, Ordering::SeqCst);
    items.len()
}

/// Equal sets built in different orders and with different hasher seeds: their iteration orders differ.
fn equal_sets() -> (HashSet<u32>, HashSet<u32>) {
    let a: HashSet<u32> = (0..200).collect();
    let mut b: HashSet<u32> = HashSet::with_capacity(1000);
    b.extend((0..200).rev());
    assert_eq!(a, b);
    (a, b)
}

#[test]
fn equal_hash_sets_are_one_key() {
    let (a, b) = equal_sets();
    assert_ne!(
        a.iter().collect::<Vec<_>>(),
        b.iter().collect::<Vec<_>>(),
        "the test needs two iteration orders"
    );
    assert_eq!(total(a), 19900);
    assert_eq!(total(b), 19900);
    assert_eq!(SET_RUNS.load(Ordering::SeqCst), 1);
    let mut other: HashSet<u32> = (0..200).collect();
    other.insert(1000);
    assert_eq!(total(other), 20900);
    assert_eq!(SET_RUNS.load(Ordering::SeqCst), 2, "a different set is another key");

    let x: HashSet<String> = (0..50).map(|i| i.to_string()).collect();
    let mut y: HashSet<String> = HashSet::with_capacity(500);
    y.extend((0..50).rev().map(|i| i.to_string()));
    assert_eq!(count(&x), 50);
    assert_eq!(count(&y), 50);
    assert_eq!(REF_SET_RUNS.load(Ordering::SeqCst), 1);
}

static JSON_RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(path = "target/attr_arguments_json", backend = "json", nocache = refresh)]
fn doubled(x: u32, refresh: bool) -> u32 {
    JSON_RUNS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[test]
fn quoted_backend_and_bare_nocache_name() {
    let x = std::process::id();
    assert_eq!(doubled(x, true), x * 2);
    assert_eq!(doubled(x, false), x * 2);
    assert_eq!(JSON_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(doubled(x, true), x * 2);
    assert_eq!(JSON_RUNS.load(Ordering::SeqCst), 2, "the bare name is the nocache flag");
    assert!(std::path::Path::new("target/attr_arguments_json").is_dir());
}

type Maybe<T> = Option<T>;
static NONE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, cache_none)]
fn find(id: u32) -> Maybe<String> {
    NONE_RUNS.fetch_add(1, Ordering::SeqCst);
    (id == 1).then(|| "one".to_string())
}

static ERR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, cache_err)]
fn parse(text: String) -> std::result::Result<u32, String> {
    ERR_RUNS.fetch_add(1, Ordering::SeqCst);
    text.parse().map_err(|_| format!("not a number: {text}"))
}

#[test]
fn cache_none_and_cache_err_accept_aliases() {
    assert_eq!(find(2), None);
    assert_eq!(find(2), None);
    assert_eq!(NONE_RUNS.load(Ordering::SeqCst), 1, "None is cached");
    assert!(parse("x".into()).is_err());
    assert!(parse("x".into()).is_err());
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 1, "Err is cached");
}

static UNIT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, allow_unit)]
fn warm_up(id: u32) {
    let _ = id;
    UNIT_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn allow_unit_runs_once_per_key() {
    warm_up(1);
    warm_up(1);
    warm_up(2);
    assert_eq!(UNIT_RUNS.load(Ordering::SeqCst), 2);
}
