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
fn a_value_read_as_another_type_falls_back_to_the_file() {
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
