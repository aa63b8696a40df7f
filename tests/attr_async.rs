//! `async fn`s: cached like sync ones; `?` and `return` in the body; waiting for another caller's value does not
//! block the executor (checked on a single-threaded runtime, where a blocking wait would deadlock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

static FETCHES: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
async fn fetch(id: u32) -> Result<String, std::num::ParseIntError> {
    FETCHES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if id == 0 {
        return Ok("zero".to_string());
    }
    let n: u32 = format!("{id}").parse()?;
    Ok(format!("item-{n}"))
}

#[tokio::test]
async fn async_results_are_cached() {
    assert_eq!(fetch(7).await.as_deref(), Ok("item-7"));
    assert_eq!(fetch(7).await.as_deref(), Ok("item-7"));
    assert_eq!(fetch(0).await.as_deref(), Ok("zero"));
    assert_eq!(fetch(0).await.as_deref(), Ok("zero"));
    assert_eq!(FETCHES.load(Ordering::SeqCst), 2);
}

static SLOW: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
async fn slow_square(x: u64) -> u64 {
    SLOW.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    x * x
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_callers_wait_without_blocking_the_thread() {
    let (a, b, c, d) = tokio::join!(slow_square(9), slow_square(9), slow_square(9), slow_square(10));
    assert_eq!((a, b, c, d), (81, 81, 81, 100));
    assert_eq!(SLOW.load(Ordering::SeqCst), 2, "one run per key");
}

struct Client {
    calls: AtomicUsize,
}

impl Client {
    #[bucket_cache(ignore(self), bucket = BUCKET)]
    async fn get(&self, path: &str) -> Vec<u8> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        path.as_bytes().to_vec()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_methods_are_send() {
    let client = std::sync::Arc::new(Client {
        calls: AtomicUsize::new(0),
    });
    let c2 = client.clone();
    // `tokio::spawn` requires the future to be `Send`.
    let v = tokio::spawn(async move { c2.get("/a").await }).await.expect("task");
    assert_eq!(v, b"/a");
    assert_eq!(client.get("/a").await, b"/a");
    assert_eq!(client.calls.load(Ordering::SeqCst), 1);
}

static RETRIES: AtomicUsize = AtomicUsize::new(0);

/// Retries by awaiting itself with the same key (the counter is ignored): an async call cannot tell re-entrance
/// from another task, so it waits, but only for its limit, then runs.
#[bucket_cache(bucket = BUCKET, ignore(attempt), cross_process = "200ms")]
async fn retrying(x: u32, attempt: u32) -> u32 {
    RETRIES.fetch_add(1, Ordering::SeqCst);
    if attempt < 1 {
        return Box::pin(retrying(x, attempt + 1)).await;
    }
    x + 1
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_call_waiting_on_its_own_key_gives_up_at_its_limit() {
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(20), retrying(41, 0))
        .await
        .expect("no endless wait");
    assert_eq!(got, 42);
    assert_eq!(RETRIES.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the inner call waited its limit first"
    );
}
