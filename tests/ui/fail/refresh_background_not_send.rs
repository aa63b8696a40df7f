use std::rc::Rc;

use bucketcache::bucket_cache;

#[bucket_cache(lifetime = "1m", stale = "10m", refresh = "background", ignore(log))]
fn f(x: u32, log: Rc<String>) -> u32 {
    let _ = log;
    x
}

fn main() {
    f(1, Rc::new(String::new()));
}
