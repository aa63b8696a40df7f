//! `refresh = "background"`: during the stale window every caller, the first included, gets the stale value at
//! once while one background thread per key recomputes it. The bodies block at a gate the test opens, so a caller
//! that waited for the refresh would block the test instead of returning (no timing is asserted). Time is the
//! bucket's `ManualClock`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bucketcache::__private::{background_refreshes_running, MAX_BACKGROUND_REFRESHES};
use bucketcache::{bucket_cache, Bucket, CachedCallInfo, KeyHash, ManualClock, WriteOptions};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});

/// Tests share the clock, the gate and the process-wide count of refreshes: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    set_gate(false);
    wait_until("no refresh left running", || background_refreshes_running() == 0);
    guard
}

const MIN: Duration = Duration::from_secs(60);

/// Waits (bounded) until `done` holds; fails the test with `what` otherwise.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---- the gate: while closed, a body blocks (bounded) until the test opens it ----

static GATE: Mutex<bool> = Mutex::new(false);
static GATE_CV: Condvar = Condvar::new();

fn wait_at_gate() {
    let mut closed = GATE.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = Instant::now() + Duration::from_secs(30);
    while *closed && Instant::now() < deadline {
        closed = GATE_CV
            .wait_timeout(closed, Duration::from_millis(100))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn set_gate(closed: bool) {
    *GATE.lock().unwrap_or_else(|e| e.into_inner()) = closed;
    GATE_CV.notify_all();
}

// ---- every caller gets the stale value; the body runs once, in the background ----

static STARTED: AtomicU64 = AtomicU64::new(0);
static RUNS: AtomicU64 = AtomicU64::new(0);
static SERVED: AtomicU64 = AtomicU64::new(0);

fn count_served<R>(_: &CachedCallInfo<'_, R>) {
    SERVED.fetch_add(1, Ordering::SeqCst);
}

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", refresh = "background", on_cached = count_served)]
fn quote(symbol: String) -> u64 {
    STARTED.fetch_add(1, Ordering::SeqCst);
    wait_at_gate();
    RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn every_caller_gets_the_stale_value_at_once_and_one_background_refresh_runs() {
    let _s = serial();
    let sym = || "ACME".to_string();
    assert_eq!(quote(sym()), 1, "a miss runs on the caller");
    assert_eq!(quote(sym()), 1, "fresh hit");
    CLOCK.advance(2 * MIN);

    // The refresh blocks at the gate until every caller has returned: none of them waited for it, the first
    // (which started it) included.
    set_gate(true);
    const N: usize = 8;
    let served_before = SERVED.load(Ordering::SeqCst);
    let results: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N).map(|_| s.spawn(|| quote(sym()))).collect();
        handles.into_iter().map(|h| h.join().expect("caller")).collect()
    });
    assert_eq!(results, vec![1; N], "all callers got the stale value");
    assert_eq!(quote(sym()), 1, "and so does a caller while the refresh runs");
    assert_eq!(
        SERVED.load(Ordering::SeqCst) - served_before,
        N as u64 + 1,
        "on_cached fires for each value served"
    );
    wait_until("the refresh starts", || STARTED.load(Ordering::SeqCst) == 2);
    assert_eq!(background_refreshes_running(), 1, "one refresh thread for the key");

    set_gate(false);
    wait_until("the refreshed value is served", || quote(sym()) == 2);
    wait_until("the refresh thread ends", || background_refreshes_running() == 0);
    assert_eq!(STARTED.load(Ordering::SeqCst), 2, "the body ran once for the refresh");
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(quote(sym()), 2, "the refreshed entry is fresh");

    // Beyond the stale window: a normal miss, computed by the caller.
    CLOCK.advance(20 * MIN);
    assert_eq!(quote(sym()), 3);
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);

    // Counted: the first miss, the refresh and the miss beyond the window; every other value served is a hit (the
    // caller that started the refresh got the stale value, `on_cached` included, and counts as the refresh's miss).
    let stats = bucketcache::stats().function("quote").expect("counted").stats;
    assert_eq!(stats.misses.new_arguments, 1, "{stats:?}");
    assert_eq!(
        stats.misses.expired, 2,
        "the refresh and the miss beyond the window: {stats:?}"
    );
    assert_eq!(stats.misses.total(), 3, "{stats:?}");
    assert_eq!(stats.hits(), SERVED.load(Ordering::SeqCst) - 1, "{stats:?}");
    assert_eq!(stats.stores, 3, "{stats:?}");
}

// ---- a bounded number of refresh threads ----

