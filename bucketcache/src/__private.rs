//! Items the `#[bucket_cache]` expansion uses. Not public API: no stability promise.
//!
//! The expansion of a cached function (see `bucketcache-macros/src/expand.rs`) does, in order:
//! 1. pick the return shape ([`Probe`] + the `Probe*` traits, autoref specialization): a `Result` stores its `Ok`
//!    value, an `Option` its `Some` value, anything else the whole value ([`Shape`]);
//! 2. build a [`CallKey`] (function path, code version, shape, the stored type's serde shape, type names, named
//!    argument values) and
//!    hash it with the bucket's key maker ([`Call::new`]);
//! 3. [`Call::begin`] (or [`Call::begin_async`]): a hit, or the right to run the body (single flight among the
//!    process's threads, then across processes through the key's lock file unless `cross_process = false`);
//! 4. run the body, [`Call::store`] the value, return it.
#![doc(hidden)]

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeSeq, SerializeTuple, Serializer};
use tracing::{debug, warn};

pub use crate::arg_value::ArgValue;
pub use crate::call::fast::{Exact, ExactWrap, FastArg, FastEnd, FastKey, FastOff, Inexact, ViaExact, ViaInexact};
pub use crate::call_info::{CachedCallInfo, CallArg};
pub use crate::call_target::{AsTarget, CallTarget};
pub use crate::default_bucket::{default_cache_dir, SharedBucket, SiteBucket};
pub use crate::fingerprint::{fingerprint_digest, redirect_dep_file, DepFile, DepsCode, FpNode, FpWalk};
pub use crate::flight::FlightGuard;
pub use crate::key::shape::{shape_digest, shape_text};
pub use crate::site::ShapeFn;
#[cfg(feature = "json")]
pub use crate::JsonBackend;
#[cfg(feature = "msgpack")]
pub use crate::MessagePackBackend;
pub use crate::{Backend, BincodeBackend, Bucket, Hit, KeyHash, KeyMaker};
pub use serde;

use crate::flight::{self, Flight, Join};
use crate::lock::{CrossFlight, CrossFlightGuard};
pub use crate::stats::FnStats;
use crate::stats::MissReason;

/// The freshness path (`stale`, `stale_if_error`, `early_refresh`, `max_age`).
#[path = "call/fresh.rs"]
mod fresh;
pub use fresh::{catch, max_age, CatchUnwind, FailErr, FailOption, FailResult, FreshOpts, FreshStep, MaxAge};

/// `refresh = "background"`: the refresh of a stale entry on a thread of its own.
#[path = "call/background.rs"]
mod background;
pub use background::{
    background_refreshes_running, ArgIsMovable, BackgroundStep, MoveCheck, Refresh, ViaMovable, ViaNotMovable,
    MAX_BACKGROUND_REFRESHES,
};

/// Version of the layout of [`CallKey`]; part of every attribute key.
///
/// 3: the site digest holds the stored type's serde shape (`key/shape.rs`); `async fn` paths lost `{{closure}}`.
pub const CALL_KEY_VERSION: u32 = 3;

/// The suffix of the marker function's path the expansion defines inside each cached function.
const MARKER: &str = "::__bucketcache_marker";

/// The cached function's path, from the type name of a marker `fn` item defined in its body
/// (`my_crate::m::Type::method::__bucketcache_marker` → `my_crate::m::Type::method`).
#[inline]
pub fn function_path(marker: &'static str) -> &'static str {
    marker.strip_suffix(MARKER).unwrap_or(marker)
}

/// The suffix of the marker function's path inside an `async fn`: its body is an `async` block, which the type
/// name calls `{{closure}}`.
const ASYNC_MARKER: &str = "::{{closure}}::__bucketcache_marker";

/// [`function_path`] for an `async fn`, whose marker is defined inside the body's `async` block
/// (`my_crate::quote::{{closure}}::__bucketcache_marker` → `my_crate::quote`).
#[inline]
pub fn async_function_path(marker: &'static str) -> &'static str {
    match marker.strip_suffix(ASYNC_MARKER) {
        Some(path) => path,
        None => function_path(marker),
    }
}

// ---- the key ----

/// What an attribute key is made of. The constant parts (function path, code version, return shape, type names)
/// go into the key as one call-site digest (`site.rs`), computed once per site and thread; the argument
/// values follow. The parts are logged at `debug` ("call site") when the digest is computed.
pub struct CallKey<'a, A> {
    /// The function's path ([`function_path`]).
    pub function: &'static str,
    /// The code version, computed at compile time: `<blake3 of the signature's tokens, 12 hex>:body:<blake3 of the
    /// body's tokens, 16 hex>`, or `<signature hash>:version:<the version = "..." string>`.
    pub code: &'static str,
    /// The return shape ([`Shape::MODE`]).
    pub mode: &'static str,
    /// The stored type's serde shape digest ([`shape_of`]), computed with the site digest.
    pub shape: ShapeFn,
    /// The names of the type arguments (and of `Self` for methods).
    pub types: &'a [&'static str],
    /// The argument values, an [`Args`] list.
    pub args: A,
}

/// Serializes as a byte string.
struct Digest([u8; 32]);

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<A: Serialize> Serialize for CallKey<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let site = crate::site::site_digest(self.function, self.code, self.mode, self.shape, self.types);
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&CALL_KEY_VERSION)?;
        t.serialize_element(&Digest(site))?;
        t.serialize_element(&self.args)?;
        t.end()
    }
}

