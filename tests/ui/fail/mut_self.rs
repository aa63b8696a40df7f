use bucketcache::bucket_cache;

#[derive(serde::Serialize)]
struct Counter {
    n: u32,
}

impl Counter {
    #[bucket_cache]
    fn bump(&mut self, by: u32) -> u32 {
        self.n += by;
        self.n
    }
}

fn main() {
    Counter { n: 0 }.bump(1);
}
