use bucketcache::bucket_cache;

#[bucket_cache(nocache = "refresh")]
fn f(x: u32, refresh: u8) -> u32 {
    let _ = refresh;
    x
}

fn main() {
    f(1, 0);
}