/// A key argument's value, then the rest of the list (a cons list, so any number of arguments works without
/// tuple-size limits). The names are not repeated per call: they are in the signature, hashed into
/// [`CallKey::code`] at compile time.
pub struct Arg<'a, T: ?Sized, N> {
    /// The value.
    pub value: &'a T,
    /// The following arguments.
    pub next: N,
}

/// The end of an argument list.
pub struct End;

/// A list of named arguments.
pub trait ArgList {
    /// How many.
    const LEN: usize;
    /// Writes each value into `seq`.
    ///
    /// # Errors
    /// The value's `Serialize` error.
    fn write<S: SerializeSeq>(&self, seq: &mut S) -> Result<(), S::Error>;
}

impl ArgList for End {
    const LEN: usize = 0;
    fn write<S: SerializeSeq>(&self, _: &mut S) -> Result<(), S::Error> {
        Ok(())
    }
}

impl<T: Serialize + ?Sized, N: ArgList> ArgList for Arg<'_, T, N> {
    const LEN: usize = 1 + N::LEN;
    fn write<S: SerializeSeq>(&self, seq: &mut S) -> Result<(), S::Error> {
        seq.serialize_element(self.value)?;
        self.next.write(seq)
    }
}

/// An argument list, serialized as a sequence of values, in parameter order (`self` first).
pub struct Args<L>(pub L);

impl<L: ArgList> Serialize for Args<L> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(L::LEN))?;
        self.0.write(&mut seq)?;
        seq.end()
    }
}

/// Checks, with a readable error on the argument, that a key argument is `Serialize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Serialize`, so it cannot be part of a #[bucket_cache] key",
    label = "this argument is hashed into the cache key",
    note = "derive or implement `serde::Serialize` for it, or leave it out of the key with `ignore(name)`"
)]
pub trait KeyArg: Serialize {}
impl<T: Serialize + ?Sized> KeyArg for T {}

/// Returns its argument; fails to compile, on the argument, when it is not `Serialize`.
#[inline(always)]
pub fn key_arg<T: KeyArg + ?Sized>(value: &T) -> &T {
    value
}

/// A key argument on its way into the key: `(&KeyWrap(&value)).__bucketcache_key()` is `&value` when it is
/// `Serialize` ([`ViaSerialize`]), and otherwise one error in our words on the argument ([`ViaNotSerialize`]),
/// whose result is still `Serialize`, so no second error names the key's internal types.
pub struct KeyWrap<'a, T: ?Sized>(pub &'a T);

/// The receiver on its way into the key, as [`KeyWrap`]; its error suggests `ignore(self)`.
pub struct SelfWrap<'a, T: ?Sized>(pub &'a T);

/// See [`KeyWrap`].
pub trait ViaSerialize<'a, T: ?Sized> {
    /// The argument.
    fn __bucketcache_key(&self) -> &'a T;
}

impl<'a, T: Serialize + ?Sized> ViaSerialize<'a, T> for KeyWrap<'a, T> {
    #[inline(always)]
    fn __bucketcache_key(&self) -> &'a T {
        self.0
    }
}

impl<'a, T: Serialize + ?Sized> ViaSerialize<'a, T> for SelfWrap<'a, T> {
    #[inline(always)]
    fn __bucketcache_key(&self) -> &'a T {
        self.0
    }
}

/// Stands in for an argument that is not `Serialize`, after its error (it is never built in a program that
/// compiles).
pub struct NotSerialize;

impl Serialize for NotSerialize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// The error for a key argument that is not `Serialize`.
#[diagnostic::on_unimplemented(
    message = "`{T}` is not `Serialize`, so it cannot be part of a #[bucket_cache] key",
    label = "this argument is hashed into the cache key",
    note = "derive or implement `serde::Serialize` for it, or leave it out of the key with `ignore(name)`"
)]
pub trait KeyArgIsSerialize<T: ?Sized> {}

/// The error for a receiver that is not `Serialize`.
#[diagnostic::on_unimplemented(
    message = "`self` (`{T}`) is not `Serialize`, so it cannot be part of a #[bucket_cache] key",
    label = "`self` is hashed into the cache key",
    note = "add `ignore(self)` if the result does not depend on `self`'s state, or derive `serde::Serialize` for \
            it (and `#[serde(skip)]` fields that do not matter)"
)]
pub trait SelfIsSerialize<T: ?Sized> {}

/// See [`KeyWrap`].
pub trait ViaNotSerialize<T: ?Sized> {
    /// A stand-in, after the error.
    #[inline(always)]
    fn __bucketcache_key(&self) -> &'static NotSerialize
    where
        Self: KeyArgIsSerialize<T>,
    {
        &NotSerialize
    }
}

impl<T: ?Sized> ViaNotSerialize<T> for &KeyWrap<'_, T> {}

/// See [`SelfWrap`].
pub trait ViaSelfNotSerialize<T: ?Sized> {
    /// A stand-in, after the error.
    #[inline(always)]
    fn __bucketcache_key(&self) -> &'static NotSerialize
    where
        Self: SelfIsSerialize<T>,
    {
        &NotSerialize
    }
}

impl<T: ?Sized> ViaSelfNotSerialize<T> for &SelfWrap<'_, T> {}

/// A top-level `HashSet` argument in the key: its elements are written as the keys of a map (with unit values),
/// which the key encoder hashes in a canonical order, so two equal sets give one key whatever their iteration
/// order. (A set nested inside another type is hashed in iteration order: use a `BTreeSet` there.)
pub struct SetKey<'a, S: ?Sized>(pub &'a S);

