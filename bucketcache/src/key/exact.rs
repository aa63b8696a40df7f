//! Argument types whose equality is exactly the equality of their key encoding ([`ExactKey`]).
//!
//! A `#[bucket_cache]` function whose hashed arguments are all of such types finds the key hash of a repeated call
//! by comparing the argument values themselves with those of a recent call (`call/fast.rs`), without encoding them.
//! That is right only when `a == b` implies that `a` and `b` serialize to the same bytes: a type whose `PartialEq`
//! is looser (compares an id, ignores a field, treats `0.0` and `-0.0` alike, compares sets ignoring order while
//! they serialize in iteration order) would be served the value of another argument. So the fast path applies to
//! the std types listed below and to user types that opt in, never by default to a type that merely has `Eq`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::Serialize;

/// Past this estimated size, an argument list is not kept by the fast path (`call/fast.rs`): its clone would cost
/// memory per thread, and its encoding is cheap beside the copy anyway.
pub(crate) const MAX_EXACT_SIZE: usize = 256;

/// A key argument type whose `==` is exactly "serializes to the same value": implement it for your type and a
/// `#[bucket_cache]` function taking it (with only such arguments) finds a repeated call's key without encoding
/// the arguments.
///
/// # Contract
///
/// For any `a` and `b` of the type, `a == b` must imply that `a` and `b` serialize identically (the same calls to
/// the `Serializer`, with the same values). Derived `PartialEq` and `Serialize` on a type whose fields are all
/// `ExactKey` satisfy it. A type that compares an id only, skips a field in `Serialize` but not in `PartialEq`
/// (or the reverse), or holds floats, a `HashMap` or a `HashSet` does **not**: implementing `ExactKey` for it
/// makes a cached function return the value of another argument. `Hash` must agree with `Eq` (as `HashMap`
/// already requires).
///
/// Implemented for the integers, `bool`, `char`, `()`, `String`, `Duration`, and for `Box`, `Vec`, `Option`,
/// arrays, tuples (up to 8), `BTreeMap` and `BTreeSet` of `ExactKey` types; arguments of type `&str` and `&[T]`
/// (`T: ExactKey`) use the fast path too. Not for `f32`/`f64` (`0.0 == -0.0`), `HashMap`/`HashSet` (iteration
/// order), `PathBuf` (`a//b == a/b`) or any type with a hand-written `PartialEq`.
///
/// ```
/// # fn main() -> bucketcache::Result<()> {
/// use std::sync::LazyLock;
/// use bucketcache::{bucket_cache, Bucket, ExactKey};
///
/// #[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
/// struct Point { x: i64, y: i64 }
/// // Derived `Eq` and `Serialize` over `ExactKey` fields: equal points serialize identically.
/// impl ExactKey for Point {}
///
/// static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
///
/// #[bucket_cache(bucket = CACHE)]
/// fn norm(p: Point) -> i64 { p.x.abs() + p.y.abs() }
///
/// assert_eq!(norm(Point { x: 3, y: -4 }), 7);
/// assert_eq!(norm(Point { x: 3, y: -4 }), 7); // found by the values themselves
/// # Ok(()) }
/// ```
pub trait ExactKey: Serialize + Eq + Hash + Clone + 'static {
    /// About how many bytes a clone of the value holds (its size plus what it owns on the heap); arguments over a
    /// few hundred bytes are not kept by the fast path. The default, `size_of_val(self)`, is right for a type that
    /// owns no heap data; override it otherwise (it should be cheap: stop counting past a few hundred bytes).
    fn key_size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

macro_rules! exact_plain {
    ($($t:ty),*) => { $(impl ExactKey for $t {})* };
}

exact_plain!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    bool,
    char,
    (),
    Duration
);

impl ExactKey for String {
    fn key_size(&self) -> usize {
        std::mem::size_of::<Self>() + self.len()
    }
}

impl<T: ExactKey> ExactKey for Box<T> {
    fn key_size(&self) -> usize {
        std::mem::size_of::<Self>() + (**self).key_size()
    }
}

impl<T: ExactKey> ExactKey for Option<T> {
    fn key_size(&self) -> usize {
        std::mem::size_of::<Self>() + self.as_ref().map_or(0, ExactKey::key_size)
    }
}

/// The summed sizes of `items`, stopping once past [`MAX_EXACT_SIZE`] (so a long list costs no more than a short
/// one to reject).
fn sum_sizes<'a, T: ExactKey>(items: impl IntoIterator<Item = &'a T>) -> usize {
    let mut total = 0usize;
    for item in items {
        total = total.saturating_add(item.key_size());
        if total > MAX_EXACT_SIZE {
            return usize::MAX;
        }
    }
    total
}

impl<T: ExactKey> ExactKey for Vec<T> {
    fn key_size(&self) -> usize {
        std::mem::size_of::<Self>().saturating_add(sum_sizes(self))
    }
}

impl<T: ExactKey, const N: usize> ExactKey for [T; N]
where
    [T; N]: Serialize,
{
    fn key_size(&self) -> usize {
        sum_sizes(self)
    }
}

