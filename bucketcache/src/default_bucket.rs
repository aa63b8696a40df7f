//! The buckets `#[bucket_cache]` opens itself: `path = "dir"` and the default directory.
//!
//! They are shared process-wide per (absolute directory, backend): every function cached in one directory with one
//! backend uses one [`Bucket`] object, so they share its memory tier and its single-flight. Each call site keeps a
//! pointer to its bucket once opened, so a hit takes no lock.
//!
//! The scope form of deferred writes, [`deferred_calls`], lives here too: it applies to these buckets.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, warn};

use crate::backend::Backend;
use crate::bucket::{Bucket, Hit};
use crate::call_target::CallTarget;
use crate::deferred::DeferredWriteBucket;
use crate::error::Result;
use crate::key::{DefaultKeyMaker, KeyHash};
use crate::lock::CrossFlight;

/// The environment variable that overrides [`default_cache_dir`].
pub const BUCKETCACHE_DIR_VAR: &str = "BUCKETCACHE_DIR";

/// The environment variable that turns on [`BucketBuilder::log_full_keys`](crate::BucketBuilder::log_full_keys)
/// for the buckets the attribute opens (`path = "..."` and the default directory): `1`, `true` or `yes`. Read when
/// such a bucket is first opened.
pub const BUCKETCACHE_LOG_FULL_KEYS_VAR: &str = "BUCKETCACHE_LOG_FULL_KEYS";

/// Whether [`BUCKETCACHE_LOG_FULL_KEYS_VAR`] asks for full keys.
fn log_full_keys_from_env() -> bool {
    std::env::var(BUCKETCACHE_LOG_FULL_KEYS_VAR)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The directory of the default bucket of `#[bucket_cache]` functions that name neither `bucket` nor `path`.
///
/// In order: `$BUCKETCACHE_DIR` if set and not empty; `$XDG_CACHE_HOME/bucketcache`; `$HOME/.cache/bucketcache`;
/// `%LOCALAPPDATA%\bucketcache` (Windows); `<temp dir>/bucketcache`. Relative values are taken against the current
/// directory. The environment is read when called: a cached function calls this once, when it first needs its
/// bucket, and keeps the bucket for the rest of the process.
pub fn default_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(BUCKETCACHE_DIR_VAR) {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("bucketcache");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("bucketcache");
    }
    if let Some(dir) = var("LOCALAPPDATA") {
        return dir.join("bucketcache");
    }
    std::env::temp_dir().join("bucketcache")
}

/// Buckets by (absolute directory, backend, with the shared tier from the environment).
type Registry = HashMap<(PathBuf, TypeId, bool), &'static (dyn Any + Send + Sync)>;

static SHARED: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

/// The shared tier the environment asks for (`BUCKETCACHE_REDIS_URL`, feature `redis`), attached to `builder`; an
/// invalid setting is logged at `warn` (naming the variable) and the bucket stays local.
fn with_env_tier<B: Backend>(builder: crate::BucketBuilder<B>) -> crate::BucketBuilder<B> {
    #[cfg(feature = "redis")]
    {
        match crate::tier::redis::RedisTier::from_env() {
            Ok(Some(tier)) => return builder.shared(tier),
            Ok(None) => {}
            Err(e) => {
                warn!(target: "bucketcache", error = %e, "the shared tier from the environment is invalid; buckets stay local")
            }
        }
    }
    builder
}

/// The process-wide bucket for `dir` and backend `B`, opened with `B::default()` on first use (with full keys in
/// its debug logs when [`BUCKETCACHE_LOG_FULL_KEYS_VAR`] is set).
///
/// The bucket lives until the process exits (one per distinct directory and backend).
///
/// # Errors
/// As [`BucketBuilder::build`](crate::BucketBuilder::build): the directory cannot be created.
/// With `use_shared`, the shared tier of the environment is attached (feature `redis`, `BUCKETCACHE_REDIS_URL`).
fn open_shared<B: Backend + Default>(dir: &Path, use_shared: bool) -> Result<&'static Bucket<B>> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut map = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = (dir, TypeId::of::<B>(), use_shared);
    if let Some(b) = map.get(&slot).and_then(|b| b.downcast_ref::<Bucket<B>>()) {
        return Ok(b);
    }
    let mut builder = Bucket::builder(&slot.0)
        .backend(B::default())
        .log_full_keys(log_full_keys_from_env());
    if use_shared {
        builder = with_env_tier(builder);
    }
    let built = builder.build()?;
    let bucket: &'static Bucket<B> = Box::leak(Box::new(built));
    map.insert(slot, bucket);
    Ok(bucket)
}

/// A process-wide bucket of the attribute (`path = "..."`, the default directory): the [`CallTarget`] of their
/// call sites. Calls made inside a [`deferred_calls`] scope keep their values pending in the scope.
#[doc(hidden)]
pub struct SharedBucket<B: Backend> {
    bucket: &'static Bucket<B>,
}

