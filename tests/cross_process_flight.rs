//! Cross-process single flight: processes computing the same cold key compute it once; a killed computer does not
//! make the others wait forever; a wait limit bounds the wait on a live one. Every test runs through both
//! protocols: the byte-range locks of Linux (`ranges`) and the per-key lock files (`files`, forced in the children
//! by `BUCKETCACHE_FORCE_LOCK_FILES=1`; the only protocol elsewhere).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WORKER: &str = env!("CARGO_BIN_EXE_bucketcache-worker");

/// Which lock protocol the children use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// The platform's default (byte-range locks on Linux).
    Default,
    /// The per-key lock files.
    Files,
}

fn worker(protocol: Protocol) -> Command {
    let mut cmd = Command::new(WORKER);
    cmd.env(
        bucketcache::lock::FORCE_LOCK_FILES_VAR,
        if protocol == Protocol::Files { "1" } else { "0" },
    );
    cmd
}

/// A child computing key 7 with `get_or_compute_cross_process`: its body logs to `log` and sleeps `sleep_ms`.
fn flight(protocol: Protocol, dir: &Path, log: &Path, sleep_ms: u64, wait_ms: u64) -> Child {
    worker(protocol)
        .arg("flight")
        .arg(dir)
        .arg("7")
        .arg(log)
        .args([sleep_ms.to_string(), wait_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// The child's (value, waited ms).
fn finish(child: Child) -> (u64, u64) {
    let text = bucketcache_suite::child::success_output(child);
    let w: Vec<&str> = text.split_whitespace().collect();
    assert_eq!((w[0], w[2]), ("value", "waited_ms"), "{text}");
    (w[1].parse().expect("value"), w[3].parse().expect("ms"))
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn starts(log: &Path) -> usize {
    log_lines(log).iter().filter(|l| l.starts_with("start")).count()
}

fn wait_for_start(log: &Path, n: usize) {
    let until = Instant::now() + Duration::from_secs(20);
    while starts(log) < n {
        assert!(Instant::now() < until, "no computation started: {:?}", log_lines(log));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `body` once per protocol, as two tests.
macro_rules! both_protocols {
    ($($name:ident => $body:ident;)*) => {$(
        mod $name {
            #[test]
            fn ranges() {
                super::$body(super::Protocol::Default);
            }
            #[test]
            fn files() {
                super::$body(super::Protocol::Files);
            }
        }
    )*};
}

both_protocols! {
    four_processes_on_one_cold_key_compute_it_once => four_processes_once;
    a_killed_computer_hands_over_to_a_waiter => killed_computer_hands_over;
    a_waiter_computes_anyway_after_its_wait_limit => waiter_computes_after_limit;
    a_cached_function_in_four_processes_runs_once => cached_function_runs_once;
}

fn four_processes_once(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("body.log");
    let bucket_dir = dir.path().join("bucket");
    let children: Vec<Child> = (0..4)
        .map(|_| flight(protocol, &bucket_dir, &log, 500, 60_000))
        .collect();
    let results: Vec<(u64, u64)> = children.into_iter().map(finish).collect();
    let lines = log_lines(&log);
    println!(
        "single flight, 4 processes: body ran {} time(s); (value, waited ms): {results:?}",
        starts(&log)
    );
    assert_eq!(starts(&log), 1, "{lines:?}");
    let computer: u64 = lines[0].split_whitespace().nth(1).expect("pid").parse().expect("pid");
    assert!(
        results.iter().all(|(v, _)| *v == computer),
        "every process returns the computed value"
    );
    let (fans, left) = lock_files(&bucket_dir.join("locks-v1"));
    assert_eq!(left, 0, "no per-key lock file is left behind ({protocol:?})");
    if protocol == Protocol::Files || cfg!(not(target_os = "linux")) {
        assert_eq!(fans, 1, "the per-key protocol ran: the key's lock fan-out exists");
    } else {
        assert_eq!(fans, 0, "the byte-range protocol creates no per-key file");
        assert!(bucket_dir.join("locks-v1").join("ranges.lock").is_file());
    }
}

/// The per-key lock fan-out directories under `locks`, and the files left in them.
fn lock_files(locks: &Path) -> (usize, usize) {
    let Ok(items) = std::fs::read_dir(locks) else {
        return (0, 0);
    };
    let fans: Vec<_> = items.flatten().filter(|f| f.path().is_dir()).collect();
    let left = fans
        .iter()
        .map(|f| std::fs::read_dir(f.path()).map(|d| d.count()).unwrap_or(0))
        .sum();
    (fans.len(), left)
}

fn killed_computer_hands_over(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("body.log");
    let bucket_dir = dir.path().join("bucket");
    let mut first = flight(protocol, &bucket_dir, &log, 60_000, 60_000);
    wait_for_start(&log, 1);
    let waiters: Vec<Child> = (0..2)
        .map(|_| flight(protocol, &bucket_dir, &log, 300, 60_000))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(starts(&log), 1, "the others wait while the first computes");
    let killed_at = Instant::now();
    first.kill().expect("SIGKILL");
    first.wait().expect("wait");
    let results: Vec<(u64, u64)> = waiters.into_iter().map(finish).collect();
    let handover = killed_at.elapsed();
    let lines = log_lines(&log);
    println!(
        "single flight, computer killed: the waiters finished {handover:?} after the kill; body runs {}; \
         (value, waited ms): {results:?}",
        starts(&log)
    );
    assert_eq!(starts(&log), 2, "exactly one waiter took over: {lines:?}");
    let second: u64 = lines[1].split_whitespace().nth(1).expect("pid").parse().expect("pid");
    assert!(results.iter().all(|(v, _)| *v == second), "{results:?} {lines:?}");
    assert!(
        handover < Duration::from_secs(15),
        "the lock was released with the process, long before the 60 s wait limit"
    );
}

fn waiter_computes_after_limit(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("body.log");
    let bucket_dir = dir.path().join("bucket");
    let slow = flight(protocol, &bucket_dir, &log, 4_000, 60_000);
    wait_for_start(&log, 1);
    let impatient = flight(protocol, &bucket_dir, &log, 0, 300);
    let (value, waited) = finish(impatient);
    println!("single flight, wait limit 300 ms: the waiter gave up after {waited} ms and computed");
    assert!(waited < 3_000, "gave up at its limit, not when the computer finished");
    let (slow_value, _) = finish(slow);
    assert_ne!(value, slow_value, "both computed");
    assert_eq!(starts(&log), 2);
}

fn cached_function_runs_once(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("body.log");
    let bucket_dir = dir.path().join("bucket");
    let children: Vec<Child> = (0..4)
        .map(|_| {
            worker(protocol)
                .arg("attr-flight")
                .arg(&bucket_dir)
                .arg(&log)
                .arg("500")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let results: Vec<(u64, u64)> = children.into_iter().map(finish).collect();
    println!(
        "single flight, #[bucket_cache] in 4 processes: body ran {} time(s); (value, ms): {results:?}",
        starts(&log)
    );
    assert_eq!(starts(&log), 1, "{:?}", log_lines(&log));
    assert!(results.windows(2).all(|w| w[0].0 == w[1].0), "{results:?}");
}
