use bucketcache::bucket_cache;

#[bucket_cache(nocache = "refresh")]
fn f(x: u32, reload: bool) -> u32 {
    let _ = reload;
    x
}

fn main() {
    f(1, false);
}
