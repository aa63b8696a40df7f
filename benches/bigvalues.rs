//! Big values (issue 10): a `Vec<f64>` of 1, 64 and 256 MiB (1 GiB with `BIGVALUES_1GIB=1`) stored and loaded
//! through a bucket (memory tier empty), beside a raw `fs::write`/`fs::read` of as many bytes and beside
//! `joblib.Memory` on a float64 array of the same size (`benches/joblib_peer.py`; skipped, and said so, when python3,
//! numpy or joblib is missing). Then big arguments: a 64 MiB `Vec<u8>`, `&[u8]`, `serde_bytes` and `Vec<f64>`
//! argument of a `#[bucket_cache]` function, a hit, beside one-thread blake3 of the same bytes (and, for reference,
//! two-thread blake3 of two 32 MiB subtrees, and the drop of a 64 MiB `Vec` that the owned-argument rows include).
//!
//! Each case runs in a child process of its own (this binary again): the time of one call and its peak memory, VmHWM
//! after `/proc/self/clear_refs` reset it, minus the resident size just before the call. The store and load rows
//! are measured over several rounds (`BIGVALUES_ROUNDS`, default 5), each round one fresh child per row, ours and
//! joblib's alternating which goes first: a row prints its median round (wall and CPU, each its own median) and
//! its largest peak; a ratio line prints the median of the per-round ratios, the ratio of each side's best round,
//! and every round's ratio, so one noisy round cannot decide. Stores go to a fresh directory each round.
//! Beside the wall time, the process's CPU time (all threads; Linux): on a busy machine the wall time measures the
//! scheduler as much as the code, and the CPU ratio is the steadier one. A helper thread (the checksum or a big key
//! hashed beside the encoding) lowers the wall time when a core is free and adds to the CPU time.
//!
//! `cargo bench --bench bigvalues` (`-- store`, `-- load`, `-- args` or a size such as `-- 256` to select rows).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bucketcache::Bucket;

const MIB: usize = 1 << 20;

fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn value(mib: usize) -> Vec<f64> {
    (0..mib * MIB / 8).map(|i| i as f64 * 0.5 + 0.25).collect()
}

/// The process's CPU time (user and system, all threads), in seconds; 0 where unknown.
fn cpu_secs() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }
    #[cfg(not(target_os = "linux"))]
    {
        0.0
    }
}

/// One measured run: wall seconds, CPU seconds, peak bytes beyond the resident size before it.
#[derive(Clone, Copy)]
struct M {
    secs: f64,
    cpu: f64,
    peak: u64,
}

impl M {
    const NONE: M = M {
        secs: f64::MAX,
        cpu: f64::MAX,
        peak: 0,
    };

    /// The best of two runs: the least time of each kind, the most memory.
    fn best(self, other: M) -> M {
        M {
            secs: self.secs.min(other.secs),
            cpu: self.cpu.min(other.cpu),
            peak: self.peak.max(other.peak),
        }
    }
}

/// Runs `f` once, measured.
fn measure<R>(f: impl FnOnce() -> R) -> (M, R) {
    let before = status("VmRSS");
    reset_peak();
    let cpu = cpu_secs();
    let start = Instant::now();
    let r = f();
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    let peak = status("VmHWM").saturating_sub(before);
    (M { secs, cpu, peak }, r)
}

#[bucketcache::bucket_cache(bucket = args_bucket())]
fn big_vec(data: Vec<u8>) -> u64 {
    data.len() as u64
}

#[bucketcache::bucket_cache(bucket = args_bucket())]
fn big_slice(data: &[u8]) -> u64 {
    data.len() as u64
}

#[bucketcache::bucket_cache(bucket = args_bucket())]
fn big_bytes(data: serde_bytes::ByteBuf) -> u64 {
    data.len() as u64
}

#[bucketcache::bucket_cache(bucket = args_bucket())]
fn big_floats(data: Vec<f64>) -> u64 {
    data.len() as u64
}

fn args_bucket() -> &'static Bucket {
    static B: std::sync::OnceLock<Bucket> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let dir = std::env::var("BIGVALUES_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
        Bucket::new(Path::new(&dir).join("args")).unwrap_or_else(|e| panic!("bucket: {e}"))
    })
}

