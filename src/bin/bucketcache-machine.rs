//! A child process playing another machine for the shared-tier tests: its own local directory, the Redis tier from
//! the environment (`BUCKETCACHE_REDIS_URL`, `BUCKETCACHE_REDIS_NAMESPACE`, `BUCKETCACHE_REDIS_LEASE`).
//!
//! ```text
//! bucketcache-machine compute DIR KEY LOG SLEEP_MS WAIT_MS
//!     get_or_compute_shared(KEY): the body appends "start PID" to LOG, sleeps SLEEP_MS, appends "end PID";
//!     prints "value V waited_ms W lease_waits L takeovers T"
//! ```
//! Exit code 0 on success, 2 on usage errors.

use std::io::Write;
use std::time::{Duration, Instant};

use bucketcache::{Bucket, RedisTier};

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
        other => Err(format!("unknown command {other:?}")),
    }
}
