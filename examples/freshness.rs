//! Stale-while-revalidate: a slow "API call" cached for a minute; for ten minutes after that its expired value is
//! served at once while one caller refreshes it, and a failed refresh (`stale_if_error`) serves it too. Last, the
//! same call with `refresh = "background"`: nobody waits, not even the first caller after expiry.
//!
//! Run with `cargo run --example freshness`. The bucket's clock is a `ManualClock`, so "an hour later" takes no time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bucketcache::{bucket_cache, Bucket, ManualClock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/freshness");
    let _ = std::fs::remove_dir_all(dir); // a fresh start each run
    Bucket::builder(dir)
        .clock(CLOCK.clone())
        .build()
        .expect("cache directory")
});

static CALLS: AtomicU32 = AtomicU32::new(0);
static UPSTREAM_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The slow API: half a second per call.
#[bucket_cache(bucket = CACHE, lifetime = "1m", stale = "10m", stale_if_error)]
fn price(symbol: String) -> Result<String, String> {
    std::thread::sleep(Duration::from_millis(500));
    let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if UPSTREAM_DOWN.load(Ordering::SeqCst) {
        return Err("upstream unavailable".into());
    }
    Ok(format!("{symbol}: price #{n}"))
}

static BG_CALLS: AtomicU32 = AtomicU32::new(0);

/// The same API, refreshed on a thread of its own.
#[bucket_cache(bucket = CACHE, lifetime = "1m", stale = "10m", refresh = "background")]
fn price_bg(symbol: String) -> String {
    std::thread::sleep(Duration::from_millis(500));
    let n = BG_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("{symbol}: price #{n}")
}

fn timed_bg(who: &str) {
    let start = Instant::now();
    let v = price_bg("ACME".into());
    println!("  {who:<10} {v:?} in {:>4} ms", start.elapsed().as_millis());
}

fn timed(who: &str) {
    let start = Instant::now();
    let v = price("ACME".into());
    println!("  {who:<10} {v:?} in {:>4} ms", start.elapsed().as_millis());
}

fn main() {
    println!("first call (a miss: pays the API call):");
    timed("caller");
    println!("a fresh hit:");
    timed("caller");

    CLOCK.advance(Duration::from_secs(90));
    println!("90 s later (expired, within the stale window): one caller refreshes, the others get the stale value:");
    std::thread::scope(|s| {
        s.spawn(|| timed("refresher"));
        std::thread::sleep(Duration::from_millis(100)); // let it start its refresh
        for _ in 0..3 {
            s.spawn(|| timed("other"));
        }
    });
    println!("after the refresh:");
    timed("caller");

    CLOCK.advance(Duration::from_secs(90));
    UPSTREAM_DOWN.store(true, Ordering::SeqCst);
    println!("upstream down, entry expired: stale_if_error serves the last good value (and retries next call):");
    timed("caller");

    CLOCK.advance(Duration::from_secs(3600));
    println!("an hour later, beyond the stale window: a normal miss, and the error is returned:");
    timed("caller");
    println!("the API was called {} times", CALLS.load(Ordering::SeqCst));

    println!();
    println!("refresh = \"background\": a miss, then 90 s later every caller gets the stale value at once:");
    timed_bg("caller");
    CLOCK.advance(Duration::from_secs(90));
    for who in ["first", "second", "third"] {
        timed_bg(who);
    }
    std::thread::sleep(Duration::from_millis(700)); // the refresh thread lands meanwhile
    println!("after the background refresh:");
    timed_bg("caller");
    println!("the API was called {} times", BG_CALLS.load(Ordering::SeqCst));
}
