//! The key of a repeated call, found by its argument values: a per-thread memo from (site, bucket, argument values)
//! to the key hash, in front of the canonical encoding and blake3.
//!
//! A memory-tier hit used to spend most of its time encoding the arguments and hashing the encoding (memoized by
//! bytes in `key/memo.rs`, but the bytes still had to be produced). When every hashed argument of a function is an
//! [`ExactKey`](crate::ExactKey) type (or `&str`, `&[T]`), chosen at compile time by autoref specialization
//! ([`ExactWrap`]), the expansion hands [`Call::new_fast`](crate::__private::Call::new_fast) the arguments as a
//! [`FastKey`] list, and the key hash is looked up here by the values themselves: a cheap hash (foldhash) picks a
//! slot, `==` confirms it.
//!
//! Why a slot's key hash is the one the encoding would give:
//! - the slot was filled with the hash the bucket's key maker computed for the same site, the same bucket and
//!   arguments equal (`==`) to these; equal `ExactKey` values serialize identically (its contract), and key makers
//!   are deterministic (`KeyMaker`'s contract), so the encoding would give that hash again;
//! - the site is the address of the function's own `static` (one per expansion; the expansion takes this path only
//!   for functions whose key names no type, so no two generic instances share it) together with the stored type's
//!   shape function (`ShapeFn`, which tells apart instances returning different types) — the code version, the
//!   function path and the return shape are constants of the expansion;
//! - the bucket is its process-unique instance number (`Bucket::instance`), never reused, so a bucket dropped and
//!   another made at the same address (maybe with another key maker) never shares slots.
//!
//! Only the key is memoized: the lookup that follows is the ordinary one (memory tier with its generation checks,
//! then the file), so expiry, removals and writes by other buckets and processes are seen exactly as before.
//! Direct-mapped, per thread (no locks), each site first trying the slot it used last, [`SLOTS`] slots of argument lists of at most
//! [`MAX_EXACT_SIZE`](crate::key::exact::MAX_EXACT_SIZE) estimated bytes: at most about 128 KiB per thread.

use std::any::Any;
use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::key::exact::{FastArgKey, MAX_EXACT_SIZE};
use crate::site::ShapeFn;
use crate::stats::cells::HitCell;
use crate::KeyHash;

const SLOTS: usize = 256;

/// A hashed argument on its way into the fast key: `(&ExactWrap(&value)).__bucketcache_exact()` is
/// [`Exact`] when its type is `FastArgKey` ([`ViaExact`]), [`Inexact`] otherwise ([`ViaInexact`]), which turns the
/// fast path off for the function. Never an error: the encoding path checks the argument (`KeyWrap`).
pub struct ExactWrap<'a, T: ?Sized>(pub &'a T);

/// An argument the fast path can compare.
pub struct Exact<'a, T: ?Sized>(pub &'a T);

/// An argument it cannot: the function takes the encoding path.
pub struct Inexact;

/// See [`ExactWrap`].
pub trait ViaExact<'a, T: ?Sized> {
    /// The argument, comparable.
    fn __bucketcache_exact(&self) -> Exact<'a, T>;
}

impl<'a, T: FastArgKey + ?Sized> ViaExact<'a, T> for ExactWrap<'a, T> {
    #[inline(always)]
    fn __bucketcache_exact(&self) -> Exact<'a, T> {
        Exact(self.0)
    }
}

/// See [`ExactWrap`].
pub trait ViaInexact {
    /// Not comparable.
    #[inline(always)]
    fn __bucketcache_exact(&self) -> Inexact {
        Inexact
    }
}

impl<T: ?Sized> ViaInexact for &ExactWrap<'_, T> {}

/// A fast-key argument, then the rest of the list (as `Arg`).
pub struct FastArg<X, N>(pub X, pub N);

/// The end of a fast-key list.
pub struct FastEnd;

