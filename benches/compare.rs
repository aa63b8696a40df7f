//! Side-by-side comparison with the `cached` crate, in one process so machine noise hits both sides alike.
//!
//! Run: `cargo bench --bench compare`. Prints a table of medians and ratios (ours / theirs) for the function
//! `f(a: u64, b: String) -> Vec<u64>` (16 elements): memory hit, disk hit (memory tier empty, page cache warm),
//! miss + store without and with fsync, and a whole child process that opens the cache and serves one hit.
//!
//! Ours is `#[bucket_cache]` on the same function; theirs is `#[cached]` / `#[concurrent_cached(disk = true)]`.
//! Each measure alternates rounds of ours and theirs (A B A B ...) and reports the median per-call time over rounds.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bucketcache::{bucket_cache, Bucket, Durability};
use cached::proc_macro::{cached, concurrent_cached};

// ---- the function under test -------------------------------------------------------------------------------

fn compute(a: u64, b: &str) -> Vec<u64> {
    (0..16)
        .map(|i| a.wrapping_mul(31).wrapping_add(i).wrapping_add(b.len() as u64))
        .collect()
}

// ---- theirs: the `cached` crate ----------------------------------------------------------------------------

#[cached]
fn cached_mem(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

// A disk store needs a `Display` key: the usual `key`/`convert` pair.
#[concurrent_cached(
    disk = true,
    durable = false,
    disk_dir = "target/bench-caches/cached-nondurable",
    key = "String",
    convert = r#"{ format!("{a}:{b}") }"#,
    map_error = r##"|e| format!("{e}")"##
)]
fn cached_disk(a: u64, b: String) -> Result<Vec<u64>, String> {
    Ok(compute(a, &b))
}

#[concurrent_cached(
    disk = true,
    disk_dir = "target/bench-caches/cached-durable",
    key = "String",
    convert = r#"{ format!("{a}:{b}") }"#,
    map_error = r##"|e| format!("{e}")"##
)]
fn cached_disk_durable(a: u64, b: String) -> Result<Vec<u64>, String> {
    Ok(compute(a, &b))
}

// ---- ours --------------------------------------------------------------------------------------------------

fn bench_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-caches")
        .join(name)
}

static MEM: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(bench_dir("ours-mem")).expect("bucket"));
static DISK: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(bench_dir("ours-disk"))
        .memory_max_bytes(0)
        .build()
        .expect("bucket")
});
static STORE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(bench_dir("ours-store")).expect("bucket"));
static STORE_NOLOCK: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(bench_dir("ours-store-nolock")).expect("bucket"));
static STORE_FSYNC: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(bench_dir("ours-store-fsync"))
        .durability(Durability::Fsync)
        .build()
        .expect("bucket")
});

