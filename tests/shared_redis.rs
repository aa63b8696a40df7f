//! The Redis shared tier against a real `redis-server` (started per test on a free loopback port, no persistence).
//! "Machines" are separate local directories, and for the single-flight cases child processes
//! (`bucketcache-machine`). Every fault leaves the function's result unchanged.
#![cfg(feature = "redis")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bucketcache::{Bucket, HitSource, RedisTier};
use bucketcache_suite::redis_server::{free_port, RedisServer};

const MACHINE: &str = env!("CARGO_BIN_EXE_bucketcache-machine");

fn tier(url: &str, namespace: &str) -> bucketcache::RedisTierBuilder {
    RedisTier::builder(url).namespace(namespace)
}

fn machine(dir: &Path, server: &RedisServer, ns: &str) -> Bucket {
    Bucket::builder(dir)
        .shared(tier(&server.url(), ns).build().expect("tier"))
        .build()
        .expect("bucket")
}

#[test]
fn a_value_computed_on_one_machine_is_a_hit_on_another_with_its_stamps() {
    let Some(server) = RedisServer::start() else { return };
    let (a, b) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let ma = machine(a.path(), &server, "t1");
    let mb = machine(b.path(), &server, "t1");
    ma.insert("report", &vec![1u32, 2, 3]).expect("insert");
    let key = mb.key_hash("report").expect("hash");
    let hit = mb.lookup::<Vec<u32>>(&key).expect("lookup").expect("shared hit");
    assert_eq!(hit.value, vec![1, 2, 3]);
    assert_eq!(hit.source, HitSource::Shared);
    // Copied into b's directory byte for byte: the original written and expiry stamps.
    let theirs = std::fs::read(ma.entry_path(&key)).expect("a's file");
    let ours = std::fs::read(mb.entry_path(&key)).expect("b's copy");
    assert_eq!(theirs, ours);
    mb.unload_all();
    let again = mb.lookup::<Vec<u32>>(&key).expect("lookup").expect("local hit");
    assert_eq!(again.source, HitSource::Disk);
    let stats = mb.stats().shared.expect("tier attached");
    assert_eq!((stats.hits, stats.errors, stats.timeouts), (1, 0, 0));
    assert_eq!(ma.stats().shared.expect("tier").writes, 1);
    // Every key the tier wrote is in its namespace.
    assert!(
        server.keys("*").iter().all(|k| k.starts_with("t1:")),
        "{:?}",
        server.keys("*")
    );
}

#[test]
fn remove_is_local_and_remove_shared_is_explicit() {
    let Some(server) = RedisServer::start() else { return };
    let (a, b) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let ma = machine(a.path(), &server, "rm");
    let mb = machine(b.path(), &server, "rm");
    ma.insert("k", &1u8).expect("insert");
    assert!(ma.remove("k").expect("remove"));
    assert_eq!(server.keys("rm:e:*").len(), 1, "a local remove leaves the shared entry");
    assert_eq!(mb.get::<u8>("k").expect("get"), Some(1));
    assert!(ma.remove_shared("k").expect("remove_shared"));
    assert!(server.keys("rm:e:*").is_empty());
    ma.prune_directory().expect("prune");
}

#[test]
fn a_keys_ttl_never_exceeds_the_entrys_remaining_lifetime() {
    let Some(server) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let bucket = Bucket::builder(dir.path())
        .seconds(30)
        .shared(tier(&server.url(), "ttl").build().expect("tier"))
        .build()
        .expect("bucket");
    bucket.insert("k", &1u8).expect("insert");
    let key = server.keys("ttl:e:*").pop().expect("one entry");
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut server.con()).expect("pttl");
    assert!(pttl > 0 && pttl <= 30_000, "PTTL {pttl}");
    // Without a lifetime, no expiry.
    let forever = machine(dir.path(), &server, "ttl2");
    forever.insert("k", &1u8).expect("insert");
    let key = server.keys("ttl2:e:*").pop().expect("one entry");
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut server.con()).expect("pttl");
    assert_eq!(pttl, -1);
}

