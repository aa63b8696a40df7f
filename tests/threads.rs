//! Concurrency inside one process: threads on one cold key compute it once; threads on different keys do not
//! wait for each other (their bodies meet at a rendezvous). Timings are measured and printed, never asserted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use bucketcache::{Bucket, CrossFlight};
use bucketcache_suite::fixtures::Checked;

const THREADS: usize = 8;
const BODY: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(30);
/// How long the bodies on different keys have to all be running at once (generous: they start together).
const RENDEZVOUS: Duration = Duration::from_secs(20);

#[test]
fn eight_threads_on_one_cold_key_run_the_body_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let key = bucket.key_hash("one cold key").expect("hash");
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    let started = Instant::now();
    let values: Vec<Checked> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    bucket.get_or_compute_cross_process(&key, WAIT, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(BODY);
                        Checked::new(42, 1000)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    println!(
        "threads, one cold key: {THREADS} threads, body ({BODY:?}) ran {} time(s), all done in {:?}",
        runs.load(Ordering::SeqCst),
        started.elapsed()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(values.iter().all(|v| *v == Checked::new(42, 1000)));
}

#[test]
fn threads_on_different_keys_do_not_serialize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let keys: Vec<_> = (0..THREADS as u64)
        .map(|k| bucket.key_hash(&k).expect("hash"))
        .collect();

    // Computations: 8 bodies on 8 keys, each of which can finish only once all 8 have started (a rendezvous with
    // a shared deadline). If one key's computation waited for another's (a global lock, a lock taken for the
    // wrong key), the bodies would run one after another and all of them would miss the rendezvous.
    let arrived = (Mutex::new(0usize), Condvar::new());
    let deadline = Instant::now() + RENDEZVOUS;
    let rendezvous = || {
        let (count, all_here) = &arrived;
        let mut n = count.lock().expect("lock");
        *n += 1;
        all_here.notify_all();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (n, _) = all_here.wait_timeout_while(n, timeout, |n| *n < THREADS).expect("wait");
        *n == THREADS
    };
    let barrier = Barrier::new(THREADS);
    let started = Instant::now();
    let met: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .iter()
            .map(|key| {
                let (bucket, barrier, rendezvous) = (&bucket, &barrier, &rendezvous);
                s.spawn(move || {
                    barrier.wait();
                    bucket.get_or_compute_cross_process(key, WAIT, || {
                        let met = rendezvous();
                        std::thread::sleep(BODY);
                        met
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let parallel = started.elapsed();
    println!(
        "threads, {THREADS} keys: {THREADS} bodies met at a rendezvous: {met:?}; finished in {parallel:?} (serialized \
         would take {:?})",
        BODY * THREADS as u32
    );
    assert!(
        met.iter().all(|m| *m),
        "every body ran while all the others had started too (within {RENDEZVOUS:?}): {met:?}"
    );

    // Plain I/O: each thread writes and reads its own key from the file; the same work on one thread.
    const OPS: usize = 200;
    let work = |k: u64| {
        for i in 0..OPS {
            bucket.insert(&k, &Checked::new(i as u64, 256)).expect("insert");
            bucket.unload_key(&k);
            assert!(bucket.get::<Checked>(&k).expect("get").is_some());
        }
    };
    let started = Instant::now();
    for k in 100..100 + THREADS as u64 {
        work(k);
    }
    let one_thread = started.elapsed();
    let barrier = Barrier::new(THREADS);
    let started = Instant::now();
    std::thread::scope(|s| {
        for k in 200..200 + THREADS as u64 {
            let (work, barrier) = (&work, &barrier);
            s.spawn(move || {
                barrier.wait();
                work(k)
            });
        }
    });
    let many = started.elapsed();
    println!(
        "threads, {THREADS} keys: {} insert+get from file on 1 thread {one_thread:?}, on {THREADS} threads {many:?} \
         (speed-up {:.2}x on {} cores)",
        OPS * THREADS,
        one_thread.as_secs_f64() / many.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Nothing is asserted about the I/O timings; every computed key holds its value.
    for key in &keys {
        assert!(
            matches!(bucket.begin_cross_process_flight::<bool>(key, Duration::ZERO), CrossFlight::Hit(h) if h.value)
        );
    }
}
