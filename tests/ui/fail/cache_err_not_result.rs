use bucketcache::bucket_cache;

#[bucket_cache(cache_err)]
fn f(x: u32) -> Option<u32> {
    Some(x)
}

fn main() {
    f(1);
}
