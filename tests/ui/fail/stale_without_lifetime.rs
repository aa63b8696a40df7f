use bucketcache::bucket_cache;

#[bucket_cache(stale = "10m")]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
