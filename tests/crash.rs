//! Crash: a child process rewriting many entries is killed with SIGKILL at random moments. Afterwards every entry
//! reads as missing or as exactly a value that was written, `prune_directory` removes the temporary files the
//! killed writers left, and the bucket keeps working.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bucketcache::Bucket;
use bucketcache_suite::fixtures::Generation;

const WORKER: &str = env!("CARGO_BIN_EXE_bucketcache-worker");
/// Runs at least this many kills.
const RUNS: u32 = 24;
/// And more, up to this many, until some kill has left a temporary file (about one kill in twenty does).
const MAX_RUNS: u32 = 400;
const KEYS: u64 = 64;

fn temp_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(root.join(bucketcache::store::ENTRIES_DIR))
        .expect("list")
        .flatten()
    {
        for f in std::fs::read_dir(fan.path()).expect("list fan").flatten() {
            if f.file_name()
                .to_string_lossy()
                .starts_with(bucketcache::store::TEMP_PREFIX)
            {
                out.push(f.path());
            }
        }
    }
    out
}

#[test]
fn entries_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8 path");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos() as u64
        | 1;
    println!("crash: seed {seed}");
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut hits, mut misses) = (0u64, 0u64);
    let started = Instant::now();
    let mut runs = 0;
    // A kill must land inside a write at least once, or there is nothing for prune to clean up below.
    while runs < RUNS || (runs < MAX_RUNS && temp_files(dir.path()).is_empty()) {
        let run = runs;
        runs += 1;
        let mut child = Command::new(WORKER)
            .args(["crash-write", d, &KEYS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "started", "run {run}");
        std::thread::sleep(Duration::from_millis(1 + rand() % 200));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(
            status.code().is_none(),
            "run {run}: the child was killed, not exited: {status}"
        );

        // A fresh bucket (empty memory tier), as the next run of a program would open.
        let bucket = Bucket::new(d).expect("bucket");
        for key in 0..KEYS {
            match bucket.get::<Generation>(&key) {
                Ok(Some(v)) => {
                    assert_eq!(v.key, key, "run {run}: another key's value");
                    assert!(
                        v.is_exact(),
                        "run {run}: key {key} holds a value that was never written"
                    );
                    hits += 1;
                }
                Ok(None) => misses += 1,
                Err(e) => panic!("run {run}: key {key}: {e}"),
            }
        }
    }

    let left_files = temp_files(dir.path());
    let left = left_files.len();
    assert!(
        left > 0,
        "no kill in {runs} runs landed inside a write (no temporary file left): nothing for prune to remove"
    );
    let bucket = Bucket::new(d).expect("bucket");
    let pruned = bucket.prune_directory().expect("prune");
    let after = temp_files(dir.path());
    println!(
        "crash: {runs} SIGKILLed runs in {:?}; {} reads after the kills: {hits} exact values, {misses} misses, \
         0 wrong; {left} temporary files left by killed writers, prune removed {} files ({} bytes)",
        started.elapsed(),
        hits + misses,
        pruned.num,
        pruned.size,
    );
    assert!(after.is_empty(), "prune left temporary files: {after:?}");
    for f in &left_files {
        assert!(!f.exists(), "prune left {}", f.display());
    }
    assert!(
        pruned.num >= left as u64,
        "prune counted {} removals for {left} temporary files",
        pruned.num
    );
    // Every entry is still readable after the prune, and the bucket takes writes.
    for key in 0..KEYS {
        if let Some(v) = bucket.get::<Generation>(&key).expect("get") {
            assert!(v.key == key && v.is_exact());
        }
        bucket.insert(&key, &Generation::new(key, 0)).expect("insert");
    }
    bucket.unload_all();
    for key in 0..KEYS {
        assert_eq!(
            bucket.get::<Generation>(&key).expect("get"),
            Some(Generation::new(key, 0))
        );
    }
}