/// The arguments of a call as the fast path sees them. `ON` is false when one of them is [`Inexact`] (or the
/// function names types in its key): then nothing else is called.
pub trait FastKey {
    /// Whether the fast path applies.
    const ON: bool;
    /// What a slot keeps of the arguments.
    type Owned: 'static;
    /// The estimated size of `Owned` ([`ExactKey::key_size`](crate::ExactKey::key_size)).
    fn size(&self) -> usize;
    /// Feeds the arguments to `h`.
    fn hash_into<H: Hasher>(&self, h: &mut H);
    /// Whether the arguments equal kept ones.
    fn eq_kept(&self, kept: &Self::Owned) -> bool;
    /// The arguments to keep.
    fn kept(&self) -> Self::Owned;
}

impl FastKey for FastEnd {
    const ON: bool = true;
    type Owned = ();
    #[inline(always)]
    fn size(&self) -> usize {
        0
    }
    #[inline(always)]
    fn hash_into<H: Hasher>(&self, _: &mut H) {}
    #[inline(always)]
    fn eq_kept(&self, _: &()) -> bool {
        true
    }
    #[inline(always)]
    fn kept(&self) {}
}

impl<T: FastArgKey + ?Sized, N: FastKey> FastKey for FastArg<Exact<'_, T>, N> {
    const ON: bool = N::ON;
    type Owned = (T::Owned, N::Owned);
    #[inline(always)]
    fn size(&self) -> usize {
        self.0 .0.fast_size().saturating_add(self.1.size())
    }
    #[inline(always)]
    fn hash_into<H: Hasher>(&self, h: &mut H) {
        self.0 .0.fast_hash(h);
        self.1.hash_into(h);
    }
    #[inline(always)]
    fn eq_kept(&self, kept: &Self::Owned) -> bool {
        self.0 .0.fast_eq(&kept.0) && self.1.eq_kept(&kept.1)
    }
    #[inline(always)]
    fn kept(&self) -> Self::Owned {
        (self.0 .0.fast_owned(), self.1.kept())
    }
}

/// The items of a fast key that is off: nothing is compared or kept.
macro_rules! fast_key_off {
    () => {
        const ON: bool = false;
        type Owned = ();
        #[inline(always)]
        fn size(&self) -> usize {
            usize::MAX
        }
        #[inline(always)]
        fn hash_into<H: Hasher>(&self, _: &mut H) {}
        #[inline(always)]
        fn eq_kept(&self, _: &()) -> bool {
            false
        }
        #[inline(always)]
        fn kept(&self) {}
    };
}

impl<N> FastKey for FastArg<Inexact, N> {
    fast_key_off!();
}

/// The fast key of a function whose key names types (generic functions, methods): always off.
pub struct FastOff;

impl FastKey for FastOff {
    fast_key_off!();
}

/// Where a call comes from: the function's `static` (its address), the stored type's shape function, the bucket.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastSite {
    pub(crate) site: usize,
    pub(crate) shape: usize,
    pub(crate) bucket: u64,
}

struct Slot {
    site: FastSite,
    hash: u64,
    args: Box<dyn Any>,
    key: KeyHash,
    /// This thread's hit cell for the site's function and bucket (`stats/cells.rs`), when one could be made.
    cell: Option<Arc<HitCell>>,
}

/// How many sites remember the slot they used last.
const LAST: usize = 64;

/// The memo: the slots, and per site (by its address) the slot it used last, plus one (0: none).
struct Memo {
    slots: Vec<Option<Slot>>,
    last: [u16; LAST],
}

thread_local! {
    static FAST: RefCell<Memo> = const {
        RefCell::new(Memo {
            slots: Vec::new(),
            last: [0; LAST],
        })
    };
}

/// The entry of `site` in [`Memo::last`] (the address of a `static`; its low bits are alignment).
#[inline(always)]
fn last_of(site: &FastSite) -> usize {
    (site.site >> 4) % LAST
}

