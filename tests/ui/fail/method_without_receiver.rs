use bucketcache::bucket_cache;

struct Service;

impl Service {
    #[bucket_cache(method)]
    fn compute(x: u32) -> u32 {
        x
    }
}

fn main() {
    Service::compute(1);
}
