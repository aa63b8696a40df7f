use bucketcache::bucket_cache;

// A cached free function has a fingerprint item of its own: a second one would be "defined multiple times".
#[bucketcache::fingerprint]
#[bucket_cache]
fn above(x: u32) -> u32 {
    x
}

#[bucket_cache]
#[bucketcache::fingerprint]
fn below(x: u32) -> u32 {
    x
}

fn main() {
    above(1);
    below(1);
}