/// The site's identity from its parts.
#[inline(always)]
pub(crate) fn site<S>(site: &'static S, shape: ShapeFn, bucket: u64) -> FastSite {
    FastSite {
        site: site as *const S as usize,
        shape: shape as usize,
        bucket,
    }
}

/// A memory hit found through the memo: the value, and whether it was counted in the slot's cell.
pub(crate) struct MemoHit<V> {
    pub(crate) value: V,
    pub(crate) counted: bool,
}

/// A fast hit (`__private::fast_hit`): when this thread's memo holds the key hash of `args` at `site`, `lookup`
/// reads it (the memory tier), and a value found is counted in the slot's hit cell, without an atomic
/// read-modify-write. `counted` is false when the slot has no live cell: the caller counts it then. Never
/// computes a key.
#[inline]
pub(crate) fn memoized_hit<F: FastKey, V>(
    site: FastSite,
    args: &F,
    lookup: impl FnOnce(&KeyHash) -> Option<(V, u64)>,
) -> Option<MemoHit<V>> {
    with_memoized(site, args, |slot| {
        let (value, saved_us) = lookup(&slot.key)?;
        let counted = match &slot.cell {
            Some(cell) if !cell.is_retired() => {
                cell.hit(saved_us);
                true
            }
            _ => false,
        };
        Some(MemoHit { value, counted })
    })
    .0
    .flatten()
}

/// Runs `f` on the slot holding `args` at `site`, while the memo is borrowed (shared: `f` may call cached
/// functions; their memo updates are then skipped). Also says which slot the arguments' hash picked, when it
/// was looked at (`None` when the site's last slot answered, or the memo was skipped): a miss is remembered there.
#[inline(always)]
fn with_memoized<F: FastKey, R>(
    site: FastSite,
    args: &F,
    f: impl FnOnce(&Slot) -> R,
) -> (Option<R>, Option<(u64, usize)>) {
    if !F::ON || args.size() > MAX_EXACT_SIZE {
        return (None, None);
    }
    // First the slot this site used last: a call repeating the previous one is found without hashing its
    // arguments (the hash's dependent multiplies were a third of a memory hit). The slot still has to hold this
    // site's entry and equal arguments. Inlined; the hashed probe is not.
    //
    // `try_with` / `try_borrow`: during thread teardown, or re-entered (an argument's `Eq` calling a cached
    // function), the memo is skipped, never a panic.
    let mut f = Some(f);
    let found = FAST
        .try_with(|m| {
            let m = m.try_borrow().ok()?;
            let at = usize::from(m.last[last_of(&site)]).checked_sub(1)?;
            match m.slots.get(at) {
                Some(Some(s)) if s.site == site && args.eq_kept(s.args.downcast_ref::<F::Owned>()?) => {
                    f.take().map(|f| f(s))
                }
                _ => None,
            }
        })
        .ok()
        .flatten();
    if found.is_some() {
        return (found, None);
    }
    let (at, picked) = hashed_probe(site, args);
    let Some(at) = at else {
        return (None, Some(picked));
    };
    let found = FAST
        .try_with(|m| {
            let m = m.try_borrow().ok()?;
            match m.slots.get(at) {
                Some(Some(s)) => f.take().map(|f| f(s)),
                None | Some(None) => None,
            }
        })
        .ok()
        .flatten();
    (found, Some(picked))
}