impl<'a, S: ?Sized, T: Serialize + 'a> Serialize for SetKey<'a, S>
where
    &'a S: IntoIterator<Item = &'a T>,
    <&'a S as IntoIterator>::IntoIter: ExactSizeIterator,
{
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::SerializeMap;
        let items = self.0.into_iter();
        let mut map = s.serialize_map(Some(items.len()))?;
        for item in items {
            map.serialize_entry(item, &())?;
        }
        map.end()
    }
}

/// [`SetKey`] for a set argument.
#[inline(always)]
pub fn set_key<S: ?Sized>(set: &S) -> SetKey<'_, S> {
    SetKey(set)
}

/// `cache_none` needs an `Option` return type (any spelling: an alias works).
#[diagnostic::on_unimplemented(
    message = "`cache_none` caches the `None` of an `Option` return type, but `{Self}` is not an `Option`",
    label = "`cache_none` needs a return type `Option<T>` (or an alias of it)",
    note = "remove `cache_none`: every value of this return type is cached already"
)]
pub trait CacheNoneApplies {}
impl<T> CacheNoneApplies for Option<T> {}

/// Fails to compile, on `cache_none`, when `R` is not an `Option`.
#[inline(always)]
pub fn cache_none_applies<R: CacheNoneApplies>() {}

/// `cache_err` needs a `Result` return type (any spelling: `io::Result<T>`, an alias).
#[diagnostic::on_unimplemented(
    message = "`cache_err` caches the `Err` of a `Result` return type, but `{Self}` is not a `Result`",
    label = "`cache_err` needs a return type `Result<T, E>` (or an alias of it)",
    note = "remove `cache_err` (for an `Option`, `cache_none` caches `None`)"
)]
pub trait CacheErrApplies {}
impl<T, E> CacheErrApplies for Result<T, E> {}

/// Fails to compile, on `cache_err`, when `R` is not a `Result`.
#[inline(always)]
pub fn cache_err_applies<R: CacheErrApplies>() {}

/// Checks that a `nocache` flag is a `bool` (a `&bool` is accepted too).
#[inline(always)]
pub fn nocache_flag(flag: impl core::borrow::Borrow<bool>) -> bool {
    *flag.borrow()
}

// ---- return shapes ----

/// How a return type `R` is stored: which part of it, and how it comes back.
#[diagnostic::on_unimplemented(
    message = "the return type `{R}` of a #[bucket_cache] function cannot be cached",
    label = "the value stored must be `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`",
    note = "for `Result<T, E>` (and `Option<T>`) only `T` is stored, so only `T` needs these traits (with \
            `cache_err`, the whole `Result`); derive `Serialize, Deserialize, Clone` on your types"
)]
pub trait Shape<R> {
    /// The type written to the bucket.
    type Stored: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// The shape's name, part of the key (so switching `cache_err` never misreads an entry).
    const MODE: &'static str;
    /// The part of `value` to store; `None`: do not store (an `Err`, a `None`).
    fn stored(value: &R) -> Option<&Self::Stored>;
    /// The return value made from a stored one.
    fn restore(stored: Self::Stored) -> R;
}

/// Stores every value.
#[derive(Clone, Copy)]
pub struct StoreAll;
/// Stores the `Ok` value of a `Result`; errors are not cached.
#[derive(Clone, Copy)]
pub struct StoreOk;
/// Stores the `Some` value of an `Option`; `None` is not cached.
#[derive(Clone, Copy)]
pub struct StoreSome;

