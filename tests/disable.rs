//! The switch for tests and debugging: `BUCKETCACHE_DISABLE=1`, `bucketcache::disable()` / `enable()`, and the
//! thread's `bucketcache::disabled(|| ..)` / `DisabledGuard`. Disabled, a cached function runs its body and reads
//! and writes nothing (the default bucket's directory is not even created).
//!
//! The tests share process-wide state (the switch), so they take turns (`SERIAL`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static CALLS: AtomicU64 = AtomicU64::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

#[bucket_cache(bucket = BUCKET)]
fn square(n: u64) -> u64 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * n
}

/// A `path = "..."` bucket: the directory is created by the first enabled call.
const PATH_BUCKET: &str = "target/tests-disable-path-bucket";

static PATH_CALLS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(path = "target/tests-disable-path-bucket")]
fn by_path(n: u64) -> u64 {
    PATH_CALLS.fetch_add(1, Ordering::SeqCst);
    n + 1
}

fn entry_files(root: &Path) -> usize {
    let Ok(fans) = std::fs::read_dir(root.join("entries-v2")) else {
        return 0;
    };
    fans.flatten()
        .map(|fan| std::fs::read_dir(fan.path()).map_or(0, |d| d.count()))
        .sum()
}

fn calls() -> u64 {
    CALLS.load(Ordering::SeqCst)
}

/// Runs `square(n)` twice and says how many times the body ran.
fn runs_of_two_calls(n: u64) -> u64 {
    let before = calls();
    assert_eq!(square(n), n * n);
    assert_eq!(square(n), n * n);
    calls() - before
}

#[test]
fn the_process_switch_runs_every_body_and_touches_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    bucketcache::enable();
    assert_eq!(runs_of_two_calls(2), 1, "enabled: the second call hits");
    let files = entry_files(DIR.path());

    bucketcache::disable();
    assert!(bucketcache::is_disabled());
    assert_eq!(runs_of_two_calls(2), 2, "disabled: a cached key runs its body anyway");
    assert_eq!(runs_of_two_calls(3), 2, "disabled: a new key runs its body every time");
    assert_eq!(entry_files(DIR.path()), files, "disabled: nothing written");

    bucketcache::enable();
    assert_eq!(
        runs_of_two_calls(3),
        1,
        "enabled again: the key disabled calls ran was not stored"
    );
    assert_eq!(runs_of_two_calls(2), 0, "the entry written before is still served");
}

#[test]
fn the_environment_variable_disables_the_process() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = std::fs::remove_dir_all(PATH_BUCKET);
    std::env::set_var(bucketcache::BUCKETCACHE_DISABLE_VAR, "1");
    bucketcache::reread_env();
    let before = PATH_CALLS.load(Ordering::SeqCst);
    assert_eq!(by_path(1), 2);
    assert_eq!(by_path(1), 2);
    assert_eq!(
        PATH_CALLS.load(Ordering::SeqCst) - before,
        2,
        "BUCKETCACHE_DISABLE=1: every call runs"
    );
    assert!(
        !Path::new(PATH_BUCKET).exists(),
        "disabled: the bucket directory is not even created"
    );
    assert_eq!(runs_of_two_calls(40), 2);

    std::env::set_var(bucketcache::BUCKETCACHE_DISABLE_VAR, "0");
    bucketcache::reread_env();
    assert!(!bucketcache::is_disabled());
    assert_eq!(runs_of_two_calls(41), 1);
    std::env::remove_var(bucketcache::BUCKETCACHE_DISABLE_VAR);
    let _ = std::fs::remove_dir_all(PATH_BUCKET);
}

#[test]
fn the_thread_guard_disables_its_thread_only() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    bucketcache::enable();
    assert_eq!(runs_of_two_calls(7), 1);

    // A test calls the real function, cached key or not.
    let real = bucketcache::disabled(|| runs_of_two_calls(7));
    assert_eq!(real, 2, "inside disabled(..): the body runs");

    let guard = bucketcache::DisabledGuard::new();
    assert_eq!(runs_of_two_calls(8), 2, "under a guard: the body runs");
    // Another thread meanwhile uses the cache.
    let other = std::thread::spawn(|| runs_of_two_calls(7)).join().expect("thread");
    assert_eq!(other, 0, "another thread is not disabled: it hits");
    drop(guard);

    assert_eq!(
        runs_of_two_calls(8),
        1,
        "the guard's calls stored nothing; now the key is stored"
    );
    assert_eq!(runs_of_two_calls(7), 0, "the guard's end restores caching");
}
