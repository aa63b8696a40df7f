use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1h", max_age = "limit")]
fn f(x: u32, limit: u64) -> u32 {
    let _ = limit;
    x
}

fn main() {
    f(1, 60);
}
