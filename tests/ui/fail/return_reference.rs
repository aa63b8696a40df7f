use bucketcache::bucket_cache;

#[bucket_cache]
fn f(x: u32) -> &'static str {
    if x > 0 { "positive" } else { "zero" }
}

fn main() {
    f(1);
}
