use bucketcache::bucket_cache;

#[bucket_cache(early_refresh = 1.5)]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