impl<T: ExactKey> ExactKey for BTreeSet<T> {
    fn key_size(&self) -> usize {
        std::mem::size_of::<Self>().saturating_add(sum_sizes(self))
    }
}

impl<K: ExactKey + Ord, V: ExactKey> ExactKey for BTreeMap<K, V> {
    fn key_size(&self) -> usize {
        let mut total = std::mem::size_of::<Self>();
        for (k, v) in self {
            total = total.saturating_add(k.key_size()).saturating_add(v.key_size());
            if total > MAX_EXACT_SIZE {
                return usize::MAX;
            }
        }
        total
    }
}

macro_rules! exact_tuple {
    ($($n:ident)+) => {
        impl<$($n: ExactKey),+> ExactKey for ($($n,)+) {
            #[allow(non_snake_case)]
            fn key_size(&self) -> usize {
                let ($($n,)+) = self;
                0usize $(.saturating_add($n.key_size()))+
            }
        }
    };
}

exact_tuple!(A);
exact_tuple!(A B);
exact_tuple!(A B C);
exact_tuple!(A B C D);
exact_tuple!(A B C D E);
exact_tuple!(A B C D E F);
exact_tuple!(A B C D E F G);
exact_tuple!(A B C D E F G H);

/// A key argument the fast path can keep: an [`ExactKey`] value, or a borrowed form of one (`str`, `[T]`), with
/// the owned value it is kept as. Sealed: implemented here only (the public opt-in is [`ExactKey`]).
pub trait FastArgKey: sealed::Sealed {
    /// What the fast path keeps of the argument.
    type Owned: 'static;
    /// [`ExactKey::key_size`].
    fn fast_size(&self) -> usize;
    /// Feeds the value to `h` (as `Hash` does: borrowed and owned forms of one value hash alike).
    fn fast_hash<H: Hasher>(&self, h: &mut H);
    /// Whether the value equals a kept one.
    fn fast_eq(&self, kept: &Self::Owned) -> bool;
    /// The value to keep.
    fn fast_owned(&self) -> Self::Owned;
}

mod sealed {
    pub trait Sealed {}
    impl<T: super::ExactKey> Sealed for T {}
    impl Sealed for str {}
    impl<T: super::ExactKey> Sealed for [T] {}
}

impl<T: ExactKey> FastArgKey for T {
    type Owned = T;
    #[inline]
    fn fast_size(&self) -> usize {
        self.key_size()
    }
    #[inline]
    fn fast_hash<H: Hasher>(&self, h: &mut H) {
        self.hash(h);
    }
    #[inline]
    fn fast_eq(&self, kept: &T) -> bool {
        self == kept
    }
    #[inline]
    fn fast_owned(&self) -> T {
        self.clone()
    }
}

impl FastArgKey for str {
    type Owned = String;
    #[inline]
    fn fast_size(&self) -> usize {
        std::mem::size_of::<String>() + self.len()
    }
    #[inline]
    fn fast_hash<H: Hasher>(&self, h: &mut H) {
        self.hash(h);
    }
    #[inline]
    fn fast_eq(&self, kept: &String) -> bool {
        self == kept.as_str()
    }
    #[inline]
    fn fast_owned(&self) -> String {
        self.to_owned()
    }
}

impl<T: ExactKey> FastArgKey for [T] {
    type Owned = Vec<T>;
    #[inline]
    fn fast_size(&self) -> usize {
        std::mem::size_of::<Vec<T>>().saturating_add(sum_sizes(self))
    }
    #[inline]
    fn fast_hash<H: Hasher>(&self, h: &mut H) {
        self.hash(h);
    }
    #[inline]
    fn fast_eq(&self, kept: &Vec<T>) -> bool {
        self == kept.as_slice()
    }
    #[inline]
    fn fast_owned(&self) -> Vec<T> {
        self.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_heap_data_and_stop_early() {
        assert_eq!(7u64.key_size(), 8);
        assert_eq!("abc".to_owned().key_size(), std::mem::size_of::<String>() + 3);
        assert_eq!("abc".fast_size(), std::mem::size_of::<String>() + 3);
        let long: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        assert_eq!(long.key_size(), usize::MAX);
        assert!(vec![1u8; 16].key_size() < MAX_EXACT_SIZE);
        assert_eq!((1u8, 2u32).key_size(), 5);
    }

    #[test]
    fn borrowed_and_owned_forms_hash_and_compare_alike() {
        use std::hash::BuildHasher;
        let s = foldhash::fast::FixedState::with_seed(1);
        let hash = |f: &dyn Fn(&mut foldhash::fast::FoldHasher)| {
            let mut h = s.build_hasher();
            f(&mut h);
            h.finish()
        };
        let owned = "key".to_owned();
        assert_eq!(hash(&|h| "key".fast_hash(h)), hash(&|h| owned.fast_hash(h)));
        assert!("key".fast_eq(&owned));
        assert!(!"kez".fast_eq(&owned));
        let v = vec![1u32, 2];
        assert_eq!(hash(&|h| v[..].fast_hash(h)), hash(&|h| v.fast_hash(h)));
        assert!(v[..].fast_eq(&v));
    }
}
