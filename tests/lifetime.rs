//! Expiry: per entry, stamped at write, reset by each write, driven by an injectable clock.

use std::time::Duration;

use bucketcache::{Bucket, ManualClock};

fn bucket_with_clock(dir: &std::path::Path, clock: &ManualClock, lifetime: Option<Duration>) -> Bucket {
    let mut b = Bucket::builder(dir).clock(clock.clone());
    if let Some(l) = lifetime {
        b = b.lifetime(l);
    }
    b.build().expect("bucket")
}

#[test]
fn entries_never_expire_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bucket = bucket_with_clock(dir.path(), &clock, None);
    assert_eq!(bucket.lifetime(), None);
    bucket.insert("k", &1u8).expect("insert");
    clock.advance(Duration::from_secs(100 * 365 * 86_400));
    assert_eq!(bucket.get::<u8>("k").expect("get"), Some(1));
}

#[test]
fn an_expired_entry_reads_as_missing_and_its_file_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bucket = bucket_with_clock(dir.path(), &clock, Some(Duration::from_secs(60)));
    bucket.insert("k", &1u8).expect("insert");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    clock.advance(Duration::from_millis(59_999));
    assert_eq!(
        bucket.get::<u8>("k").expect("get"),
        Some(1),
        "still valid just before expiry (memory)"
    );
    bucket.unload_all();
    assert_eq!(
        bucket.get::<u8>("k").expect("get"),
        Some(1),
        "still valid just before expiry (disk)"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(bucket.get::<u8>("k").expect("get"), None, "expired at the instant");
    assert!(!path.exists(), "expired file removed");
    assert!(!bucket.contains_key("k").expect("contains"));
}

#[test]
fn expiry_is_checked_on_the_disk_path_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let writer = bucket_with_clock(dir.path(), &clock, Some(Duration::from_secs(10)));
    writer.insert("k", &1u8).expect("insert");
    let reader = bucket_with_clock(dir.path(), &clock, None);
    assert!(reader.contains_key("k").expect("contains"));
    clock.advance(Duration::from_secs(10));
    assert!(!reader.contains_key("k").expect("contains"));
    assert_eq!(reader.get::<u8>("k").expect("get"), None);
}

#[test]
fn each_write_resets_the_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bucket = bucket_with_clock(dir.path(), &clock, Some(Duration::from_secs(60)));
    bucket.insert("k", &1u8).expect("insert");
    clock.advance(Duration::from_secs(50));
    bucket.insert("k", &2u8).expect("insert again");
    clock.advance(Duration::from_secs(50));
    assert_eq!(
        bucket.get::<u8>("k").expect("get"),
        Some(2),
        "100 s after the first write, 50 s after the second"
    );
    let hit = bucket
        .lookup::<u8>(&bucket.key_hash("k").expect("hash"))
        .expect("lookup")
        .expect("hit");
    assert_eq!(
        hit.expires.expect("expires") - hit.written,
        chrono::Duration::seconds(60)
    );
}

#[test]
fn shortcuts_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .days(1)
        .hours(2)
        .minutes(3)
        .seconds(4)
        .milliseconds(5)
        .build()
        .expect("bucket");
    assert_eq!(
        bucket.lifetime(),
        Some(Duration::from_millis(((26 * 60 + 3) * 60 + 4) * 1000 + 5))
    );
}

#[test]
fn set_lifetime_applies_to_later_writes_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bucket = bucket_with_clock(dir.path(), &clock, None);
    bucket.insert("forever", &1u8).expect("insert");
    bucket.set_lifetime(Some(Duration::from_secs(1)));
    assert_eq!(bucket.lifetime(), Some(Duration::from_secs(1)));
    bucket.insert("brief", &2u8).expect("insert");
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        bucket.get::<u8>("forever").expect("get"),
        Some(1),
        "written without a lifetime: never expires"
    );
    assert_eq!(bucket.get::<u8>("brief").expect("get"), None);
    bucket.set_lifetime(None);
    bucket.insert("brief", &3u8).expect("insert");
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(bucket.get::<u8>("brief").expect("get"), Some(3));
}

#[test]
fn a_per_entry_lifetime_overrides_the_buckets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bucket = bucket_with_clock(dir.path(), &clock, Some(Duration::from_secs(3600)));
    let short = bucket.key_hash("short").expect("hash");
    let long = bucket.key_hash("long").expect("hash");
    bucket
        .insert_typed(&short, &1u8, None, Some(Duration::from_secs(5)))
        .expect("insert");
    bucket.insert_typed(&long, &2u8, None, None).expect("insert");
    clock.advance(Duration::from_secs(5));
    assert!(bucket.lookup::<u8>(&short).expect("lookup").is_none());
    assert_eq!(bucket.lookup::<u8>(&long).expect("lookup").map(|h| h.value), Some(2));
}