/// The bucket of the store and load rows: the default one, but reading entries up to 4 GiB (the default bound,
/// 1 GiB, is under a 1 GiB value's file).
fn big_bucket(dir: &Path) -> Bucket {
    Bucket::builder(dir.join("bucket"))
        .max_entry_bytes(4 << 30)
        .build()
        .unwrap_or_else(|e| panic!("bucket: {e}"))
}

/// One case, in this (child) process; prints "seconds peak_bytes cpu_seconds".
fn child(mode: &str, mib: usize, dir: &Path) {
    let bytes = mib * MIB;
    let m = match mode {
        "floor-write" => {
            let data = vec![7u8; bytes];
            let (m, r) = measure(|| std::fs::write(dir.join("raw"), &data));
            r.unwrap_or_else(|e| panic!("write: {e}"));
            m
        }
        "floor-read" => {
            let (m, r) = measure(|| std::fs::read(dir.join("raw")));
            assert_eq!(r.map(|d| d.len()).ok(), Some(bytes));
            m
        }
        "store" => {
            let bucket = big_bucket(dir);
            let v = value(mib);
            let (m, r) = measure(|| bucket.insert("big", &v));
            r.unwrap_or_else(|e| panic!("insert: {e}"));
            m
        }
        "load" => {
            let bucket = big_bucket(dir);
            let (m, r) = measure(|| bucket.get::<Vec<f64>>("big"));
            let got = r.unwrap_or_else(|e| panic!("get: {e}")).map(|v| v.len());
            assert_eq!(got, Some(bytes / 8), "the load missed");
            m
        }
        "blake3" => {
            let data = vec![7u8; bytes];
            let mut best = M::NONE;
            for _ in 0..3 {
                let (m, h) = measure(|| blake3::hash(&data));
                std::hint::black_box(h);
                best = best.best(m);
            }
            best
        }
        "blake3-2" => {
            // Two threads, each hashing one 32 MiB subtree (blake3's tree: the root merges the two chaining
            // values), to measure what multi-threaded hashing could give here. Checked against the one-thread hash.
            use blake3::hazmat::{merge_subtrees_root, HasherExt, Mode};
            let data = vec![7u8; bytes];
            let (left, right) = data.split_at(bytes / 2);
            let mut best = M::NONE;
            for _ in 0..3 {
                let (m, h) = measure(|| {
                    std::thread::scope(|s| {
                        let r = s.spawn(|| {
                            blake3::Hasher::new()
                                .set_input_offset(left.len() as u64)
                                .update(right)
                                .finalize_non_root()
                        });
                        let l = blake3::Hasher::new().update(left).finalize_non_root();
                        let r = r.join().unwrap_or_else(|_| panic!("hashing thread"));
                        merge_subtrees_root(&l, &r, Mode::Hash)
                    })
                });
                assert_eq!(h, blake3::hash(&data), "two-thread hash");
                best = best.best(m);
            }
            best
        }
        "drop-vec" => {
            // What the owned-argument rows pay beside the key: dropping the 64 MiB argument (as any call does).
            let data = vec![7u8; bytes];
            let mut best = M::NONE;
            for _ in 0..3 {
                let d = data.clone();
                let (m, ()) = measure(|| drop(d));
                best = best.best(m);
            }
            best
        }
        "arg-vec" | "arg-slice" | "arg-bytes" | "arg-floats" => {
            let data = vec![7u8; bytes];
            let floats = vec![0.5f64; bytes / 8];
            let call = || match mode {
                "arg-vec" => big_vec(data.clone()),
                "arg-slice" => big_slice(&data),
                "arg-bytes" => big_bytes(serde_bytes::ByteBuf::from(data.clone())),
                _ => big_floats(floats.clone()),
            };
            call(); // the miss: stores the entry
            let mut best = M::NONE;
            for _ in 0..3 {
                // The clone of an owned argument is the caller's, not the hit's: build it before the timed call.
                let (m, r) = match mode {
                    "arg-vec" => {
                        let d = data.clone();
                        measure(|| big_vec(d))
                    }
                    "arg-slice" => measure(|| big_slice(&data)),
                    "arg-bytes" => {
                        let d = serde_bytes::ByteBuf::from(data.clone());
                        measure(|| big_bytes(d))
                    }
                    _ => {
                        let d = floats.clone();
                        measure(|| big_floats(d))
                    }
                };
                std::hint::black_box(r);
                best = best.best(m);
            }
            best
        }
        #[cfg(feature = "zstd")]
        "zstore-text" | "zstore-noise" | "zload-text" | "zload-noise" => {
            let bucket = Bucket::builder(dir.join(mode.replace("load", "store")))
                .compression(3, 1 << 20)
                .build()
                .unwrap_or_else(|e| panic!("bucket: {e}"));
            let v: Vec<f64> = if mode.ends_with("text") {
                // Compressible: few distinct values, as in a table of categories or rounded measurements.
                (0..bytes / 8).map(|i| ((i * 7919) % 1000) as f64 * 0.5).collect()
            } else {
                // Incompressible: pseudo-random mantissas.
                let mut x = 0x9e37_79b9_7f4a_7c15_u64;
                (0..bytes / 8)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        f64::from_bits((x >> 12) | 0x3ff0_0000_0000_0000)
                    })
                    .collect()
            };
            let key = bucket.key_hash("z").unwrap_or_else(|e| panic!("key: {e}"));
            if mode.starts_with("zstore") {
                let (m, r) = measure(|| bucket.insert("z", &v));
                r.unwrap_or_else(|e| panic!("insert: {e}"));
                let len = std::fs::metadata(bucket.entry_path(&key)).map_or(0, |m| m.len());
                eprintln!("file {len} bytes, ratio {:.2}", bytes as f64 / len as f64);
                println!("{} {} {} {len}", m.secs, m.peak, m.cpu);
                return;
            }
            drop(v);
            let mut best = M::NONE;
            for _ in 0..3 {
                bucket.unload_all();
                let (m, r) = measure(|| bucket.get::<Vec<f64>>("z"));
                assert_eq!(
                    r.unwrap_or_else(|e| panic!("get: {e}")).map(|v| v.len()),
                    Some(bytes / 8)
                );
                best = best.best(m);
            }
            best
        }
        other => panic!("unknown case {other}"),
    };
    println!("{} {} {}", m.secs, m.peak, m.cpu);
}

