//! The non-comparative targets of DESIGN.md: big keys, scale, pruning, memory bound, multi-process throughput.
//!
//! Run: `cargo bench --bench targets` (about a minute with 100k entries). `BUCKETCACHE_BENCH_ENTRIES=1000000` adds
//! the 1M-entry bucket (minutes: a million files are created).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bucketcache::{Bucket, DefaultKeyMaker, KeyMaker, ManualClock, StreamingDefaultKeyMaker};

/// Counts live heap bytes and their peak, to measure the extra memory of hashing a big key.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

fn big_keys() {
    println!("## Big keys (64 MiB argument)\n");
    println!("| key | key maker | throughput | peak extra memory |");
    println!("|---|---|---:|---:|");
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let bytes = serde_bytes::ByteBuf::from(data.clone());
    let gb = data.len() as f64 / 1e9;
    type Case<'a> = (&'a str, &'a str, Box<dyn Fn() -> bucketcache::KeyHash + 'a>);
    let cases: Vec<Case> = vec![
        (
            "Vec<u8>",
            "StreamingDefaultKeyMaker",
            Box::new(|| StreamingDefaultKeyMaker.make_key(&data).expect("hash")),
        ),
        (
            "Vec<u8>",
            "DefaultKeyMaker",
            Box::new(|| DefaultKeyMaker.make_key(&data).expect("hash")),
        ),
        (
            "serde_bytes",
            "StreamingDefaultKeyMaker",
            Box::new(|| StreamingDefaultKeyMaker.make_key(&bytes).expect("hash")),
        ),
        (
            "serde_bytes",
            "DefaultKeyMaker",
            Box::new(|| DefaultKeyMaker.make_key(&bytes).expect("hash")),
        ),
    ];
    for (key, maker, f) in cases {
        black_box(f());
        let mut best = f64::MAX;
        let mut extra = 0usize;
        for _ in 0..5 {
            let base = reset_peak();
            let start = Instant::now();
            black_box(f());
            best = best.min(start.elapsed().as_secs_f64());
            extra = extra.max(PEAK.load(Ordering::Relaxed) - base);
        }
        println!("| {key} | {maker} | {:.2} GB/s | {} KiB |", gb / best, extra / 1024);
    }
    println!();
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median ns per hit over random keys among `n`, from memory and from disk (memory tier empty).
fn hit_latency(bucket: &Bucket, disk: &Bucket, n: u64) -> (f64, f64) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut mem = Vec::new();
    let mut dsk = Vec::new();
    for _ in 0..21 {
        // Memory: a working set of 1,000 keys that fits the tier.
        let keys: Vec<u64> = (0..1_000).map(|_| next()).collect();
        for k in &keys {
            black_box(bucket.get::<Vec<u64>>(k).expect("get"));
        }
        let start = Instant::now();
        for k in &keys {
            black_box(bucket.get::<Vec<u64>>(k).expect("get"));
        }
        mem.push(start.elapsed().as_nanos() as f64 / keys.len() as f64);
        let keys: Vec<u64> = (0..200).map(|_| next()).collect();
        let start = Instant::now();
        for k in &keys {
            black_box(disk.get::<Vec<u64>>(k).expect("get"));
        }
        dsk.push(start.elapsed().as_nanos() as f64 / keys.len() as f64);
    }
    (median(mem), median(dsk))
}

