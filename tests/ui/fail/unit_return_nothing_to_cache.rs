use bucketcache::bucket_cache;

#[bucket_cache]
fn f(x: u32) {
    println!("{x}");
}

fn main() {
    f(1);
}
