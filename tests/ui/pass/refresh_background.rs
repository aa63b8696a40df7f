//! `refresh = "background"` on the functions it supports: owned and `&'static` arguments, a generic type with the
//! bounds the refresh thread needs, ignored and `nocache` parameters, a `mut` binding, a `static` bucket.

use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(std::env::temp_dir().join("bucketcache-ui-bg")).expect("bucket"));

#[bucket_cache(lifetime = "1m", stale = "10m", refresh = "background", ignore(log), nocache = "force")]
fn owned(mut name: String, tag: &'static str, log: std::sync::Arc<String>, force: bool) -> String {
    name.push_str(tag);
    let _ = (&log, force);
    name
}

#[bucket_cache(bucket = CACHE, lifetime = "1m", stale = "5m", early_refresh, refresh = "background", stale_if_error)]
fn generic<T: serde::Serialize + Send + 'static>(value: T) -> Result<u32, String> {
    let _ = value;
    Ok(1)
}

fn main() {
    let _ = owned as fn(String, &'static str, std::sync::Arc<String>, bool) -> String;
    let _ = generic::<u8> as fn(u8) -> Result<u32, String>;
}
