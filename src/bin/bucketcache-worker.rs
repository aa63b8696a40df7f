//! A child process for the cross-process tests: reads and writes a bucket as told on its command line.
//!
//! ```text
//! bucketcache-worker write DIR FROM TO        insert keys FROM..TO with value Checked::new(key, 64 + key % 512)
//! bucketcache-worker read DIR FROM TO         read keys FROM..TO, print "hits N misses M bad B"
//! bucketcache-worker hammer DIR KEYS MILLIS [memory]  mixed 90% get / 10% insert on KEYS keys;
//!                                             print "ops N hits H misses M errors E bad B"
//!                                             (reads from the files unless `memory`: then the memory tier may serve them)
//! bucketcache-worker torn-write DIR MILLIS    rewrite key "torn" with Checked::new(len, len), len from 1 B to 1 MiB,
//!                                             for MILLIS after the first write (then "ready"); print "writes N"
//! bucketcache-worker torn-read DIR MILLIS     read key "torn" from its file (memory tier unloaded) until MILLIS pass;
//!                                             print "reads N hits H misses M torn T errors E"
//! bucketcache-worker crash-write DIR KEYS     forever: rewrite keys 0..KEYS with Generation::new(key, generation)
//!                                             (prints "started" once the bucket is open)
//! bucketcache-worker flight DIR KEY LOG SLEEP_MS WAIT_MS
//!                                             get_or_compute_cross_process(KEY): the body appends "start PID" to LOG,
//!                                             sleeps SLEEP_MS, appends "end PID"; print "value V waited_ms W"
//! bucketcache-worker attr-flight DIR LOG SLEEP_MS
//!                                             as flight, through a #[bucket_cache] function (default single flight)
//! bucketcache-worker probe DIR KEY            open, insert KEY, get KEY; print one "step: ok|err ..." line each
//! bucketcache-worker fill DIR                 insert 4 KiB values until the disk is full, check what was stored,
//!                                             free space, insert again; print a report (for a tiny tmpfs)
//! ```
//! Exit code 0 on success, 1 when a read returned a wrong value, 2 on usage errors.

use std::io::Write;
use std::time::{Duration, Instant};

use bucketcache::Bucket;
use bucketcache_suite::fixtures::{Checked, Generation};

