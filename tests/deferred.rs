//! Deferred writes: nothing reaches the disk before `sync`; `deferred_write` is all or nothing.

use bucketcache::{deferred_write, Bucket, Error};

fn on_disk(bucket: &Bucket, key: &str) -> bool {
    bucket.entry_path(&bucket.key_hash(key).expect("hash")).exists()
}

#[test]
fn writes_wait_for_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("old", &0u32).expect("insert");
    let d = bucket.deferred();
    d.insert("a", &1u32).expect("insert");
    d.insert("b", &"two").expect("insert");
    assert!(d.remove("old").expect("remove"));
    assert_eq!(d.pending_len(), 3);
    // The view sees its changes; the bucket and the disk do not yet.
    assert_eq!(d.get::<u32>("a").expect("get"), Some(1));
    assert_eq!(d.get::<String>("b").expect("get").as_deref(), Some("two"));
    assert_eq!(d.get::<u32>("old").expect("get"), None);
    assert!(d.contains_key("a").expect("contains") && !d.contains_key("old").expect("contains"));
    assert!(!on_disk(&bucket, "a") && on_disk(&bucket, "old"));
    assert_eq!(bucket.get::<u32>("a").expect("get"), None);
    assert_eq!(bucket.get::<u32>("old").expect("get"), Some(0));

    d.sync().expect("sync");
    assert_eq!(d.pending_len(), 0);
    assert!(on_disk(&bucket, "a") && on_disk(&bucket, "b") && !on_disk(&bucket, "old"));
    let fresh = Bucket::new(dir.path()).expect("bucket");
    assert_eq!(fresh.get::<u32>("a").expect("get"), Some(1));
    assert_eq!(fresh.get::<u32>("old").expect("get"), None);
}

/// The entry file's identity: a rewrite is an atomic rename of a new file, so it always changes the inode (a
/// timestamp would not show a rewrite within the file system's timestamp granularity).
#[cfg(unix)]
fn file_id(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).expect("metadata");
    (m.dev(), m.ino())
}

#[cfg(unix)]
#[test]
fn only_changed_entries_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("read-only", &5u32).expect("insert");
    bucket.insert("rewritten", &7u32).expect("insert");
    let path = |key: &str| bucket.entry_path(&bucket.key_hash(key).expect("hash"));
    let (read_before, rewritten_before) = (file_id(&path("read-only")), file_id(&path("rewritten")));
    let d = bucket.deferred();
    assert_eq!(d.get::<u32>("read-only").expect("get"), Some(5));
    d.insert("rewritten", &8u32).expect("insert");
    d.insert("new", &6u32).expect("insert");
    d.sync().expect("sync");
    assert_ne!(
        file_id(&path("rewritten")),
        rewritten_before,
        "a changed entry gets a new file (the check can see a rewrite)"
    );
    assert_eq!(
        file_id(&path("read-only")),
        read_before,
        "an entry only read is not rewritten"
    );
}

#[test]
fn deferred_write_syncs_on_ok_and_writes_nothing_on_err() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("kept", &1u32).expect("insert");

    let r: Result<(), Error> = deferred_write(&bucket, |d| {
        d.insert("x", &10u32)?;
        d.remove("kept")?;
        Err(Error::Key {
            message: "closure failed".into(),
        })
    });
    assert!(r.is_err());
    assert!(!on_disk(&bucket, "x"));
    assert_eq!(bucket.get::<u32>("x").expect("get"), None, "memory tier unchanged too");
    assert_eq!(bucket.get::<u32>("kept").expect("get"), Some(1));

    let n = deferred_write(&bucket, |d| {
        d.insert("x", &10u32)?;
        Ok(7)
    })
    .expect("ok");
    assert_eq!(n, 7);
    assert!(on_disk(&bucket, "x"));
    assert_eq!(bucket.get::<u32>("x").expect("get"), Some(10));
}

#[test]
fn dropping_with_pending_writes_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    {
        let d = bucket.deferred();
        d.insert("dropped", &3u32).expect("insert");
        assert!(!on_disk(&bucket, "dropped"));
    }
    assert!(on_disk(&bucket, "dropped"));
    {
        let d = bucket.deferred();
        d.insert("discarded", &4u32).expect("insert");
        d.discard();
    }
    assert!(!on_disk(&bucket, "discarded"));
}