impl<R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Shape<R> for StoreAll {
    type Stored = R;
    const MODE: &'static str = "R";
    #[inline]
    fn stored(value: &R) -> Option<&R> {
        Some(value)
    }
    #[inline]
    fn restore(stored: R) -> R {
        stored
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static, E> Shape<Result<T, E>> for StoreOk {
    type Stored = T;
    const MODE: &'static str = "Ok";
    #[inline]
    fn stored(value: &Result<T, E>) -> Option<&T> {
        value.as_ref().ok()
    }
    #[inline]
    fn restore(stored: T) -> Result<T, E> {
        Ok(stored)
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Shape<Option<T>> for StoreSome {
    type Stored = T;
    const MODE: &'static str = "Some";
    #[inline]
    fn stored(value: &Option<T>) -> Option<&T> {
        value.as_ref()
    }
    #[inline]
    fn restore(stored: T) -> Option<T> {
        Some(stored)
    }
}

/// Chooses a [`Shape`] from a return type by autoref specialization: `(&Probe::<R>::new()).shape()` is
/// [`StoreOk`] for a `Result`, [`StoreSome`] for an `Option` (when [`ProbeOk`] / [`ProbeSome`] are in scope;
/// `cache_err` / `cache_none` leave them out), [`StoreAll`] otherwise.
pub struct Probe<R>(PhantomData<fn() -> R>);

impl<R> Probe<R> {
    /// A probe for `R`.
    #[inline]
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

/// See [`Probe`].
pub trait ProbeOk {
    /// The shape.
    #[inline]
    fn shape(&self) -> StoreOk {
        StoreOk
    }
}
impl<T, E> ProbeOk for Probe<Result<T, E>> {}

/// See [`Probe`].
pub trait ProbeSome {
    /// The shape.
    #[inline]
    fn shape(&self) -> StoreSome {
        StoreSome
    }
}
impl<T> ProbeSome for Probe<Option<T>> {}

/// See [`Probe`].
pub trait ProbeAll {
    /// The shape.
    #[inline]
    fn shape(&self) -> StoreAll {
        StoreAll
    }
}
impl<R> ProbeAll for &Probe<R> {}

/// A chosen shape, checked: `(&ShapeCheck::<R, _>::new(shape)).__bucketcache_checked()` is the shape when the
/// stored type has every trait it needs ([`ViaShape`]); otherwise one error in our words on the return type
/// ([`ViaNoShape`]), and a stand-in shape ([`Uncacheable`]), so no further error names `Shape` or `StoreAll`.
pub struct ShapeCheck<R, S>(PhantomData<fn() -> R>, S);

impl<R, S> ShapeCheck<R, S> {
    /// Wraps a shape.
    #[inline(always)]
    pub fn new(shape: S) -> Self {
        ShapeCheck(PhantomData, shape)
    }
}

/// See [`ShapeCheck`].
pub trait ViaShape<S> {
    /// The shape.
    fn __bucketcache_checked(&self) -> S;
}

impl<R, S: Shape<R> + Copy> ViaShape<S> for ShapeCheck<R, S> {
    #[inline(always)]
    fn __bucketcache_checked(&self) -> S {
        self.1
    }
}

/// The error for a return type that cannot be cached.
#[diagnostic::on_unimplemented(
    message = "the return type `{R}` of a #[bucket_cache] function cannot be cached",
    label = "the value stored must be `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`",
    note = "for `Result<T, E>` (and `Option<T>`) only `T` is stored, so only `T` needs these traits (with \
            `cache_err`, the whole `Result`); derive `Serialize, Deserialize, Clone` on your types"
)]
pub trait ReturnIsCacheable<R> {}

/// See [`ShapeCheck`].
pub trait ViaNoShape<R> {
    /// A stand-in shape, after the error.
    #[inline(always)]
    fn __bucketcache_checked(&self) -> Uncacheable
    where
        Self: ReturnIsCacheable<R>,
    {
        Uncacheable
    }
}

impl<R, S> ViaNoShape<R> for &ShapeCheck<R, S> {}

/// Stands in for the shape of a return type that cannot be cached, after its error (never built in a program that
/// compiles: it stores nothing and cannot restore a value).
#[derive(Clone, Copy)]
pub struct Uncacheable;

/// A type with no values: what [`Uncacheable`] "stores".
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum Nothing {}

impl<R> Shape<R> for Uncacheable {
    type Stored = Nothing;
    const MODE: &'static str = "uncacheable";
    #[inline]
    fn stored(_: &R) -> Option<&Nothing> {
        None
    }
    #[inline]
    fn restore(stored: Nothing) -> R {
        match stored {}
    }
}

/// The `on_cached` callback of a function without a receiver: `fn(&CachedCallInfo<'_, R>)`, `R` the whole return
/// type (a `Result` or `Option` included).
#[diagnostic::on_unimplemented(
    message = "`on_cached` must be a function `fn(&CachedCallInfo<'_, {R}>)`",
    label = "expected `fn(&bucketcache::CachedCallInfo<'_, {R}>)`",
    note = "the callback sees the whole return type `{R}` (for a `Result`, the `Ok` value cached, wrapped in `Ok`); \
            a generic `fn cb<R>(info: &CachedCallInfo<'_, R>)` fits every function"
)]
pub trait OnCached<R> {
    /// Calls it.
    fn call(self, info: &CachedCallInfo<'_, R>);
}

impl<R, F: FnOnce(&CachedCallInfo<'_, R>)> OnCached<R> for F {
    #[inline(always)]
    fn call(self, info: &CachedCallInfo<'_, R>) {
        self(info)
    }
}

/// The `on_cached` callback of a function with a receiver: `fn(&Self, &CachedCallInfo<'_, R>)`.
#[diagnostic::on_unimplemented(
    message = "`on_cached` must be a function `fn(&{S}, &CachedCallInfo<'_, {R}>)`",
    label = "expected `fn(&{S}, &bucketcache::CachedCallInfo<'_, {R}>)`",
    note = "for a function with a receiver the callback takes `&self` first; it sees the whole return type `{R}`"
)]
pub trait OnCachedMethod<S: ?Sized, R> {
    /// Calls it.
    fn call(self, receiver: &S, info: &CachedCallInfo<'_, R>);
}

impl<S: ?Sized, R, F: FnOnce(&S, &CachedCallInfo<'_, R>)> OnCachedMethod<S, R> for F {
    #[inline(always)]
    fn call(self, receiver: &S, info: &CachedCallInfo<'_, R>) {
        self(receiver, info)
    }
}

/// Calls an `on_cached` callback (its type checked by [`OnCached`]).
#[inline(always)]
pub fn on_cached<R, F: OnCached<R>>(f: F, info: &CachedCallInfo<'_, R>) {
    f.call(info)
}

/// Calls an `on_cached` callback of a method (its type checked by [`OnCachedMethod`]).
#[inline(always)]
pub fn on_cached_method<S: ?Sized, R, F: OnCachedMethod<S, R>>(f: F, receiver: &S, info: &CachedCallInfo<'_, R>) {
    f.call(receiver, info)
}

/// The mode name of a shape for `R` (type inference helper).
#[inline]
pub fn mode_of<R, S: Shape<R>>(_: &S) -> &'static str {
    S::MODE
}

