//! What a cached call reads and stores through: the seam between `__private::Call` and the bucket types.
//!
//! `Call` is generic over a [`CallTarget`]: a plain [`Bucket`] (the calls go straight to its inherent methods, so
//! the hit path is the same monomorphized code as before the seam), a [`DeferredWriteBucket`] (reads see its pending
//! writes first, stores stay pending until `sync`), or the process-wide bucket of `path = "..."` and the default
//! directory ([`SharedBucket`](crate::default_bucket::SharedBucket), which honours
//! [`deferred_calls`](crate::deferred_calls) scopes). [`AsTarget`] resolves `bucket = EXPR` to one of them through
//! any number of `Deref`s.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::Backend;
use crate::bucket::{Bucket, Hit, WriteOptions};
use crate::deferred::DeferredWriteBucket;
use crate::error::Result;
use crate::key::{KeyHash, KeyMaker};
use crate::lock::CrossFlight;
use crate::tier::lease::SharedFlight;

/// What a cached call reads from and stores into. Hidden: implemented by the crate's bucket types only.
pub trait CallTarget {
    /// Hashes a call's key ([`Bucket::key_hash`]).
    ///
    /// # Errors
    /// As [`Bucket::key_hash`].
    fn key_hash<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<KeyHash>;

    /// Looks a key hash up ([`Bucket::lookup`]).
    ///
    /// # Errors
    /// As [`Bucket::lookup`].
    fn lookup<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static;

    /// The memory tier's unexpired typed value for `key` (`Bucket::memory_hit`), or `None` to let
    /// [`CallTarget::lookup`] decide. Targets whose reads see more than the bucket (pending writes) return `None`.
    #[inline]
    fn memory_hit<V>(&self, _key: &KeyHash) -> Option<Hit<V>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        None
    }

    /// [`CallTarget::memory_hit`]'s value and recorded cost alone (`Bucket::memory_value`), for a fast hit.
    #[inline]
    fn memory_value<V>(&self, _key: &KeyHash) -> Option<(V, Option<Duration>)>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        None
    }

    /// Takes the key's cross-process lock after a miss, or finds the value another process stored meanwhile.
    fn begin_cross_process_flight_after_miss<V>(&self, key: &KeyHash, wait_limit: Duration) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static;

    /// Takes the shared tier's lease after every tier missed, or finds the value another machine stored meanwhile
    /// ([`Bucket::begin_shared_flight`]).
    fn begin_shared_flight<V>(&self, key: &KeyHash, wait_limit: Duration) -> SharedFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static;

    /// Stores a computed value ([`Bucket::insert_with`]): the bytes written, 0 when the value stays pending.
    ///
    /// # Errors
    /// As [`Bucket::insert_with`].
    fn insert_with<V>(&self, key: &KeyHash, value: &V, opts: &WriteOptions<'_>) -> Result<u64>
    where
        V: Serialize + Clone + Send + Sync + 'static;

    /// The backend of the bucket underneath.
    type Backend: Backend;
    /// The key maker of the bucket underneath.
    type KeyMaker: KeyMaker;

    /// The bucket underneath (its counters, its per-function records).
    fn bucket(&self) -> &Bucket<Self::Backend, Self::KeyMaker>;

    /// The identity of the in-process single flight: callers with equal ids and equal keys wait for each other.
    fn flight_id(&self) -> usize;
}

impl<B: Backend, K: KeyMaker> CallTarget for Bucket<B, K> {
    #[inline]
    fn key_hash<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<KeyHash> {
        Bucket::key_hash(self, key)
    }

