use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1m", stale = "10m", refresh = "background")]
async fn f(x: u32) -> u32 {
    x
}

fn main() {
    let _ = f(1);
}
