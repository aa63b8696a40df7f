//! User types named `Result`, `Option`, `Ok`, `Some`, `None`, `Box`, `Vec`, `Duration` in scope: the expansion
//! names its own items by absolute path.
#![allow(dead_code, non_camel_case_types)]

use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Result {
    ok: bool,
}
struct Option;
struct Ok;
struct Some;
struct None;
struct Box;
struct Vec;
struct Duration;
struct drop;

#[bucket_cache(bucket = BUCKET, lifetime = "1h")]
fn check(x: u32) -> Result {
    Result { ok: x > 0 }
}

#[bucket_cache(bucket = BUCKET)]
fn std_result(x: u32) -> std::result::Result<u32, String> {
    std::result::Result::Ok(x)
}

fn main() {
    assert_eq!(check(1), Result { ok: true });
    assert_eq!(check(1), Result { ok: true });
    assert_eq!(std_result(2), std::result::Result::Ok(2));
}