#[test]
fn read_only_writes_nothing_and_namespaces_isolate() {
    let Some(server) = RedisServer::start() else { return };
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    let reader = Bucket::builder(a.path())
        .shared(tier(&server.url(), "ns").read_only(true).build().expect("tier"))
        .build()
        .expect("bucket");
    reader.insert("k", &7u32).expect("insert");
    assert!(server.keys("*").is_empty(), "read-only wrote {:?}", server.keys("*"));
    assert_eq!(reader.stats().shared.expect("tier").writes_skipped, 1);
    let key = reader.key_hash("k").expect("hash");
    assert!(matches!(
        reader.begin_shared_flight::<u32>(&key, Duration::from_secs(1)),
        bucketcache::SharedFlight::Compute(None)
    ));
    assert!(server.keys("*").is_empty(), "read-only took a lease");

    let writer = machine(b.path(), &server, "ns");
    writer.insert("k", &8u32).expect("insert");
    reader.unload_all();
    std::fs::remove_dir_all(a.path().join("entries-v2")).expect("clear a");
    let reader = Bucket::builder(a.path())
        .shared(tier(&server.url(), "ns").read_only(true).build().expect("tier"))
        .build()
        .expect("bucket");
    assert_eq!(reader.get::<u32>("k").expect("get"), Some(8), "read-only still reads");
    let other = machine(c.path(), &server, "other");
    assert_eq!(
        other.get::<u32>("k").expect("get"),
        None,
        "another namespace sees nothing"
    );
}

#[test]
fn garbage_at_every_key_of_the_namespace_is_a_miss() {
    let Some(server) = RedisServer::start() else { return };
    let (a, b) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let ma = machine(a.path(), &server, "g");
    for i in 0..20u32 {
        ma.insert(&i, &format!("v{i}")).expect("insert");
    }
    let keys = server.keys("g:*");
    assert_eq!(keys.len(), 20);
    let mut con = server.con();
    let garbage: [&[u8]; 4] = [b"", b"BKTCACHE\x02\x00garbage", &[0xff; 300], b"not an entry at all"];
    for (i, k) in keys.iter().enumerate() {
        redis::cmd("SET")
            .arg(k)
            .arg(garbage[i % 4])
            .query::<()>(&mut con)
            .expect("set");
    }
    // An entry of another key, put at this key: verified and refused too.
    let mb = machine(b.path(), &server, "g");
    for i in 0..20u32 {
        assert_eq!(mb.get::<String>(&i).expect("get"), None, "garbage at key {i}");
    }
    let stats = mb.stats().shared.expect("tier");
    assert_eq!(stats.rejected, 20);
    assert_eq!(stats.hits, 0);
    // The next write replaces the garbage.
    mb.insert(&3u32, &"fresh".to_string()).expect("insert");
    let c = tempfile::tempdir().expect("c");
    assert_eq!(
        machine(c.path(), &server, "g").get::<String>(&3u32).expect("get"),
        Some("fresh".into())
    );
}

#[test]
fn an_absent_server_costs_one_connect_timeout_per_cool_off() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let bucket = Bucket::builder(dir.path())
        .shared(
            RedisTier::builder(format!("redis://127.0.0.1:{port}/0"))
                .build()
                .expect("tier"),
        )
        .build()
        .expect("bucket");
    let start = Instant::now();
    for i in 0..100u32 {
        assert_eq!(bucket.get::<u32>(&i).expect("get"), None);
        bucket.insert(&i, &i).expect("insert works locally");
        assert_eq!(bucket.get::<u32>(&i).expect("get"), Some(i));
    }
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    let s = bucket.stats().shared.expect("tier");
    println!(
        "absent server: 300 calls (100 x get, insert, get) in {:?}; {s:?}",
        start.elapsed()
    );
    assert_eq!(s.errors + s.timeouts, 1, "one failure, then the cool-off: {s:?}");
    assert!(s.cooling_off >= 199, "{s:?}");
}

