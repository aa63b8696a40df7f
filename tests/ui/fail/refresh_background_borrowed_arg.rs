use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1m", stale = "10m", refresh = "background")]
fn f(name: &str) -> u32 {
    name.len() as u32
}

fn main() {
    f("x");
}
