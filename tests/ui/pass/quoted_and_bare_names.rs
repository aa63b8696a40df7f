use bucketcache::bucket_cache;

#[bucket_cache(backend = "json", nocache = refresh, path = "target/ui-quoted-names")]
fn f(x: u32, refresh: bool) -> u32 {
    let _ = refresh;
    x
}

#[bucket_cache(backend = "msgpack", nocache = "refresh", path = "target/ui-quoted-names")]
fn g(x: u32, refresh: bool) -> u32 {
    let _ = refresh;
    x
}

fn main() {
    assert_eq!(f(1, false), 1);
    assert_eq!(g(1, false), 1);
}
