use bucketcache::bucket_cache;

mod model {
    pub fn scale() -> u32 {
        3
    }
}

#[bucket_cache(deps(model::scale))]
fn f(x: u32) -> u32 {
    x * model::scale()
}

fn main() {
    f(1);
}