fn scale(sizes: &[u64]) {
    println!("## Scale (one bucket, entries of 16 x u64)\n");
    println!("| entries | insert throughput | memory hit | disk hit | memory tier held | RSS (VmHWM) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let base = std::env::temp_dir().join(format!("bucketcache-bench-scale-{}", std::process::id()));
    let mut baseline = None;
    for &n in sizes {
        let dir = base.join(n.to_string());
        let bucket = Bucket::new(&dir).expect("bucket");
        let start = Instant::now();
        for k in 0..n {
            bucket.insert(&k, &vec![k; 16]).expect("insert");
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        // Touch every entry once more through the memory tier to load it to its bound.
        for k in 0..n {
            black_box(bucket.get::<Vec<u64>>(&k).expect("get"));
        }
        let disk = Bucket::builder(&dir).memory_max_bytes(0).build().expect("bucket");
        let (mem, dsk) = hit_latency(&bucket, &disk, n);
        let (held, held_bytes) = bucket.memory_usage();
        println!(
            "| {n} | {rate:.0} /s | {mem:.0} ns | {:.1} µs | {held} entries, {:.1} MiB | {:.0} MiB |",
            dsk / 1000.0,
            held_bytes as f64 / 1_048_576.0,
            rss_kib("VmHWM:") as f64 / 1024.0
        );
        baseline.get_or_insert((n, mem, dsk));
        drop((bucket, disk));
        if n == *sizes.last().unwrap_or(&0) {
            if let Some((n0, m0, d0)) = baseline {
                println!();
                println!(
                    "hit latency at {n} vs {n0} entries: memory {:.2}x, disk {:.2}x (target: within 2x)",
                    mem / m0,
                    dsk / d0
                );
            }
        }
    }
    // Prune: the largest bucket, half of it expired.
    let n = (*sizes.last().unwrap_or(&1_000)).min(100_000);
    let dir = base.join("prune");
    let clock = ManualClock::starting_now();
    let short = Bucket::builder(&dir)
        .clock(clock.clone())
        .seconds(1)
        .build()
        .expect("bucket");
    let long = Bucket::builder(&dir).clock(clock.clone()).build().expect("bucket");
    for k in 0..n / 2 {
        short.insert(&k, &k).expect("insert");
        long.insert(&(k, 1u8), &k).expect("insert");
    }
    clock.advance(Duration::from_secs(2));
    let start = Instant::now();
    let info = short.prune_directory().expect("prune");
    println!(
        "prune of {n} entries ({} expired removed, {} KiB): {:.2} s",
        info.num,
        info.size / 1024,
        start.elapsed().as_secs_f64()
    );
    println!();
    let _ = std::fs::remove_dir_all(&base);
}

fn concurrency() {
    println!("## Four processes, 90% get / 10% insert over 1,000 keys, 5 s\n");
    for mode in ["files", "memory"] {
        hammer(mode);
    }
    println!();
}

/// One 5-second run of four worker processes; `files`: every read goes to the file (sees other processes' writes
/// at once), `memory`: reads may be served by each process's memory tier.
fn hammer(mode: &str) {
    let dir = std::env::temp_dir().join(format!("bucketcache-bench-conc-{}-{mode}", std::process::id()));
    let worker = env!("CARGO_BIN_EXE_bucketcache-worker");
    let started = Instant::now();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(worker)
                .args(["hammer", dir.to_str().expect("utf8"), "1000", "5000", mode])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let (mut ops, mut hits, mut errors, mut bad) = (0u64, 0u64, 0u64, 0u64);
    let mut insert_notes = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let f: Vec<&str> = text.split_whitespace().collect();
        // A worker that failed, or whose report cannot be read, fails the bench: no number is made up.
        assert!(
            out.status.success() && f.len() == 10,
            "hammer worker ({mode}) failed ({}): {text}\n{stderr}",
            out.status
        );
        let field = |i: usize| {
            f[i].parse::<u64>()
                .unwrap_or_else(|e| panic!("hammer worker ({mode}): field {i} of {text:?}: {e}"))
        };
        ops += field(1);
        hits += field(3);
        errors += field(7);
        bad += field(9);
        insert_notes.push(stderr);
    }
    // Spawn to the last exit: a little more than the workers' 5 s of work, so the rate is not overstated.
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reads from {mode}: total {:.0} ops/s over {secs:.2} s ({hits} hits), errors {errors}, wrong values {bad} \
         (target: > 100,000 ops/s, 0, 0)",
        ops as f64 / secs
    );
    println!("  per process: {}", insert_notes.join("; "));
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let max: u64 = std::env::var("BUCKETCACHE_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sizes: Vec<u64> = [1_000u64, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    big_keys();
    scale(&sizes);
    concurrency();
    let _ = Path::new(".");
}