/// [`with_memoized`]'s second look: the slot the arguments' hash picks, when it holds them (then it becomes the
/// site's last slot); and that hash and slot.
#[inline(never)]
fn hashed_probe<F: FastKey>(site: FastSite, args: &F) -> (Option<usize>, (u64, usize)) {
    let mut h = foldhash::fast::FixedState::with_seed(0x6275_636b_6574).build_hasher();
    args.hash_into(&mut h);
    // The site's parts are mixed in after (cheaper than hashing them: the slot compares them anyway).
    let hash = h.finish() ^ (site.site as u64 ^ site.bucket.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let slot = (hash >> 40) as usize % SLOTS;
    let found = FAST
        .try_with(|m| {
            let mut m = m.try_borrow_mut().ok()?;
            match m.slots.get(slot) {
                Some(Some(s))
                    if s.hash == hash && s.site == site && args.eq_kept(s.args.downcast_ref::<F::Owned>()?) => {}
                _ => return None,
            }
            m.last[last_of(&site)] = slot as u16 + 1;
            Some(slot)
        })
        .ok()
        .flatten();
    (found, (hash, slot))
}

/// The key hash of `args` at `site`: from the memo, or `compute`d (and remembered when it is `Some`, with the
/// hit cell `cell` makes).
#[inline]
pub(crate) fn key_hash<F: FastKey>(
    site: FastSite,
    args: &F,
    compute: impl FnOnce() -> Option<KeyHash>,
    cell: impl FnOnce() -> Option<Arc<HitCell>>,
) -> Option<KeyHash> {
    let (found, probed) = with_memoized(site, args, |s| s.key);
    if found.is_some() {
        return found;
    }
    let Some((hash, slot)) = probed else {
        return compute();
    };
    let key = compute()?;
    let kept = Box::new(args.kept());
    let cell = cell();
    let _ = FAST.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            if m.slots.is_empty() {
                m.slots.resize_with(SLOTS, || None);
            }
            m.slots[slot] = Some(Slot {
                site,
                hash,
                args: kept,
                key,
                cell,
            });
            m.last[last_of(&site)] = slot as u16 + 1;
        }
    });
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_shape() -> Option<[u8; 32]> {
        None
    }

    static SITE_A: u8 = 0;
    static SITE_B: u8 = 0;

    fn list<'a>(a: &'a u64, b: &'a str) -> FastArg<Exact<'a, u64>, FastArg<Exact<'a, str>, FastEnd>> {
        FastArg(Exact(a), FastArg(Exact(b), FastEnd))
    }

    #[test]
    fn the_memo_answers_only_for_equal_arguments_site_and_bucket() {
        let computed = std::cell::Cell::new(0u8);
        let compute = |k: u8| {
            computed.set(computed.get() + 1);
            Some(KeyHash([k; 32]))
        };
        let a = site(&SITE_A, no_shape, 1);
        assert_eq!(
            key_hash(a, &list(&1, "x"), || compute(1), || None),
            Some(KeyHash([1; 32]))
        );
        assert_eq!(
            key_hash(a, &list(&1, "x"), || compute(9), || None),
            Some(KeyHash([1; 32]))
        );
        assert_eq!(computed.get(), 1, "the second call is served by the memo");
        assert_eq!(
            key_hash(a, &list(&1, "y"), || compute(2), || None),
            Some(KeyHash([2; 32]))
        );
        assert_eq!(
            key_hash(a, &list(&2, "x"), || compute(3), || None),
            Some(KeyHash([3; 32]))
        );
        // Another site or another bucket never shares a slot's answer.
        assert_eq!(
            key_hash(site(&SITE_B, no_shape, 1), &list(&1, "x"), || compute(4), || None),
            Some(KeyHash([4; 32]))
        );
        assert_eq!(
            key_hash(site(&SITE_A, no_shape, 2), &list(&1, "x"), || compute(5), || None),
            Some(KeyHash([5; 32]))
        );
        // Off: always computed.
        assert_eq!(key_hash(a, &FastOff, || compute(6), || None), Some(KeyHash([6; 32])));
        assert_eq!(key_hash(a, &FastOff, || compute(7), || None), Some(KeyHash([7; 32])));
        // Too big to keep: computed each time.
        let big = "z".repeat(MAX_EXACT_SIZE);
        assert_eq!(
            key_hash(a, &list(&1, &big), || compute(8), || None),
            Some(KeyHash([8; 32]))
        );
        assert_eq!(
            key_hash(a, &list(&1, &big), || compute(10), || None),
            Some(KeyHash([10; 32]))
        );
    }
}
