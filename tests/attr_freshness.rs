//! Freshness arguments of `#[bucket_cache]`: `stale`, `stale_if_error`, `early_refresh`, `max_age`,
//! `cache_err = "..."`, and the recorded cost. Time is the bucket's `ManualClock`: nothing sleeps for expiry.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket, CachedCallInfo, KeyHash, ManualClock, WriteOptions};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});

/// Tests share the clock: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const MIN: Duration = Duration::from_secs(60);

// ---- cost ----

static COST_SEEN: Mutex<Option<Duration>> = Mutex::new(None);

fn note_cost<R>(info: &CachedCallInfo<'_, R>) {
    *COST_SEEN.lock().unwrap_or_else(|e| e.into_inner()) = info.cost;
}

#[bucket_cache(bucket = BUCKET, on_cached = note_cost)]
fn slow(x: u8) -> u8 {
    std::thread::sleep(Duration::from_millis(30));
    x
}

#[test]
fn the_bodys_wall_time_is_recorded_as_the_cost() {
    let _s = serial();
    assert_eq!(slow(1), 1);
    assert_eq!(slow(1), 1);
    let cost = COST_SEEN.lock().unwrap_or_else(|e| e.into_inner()).take();
    let cost = cost.expect("the hit reports the recorded cost");
    assert!(cost >= Duration::from_millis(30), "{cost:?}");
    // From the file too (memory dropped).
    BUCKET.unload_all();
    assert_eq!(slow(1), 1);
    let again = COST_SEEN.lock().unwrap_or_else(|e| e.into_inner()).take();
    assert_eq!(again, Some(cost));
}

// ---- stale: threads ----

static STALE_RUNS: AtomicU64 = AtomicU64::new(0);
/// While set, the body waits (bounded) to be released: the refresh is "slow".
static GATE: Mutex<bool> = Mutex::new(false);
static GATE_CV: Condvar = Condvar::new();

fn wait_at_gate() {
    let mut closed = GATE.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while *closed && std::time::Instant::now() < deadline {
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

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m")]
fn quote(symbol: String) -> u64 {
    wait_at_gate();
    STALE_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn within_the_stale_window_callers_get_the_stale_value_and_the_body_runs_once() {
    let _s = serial();
    let sym = || "ACME".to_string();
    assert_eq!(quote(sym()), 1);
    assert_eq!(quote(sym()), 1, "fresh hit");
    CLOCK.advance(2 * MIN);

    const N: usize = 8;
    set_gate(true);
    let served_stale = AtomicUsize::new(0);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                s.spawn(|| {
                    let v = quote(sym());
                    if v == 1 {
                        served_stale.fetch_add(1, Ordering::SeqCst);
                    }
                    v
                })
            })
            .collect();
        // Every caller but the refresher returns the stale value while the refresh is held at the gate.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while served_stale.load(Ordering::SeqCst) < N - 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        set_gate(false);
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect::<Vec<u64>>()
    });
    let stale = results.iter().filter(|&&v| v == 1).count();
    assert_eq!(stale, N - 1, "{results:?}");
    assert_eq!(
        results.iter().filter(|&&v| v == 2).count(),
        1,
        "the refresher's value: {results:?}"
    );
    assert_eq!(
        STALE_RUNS.load(Ordering::SeqCst),
        2,
        "the body ran once for the refresh"
    );
    assert_eq!(quote(sym()), 2, "the refreshed value is fresh");

    // Beyond the window: a normal miss (the caller waits for the new value).
    CLOCK.advance(20 * MIN);
    assert_eq!(quote(sym()), 3);
    assert_eq!(STALE_RUNS.load(Ordering::SeqCst), 3);

    // Counted: two fresh hits and the stale values served are hits; the refresh and the miss beyond the window
    // are misses of an expired entry.
    let stats = bucketcache::stats().function("quote").expect("counted").stats;
    assert_eq!(stats.hits(), 2 + (N as u64 - 1), "{stats:?}");
    assert_eq!(stats.misses.new_arguments, 1, "{stats:?}");
    assert_eq!(stats.misses.expired, 2, "{stats:?}");
    assert_eq!(stats.misses.total(), 3, "{stats:?}");
}

