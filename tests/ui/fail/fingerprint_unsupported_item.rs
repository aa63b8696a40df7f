#[bucketcache::fingerprint]
trait Scale {
    fn scale(&self) -> u32;
}

#[bucketcache::fingerprint(version = "2")]
fn helper() {}

fn main() {
    helper();
}
