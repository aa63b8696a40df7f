//! What the crate docs' "Security" section promises: private permissions on Unix, keys that cannot name a path
//! outside the bucket, lock files as private as entries.

use std::time::Duration;

use bucketcache::{Bucket, CrossFlight};

#[cfg(unix)]
#[test]
fn directories_are_0700_and_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("a").join("bucket");
    let bucket = Bucket::new(&root).expect("bucket");
    bucket.insert("secret", &"value").expect("insert");
    let key = bucket.key_hash("k").expect("hash");
    let CrossFlight::Compute(guard) = bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO) else {
        panic!("cold key")
    };
    let entry = bucket.entry_path(&bucket.key_hash("secret").expect("hash"));
    let lock = bucket.lock_path(&key);
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    for d in [
        dir.path().join("a"),
        root.clone(),
        root.join("entries-v2"),
        entry.parent().expect("fan").to_path_buf(),
        root.join("locks-v1"),
        lock.parent().expect("fan").to_path_buf(),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    assert_eq!(mode(&entry), 0o600, "{}", entry.display());
    assert_eq!(mode(&lock), 0o600, "{}", lock.display());
    drop(guard);
}

#[test]
fn keys_that_look_like_paths_stay_inside_the_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    for key in [
        "../../../etc/passwd",
        "/etc/shadow",
        "..",
        "a/../../b",
        "C:\\Windows",
        "\0",
    ] {
        bucket.insert(key, &1u8).expect("insert");
        let path = bucket.entry_path(&bucket.key_hash(key).expect("hash"));
        assert!(path.starts_with(dir.path().join("entries-v2")), "{}", path.display());
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
    }
}
