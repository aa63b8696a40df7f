use std::sync::Arc;

use bucketcache::{bucket_cache, Bucket};

fn cache() -> Arc<Bucket> {
    Arc::new(Bucket::new("/tmp/bucketcache-ui").expect("bucket"))
}

#[bucket_cache(bucket = cache(), lifetime = "1m", stale = "10m", refresh = "background")]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
