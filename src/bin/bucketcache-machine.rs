//! A child process playing another machine for the shared-tier tests: its own local directory, the Redis tier from
//! the environment (`BUCKETCACHE_REDIS_URL`, `BUCKETCACHE_REDIS_NAMESPACE`, `BUCKETCACHE_REDIS_LEASE`).
//!
//! ```text
//! bucketcache-machine compute DIR KEY LOG SLEEP_MS WAIT_MS
//!     get_or_compute_shared(KEY): the body appends "start PID" to LOG, sleeps SLEEP_MS, appends "end PID";
//!     prints "value V waited_ms W lease_waits L takeovers T"
//! bucketcache-machine attr KEY LOG SLEEP_MS [local]
//!     the same through a #[bucket_cache] function on the default bucket (BUCKETCACHE_DIR), whose shared tier comes
//!     from the environment; `local`: a function with `shared = false`. Prints "value V"
//! ```
//! Exit code 0 on success, 2 on usage errors.

use std::io::Write;
use std::time::{Duration, Instant};

use bucketcache::{bucket_cache, Bucket, RedisTier};

#[bucket_cache(ignore(log, sleep))]
fn attr_compute(key: String, log: &str, sleep: Duration) -> String {
    attr_compute_body(&key, log, sleep)
}

#[bucket_cache(shared = false, ignore(log, sleep))]
fn attr_compute_local(key: String, log: &str, sleep: Duration) -> String {
    attr_compute_body(&key, log, sleep)
}

fn attr_compute_body(key: &str, log: &str, sleep: Duration) -> String {
    let pid = std::process::id();
    let _ = append(log, &format!("start {pid}"));
    std::thread::sleep(sleep);
    let _ = append(log, &format!("end {pid}"));
    format!("value-of-{key}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Err(e) = run(&args) {
        eprintln!("bucketcache-machine: {e}");
        std::process::exit(2);
    }
}

fn arg(args: &[String], i: usize) -> Result<&str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}"))
}

fn ms(args: &[String], i: usize) -> Result<Duration, String> {
    arg(args, i)?
        .parse()
        .map(Duration::from_millis)
        .map_err(|e| format!("argument {i}: {e}"))
}

fn append(log: &str, line: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("open {log}: {e}"))?;
    writeln!(f, "{line}").map_err(|e| format!("write {log}: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    match arg(args, 1)? {
        "compute" => {
            let (dir, key, log) = (arg(args, 2)?, arg(args, 3)?, arg(args, 4)?);
            let (sleep, wait) = (ms(args, 5)?, ms(args, 6)?);
            let tier = RedisTier::from_env()
                .map_err(|e| e.to_string())?
                .ok_or("BUCKETCACHE_REDIS_URL is not set")?;
            let bucket = Bucket::builder(dir).shared(tier).build().map_err(|e| e.to_string())?;
            let hash = bucket.key_hash(key).map_err(|e| e.to_string())?;
            let start = Instant::now();
            let pid = std::process::id();
            let value: String = bucket.get_or_compute_shared(&hash, wait, || {
                let _ = append(log, &format!("start {pid}"));
                std::thread::sleep(sleep);
                let _ = append(log, &format!("end {pid}"));
                format!("value-of-{key}")
            });
            let stats = bucket.stats().shared.unwrap_or_default();
            println!(
                "value {value} waited_ms {} lease_waits {} takeovers {}",
                start.elapsed().as_millis(),
                stats.lease_waits,
                stats.takeovers
            );
            Ok(())
        }
        "attr" => {
            let (key, log, sleep) = (arg(args, 2)?, arg(args, 3)?, ms(args, 4)?);
            let value = match args.get(5).map(String::as_str) {
                Some("local") => attr_compute_local(key.to_owned(), log, sleep),
                _ => attr_compute(key.to_owned(), log, sleep),
            };
            println!("value {value}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
