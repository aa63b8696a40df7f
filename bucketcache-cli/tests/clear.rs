//! `bucketcache clear`.

mod common;

use common::{bin, json, Cache, F};
use predicates::prelude::*;

#[test]
fn clear_yes_removes_every_entry_and_leaves_a_bucket() {
    let cache = Cache::new();
    cache.add_expired(1);
    cache.add_garbage();
    let live = cache.add_temp(true);
    let r = json(&["clear", cache.arg(), "--yes"], 0);
    assert_eq!(r["removed"]["count"], 8);
    assert!(r["function"].is_null());
    assert_eq!(cache.count_entries(), 0);
    assert!(live.exists(), "a live writer's temporary file stays");
    let s = json(&["stats", cache.arg()], 0);
    assert_eq!(s["entries"]["count"], 0);
    // The library still uses the directory.
    let bucket = bucketcache::Bucket::new(cache.path()).expect("bucket");
    bucket.insert("again", &1u8).expect("insert");
    assert_eq!(bucket.get::<u8>("again").expect("get"), Some(1));
}

#[test]
fn clear_without_yes_and_without_a_terminal_refuses() {
    let cache = Cache::new();
    bin()
        .args(["clear", cache.arg()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "refusing to remove every entry without confirmation",
        ))
        .stderr(predicate::str::contains("--yes"));
    assert_eq!(cache.count_entries(), 6, "nothing was removed");
}

#[test]
fn clear_function_removes_only_that_functions_entries_without_asking() {
    let cache = Cache::new();
    let r = json(&["clear", cache.arg(), "--function", F], 0);
    assert_eq!(r["function"], F);
    assert_eq!(r["removed"]["count"], 3);
    for k in &cache.json {
        assert!(!cache.entry_path(k).exists());
    }
    assert_eq!(cache.count_entries(), 3);
    // A name that matches nothing: said so, with the close names, exit code 1, nothing removed.
    bin()
        .args(["clear", cache.arg(), "--function", "my_crate::Service::gg"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no entry is recorded for function `my_crate::Service::gg`",
        ))
        .stderr(predicate::str::contains("did you mean `my_crate::Service::g`?"));
    bin()
        .args(["clear", cache.arg(), "--function", "zzz"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("recorded functions: `my_crate::Service::g`"));
    assert_eq!(cache.count_entries(), 3);
}

#[test]
fn clear_of_an_empty_bucket_needs_no_confirmation() {
    let dir = tempfile::tempdir().expect("tempdir");
    bucketcache::Bucket::new(dir.path()).expect("bucket");
    bin()
        .args(["clear", dir.path().to_str().expect("utf-8")])
        .assert()
        .success()
        .stdout(predicate::str::contains("Removed 0 files"));
}