/// Runs a case in a child process, or says why not.
fn run(mode: &str, mib: usize, dir: &Path) -> Result<M, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .env("BIGVALUES_CHILD", format!("{mode} {mib}"))
        .env("BIGVALUES_DIR", dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// The third number a compressed store prints: the file's length.
#[cfg(feature = "zstd")]
fn run_len(mode: &str, mib: usize, dir: &Path) -> Result<(M, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .env("BIGVALUES_CHILD", format!("{mode} {mib}"))
        .env("BIGVALUES_DIR", dir)
        .output()
        .map_err(|e| e.to_string())?;
    let s = String::from_utf8_lossy(&out.stdout);
    let m = parse(&s)?;
    let len = s.split_whitespace().nth(3).and_then(|x| x.parse().ok()).unwrap_or(0);
    Ok((m, len))
}

fn parse(s: &str) -> Result<M, String> {
    let mut it = s.split_whitespace();
    let mut next = || it.next().ok_or(format!("bad output {s:?}"));
    let secs = next()?.parse().map_err(|_| format!("bad output {s:?}"))?;
    let peak = next()?.parse().map_err(|_| format!("bad output {s:?}"))?;
    let cpu = next()?.parse().map_err(|_| format!("bad output {s:?}"))?;
    Ok(M { secs, cpu, peak })
}

/// The joblib peer, or why it was skipped.
fn joblib(mode: &str, mib: usize, dir: &Path) -> Result<M, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/joblib_peer.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(mode)
        .arg(mib.to_string())
        .arg(dir.join("joblib"))
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(why) = stdout.strip_prefix("skip") {
        return Err(why.trim().to_owned());
    }
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_owned());
    }
    // "seconds rss_before peak cpu_seconds"
    let mut it = stdout.split_whitespace();
    let secs: f64 = it.next().and_then(|x| x.parse().ok()).ok_or("bad output")?;
    let before: u64 = it.next().and_then(|x| x.parse().ok()).ok_or("bad output")?;
    let peak: u64 = it.next().and_then(|x| x.parse().ok()).ok_or("bad output")?;
    let cpu: f64 = it.next().and_then(|x| x.parse().ok()).ok_or("bad output")?;
    Ok(M {
        secs,
        cpu,
        peak: peak.saturating_sub(before),
    })
}