static MANY_STARTED: AtomicU64 = AtomicU64::new(0);
static MANY_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", refresh = "background")]
fn many(key: u32) -> u64 {
    MANY_STARTED.fetch_add(1, Ordering::SeqCst);
    wait_at_gate();
    MANY_RUNS.fetch_add(1, Ordering::SeqCst) + 1000
}

#[test]
fn many_keys_going_stale_at_once_start_at_most_the_cap_of_refreshes() {
    let _s = serial();
    let keys = MAX_BACKGROUND_REFRESHES as u32 + 4;
    for k in 0..keys {
        assert_eq!(many(k), 1000 + u64::from(k));
    }
    CLOCK.advance(2 * MIN);
    set_gate(true);
    for k in 0..keys {
        assert_eq!(many(k), 1000 + u64::from(k), "stale, at once");
    }
    // The keys past the cap were skipped as their callers returned: no refresh starts later.
    let cap = MAX_BACKGROUND_REFRESHES as u64;
    wait_until("the refreshes start", || {
        MANY_STARTED.load(Ordering::SeqCst) == u64::from(keys) + cap
    });
    assert_eq!(background_refreshes_running(), MAX_BACKGROUND_REFRESHES);
    set_gate(false);
    wait_until("the refreshes end", || background_refreshes_running() == 0);
    assert_eq!(MANY_STARTED.load(Ordering::SeqCst), u64::from(keys) + cap);
    let refreshed = (0..keys).filter(|&k| many(k) != 1000 + u64::from(k)).count();
    assert!(refreshed >= MAX_BACKGROUND_REFRESHES, "{refreshed}");
    // The skipped keys are still stale: their next callers start their refreshes.
    wait_until("every key refreshed", || {
        (0..keys).all(|k| many(k) >= 1000 + u64::from(keys))
    });
}

// ---- stale_if_error ----

static SIE_RUNS: AtomicU64 = AtomicU64::new(0);
/// 0: Ok, 1: Err, 2: panic.
static SIE_MODE: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", stale_if_error, refresh = "background")]
fn flaky(x: u8) -> Result<u64, String> {
    let run = SIE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    match SIE_MODE.load(Ordering::SeqCst) {
        0 => Ok(run * 100 + u64::from(x)),
        1 => Err(format!("upstream down (run {run})")),
        _ => panic!("upstream exploded (run {run})"),
    }
}

/// Calls `flaky(1)` and waits for the background refresh it starts to end.
fn flaky_and_settle() -> Result<u64, String> {
    let before = SIE_RUNS.load(Ordering::SeqCst);
    let v = flaky(1);
    wait_until("the refresh runs", || SIE_RUNS.load(Ordering::SeqCst) > before);
    wait_until("the refresh ends", || background_refreshes_running() == 0);
    v
}

#[test]
fn stale_if_error_keeps_the_stale_entry_when_the_background_refresh_fails_or_panics() {
    let _s = serial();
    SIE_MODE.store(0, Ordering::SeqCst);
    assert_eq!(flaky(1), Ok(101));
    CLOCK.advance(2 * MIN);

    SIE_MODE.store(1, Ordering::SeqCst);
    assert_eq!(flaky_and_settle(), Ok(101), "stale while the refresh fails");
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(
        flaky_and_settle(),
        Ok(101),
        "the Err was not stored: still the stale entry, retried"
    );
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 3);

    SIE_MODE.store(2, Ordering::SeqCst);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let v = flaky_and_settle();
    std::panic::set_hook(hook);
    assert_eq!(v, Ok(101), "the caller never sees the refresh's panic");
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 4);

    SIE_MODE.store(0, Ordering::SeqCst);
    assert_eq!(flaky_and_settle(), Ok(101), "the entry survived the panic");
    assert_eq!(flaky(1), Ok(501), "the successful refresh replaced it");
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 5);
}

// ---- early refresh in the background ----

static EARLY_RUNS: AtomicU64 = AtomicU64::new(0);
static EARLY_KEY: Mutex<Option<KeyHash>> = Mutex::new(None);

fn note_key<R>(info: &CachedCallInfo<'_, R>) {
    *EARLY_KEY.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.key_hash);
}

