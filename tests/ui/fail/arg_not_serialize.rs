use bucketcache::bucket_cache;

struct Connection;

#[bucket_cache]
fn f(x: u32, conn: Connection) -> u32 {
    let _ = conn;
    x
}

fn main() {
    f(1, Connection);
}
