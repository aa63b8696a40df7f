//! The recorded cost (the body's wall time) in `ls`, `show` and `stats`.

mod common;

use std::time::Duration;

use bucketcache::{Bucket, WriteOptions};
use common::json;

#[test]
fn ls_show_and_stats_report_the_recorded_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let a = bucket.key_hash("a").expect("key");
    let b = bucket.key_hash("b").expect("key");
    let c = bucket.key_hash("c").expect("key");
    let with = |ms| {
        WriteOptions::default()
            .function("m::slow")
            .cost(Duration::from_millis(ms))
    };
    bucket.insert_with(&a, &1u32, &with(1500)).expect("insert");
    bucket.insert_with(&b, &2u32, &with(250)).expect("insert");
    bucket.insert_with(&c, &3u32, &WriteOptions::default()).expect("insert");
    let d = dir.path().to_str().expect("utf-8");

    let rows = json(&["ls", d], 0);
    let cost_of = |hash: String| {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["hash"] == hash)
            .map(|r| r["cost_us"].clone())
            .expect("listed")
    };
    assert_eq!(cost_of(a.to_hex()), 1_500_000);
    assert_eq!(cost_of(b.to_hex()), 250_000);
    assert!(cost_of(c.to_hex()).is_null(), "no cost recorded");

    let shown = json(&["show", d, &a.to_hex()], 0);
    assert_eq!(shown["cost_us"], 1_500_000);

    let stats = json(&["stats", d], 0);
    assert_eq!(stats["recorded_cost_us"], 1_750_000);
    assert_eq!(stats["entries_with_cost"], 2);
    let slow = stats["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == "m::slow")
        .expect("m::slow");
    assert_eq!(slow["cost_us"], 1_750_000);
}