#[test]
fn unload_key_on_a_deferred_view_writes_that_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let d = bucket.deferred();
    d.insert("a", &1u32).expect("insert");
    d.insert("b", &2u32).expect("insert");
    d.unload_key("a");
    assert!(on_disk(&bucket, "a") && !on_disk(&bucket, "b"));
    assert_eq!(d.pending_len(), 1);
    d.discard();
}

#[test]
fn a_panic_inside_deferred_write_commits_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        deferred_write(&bucket, |d| {
            d.insert("half", &1u32)?;
            panic!("the work failed halfway");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    assert!(outcome.is_err());
    assert!(!on_disk(&bucket, "half"), "a panic is not a success: nothing is synced");
    assert_eq!(bucket.get::<u32>("half").expect("get"), None);
}

#[test]
fn a_pending_write_expires_on_its_own_stamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = bucketcache::ManualClock::starting_now();
    let bucket = Bucket::builder(dir.path())
        .clock(clock.clone())
        .seconds(10)
        .build()
        .expect("bucket");
    let d = bucket.deferred();
    d.insert("k", &1u32).expect("insert");
    assert_eq!(d.get::<u32>("k").expect("get"), Some(1));
    clock.advance(std::time::Duration::from_secs(10));
    assert_eq!(d.get::<u32>("k").expect("get"), None);
    assert!(!d.contains_key("k").expect("contains"));
    d.discard();
}

#[test]
fn dropped_by_a_panic_discards_pending_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let d = bucket.deferred();
        d.insert("unwound", &1u32).expect("insert");
        panic!("dropped while unwinding");
    }));
    assert!(outcome.is_err());
    assert!(!on_disk(&bucket, "unwound"), "a view dropped by a panic writes nothing");
}

/// `DeferredWriteBucket`'s type parameters default as `Bucket`'s do.
#[test]
fn default_type_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket: Bucket = Bucket::new(dir.path()).expect("bucket");
    let d: bucketcache::DeferredWriteBucket<'_> = bucket.deferred();
    d.insert("k", &1u32).expect("insert");
    d.sync().expect("sync");
    assert!(on_disk(&bucket, "k"));
}

/// A batch with `Durability::Fsync` across many fan-out directories writes every entry, readable by a new bucket.
#[test]
fn a_batch_sync_writes_every_entry_with_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .durability(bucketcache::Durability::Fsync)
        .build()
        .expect("bucket");
    let d = bucket.deferred();
    for i in 0..600u32 {
        d.insert(&i, &(i * 3)).expect("insert");
    }
    assert!(d.remove(&7u32).expect("remove"));
    d.sync().expect("sync");
    let fresh = Bucket::new(dir.path()).expect("bucket");
    for i in 0..600u32 {
        let want = (i != 7).then_some(i * 3);
        assert_eq!(fresh.get::<u32>(&i).expect("get"), want, "key {i}");
    }
}

/// A batch whose writes fail (a full disk) keeps them pending and reports the error; the next sync writes them.
#[test]
fn a_failed_batch_stays_pending() {
    use bucketcache::store::fault;
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let d = bucket.deferred();
    // Enough for the batch to be written by several threads (at least 256).
    for i in 0..300u32 {
        d.insert(&i, &i).expect("insert");
    }
    fault::set_write_error(dir.path(), Some(28));
    let failed = d.sync();
    fault::set_write_error(dir.path(), None);
    assert!(failed.is_err());
    assert_eq!(d.pending_len(), 300, "every failed write stays pending");
    assert_eq!(
        Bucket::new(dir.path()).expect("bucket").get::<u32>(&3u32).expect("get"),
        None
    );
    d.sync().expect("sync");
    assert_eq!(d.pending_len(), 0);
    assert_eq!(
        Bucket::new(dir.path()).expect("bucket").get::<u32>(&3u32).expect("get"),
        Some(3)
    );
}