impl<B: Backend> SharedBucket<B> {
    /// The bucket.
    pub fn bucket(&self) -> &'static Bucket<B> {
        self.bucket
    }
}

impl<B: Backend> CallTarget for SharedBucket<B> {
    #[inline]
    fn key_hash<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<KeyHash> {
        self.bucket.key_hash(key)
    }

    #[inline]
    fn lookup<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if SCOPES.load(Ordering::Relaxed) != 0 {
            if let Some(found) = with_scope_batch(self.bucket, false, |d| d.lookup::<V>(key)) {
                return found;
            }
        }
        self.bucket.lookup(key)
    }

    /// Inside a [`deferred_calls`] scope the scope's pending values come first: no shortcut then.
    #[inline]
    fn memory_hit<V>(&self, key: &KeyHash) -> Option<Hit<V>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if SCOPES.load(Ordering::Relaxed) != 0 {
            return None;
        }
        self.bucket.memory_hit(key)
    }

    /// As [`CallTarget::memory_hit`]: nothing inside a [`deferred_calls`] scope.
    #[inline]
    fn memory_value<V>(&self, key: &KeyHash) -> Option<(V, Option<Duration>)>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if SCOPES.load(Ordering::Relaxed) != 0 {
            return None;
        }
        self.bucket.memory_value(key)
    }

    #[inline]
    fn begin_cross_process_flight_after_miss<V>(&self, key: &KeyHash, wait_limit: Duration) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.bucket.begin_cross_process_flight_after_miss(key, wait_limit)
    }

    #[inline]
    fn begin_shared_flight<V>(&self, key: &KeyHash, wait_limit: Duration) -> crate::tier::lease::SharedFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.bucket.begin_shared_flight(key, wait_limit)
    }

    #[inline]
    fn insert_with<V>(&self, key: &KeyHash, value: &V, opts: &crate::WriteOptions<'_>) -> Result<u64>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        if SCOPES.load(Ordering::Relaxed) != 0 {
            if let Some(done) = with_scope_batch(self.bucket, true, |d| d.insert_with(key, value, opts)) {
                return done.map(|()| 0);
            }
        }
        self.bucket.insert_with(key, value, opts).map(|s| s.file_len)
    }

    type Backend = B;
    type KeyMaker = crate::key::DefaultKeyMaker;

    #[inline]
    fn bucket(&self) -> &Bucket<B> {
        self.bucket
    }

    #[inline]
    fn flight_id(&self) -> usize {
        self.bucket as *const Bucket<B> as *const () as usize
    }
}

// ---- the scope form of deferred writes ----

/// How many threads are inside a [`deferred_calls`] scope: while none is, a call pays one relaxed load for it.
static SCOPES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's open scope: one deferred view per bucket the scope's calls stored into.
    static SCOPE: RefCell<Option<Vec<Box<dyn ScopeBatch>>>> = const { RefCell::new(None) };
}

/// A scope's pending writes for one bucket (a [`DeferredWriteBucket`] over a process-wide bucket).
trait ScopeBatch {
    /// The bucket's address.
    fn id(&self) -> usize;
    /// Writes the batch.
    fn sync(&self) -> Result<()>;
    /// Drops the batch; how many changes were dropped.
    fn discard(&self) -> usize;
    /// For the downcast to the typed view.
    fn as_any(&self) -> &dyn Any;
}

