//! Two "machines" sharing one computation through Redis.
//!
//! ```sh
//! redis-server --port 6379 --save '' &          # or any Redis you own
//! BUCKETCACHE_REDIS_URL=redis://127.0.0.1:6379 cargo run --example shared_redis --features redis
//! ```
//!
//! The example starts two copies of itself as child processes, each with its own local cache directory (as two
//! machines would have), and both call the same cold `#[bucket_cache]` function at once. One computes (it holds the
//! key's lease in Redis); the other waits for the entry and gets it from Redis, so the expensive body runs once.
//! Run it again: both children now hit (the first from Redis: their local directories are new each run).

use std::process::Command;
use std::time::{Duration, Instant};

use bucketcache::bucket_cache;

/// An expensive computation (a build step, an API call): two seconds.
#[bucket_cache(lifetime = "10m")]
fn expensive_report(year: u32) -> String {
    println!("  [pid {}] computing the report for {year}...", std::process::id());
    std::thread::sleep(Duration::from_secs(2));
    format!("report {year}: 42 widgets")
}

fn child() {
    let start = Instant::now();
    let report = expensive_report(2026);
    println!(
        "  [pid {}] got {report:?} in {:.1?}",
        std::process::id(),
        start.elapsed()
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("child") {
        child();
        return;
    }
    if std::env::var("BUCKETCACHE_REDIS_URL").map_or(true, |u| u.is_empty()) {
        eprintln!(
            "Set BUCKETCACHE_REDIS_URL to a Redis server you own, for example:\n\n  \
             redis-server --port 6379 --save '' &\n  \
             BUCKETCACHE_REDIS_URL=redis://127.0.0.1:6379 cargo run --example shared_redis --features redis\n\n\
             (Optionally BUCKETCACHE_REDIS_NAMESPACE, default `bucketcache`.)"
        );
        std::process::exit(2);
    }
    let me = std::env::current_exe().expect("this program's path");
    let root = std::env::temp_dir().join(format!("bucketcache-shared-example-{}", std::process::id()));
    println!(
        "Two machines (separate local caches under {}), one cold key:",
        root.display()
    );
    let children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(&me)
                .arg("child")
                .env("BUCKETCACHE_DIR", root.join(format!("machine-{i}")))
                .spawn()
                .expect("start a child")
        })
        .collect();
    for mut c in children {
        let status = c.wait().expect("wait for a child");
        assert!(status.success(), "a child failed: {status}");
    }
    let _ = std::fs::remove_dir_all(&root);
    println!("At most one \"computing\" line above: no machine computed what another had stored or was computing.");
}
