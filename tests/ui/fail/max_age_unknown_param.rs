use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1h", max_age = "limit")]
fn f(x: u32, max_age: std::time::Duration) -> u32 {
    let _ = max_age;
    x
}

fn main() {
    f(1, std::time::Duration::ZERO);
}
