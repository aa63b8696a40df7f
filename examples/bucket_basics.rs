//! The `Bucket` API on its own: insert, get, expiry, deferred writes, prune.
//!
//! Run with `cargo run --example bucket_basics`. The bucket lives under `target/`, so a second run finds the
//! entries the first one wrote.

use std::time::Duration;

use bucketcache::{deferred_write, Bucket, JsonBackend};

fn main() -> bucketcache::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/example-caches/bucket_basics");
    let bucket = Bucket::builder(&dir).hours(1).build()?;
    println!("bucket at {}", bucket.path().display());

    let key = ("report", 2026u32);
    match bucket.get::<Vec<u64>>(&key)? {
        Some(v) => println!("found the report from an earlier run: {v:?}"),
        None => {
            let report: Vec<u64> = (1..=8).map(|i| i * i).collect();
            bucket.insert(&key, &report)?;
            println!("computed and stored the report: {report:?} (run again to see it loaded)");
        }
    }

    // A short-lived entry in a JSON bucket sharing nothing with the first.
    let json = Bucket::builder(dir.join("json"))
        .backend(JsonBackend::new())
        .lifetime(Duration::from_millis(50))
        .build()?;
    json.insert("greeting", &serde_json::json!({"hello": "world"}))?;
    println!("json entry now: {:?}", json.get::<serde_json::Value>("greeting")?);
    std::thread::sleep(Duration::from_millis(60));
    println!(
        "json entry after its lifetime: {:?}",
        json.get::<serde_json::Value>("greeting")?
    );

    // Many writes, one sync.
    deferred_write(&bucket, |d| {
        for i in 0..100u32 {
            d.insert(&("square", i), &(u64::from(i) * u64::from(i)))?;
        }
        Ok(())
    })?;
    println!(
        "square of 12 from the bucket: {:?}",
        bucket.get::<u64>(&("square", 12u32))?
    );

    let pruned = bucket.prune_directory()?;
    println!("prune removed {} files ({} bytes)", pruned.num, pruned.size);
    Ok(())
}
