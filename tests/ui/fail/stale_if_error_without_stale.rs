use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1m", stale_if_error)]
fn f(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {
    let _ = f(1);
}
