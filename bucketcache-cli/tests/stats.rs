//! `bucketcache stats`.

mod common;

use common::{bin, json, Cache, F, G};
use predicates::prelude::*;

#[test]
fn stats_counts_entries_bytes_and_functions() {
    let cache = Cache::new();
    let s = json(&["stats", cache.arg()], 0);
    assert_eq!(s["entries"]["count"], 6);
    let bytes = s["entries"]["bytes"].as_u64().expect("bytes");
    let on_disk: u64 = cache.entry_bytes();
    assert_eq!(bytes, on_disk);
    assert_eq!(s["total_bytes"].as_u64(), Some(on_disk));
    assert_eq!(s["expired"]["count"], 0);
    assert_eq!(s["corrupt"]["count"], 0);
    assert_eq!(s["temp_files"]["count"], 0);
    let functions = s["functions"].as_array().expect("functions");
    let count_of = |name: Option<&str>| {
        functions
            .iter()
            .find(|f| f["name"].as_str() == name)
            .map(|f| f["count"].as_u64().expect("count"))
    };
    assert_eq!(count_of(Some(F)), Some(3));
    assert_eq!(count_of(Some(G)), Some(2));
    assert_eq!(
        count_of(None),
        Some(1),
        "entries without a function are grouped under null"
    );
    let backends: Vec<&str> = s["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .map(|b| b["name"].as_str().expect("name"))
        .collect();
    for b in ["json", "msgpack", "bincode2"] {
        assert!(backends.contains(&b), "{b} in {backends:?}");
    }
    let oldest = s["oldest_written_ms"].as_i64().expect("oldest");
    let newest = s["newest_written_ms"].as_i64().expect("newest");
    assert!(oldest <= newest);
    assert!(s["oldest_written"].as_str().expect("rfc3339").ends_with('Z'));
}

#[test]
fn stats_counts_expired_corrupt_and_temporary_files() {
    let cache = Cache::new();
    cache.add_expired(2);
    cache.truncate(&cache.json[0]);
    cache.add_garbage();
    cache.add_temp(false);
    cache.add_temp(true);
    let s = json(&["stats", cache.arg()], 0);
    assert_eq!(s["entries"]["count"], 5 + 2, "valid entries, the expired ones included");
    assert_eq!(s["expired"]["count"], 2);
    assert_eq!(s["corrupt"]["count"], 2);
    assert_eq!(s["temp_files"]["count"], 2);
    assert_eq!(s["stale_temp_files"]["count"], 1);
}

#[test]
fn stats_prints_a_summary_for_people() {
    let cache = Cache::new();
    bin()
        .args(["stats", cache.arg()])
        .assert()
        .success()
        .stdout(predicate::str::contains("Entries:         6 ("))
        .stdout(predicate::str::contains("By function:"))
        .stdout(predicate::str::contains(F).and(predicate::str::contains("(none)")))
        .stdout(predicate::str::contains("Oldest write:"));
}

#[test]
fn stats_of_an_empty_bucket_is_all_zeros() {
    let dir = tempfile::tempdir().expect("tempdir");
    bucketcache::Bucket::new(dir.path()).expect("bucket");
    let s = json(&["stats", dir.path().to_str().expect("utf-8")], 0);
    assert_eq!(s["entries"]["count"], 0);
    assert_eq!(s["total_bytes"], 0);
    assert!(s["oldest_written"].is_null());
    assert_eq!(s["functions"], serde_json::json!([]));
}

#[test]
fn stats_never_reports_a_damaged_header_field() {
    // One byte of the function path flipped ("my_crate::f" -> "my_crate::g"): the header's own checksum fails, so
    // the entry is corrupt and no function that never existed is listed.
    let cache = Cache::new();
    let path = cache.entry_path(&cache.json[0]);
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes
        .windows(11)
        .position(|w| w == b"my_crate::f")
        .expect("function path in the header");
    bytes[at + 10] = b'g';
    std::fs::write(&path, &bytes).expect("write");
    let s = json(&["stats", cache.arg()], 0);
    assert_eq!(s["corrupt"]["count"], 1);
    let names: Vec<&str> = s["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"my_crate::g"),
        "a function that never existed is listed: {names:?}"
    );
    let f = s["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == F)
        .expect("F listed");
    assert_eq!(f["count"], 2, "the damaged entry is not counted as F's either");
}
