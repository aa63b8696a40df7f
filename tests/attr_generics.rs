//! Generic functions: the type arguments' names are in the key, so `f::<u32>` and `f::<i64>` never share an entry,
//! even when their arguments encode alike; `where` clauses, const generics and `impl Trait` arguments work.

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};
use serde::Serialize;

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

static SIZE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// No arguments at all: only the type argument tells the calls apart.
#[bucket_cache(bucket = BUCKET)]
fn size_of<T>() -> usize {
    SIZE_CALLS.fetch_add(1, Ordering::SeqCst);
    std::mem::size_of::<T>()
}

#[test]
fn type_arguments_are_part_of_the_key() {
    assert_eq!(size_of::<u8>(), 1);
    assert_eq!(size_of::<u64>(), 8);
    assert_eq!(size_of::<[u8; 3]>(), 3);
    assert_eq!(size_of::<u8>(), 1);
    assert_eq!(size_of::<u64>(), 8);
    assert_eq!(SIZE_CALLS.load(Ordering::SeqCst), 3);
}

static SHOW_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Doc comments and a `where` clause are kept.
#[bucket_cache(bucket = BUCKET)]
fn show<T>(value: T, width: usize) -> String
where
    T: Display + Serialize,
{
    SHOW_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("{value:>width$}")
}

#[test]
fn where_clauses() {
    assert_eq!(show(5u32, 3), "  5");
    assert_eq!(show(5u32, 3), "  5");
    assert_eq!(show("ab", 3), " ab");
    assert_eq!(SHOW_CALLS.load(Ordering::SeqCst), 2);
}

static ARRAY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn repeat<const N: usize>(x: u8) -> Vec<u8> {
    ARRAY_CALLS.fetch_add(1, Ordering::SeqCst);
    vec![x; N]
}

#[test]
fn const_generics_are_part_of_the_key() {
    assert_eq!(repeat::<2>(7), vec![7, 7]);
    assert_eq!(repeat::<3>(7), vec![7, 7, 7]);
    assert_eq!(repeat::<2>(7), vec![7, 7]);
    assert_eq!(ARRAY_CALLS.load(Ordering::SeqCst), 2);
}

static IMPL_CALLS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn joined(parts: impl IntoIterator<Item = u8> + Serialize) -> String {
    IMPL_CALLS.fetch_add(1, Ordering::SeqCst);
    parts.into_iter().map(|p| p.to_string()).collect::<Vec<_>>().join("+")
}

#[test]
fn impl_trait_arguments() {
    assert_eq!(joined(vec![1, 2]), "1+2");
    assert_eq!(joined(vec![1, 2]), "1+2");
    assert_eq!(IMPL_CALLS.load(Ordering::SeqCst), 1);
}

#[derive(Serialize)]
struct Wrapper<T>(T);

static WRAP_CALLS: AtomicUsize = AtomicUsize::new(0);

impl<T: Serialize + Clone + Send + Sync + 'static> Wrapper<T> {
    #[bucket_cache(method, bucket = BUCKET)]
    fn describe(&self) -> String {
        WRAP_CALLS.fetch_add(1, Ordering::SeqCst);
        std::any::type_name::<T>().to_string()
    }
}

#[test]
fn generic_impls_key_on_the_self_type() {
    // 1u8 and 1u16 hash differently anyway; `Self`'s name keeps even equal encodings apart.
    assert_eq!(Wrapper(1u8).describe(), "u8");
    assert_eq!(Wrapper(1u16).describe(), "u16");
    assert_eq!(Wrapper(1u8).describe(), "u8");
    assert_eq!(WRAP_CALLS.load(Ordering::SeqCst), 2);
}
