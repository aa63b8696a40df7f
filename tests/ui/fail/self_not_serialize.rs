use bucketcache::bucket_cache;

struct Client {
    token: String,
}

impl Client {
    #[bucket_cache]
    fn fetch(&self, id: u32) -> String {
        format!("{}{id}", self.token)
    }
}

fn main() {
    Client { token: String::new() }.fetch(1);
}
