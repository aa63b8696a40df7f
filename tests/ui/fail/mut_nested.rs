use std::pin::Pin;

use bucketcache::bucket_cache;

#[derive(serde::Serialize)]
struct Counter {
    n: u32,
}

impl Counter {
    #[bucket_cache]
    fn bump_pinned(self: Pin<&mut Self>, by: u32) -> u32 {
        by
    }
}

#[bucket_cache]
fn fill(slots: Vec<&mut u32>) -> usize {
    slots.len()
}

fn main() {
    let mut c = Counter { n: 0 };
    let _ = Pin::new(&mut c).bump_pinned(1);
    let mut a = 1;
    let _ = fill(vec![&mut a]);
}
