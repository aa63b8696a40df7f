//! `bucketcache show`.

mod common;

use bucketcache::{Bucket, JsonBackend};
use common::{bin, json, report, Cache, F, G};
use predicates::prelude::*;

#[test]
fn show_renders_a_json_entry() {
    let cache = Cache::new();
    let s = json(&["show", cache.arg(), &cache.json[2].to_hex()], 0);
    assert_eq!(s["hash"], cache.json[2].to_hex());
    assert_eq!(s["backend"], "json");
    assert_eq!(s["function"], F);
    assert_eq!(s["format_version"], bucketcache::entry::FORMAT_VERSION);
    assert_eq!(s["expired"], false);
    assert_eq!(s["value"], serde_json::to_value(report(2)).expect("json"));
    assert!(s["value_unavailable"].is_null());
    assert!(s["payload_size"].as_u64() < s["file_size"].as_u64());
}

#[test]
fn show_renders_a_msgpack_entry_with_its_field_names() {
    let cache = Cache::new();
    let s = json(&["show", cache.arg(), &cache.msgpack[1].to_hex()], 0);
    assert_eq!(s["backend"], "msgpack");
    assert_eq!(s["function"], G);
    assert_eq!(s["value"], serde_json::to_value(report(11)).expect("json"));
}

#[test]
fn show_explains_why_bincode_cannot_be_rendered() {
    let cache = Cache::new();
    let s = json(&["show", cache.arg(), &cache.bincode.to_hex()], 0);
    assert!(s["value"].is_null());
    assert!(s["value_unavailable"]
        .as_str()
        .expect("why")
        .contains("not self-describing"));
    bin()
        .args(["show", cache.arg(), &cache.bincode.to_hex()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Value:     not shown: the bincode2 backend is not self-describing",
        ))
        .stdout(predicate::str::contains("Payload:   "));
}

#[test]
fn show_accepts_a_unique_prefix_and_prints_for_people() {
    let cache = Cache::new();
    let hex = cache.json[0].to_hex();
    bin()
        .args(["show", cache.arg(), &hex[..12].to_uppercase()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("Hash:      {hex}")))
        .stdout(predicate::str::contains("Expires:   never"))
        .stdout(predicate::str::contains("Value:\n{\n  \"name\": \"report 0\""));
}

#[test]
fn show_rejects_bad_ambiguous_and_unknown_hashes() {
    let cache = Cache::new();
    bin()
        .args(["show", cache.arg(), "xyz"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a key hash"));
    bin()
        .args(["show", cache.arg(), &"0".repeat(64)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no entry"));
    // Two keys whose hashes share their first two digits.
    let bucket = Bucket::builder(cache.path())
        .backend(JsonBackend::default())
        .build()
        .expect("bucket");
    let mut seen = std::collections::HashMap::new();
    let prefix = (0u32..)
        .find_map(|i| {
            let key = bucket.key_hash(&("twin", i)).expect("key");
            bucket.insert_hashed(&key, &i, None).expect("insert");
            seen.insert(key.to_hex()[..2].to_owned(), i)
                .map(|_| key.to_hex()[..2].to_owned())
        })
        .expect("a shared prefix");
    bin()
        .args(["show", cache.arg(), &prefix])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is ambiguous"));
}

#[test]
fn show_reports_a_corrupt_entry_with_exit_code_1() {
    let cache = Cache::new();
    cache.flip_payload(&cache.json[0]);
    bin()
        .args(["show", cache.arg(), &cache.json[0].to_hex()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is corrupt (payload checksum mismatch)"));
}
