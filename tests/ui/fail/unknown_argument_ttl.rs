use bucketcache::bucket_cache;

#[bucket_cache(ttl = "1h")]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
