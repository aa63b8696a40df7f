use bucketcache::bucket_cache;

#[bucket_cache(ignore(verbose))]
fn f(x: u32, verbosity: u8) -> u32 {
    let _ = verbosity;
    x
}

fn main() {
    f(1, 0);
}
