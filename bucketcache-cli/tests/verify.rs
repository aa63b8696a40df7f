//! `bucketcache verify`.

mod common;

use common::{bin, json, Cache};
use predicates::prelude::*;

#[test]
fn verify_of_an_intact_cache_exits_0() {
    let cache = Cache::new();
    cache.add_expired(1);
    cache.add_temp(false);
    let r = json(&["verify", cache.arg()], 0);
    assert_eq!(r["checked"]["count"], 7);
    assert_eq!(r["intact"]["count"], 7);
    assert_eq!(r["corrupt"], serde_json::json!([]));
    bin()
        .args(["verify", cache.arg()])
        .assert()
        .success()
        .stdout(predicate::str::contains("7 intact, 0 corrupt"));
}

#[test]
fn verify_finds_flipped_truncated_and_foreign_files() {
    let cache = Cache::new();
    cache.flip_payload(&cache.json[0]);
    cache.truncate(&cache.msgpack[0]);
    let garbage = cache.add_garbage();
    let r = json(&["verify", cache.arg()], 1);
    let corrupt = r["corrupt"].as_array().expect("corrupt");
    assert_eq!(corrupt.len(), 3);
    let reason_of = |needle: &str| {
        corrupt
            .iter()
            .find(|c| c["path"].as_str().expect("path").contains(needle))
            .map(|c| c["reason"].as_str().expect("reason").to_owned())
            .expect("listed")
    };
    assert_eq!(reason_of(&cache.json[0].to_hex()), "payload checksum mismatch");
    assert!(reason_of(&cache.msgpack[0].to_hex()).contains("truncated"));
    assert!(reason_of(&"ab".repeat(32)).contains("header"));
    assert!(corrupt.iter().all(|c| c["removed"] == false));
    assert_eq!(r["intact"]["count"], 4);
    assert!(garbage.exists(), "without --fix nothing is removed");
    bin()
        .args(["verify", cache.arg()])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("3 corrupt"))
        .stdout(predicate::str::contains("--fix"));
}

#[test]
fn verify_fix_removes_corrupt_files_and_the_next_run_is_clean() {
    let cache = Cache::new();
    cache.flip_payload(&cache.json[1]);
    let garbage = cache.add_garbage();
    let r = json(&["verify", cache.arg(), "--fix"], 1);
    assert_eq!(r["fixed"], 2);
    assert!(r["corrupt"]
        .as_array()
        .expect("corrupt")
        .iter()
        .all(|c| c["removed"] == true));
    assert!(!garbage.exists());
    assert!(!cache.entry_path(&cache.json[1]).exists());
    assert_eq!(cache.count_entries(), 5);
    bin().args(["verify", cache.arg()]).assert().code(0);
}