fn value_for(key: u64) -> Checked {
    Checked::new(key, 64 + (key % 512) as usize)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bucketcache-worker: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn num(args: &[String], i: usize) -> Result<u64, String> {
    args.get(i)
        .ok_or_else(|| format!("missing argument {i}"))?
        .parse()
        .map_err(|e| format!("argument {i}: {e}"))
}

/// A small xorshift generator: children need cheap randomness, not a dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((t ^ u64::from(std::process::id()).rotate_left(32)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Sizes from 1 B to 1 MiB, spread evenly over their logarithm.
fn torn_len(rng: &mut Rng) -> usize {
    let bits = rng.next() % 21; // 2^0 ..= 2^20
    let base = 1usize << bits;
    (base + (rng.next() as usize % base)).min(1 << 20)
}

fn run(args: &[String]) -> Result<i32, String> {
    let cmd = args.get(1).ok_or(
        "usage: bucketcache-worker write|read|hammer|torn-write|torn-read|crash-write|flight|probe|fill DIR ...",
    )?;
    let dir = args.get(2).ok_or("missing DIR")?;
    if cmd == "probe" {
        return probe(dir, num(args, 3)?);
    }
    let bucket = Bucket::new(dir).map_err(|e| e.to_string())?;
    match cmd.as_str() {
        "write" => {
            for k in num(args, 3)?..num(args, 4)? {
                bucket.insert(&k, &value_for(k)).map_err(|e| e.to_string())?;
            }
            Ok(0)
        }
        "read" => {
            let (mut hits, mut misses, mut bad) = (0u64, 0u64, 0u64);
            for k in num(args, 3)?..num(args, 4)? {
                match bucket.get::<Checked>(&k) {
                    Ok(Some(v)) if v == value_for(k) => hits += 1,
                    Ok(Some(_)) | Err(_) => bad += 1,
                    Ok(None) => misses += 1,
                }
            }
            println!("hits {hits} misses {misses} bad {bad}");
            Ok(if bad == 0 { 0 } else { 1 })
        }
        "hammer" => {
            let keys = num(args, 3)?.max(1);
            // Expected values computed once, so the loop measures the cache, not the fixture.
            let expected: Vec<Checked> = (0..keys).map(value_for).collect();
            let until = Instant::now() + Duration::from_millis(num(args, 4)?);
            // `memory` (optional 5th argument): reads may be served by this process's memory tier.
            let from_files = args.get(5).map(String::as_str) != Some("memory");
            let (mut ops, mut hits, mut misses, mut errors, mut bad) = (0u64, 0u64, 0u64, 0u64, 0u64);
            let (mut inserts, mut insert_time) = (0u64, Duration::ZERO);
            let mut x: u64 = u64::from(std::process::id()) | 1;
            while Instant::now() < until {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = x % keys;
                let want = &expected[k as usize];
                // The choice of operation takes other bits than the key: with `x % 10` and a key count that is a
                // multiple of 10, only keys ending in 0 were ever written, and only the others read (no hit ever).
                if (x >> 32).is_multiple_of(10) {
                    let started = Instant::now();
                    if bucket.insert(&k, want).is_err() {
                        errors += 1;
                    }
                    insert_time += started.elapsed();
                    inserts += 1;
                } else {
                    // Read from the file each time: the memory tier would hide other processes' writes.
                    if from_files {
                        bucket.unload_key(&k);
                    }
                    match bucket.get::<Checked>(&k) {
                        Ok(Some(v)) if v == *want => hits += 1,
                        Ok(None) => misses += 1,
                        Ok(Some(_)) => bad += 1,
                        Err(_) => errors += 1,
                    }
                }
                ops += 1;
            }
            println!("ops {ops} hits {hits} misses {misses} errors {errors} bad {bad}");
            eprintln!(
                "inserts {inserts} taking {:.0} ms of the run ({:.1} µs each)",
                insert_time.as_secs_f64() * 1e3,
                insert_time.as_secs_f64() * 1e6 / inserts.max(1) as f64
            );
            Ok(if bad == 0 && errors == 0 { 0 } else { 1 })
        }
        "torn-write" => {
            let millis = num(args, 3)?;
            let mut rng = Rng::seeded();
            // Built once: in a debug build, making a 1 MiB value costs more than writing it.
            let mut values: Vec<Checked> = (0..48)
                .map(|_| {
                    let len = torn_len(&mut rng);
                    Checked::new(len as u64, len)
                })
                .collect();
            values.push(Checked::new(1, 1));
            values.push(Checked::new(1 << 20, 1 << 20));
            bucket.insert("torn", &values[0]).map_err(|e| e.to_string())?;
            println!("ready");
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            let mut writes = 1u64;
            // Readers start now and read for MILLIS: outlast them a little.
            let until = Instant::now() + Duration::from_millis(millis + 200);
            while Instant::now() < until {
                let value = &values[(rng.next() % values.len() as u64) as usize];
                bucket.insert("torn", value).map_err(|e| e.to_string())?;
                writes += 1;
            }
            println!("writes {writes}");
            Ok(0)
        }
        "torn-read" => {
            let until = Instant::now() + Duration::from_millis(num(args, 3)?);
            let (mut reads, mut hits, mut misses, mut torn, mut errors) = (0u64, 0u64, 0u64, 0u64, 0u64);
            while Instant::now() < until {
                bucket.unload_key("torn");
                match bucket.get::<Checked>("torn") {
                    Ok(None) => misses += 1,
                    // A whole written value is exactly Checked::new(len, len), and its own checksum holds.
                    Ok(Some(v)) if v.is_intact() && v == Checked::new(v.data.len() as u64, v.data.len()) => hits += 1,
                    Ok(Some(_)) => torn += 1,
                    Err(e) => {
                        errors += 1;
                        eprintln!("read error: {e}");
                    }
                }
                reads += 1;
            }
            println!("reads {reads} hits {hits} misses {misses} torn {torn} errors {errors}");
            Ok(if torn == 0 && errors == 0 { 0 } else { 1 })
        }
        "crash-write" => {
            let keys = num(args, 3)?.max(1);
            println!("started");
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            let mut rng = Rng::seeded();
            // Each key's generations start at a random point, so runs after a kill write new values.
            let base = rng.next() % 1_000_000;
            for generation in base.. {
                for key in 0..keys {
                    bucket
                        .insert(&key, &Generation::new(key, generation))
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(0)
        }
        "flight" => {
            let key = bucket.key_hash(&num(args, 3)?).map_err(|e| e.to_string())?;
            let log = args.get(4).ok_or("missing LOG")?.clone();
            let sleep = Duration::from_millis(num(args, 5)?);
            let wait = Duration::from_millis(num(args, 6)?);
            let started = Instant::now();
            let value = bucket.get_or_compute_cross_process(&key, wait, || {
                let note = |what: &str| {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .expect("open the log");
                    writeln!(f, "{what} {}", std::process::id()).expect("append to the log");
                };
                note("start");
                std::thread::sleep(sleep);
                note("end");
                u64::from(std::process::id())
            });
            println!("value {value} waited_ms {}", started.elapsed().as_millis());
            Ok(0)
        }
        "fill" => fill(&bucket),
        "attr-flight" => {
            let log = args.get(3).ok_or("missing LOG")?;
            let sleep = num(args, 4)?;
            let _ = ATTR_DIR.set(dir.into());
            let started = Instant::now();
            let value = cached_by_attribute(7, log, sleep);
            println!("value {value} waited_ms {}", started.elapsed().as_millis());
            Ok(0)
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

static ATTR_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
static ATTR_BUCKET: std::sync::LazyLock<Bucket> = std::sync::LazyLock::new(|| {
    Bucket::new(ATTR_DIR.get().expect("the directory is set first")).expect("open the bucket")
});

/// A cached function: its body logs "start PID" / "end PID" to `log` around a sleep and returns the pid.
#[bucketcache::bucket_cache(bucket = ATTR_BUCKET, ignore(log, sleep_ms))]
fn cached_by_attribute(key: u64, log: &str, sleep_ms: u64) -> u64 {
    let note = |what: &str| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the log");
        writeln!(f, "{what} {}", std::process::id()).expect("append to the log");
    };
    note("start");
    std::thread::sleep(Duration::from_millis(sleep_ms));
    note("end");
    let _ = key;
    u64::from(std::process::id())
}

fn step<T, E: std::fmt::Display>(name: &str, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => {
            println!("{name}: ok");
            Some(v)
        }
        Err(e) => {
            println!("{name}: err {e}");
            None
        }
    }
}

/// Opens, writes and reads one key, reporting each step; never fails itself.
fn probe(dir: &str, key: u64) -> Result<i32, String> {
    let Some(bucket) = step("open", Bucket::new(dir)) else {
        return Ok(0);
    };
    step("insert", bucket.insert(&key, &value_for(key)));
    bucket.unload_key(&key);
    match bucket.get::<Checked>(&key) {
        Ok(Some(v)) if v == value_for(key) => println!("get: hit"),
        Ok(Some(_)) => {
            println!("get: wrong value");
            return Ok(1);
        }
        Ok(None) => println!("get: miss"),
        Err(e) => println!("get: err {e}"),
    }
    Ok(0)
}

/// Fills the file system under the bucket, then checks that the cache failed cleanly and recovers.
fn fill(bucket: &Bucket) -> Result<i32, String> {
    let mut stored = 0u64;
    let error = loop {
        match bucket.insert(&stored, &Checked::new(stored, 4096)) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        if stored > 1_000_000 {
            return Err("the file system never filled".into());
        }
    };
    println!("stored {stored}");
    println!("error {error}");
    // The failed write left no temporary file and every stored entry reads back whole.
    bucket.unload_all();
    let mut intact = 0u64;
    for k in 0..stored {
        if bucket.get::<Checked>(&k).map_err(|e| e.to_string())? == Some(Checked::new(k, 4096)) {
            intact += 1;
        }
    }
    println!("intact {intact}");
    let temps = count_temp_files(bucket.path());
    println!("temp_files {temps}");
    // Free space, and the cache works again.
    for k in 0..stored.div_ceil(2) {
        bucket.remove(&k).map_err(|e| e.to_string())?;
    }
    let again = bucket.insert(&u64::MAX, &Checked::new(7, 4096));
    println!("after_free {}", if again.is_ok() { "ok" } else { "err" });
    let back = bucket.get::<Checked>(&u64::MAX).map_err(|e| e.to_string())?;
    println!(
        "read_back {}",
        if back == Some(Checked::new(7, 4096)) {
            "ok"
        } else {
            "bad"
        }
    );
    Ok(0)
}

fn count_temp_files(root: &std::path::Path) -> usize {
    let Ok(fans) = std::fs::read_dir(root.join(bucketcache::store::ENTRIES_DIR)) else {
        return 0;
    };
    fans.flatten()
        .filter_map(|fan| std::fs::read_dir(fan.path()).ok())
        .flat_map(|files| files.flatten())
        .filter(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with(bucketcache::store::TEMP_PREFIX)
        })
        .count()
}
