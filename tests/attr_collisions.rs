//! Keys never collide across functions: one name in two modules, one method name on two types, a free function and
//! an associated one, two impls of one generic type; and argument values keep their types (tuple vs list).

use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};
use serde::Serialize;

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

mod alpha {
    use super::*;
    #[bucket_cache(bucket = BUCKET)]
    pub fn name(x: u32) -> String {
        format!("alpha {x}")
    }
}

mod beta {
    use super::*;
    #[bucket_cache(bucket = BUCKET)]
    pub fn name(x: u32) -> String {
        format!("beta {x}")
    }
}

#[test]
fn same_name_in_two_modules() {
    assert_eq!(alpha::name(1), "alpha 1");
    assert_eq!(beta::name(1), "beta 1");
    assert_eq!(alpha::name(1), "alpha 1");
    assert_eq!(beta::name(1), "beta 1");
}

#[derive(Serialize)]
struct Cat;
#[derive(Serialize)]
struct Dog;

impl Cat {
    #[bucket_cache(method, bucket = BUCKET)]
    fn speak(&self, times: usize) -> String {
        "meow".repeat(times)
    }

    #[bucket_cache(bucket = BUCKET)]
    fn kind(x: u8) -> String {
        format!("cat {x}")
    }
}

impl Dog {
    #[bucket_cache(method, bucket = BUCKET)]
    fn speak(&self, times: usize) -> String {
        "woof".repeat(times)
    }

    #[bucket_cache(bucket = BUCKET)]
    fn kind(x: u8) -> String {
        format!("dog {x}")
    }
}

#[test]
fn same_method_on_two_types() {
    // `Cat` and `Dog` serialize alike (unit structs differ only by name), and the associated functions have no
    // `self` at all: the impl's type in the function path keeps them apart.
    for _ in 0..2 {
        assert_eq!(Cat.speak(2), "meowmeow");
        assert_eq!(Dog.speak(2), "woofwoof");
        assert_eq!(Cat::kind(1), "cat 1");
        assert_eq!(Dog::kind(1), "dog 1");
    }
}

#[bucket_cache(bucket = BUCKET)]
fn kind(x: u8) -> String {
    format!("free {x}")
}

#[test]
fn free_and_associated() {
    for _ in 0..2 {
        assert_eq!(kind(1), "free 1");
        assert_eq!(Cat::kind(1), "cat 1");
    }
}

struct Holder<T>(T);

impl Holder<u8> {
    #[bucket_cache(bucket = BUCKET)]
    fn label(n: u32) -> String {
        format!("u8 holder {n}")
    }
}

impl Holder<u16> {
    #[bucket_cache(bucket = BUCKET)]
    fn label(n: u32) -> String {
        format!("u16 holder {n}")
    }
}

#[test]
fn impls_of_one_generic_type() {
    let _ = (Holder(0u8).0, Holder(0u16).0);
    for _ in 0..2 {
        assert_eq!(Holder::<u8>::label(3), "u8 holder 3");
        assert_eq!(Holder::<u16>::label(3), "u16 holder 3");
    }
}

/// One argument type whose values serialize as a tuple or as a list (untagged: no variant name in the key), so
/// only the shape of the value tells the two calls apart.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Pair {
    Tuple((u8, u8)),
    List(Vec<u8>),
}

#[bucket_cache(bucket = BUCKET)]
fn describe(v: Pair) -> String {
    format!("{v:?}")
}

#[bucket_cache(bucket = BUCKET)]
fn describe_any(v: serde_json::Value) -> String {
    format!("json {v}")
}

#[test]
fn values_keep_their_types() {
    // Same function, same argument type, same numbers: a tuple and a list of them are different keys.
    for _ in 0..2 {
        assert_eq!(describe(Pair::Tuple((1, 2))), "Tuple((1, 2))");
        assert_eq!(describe(Pair::List(vec![1, 2])), "List([1, 2])");
        assert_eq!(describe_any(serde_json::json!([1, 2])), "json [1,2]");
        assert_eq!(describe_any(serde_json::json!("[1, 2]")), "json \"[1, 2]\"");
    }
    // And from the files, not only the memory tier.
    BUCKET.unload_all();
    assert_eq!(describe(Pair::List(vec![1, 2])), "List([1, 2])");
    assert_eq!(describe(Pair::Tuple((1, 2))), "Tuple((1, 2))");
}

/// More arguments than serde's largest tuple (16).
#[allow(clippy::too_many_arguments)]
#[bucket_cache(bucket = BUCKET)]
fn many(
    a1: u8,
    a2: u8,
    a3: u8,
    a4: u8,
    a5: u8,
    a6: u8,
    a7: u8,
    a8: u8,
    a9: u8,
    a10: u8,
    a11: u8,
    a12: u8,
    a13: u8,
    a14: u8,
    a15: u8,
    a16: u8,
    a17: u8,
    a18: u8,
    a19: u8,
    a20: u8,
) -> u32 {
    [
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
    ]
    .iter()
    .map(|&x| u32::from(x))
    .sum()
}

#[test]
fn twenty_arguments() {
    assert_eq!(many(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), 20);
    assert_eq!(many(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2), 21);
    assert_eq!(many(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), 20);
}