#[bucket_cache(bucket = MEM)]
fn ours_mem(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

#[bucket_cache(bucket = DISK)]
fn ours_disk(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

#[bucket_cache(bucket = STORE)]
fn ours_store(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

#[bucket_cache(bucket = STORE_NOLOCK, cross_process = false)]
fn ours_store_nolock(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

#[bucket_cache(bucket = STORE_FSYNC)]
fn ours_store_fsync(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

#[bucket_cache(path = "target/bench-caches/ours-child")]
fn ours_child(a: u64, b: String) -> Vec<u64> {
    compute(a, &b)
}

// ---- measuring ---------------------------------------------------------------------------------------------

/// Median ns per call of `ours` and `theirs`, alternating `rounds` rounds of `iters` calls each.
fn duel(rounds: usize, iters: u64, mut ours: impl FnMut(u64), mut theirs: impl FnMut(u64)) -> (f64, f64) {
    let mut o = Vec::with_capacity(rounds);
    let mut t = Vec::with_capacity(rounds);
    let mut i = 0u64;
    for round in 0..rounds + 1 {
        let start = Instant::now();
        for _ in 0..iters {
            ours(i);
            i += 1;
        }
        let ours_ns = start.elapsed().as_nanos() as f64 / iters as f64;
        let start = Instant::now();
        for _ in 0..iters {
            theirs(i);
            i += 1;
        }
        let theirs_ns = start.elapsed().as_nanos() as f64 / iters as f64;
        if round > 0 {
            // Round 0 is a warm-up.
            o.push(ours_ns);
            t.push(theirs_ns);
        }
    }
    (median(&mut o), median(&mut t))
}

fn median(v: &mut [f64]) -> f64 {
    assert!(
        !v.is_empty() && v.iter().all(|x| x.is_finite()),
        "no measurement, or one that is not a number: {v:?}"
    );
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

struct Row {
    measure: &'static str,
    ours: f64,
    theirs: f64,
    target: &'static str,
    limit: f64,
}

/// A bare create + write + rename of an entry-sized file in a fresh directory: the floor under any store.
fn store_floor(n: u64) -> f64 {
    let dir = bench_dir("floor");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bytes = vec![7u8; 220];
    let start = Instant::now();
    for i in 0..n {
        let tmp = dir.join(format!(".tmp-{i}"));
        std::fs::write(&tmp, &bytes).expect("write");
        std::fs::rename(&tmp, dir.join(format!("{i}"))).expect("rename");
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

// ---- whole process -----------------------------------------------------------------------------------------

const CHILD_ENV: &str = "BUCKETCACHE_COMPARE_CHILD";

/// In a child: open the cache, serve one hit, print the in-process time in ns.
fn child(which: &str) {
    let start = Instant::now();
    let v = match which {
        "ours" => ours_child(1, "x".to_string()),
        _ => cached_disk(1, "x".to_string()).unwrap_or_else(|e| {
            eprintln!("cached disk child: {e}");
            std::process::exit(1)
        }),
    };
    let ns = start.elapsed().as_nanos();
    black_box(v);
    println!("{ns}");
}

/// Medians over `runs` child processes of `which` (in-process ns, wall ns), after one more child that fills the
/// cache (its miss is not a hit, so it is left out). A child that fails, or prints no time, fails the bench.
fn whole_process(which: &str, runs: usize) -> (f64, f64) {
    let exe = std::env::current_exe().expect("exe");
    let mut inside = Vec::new();
    let mut wall = Vec::new();
    for run in 0..=runs {
        let start = Instant::now();
        let out = Command::new(&exe).env(CHILD_ENV, which).output().expect("spawn child");
        let elapsed = start.elapsed().as_nanos() as f64;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{which} child {run} failed ({}): {text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = text
            .trim()
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{which} child {run} printed no time ({e}): {text:?}"));
        if run > 0 {
            // Run 0 filled the cache.
            inside.push(ns);
            wall.push(elapsed);
        }
    }
    (median(&mut inside), median(&mut wall))
}

fn main() {
    if let Ok(which) = std::env::var(CHILD_ENV) {
        child(&which);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` and `cargo test --benches` probe the harness; nothing to list.
        return;
    }
    for d in [
        "ours-child",
        "ours-mem",
        "ours-disk",
        "ours-store",
        "ours-store-fsync",
        "ours-store-nolock",
        "cached-nondurable",
        "cached-durable",
    ] {
        let _ = std::fs::remove_dir_all(bench_dir(d));
    }
    let b = || "x".to_string();
    // Whole processes first: redb admits one process per database, so the parent must not hold it open yet.
    // The first child of each kind populates its cache; the medians are of the 21 hits after it.
    let (ours_in, ours_wall) = whole_process("ours", 21);
    let (theirs_in, theirs_wall) = whole_process("cached", 21);
    // Populate the hit keys.
    ours_mem(1, b());
    ours_disk(1, b());
    cached_mem(1, b());
    cached_disk(1, b()).expect("cached disk");

    let mut rows = Vec::new();
    let (o, t) = duel(
        31,
        20_000,
        |_| drop(black_box(ours_mem(1, b()))),
        |_| drop(black_box(cached_mem(1, b()))),
    );
    rows.push(Row {
        measure: "memory hit (#[cached] in memory)",
        ours: o,
        theirs: t,
        target: "<= 1x",
        limit: 1.0,
    });

    let (o, t) = duel(
        31,
        2_000,
        |_| drop(black_box(ours_disk(1, b()))),
        |_| drop(black_box(cached_disk(1, b()))),
    );
    rows.push(Row {
        measure: "disk hit (redb), page cache warm",
        ours: o,
        theirs: t,
        target: "<= 2.5x",
        limit: 2.5,
    });

    let floor = store_floor(2_000);
    let (o, t) = duel(
        11,
        300,
        |i| drop(black_box(ours_store(1_000_000 + i, b()))),
        |i| drop(black_box(cached_disk(1_000_000 + i, b()))),
    );
    rows.push(Row {
        measure: "miss + store, no fsync",
        ours: o,
        theirs: t,
        target: "<= 1x",
        limit: 1.0,
    });

    let (o, t) = duel(
        11,
        300,
        |i| drop(black_box(ours_store_nolock(3_000_000 + i, b()))),
        |i| drop(black_box(cached_disk(3_000_000 + i, b()))),
    );
    rows.push(Row {
        measure: "miss + store, no fsync, cross_process = false",
        ours: o,
        theirs: t,
        target: "(report)",
        limit: f64::INFINITY,
    });

    let (o, t) = duel(
        5,
        20,
        |i| drop(black_box(ours_store_fsync(2_000_000 + i, b()))),
        |i| drop(black_box(cached_disk_durable(2_000_000 + i, b()))),
    );
    rows.push(Row {
        measure: "miss + store, fsync",
        ours: o,
        theirs: t,
        target: "(report)",
        limit: f64::INFINITY,
    });

    rows.push(Row {
        measure: "child process: open + 1 hit (in process)",
        ours: ours_in,
        theirs: theirs_in,
        target: "< 2 ms",
        limit: f64::INFINITY,
    });
    rows.push(Row {
        measure: "child process: spawn to exit (wall)",
        ours: ours_wall,
        theirs: theirs_wall,
        target: "(report)",
        limit: f64::INFINITY,
    });

    println!();
    println!("f(a: u64, b: String) -> Vec<u64> (16 elements); medians; ratio = bucketcache / cached 4.x");
    println!();
    println!("| measure | bucketcache | cached | ratio | target | met |");
    println!("|---|---:|---:|---:|---|---|");
    for r in &rows {
        let ratio = r.ours / r.theirs;
        let met = if r.target == "< 2 ms" {
            if r.ours < 2_000_000.0 {
                "yes"
            } else {
                "NO"
            }
        } else if r.limit.is_finite() {
            if ratio <= r.limit {
                "yes"
            } else {
                "NO"
            }
        } else {
            "-"
        };
        println!(
            "| {} | {} | {} | {:.2}x | {} | {} |",
            r.measure,
            fmt_ns(r.ours),
            fmt_ns(r.theirs),
            ratio,
            r.target,
            met
        );
    }
    println!(
        "| floor: bare create + write + rename (fresh dir) | {} | | | | |",
        fmt_ns(floor)
    );
    println!();
    let _ = Duration::ZERO;
}