/// The shape-digest function of the type a shape for `R` stores (called once per site and thread, with the site
/// digest; the trace itself runs once per type per process).
#[inline]
pub fn shape_of<R, S: Shape<R>>(_: &S) -> ShapeFn {
    shape_digest::<S::Stored>
}

// ---- the bucket ----

/// `Some(target)` for `bucket = EXPR`: a [`Bucket`] or a [`DeferredWriteBucket`](crate::DeferredWriteBucket),
/// through any number of `Deref`s ([`AsTarget`]).
#[inline]
pub fn user_bucket<T: AsTarget + ?Sized>(b: &T) -> Option<&T::Target> {
    // Disabled (`disable.rs`): no bucket, so the call runs its body. The one check per call.
    if crate::disable::is_disabled() {
        return None;
    }
    Some(b.as_target())
}

impl<B: Backend + Default> SiteBucket<B> {
    /// The shared bucket in `dir` (for `path = "dir"`).
    #[inline]
    pub fn at(&self, dir: &'static str) -> Option<&SharedBucket<B>> {
        if crate::disable::is_disabled() {
            return None;
        }
        self.get(|| PathBuf::from(dir))
    }

    /// The shared bucket in [`default_cache_dir`].
    #[inline]
    pub fn default_dir(&self) -> Option<&SharedBucket<B>> {
        if crate::disable::is_disabled() {
            return None;
        }
        self.get(default_cache_dir)
    }
}

// ---- one call ----

/// One call of a cached function: its bucket (a [`CallTarget`]: a `Bucket`, a deferred bucket, a shared bucket of
/// the attribute) and key hash.
pub struct Call<'b, T: CallTarget> {
    bucket: Option<&'b T>,
    key: Option<KeyHash>,
    function: &'static str,
    lifetime: Option<Duration>,
    /// How long to wait for another process computing the key (`cross_process = "..."`); `None` with
    /// `cross_process = false`.
    cross_wait: Option<Duration>,
    /// Counters, miss reasons and what a store records (`call/observe.rs`).
    obs: crate::call::observe::Observe,
}

/// What [`Call::begin`] decided.
pub enum Step<R> {
    /// A cached value.
    Hit(Hit<R>),
    /// Run the body; the guard keeps other callers of the key (threads of this process, and other processes)
    /// waiting until the value is stored.
    Run(RunGuard),
}

/// The right to run a cached function's body: the in-process flight's guard and the cross-process lock, each if
/// held. Drop it after storing the value.
#[derive(Default)]
pub struct RunGuard {
    _local: Option<FlightGuard>,
    _cross: Option<CrossFlightGuard>,
    /// The shared tier's lease (single flight across machines), when one was taken.
    _shared: Option<Box<crate::tier::lease::LeaseGuard>>,
}

/// A memory-tier hit found by the argument values alone, before any call is built: this thread's fast-key memo
/// (`call/fast.rs`) gives the key hash, and the memory tier (its L0 first) the value, counted as
/// [`Call::begin`] counts a memory hit. `None` (no bucket, `nocache`, the fast key off or not memoized yet, no
/// typed value in memory, `debug` logging on for `bucketcache`, so the hit is logged) sends the call down the
/// ordinary path, which decides everything again: this only skips work, it never decides differently. The
/// expansion uses it for functions without freshness options or an `on_cached` callback.
#[inline]
pub fn fast_hit<R, S: Shape<R>, T: CallTarget, F: FastKey>(
    bucket: Option<&T>,
    stats: &'static FnStats,
    stored_shape: ShapeFn,
    _shape: S,
    args: &F,
    nocache: bool,
) -> Option<R> {
    if !F::ON || nocache {
        return None;
    }
    let bucket = bucket?;
    if tracing::level_enabled!(tracing::Level::DEBUG) && tracing::enabled!(target: "bucketcache", tracing::Level::DEBUG)
    {
        return None;
    }
    // Registered by the ordinary path that filled the memo (on this thread, so this load sees it).
    let counters = stats.registered_counters()?;
    let inner = bucket.bucket();
    let site = crate::call::fast::site(stats, stored_shape, inner.instance());
    let mut cost = None;
    let hit = crate::call::fast::memoized_hit(site, args, |key| {
        let (value, c) = bucket.memory_value::<S::Stored>(key)?;
        cost = c;
        Some((value, crate::stats::micros(c)))
    })?;
    if hit.counted {
        // Counted in this thread's cell; the `metrics` facade (when on) still hears of it.
        counters.hit_metrics(crate::HitSource::Memory, cost.map(|c| crate::stats::micros(Some(c))));
    } else {
        counters.hit(crate::HitSource::Memory, cost);
        inner.counters.hit(crate::HitSource::Memory, cost);
    }
    Some(S::restore(hit.value))
}

impl<'b, T: CallTarget> Call<'b, T> {
    /// Hashes `key`. Without a bucket, or when the key cannot be hashed (logged at `warn`), the call runs
    /// uncached.
    #[inline]
    pub fn new<A: Serialize>(
        bucket: Option<&'b T>,
        function: &'static str,
        lifetime: Option<Duration>,
        key: &A,
    ) -> Self {
        let key = bucket.and_then(|b| match b.key_hash(key) {
            Ok(h) => Some(h),
            Err(e) => {
                warn!(target: "bucketcache", function, error = %e, "cannot hash the arguments; the function runs uncached");
                None
            }
        });
        Call {
            bucket,
            key,
            function,
            lifetime,
            cross_wait: Some(crate::DEFAULT_FLIGHT_WAIT_LIMIT),
            obs: crate::call::observe::Observe::default(),
        }
    }

