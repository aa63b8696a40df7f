use bucketcache::bucket_cache;

#[bucket_cache(cache_none)]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