// ---- stale_if_error ----

static SIE_RUNS: AtomicU64 = AtomicU64::new(0);
/// 0: Ok, 1: Err, 2: panic.
static SIE_MODE: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", stale_if_error)]
fn flaky(x: u8) -> Result<u64, String> {
    let run = SIE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    match SIE_MODE.load(Ordering::SeqCst) {
        0 => Ok(run * 100 + u64::from(x)),
        1 => Err(format!("upstream down (run {run})")),
        _ => panic!("upstream exploded (run {run})"),
    }
}

#[test]
fn stale_if_error_serves_the_stale_value_on_err_and_panic_and_retries() {
    let _s = serial();
    SIE_MODE.store(0, Ordering::SeqCst);
    assert_eq!(flaky(1), Ok(101));
    CLOCK.advance(2 * MIN);

    SIE_MODE.store(1, Ordering::SeqCst);
    assert_eq!(flaky(1), Ok(101), "Err: the stale value");
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(flaky(1), Ok(101), "the next call retries");
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 3);

    SIE_MODE.store(2, Ordering::SeqCst);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| flaky(1));
    std::panic::set_hook(hook);
    assert_eq!(r.ok(), Some(Ok(101)), "panic: the stale value");
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 4);

    SIE_MODE.store(0, Ordering::SeqCst);
    assert_eq!(flaky(1), Ok(501), "the retry succeeds and replaces the entry");
    assert_eq!(flaky(1), Ok(501));
    assert_eq!(SIE_RUNS.load(Ordering::SeqCst), 5);

    // Beyond the window the failure is returned.
    CLOCK.advance(20 * MIN);
    SIE_MODE.store(1, Ordering::SeqCst);
    assert!(flaky(1).is_err());
    SIE_MODE.store(0, Ordering::SeqCst);
}

// ---- max_age ----

static AGE_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1h", max_age = "max_age")]
fn report(x: u8, max_age: Option<Duration>) -> u64 {
    AGE_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

static DUR_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1h", max_age = limit)]
fn report_d(limit: Duration) -> u64 {
    DUR_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn max_age_zero_always_recomputes_and_none_is_as_without() {
    let _s = serial();
    assert_eq!(report(1, None), 1);
    assert_eq!(report(1, None), 1, "None: a hit");
    assert_eq!(report(1, Some(Duration::ZERO)), 2, "0: recomputed");
    assert_eq!(report(1, Some(Duration::ZERO)), 3, "0: recomputed again");
    assert_eq!(report(1, None), 3, "and overwritten");
    // The parameter is not part of the key.
    assert_eq!(report(1, Some(MIN)), 3);
    CLOCK.advance(2 * MIN);
    assert_eq!(report(1, Some(MIN)), 4, "older than a minute: recomputed");
    assert_eq!(report(1, Some(10 * MIN)), 4);

    assert_eq!(report_d(MIN), 1);
    assert_eq!(report_d(Duration::ZERO), 2);
    assert_eq!(report_d(MIN), 2);
}

// ---- cache_err with its own lifetime ----

static ERR_RUNS: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1h", cache_err = "1s")]
fn lookup_user(id: u32) -> Result<String, String> {
    ERR_RUNS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        Err("no such user".into())
    } else {
        Ok(format!("user {id}"))
    }
}

#[test]
fn cache_err_with_a_duration_expires_errors_after_it_while_ok_values_keep_the_lifetime() {
    let _s = serial();
    assert!(lookup_user(0).is_err());
    assert_eq!(lookup_user(7).as_deref(), Ok("user 7"));
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 2);
    assert!(lookup_user(0).is_err());
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 2, "the Err is cached");
    CLOCK.advance(Duration::from_millis(999));
    assert!(lookup_user(0).is_err());
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 2, "0.999 s: still cached");
    CLOCK.advance(Duration::from_millis(1));
    assert!(lookup_user(0).is_err());
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 3, "1 s: the Err expired");
    CLOCK.advance(30 * MIN);
    assert_eq!(lookup_user(7).as_deref(), Ok("user 7"));
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 3, "the Ok value keeps the hour");
    CLOCK.advance(31 * MIN);
    assert_eq!(lookup_user(7).as_deref(), Ok("user 7"));
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 4, "and expires after it");
}

