use bucketcache::{bucket_cache, CachedCallInfo};

fn log_hit(info: &CachedCallInfo<'_, u32>) {
    println!("{}", info.return_value);
}

#[bucket_cache(on_cached = log_hit)]
fn f(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {
    let _ = f(1);
}
