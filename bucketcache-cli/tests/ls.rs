//! `bucketcache ls`.

mod common;

use common::{bin, json, Cache, F, G};
use predicates::prelude::*;
use serde_json::Value;

fn hashes(rows: &Value) -> Vec<String> {
    rows.as_array()
        .expect("array")
        .iter()
        .map(|r| r["hash"].as_str().expect("hash").to_owned())
        .collect()
}

#[test]
fn ls_lists_every_entry_with_its_header() {
    let cache = Cache::new();
    let rows = json(&["ls", cache.arg()], 0);
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 6);
    let row = rows
        .iter()
        .find(|r| r["hash"] == cache.json[1].to_hex())
        .expect("the json entry is listed");
    assert_eq!(row["function"], F);
    assert_eq!(row["backend"], "json");
    assert_eq!(row["expired"], false);
    assert!(row["expires"].is_null() && row["expires_ms"].is_null(), "never expires");
    assert_eq!(
        row["size"].as_u64(),
        Some(std::fs::metadata(cache.entry_path(&cache.json[1])).expect("stat").len())
    );
    assert!(row["written_ms"].as_i64().expect("ms") > 0);
    assert!(row["path"].as_str().expect("path").ends_with(&cache.json[1].to_hex()));
    let plain = rows
        .iter()
        .find(|r| r["hash"] == cache.bincode.to_hex())
        .expect("bincode entry");
    assert!(plain["function"].is_null());
}

#[test]
fn ls_filters_by_function_and_expiry() {
    let cache = Cache::new();
    let expired = cache.add_expired(2);
    let g = json(&["ls", cache.arg(), "--function", G], 0);
    let mut want: Vec<String> = cache.msgpack.iter().map(|k| k.to_hex()).collect();
    let mut got = hashes(&g);
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let e = json(&["ls", cache.arg(), "--expired"], 0);
    let mut want: Vec<String> = expired.iter().map(|k| k.to_hex()).collect();
    let mut got = hashes(&e);
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(e.as_array().expect("array").iter().all(|r| r["expired"] == true));
    bin()
        .args(["ls", cache.arg(), "--function", "my_crate::F"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("did you mean `my_crate::f`?"));
}

#[test]
fn ls_sorts_by_size_written_and_expiry() {
    let cache = Cache::new();
    let expiring = cache.add_written_ago(
        "soon",
        1,
        std::time::Duration::ZERO,
        Some(std::time::Duration::from_secs(600)),
    );
    let sizes: Vec<u64> = json(&["ls", cache.arg(), "--sort", "size"], 0)
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["size"].as_u64().expect("size"))
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first: {sizes:?}");
    let written: Vec<i64> = json(&["ls", cache.arg(), "--sort", "written", "--reverse"], 0)
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["written_ms"].as_i64().expect("ms"))
        .collect();
    assert!(
        written.windows(2).all(|w| w[0] >= w[1]),
        "newest first with --reverse: {written:?}"
    );
    let by_expiry = hashes(&json(&["ls", cache.arg(), "--sort", "expires"], 0));
    assert_eq!(
        by_expiry[0],
        expiring[0].to_hex(),
        "the only expiring entry comes first"
    );
}

#[test]
fn ls_prints_a_table_for_people() {
    let cache = Cache::new();
    cache.truncate(&cache.json[2]);
    bin()
        .args(["ls", cache.arg()])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("HASH"))
        .stdout(predicate::str::contains(&cache.json[0].to_hex()[..16]))
        .stdout(predicate::str::contains(F).and(predicate::str::contains("never")))
        .stderr(predicate::str::contains("1 corrupt file not listed"));
}

#[test]
fn entries_written_as_the_attribute_writes_them_show_function_and_expiry() {
    // The attribute stores through `insert_typed`, with the function's path and its own lifetime.
    let cache = Cache::new();
    let bucket = bucketcache::Bucket::builder(cache.path())
        .backend(bucketcache::JsonBackend::default())
        .build()
        .expect("bucket");
    let key = bucket.key_hash(&("attr", 1u32)).expect("key");
    bucket
        .insert_typed(
            &key,
            &vec![1u64, 2],
            Some("my_crate::attributed"),
            Some(std::time::Duration::from_secs(3600)),
        )
        .expect("insert");
    let rows = json(&["ls", cache.arg(), "--function", "my_crate::attributed"], 0);
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["hash"], key.to_hex());
    let ttl = rows[0]["expires_ms"].as_i64().expect("expires") - rows[0]["written_ms"].as_i64().expect("written");
    assert_eq!(ttl, 3_600_000);
    let shown = json(&["show", cache.arg(), &key.to_hex()], 0);
    assert_eq!(shown["value"], serde_json::json!([1, 2]));
}
