use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static SHARED: LazyLock<Bucket> = LazyLock::new(|| Bucket::new("cache").expect("bucket"));

#[bucket_cache(bucket = SHARED, path = "cache")]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