// ---- early refresh ----

static EARLY_RUNS: AtomicU64 = AtomicU64::new(0);
static EARLY_KEY: Mutex<Option<KeyHash>> = Mutex::new(None);

fn note_key<R>(info: &CachedCallInfo<'_, R>) {
    *EARLY_KEY.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.key_hash);
}

#[bucket_cache(bucket = BUCKET, lifetime = "1m", early_refresh, on_cached = note_key)]
fn forecast(x: u8) -> u64 {
    EARLY_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn early_refresh_recomputes_before_expiry_more_often_as_expiry_nears() {
    let _s = serial();
    forecast(1);
    forecast(1); // a hit: the callback notes the key
    let key = EARLY_KEY.lock().unwrap_or_else(|e| e.into_inner()).expect("key noted");
    bucketcache::freshness::seed_thread_random(2015);
    let trials = 400;
    let mut rates = Vec::new();
    for left_ms in [5000u64, 2000, 1000, 500, 100] {
        let mut refreshed = 0;
        for _ in 0..trials {
            // A value that cost one second, written now, expiring in a minute.
            let opts = WriteOptions::default().lifetime(MIN).cost(Duration::from_secs(1));
            BUCKET.insert_with(&key, &0u64, &opts).expect("insert");
            CLOCK.advance(MIN - Duration::from_millis(left_ms));
            let before = EARLY_RUNS.load(Ordering::SeqCst);
            let v = forecast(1);
            if EARLY_RUNS.load(Ordering::SeqCst) > before {
                refreshed += 1;
                assert_ne!(v, 0, "the refresher returns its new value");
            } else {
                assert_eq!(v, 0, "the others get the fresh value");
            }
            CLOCK.advance(MIN); // past this entry; the next trial writes anew
        }
        let rate = f64::from(refreshed) / f64::from(trials);
        let theory = (-(left_ms as f64) / 1000.0).exp();
        assert!(
            (rate - theory).abs() < 0.08,
            "{left_ms} ms left: rate {rate}, XFetch predicts {theory}"
        );
        rates.push(rate);
    }
    assert!(
        rates.windows(2).all(|w| w[0] < w[1]),
        "rates grow as expiry nears: {rates:?}"
    );
    assert!(rates[0] < 0.05 && rates[4] > 0.85, "{rates:?}");
}

// ---- async ----

static ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static ASYNC_MODE: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m", stale = "10m", stale_if_error)]
async fn fetch(x: u8) -> Result<u64, String> {
    tokio::task::yield_now().await;
    let run = ASYNC_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    match ASYNC_MODE.load(Ordering::SeqCst) {
        0 => Ok(run),
        1 => Err(format!("down (run {run})")),
        _ => panic!("exploded (run {run})"),
    }
}

#[test]
fn an_async_fn_serves_stale_on_err_and_panic() {
    let _s = serial();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        ASYNC_MODE.store(0, Ordering::SeqCst);
        assert_eq!(fetch(1).await, Ok(1));
        CLOCK.advance(2 * MIN);
        ASYNC_MODE.store(1, Ordering::SeqCst);
        assert_eq!(fetch(1).await, Ok(1), "Err: stale");
        ASYNC_MODE.store(2, Ordering::SeqCst);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = fetch(1).await;
        std::panic::set_hook(hook);
        assert_eq!(r, Ok(1), "panic: stale");
        ASYNC_MODE.store(0, Ordering::SeqCst);
        assert_eq!(fetch(1).await, Ok(4), "the retry succeeds");
        assert_eq!(fetch(1).await, Ok(4));
    });
}