    /// [`Call::new`] that first looks the key hash up by the argument values themselves (`call/fast.rs`), when
    /// `fast` is on: every hashed argument is an [`ExactKey`](crate::ExactKey) and the key names no type. `site` is
    /// the function's counters (their address names the site), `shape` the stored type's shape function; `code`
    /// the code version string. Already observed ([`Call::observe`]): the call is built in place, not moved
    /// through a builder (a hit is short enough for that copy to count). With `debug` logging on for
    /// `bucketcache`, the key is always encoded (its bytes are logged).
    #[inline]
    pub fn new_fast<A: Serialize, F: FastKey>(
        bucket: Option<&'b T>,
        function: &'static str,
        lifetime: Option<Duration>,
        key: &CallKey<'_, A>,
        fast: &F,
        stats: &'static FnStats,
        code: &'static str,
    ) -> Self {
        let mut obs = crate::call::observe::Observe::default();
        obs.counters = Some(stats.counters(function));
        obs.code = Some(code);
        if !F::ON
            || (tracing::level_enabled!(tracing::Level::DEBUG)
                && tracing::enabled!(target: "bucketcache", tracing::Level::DEBUG))
        {
            let mut call = Self::new(bucket, function, lifetime, key);
            call.obs = obs;
            return call;
        }
        let hash = bucket.and_then(|b| {
            let inner = b.bucket();
            let at = crate::call::fast::site(stats, key.shape, inner.instance());
            crate::call::fast::key_hash(
                at,
                fast,
                || match b.key_hash(key) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        warn!(target: "bucketcache", function, error = %e, "cannot hash the arguments; the function runs uncached");
                        None
                    }
                },
                || crate::stats::cells::cell_for(stats.counters(function), &inner.counters, inner.instance()),
            )
        });
        Call {
            bucket,
            key: hash,
            function,
            lifetime,
            cross_wait: Some(crate::DEFAULT_FLIGHT_WAIT_LIMIT),
            obs,
        }
    }

    /// Sets the function's counters (the `static` its expansion defines) and its code version string (what
    /// entries record, and what miss reasons compare).
    #[must_use]
    #[inline]
    pub fn observe(mut self, stats: &'static FnStats, code: &'static str) -> Self {
        self.obs.counters = Some(stats.counters(self.function));
        self.obs.code = Some(code);
        self
    }

    /// Sets the cross-process single flight (`cross_process = ...`): `Some(limit)` waits up to `limit` for another
    /// process computing the same key, `None` does not coordinate with other processes.
    #[must_use]
    pub fn cross_process(mut self, wait_limit: Option<Duration>) -> Self {
        self.cross_wait = wait_limit;
        self
    }

    /// Joins the cross-process flight as this process's leader: another process's value, or the lock. Async calls
    /// pass `wait = false`: they never block their thread waiting, and compute if another process holds the lock.
    fn cross<R, S: Shape<R>>(&self, bucket: &T, key: &KeyHash, local: FlightGuard, wait: bool) -> Step<R> {
        let Some(limit) = self.cross_wait else {
            return Step::Run(RunGuard {
                _local: Some(local),
                _cross: None,
                _shared: None,
            });
        };
        let limit = if wait { limit } else { Duration::ZERO };
        // The flight's leader has just missed (`join`), so the lock is taken without reading again first.
        match bucket.begin_cross_process_flight_after_miss::<S::Stored>(key, limit) {
            CrossFlight::Hit(hit) => {
                debug!(target: "bucketcache", function = self.function, hash = %key, "computed by another process");
                self.obs.hit(bucket.bucket(), &hit);
                Step::Hit(hit.map(S::restore))
            }
            // Other machines: the shared tier's lease (none without a shared tier; async calls never wait).
            CrossFlight::Compute(cross) => match bucket.begin_shared_flight::<S::Stored>(key, limit) {
                crate::tier::lease::SharedFlight::Hit(hit) => {
                    debug!(target: "bucketcache", function = self.function, hash = %key, "computed by another machine");
                    Step::Hit(hit.map(S::restore))
                }
                crate::tier::lease::SharedFlight::Compute(lease) => Step::Run(RunGuard {
                    _local: Some(local),
                    _cross: Some(cross),
                    _shared: lease.map(Box::new),
                }),
            },
        }
    }

    /// Looks the key up. An unusable entry (it does not decode) is logged at `warn` once per call: `reported`
    /// is the call's flag, so the lookups after joining the flight and after waiting log it at `debug`.
    fn lookup<R, S: Shape<R>>(&self, bucket: &T, key: &KeyHash, reported: &mut bool) -> Option<Hit<R>> {
        match bucket.lookup::<S::Stored>(key) {
            Ok(Some(hit)) => {
                debug!(target: "bucketcache", function = self.function, hash = %key, source = ?hit.source, "cache hit");
                self.obs.hit(bucket.bucket(), &hit);
                Some(hit.map(S::restore))
            }
            Ok(None) => {
                let noted = crate::call::observe::take_noted(key);
                self.obs.note(noted.unwrap_or(MissReason::NewArguments));
                None
            }
            Err(e) if *reported => {
                debug!(target: "bucketcache", function = self.function, error = %e, "cached entry still unusable");
                None
            }
            Err(e) => {
                self.obs.note(match e {
                    crate::Error::Decode { .. } => MissReason::OtherType,
                    _ => MissReason::Corrupt,
                });
                *reported = true;
                warn!(target: "bucketcache", function = self.function, error = %e, "cached entry unusable; the function runs and replaces it");
                None
            }
        }
    }

    /// A hit from the memory tier's typed value (`CallTarget::memory_hit`), counted and logged as
    /// [`Call::lookup`] does; `None` sends the call down the full path (`precheck`), which probes again: on a miss
    /// that is one more memory-tier probe, a few dozen instructions beside the body and the store.
    #[inline]
    fn memory_hit<R, S: Shape<R>>(&self, nocache: bool) -> Option<Step<R>> {
        let (Some(bucket), Some(key), false) = (self.bucket, self.key.as_ref(), nocache) else {
            return None;
        };
        let hit = bucket.memory_hit::<S::Stored>(key)?;
        // The event out of line, behind the one-load level check: inline, its captures kept the hit in memory
        // and cost about 8 ns per hit with logging off (measured, `examples/hot_hit.rs`).
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            log_hit(self.function, key, hit.source);
        }
        self.obs.hit(bucket.bucket(), &hit);
        Some(Step::Hit(hit.map(S::restore)))
    }

    /// What can be decided before waiting: `Err(step)` when decided (no cache, `nocache`, a hit), else the bucket
    /// and key to join the flight of.
    fn precheck<R, S: Shape<R>>(&self, nocache: bool, reported: &mut bool) -> Result<(&'b T, KeyHash), Step<R>> {
        let (Some(bucket), Some(key)) = (self.bucket, self.key) else {
            return Err(Step::Run(RunGuard::default()));
        };
        if nocache {
            debug!(target: "bucketcache", function = self.function, "nocache: running");
            self.obs.note(MissReason::NoCache);
            return Err(Step::Run(RunGuard::default()));
        }
        match self.lookup::<R, S>(bucket, &key, reported) {
            Some(hit) => Err(Step::Hit(hit)),
            None => Ok((bucket, key)),
        }
    }

    /// Joins the key's flight: as its leader, a hit (another leader stored the value between our read and our
    /// joining) or the right to run; as a follower, the flight to wait for.
    fn join<R, S: Shape<R>>(
        &self,
        bucket: &T,
        key: &KeyHash,
        wait: bool,
        reported: &mut bool,
    ) -> Result<Step<R>, Arc<Flight>> {
        match flight::join(bucket.flight_id(), *key, wait) {
            Join::Leader(guard) => Ok(match self.lookup::<R, S>(bucket, key, reported) {
                Some(hit) => Step::Hit(hit),
                None => {
                    debug!(target: "bucketcache", function = self.function, hash = %key, "cache miss: calling");
                    self.cross::<R, S>(bucket, key, guard, wait)
                }
            }),
            Join::Follower(flight) => Err(flight),
            Join::Reentrant => {
                debug!(target: "bucketcache", function = self.function, hash = %key, "re-entrant call of a key being computed: running");
                Ok(Step::Run(RunGuard::default()))
            }
        }
    }

    /// A hit, or the right to run the body. With `nocache`, always runs (no read, no waiting).
    pub fn begin<R, S: Shape<R>>(&self, _shape: S, nocache: bool) -> Step<R> {
        if let Some(hit) = self.memory_hit::<R, S>(nocache) {
            return hit;
        }
        let mut reported = false;
        let (bucket, key) = match self.precheck::<R, S>(nocache, &mut reported) {
            Ok(found) => found,
            Err(step) => return step,
        };
        loop {
            match self.join::<R, S>(bucket, &key, true, &mut reported) {
                Ok(step) => return step,
                Err(flight) => {
                    let limit = self.cross_wait.unwrap_or(crate::DEFAULT_FLIGHT_WAIT_LIMIT);
                    if !flight.wait(limit) {
                        warn!(target: "bucketcache", function = self.function, hash = %key, ?limit, "waited too long for another caller of this key: running");
                        return Step::Run(RunGuard::default());
                    }
                    if let Some(hit) = self.lookup::<R, S>(bucket, &key, &mut reported) {
                        return Step::Hit(hit);
                    }
                }
            }
        }
    }

    /// [`Call::begin`] for `async fn`s: waiting for another caller's value does not block the thread.
    pub async fn begin_async<R, S: Shape<R>>(&self, _shape: S, nocache: bool) -> Step<R> {
        if let Some(hit) = self.memory_hit::<R, S>(nocache) {
            return hit;
        }
        let mut reported = false;
        let (bucket, key) = match self.precheck::<R, S>(nocache, &mut reported) {
            Ok(found) => found,
            Err(step) => return step,
        };
        loop {
            match self.join::<R, S>(bucket, &key, false, &mut reported) {
                Ok(step) => return step,
                Err(flight) => {
                    let limit = self.cross_wait.unwrap_or(crate::DEFAULT_FLIGHT_WAIT_LIMIT);
                    if !flight.landed(limit).await {
                        warn!(target: "bucketcache", function = self.function, hash = %key, ?limit, "waited too long for another caller of this key: running");
                        return Step::Run(RunGuard::default());
                    }
                    if let Some(hit) = self.lookup::<R, S>(bucket, &key, &mut reported) {
                        return Step::Hit(hit);
                    }
                }
            }
        }
    }

    /// Called when the body is about to run (after [`Call::begin`] returned [`Step::Run`]), with the call's key:
    /// decides and counts the miss's reason (logged at `debug`), computes the code-independent call hash the
    /// entry will record, and starts the clock for its cost. Miss path only.
    pub fn run_begins<A: Serialize>(&self, key: &CallKey<'_, A>) {
        let (Some(bucket), Some(hash)) = (self.bucket, self.key) else {
            return;
        };
        let mut reason = self.obs.reason().unwrap_or(MissReason::NewArguments);
        if reason == MissReason::NewArguments && self.code_changed(bucket.bucket(), key) {
            reason = MissReason::CodeChanged;
        }
        self.obs.count_miss(bucket.bucket(), reason);
        debug!(target: "bucketcache", function = self.function, hash = %hash, %reason, "cache miss");
        let identity = crate::call::observe::CallIdentity {
            function: key.function,
            types: key.types,
            args: &key.args,
        };
        let call_hash = bucket.key_hash(&identity).ok();
        let _ = self.obs.run.set(Box::new(crate::call::observe::RunStart { call_hash }));
    }

    /// Whether an entry for these arguments exists under another code version recorded for the function.
    fn code_changed<A: Serialize>(&self, bucket: &Bucket<T::Backend, T::KeyMaker>, key: &CallKey<'_, A>) -> bool {
        let (others, _) = crate::call::observe::other_versions(bucket, self.function, key.code);
        others.iter().any(|code| {
            let site = crate::site::digest_of(key.function, code, key.mode, key.shape, key.types);
            let under = crate::call::observe::KeyUnder {
                version: CALL_KEY_VERSION,
                site,
                args: &key.args,
            };
            bucket
                .key_hash(&under)
                .and_then(|h| bucket.contains_hash(&h))
                .unwrap_or(false)
        })
    }

    /// Stores the cacheable part of `value` (a failure is logged at `warn`, never returned), without a cost.
    pub fn store<R, S: Shape<R>>(&self, shape: S, value: &R) {
        self.store_with(shape, value, None, None);
    }

    /// [`Call::store`], recording the time since `started` (the body's wall time) as the entry's cost; `lifetime`
    /// (when `Some`) replaces the function's for this entry (a failure's own lifetime, `cache_err = "30s"`).
    pub fn store_costed<R, S: Shape<R>>(
        &self,
        shape: S,
        value: &R,
        started: std::time::Instant,
        lifetime: Option<Duration>,
    ) {
        self.store_with(shape, value, Some(started.elapsed()), lifetime);
    }

    fn store_with<R, S: Shape<R>>(&self, _shape: S, value: &R, cost: Option<Duration>, lifetime: Option<Duration>) {
        let (Some(bucket), Some(key)) = (self.bucket, self.key.as_ref()) else {
            return;
        };
        // Disabled since the call began (`disable()` while the body ran, e.g. a background refresh): nothing is
        // written from then on.
        if crate::disable::is_disabled() {
            debug!(target: "bucketcache", function = self.function, "caching disabled while the body ran: not stored");
            return;
        }
        let Some(stored) = S::stored(value) else {
            debug!(target: "bucketcache", function = self.function, "result not cached (Err or None)");
            return;
        };
        let mut opts = crate::WriteOptions::default().function(self.function);
        opts.cost = cost;
        opts.lifetime = lifetime.or(self.lifetime);
        if let Some(call) = self.obs.run.get().and_then(|run| run.call_hash) {
            opts = opts.call(call);
        }
        if let Some(code) = self.obs.code {
            opts = opts.code(crate::call::observe::code_digest(code));
        }
        match bucket.insert_with(key, stored, &opts) {
            Ok(bytes) => {
                self.obs.count_store(bucket.bucket(), Some(bytes));
                if let Some(code) = self.obs.code {
                    crate::call::observe::record_version(bucket.bucket(), self.function, code);
                }
            }
            Err(e) => {
                self.obs.count_store(bucket.bucket(), None);
                warn!(target: "bucketcache", function = self.function, error = %e, "cannot store the result; it is returned uncached");
            }
        }
    }

    /// The callback's view of a hit.
    pub fn info<'v, R>(&self, hit: &'v Hit<R>, args: Vec<CallArg>) -> CachedCallInfo<'v, R> {
        CachedCallInfo {
            function: self.function,
            args,
            return_value: &hit.value,
            expiration_date: hit.expires,
            written: hit.written,
            key_hash: self.key.unwrap_or(KeyHash([0; 32])),
            source: hit.source,
            code_version: self.obs.code,
            cost: hit.cost,
        }
    }
}

/// The `debug` event of a memory hit ([`Call::memory_hit`]), out of the hot path.
#[cold]
#[inline(never)]
fn log_hit(function: &'static str, key: &KeyHash, source: crate::HitSource) {
    debug!(target: "bucketcache", function, hash = %key, source = ?source, "cache hit");
}

/// Returns `f`; fixes its output type, so `?` and `return` in an `async fn`'s body infer.
#[inline(always)]
pub fn typed_future<R, F: core::future::Future<Output = R>>(f: F) -> F {
    f
}

/// A rendered argument for [`CachedCallInfo`].
#[inline]
pub fn arg<T: Serialize + ?Sized>(name: &'static str, value: &T) -> CallArg {
    CallArg {
        name,
        value: ArgValue::of(value),
    }
}

/// An ignored argument for [`CachedCallInfo`].
#[inline]
pub fn ignored_arg(name: &'static str) -> CallArg {
    CallArg {
        name,
        value: ArgValue::Ignored,
    }
}

/// The arguments for [`CachedCallInfo`].
#[inline]
pub fn args_vec<const N: usize>(args: [CallArg; N]) -> Vec<CallArg> {
    args.into()
}
