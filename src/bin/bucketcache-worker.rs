//! A child process for the cross-process tests: reads and writes a bucket as told on its command line.
//!
//! ```text
//! bucketcache-worker write DIR FROM TO        insert keys FROM..TO with value Checked::new(key, 64 + key % 512)
//! bucketcache-worker read DIR FROM TO         read keys FROM..TO, print "hits N misses M bad B"
//! bucketcache-worker hammer DIR KEYS MILLIS   mixed 90% get / 10% insert on KEYS keys; print "ops N errors E bad B"
//! ```
//! Exit code 0 on success, 1 when a read returned a wrong value, 2 on usage errors.

use std::time::{Duration, Instant};

use bucketcache::Bucket;
use bucketcache_suite::fixtures::Checked;

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

fn run(args: &[String]) -> Result<i32, String> {
    let cmd = args
        .get(1)
        .ok_or("usage: bucketcache-worker write|read|hammer DIR ...")?;
    let dir = args.get(2).ok_or("missing DIR")?;
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
            let (mut ops, mut errors, mut bad) = (0u64, 0u64, 0u64);
            let mut x: u64 = u64::from(std::process::id()) | 1;
            while Instant::now() < until {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = x % keys;
                let want = &expected[k as usize];
                if x.is_multiple_of(10) {
                    if bucket.insert(&k, want).is_err() {
                        errors += 1;
                    }
                } else {
                    // Read from the file each time: the memory tier would hide other processes' writes.
                    bucket.unload_key(&k);
                    match bucket.get::<Checked>(&k) {
                        Ok(Some(v)) if v == *want => {}
                        Ok(None) => {}
                        Ok(Some(_)) => bad += 1,
                        Err(_) => errors += 1,
                    }
                }
                ops += 1;
            }
            println!("ops {ops} errors {errors} bad {bad}");
            Ok(if bad == 0 && errors == 0 { 0 } else { 1 })
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
