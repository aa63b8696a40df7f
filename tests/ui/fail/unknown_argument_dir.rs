use bucketcache::bucket_cache;

#[bucket_cache(dir = "cache")]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
