//! Methods: `&self` with `method` (the instance's state is in the key), `ignore(self)`, `self` by value,
//! associated functions, trait methods, and the `on_cached` callback with `&self`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket, CachedCallInfo};
use serde::{Deserialize, Serialize};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

#[derive(Serialize, Deserialize, Clone)]
struct Service {
    base: u64,
    #[serde(skip)]
    calls: std::sync::Arc<AtomicUsize>,
    #[serde(skip)]
    hits: std::sync::Arc<AtomicUsize>,
}

impl Service {
    fn new(base: u64) -> Self {
        Service {
            base,
            calls: Default::default(),
            hits: Default::default(),
        }
    }

    /// Keyed by `self.base` and `x`.
    #[bucket_cache(method, bucket = BUCKET, on_cached = Service::hit)]
    fn scaled(&self, x: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.base * x
    }

    fn hit(&self, info: &CachedCallInfo<'_, u64>) {
        assert_eq!(
            info.arg("x").and_then(|v| v.as_u64()),
            Some(*info.return_value / self.base)
        );
        self.hits.fetch_add(1, Ordering::SeqCst);
    }

    /// Keyed by `x` alone: every instance shares the entries.
    #[bucket_cache(ignore(self), bucket = BUCKET)]
    fn shared(&self, x: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        x + 1000
    }

    /// Neither `method` nor `ignore(self)`: `self` is hashed as well.
    #[bucket_cache(bucket = BUCKET)]
    fn implicit(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.base + 1
    }

    /// By value.
    #[bucket_cache(method, bucket = BUCKET)]
    fn into_label(self, suffix: String) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        format!("{}{suffix}", self.base)
    }

    /// An associated function, keyed by its arguments (and `Self`'s type name, since it names `Self`).
    #[bucket_cache(bucket = BUCKET)]
    fn build(base: u64) -> Self {
        ASSOC_CALLS.fetch_add(1, Ordering::SeqCst);
        Service::new(base)
    }

    /// `&mut self` is fine once ignored.
    #[bucket_cache(ignore(self), bucket = BUCKET)]
    fn bump(&mut self, by: u64) -> u64 {
        self.base += by;
        by * 10
    }
}

static ASSOC_CALLS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn method_keys_include_the_instance_state() {
    let a = Service::new(2);
    assert_eq!(a.scaled(5), 10);
    assert_eq!(a.scaled(5), 10);
    assert_eq!(a.calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.hits.load(Ordering::SeqCst), 1, "on_cached got &self on the hit");

    let b = Service::new(3);
    assert_eq!(b.scaled(5), 15, "another state, another entry");
    assert_eq!(b.calls.load(Ordering::SeqCst), 1);
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);

    // An equal state (the skipped fields do not count) shares the entry.
    let c = Service::new(2);
    assert_eq!(c.scaled(5), 10);
    assert_eq!(c.calls.load(Ordering::SeqCst), 0);
    assert_eq!(c.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn ignore_self_shares_across_instances() {
    let a = Service::new(40);
    let b = Service::new(41);
    assert_eq!(a.shared(1), 1001);
    assert_eq!(b.shared(1), 1001);
    assert_eq!(a.calls.load(Ordering::SeqCst) + b.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_receiver_is_hashed_by_default() {
    let a = Service::new(50);
    let b = Service::new(51);
    assert_eq!(a.implicit(), 51);
    assert_eq!(b.implicit(), 52);
    assert_eq!(Service::new(50).implicit(), 51);
    assert_eq!(a.calls.load(Ordering::SeqCst), 1);
    assert_eq!(b.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn self_by_value() {
    let s = Service::new(60);
    let counter = s.calls.clone();
    assert_eq!(s.clone().into_label("x".into()), "60x");
    assert_eq!(s.into_label("x".into()), "60x");
    assert_eq!(counter.load(Ordering::SeqCst), 1);
}

#[test]
fn associated_functions() {
    assert_eq!(Service::build(70).base, 70);
    assert_eq!(Service::build(70).base, 70);
    assert_eq!(ASSOC_CALLS.load(Ordering::SeqCst), 1);
}

#[test]
fn mut_self_ignored_still_runs_on_a_miss_only() {
    let mut s = Service::new(1);
    assert_eq!(s.bump(4), 40);
    assert_eq!(s.base, 5);
    assert_eq!(s.bump(4), 40);
    assert_eq!(s.base, 5, "a hit skips the body");
}

trait Area {
    fn area(&self) -> f64;
}

#[derive(Serialize)]
struct Square(f64);

static TRAIT_CALLS: AtomicUsize = AtomicUsize::new(0);

impl Area for Square {
    #[bucket_cache(method, bucket = BUCKET)]
    fn area(&self) -> f64 {
        TRAIT_CALLS.fetch_add(1, Ordering::SeqCst);
        self.0 * self.0
    }
}

#[test]
fn trait_methods() {
    assert_eq!(Square(3.0).area(), 9.0);
    assert_eq!(Square(3.0).area(), 9.0);
    assert_eq!(Square(4.0).area(), 16.0);
    assert_eq!(TRAIT_CALLS.load(Ordering::SeqCst), 2);
}

mod bucket_from_a_temporary {
    use std::sync::{Arc, LazyLock};

    use bucketcache::{bucket_cache, Bucket};

    static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
    static SHARED: LazyLock<Arc<Bucket>> = LazyLock::new(|| Arc::new(Bucket::new(DIR.path()).expect("bucket")));

    fn shared() -> Arc<Bucket> {
        Arc::clone(&SHARED)
    }

    /// `bucket = EXPR` may be a call returning a temporary `Arc<Bucket>`.
    #[bucket_cache(bucket = shared())]
    fn doubled(x: u32) -> u32 {
        x * 2
    }

    #[test]
    fn a_bucket_expression_may_be_a_temporary() {
        assert_eq!(doubled(21), 42);
        assert!(SHARED.prune_directory().is_ok());
        assert_eq!(doubled(21), 42);
    }
}