#[bucket_cache(bucket = BUCKET, lifetime = "1m", early_refresh = 1000, refresh = "background", on_cached = note_key)]
fn forecast(x: u8) -> u64 {
    wait_at_gate();
    EARLY_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn an_early_refresh_runs_in_the_background_while_the_caller_gets_the_fresh_value() {
    let _s = serial();
    assert_eq!(forecast(1), 1);
    assert_eq!(forecast(1), 1); // a hit: the callback notes the key
    let key = EARLY_KEY.lock().unwrap_or_else(|e| e.into_inner()).expect("key noted");
    // A value that cost a second, expiring in a minute; 100 ms before expiry β = 1000 refreshes early unless the
    // draw is above 1 - 1e-6 (the seed makes it reproducible).
    let opts = WriteOptions::default().lifetime(MIN).cost(Duration::from_secs(1));
    BUCKET.insert_with(&key, &0u64, &opts).expect("insert");
    CLOCK.advance(MIN - Duration::from_millis(100));
    bucketcache::freshness::seed_thread_random(2015);
    set_gate(true);
    assert_eq!(forecast(1), 0, "the caller gets the fresh value at once");
    wait_until("the early refresh starts", || background_refreshes_running() == 1);
    assert_eq!(forecast(1), 0, "and so do the others meanwhile");
    set_gate(false);
    wait_until("the early refresh lands", || {
        EARLY_RUNS.load(Ordering::SeqCst) == 2 && background_refreshes_running() == 0
    });
    assert_eq!(forecast(1), 2, "the refreshed value is served");
}

// ---- nocache and the disable switch still run the body on the caller ----

static NC_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", refresh = "background", nocache = "force")]
fn report(x: u8, force: bool) -> u64 {
    NC_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn nocache_and_disable_run_the_body_on_the_caller() {
    let _s = serial();
    assert_eq!(report(1, false), 1);
    CLOCK.advance(2 * MIN);
    assert_eq!(
        report(1, true),
        2,
        "nocache: computed by the caller, stale entry or not"
    );
    assert_eq!(background_refreshes_running(), 0);
    assert_eq!(report(1, false), 2, "and stored: fresh again");
    CLOCK.advance(2 * MIN);
    assert_eq!(bucketcache::disabled(|| report(1, false)), 3, "disabled: the body runs");
    assert_eq!(background_refreshes_running(), 0);
    assert_eq!(NC_RUNS.load(Ordering::SeqCst), 3);
    // Nothing was stored while disabled: the entry is still the stale one, refreshed in the background.
    assert_eq!(report(1, false), 2);
    wait_until("the refresh lands", || report(1, false) == 4);
}

// ---- the caller that started a refresh is a follower like any other ----

static AGED_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", refresh = "background", max_age = "max_age")]
fn aged(x: u8, max_age: Option<Duration>) -> u64 {
    let n = AGED_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    wait_at_gate();
    n
}

#[test]
fn the_thread_that_started_a_refresh_waits_for_it_rather_than_running_the_body_beside_it() {
    let _s = serial();
    assert_eq!(aged(1, None), 1);
    CLOCK.advance(2 * MIN);
    set_gate(true);
    assert_eq!(aged(1, None), 1, "stale: served, and this thread started the refresh");
    wait_until("the refresh starts", || AGED_RUNS.load(Ordering::SeqCst) == 2);
    // This thread cannot be served the stale entry (older than 30 s): it waits for the refresh (bounded). Before,
    // it counted as the flight's leader, ran the body beside the refresh, stored, and the refresh's older value
    // overwrote it. The gate opens from another thread; the sleep only orders, the assertions hold either way.
    let opener = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        set_gate(false);
    });
    assert_eq!(aged(1, Some(Duration::from_secs(30))), 2, "the refresh's value");
    opener.join().expect("opener");
    wait_until("the refresh thread ends", || background_refreshes_running() == 0);
    assert_eq!(
        AGED_RUNS.load(Ordering::SeqCst),
        2,
        "the body ran once, for the refresh"
    );
    assert_eq!(aged(1, None), 2, "the entry is the refresh's");
}

// ---- disable() while a refresh runs ----

static DIS_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", refresh = "background")]
fn disabled_midway(x: u8) -> u64 {
    let n = DIS_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    wait_at_gate();
    n
}

#[test]
fn a_refresh_still_running_when_the_process_is_disabled_stores_nothing() {
    let _s = serial();
    assert_eq!(disabled_midway(1), 1);
    CLOCK.advance(2 * MIN);
    set_gate(true);
    assert_eq!(disabled_midway(1), 1, "stale: served, refresh started");
    wait_until("the refresh starts", || DIS_RUNS.load(Ordering::SeqCst) == 2);
    bucketcache::disable();
    set_gate(false);
    let landed = {
        let deadline = Instant::now() + Duration::from_secs(30);
        while background_refreshes_running() != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        background_refreshes_running() == 0
    };
    bucketcache::enable();
    assert!(landed, "the refresh thread ends");
    assert_eq!(
        disabled_midway(1),
        1,
        "nothing was written after disable(): the entry is still the stale one"
    );
    wait_until("a new refresh lands", || disabled_midway(1) == 3);
}
