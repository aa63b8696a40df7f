//! In-process single-flight: concurrent callers of one cold key run the body once and the others get its value;
//! different keys do not wait on each other; a leader that stores nothing (an error, a panic) lets the next caller
//! run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier, LazyLock, Mutex};
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

static SLOW: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn slow(x: u64) -> u64 {
    SLOW.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    x * 3
}

#[test]
fn one_cold_key_runs_once() {
    let start = Barrier::new(8);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    slow(14)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread"), 42);
        }
    });
    assert_eq!(SLOW.load(Ordering::SeqCst), 1);
}

/// Each call announces that its body started, then waits (up to 10 s) for the other key's body to start too.
static STARTED: LazyLock<Mutex<Option<mpsc::Sender<u8>>>> = LazyLock::new(|| Mutex::new(None));

#[bucket_cache(bucket = BUCKET, ignore(other_started))]
fn rendezvous(id: u8, other_started: &Mutex<mpsc::Receiver<u8>>) -> bool {
    if let Some(tx) = STARTED.lock().expect("lock").as_ref() {
        tx.send(id).expect("send");
    }
    other_started
        .lock()
        .expect("lock")
        .recv_timeout(Duration::from_secs(10))
        .is_ok()
}

#[test]
fn different_keys_do_not_wait_on_each_other() {
    // The router passes "1 started" to 2's body and "2 started" to 1's: each body can finish only once the
    // other one has started, so if one key waited for the other, both would time out.
    let (tx, rx) = mpsc::channel();
    *STARTED.lock().expect("lock") = Some(tx);
    let (to_a, from_b) = mpsc::channel();
    let (to_b, from_a) = mpsc::channel();
    let router = std::thread::spawn(move || {
        for _ in 0..2 {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(1) => to_b.send(1).expect("route"),
                Ok(_) => to_a.send(2).expect("route"),
                Err(_) => return,
            }
        }
    });
    let (wait_a, wait_b) = (Mutex::new(from_b), Mutex::new(from_a));
    std::thread::scope(|s| {
        let a = s.spawn(|| rendezvous(1, &wait_a));
        let b = s.spawn(|| rendezvous(2, &wait_b));
        assert!(a.join().expect("a"), "key 1's body saw key 2's body start");
        assert!(b.join().expect("b"), "key 2's body saw key 1's body start");
    });
    router.join().expect("router");
}

static FLAKY: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn flaky(x: u8) -> Result<u8, String> {
    let n = FLAKY.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    if n == 0 {
        Err("first try fails".into())
    } else {
        Ok(x)
    }
}

#[test]
fn a_leader_that_stores_nothing_releases_the_next() {
    let start = Barrier::new(4);
    let results: Vec<Result<u8, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    flaky(5)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let errors = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(errors, 1, "{results:?}");
    assert_eq!(
        FLAKY.load(Ordering::SeqCst),
        2,
        "the error was retried once, then cached"
    );
}

static PANICKY: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn panicky(x: u8) -> u8 {
    if PANICKY.fetch_add(1, Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(100));
        panic!("the first run panics");
    }
    x
}

#[test]
fn a_panicking_leader_releases_the_waiters() {
    let start = Barrier::new(3);
    let results: Vec<std::thread::Result<u8>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    panicky(8)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert!(results.iter().flatten().all(|&v| v == 8));
    assert_eq!(PANICKY.load(Ordering::SeqCst), 2);
}

mod reentrant {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::LazyLock;

    use bucketcache::{bucket_cache, Bucket};

    static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
    static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    /// Retries by calling itself with the same key (the counter is ignored): must not wait for itself.
    #[bucket_cache(bucket = BUCKET, ignore(attempt))]
    fn fetch(x: u32, attempt: u32) -> u32 {
        CALLS.fetch_add(1, Ordering::SeqCst);
        if attempt < 2 {
            return fetch(x, attempt + 1);
        }
        x * 10
    }

    #[test]
    fn a_function_calling_itself_with_the_same_key_does_not_deadlock() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(fetch(4, 0)).expect("send"));
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("no deadlock");
        assert_eq!(got, 40);
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        assert_eq!(fetch(4, 0), 40, "then a hit");
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    }
}
