use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1h", cache_err = "soon")]
fn f(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {
    let _ = f(1);
}
