//! The counters after a known sequence of calls: per function (`bucketcache::stats()`), per bucket
//! (`Bucket::stats().calls`), and their tables.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket, CacheStats};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static FAIL_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static FAILING: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(FAIL_DIR.path()).expect("bucket"));
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Takes at least 5 ms, so each hit saves at least that (the entry records the body's measured cost).
#[bucket_cache(bucket = BUCKET, nocache = "refresh")]
fn slow_double(n: u64, refresh: bool) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(5));
    n * 2
}

fn function_stats(name: &str) -> CacheStats {
    bucketcache::stats()
        .function(name)
        .expect("a row for the function")
        .stats
}

#[test]
fn counters_after_a_known_sequence_of_calls() {
    slow_double(1, false); // miss: new arguments; store
    slow_double(1, false); // hit: memory
    slow_double(1, false); // hit: memory
    BUCKET.unload_all();
    slow_double(1, false); // hit: disk
    slow_double(2, false); // miss: new arguments; store
    slow_double(2, true); // miss: nocache; store

    let s = function_stats("slow_double");
    assert_eq!(s.hits_memory, 2);
    assert_eq!(s.hits_disk, 1);
    assert_eq!(s.hits_shared, 0);
    assert_eq!(s.misses.new_arguments, 2);
    assert_eq!(s.misses.nocache, 1);
    assert_eq!(s.misses.total(), 3);
    assert_eq!(s.calls(), 6);
    assert_eq!(s.stores, 3);
    assert_eq!(s.store_failures, 0);
    let files: u64 = std::fs::read_dir(DIR.path().join("entries-v2"))
        .expect("entries")
        .flatten()
        .flat_map(|fan| std::fs::read_dir(fan.path()).expect("fan").flatten())
        .map(|e| e.metadata().expect("metadata").len())
        .sum();
    assert!(
        s.bytes_written > files,
        "three stores of two files' sizes: {} vs {files}",
        s.bytes_written
    );
    assert!(
        s.time_saved >= Duration::from_millis(15),
        "three hits of entries that each cost at least 5 ms: {:?}",
        s.time_saved
    );

    // The bucket counts the same calls (this bucket serves only this function).
    assert_eq!(BUCKET.stats().calls, s);

    let table = bucketcache::stats().to_string();
    let row = table
        .lines()
        .find(|l| l.contains("slow_double"))
        .expect("a row in the table");
    assert!(row.split_whitespace().any(|w| w == "3"), "{table}");
    assert!(table.lines().next().is_some_and(|h| h.contains("hit mem")), "{table}");
    assert!(BUCKET.stats().calls.to_string().contains("saved"));
}

#[bucket_cache(bucket = FAILING)]
fn unstorable(n: u64) -> u64 {
    n
}

#[test]
fn a_failed_store_is_counted() {
    bucketcache::store::fault::set_write_error(FAIL_DIR.path(), Some(28));
    assert_eq!(unstorable(3), 3);
    bucketcache::store::fault::set_write_error(FAIL_DIR.path(), None);
    let s = function_stats("unstorable");
    assert_eq!(s.store_failures, 1);
    assert_eq!(s.stores, 0);
    assert_eq!(s.bytes_written, 0);
    assert_eq!(FAILING.stats().calls.store_failures, 1);
}

static THREADS_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static THREADS_BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(THREADS_DIR.path()).expect("bucket"));

/// Takes at least 2 ms, so each hit saves at least that.
#[bucket_cache(bucket = THREADS_BUCKET)]
fn threaded_square(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    n * n
}

/// Memory hits on the fast path are counted per thread (`stats/cells.rs`): the counts must be exact while the
/// threads still run (their cells are read live) and after they exit (their cells are folded into the totals),
/// for the function and for the bucket, and time saved must add up too.
#[test]
fn memory_hits_of_many_threads_are_counted_exactly_while_they_run_and_after_they_exit() {
    const THREADS: u64 = 4;
    const HITS: u64 = 500;
    // Keys 0..4 stored once, from this thread.
    for k in 0..4 {
        threaded_square(k);
    }
    let before = function_stats("threaded_square");
    let bucket_before = THREADS_BUCKET.stats().calls;
    let ran = std::sync::Barrier::new(THREADS as usize + 1);
    let read = std::sync::Barrier::new(THREADS as usize + 1);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (ran, read) = (&ran, &read);
            s.spawn(move || {
                for i in 0..HITS {
                    // Two keys alternating: both the site's last slot and the hashed slot of the memo are used.
                    assert_eq!(threaded_square((t + i) % 2), ((t + i) % 2).pow(2));
                }
                ran.wait();
                // The main thread reads the counts here, while this thread (and its cell) is alive.
                read.wait();
            });
        }
        ran.wait();
        let live = function_stats("threaded_square");
        let bucket_live = THREADS_BUCKET.stats().calls;
        // Released before asserting: a failed assertion must not leave the threads waiting forever.
        read.wait();
        assert_eq!(
            live.hits_memory - before.hits_memory,
            THREADS * HITS,
            "live cells are counted"
        );
        assert_eq!(
            bucket_live.hits_memory - bucket_before.hits_memory,
            THREADS * HITS,
            "the bucket counts them too"
        );
    });
    let after = function_stats("threaded_square");
    assert_eq!(
        after.hits_memory - before.hits_memory,
        THREADS * HITS,
        "exited threads' counts are kept"
    );
    assert_eq!(after.misses.total(), before.misses.total(), "no miss");
    assert!(
        after.time_saved - before.time_saved >= Duration::from_millis(2 * THREADS * HITS),
        "each hit saved its entry's cost: {:?}",
        after.time_saved - before.time_saved
    );
    let bucket_after = THREADS_BUCKET.stats().calls;
    assert_eq!(bucket_after.hits_memory - bucket_before.hits_memory, THREADS * HITS);
    assert!(bucket_after.time_saved - bucket_before.time_saved >= Duration::from_millis(2 * THREADS * HITS));
}
