use bucketcache::bucket_cache;

#[bucket_cache]
fn f(x: u32, out: &mut Vec<u32>) -> u32 {
    out.push(x);
    x
}

fn main() {
    f(1, &mut Vec::new());
}
