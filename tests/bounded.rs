//! Size-bounded buckets: `BucketBuilder::max_size` and `max_entries` evict the least recently written entries.

use std::path::Path;
use std::time::Duration;

use bucketcache::scan::{self, FileKind};
use bucketcache::{Bucket, ManualClock};

/// Bytes and number of entry files in a bucket directory, counted from the file system.
fn disk_usage(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut entries = 0;
    for file in scan::walk(&scan::entries_dir(dir)).expect("walk") {
        let file = file.expect("listable");
        if let FileKind::Entry(_) = file.kind {
            bytes += std::fs::metadata(&file.path).expect("stat").len();
            entries += 1;
        }
    }
    (bytes, entries)
}

fn payload(i: u32) -> Vec<u8> {
    // Sizes vary between 600 and 1400 bytes so eviction has to count bytes, not entries.
    vec![i as u8; 600 + (i as usize * 37) % 800]
}

#[test]
fn many_writes_never_exceed_max_size_and_keep_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bound = 32 * 1024;
    let bucket = Bucket::builder(dir.path()).max_size(bound).build().expect("bucket");
    let mut largest = 0;
    for i in 0..400u32 {
        let stored = bucket
            .insert_hashed(&bucket.key_hash(&i).expect("key"), &payload(i), None)
            .expect("insert");
        largest = largest.max(stored.file_len);
        let (bytes, entries) = disk_usage(dir.path());
        assert!(bytes <= bound, "after write {i}: {bytes} bytes on disk > bound {bound}");
        assert_eq!(
            bucket.bounded_usage(),
            Some((bytes, entries)),
            "the index agrees with the disk"
        );
    }
    let (bytes, _) = disk_usage(dir.path());
    assert!(
        bytes + largest > bound,
        "the bucket is filled up to the bound ({bytes} bytes)"
    );
    // The most recent entries survive, in a contiguous run ending at the last write.
    let survivors: Vec<u32> = (0..400u32)
        .filter(|i| bucket.contains_key(i).expect("contains"))
        .collect();
    assert!(survivors.len() >= 20, "{} survivors", survivors.len());
    let first = survivors[0];
    assert_eq!(survivors, (first..400).collect::<Vec<_>>());
    for i in first..400 {
        assert_eq!(bucket.get::<Vec<u8>>(&i).expect("get"), Some(payload(i)));
    }
}

#[test]
fn max_entries_keeps_exactly_the_last_n() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).max_entries(10).build().expect("bucket");
    for i in 0..100u32 {
        bucket.insert(&i, &i).expect("insert");
        assert!(disk_usage(dir.path()).1 <= 10);
    }
    assert_eq!(disk_usage(dir.path()).1, 10);
    for i in 0..90u32 {
        // Evicted entries leave the memory tier too: a read is a miss.
        assert_eq!(bucket.get::<u32>(&i).expect("get"), None, "key {i}");
    }
    for i in 90..100u32 {
        assert_eq!(bucket.get::<u32>(&i).expect("get"), Some(i));
    }
}

#[test]
fn rewriting_an_entry_makes_it_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).max_entries(3).build().expect("bucket");
    for k in ["a", "b", "c"] {
        bucket.insert(k, &1u8).expect("insert");
    }
    bucket.insert("a", &2u8).expect("rewrite");
    bucket.insert("d", &1u8).expect("insert");
    assert!(
        !bucket.contains_key("b").expect("contains"),
        "b is now the least recently written"
    );
    for k in ["a", "c", "d"] {
        assert!(bucket.contains_key(k).expect("contains"), "{k} survives");
    }
    // Reads do not refresh: reading c does not save it from the next eviction.
    assert_eq!(bucket.get::<u8>("c").expect("get"), Some(1));
    bucket.insert("e", &1u8).expect("insert");
    assert!(!bucket.contains_key("c").expect("contains"));
}

#[test]
fn removed_entries_free_their_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).max_entries(3).build().expect("bucket");
    for k in ["a", "b", "c"] {
        bucket.insert(k, &1u8).expect("insert");
    }
    assert!(bucket.remove("a").expect("remove"));
    bucket.insert("d", &1u8).expect("insert");
    for k in ["b", "c", "d"] {
        assert!(bucket.contains_key(k).expect("contains"), "{k} survives");
    }
    assert_eq!(bucket.bounded_usage().map(|u| u.1), Some(3));
}

