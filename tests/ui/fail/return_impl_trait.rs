use bucketcache::bucket_cache;

#[bucket_cache]
fn f(x: u32) -> impl Clone {
    x
}

fn main() {
    f(1);
}
