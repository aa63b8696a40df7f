//! Deferred writes through the attribute: `bucket = D` with a `DeferredWriteBucket` (the Python ancestor's
//! `test_deferred_decorator`), and the scope form `deferred_calls` for `path = "..."` buckets.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use bucketcache::{bucket_cache, deferred_calls, Bucket, CachedCallInfo, DeferredWriteBucket, HitSource, KeyHash};

/// Entry files under a bucket directory (temporary files not counted).
fn files(dir: &Path) -> usize {
    let Ok(shards) = std::fs::read_dir(dir.join("entries-v2")) else {
        return 0;
    };
    shards
        .flatten()
        .filter_map(|s| std::fs::read_dir(s.path()).ok())
        .flat_map(|f| f.flatten())
        .filter(|f| !f.file_name().to_string_lossy().starts_with('.'))
        .count()
}

// ---- bucket = a deferred bucket ----

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static B: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
/// Default type parameters, as on `Bucket`.
static D: LazyLock<DeferredWriteBucket<'static>> = LazyLock::new(|| B.deferred());

static ADDS: AtomicUsize = AtomicUsize::new(0);
static HITS: Mutex<Vec<(KeyHash, HitSource, u32)>> = Mutex::new(Vec::new());

fn record(info: &CachedCallInfo<'_, u32>) {
    HITS.lock()
        .expect("hits")
        .push((info.key_hash, info.source, *info.return_value));
}

#[bucket_cache(bucket = D, on_cached = record)]
fn add1(a: u32) -> u32 {
    ADDS.fetch_add(1, Ordering::SeqCst);
    a + 1
}

/// The ancestor's scenario: two calls run the body once, nothing is on disk before `sync`, a new bucket on the
/// directory then hits, another argument misses.
#[test]
fn decorated_with_a_deferred_bucket() {
    let before = files(DIR.path());
    assert_eq!(add1(1), 2);
    assert_eq!(add1(1), 2);
    assert_eq!(ADDS.load(Ordering::SeqCst), 1, "the second call hits the pending value");
    let (hash, source, value) = HITS
        .lock()
        .expect("hits")
        .last()
        .copied()
        .expect("on_cached fired on the hit");
    assert_eq!((source, value), (HitSource::Memory, 2));
    assert_eq!(files(DIR.path()), before, "nothing is written before sync");
    assert_eq!(
        Bucket::new(DIR.path())
            .expect("bucket")
            .lookup::<u32>(&hash)
            .expect("lookup")
            .map(|h| h.value),
        None
    );

    D.sync().expect("sync");
    assert_eq!(D.pending_len(), 0);
    assert_eq!(files(DIR.path()), before + 1, "sync writes the entry");
    let fresh = Bucket::new(DIR.path()).expect("bucket");
    let hit = fresh
        .lookup::<u32>(&hash)
        .expect("lookup")
        .expect("a new bucket on the directory hits");
    assert_eq!((hit.value, hit.source), (2, HitSource::Disk));

    assert_eq!(add1(1), 2);
    assert_eq!(ADDS.load(Ordering::SeqCst), 1);
    assert_eq!(add1(2), 3, "another argument misses");
    assert_eq!(ADDS.load(Ordering::SeqCst), 2);
    D.discard();
}

// ---- nocache, on_cached, lifetime, methods, async fn ----

static DIR2: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static B2: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR2.path()).expect("bucket"));
static D2: LazyLock<DeferredWriteBucket<'static>> = LazyLock::new(|| B2.deferred());

static DIR3: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static B3: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR3.path()).expect("bucket"));
static D3: LazyLock<DeferredWriteBucket<'static>> = LazyLock::new(|| B3.deferred());

static RUNS: AtomicUsize = AtomicUsize::new(0);
static CALLBACKS: AtomicUsize = AtomicUsize::new(0);

fn count_hit<R>(_: &CachedCallInfo<'_, R>) {
    CALLBACKS.fetch_add(1, Ordering::SeqCst);
}

#[bucket_cache(bucket = D3, nocache = "refresh", on_cached = count_hit, lifetime = "1h")]
fn stamp(x: u32, refresh: bool) -> (u32, usize) {
    (x, RUNS.fetch_add(1, Ordering::SeqCst))
}

