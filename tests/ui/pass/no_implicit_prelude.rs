//! A calling module without the prelude.

mod quiet {
    #![no_implicit_prelude]

    pub static DIR: ::std::sync::LazyLock<::tempfile::TempDir> =
        ::std::sync::LazyLock::new(|| ::tempfile::tempdir().expect("tempdir"));
    pub static BUCKET: ::std::sync::LazyLock<::bucketcache::Bucket> =
        ::std::sync::LazyLock::new(|| ::bucketcache::Bucket::new(DIR.path()).expect("bucket"));

    fn hit(_: &::bucketcache::CachedCallInfo<'_, ::std::vec::Vec<u8>>) {}

    #[::bucketcache::bucket_cache(bucket = BUCKET, nocache = "fresh", on_cached = hit, lifetime = "1d")]
    pub fn bytes(n: u8, fresh: bool) -> ::std::vec::Vec<u8> {
        ::std::vec![n; 3]
    }

    #[::bucketcache::bucket_cache(path = "target/test-caches/ui-no-implicit-prelude", backend = json)]
    pub fn opt(n: u8) -> ::std::option::Option<u8> {
        ::std::option::Option::Some(n)
    }

    #[::bucketcache::bucket_cache(bucket = BUCKET)]
    pub async fn later(n: u8) -> ::std::result::Result<u8, ()> {
        ::std::result::Result::Ok(n)
    }
}

fn main() {
    assert_eq!(quiet::bytes(1, false), vec![1, 1, 1]);
    assert_eq!(quiet::bytes(1, false), vec![1, 1, 1]);
    assert_eq!(quiet::opt(2), Some(2));
    let _future = quiet::later(3);
}
