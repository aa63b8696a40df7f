//! The shared tier against `cached`'s `RedisCache`, on one `redis-server` started for the run (loopback, no
//! persistence), in one process, alternating rounds of ours and theirs.
//!
//! Run: `cargo bench --bench shared --features redis`. Value: `Vec<u64>` of 16 elements, as in `compare`.
//!
//! - shared-tier hit: a bucket whose local directory and memory tier do not hold the key (each key is read once, so
//!   every read goes to Redis; ours then copies the entry into its local directory, as a shared hit does);
//! - store: `insert` (local file + Redis `SET ... PX`) against `cache_set`;
//! - and, to show where the time goes, the tier alone: `SharedTier::get` + `entry::verify` + decode (what a shared
//!   hit costs without its local copy), and `SharedTier::put` of the entry bytes (a store without its local file).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bucketcache::{Backend, BincodeBackend, Bucket, RedisTier, SharedTier};
use bucketcache_suite::redis_server::RedisServer;
use cached::{ConcurrentCached, RedisCache};

const KEYS: u64 = 2000;
const ROUNDS: usize = 5;

fn value(i: u64) -> Vec<u64> {
    (0..16).map(|j| i.wrapping_mul(31).wrapping_add(j)).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bucket(dir: &std::path::Path, url: &str, ns: &str) -> Bucket {
    Bucket::builder(dir)
        .memory_max_bytes(0)
        .lifetime(Duration::from_secs(3600))
        .shared(RedisTier::builder(url).namespace(ns).build().expect("tier"))
        .build()
        .expect("bucket")
}

fn main() {
    let Some(server) = RedisServer::start() else {
        panic!("the shared bench needs redis-server (apt-get install redis-server)");
    };
    let url = server.url();
    let tmp = tempfile::tempdir().expect("tmp");
    let theirs: RedisCache<u64, Vec<u64>> = RedisCache::builder("bench")
        .ttl(Duration::from_secs(3600))
        .connection_string(&url)
        .build()
        .expect("RedisCache");

    let (mut hit_ours, mut hit_theirs, mut store_ours, mut store_theirs) = (vec![], vec![], vec![], vec![]);
    let (mut tier_get, mut tier_put) = (vec![], vec![]);
    let backend = BincodeBackend::new();
    for round in 0..ROUNDS {
        let ns = format!("r{round}");
        // Stores: ours writes a local file and the shared entry; theirs one SET.
        let writer = bucket(&tmp.path().join(format!("w{round}")), &url, &ns);
        let t = Instant::now();
        for i in 0..KEYS {
            writer.insert(&i, &value(i)).expect("insert");
        }
        store_ours.push(t.elapsed().as_secs_f64() / KEYS as f64);
        let t = Instant::now();
        for i in 0..KEYS {
            theirs.cache_set(i + round as u64 * KEYS, value(i)).expect("cache_set");
        }
        store_theirs.push(t.elapsed().as_secs_f64() / KEYS as f64);
        // Shared hits: a fresh local directory, so every first read goes to Redis.
        let reader = bucket(&tmp.path().join(format!("r{round}")), &url, &ns);
        let t = Instant::now();
        for i in 0..KEYS {
            assert!(black_box(reader.get::<Vec<u64>>(&i).expect("get")).is_some());
        }
        hit_ours.push(t.elapsed().as_secs_f64() / KEYS as f64);
        let t = Instant::now();
        for i in 0..KEYS {
            assert!(black_box(theirs.cache_get(&(i + round as u64 * KEYS)).expect("cache_get")).is_some());
        }
        hit_theirs.push(t.elapsed().as_secs_f64() / KEYS as f64);
        let s = reader.stats().shared.expect("tier");
        assert_eq!(s.hits, KEYS, "every read was a shared hit: {s:?}");
        // The tier alone: fetch, verify and decode each entry; then put the same bytes back.
        let tier = RedisTier::builder(&url).namespace(&ns).build().expect("tier");
        let hashes: Vec<_> = (0..KEYS).map(|i| writer.key_hash(&i).expect("hash")).collect();
        let mut bytes = Vec::with_capacity(KEYS as usize);
        let t = Instant::now();
        for h in &hashes {
            let file = tier.get(h).expect("get").expect("present");
            let (_, at) = bucketcache::entry::verify(&file).expect("valid");
            black_box(backend.decode::<Vec<u64>>(&file[at..]).expect("decode"));
            bytes.push(file);
        }
        tier_get.push(t.elapsed().as_secs_f64() / KEYS as f64);
        let t = Instant::now();
        for (h, file) in hashes.iter().zip(&bytes) {
            tier.put(h, file, Some(Duration::from_secs(3600))).expect("put");
        }
        tier_put.push(t.elapsed().as_secs_f64() / KEYS as f64);
    }
    let row = |name: &str, ours: Vec<f64>, theirs: Vec<f64>| {
        let (o, t) = (median(ours), median(theirs));
        println!("{name:<28} {:>10.1} µs {:>10.1} µs {:>8.2}x", o * 1e6, t * 1e6, o / t);
    };
    println!(
        "{:<28} {:>13} {:>13} {:>9}",
        "measure (median of rounds)", "bucketcache", "cached Redis", "ratio"
    );
    row("shared-tier hit", hit_ours, hit_theirs.clone());
    row("store", store_ours, store_theirs.clone());
    row("  tier only: get+verify+decode", tier_get, hit_theirs);
    row("  tier only: put", tier_put, store_theirs);
}
