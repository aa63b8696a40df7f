//! The in-memory tier: hits touch no file, `unload_key` drops only memory, and the tier stays within its bound.

use bucketcache::{Bucket, HitSource};

#[test]
fn a_memory_hit_touches_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("k", &vec![1u64, 2, 3]).expect("insert");
    let hash = bucket.key_hash("k").expect("hash");
    // Make the file unreadable as an entry: a hit must still come from memory.
    std::fs::write(bucket.entry_path(&hash), b"not an entry").expect("write");
    let hit = bucket.lookup::<Vec<u64>>(&hash).expect("lookup").expect("hit");
    assert_eq!(hit.source, HitSource::Memory);
    assert_eq!(hit.value, vec![1, 2, 3]);
    // unload_key drops it from memory and leaves the file: now the (corrupt) file decides.
    bucket.unload_key("k");
    assert_eq!(bucket.get::<Vec<u64>>("k").expect("get"), None);
    assert!(bucket.entry_path(&hash).exists());
}

#[test]
fn a_disk_hit_fills_the_memory_tier() {
    let dir = tempfile::tempdir().expect("tempdir");
    Bucket::new(dir.path())
        .expect("bucket")
        .insert("k", &5u32)
        .expect("insert");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let hash = bucket.key_hash("k").expect("hash");
    assert_eq!(
        bucket.lookup::<u32>(&hash).expect("lookup").expect("hit").source,
        HitSource::Disk
    );
    assert_eq!(
        bucket.lookup::<u32>(&hash).expect("lookup").expect("hit").source,
        HitSource::Memory
    );
}

#[test]
fn the_memory_tier_stays_within_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bound = 256 * 1024;
    let bucket = Bucket::builder(dir.path())
        .memory_max_bytes(bound)
        .build()
        .expect("bucket");
    for i in 0..2_000u32 {
        bucket.insert(&i, &vec![i; 256]).expect("insert");
    }
    let (entries, bytes) = bucket.memory_usage();
    assert!(bytes <= bound, "{bytes} bytes held for a bound of {bound}");
    assert!(entries > 0 && entries < 2_000, "{entries} entries held");
    // Evicted entries still read from disk.
    for i in (0..2_000u32).step_by(97) {
        assert_eq!(bucket.get::<Vec<u32>>(&i).expect("get"), Some(vec![i; 256]));
    }
}

#[test]
fn a_zero_bound_disables_the_tier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    bucket.insert("k", &1u8).expect("insert");
    let hash = bucket.key_hash("k").expect("hash");
    assert_eq!(bucket.memory_usage(), (0, 0));
    assert_eq!(
        bucket.lookup::<u8>(&hash).expect("lookup").expect("hit").source,
        HitSource::Disk
    );
}

#[test]
fn a_value_held_as_another_type_is_read_from_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .backend(bucketcache::JsonBackend::new())
        .build()
        .expect("bucket");
    let hash = bucket.key_hash("k").expect("hash");
    // Held in memory as Vec<u32> only (no bytes): a read as Vec<u64> must go to the file.
    bucket.insert_typed(&hash, &vec![1u32, 2], None, None).expect("insert");
    let hit = bucket.lookup::<Vec<u64>>(&hash).expect("lookup").expect("hit");
    assert_eq!((hit.value, hit.source), (vec![1u64, 2], HitSource::Disk));
}

#[test]
fn a_value_can_be_read_as_another_compatible_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .backend(bucketcache::JsonBackend::new())
        .build()
        .expect("bucket");
    bucket.insert("k", &vec![1u32, 2]).expect("insert");
    assert_eq!(bucket.get::<Vec<u32>>("k").expect("get"), Some(vec![1, 2]));
    assert_eq!(
        bucket.get::<Vec<u64>>("k").expect("get"),
        Some(vec![1, 2]),
        "JSON numbers decode as u64 too"
    );
    assert_eq!(bucket.get::<Vec<u32>>("k").expect("get"), Some(vec![1, 2]));
}

#[test]
fn a_thread_sees_another_threads_write_after_its_own_memory_hits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = std::sync::Arc::new(Bucket::new(dir.path()).expect("bucket"));
    bucket.insert("k", &1u32).expect("insert");
    let (to_reader, reads) = std::sync::mpsc::channel::<()>();
    let (to_main, done) = std::sync::mpsc::channel::<u32>();
    let b = std::sync::Arc::clone(&bucket);
    let reader = std::thread::spawn(move || {
        for _ in 0..2 {
            reads.recv().expect("go");
            // Twice per round: the second read is served by this thread's per-thread cache.
            let _ = b.get::<u32>("k").expect("get");
            to_main
                .send(b.get::<u32>("k").expect("get").expect("present"))
                .expect("send");
        }
    });
    to_reader.send(()).expect("send");
    assert_eq!(done.recv().expect("value"), 1);
    bucket.insert("k", &2u32).expect("insert");
    to_reader.send(()).expect("send");
    assert_eq!(
        done.recv().expect("value"),
        2,
        "the other thread must not serve its cached copy"
    );
    reader.join().expect("reader");
    bucket.remove("k").expect("remove");
    assert_eq!(bucket.get::<u32>("k").expect("get"), None);
}

#[test]
fn slow_reads_never_put_back_a_replaced_value() {
    // Readers keep dropping the key from memory and reading the file, racing a writer that rewrites it. After each
    // write the writer must read its own value or a newer one: a reader's slow load must not restore an older one.
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = std::sync::Arc::new(Bucket::new(dir.path()).expect("bucket"));
    bucket.insert("k", &0u64).expect("insert");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (b, stop) = (std::sync::Arc::clone(&bucket), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    b.unload_key("k");
                    let _ = b.get::<u64>("k").expect("get");
                }
            })
        })
        .collect();
    let mut stale = 0;
    for i in 1..=400u64 {
        bucket.insert("k", &i).expect("insert");
        for _ in 0..5 {
            let seen = bucket.get::<u64>("k").expect("get").expect("present");
            if seen < i {
                stale += 1;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader");
    }
    assert_eq!(stale, 0, "reads older than the reader's own last write");
}
