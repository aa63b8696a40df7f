//! The function path of an `async fn` (recorded in `CachedCallInfo::function`, the logs and the entry header) is
//! the function's own path, without the `{{closure}}` of its body's `async` block; sync paths are unchanged.

use std::sync::{LazyLock, Mutex};

use bucketcache::{bucket_cache, Bucket, CachedCallInfo};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn record<R>(info: &CachedCallInfo<'_, R>) {
    SEEN.lock().expect("lock").push(info.function);
}

fn record_method<S, R>(_: &S, info: &CachedCallInfo<'_, R>) {
    record(info);
}

/// Asserts that a hit recorded `path`, and that no hit recorded a `{{closure}}` path (tests run in parallel, so
/// each looks for its own path among all).
fn assert_seen(path: &str) {
    let seen = SEEN.lock().expect("lock").clone();
    assert!(seen.contains(&path), "{path} not among {seen:?}");
    assert!(!seen.iter().any(|p| p.contains("{{closure}}")), "{seen:?}");
}

mod quotes {
    use super::*;

    #[bucket_cache(bucket = BUCKET, on_cached = record)]
    pub async fn quote(symbol: String) -> u64 {
        symbol.len() as u64
    }

    #[bucket_cache(bucket = BUCKET, on_cached = record)]
    pub async fn generic_quote<T: serde::Serialize + Send + Sync>(symbol: T) -> String {
        serde_json::to_string(&symbol).unwrap_or_default()
    }

    #[bucket_cache(bucket = BUCKET, on_cached = record)]
    pub fn sync_quote(symbol: String) -> u64 {
        symbol.len() as u64 + 1
    }

    pub struct Client;

    impl Client {
        #[bucket_cache(bucket = BUCKET, ignore(self), on_cached = record_method)]
        pub async fn fetch(&self, id: u32) -> u32 {
            id * 2
        }
    }
}

#[tokio::test]
async fn an_async_fn_is_recorded_under_its_own_path() {
    assert_eq!(quotes::quote("ACME".into()).await, 4);
    assert_eq!(quotes::quote("ACME".into()).await, 4);
    assert_seen("attr_async_paths::quotes::quote");
}

#[tokio::test]
async fn an_async_method_is_recorded_under_its_own_path() {
    let c = quotes::Client;
    assert_eq!(c.fetch(21).await, 42);
    assert_eq!(c.fetch(21).await, 42);
    assert_seen("attr_async_paths::quotes::Client::fetch");
}

#[tokio::test]
async fn a_generic_async_fn_is_recorded_under_its_own_path() {
    assert_eq!(quotes::generic_quote(7u8).await, "7");
    assert_eq!(quotes::generic_quote(7u8).await, "7");
    assert_seen("attr_async_paths::quotes::generic_quote");
}

#[test]
fn a_sync_fn_keeps_its_path() {
    assert_eq!(quotes::sync_quote("AB".into()), 3);
    assert_eq!(quotes::sync_quote("AB".into()), 3);
    assert_seen("attr_async_paths::quotes::sync_quote");
}

#[test]
fn the_marker_suffixes_are_stripped() {
    use bucketcache::__private::{async_function_path, function_path};
    assert_eq!(
        async_function_path("c::m::f::{{closure}}::__bucketcache_marker"),
        "c::m::f"
    );
    // A sync function defined inside a closure keeps the closure in its path.
    assert_eq!(
        function_path("c::main::{{closure}}::f::__bucketcache_marker"),
        "c::main::{{closure}}::f"
    );
}
