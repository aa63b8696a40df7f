use bucketcache::bucket_cache;

#[bucket_cache(lifetime = 3600)]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
