use bucketcache::bucket_cache;

#[bucket_cache(nocache = "refresh", ignore(refresh))]
fn f(x: u32, refresh: bool) -> u32 {
    let _ = refresh;
    x
}

fn main() {
    f(1, false);
}
