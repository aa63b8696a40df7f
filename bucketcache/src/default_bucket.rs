//! The buckets `#[bucket_cache]` opens itself: `path = "dir"` and the default directory.
//!
//! They are shared process-wide per (absolute directory, backend): every function cached in one directory with one
//! backend uses one [`Bucket`] object, so they share its memory tier and its single-flight. Each call site keeps a
//! pointer to its bucket once opened, so a hit takes no lock.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};

use tracing::warn;

use crate::backend::Backend;
use crate::bucket::Bucket;
use crate::error::Result;

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

/// A call site's handle on its shared bucket: a `static` in the expansion of `#[bucket_cache]`.
#[doc(hidden)]
pub struct SiteBucket<B: Backend> {
    cell: OnceLock<&'static Bucket<B>>,
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
    pub fn get(&self, dir: impl FnOnce() -> PathBuf) -> Option<&'static Bucket<B>> {
        if let Some(b) = self.cell.get() {
            return Some(*b);
        }
        let dir = dir();
        match open_shared::<B>(&dir, self.use_shared) {
            Ok(b) => Some(*self.cell.get_or_init(|| b)),
            Err(e) => {
                warn!(target: "bucketcache", dir = %dir.display(), error = %e, "cannot open the bucket; the function runs uncached");
                None
            }
        }
    }
}
