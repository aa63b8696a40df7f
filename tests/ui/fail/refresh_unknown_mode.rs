use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1m", stale = "10m", refresh = "force")]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
