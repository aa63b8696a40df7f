//! Two processes on one directory: what one writes, the other reads, and concurrent writers and readers never
//! see a wrong value.

use std::process::Command;

const WORKER: &str = env!("CARGO_BIN_EXE_bucketcache-worker");

fn worker(args: &[&str]) -> String {
    let out = Command::new(WORKER).args(args).output().expect("spawn worker");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "worker {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_child_process_reads_what_the_parent_wrote_and_the_reverse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8 path");
    let bucket = bucketcache::Bucket::new(d).expect("bucket");
    for k in 0..100u64 {
        bucket
            .insert(
                &k,
                &bucketcache_suite::fixtures::Checked::new(k, 64 + (k % 512) as usize),
            )
            .expect("insert");
    }
    assert_eq!(worker(&["read", d, "0", "100"]).trim(), "hits 100 misses 0 bad 0");
    worker(&["write", d, "100", "200"]);
    for k in 100..200u64 {
        let v = bucket
            .get::<bucketcache_suite::fixtures::Checked>(&k)
            .expect("get")
            .expect("written by the child");
        assert!(v.is_intact());
        assert_eq!(v, bucketcache_suite::fixtures::Checked::new(k, 64 + (k % 512) as usize));
    }
}

#[test]
fn concurrent_processes_never_read_a_wrong_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8 path").to_owned();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(WORKER)
                .args(["hammer", &d, "50", "1500"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let (mut ops, mut hits, mut misses) = (0u64, 0u64, 0u64);
    for child in children {
        let text = bucketcache_suite::child::success_output(child);
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields.len(), 10, "{text}");
        assert_eq!(
            [fields[0], fields[2], fields[4], fields[6], fields[8]],
            ["ops", "hits", "misses", "errors", "bad"],
            "{text}"
        );
        assert_eq!(fields[6..], ["errors", "0", "bad", "0"], "{text}");
        let n = |i: usize| {
            fields[i]
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{text}: field {i}: {e}"))
        };
        ops += n(1);
        hits += n(3);
        misses += n(5);
    }
    println!("cross process: 3 processes, {ops} operations, {hits} hits (exact values), {misses} misses, 0 wrong");
    // A reader that always missed would never see a wrong value: the hits show the reads were checked.
    assert!(hits > 0, "no read hit: {ops} operations, {misses} misses");
}