/// Prints a row; returns (wall GB/s, CPU GB/s).
fn row(name: &str, mib: usize, r: &Result<M, String>) -> Option<(f64, f64)> {
    match r {
        Ok(m) => {
            let gbs = (mib * MIB) as f64 / m.secs / 1e9;
            let cpu_gbs = (mib * MIB) as f64 / m.cpu / 1e9;
            println!(
                "{name:<34} {mib:>5} MiB {gbs:>7.2} GB/s (CPU {cpu_gbs:>6.2} GB/s)  peak +{:>7.1} MiB ({:.2}x the value)",
                m.peak as f64 / MIB as f64,
                m.peak as f64 / (mib * MIB) as f64
            );
            Some((gbs, cpu_gbs))
        }
        Err(why) => {
            println!("{name:<34} {mib:>5} MiB   skipped: {}", why.trim());
            None
        }
    }
}

/// The median of `xs` (the mean of the middle two for an even count); `f64::MAX` for none.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::MAX,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// One row measured over rounds: the median round (wall and CPU each their own median), the largest peak; the
/// first failure when any round failed.
fn summary(rounds: &[Result<M, String>]) -> Result<M, String> {
    let ok: Vec<M> = rounds.iter().cloned().collect::<Result<_, _>>()?;
    Ok(M {
        secs: median(ok.iter().map(|m| m.secs).collect()),
        cpu: median(ok.iter().map(|m| m.cpu).collect()),
        peak: ok.iter().map(|m| m.peak).max().unwrap_or(0),
    })
}