impl<B: Backend> ScopeBatch for DeferredWriteBucket<'static, B, DefaultKeyMaker> {
    fn id(&self) -> usize {
        self.bucket() as *const Bucket<B> as *const () as usize
    }
    fn sync(&self) -> Result<()> {
        DeferredWriteBucket::sync(self)
    }
    fn discard(&self) -> usize {
        let n = self.pending_len();
        DeferredWriteBucket::discard(self);
        n
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Runs `f` on this thread's scope batch for `bucket` (created when `create`), or `None` when the thread is in no
/// scope (or, without `create`, the scope has no batch for the bucket).
fn with_scope_batch<B: Backend, T>(
    bucket: &'static Bucket<B>,
    create: bool,
    f: impl FnOnce(&DeferredWriteBucket<'static, B, DefaultKeyMaker>) -> T,
) -> Option<T> {
    let id = bucket as *const Bucket<B> as *const () as usize;
    SCOPE
        .try_with(|scope| {
            let mut scope = scope.try_borrow_mut().ok()?;
            let batches = scope.as_mut()?;
            let at = match batches.iter().position(|b| b.id() == id) {
                Some(at) => at,
                None if create => {
                    batches.push(Box::new(bucket.deferred()));
                    batches.len() - 1
                }
                None => return None,
            };
            let batch = batches[at]
                .as_any()
                .downcast_ref::<DeferredWriteBucket<'static, B, DefaultKeyMaker>>()?;
            Some(f(batch))
        })
        .ok()
        .flatten()
}

/// Defers the writes of the cached calls `f` makes: every value a `#[bucket_cache]` function with `path = "..."` or
/// the default bucket computes on this thread inside `f` stays pending, and all are written when `f` returns, in
/// one batch per bucket (see [`DeferredWriteBucket::sync`]: grouped by fan-out directory, each directory opened once
/// and, with [`Durability::Fsync`](crate::Durability::Fsync), synced once). Calls inside `f` see the values pending
/// in the scope (a repeated call hits), then the bucket.
///
/// - **Panics**: if `f` panics, nothing is written: the values computed inside it are lost (logged at `warn`), though
///   each cached call still returned its result to its caller. The panic continues.
/// - **Write failures** at the end are logged at `warn` (the failure policy of the attribute: a cache failure never
///   changes a result); `f`'s value is returned.
/// - **Threads**: the scope is this thread's. Cached calls made on other threads (spawned inside `f`, or the worker
///   threads of an async runtime) write at once, as usual; an `async fn` awaited on this thread (`block_on` inside
///   `f`) is deferred.
/// - **Other callers** (other threads, other processes) cannot see pending values until the end of `f`; they
///   compute such a key themselves. Single flight still joins callers of one key while it is being computed.
/// - **Nesting**: a `deferred_calls` inside another joins it: its calls are written at the end of the outer one.
/// - Buckets given with `bucket = EXPR` are not affected: decorate with a [`DeferredWriteBucket`] for those.
///
/// ```
/// # fn main() {
/// # let dir = tempfile::tempdir().unwrap();
/// # std::env::set_var("BUCKETCACHE_DIR", dir.path());
/// #[bucketcache::bucket_cache]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let total: u64 = bucketcache::deferred_calls(|| (0..100).map(square).sum());
/// assert_eq!(total, 328_350);
/// # }
/// ```
pub fn deferred_calls<T>(f: impl FnOnce() -> T) -> T {
    let outermost = SCOPE
        .try_with(|scope| {
            let mut scope = scope.borrow_mut();
            if scope.is_some() {
                return false;
            }
            *scope = Some(Vec::new());
            true
        })
        .unwrap_or(false);
    if !outermost {
        return f();
    }
    SCOPES.fetch_add(1, Ordering::Relaxed);
    let guard = ScopeGuard;
    let value = f();
    drop(guard);
    value
}

/// Ends this thread's scope: writes its batches, or on a panic discards them.
struct ScopeGuard;

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let batches = SCOPE
            .try_with(|scope| scope.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_default();
        SCOPES.fetch_sub(1, Ordering::Relaxed);
        if std::thread::panicking() {
            let lost: usize = batches.iter().map(|b| b.discard()).sum();
            if lost > 0 {
                warn!(target: "bucketcache", lost, "deferred_calls: the closure panicked; its pending cached values are not written");
            }
            return;
        }
        for batch in &batches {
            match batch.sync() {
                Ok(()) => debug!(target: "bucketcache", "deferred_calls: batch written"),
                Err(e) => {
                    warn!(target: "bucketcache", error = %e, "deferred_calls: some cached values could not be written");
                    batch.discard();
                }
            }
        }
    }
}

/// A call site's handle on its shared bucket: a `static` in the expansion of `#[bucket_cache]`.
#[doc(hidden)]
pub struct SiteBucket<B: Backend> {
    cell: OnceLock<SharedBucket<B>>,
    /// Whether the bucket gets the environment's shared tier (`shared = false` in the attribute: no).
    use_shared: bool,
}

impl<B: Backend + Default> SiteBucket<B> {
    /// An unopened handle.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SiteBucket {
            cell: OnceLock::new(),
            use_shared: true,
        }
    }

    /// A site whose bucket never gets the environment's shared tier (`shared = false`).
    pub const fn local() -> Self {
        SiteBucket {
            cell: OnceLock::new(),
            use_shared: false,
        }
    }

    /// The bucket, opening it in `dir()` on first use; `None` (logged at `warn`) when it cannot be opened: the
    /// function then runs uncached, and the next call tries again.
    pub fn get(&self, dir: impl FnOnce() -> PathBuf) -> Option<&SharedBucket<B>> {
        if let Some(b) = self.cell.get() {
            return Some(b);
        }
        let dir = dir();
        match open_shared::<B>(&dir, self.use_shared) {
            Ok(bucket) => Some(self.cell.get_or_init(|| SharedBucket { bucket })),
            Err(e) => {
                warn!(target: "bucketcache", dir = %dir.display(), error = %e, "cannot open the bucket; the function runs uncached");
                None
            }
        }
    }
}
