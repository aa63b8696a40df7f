use bucketcache::bucket_cache;

#[derive(serde::Serialize, serde::Deserialize)]
struct Report(u32);

#[bucket_cache]
fn f(x: u32) -> Report {
    Report(x)
}

fn main() {
    f(1);
}