/// Prints how `ours` compares with `peer` over rounds (same length, round i of each run together): the median of
/// the per-round ratios, the ratio of each side's best round, and every round's ratio; wall and CPU.
fn ratio_rounds(name: &str, mib: usize, ours: &[Result<M, String>], peer: &[Result<M, String>], what: &str) {
    let pairs: Vec<(M, M)> = ours
        .iter()
        .zip(peer)
        .filter_map(|(o, p)| Some((*o.as_ref().ok()?, *p.as_ref().ok()?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let wall: Vec<f64> = pairs.iter().map(|(o, p)| p.secs / o.secs).collect();
    let cpu: Vec<f64> = pairs.iter().map(|(o, p)| p.cpu / o.cpu).collect();
    let best = |f: fn(&M) -> f64| {
        let o = pairs.iter().map(|(o, _)| f(o)).fold(f64::MAX, f64::min);
        let p = pairs.iter().map(|(_, p)| f(p)).fold(f64::MAX, f64::min);
        p / o
    };
    let each: Vec<String> = wall.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "{name:<34} {mib:>5} MiB {:>7.2}x {what}, median of {} rounds (CPU {:.2}x); best vs best {:.2}x (CPU {:.2}x); rounds {}",
        median(wall.clone()),
        pairs.len(),
        median(cpu),
        best(|m| m.secs),
        best(|m| m.cpu),
        each.join(" ")
    );
}

/// Prints how `ours` compares with `peer`, wall and CPU.
fn ratio(name: &str, mib: usize, ours: (f64, f64), peer: (f64, f64), what: &str) {
    println!(
        "{name:<34} {mib:>5} MiB {:>7.2}x {what} (CPU {:.2}x)",
        ours.0 / peer.0,
        ours.1 / peer.1
    );
}

fn main() {
    if let Ok(spec) = std::env::var("BIGVALUES_CHILD") {
        let (mode, mib) = spec.split_once(' ').unwrap_or((&spec, "1"));
        let dir = std::env::var("BIGVALUES_DIR").unwrap_or_default();
        child(mode, mib.parse().unwrap_or(1), Path::new(&dir));
        return;
    }
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let selected = |what: &str, mib: usize| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| what.contains(f.as_str()) || *f == mib.to_string())
    };
    let mut sizes = vec![1, 64, 256];
    if std::env::var("BIGVALUES_1GIB").is_ok_and(|v| v == "1") {
        sizes.push(1024);
    }
    println!("big values: Vec<f64>, bincode, memory tier empty; peak = VmHWM beyond the resident size before the call");
    let rounds: usize = std::env::var("BIGVALUES_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(5);
    println!("store and load rows: median of {rounds} rounds, each a fresh child, ours and joblib's alternating first");
    for &mib in &sizes {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        if selected("store", mib) {
            let (mut floor, mut ours, mut peer) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                // A fresh directory each round (a store over an existing entry, or a joblib hit, is not a store).
                let fresh = dir.path().join(format!("store-{round}"));
                std::fs::create_dir_all(&fresh).unwrap_or_else(|e| panic!("mkdir: {e}"));
                floor.push(run("floor-write", mib, &fresh));
                if round % 2 == 0 {
                    ours.push(run("store", mib, &fresh));
                    peer.push(joblib("store", mib, &fresh));
                } else {
                    peer.push(joblib("store", mib, &fresh));
                    ours.push(run("store", mib, &fresh));
                }
                let _ = std::fs::remove_dir_all(&fresh);
            }
            row("raw fs::write (floor)", mib, &summary(&floor));
            row("bucket.insert", mib, &summary(&ours));
            row("joblib.Memory store", mib, &summary(&peer));
            ratio_rounds("  store ratio", mib, &ours, &peer, "joblib");
        }
        if selected("load", mib) {
            let _ = run("floor-write", mib, dir.path());
            let _ = run("store", mib, dir.path());
            let _ = joblib("store", mib, dir.path());
            let (mut floor, mut ours, mut peer) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                floor.push(run("floor-read", mib, dir.path()));
                if round % 2 == 0 {
                    ours.push(run("load", mib, dir.path()));
                    peer.push(joblib("load", mib, dir.path()));
                } else {
                    peer.push(joblib("load", mib, dir.path()));
                    ours.push(run("load", mib, dir.path()));
                }
            }
            row("raw fs::read (floor)", mib, &summary(&floor));
            row("bucket.get (hit from disk)", mib, &summary(&ours));
            row("joblib.Memory hit", mib, &summary(&peer));
            ratio_rounds("  load ratio", mib, &ours, &peer, "joblib");
        }
    }
    #[cfg(feature = "zstd")]
    if filters.is_empty() || filters.iter().any(|f| f == "zstd") {
        println!("zstd level 3 from 1 MiB (feature zstd): 64 MiB Vec<f64>");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for data in ["text", "noise"] {
            let stored = run_len(&format!("zstore-{data}"), 64, dir.path());
            if let Ok((_, len)) = &stored {
                println!(
                    "  {data}: stored {len} bytes, ratio {:.2}",
                    (64 * MIB) as f64 / *len as f64
                );
            }
            row(&format!("insert, zstd, {data}"), 64, &stored.map(|(m, _)| m));
            row(
                &format!("get, zstd, {data}"),
                64,
                &run(&format!("zload-{data}"), 64, dir.path()),
            );
        }
    }
    if filters.is_empty() || filters.iter().any(|f| f == "args") {
        println!("big arguments: a hit of #[bucket_cache] fn f(data) -> u64, 64 MiB argument");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let floor = row("blake3, one thread (floor)", 64, &run("blake3", 64, dir.path()));
        if let (Some(t), Some(f)) = (
            row("blake3, two threads (2 subtrees)", 64, &run("blake3-2", 64, dir.path())),
            floor,
        ) {
            ratio("  ratio", 64, t, f, "blake3");
        }
        row(
            "drop of the owned 64 MiB argument",
            64,
            &run("drop-vec", 64, dir.path()),
        );
        for (mode, name) in [
            ("arg-vec", "hit, Vec<u8>"),
            ("arg-slice", "hit, &[u8]"),
            ("arg-bytes", "hit, serde_bytes::ByteBuf"),
            ("arg-floats", "hit, Vec<f64>"),
        ] {
            let ours = row(name, 64, &run(mode, 64, dir.path()));
            if let (Some(o), Some(f)) = (ours, floor) {
                ratio("  ratio", 64, o, f, "blake3");
            }
        }
    }
}
