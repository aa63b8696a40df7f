use bucketcache::bucket_cache;

#[bucket_cache(deps(file = 3))]
fn f(x: u32) -> u32 {
    x
}

#[bucket_cache(deps(file = "/etc/hosts"))]
fn g(x: u32) -> u32 {
    x
}

#[bucketcache::fingerprint(deps(file = "data/missing.csv"))]
fn h() {}

fn main() {
    f(1);
    g(1);
    h();
}