#[test]
fn nocache_and_on_cached_on_a_deferred_bucket() {
    let first = stamp(5, false);
    assert_eq!(CALLBACKS.load(Ordering::SeqCst), 0, "no callback on a miss");
    assert_eq!(stamp(5, false), first);
    assert_eq!(
        CALLBACKS.load(Ordering::SeqCst),
        1,
        "the callback fires on a pending hit"
    );
    let refreshed = stamp(5, true);
    assert_ne!(refreshed, first, "nocache runs the body");
    assert_eq!(CALLBACKS.load(Ordering::SeqCst), 1, "no callback on a nocache call");
    assert_eq!(stamp(5, false), refreshed, "and its value replaces the pending one");
    assert_eq!(CALLBACKS.load(Ordering::SeqCst), 2);
    assert_eq!(files(DIR3.path()), 0);
    D3.sync().expect("sync");
    assert_eq!(files(DIR3.path()), 1, "one key, one file");
    B3.unload_all();
    assert_eq!(stamp(5, false), refreshed, "read back from the file");
}

#[derive(serde::Serialize)]
struct Scaler {
    factor: u64,
}

static SCALES: AtomicUsize = AtomicUsize::new(0);

impl Scaler {
    #[bucket_cache(bucket = D2, method)]
    fn scale(&self, x: u64) -> u64 {
        SCALES.fetch_add(1, Ordering::SeqCst);
        x * self.factor
    }
}

#[test]
fn a_method_on_a_deferred_bucket() {
    let (two, three) = (Scaler { factor: 2 }, Scaler { factor: 3 });
    assert_eq!(two.scale(10), 20);
    assert_eq!(two.scale(10), 20);
    assert_eq!(three.scale(10), 30, "the receiver's state is in the key");
    assert_eq!(SCALES.load(Ordering::SeqCst), 2);
}

static FETCHES: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = D2)]
async fn fetch(id: u32) -> Result<String, std::num::ParseIntError> {
    FETCHES.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    let n: u32 = format!("{id}").parse()?;
    Ok(format!("item-{n}"))
}

#[tokio::test]
async fn an_async_fn_on_a_deferred_bucket() {
    assert_eq!(fetch(7).await.as_deref(), Ok("item-7"));
    assert_eq!(fetch(7).await.as_deref(), Ok("item-7"));
    assert_eq!(FETCHES.load(Ordering::SeqCst), 1);
    // Two concurrent callers of one new key: single flight among tasks, then a pending hit.
    let (a, b) = tokio::join!(fetch(8), fetch(8));
    assert_eq!((a.as_deref(), b.as_deref()), (Ok("item-8"), Ok("item-8")));
    assert_eq!(FETCHES.load(Ordering::SeqCst), 2);
}

// ---- the scope form ----

const SCOPE_DIR: &str = "target/test-caches/attr_deferred_scope";
static SQUARES: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(path = "target/test-caches/attr_deferred_scope")]
fn square(x: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

/// The scope test and the panic test share one directory and one counter: one test function.
#[test]
fn deferred_calls_write_at_the_end_and_nothing_on_a_panic() {
    let _ = std::fs::remove_dir_all(SCOPE_DIR);
    let dir = Path::new(SCOPE_DIR);

    let total = deferred_calls(|| {
        let total: u64 = (0..50).map(square).sum();
        assert_eq!(files(dir), 0, "nothing is written inside the scope");
        assert_eq!(square(7), 49, "a repeated call inside the scope hits its pending value");
        assert_eq!(SQUARES.load(Ordering::SeqCst), 50);
        // Another thread is not in the scope: it writes at once.
        std::thread::spawn(|| square(1000)).join().expect("thread");
        assert_eq!(files(dir), 1);
        total
    });
    assert_eq!(total, 40_425);
    assert_eq!(files(dir), 51, "all written when the closure returns");
    let fresh = Bucket::new(dir).expect("bucket");
    assert_eq!(fresh.memory_usage().0, 0);
    assert_eq!(square(7), 49);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 51, "hits after the scope");

    // A panic inside the scope: the calls returned their values, nothing is written.
    let seen = std::panic::catch_unwind(|| {
        deferred_calls(|| {
            let v = square(500);
            assert_eq!(v, 250_000);
            panic!("the batch job failed after computing {v}");
        })
    });
    assert!(seen.is_err());
    assert_eq!(SQUARES.load(Ordering::SeqCst), 52, "the body ran");
    assert_eq!(files(dir), 51, "nothing written after a panic");
    assert_eq!(square(500), 250_000);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 53, "the lost value is computed again");

    // Nested scopes: the inner one joins the outer one.
    deferred_calls(|| {
        deferred_calls(|| square(600));
        assert_eq!(files(dir), 52, "the inner scope's calls wait for the outer one");
    });
    assert_eq!(files(dir), 53);
}