#[test]
fn a_stalled_server_costs_one_operation_timeout_then_recovers() {
    let Some(server) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let bucket = Bucket::builder(dir.path())
        .shared(tier(&server.url(), "stall").build().expect("tier"))
        .shared_cool_off(Duration::from_millis(1500))
        .build()
        .expect("bucket");
    bucket.insert("warm", &1u8).expect("insert"); // a pooled connection exists
    server.signal("STOP");
    let start = Instant::now();
    for i in 0..100u32 {
        bucket.insert(&i, &i).expect("insert works locally");
        assert_eq!(bucket.get::<u32>(&i).expect("get"), Some(i));
    }
    let stalled = start.elapsed();
    server.signal("CONT");
    assert!(stalled < Duration::from_secs(6), "{stalled:?}");
    let s = bucket.stats().shared.expect("tier");
    println!("stalled server: 200 calls in {stalled:?}; {s:?}");
    assert_eq!(s.timeouts, 1, "{s:?}");
    // After the cool-off the tier is used again.
    std::thread::sleep(Duration::from_millis(1600));
    bucket.insert("after", &2u8).expect("insert");
    assert!(bucket.stats().shared.expect("tier").writes >= 2);
    assert!(server.keys("stall:e:*").len() >= 2);
}

#[test]
fn a_server_killed_and_restarted_empty_is_used_again() {
    let Some(mut server) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let bucket = Bucket::builder(dir.path())
        .shared(tier(&server.url(), "re").build().expect("tier"))
        .shared_cool_off(Duration::from_millis(200))
        .build()
        .expect("bucket");
    bucket.insert("before", &1u8).expect("insert");
    server.restart_empty();
    // The pooled connection is dead: one failure, a short cool-off, then new connections.
    bucket.insert("during", &2u8).expect("insert works locally");
    std::thread::sleep(Duration::from_millis(300));
    bucket.insert("after", &3u8).expect("insert");
    assert_eq!(
        server.keys("re:e:*").len(),
        1,
        "only the write after the restart is there"
    );
    assert_eq!(
        bucket.get::<u8>("before").expect("get"),
        Some(1),
        "the local tier still has it"
    );
}

#[test]
fn noeviction_oom_skips_writes_and_eviction_turns_into_misses() {
    let Some(server) = RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let bucket = machine(dir.path(), &server, "oom");
    let big = vec![7u8; 200_000];
    for i in 0..40u32 {
        bucket.insert(&i, &big).expect("local write never fails for Redis");
        assert_eq!(bucket.get::<Vec<u8>>(&i).expect("get"), Some(big.clone()));
    }
    let s = bucket.stats().shared.expect("tier");
    assert!(
        s.writes > 0 && s.errors > 0,
        "some writes fit, the rest were refused (OOM): {s:?}"
    );
    assert_eq!(s.timeouts, 0);
    assert_eq!(s.cooling_off, 0, "an OOM refusal does not switch the tier off: {s:?}");

    let Some(lru) = RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]) else {
        return;
    };
    let (a, b) = (tempfile::tempdir().expect("a"), tempfile::tempdir().expect("b"));
    let ma = machine(a.path(), &lru, "lru");
    for i in 0..40u32 {
        ma.insert(&i, &big).expect("insert");
    }
    let mb = machine(b.path(), &lru, "lru");
    let found = (0..40u32)
        .filter(|i| mb.get::<Vec<u8>>(i).expect("get").is_some())
        .count();
    assert!(
        found > 0 && found < 40,
        "evicted keys are misses, kept ones hits: {found}"
    );
    assert_eq!(mb.stats().shared.expect("tier").rejected, 0);
}

fn spawn_machine(
    dir: &Path,
    server: &RedisServer,
    ns: &str,
    key: &str,
    log: &Path,
    sleep_ms: u64,
    lease: &str,
) -> Child {
    Command::new(MACHINE)
        .args([
            "compute",
            dir.to_str().expect("utf-8"),
            key,
            log.to_str().expect("utf-8"),
        ])
        .args([&sleep_ms.to_string(), "20000"])
        .env("BUCKETCACHE_REDIS_URL", server.url())
        .env("BUCKETCACHE_REDIS_NAMESPACE", ns)
        .env("BUCKETCACHE_REDIS_LEASE", lease)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn machine")
}

fn starts(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("start"))
        .count()
}

