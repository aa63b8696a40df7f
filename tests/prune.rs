//! `prune_directory`: expired entries, invalid files and stale temporary files go; valid entries stay.

use std::time::Duration;

use bucketcache::{Bucket, ManualClock};

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).expect("metadata").len()
}

#[test]
fn prune_removes_expired_entries_and_stale_temp_files_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let short = Bucket::builder(dir.path())
        .clock(clock.clone())
        .seconds(10)
        .build()
        .expect("bucket");
    let forever = Bucket::builder(dir.path())
        .clock(clock.clone())
        .build()
        .expect("bucket");
    let long = Bucket::builder(dir.path())
        .clock(clock.clone())
        .days(1)
        .build()
        .expect("bucket");

    let mut expected_bytes = 0;
    for i in 0..20u32 {
        short.insert(&("short", i), &vec![i; i as usize]).expect("insert");
        expected_bytes += file_len(&short.entry_path(&short.key_hash(&("short", i)).expect("hash")));
    }
    for i in 0..5u32 {
        forever.insert(&("forever", i), &i).expect("insert");
        long.insert(&("long", i), &i).expect("insert");
    }
    // A temporary file left by a process that no longer exists, and one of a live writer (this process).
    let fan = dir.path().join("entries-v2").join("00");
    std::fs::create_dir_all(&fan).expect("mkdir");
    let dead = fan.join(".tmp-999999999-deadbeef");
    std::fs::write(&dead, vec![0u8; 123]).expect("write");
    expected_bytes += 123;
    let live = fan.join(format!(".tmp-{}-livewrit", std::process::id()));
    std::fs::write(&live, b"in progress").expect("write");
    // A file that is not ours by name is left alone.
    let stranger = fan.join("README");
    std::fs::write(&stranger, b"hello").expect("write");

    assert_eq!(
        short.prune_directory().expect("prune").num,
        1,
        "only the dead temp file before expiry"
    );
    expected_bytes -= 123;
    clock.advance(Duration::from_secs(10));
    // A bucket with a long lifetime prunes by each entry's own stamp, not by its own lifetime.
    let info = long.prune_directory().expect("prune");
    assert_eq!(info.num, 20);
    assert_eq!(info.size, expected_bytes);
    for i in 0..5u32 {
        assert_eq!(forever.get::<u32>(&("forever", i)).expect("get"), Some(i));
        assert_eq!(long.get::<u32>(&("long", i)).expect("get"), Some(i));
    }
    for i in 0..20u32 {
        assert!(!short.entry_path(&short.key_hash(&("short", i)).expect("hash")).exists());
        assert_eq!(short.get::<Vec<u32>>(&("short", i)).expect("get"), None);
    }
    assert!(!dead.exists() && live.exists() && stranger.exists());
    assert_eq!(
        long.prune_directory().expect("prune"),
        bucketcache::PrunedFilesInfo::default()
    );
}

#[test]
fn prune_removes_files_with_invalid_headers_but_not_valid_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("good", &1u32).expect("insert");
    bucket.insert("bad", &2u32).expect("insert");
    let bad = bucket.entry_path(&bucket.key_hash("bad").expect("hash"));
    let bytes = std::fs::read(&bad).expect("read");
    std::fs::write(&bad, &bytes[..bytes.len() - 1]).expect("truncate");
    let info = bucket.prune_directory().expect("prune");
    assert_eq!(info.num, 1);
    assert_eq!(info.size, bytes.len() as u64 - 1);
    assert!(!bad.exists());
    assert_eq!(bucket.get::<u32>("good").expect("get"), Some(1));
    assert_eq!(bucket.get::<u32>("bad").expect("get"), None);
}
