//! A child process for the freshness tests (`tests/freshness_processes.rs`): calls a `#[bucket_cache]` function
//! with `lifetime = "1m", stale = "10m"` on a bucket whose clock stands at a given time.
//!
//! ```text
//! bucketcache-fresh-worker DIR NOW_MS RUNS RELEASE
//!     open DIR with a ManualClock at NOW_MS (ms since the epoch), call quote("ACME") and print "value V".
//!     The body (run only on a miss or a refresh) creates a file in the directory RUNS, waits until the file
//!     RELEASE exists (at most 30 s), and returns the number of files in RUNS.
//! ```
//! Exit code 0 on success, 2 on usage errors.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bucketcache::{bucket_cache, Bucket, ManualClock};

#[bucket_cache(bucket = bucket, ignore(bucket, runs, release), lifetime = "1m", stale = "10m")]
fn quote(bucket: &Bucket, runs: &Path, release: &Path, symbol: String) -> u64 {
    let _ = symbol;
    let me = runs.join(format!("run-{}", std::process::id()));
    if let Err(e) = std::fs::write(&me, b"") {
        eprintln!("bucketcache-fresh-worker: {e}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !release.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::read_dir(runs).map_or(0, |d| d.count() as u64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bucketcache-fresh-worker: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> Result<(), String> {
    let [_, dir, now_ms, runs, release] = args else {
        return Err("usage: bucketcache-fresh-worker DIR NOW_MS RUNS RELEASE".into());
    };
    let now_ms: u64 = now_ms.parse().map_err(|e| format!("NOW_MS: {e}"))?;
    let start = std::time::UNIX_EPOCH + Duration::from_millis(now_ms);
    let bucket = Bucket::builder(dir)
        .clock(ManualClock::new(start.into()))
        .build()
        .map_err(|e| e.to_string())?;
    let value = quote(&bucket, &PathBuf::from(runs), &PathBuf::from(release), "ACME".into());
    println!("value {value}");
    Ok(())
}
