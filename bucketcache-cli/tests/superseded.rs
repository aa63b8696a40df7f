//! Code versions: `ls` shows each entry's, `stats` counts the entries of superseded versions (a function whose
//! entries carry more than one code version: all but the version written most recently), `ls --superseded` lists
//! them and `prune --superseded` removes them.

mod common;

use std::time::Duration;

use bucketcache::{Bucket, ManualClock, WriteOptions};
use common::{json, F, G};

const OLD: [u8; 16] = [1; 16];
const NEW: [u8; 16] = [2; 16];

#[test]
fn entries_of_superseded_code_versions_are_shown_and_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::starting_now();
    let bucket = Bucket::builder(dir.path())
        .clock(clock.clone())
        .build()
        .expect("bucket");
    let write = |key: &str, function: &str, code: Option<[u8; 16]>| {
        let hash = bucket.key_hash(key).expect("hash");
        let mut opts = WriteOptions::default().function(function);
        if let Some(c) = code {
            opts = opts.code(c);
        }
        bucket.insert_with(&hash, &7u32, &opts).expect("insert");
    };
    write("f old 1", F, Some(OLD));
    write("f old 2", F, Some(OLD));
    write("g only", G, Some(OLD)); // one version: never superseded
    write("f none", F, None); // no code version recorded: never superseded
    clock.advance(Duration::from_secs(60));
    write("f new", F, Some(NEW));
    let d = dir.path().to_str().expect("utf-8");

    let ls = json(&["ls", d], 0);
    let rows = ls.as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    let superseded: Vec<_> = rows.iter().filter(|r| r["superseded"] == true).collect();
    assert_eq!(superseded.len(), 2, "{ls}");
    assert!(superseded
        .iter()
        .all(|r| r["function"] == F && r["code"] == "01".repeat(16)));
    assert!(rows
        .iter()
        .any(|r| r["code"] == "02".repeat(16) && r["superseded"] == false));

    let only = json(&["ls", d, "--superseded"], 0);
    assert_eq!(only.as_array().map(Vec::len), Some(2));

    let stats = json(&["stats", d], 0);
    assert_eq!(stats["superseded"]["count"], 2, "{stats}");

    let dry = json(&["prune", d, "--superseded", "--dry-run"], 0);
    assert_eq!(dry["superseded"]["count"], 2);
    assert_eq!(
        json(&["ls", d], 0).as_array().map(Vec::len),
        Some(5),
        "a dry run removes nothing"
    );

    let pruned = json(&["prune", d, "--superseded"], 0);
    assert_eq!(pruned["superseded"]["count"], 2, "{pruned}");
    assert_eq!(pruned["remaining"]["count"], 3);
    let left = json(&["ls", d], 0);
    assert!(left.as_array().expect("rows").iter().all(|r| r["superseded"] == false));
    assert_eq!(
        json(&["prune", d], 0)["removed"]["count"],
        0,
        "without the flag nothing more goes"
    );
}
