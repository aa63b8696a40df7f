use bucketcache::bucket_cache;

#[derive(serde::Serialize)]
struct Service;

impl Service {
    #[bucket_cache(lifetime = "1m", stale = "10m", refresh = "background")]
    fn f(&self, x: u32) -> u32 {
        x
    }
}

fn main() {
    Service.f(1);
}
