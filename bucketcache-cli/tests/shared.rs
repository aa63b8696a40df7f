//! `bucketcache shared`: a Redis namespace written through the library's shared tier, read and cleared by the tool.

mod common;

use bucketcache::{Bucket, RedisTier};
use bucketcache_suite::redis_server::RedisServer;
use common::bin;
use serde_json::Value;

fn shared_json(server: &RedisServer, ns: &str, extra: &[&str], code: i32) -> Value {
    let out = bin()
        .args(["--json", "shared", "--url", &server.url(), "--namespace", ns])
        .args(extra)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn shared_lists_a_namespace_per_function_and_clears_it() {
    let Some(server) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let tier = RedisTier::builder(server.url()).namespace("cli").build().expect("tier");
    let bucket = Bucket::builder(dir.path()).shared(tier).build().expect("bucket");
    for i in 0..3u32 {
        let key = bucket.key_hash(&i).expect("hash");
        bucket
            .insert_hashed(&key, &vec![i; 10], Some("my_crate::f"))
            .expect("insert");
    }
    let key = bucket.key_hash("g").expect("hash");
    bucket.insert_hashed(&key, &1u8, Some("my_crate::g")).expect("insert");
    // Another namespace, untouched by what follows.
    let other = RedisTier::builder(server.url())
        .namespace("keep")
        .build()
        .expect("tier");
    Bucket::builder(dir.path().join("o"))
        .shared(other)
        .build()
        .expect("bucket")
        .insert("x", &1u8)
        .expect("insert");

    let r = shared_json(&server, "cli", &[], 0);
    assert_eq!(r["keys"], 4);
    assert_eq!(r["entries"]["count"], 4);
    assert_eq!(r["functions"]["my_crate::f"]["count"], 3);
    assert_eq!(r["functions"]["my_crate::g"]["count"], 1);
    assert_eq!(r["foreign"]["count"], 0);

    // Garbage at an entry key: reported, exit code 1.
    let mut con = server.con();
    redis::cmd("SET")
        .arg("cli:e:00")
        .arg("garbage")
        .query::<()>(&mut con)
        .expect("set");
    let r = shared_json(&server, "cli", &[], 1);
    assert_eq!(r["foreign"]["count"], 1);

    // Clearing without a terminal and without --yes refuses (exit 2) and removes nothing.
    let out = bin()
        .args(["shared", "--url", &server.url(), "--namespace", "cli", "--clear"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(server.keys("cli:*").len(), 5);
    let r = shared_json(&server, "cli", &["--clear", "--yes"], 1);
    assert_eq!(r["removed"], 5);
    assert!(server.keys("cli:*").is_empty());
    assert_eq!(server.keys("keep:*").len(), 1, "another namespace is untouched");
}

#[test]
fn shared_says_what_is_wrong() {
    let out = bin()
        .args(["shared", "--url", "http://nope"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid Redis URL"));
    let port = bucketcache_suite::redis_server::free_port();
    let out = bin()
        .args(["shared", "--url", &format!("redis://127.0.0.1:{port}")])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Redis"));
}
