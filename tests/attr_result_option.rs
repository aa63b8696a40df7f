//! Return shapes: a `Result` caches only `Ok` (errors are retried) and an `Option` only `Some`, so only the
//! `Ok`/`Some` type must be `Serialize`; `cache_err` and `cache_none` cache the whole value.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};
use serde::{Deserialize, Serialize};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

static PARSE: AtomicUsize = AtomicUsize::new(0);

/// `std::io::Error` is not `Serialize`: fine, errors are never stored.
#[bucket_cache(bucket = BUCKET)]
fn parse(text: &str) -> Result<u32, std::io::Error> {
    PARSE.fetch_add(1, Ordering::SeqCst);
    let n = text
        .trim()
        .parse::<u32>()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(n)
}

#[test]
fn ok_is_cached_err_is_retried() {
    assert_eq!(parse("12").expect("ok"), 12);
    assert_eq!(parse("12").expect("ok"), 12);
    assert_eq!(PARSE.load(Ordering::SeqCst), 1);
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(PARSE.load(Ordering::SeqCst), 3, "each error call ran the body");
}

static FIND: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn find(n: u32) -> Option<String> {
    FIND.fetch_add(1, Ordering::SeqCst);
    n.is_multiple_of(2).then(|| format!("even {n}"))
}

#[test]
fn some_is_cached_none_is_retried() {
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(FIND.load(Ordering::SeqCst), 1);
    assert_eq!(find(3), None);
    assert_eq!(find(3), None);
    assert_eq!(FIND.load(Ordering::SeqCst), 3);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LookupError {
    NotFound(u32),
}

static STRICT: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, cache_err)]
fn strict(n: u32) -> Result<u32, LookupError> {
    STRICT.fetch_add(1, Ordering::SeqCst);
    if n > 10 {
        Err(LookupError::NotFound(n))
    } else {
        Ok(n)
    }
}

#[test]
fn cache_err_caches_errors_too() {
    assert_eq!(strict(11), Err(LookupError::NotFound(11)));
    assert_eq!(strict(11), Err(LookupError::NotFound(11)));
    assert_eq!(strict(1), Ok(1));
    assert_eq!(strict(1), Ok(1));
    assert_eq!(STRICT.load(Ordering::SeqCst), 2);
}

static MAYBE: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, cache_none)]
fn maybe(n: u32) -> Option<u32> {
    MAYBE.fetch_add(1, Ordering::SeqCst);
    n.checked_sub(5)
}

#[test]
fn cache_none_caches_none_too() {
    assert_eq!(maybe(1), None);
    assert_eq!(maybe(1), None);
    assert_eq!(maybe(9), Some(4));
    assert_eq!(maybe(9), Some(4));
    assert_eq!(MAYBE.load(Ordering::SeqCst), 2);
}

type Res<T> = std::result::Result<T, String>;

static ALIAS: AtomicUsize = AtomicUsize::new(0);

/// A `Result` behind an alias is still a `Result` (the shape is chosen by type, not by spelling).
#[bucket_cache(bucket = BUCKET)]
fn aliased(fail: u8) -> Res<u8> {
    ALIAS.fetch_add(1, Ordering::SeqCst);
    if fail == 1 {
        Err("no".into())
    } else {
        Ok(fail)
    }
}

#[test]
fn aliases_of_result() {
    assert!(aliased(1).is_err());
    assert!(aliased(1).is_err());
    assert_eq!(aliased(0), Ok(0));
    assert_eq!(aliased(0), Ok(0));
    assert_eq!(ALIAS.load(Ordering::SeqCst), 3);
}

static NESTED: AtomicUsize = AtomicUsize::new(0);

/// `Ok(None)` is an `Ok`: cached.
#[bucket_cache(bucket = BUCKET)]
fn nested(n: u8) -> Result<Option<u8>, String> {
    NESTED.fetch_add(1, Ordering::SeqCst);
    Ok(n.checked_sub(1))
}

#[test]
fn ok_none_is_cached() {
    assert_eq!(nested(0), Ok(None));
    assert_eq!(nested(0), Ok(None));
    assert_eq!(NESTED.load(Ordering::SeqCst), 1);
}
