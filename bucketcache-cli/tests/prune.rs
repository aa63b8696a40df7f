//! `bucketcache prune`.

mod common;

use std::time::Duration;

use common::{bin, json, Cache};
use predicates::prelude::*;

#[test]
fn prune_removes_expired_entries_and_temporary_leftovers() {
    let cache = Cache::new();
    let expired = cache.add_expired(3);
    let stale = cache.add_temp(false);
    let live = cache.add_temp(true);
    cache.truncate(&cache.json[0]);
    let expired_bytes: u64 = expired
        .iter()
        .map(|k| std::fs::metadata(cache.entry_path(k)).expect("stat").len())
        .sum();
    let r = json(&["prune", cache.arg()], 0);
    assert_eq!(r["dry_run"], false);
    assert_eq!(r["expired"]["count"], 3);
    assert_eq!(r["expired"]["bytes"].as_u64(), Some(expired_bytes));
    assert_eq!(r["temp_files"]["count"], 1);
    assert_eq!(r["corrupt"]["count"], 1);
    assert_eq!(r["removed"]["count"], 5);
    assert_eq!(r["remaining"]["count"], 5);
    assert_eq!(r["files"].as_array().map(Vec::len), Some(5));
    assert!(r["files"]
        .as_array()
        .expect("files")
        .iter()
        .any(|f| f["reason"] == "temp_leftover"));
    assert!(!stale.exists());
    assert!(live.exists(), "a live writer's temporary file stays");
    for k in &expired {
        assert!(!cache.entry_path(k).exists());
    }
    assert_eq!(cache.count_entries(), 5);
}

#[test]
fn prune_dry_run_reports_and_removes_nothing() {
    let cache = Cache::new();
    cache.add_expired(2);
    let stale = cache.add_temp(false);
    let r = json(&["prune", cache.arg(), "--dry-run"], 0);
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["removed"]["count"], 3);
    assert!(stale.exists());
    assert_eq!(cache.count_entries(), 8);
    bin()
        .args(["prune", cache.arg(), "-n"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Would remove 3 files ("))
        .stdout(predicate::str::contains("2 expired, 1 temporary leftover"));
}

#[test]
fn prune_older_than_removes_old_entries() {
    let cache = Cache::new();
    let old = cache.add_written_ago("old", 4, Duration::from_secs(10 * 86_400), None);
    let r = json(&["prune", cache.arg(), "--older-than", "7d"], 0);
    assert_eq!(r["older_than"]["count"], 4);
    assert_eq!(r["remaining"]["count"], 6);
    for k in &old {
        assert!(!cache.entry_path(k).exists());
    }
    let r = json(&["prune", cache.arg(), "--older-than", "30d"], 0);
    assert_eq!(r["removed"]["count"], 0);
}

#[test]
fn prune_max_size_keeps_the_most_recent_entries_within_the_bound() {
    let cache = Cache::new();
    let old = cache.add_written_ago("old", 5, Duration::from_secs(3600), None);
    let recent_bytes: u64 = cache.entry_bytes();
    let bound = recent_bytes.to_string();
    let r = json(&["prune", cache.arg(), "--max-size", &bound], 0);
    assert_eq!(r["max_size"]["count"], 5, "exactly the five older entries go");
    assert_eq!(r["remaining"]["bytes"].as_u64(), Some(recent_bytes));
    for k in &old {
        assert!(!cache.entry_path(k).exists());
    }
    let r = json(&["prune", cache.arg(), "--max-size", "1k"], 0);
    assert!(r["remaining"]["bytes"].as_u64().expect("bytes") <= 1000);
    assert!(r["remaining"]["count"].as_u64().expect("count") >= 1);
}

#[test]
fn prune_prints_counts_and_bytes_for_people() {
    let cache = Cache::new();
    cache.add_expired(1);
    bin()
        .args(["prune", cache.arg()])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^Removed 1 file \(\d+ B\): 1 expired\.\n6 entries \(").expect("regex"));
}