#[test]
fn entries_already_on_disk_are_indexed_by_the_first_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let writer = Bucket::builder(dir.path())
        .clock(clock.clone())
        .build()
        .expect("bucket");
    for i in 0..20u32 {
        writer.insert(&i, &i).expect("insert");
        clock.advance(Duration::from_secs(1));
    }
    let bounded = Bucket::builder(dir.path())
        .clock(clock.clone())
        .max_entries(5)
        .build()
        .expect("bucket");
    bounded.insert(&100u32, &100u32).expect("insert");
    assert_eq!(disk_usage(dir.path()).1, 5);
    for i in [16u32, 17, 18, 19, 100] {
        assert!(bounded.contains_key(&i).expect("contains"), "{i} survives");
    }
}

#[test]
fn an_entry_rewritten_by_another_process_is_not_evicted_as_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bounded = Bucket::builder(dir.path())
        .clock(clock.clone())
        .max_entries(3)
        .build()
        .expect("bucket");
    // Another writer on the same directory (as another process would be), sharing the clock.
    let other = Bucket::builder(dir.path())
        .clock(clock.clone())
        .build()
        .expect("bucket");
    for k in ["k0", "k1", "k2"] {
        bounded.insert(k, &1u8).expect("insert");
        clock.advance(Duration::from_secs(1));
    }
    other.insert("k0", &2u8).expect("rewrite elsewhere");
    clock.advance(Duration::from_secs(1));
    bounded.insert("k3", &1u8).expect("insert");
    other.unload_all();
    assert_eq!(
        other.get::<u8>("k0").expect("get"),
        Some(2),
        "the fresh rewrite survives"
    );
    assert!(
        !other.contains_key("k1").expect("contains"),
        "the truly oldest entry went"
    );
}

#[test]
fn a_single_entry_larger_than_the_bound_stays_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).max_size(1000).build().expect("bucket");
    bucket.insert("small", &vec![0u8; 100]).expect("insert");
    bucket.insert("huge", &vec![0u8; 5000]).expect("insert");
    assert!(bucket.contains_key("huge").expect("contains"));
    assert!(!bucket.contains_key("small").expect("contains"));
    assert_eq!(disk_usage(dir.path()).1, 1);
}

#[test]
fn enforce_bound_sees_entries_written_by_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bounded = Bucket::builder(dir.path())
        .clock(clock.clone())
        .max_entries(4)
        .build()
        .expect("bucket");
    bounded.insert("mine", &0u32).expect("insert");
    clock.advance(Duration::from_secs(1));
    let other = Bucket::builder(dir.path())
        .clock(clock.clone())
        .build()
        .expect("bucket");
    for i in 0..10u32 {
        other.insert(&i, &i).expect("insert");
        clock.advance(Duration::from_secs(1));
    }
    let info = bounded.enforce_bound().expect("enforce");
    assert_eq!(info.num, 7);
    assert!(info.size > 0);
    assert_eq!(disk_usage(dir.path()).1, 4);
    for i in 6..10u32 {
        assert!(bounded.contains_key(&i).expect("contains"), "{i} survives");
    }
    assert!(!bounded.contains_key("mine").expect("contains"));
}

#[test]
fn deferred_writes_obey_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).max_entries(5).build().expect("bucket");
    bucketcache::deferred_write(&bucket, |d| {
        for i in 0..20u32 {
            d.insert(&i, &i)?;
        }
        Ok(())
    })
    .expect("sync");
    assert_eq!(disk_usage(dir.path()).1, 5);
}

#[test]
fn zero_bounds_are_configuration_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Bucket::builder(dir.path()).max_size(0).build().expect_err("rejected");
    assert!(e.to_string().contains("max_size(0)"), "{e}");
    let e = Bucket::builder(dir.path())
        .max_entries(0)
        .build()
        .expect_err("rejected");
    assert!(e.to_string().contains("max_entries(0)"), "{e}");
}

#[test]
fn unbounded_buckets_report_no_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("a", &1u8).expect("insert");
    assert_eq!((bucket.max_size(), bucket.max_entries()), (None, None));
    assert_eq!(bucket.bounded_usage(), None);
    assert_eq!(bucket.enforce_bound().expect("enforce").num, 0);
}

#[test]
fn concurrent_writers_share_one_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).max_entries(20).build().expect("bucket");
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let bucket = &bucket;
            s.spawn(move || {
                for i in 0..100u32 {
                    bucket.insert(&(t, i), &i).expect("insert");
                }
            });
        }
    });
    assert_eq!(disk_usage(dir.path()).1, 20);
    assert_eq!(bucket.bounded_usage().map(|u| u.1), Some(20));
}