    #[inline]
    fn lookup<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Bucket::lookup(self, key)
    }

    #[inline]
    fn memory_hit<V>(&self, key: &KeyHash) -> Option<Hit<V>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Bucket::memory_hit(self, key)
    }

    #[inline]
    fn memory_value<V>(&self, key: &KeyHash) -> Option<(V, Option<Duration>)>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Bucket::memory_value(self, key)
    }

    #[inline]
    fn begin_cross_process_flight_after_miss<V>(&self, key: &KeyHash, wait_limit: Duration) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Bucket::begin_cross_process_flight_after_miss(self, key, wait_limit)
    }

    #[inline]
    fn begin_shared_flight<V>(&self, key: &KeyHash, wait_limit: Duration) -> SharedFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Bucket::begin_shared_flight(self, key, wait_limit)
    }

    #[inline]
    fn insert_with<V>(&self, key: &KeyHash, value: &V, opts: &WriteOptions<'_>) -> Result<u64>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        Bucket::insert_with(self, key, value, opts).map(|s| s.file_len)
    }

    type Backend = B;
    type KeyMaker = K;

    #[inline]
    fn bucket(&self) -> &Bucket<B, K> {
        self
    }

    #[inline]
    fn flight_id(&self) -> usize {
        self as *const Self as *const () as usize
    }
}

/// A deferred bucket: reads see pending writes first, then the bucket; a computed value stays pending until
/// [`sync`](DeferredWriteBucket::sync). The in-process single flight is the deferred bucket's own (its callers see
/// its pending values); the cross-process one is the bucket's lock, held until the value is pending: other
/// processes cannot see pending values, so one that waited computes the key itself.
impl<B: Backend, K: KeyMaker> CallTarget for DeferredWriteBucket<'_, B, K> {
    #[inline]
    fn key_hash<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<KeyHash> {
        self.bucket().key_hash(key)
    }

    #[inline]
    fn lookup<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        DeferredWriteBucket::lookup(self, key)
    }

    #[inline]
    fn begin_cross_process_flight_after_miss<V>(&self, key: &KeyHash, wait_limit: Duration) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.bucket().begin_cross_process_flight_after_miss(key, wait_limit)
    }

    /// No lease: a pending value reaches the shared tier only at `sync`, so other machines could not see it.
    #[inline]
    fn begin_shared_flight<V>(&self, _key: &KeyHash, _wait_limit: Duration) -> SharedFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        SharedFlight::Compute(None)
    }

    #[inline]
    fn insert_with<V>(&self, key: &KeyHash, value: &V, opts: &WriteOptions<'_>) -> Result<u64>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        DeferredWriteBucket::insert_with(self, key, value, opts).map(|()| 0)
    }

    type Backend = B;
    type KeyMaker = K;

    #[inline]
    fn bucket(&self) -> &Bucket<B, K> {
        DeferredWriteBucket::bucket(self)
    }

    #[inline]
    fn flight_id(&self) -> usize {
        self as *const Self as *const () as usize
    }
}

/// What `bucket = EXPR` may be: a [`Bucket`], a [`DeferredWriteBucket`], or anything that derefs to one (`&Bucket`,
/// `Arc<Bucket>`, `LazyLock<DeferredWriteBucket<'static>>`, ...).
#[diagnostic::on_unimplemented(
    message = "`bucket = ...` must be a `bucketcache::Bucket` or a `DeferredWriteBucket`, or deref to one, not `{Self}`",
    note = "for example `static CACHE: std::sync::LazyLock<Bucket> = LazyLock::new(|| Bucket::new(\"dir\").unwrap());`"
)]
pub trait AsTarget {
    /// The bucket type the calls go to.
    type Target: CallTarget;
    /// The bucket.
    fn as_target(&self) -> &Self::Target;
}

impl<B: Backend, K: KeyMaker> AsTarget for Bucket<B, K> {
    type Target = Self;
    #[inline]
    fn as_target(&self) -> &Self {
        self
    }
}

impl<'a, B: Backend, K: KeyMaker> AsTarget for DeferredWriteBucket<'a, B, K> {
    type Target = Self;
    #[inline]
    fn as_target(&self) -> &Self {
        self
    }
}

impl<T: core::ops::Deref + ?Sized> AsTarget for T
where
    T::Target: AsTarget,
{
    type Target = <T::Target as AsTarget>::Target;
    #[inline]
    fn as_target(&self) -> &Self::Target {
        (**self).as_target()
    }
}