#[test]
fn four_machines_on_one_cold_key_run_the_body_once() {
    let Some(server) = RedisServer::start() else { return };
    let root = tempfile::tempdir().expect("root");
    let log = root.path().join("body.log");
    let children: Vec<Child> = (0..4)
        .map(|i| {
            spawn_machine(
                &root.path().join(format!("m{i}")),
                &server,
                "flight",
                "cold",
                &log,
                800,
                "5s",
            )
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(bucketcache_suite::child::success_output)
        .collect();
    for out in &outputs {
        assert!(out.starts_with("value value-of-cold "), "{out}");
    }
    assert_eq!(starts(&log), 1, "the body ran once across 4 machines: {outputs:?}");
}

#[test]
fn a_killed_computing_machine_is_taken_over_within_one_lease() {
    let Some(server) = RedisServer::start() else { return };
    let root = tempfile::tempdir().expect("root");
    let log = root.path().join("body.log");
    let mut first = spawn_machine(&root.path().join("m0"), &server, "kill", "k", &log, 60_000, "2s");
    let deadline = Instant::now() + Duration::from_secs(20);
    while starts(&log) == 0 {
        assert!(Instant::now() < deadline, "the first machine never started computing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let waiter_start = Instant::now();
    let second = spawn_machine(&root.path().join("m1"), &server, "kill", "k", &log, 100, "2s");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().expect("SIGKILL the computing machine");
    let _ = first.wait();
    let out = bucketcache_suite::child::success_output(second);
    let took = waiter_start.elapsed();
    assert!(out.starts_with("value value-of-k "), "{out}");
    assert!(out.contains("takeovers 1"), "{out}");
    println!("killed leader: the waiter had its value {took:?} after it started (2 s lease): {out}");
    assert!(took < Duration::from_secs(4), "a 2 s lease was taken over in {took:?}");
    assert_eq!(starts(&log), 2);
}

fn spawn_attr(dir: &Path, server: &RedisServer, ns: &str, key: &str, log: &Path, local: bool) -> Child {
    let mut cmd = Command::new(MACHINE);
    cmd.args(["attr", key, log.to_str().expect("utf-8"), "600"]);
    if local {
        cmd.arg("local");
    }
    cmd.env("BUCKETCACHE_DIR", dir)
        .env("BUCKETCACHE_REDIS_URL", server.url())
        .env("BUCKETCACHE_REDIS_NAMESPACE", ns)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn machine")
}

#[test]
fn the_attribute_uses_the_tier_from_the_environment_and_shared_false_keeps_a_function_local() {
    let Some(server) = RedisServer::start() else { return };
    let root = tempfile::tempdir().expect("root");
    let log = root.path().join("attr.log");
    let children: Vec<Child> = (0..3)
        .map(|i| spawn_attr(&root.path().join(format!("m{i}")), &server, "attr", "x", &log, false))
        .collect();
    for child in children {
        let out = bucketcache_suite::child::success_output(child);
        assert_eq!(out.trim(), "value value-of-x");
    }
    assert_eq!(starts(&log), 1, "3 machines through the attribute ran the body once");
    assert_eq!(server.keys("attr:e:*").len(), 1);

    let local_log = root.path().join("local.log");
    for i in 0..2 {
        let child = spawn_attr(
            &root.path().join(format!("l{i}")),
            &server,
            "attr",
            "x",
            &local_log,
            true,
        );
        assert_eq!(
            bucketcache_suite::child::success_output(child).trim(),
            "value value-of-x"
        );
    }
    assert_eq!(starts(&local_log), 2, "shared = false: each machine computes its own");
    assert_eq!(server.keys("attr:e:*").len(), 1, "and uploads nothing");
}

#[test]
fn entries_over_the_size_limit_stay_local() {
    let Some(server) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let bucket = Bucket::builder(dir.path())
        .shared(tier(&server.url(), "big").max_value_bytes(4096).build().expect("tier"))
        .build()
        .expect("bucket");
    bucket.insert("small", &vec![1u8; 100]).expect("insert");
    bucket.insert("big", &vec![1u8; 10_000]).expect("insert");
    assert_eq!(server.keys("big:e:*").len(), 1, "only the small entry was uploaded");
    let s = bucket.stats().shared.expect("tier");
    assert_eq!((s.writes, s.writes_skipped), (1, 1));
    assert_eq!(
        bucket.get::<Vec<u8>>("big").expect("get"),
        Some(vec![1u8; 10_000]),
        "kept locally"
    );
}
